use std::collections::{BTreeMap, BTreeSet};

use fleet_api::operation::{MoveSpec, Operation, OperationSpec, Phase, ThrottleSet};

use super::*;
use super::super::{leaving_brokers, Pause};

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
    // As the driver records it: with the rates an operator had set before (the priors).
    let prior: BTreeMap<i32, fleet_api::operation::PriorRates> =
        [(1, fleet_api::operation::PriorRates { leader: Some("7777777".into()), follower: None })].into();
    o.status.throttled = Some(ThrottleSet { prior, ..want.clone() });
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
            Some(MoveAction::Elect(_)) | Some(MoveAction::CancelReassignments(_)) | None => {}
        }
        o.status = status;
        if o.status.phase == Phase::Retiring {
            assert_eq!(o.status.throttled, None, "no throttle left when the brokers retire");
            break;
        }
    }
    assert!(parts.values().all(|p| !p.replicas.iter().any(|b| *b >= 4)), "{parts:?}");
    let (status, _) = next(&o, &s, true, &observed(&parts, 100));
    assert_eq!(status.phase, Phase::Succeeded);
}

#[test]
fn cancel_cancels_the_reassignments_in_flight_then_clears_every_throttle() {
    let s = spec(&[4], Some(1 << 20));
    let mut o = op(&s);
    let parts = partitions();
    o.status.phase = Phase::Moving;
    let plan = make_plan(&s, true, &racks(), &parts, &BTreeMap::new()).expect("plan");
    o.status.moves = Some(plan.clone());
    o.status.throttled = Some(throttles_for(plan.moves.iter(), 1 << 20));
    o.cancel_requested = true;
    // The batch is running: its reassignments are cancelled through Kafka (replicas go back).
    let running: Partitions =
        parts.iter().map(|(k, p)| (k.clone(), PartitionNow { adding: if p.replicas.contains(&4) { vec![2] } else { vec![] }, ..p.clone() })).collect();
    // As Kafka's controller has it: the batch stays in /admin/reassign_partitions until it
    // completes, so being listed there does not stop the cancel.
    let mut seen = observed(&running, 1);
    seen.reassigning = Seen::Known(Some(running.iter().filter(|(_, p)| p.in_flight()).map(|(k, _)| k.clone()).collect()));
    let (status, action) = next(&o, &s, true, &seen);
    assert_eq!(status.phase, Phase::Moving);
    let Some(MoveAction::CancelReassignments(keys)) = action else { panic!("expected a cancel of the batch, got {action:?}") };
    let in_flight: Vec<(String, u32)> = running.iter().filter(|(_, p)| p.in_flight()).map(|(k, _)| k.clone()).collect();
    assert_eq!(keys.into_iter().collect::<BTreeSet<_>>(), in_flight.into_iter().collect::<BTreeSet<_>>());
    // Cancelled (replicas where they were): clean-up, then cancelled once every throttle is gone.
    let (status, action) = next(&o, &s, true, &observed(&parts, 2));
    assert_eq!((status.phase, status.outcome), (Phase::CleaningUp, Some(Phase::Cancelled)));
    assert!(action.is_none());
    o.status = status;
    let (status, action) = next(&o, &s, true, &observed(&parts, 3));
    assert_eq!(action, Some(MoveAction::Throttle(ThrottleSet::default())));
    o.status = status;
    o.status.throttled = None;
    let (status, _) = next(&o, &s, true, &observed(&parts, 4));
    assert_eq!(status.phase, Phase::Cancelled);
}

