use std::collections::BTreeMap;

use fleet_api::operation::{ConfigEffect, Operation, OperationSpec, Phase, RolloutSpec};

use super::super::machine::{ActionResult, Step};
use super::super::Pause;
use super::*;

fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn op(spec: &RolloutSpec, phase: Phase) -> Operation {
    let mut op = Operation::new("rollout-blue-1", "blue", OperationSpec::ConfigRollout(spec.clone()), 0, "test");
    op.status.phase = phase;
    op
}

/// Brokers 1..=3 registered at zxid 100+id (or `restarted` ones at 200+id); broker 3 controls.
fn observed(now_ms: i64, restarted: &[i32], absent: &[i32]) -> RolloutObserved {
    let brokers = (1..=3)
        .filter(|b| !absent.contains(b))
        .map(|b| (b, Registered { czxid: if restarted.contains(&b) { 200 + b as i64 } else { 100 + b as i64 }, endpoint: Some(format!("127.0.0.1:{}", 9000 + b)) }))
        .collect();
    RolloutObserved {
        now_ms,
        pause: Seen::Known(Pause::None),
        brokers: Seen::Known(brokers),
        declared: Seen::Known(3),
        controller: Seen::Known(Some(3)),
        lagging: Seen::Known(Vec::new()),
        unreachable: Seen::Known(Vec::new()),
        health: Seen::Known(None),
        ..RolloutObserved::default()
    }
}

fn apply(op: &mut Operation, step: &Step<RolloutAction>) {
    op.status = step.status.clone();
}

#[test]
fn each_key_takes_effect_as_kafka_updates_it() {
    let was = config(&[("log.retention.ms", "3600000"), ("queued.max.requests", "500"), ("compression.type", "producer")]);
    let now = config(&[("log.retention.ms", "7200000"), ("queued.max.requests", "600"), ("num.io.threads", "6"), ("ssl.key.password", "s3cret")]);
    let r = rollout_between(&was, &now).expect("changed");
    let by_key: BTreeMap<&str, (ConfigEffect, Option<&str>)> = r.changes.iter().map(|c| (c.key.as_str(), (c.effect, c.to.as_deref()))).collect();
    assert_eq!(by_key["log.retention.ms"], (ConfigEffect::ClusterWide, Some("7200000")));
    assert_eq!(by_key["num.io.threads"], (ConfigEffect::ClusterWide, Some("6")));
    assert_eq!(by_key["queued.max.requests"], (ConfigEffect::Restart, Some("600")), "read-only in Kafka 3.9");
    // Removed: it stays in the running brokers' boot files until they restart.
    assert_eq!(by_key["compression.type"], (ConfigEffect::Restart, None));
    // A password is never shown nor sent through the Admin API.
    assert_eq!(by_key["ssl.key.password"], (ConfigEffect::Restart, Some(crate::spec::HIDDEN_VALUE)));
    assert!(r.restart);
    assert!(rollout_between(&was, &was).is_none(), "nothing changed: no rollout");
    // log.retention.ms set where log.retention.hours ruled: the plan says which applied.
    let units = rollout_between(&config(&[("log.retention.hours", "4")]), &config(&[("log.retention.hours", "4"), ("log.retention.ms", "7200000")])).expect("changed");
    let note = units.changes[0].note.clone().unwrap_or_default();
    assert!(note.contains("log.retention.hours=4 applied until now") && note.contains("log.retention.ms=7200000 applies next"), "{note}");
    // The removed cluster-wide key's dynamic value is deleted too; the password is left alone.
    let writes = admin_writes(&r);
    assert!(writes.contains(&AdminWrite { key: "compression.type".into(), value: None, scope: Scope::Default }), "{writes:?}");
    assert!(!writes.iter().any(|w| w.key == "ssl.key.password" || w.key == "queued.max.requests"), "{writes:?}");
}

