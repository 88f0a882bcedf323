use std::collections::{BTreeMap, BTreeSet};

use fleet_api::operation::{MoveSpec, Operation, OperationSpec, Phase, ThrottleSet};

use super::*;

fn racks() -> BTreeMap<i32, String> {
    (1..=5).map(|b| (b, ["a", "b", "c"][((b - 1) % 3) as usize].to_string())).collect()
}

fn spec(leaving: &[i32], throttle: Option<u64>) -> MoveSpec {
    MoveSpec { leaving: leaving.to_vec(), from_brokers: 5, throttle_bytes: throttle, max_moves_per_broker: 2, max_moves: 10, hold: false }
}

fn op(spec: &MoveSpec) -> Operation {
    Operation::new("decommission-blue-1", "blue", OperationSpec::Decommission(spec.clone()), 0, "test")
}

/// t-0 [4,1], t-1 [5,2], t-2 [1,2], t-3 [4,3]: brokers 4 and 5 lead t-0, t-1 and t-3.
fn partitions() -> Partitions {
    [(0, vec![4, 1]), (1, vec![5, 2]), (2, vec![1, 2]), (3, vec![4, 3])]
        .into_iter()
        .map(|(p, r)| (("t".to_string(), p), PartitionNow { replicas: r, ..PartitionNow::default() }))
        .collect()
}

fn observed(parts: &Partitions, now_ms: i64) -> MoveObserved {
    let leaders = parts.iter().map(|(k, p)| (k.clone(), p.replicas[0])).collect();
    MoveObserved {
        now_ms,
        live: Seen::Known(racks()),
        partitions: Seen::Known(parts.clone()),
        reassigning: Seen::Known(None),
        electing: Seen::Known(false),
        leaders: Seen::Known(leaders),
        still_there: Seen::Known(BTreeSet::new()),
        ..MoveObserved::default()
    }
}

/// Plays Kafka's controller: a reassignment completes at once.
fn apply(parts: &mut Partitions, moves: &[Move]) {
    for m in moves {
        parts.insert((m.topic.clone(), m.partition), PartitionNow { replicas: m.to.clone(), ..PartitionNow::default() });
    }
}

#[test]
fn decommission_moves_leaders_first_throttles_before_each_batch_and_clears_every_throttle() {
    let s = spec(&[4, 5], Some(5 << 20));
    let mut o = op(&s);
    let mut parts = partitions();
    let (status, action) = next(&o, &s, true, &observed(&parts, 1));
    assert_eq!(status.phase, Phase::MovingLeaders);
    assert_eq!(action, None);
    let plan = status.moves.clone().expect("plan");
    assert_eq!(plan.moves.len(), 3, "t-2 holds nothing on 4 or 5");
    assert_eq!(plan.leaders_to_move, 3);
    o.status = status;

    // Leaders: the replicas are reordered (same set), then a preferred-leader election.
    let (status, action) = next(&o, &s, true, &observed(&parts, 2));
    let Some(MoveAction::Reassign(reorders)) = action else { panic!("reorder first: {action:?}") };
    assert_eq!(reorders.iter().map(|m| m.to.clone()).collect::<Vec<_>>(), [vec![1, 4], vec![2, 5], vec![3, 4]]);
    apply(&mut parts, &reorders);
    o.status = status;
    let mut seen = observed(&parts, 3);
    seen.leaders = Seen::Known(partitions().iter().map(|(k, p)| (k.clone(), p.replicas[0])).collect());
    let (status, action) = next(&o, &s, true, &seen);
    assert!(matches!(action, Some(MoveAction::Elect(ref k)) if k.len() == 3), "{action:?}");
    o.status = status;
    let (status, action) = next(&o, &s, true, &observed(&parts, 4));
    assert_eq!((status.phase, action), (Phase::Moving, None), "leaders moved");
    o.status = status;

    // Batch 1 (two moves per broker: 4 is in t-0 and t-3): throttles are set before the batch.
    let (status, action) = next(&o, &s, true, &observed(&parts, 5));
    let Some(MoveAction::Throttle(want)) = action else { panic!("throttle first: {action:?}") };
    assert_eq!(want.rate, 5 << 20);
    assert!(!want.brokers.is_empty() && want.topics["t"].follower.iter().all(|e| !e.ends_with(":4") && !e.ends_with(":5")));
    o.status = status;
    o.status.throttled = Some(want.clone());
    let (status, action) = next(&o, &s, true, &observed(&parts, 6));
    let Some(MoveAction::Reassign(batch)) = action else { panic!("then the batch: {action:?}") };
    assert_eq!(batch.len(), plan.batches[0] as usize);
    o.status = status;

    // While one partition still moves, the finished one's entries and idle brokers' rates go.
    apply(&mut parts, &batch[..1]);
    let mut moving = parts.clone();
    let second = &batch[1];
    moving.insert((second.topic.clone(), second.partition), PartitionNow { replicas: second.from.clone(), adding: vec![9], removing: vec![] });
    let (status, action) = next(&o, &s, true, &observed(&moving, 7));
    let Some(MoveAction::Throttle(trimmed)) = action else { panic!("trim: {action:?}") };
    assert!(trimmed.topics["t"].leader.len() < want.topics["t"].leader.len(), "{trimmed:?}");
    o.status = status;
    o.status.throttled = Some(trimmed);

    // The rest, to the end.
    apply(&mut parts, &batch);
    let mut guard = 0;
    loop {
        guard += 1;
        assert!(guard < 30, "did not finish: {:?}", o.status);
        let (mut status, action) = next(&o, &s, true, &observed(&parts, 10 + guard));
        match action {
            Some(MoveAction::Throttle(w)) => status.throttled = Some(w).filter(|t| !t.is_empty()),
            Some(MoveAction::Reassign(m)) => apply(&mut parts, &m),
            Some(MoveAction::Elect(_)) | None => {}
            Some(MoveAction::Retire(n)) => {
                assert_eq!(n, 3);
                assert_eq!(status.throttled, None, "no throttle left when the brokers retire");
            }
        }
        o.status = status;
        if o.status.phase == Phase::Retiring {
            break;
        }
    }
    assert!(parts.values().all(|p| !p.replicas.iter().any(|b| *b >= 4)), "{parts:?}");
    let (status, _) = next(&o, &s, true, &observed(&parts, 100));
    assert_eq!(status.phase, Phase::Succeeded);
}