#[test]
fn a_failover_pauses_it_after_the_batch_is_cancelled_and_it_plans_again_once_it_ended() {
    let s = spec(&[4], Some(1 << 20));
    let mut o = op(&s);
    let parts = partitions();
    o.status.phase = Phase::Moving;
    let plan = make_plan(&s, true, &racks(), &parts, &BTreeMap::new()).expect("plan");
    o.status.moves = Some(plan.clone());
    o.status.throttled = Some(throttles_for(plan.moves.iter(), 1 << 20));
    o.paused_by = Some("failover-blue-7".into());
    let mut seen = observed(&parts, 1);
    seen.pause = Seen::Known(Pause::Requested { by: "failover-blue-7".into() });
    let (status, _) = next(&o, &s, true, &seen);
    assert_eq!((status.phase, status.outcome), (Phase::CleaningUp, Some(Phase::Paused)));
    o.status = status;
    let (status, action) = next(&o, &s, true, &seen);
    assert!(matches!(action, Some(MoveAction::Throttle(t)) if t.is_empty()), "throttles cleared while paused");
    o.status = status;
    o.status.throttled = None;
    let (status, _) = next(&o, &s, true, &seen);
    assert_eq!(status.phase, Phase::Paused);
    assert!(status.message.as_deref().is_some_and(|m| m.contains("failover-blue-7")), "{status:?}");
    o.status = status;
    let (status, _) = next(&o, &s, true, &seen);
    assert_eq!(status.phase, Phase::Paused, "while the failover runs");
    seen.pause = Seen::Known(Pause::Over { by: "failover-blue-7".into() });
    let step = next_step(&o, &s, true, &seen, &MoveSettings::default());
    assert_eq!(step.status.phase, Phase::Pending, "plans again from what is live");
    assert_eq!(step.effects.resume.as_deref(), Some("failover-blue-7"));
    assert!(step.status.moves.is_none());
}

#[test]
fn retiring_goes_back_when_a_replica_appears_on_a_broker_still_there() {
    let s = spec(&[4], None);
    let mut o = op(&s);
    o.status.phase = Phase::Retiring;
    let mut seen = observed(&partitions(), 1);
    seen.still_there = Seen::Known([4].into());
    let (status, _) = next(&o, &s, true, &seen);
    assert_eq!(status.phase, Phase::Verifying, "partitions() has replicas on 4: {status:?}");
    assert_eq!(leaving_brokers(&[Operation { status: status.clone(), ..o.clone() }]), [(4, false)].into(), "its host stays");
    // Nothing on 4 any more, 4 still registered: Retiring clears it itself before the
    // reconciler may terminate its host; an unknown partition list clears nothing.
    let moved: Partitions = partitions().into_iter().map(|(k, mut p)| {
        p.replicas.retain(|b| *b != 4);
        (k, p)
    }).collect();
    o.status.enter(Phase::Retiring, 2, None);
    assert_eq!(leaving_brokers(std::slice::from_ref(&o)), [(4, false)].into(), "not cleared yet");
    let mut unknown = observed(&moved, 2);
    unknown.still_there = Seen::Known([4].into());
    unknown.partitions = Seen::Unknown("zookeeper down".into());
    let (status, _) = next(&o, &s, true, &unknown);
    assert_eq!((status.phase, status.retire_cleared_at_ms), (Phase::Retiring, None));
    let mut clean = observed(&moved, 3);
    clean.still_there = Seen::Known([4].into());
    let (status, _) = next(&o, &s, true, &clean);
    assert_eq!((status.phase, status.retire_cleared_at_ms), (Phase::Retiring, Some(3)));
    o.status = status;
    assert_eq!(leaving_brokers(std::slice::from_ref(&o)), [(4, true)].into(), "cleared: the reconciler may retire it");
    // The clearance and the lowered count go in one spec write (the reconciler wakes on it).
    let mut before = o.clone();
    before.status.retire_cleared_at_ms = None;
    let step = next_step(&before, &s, true, &clean, &MoveSettings::default());
    assert_eq!(step.effects.lower_brokers, Some(s.from_brokers - 1), "written again with the clearance");
    // A replica placed on 4 after the clearance: back to Verifying, the host kept; entering
    // Retiring again needs a new clearance.
    let (status, _) = next(&o, &s, true, &seen);
    assert_eq!(status.phase, Phase::Verifying);
    assert_eq!(leaving_brokers(&[Operation { status: status.clone(), ..o.clone() }]), [(4, false)].into());
    let mut again = status;
    again.enter(Phase::Retiring, 10, None);
    assert_eq!(again.retire_cleared_at_ms, None);
    // Nothing there, broker gone: retired.
    let moved: Partitions = partitions().into_iter().map(|(k, mut p)| {
        p.replicas.retain(|b| *b != 4);
        (k, p)
    }).collect();
    let mut seen = observed(&moved, 2);
    seen.still_there = Seen::Known(BTreeSet::new());
    o.status.phase = Phase::Retiring;
    let (status, _) = next(&o, &s, true, &seen);
    assert_eq!(status.phase, Phase::Succeeded);
}