#[test]
fn dynamic_keys_are_written_read_back_and_need_no_restart() {
    let spec = rollout_between(&config(&[]), &config(&[("num.io.threads", "6")])).expect("changed");
    assert!(!spec.restart);
    let mut op = op(&spec, Phase::Pending);
    let step = next(&spec, &op, &observed(0, &[], &[]));
    assert_eq!(step.status.phase, Phase::Configuring);
    apply(&mut op, &step);
    let mut o = observed(10, &[], &[]);
    o.read_back = Seen::Known(vec!["broker 1: num.io.threads=8, want 6".into()]);
    let step = next(&spec, &op, &o);
    assert_eq!(step.action, Some(RolloutAction::Configure));
    let step = after(&op, &RolloutAction::Configure, ActionResult::Done { millis: 3 }, 20);
    apply(&mut op, &step);
    // Not read back yet, and written a moment ago: wait rather than write again.
    let step = next(&spec, &op, &o);
    assert_eq!((step.status.phase, step.action.clone()), (Phase::Configuring, None));
    // Read back everywhere: done, nothing restarted.
    o.read_back = Seen::Known(Vec::new());
    let step = next(&spec, &op, &o);
    assert_eq!(step.status.phase, Phase::Succeeded, "{:?}", step.status.message);
    // Unknown is not "read back".
    o.read_back = Seen::Unknown("broker 2 did not answer".into());
    assert_eq!(next(&spec, &op, &o).status.phase, Phase::Configuring);
}

#[test]
fn a_value_no_broker_reports_fails_after_a_few_writes_naming_the_broker() {
    let spec = rollout_between(&config(&[]), &config(&[("num.io.threads", "6")])).expect("changed");
    let mut op = op(&spec, Phase::Configuring);
    let mut o = observed(0, &[], &[]);
    o.read_back = Seen::Known(vec!["broker 2: num.io.threads=9, want 6".into()]);
    for i in 0..CONFIGURE_ATTEMPTS as i64 {
        o.now_ms = i * CONFIGURE_RETRY_MS;
        let step = next(&spec, &op, &o);
        assert_eq!(step.action, Some(RolloutAction::Configure));
        let step = after(&op, &RolloutAction::Configure, ActionResult::Done { millis: 1 }, o.now_ms);
    apply(&mut op, &step);
    }
    o.now_ms += CONFIGURE_RETRY_MS;
    let step = next(&spec, &op, &o);
    assert_eq!(step.status.phase, Phase::Failed);
    assert!(step.status.message.as_deref().unwrap_or("").contains("broker 2"), "{:?}", step.status.message);
}

#[test]
fn brokers_restart_one_at_a_time_the_controller_last_each_once_back_and_in_sync() {
    let spec = RolloutSpec { changes: Vec::new(), restart: true, reason: None };
    let mut op = op(&spec, Phase::Pending);
    let step = next(&spec, &op, &observed(0, &[], &[]));
    apply(&mut op, &step);
    assert_eq!(op.status.phase, Phase::Rolling);
    let mut order = Vec::new();
    let mut restarted: Vec<i32> = Vec::new();
    let mut now = 1_000;
    for _ in 0..3 {
        let mut step = next(&spec, &op, &observed(now, &restarted, &[]));
        if let Some(RolloutAction::RestoreLeaders { broker }) = step.action {
            // The one back and in sync gets its leaderships back before the next restarts.
            apply(&mut op, &step);
            let done = after(&op, &RolloutAction::RestoreLeaders { broker }, ActionResult::Done { millis: 1 }, now);
            apply(&mut op, &done);
            step = next(&spec, &op, &observed(now, &restarted, &[]));
        }
        let Some(RolloutAction::Restart { broker }) = step.action else { panic!("expected a restart: {:?}", step.status.message) };
        order.push(broker);
        apply(&mut op, &step);
        // Asked again while it is down: it waits, no second restart and nothing else starts.
        now += 5_000;
        let down = next(&spec, &op, &observed(now, &restarted, &[broker]));
        assert_eq!(down.action, None, "{:?}", down.status.message);
        // Back, but a partition is still catching up: no next restart yet.
        restarted.push(broker);
        let mut o = observed(now, &restarted, &[]);
        o.lagging = Seen::Known(vec!["t-0".into()]);
        let lag = next(&spec, &op, &o);
        assert_eq!(lag.action, None);
        assert!(lag.status.message.as_deref().unwrap_or("").contains("catch up"), "{:?}", lag.status.message);
        now += 5_000;
    }
    assert_eq!(order, vec![1, 2, 3], "broker 3, the controller, last");
    let last = next(&spec, &op, &observed(now, &restarted, &[]));
    assert_eq!(last.action, Some(RolloutAction::RestoreLeaders { broker: 3 }));
    apply(&mut op, &last);
    let restored = after(&op, &RolloutAction::RestoreLeaders { broker: 3 }, ActionResult::Done { millis: 1 }, now);
    apply(&mut op, &restored);
    let done = next(&spec, &op, &observed(now, &restarted, &[]));
    assert_eq!(done.status.phase, Phase::Succeeded, "{:?}", done.status.message);
    assert_eq!(done.status.roll.as_ref().map(|r| r.restarted.clone()), Some(vec![1, 2, 3]));
}