#[test]
fn cancel_waits_for_the_running_batch_then_clears_every_throttle() {
    let s = spec(&[4], Some(1 << 20));
    let mut o = op(&s);
    let parts = partitions();
    o.status.phase = Phase::Moving;
    let plan = make_plan(&s, true, &racks(), &parts, &BTreeMap::new()).expect("plan");
    o.status.moves = Some(plan.clone());
    o.status.throttled = Some(throttles_for(plan.moves.iter(), 1 << 20));
    o.cancel_requested = true;
    // The batch is running: cancel waits for it.
    let running: Partitions =
        parts.iter().map(|(k, p)| (k.clone(), PartitionNow { adding: if p.replicas.contains(&4) { vec![2] } else { vec![] }, ..p.clone() })).collect();
    let (status, action) = next(&o, &s, true, &observed(&running, 1));
    assert_eq!(status.phase, Phase::Moving);
    assert!(action.is_none(), "nothing new starts: {action:?}");
    // Done: clean-up, then cancelled once every throttle is gone.
    let mut done = parts.clone();
    apply(&mut done, &plan.moves[..plan.batches[0] as usize]);
    let (status, action) = next(&o, &s, true, &observed(&done, 2));
    assert_eq!((status.phase, status.outcome), (Phase::CleaningUp, Some(Phase::Cancelled)));
    assert!(action.is_none());
    o.status = status;
    let (status, action) = next(&o, &s, true, &observed(&done, 3));
    assert_eq!(action, Some(MoveAction::Throttle(ThrottleSet::default())));
    o.status = status;
    o.status.throttled = None;
    let (status, _) = next(&o, &s, true, &observed(&done, 4));
    assert_eq!(status.phase, Phase::Cancelled);
}

#[test]
fn unknown_is_not_empty_and_someone_elses_reassignment_is_waited_for() {
    let s = spec(&[4], None);
    let o = op(&s);
    let mut seen = observed(&partitions(), 1);
    seen.partitions = Seen::Unknown("zookeeper down".into());
    let (status, action) = next(&o, &s, true, &seen);
    assert_eq!((status.phase, action), (Phase::Pending, None));
    assert!(status.message.as_deref().is_some_and(|m| m.contains("zookeeper down")), "{status:?}");
    let mut seen = observed(&partitions(), 1);
    seen.reassigning = Seen::Known(Some([("x".to_string(), 0)].into()));
    let (status, _) = next(&o, &s, true, &seen);
    assert_eq!(status.phase, Phase::Pending, "waits for a reassignment it did not start");
}

#[test]
fn a_plan_that_cannot_fit_fails_before_anything_moves() {
    let s = spec(&[1, 2, 3, 4], None);
    let (status, action) = next(&op(&s), &s, true, &observed(&partitions(), 1));
    assert_eq!((status.phase, action), (Phase::Failed, None));
}

#[test]
fn throttle_lists_go_from_ours_to_ours_leaving_others_entries() {
    let owned: moves::Throttled = [(0, 4), (1, 5)].into();
    let want: moves::Throttled = [(1, 5), (2, 1)].into();
    assert_eq!(live::next_throttled(Some("0:4,1:5,7:9"), &owned, &want).as_deref(), Some("1:5,2:1,7:9"));
    assert_eq!(live::next_throttled(Some("0:4,1:5"), &owned, &BTreeSet::new()), None, "all ours: the config goes");
    assert_eq!(live::next_throttled(Some("*"), &owned, &BTreeSet::new()).as_deref(), Some("*"), "a * is never touched");
    assert_eq!(live::next_throttled(None, &BTreeSet::new(), &want).as_deref(), Some("1:5,2:1"));
}

#[test]
fn a_reorder_only_move_is_written_and_done_only_in_the_new_order() {
    let s = MoveSpec { leaving: vec![], ..spec(&[], None) };
    let mut o = op(&s);
    o.spec = OperationSpec::Rebalance(s.clone());
    let m = Move { topic: "t".into(), partition: 0, from: vec![1, 2], to: vec![2, 1], bytes: 0 };
    o.status.phase = Phase::Moving;
    o.status.moves = Some(fleet_api::operation::MovePlan { moves: vec![m.clone()], batches: vec![1], ..Default::default() });
    let mut parts: Partitions = [(("t".to_string(), 0), PartitionNow { replicas: vec![1, 2], ..PartitionNow::default() })].into();
    assert!(!done(&m, &parts), "same replicas, other order: not done");
    let (_, action) = next(&o, &s, false, &observed(&parts, 1));
    assert_eq!(action, Some(MoveAction::Reassign(vec![m.clone()])));
    apply(&mut parts, std::slice::from_ref(&m));
    assert!(done(&m, &parts));
}