#[test]
fn verifying_clean_retires_with_the_count_lowered_in_the_same_write() {
    let s = spec(&[4], None);
    let mut o = op(&s);
    o.status.phase = Phase::Verifying;
    let moved: Partitions = partitions().into_iter().map(|(k, mut p)| {
        p.replicas.retain(|b| *b != 4);
        (k, p)
    }).collect();
    let step = next_step(&o, &s, true, &observed(&moved, 1), &MoveSettings::default());
    assert_eq!(step.status.phase, Phase::Retiring);
    assert_eq!(step.effects.lower_brokers, Some(s.from_brokers - 1));
}

#[test]
fn a_phase_that_is_not_a_moves_fails_it_through_clean_up() {
    let s = spec(&[4], Some(1 << 20));
    let mut o = op(&s);
    o.status.phase = Phase::SwitchingProducers;
    let (status, _) = next(&o, &s, true, &observed(&partitions(), 1));
    assert_eq!((status.phase, status.outcome), (Phase::CleaningUp, Some(Phase::Failed)));
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

#[test]
fn a_held_proposal_waits_for_approval_naming_it_and_is_cancelled_or_paused_from_there() {
    let s = MoveSpec { hold: true, ..spec(&[4], Some(1 << 20)) };
    let mut o = op(&s);
    let parts = partitions();
    let (status, action) = next(&o, &s, true, &observed(&parts, 1));
    assert_eq!((status.phase, action), (Phase::ProposalReady, None));
    o.status = status;
    let (status, action) = next(&o, &s, true, &observed(&parts, 2));
    assert_eq!((status.phase, action), (Phase::ProposalReady, None), "waits");
    assert!(status.message.as_deref().is_some_and(|m| m.contains("approve operation decommission-blue-1")), "{status:?}");
    // A failover on the cluster: a held proposal steps aside (nothing to cancel or clear).
    let mut paused = observed(&parts, 3);
    paused.pause = Seen::Known(Pause::Requested { by: "failover-blue-2".into() });
    let (status, _) = next(&o, &s, true, &paused);
    assert_eq!((status.phase, status.outcome), (Phase::CleaningUp, Some(Phase::Paused)));
    // Cancelled while held: nothing moved, so it ends at once (through clean-up).
    let mut cancelled = o.clone();
    cancelled.cancel_requested = true;
    let (status, _) = next(&cancelled, &s, true, &observed(&parts, 4));
    assert_eq!((status.phase, status.outcome), (Phase::CleaningUp, Some(Phase::Cancelled)));
    let mut cancelled_op = cancelled.clone();
    cancelled_op.status = status;
    let (status, action) = next(&cancelled_op, &s, true, &observed(&parts, 5));
    assert_eq!((status.phase, action), (Phase::Cancelled, None), "no throttle was ever set");
    // Approved: it moves (leaders first, as 4 leads t-0 and t-3).
    o.approved = true;
    let (status, _) = next(&o, &s, true, &observed(&parts, 6));
    assert_eq!(status.phase, Phase::MovingLeaders);
}

#[test]
fn cancel_in_every_phase_before_retiring_leaves_no_throttle() {
    for phase in [Phase::Pending, Phase::MovingLeaders, Phase::ElectingLeaders, Phase::Verifying, Phase::Paused] {
        let s = spec(&[4], Some(1 << 20));
        let mut o = op(&s);
        let parts = partitions();
        let plan = make_plan(&s, true, &racks(), &parts, &BTreeMap::new()).expect("plan");
        o.status.phase = phase;
        o.status.moves = Some(plan.clone());
        o.status.throttled = Some(throttles_for(plan.moves.iter(), 1 << 20));
        o.cancel_requested = true;
        let (status, action) = next(&o, &s, true, &observed(&parts, 1));
        assert_eq!((status.phase, status.outcome, action), (Phase::CleaningUp, Some(Phase::Cancelled), None), "{phase:?}");
        o.status = status;
        let (status, action) = next(&o, &s, true, &observed(&parts, 2));
        assert_eq!(action, Some(MoveAction::Throttle(ThrottleSet { prior: BTreeMap::new(), ..ThrottleSet::default() })), "{phase:?}: throttles cleared");
        o.status = status;
        o.status.throttled = None;
        let (status, _) = next(&o, &s, true, &observed(&parts, 3));
        assert_eq!(status.phase, Phase::Cancelled, "{phase:?}");
    }
}