#[test]
fn a_missing_broker_or_a_finding_pauses_the_next_restart_and_a_replaced_one_counts() {
    let spec = RolloutSpec { changes: Vec::new(), restart: true, reason: None };
    let mut op = op(&spec, Phase::Rolling);
    let step = next(&spec, &op, &observed(0, &[], &[]));
    apply(&mut op, &step);
    assert_eq!(op.status.roll.as_ref().and_then(|r| r.current), Some(1));
    // Broker 1 back and in sync: its leaderships go back to it.
    let step = next(&spec, &op, &observed(5_000, &[1], &[2]));
    assert_eq!(step.action, Some(RolloutAction::RestoreLeaders { broker: 1 }));
    apply(&mut op, &step);
    let step = after(&op, &RolloutAction::RestoreLeaders { broker: 1 }, ActionResult::Done { millis: 1 }, 5_000);
    apply(&mut op, &step);
    // Broker 2 killed meanwhile: the roll holds, naming it.
    let step = next(&spec, &op, &observed(5_000, &[1], &[2]));
    assert_eq!(step.action, None);
    let msg = step.status.message.clone().unwrap_or_default();
    assert!(msg.starts_with("paused:") && msg.contains("broker 2 not registered"), "{msg}");
    apply(&mut op, &step);
    // A broker killed -9 stays registered until its session expires: not answering holds it.
    let mut o = observed(5_500, &[1], &[]);
    o.unreachable = Seen::Known(vec![2]);
    let held = next(&spec, &op, &o);
    assert_eq!(held.action, None);
    assert!(held.status.message.as_deref().unwrap_or("").contains("not answering"), "{:?}", held.status.message);
    // A finding holds it too.
    let mut o = observed(6_000, &[1], &[]);
    o.health = Seen::Known(Some("1 under-replicated partition".into()));
    assert_eq!(next(&spec, &op, &o).action, None);
    o.health = Seen::Unknown("healthcheck did not answer".into());
    assert_eq!(next(&spec, &op, &o).action, None, "unknown health is no go-ahead");
    // Broker 2's host was replaced: it registered anew, with the new properties; it counts.
    let step = next(&spec, &op, &observed(7_000, &[1, 2], &[]));
    assert_eq!(step.action, Some(RolloutAction::Restart { broker: 3 }));
    assert_eq!(step.status.roll.as_ref().map(|r| r.restarted.clone()), Some(vec![1, 2]));
    assert_eq!(step.status.roll.as_ref().and_then(|r| r.paused_by.clone()), None);
}

#[test]
fn a_broker_lost_while_another_restarts_is_named_as_what_the_roll_waits_for() {
    let spec = RolloutSpec { changes: Vec::new(), restart: true, reason: None };
    let mut op = op(&spec, Phase::Rolling);
    let step = next(&spec, &op, &observed(0, &[], &[]));
    apply(&mut op, &step);
    // Broker 1 back, broker 2 gone meanwhile: its replicas cannot catch up.
    let mut o = observed(5_000, &[1], &[2]);
    o.lagging = Seen::Known(vec!["t-0".into()]);
    let step = next(&spec, &op, &o);
    assert_eq!(step.action, None);
    assert_eq!(step.status.roll.as_ref().and_then(|r| r.paused_by.clone()).as_deref(), Some("broker 2 not registered"));
    assert!(step.status.message.as_deref().unwrap_or("").starts_with("paused:"), "{:?}", step.status.message);
}

#[test]
fn a_restart_not_taken_is_asked_again_and_a_restarting_host_is_not_replaced() {
    let spec = RolloutSpec { changes: Vec::new(), restart: true, reason: None };
    let mut op = op(&spec, Phase::Rolling);
    let step = next(&spec, &op, &observed(0, &[], &[]));
    apply(&mut op, &step);
    let ops = vec![op.clone()];
    assert_eq!(restarting(&ops, "blue", 1_000).get(&1).map(String::as_str), Some("rollout-blue-1"));
    assert!(restarting(&ops, "blue", RESTARTING_HOLD_MS + 1).is_empty(), "held for a bounded while only");
    // Still registered as before long after the request (a crash before the call): asked again.
    let step = next(&spec, &op, &observed(RESTART_AGAIN_REGISTERED_MS - 1, &[], &[]));
    assert_eq!(step.action, None);
    let step = next(&spec, &op, &observed(RESTART_AGAIN_REGISTERED_MS, &[], &[]));
    assert_eq!(step.action, Some(RolloutAction::Restart { broker: 1 }));
    apply(&mut op, &step);
    // Absent (booting, recovering its logs): not asked again before the absent wait, then once.
    let step = next(&spec, &op, &observed(RESTART_AGAIN_ABSENT_MS - 1, &[], &[1]));
    assert_eq!(step.action, None, "{:?}", step.status.message);
    // A broker that never comes back fails the roll, naming it: no restart loop.
    let step = next(&spec, &op, &observed(BROKER_DEADLINE_MS, &[], &[1]));
    assert_eq!(step.status.phase, Phase::Failed);
    assert!(step.status.message.as_deref().unwrap_or("").contains("broker 1"), "{:?}", step.status.message);
}

#[test]
fn partitions_no_order_can_protect_are_named_when_the_roll_begins() {
    let spec = RolloutSpec { changes: Vec::new(), restart: true, reason: None };
    let op = op(&spec, Phase::Rolling);
    let mut o = observed(0, &[], &[]);
    o.unprotected = Seen::Known(vec!["t-0 (RF 2, min ISR 2)".into()]);
    let step = next(&spec, &op, &o);
    let roll = step.status.roll.clone().unwrap_or_default();
    assert_eq!((roll.unprotected_count, roll.unprotected), (1, vec!["t-0 (RF 2, min ISR 2)".to_string()]));
}

#[test]
fn the_roll_begins_only_with_every_broker_registered() {
    let spec = RolloutSpec { changes: Vec::new(), restart: true, reason: None };
    let op = op(&spec, Phase::Rolling);
    let step = next(&spec, &op, &observed(0, &[], &[2]));
    assert_eq!(step.action, None);
    assert!(step.status.roll.as_ref().is_none_or(|r| r.registrations.is_empty()), "no snapshot without broker 2");
    let mut o = observed(0, &[], &[1, 2, 3]);
    o.declared = Seen::Known(3);
    assert_eq!(next(&spec, &op, &o).status.phase, Phase::Rolling, "an empty listing is no finished roll");
}

#[test]
fn cancel_stops_before_the_next_broker() {
    let spec = RolloutSpec { changes: Vec::new(), restart: true, reason: None };
    let mut op = op(&spec, Phase::Rolling);
    let step = next(&spec, &op, &observed(0, &[], &[]));
    apply(&mut op, &step);
    op.cancel_requested = true;
    // Broker 1 is down: the cancel waits for it to come back, in sync, leading again.
    let step = next(&spec, &op, &observed(3_000, &[], &[1]));
    assert_eq!((step.status.phase, step.action.clone()), (Phase::Rolling, None));
    let step = next(&spec, &op, &observed(5_000, &[1], &[]));
    assert_eq!((step.status.phase, step.action.clone()), (Phase::Rolling, Some(RolloutAction::RestoreLeaders { broker: 1 })));
    apply(&mut op, &step);
    let step = after(&op, &RolloutAction::RestoreLeaders { broker: 1 }, ActionResult::Done { millis: 1 }, 5_000);
    apply(&mut op, &step);
    let step = next(&spec, &op, &observed(5_000, &[1], &[]));
    assert_eq!((step.status.phase, step.action), (Phase::Cancelled, None));
    let roll = step.status.roll.clone().unwrap_or_default();
    assert_eq!((roll.restarted, roll.current), (vec![1], None));
    assert!(step.status.message.as_deref().unwrap_or("").contains("1 of 3"), "{:?}", step.status.message);
}

#[test]
fn thread_pools_grow_at_most_double_and_shrink_at_most_half_per_step() {
    use super::live::thread_pool_step;
    assert_eq!(thread_pool_step(2, 6), 4);
    assert_eq!(thread_pool_step(4, 6), 6);
    assert_eq!(thread_pool_step(8, 2), 4);
    assert_eq!(thread_pool_step(3, 2), 2);
    assert_eq!(thread_pool_step(5, 5), 5);
}
