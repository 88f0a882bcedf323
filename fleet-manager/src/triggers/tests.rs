use fleet_api::route::{Condition, FailoverPolicy, RouteState, Signal, TriggerState};

use super::*;

fn policy(for_ms: u64) -> FailoverPolicy {
    FailoverPolicy {
        recommend: false,
        to: None,
        conditions: vec![Condition { signal: Signal::UnderMinIsrPartitions, above: true, threshold: 0.0, for_ms }],
        cool_down_ms: 60_000,
        auto_fallback_after_ms: None,
        auditor: None,
    }
}

fn ctx(now_ms: i64) -> Context {
    Context { now_ms, phase: RouteState::Normal, cluster: "blue".into(), ..Context::default() }
}

/// Runs readings one second apart from t=0; returns each decision and every event.
fn run(p: &FailoverPolicy, readings: &[Result<f64, String>], start: TriggerState, context: impl Fn(i64) -> Context) -> (Vec<Decision>, Vec<Event>, TriggerState) {
    let mut state = start;
    let mut decisions = Vec::new();
    let mut events = Vec::new();
    for (i, r) in readings.iter().enumerate() {
        let (next, d, e) = evaluate(p, &state, std::slice::from_ref(r), &context(i as i64 * 1000));
        state = next;
        decisions.push(d);
        events.extend(e);
    }
    (decisions, events, state)
}

fn fired(decisions: &[Decision]) -> Vec<usize> {
    decisions.iter().enumerate().filter(|(_, d)| matches!(d, Decision::Failover(_))).map(|(i, _)| i).collect()
}

#[test]
fn fires_once_the_condition_held_for_its_whole_duration() {
    let readings: Vec<Result<f64, String>> = [0.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0].iter().map(|v| Ok(*v)).collect();
    let (decisions, events, state) = run(&policy(5_000), &readings, TriggerState::default(), ctx);
    assert_eq!(fired(&decisions), vec![6], "held from t=1 s, fires at t=6 s: {decisions:?}");
    assert!(events.iter().any(|(a, _)| *a == "trigger-condition-holding"));
    assert!(events.iter().any(|(a, m)| *a == "trigger-fired" && m.contains("underMinIsrPartitions")));
    assert_eq!(state.last_fired_ms, Some(6_000));
}

#[test]
fn an_unknown_signal_never_fires_and_restarts_the_duration() {
    let mut readings: Vec<Result<f64, String>> = vec![Ok(3.0), Ok(3.0), Ok(3.0)];
    readings.extend((0..20).map(|_| Err("healthcheck: connection refused".to_string())));
    readings.extend([Ok(3.0), Ok(3.0)]);
    let (decisions, events, _) = run(&policy(5_000), &readings, TriggerState::default(), ctx);
    assert!(fired(&decisions).is_empty(), "{decisions:?}");
    let unknown: Vec<_> = events.iter().filter(|(a, _)| *a == "trigger-signal-unknown").collect();
    assert_eq!(unknown.len(), 1, "journalled once, when it became unknown: {events:?}");
    assert!(unknown[0].1.contains("no longer counts"));
}

#[test]
fn a_flapping_broker_shorter_than_the_duration_never_fires() {
    // Out 4 s, back 2 s, out 4 s, back...
    let readings: Vec<Result<f64, String>> = (0..30).map(|i| Ok(if i % 6 < 4 { 1.0 } else { 0.0 })).collect();
    let (decisions, events, _) = run(&policy(5_000), &readings, TriggerState::default(), ctx);
    assert!(fired(&decisions).is_empty(), "{decisions:?}");
    assert!(events.iter().filter(|(a, _)| *a == "trigger-condition-cleared").count() >= 4);
}

#[test]
fn cool_down_hold_and_operations_suppress_and_say_so_once() {
    let held: Vec<Result<f64, String>> = (0..10).map(|_| Ok(2.0)).collect();
    let after_fire = TriggerState { last_fired_ms: Some(-5_000), ..TriggerState::default() };
    let (decisions, events, _) = run(&policy(2_000), &held, after_fire, ctx);
    assert!(fired(&decisions).is_empty());
    assert!(decisions.iter().any(|d| matches!(d, Decision::Suppressed(why, _) if why.starts_with("cool-down"))));
    assert_eq!(events.iter().filter(|(a, _)| *a == "trigger-suppressed").count(), 1, "{events:?}");

    let (decisions, _, _) = run(&policy(2_000), &held, TriggerState::default(), |t| Context { hold: Some("maintenance".into()), ..ctx(t) });
    assert!(decisions.iter().any(|d| matches!(d, Decision::Suppressed(why, _) if why.contains("maintenance"))) && fired(&decisions).is_empty());
    let (decisions, _, _) = run(&policy(2_000), &held, TriggerState::default(), |t| Context { operation: Some("scale-up-blue-1".into()), ..ctx(t) });
    assert!(fired(&decisions).is_empty());
    // Moving already: the route is not failed over twice.
    let (decisions, _, _) = run(&policy(2_000), &held, TriggerState::default(), |t| Context { phase: RouteState::FailingOver, ..ctx(t) });
    assert!(fired(&decisions).is_empty());
}

#[test]
fn recommend_mode_only_says_what_it_would_do() {
    let mut p = policy(2_000);
    p.recommend = true;
    let held: Vec<Result<f64, String>> = (0..5).map(|_| Ok(2.0)).collect();
    let (decisions, events, _) = run(&p, &held, TriggerState::default(), ctx);
    assert!(fired(&decisions).is_empty());
    assert_eq!(decisions.iter().filter(|d| matches!(d, Decision::Recommend(_))).count(), 1, "then cooled down: {decisions:?}");
    assert!(events.iter().any(|(a, m)| *a == "trigger-recommended" && m.contains("would fail over")));
}

#[test]
fn falls_back_once_the_standby_stayed_healthy() {
    let mut p = policy(2_000);
    p.auto_fallback_after_ms = Some(3_000);
    let calm: Vec<Result<f64, String>> = (0..8).map(|_| Ok(0.0)).collect();
    // Healthy, then a blip at t=2 s, then healthy from t=3 s: falls back at t=6 s.
    let (decisions, _, _) = run(&p, &calm, TriggerState { last_fired_ms: Some(-100_000), ..TriggerState::default() }, |t| Context {
        phase: RouteState::FailedOver,
        cluster: "blue-1".into(),
        standby_health: Some(if t == 2_000 { Ok(false) } else { Ok(true) }),
        ..ctx(t)
    });
    let fallbacks: Vec<usize> = decisions.iter().enumerate().filter(|(_, d)| matches!(d, Decision::Fallback(_))).map(|(i, _)| i).collect();
    assert_eq!(fallbacks, vec![6], "{decisions:?}");
}

#[test]
fn policies_are_checked_field_by_field() {
    use fleet_api::spec::{DeclaredCondition, DeclaredFailoverPolicy};
    let good = DeclaredCondition { signal: "offlinePartitions".into(), above: Some(0.0), below: None, for_: "30s".into() };
    let policy = |conditions: Vec<DeclaredCondition>| DeclaredFailoverPolicy { mode: None, to: None, conditions, cool_down: None, auto_fallback_after: None, auditor: None };
    assert!(policy(vec![good.clone()]).resolve().is_ok());
    let cases = [
        (DeclaredCondition { signal: "cpu".into(), ..good.clone() }, "spec.failover.conditions[0].signal"),
        (DeclaredCondition { for_: "0s".into(), ..good.clone() }, "spec.failover.conditions[0].for"),
        (DeclaredCondition { for_: "-5s".into(), ..good.clone() }, "spec.failover.conditions[0].for"),
        (DeclaredCondition { above: None, below: Some(1.5), signal: "produceAvailability".into(), ..good.clone() }, "spec.failover.conditions[0].below"),
        (DeclaredCondition { above: Some(1.0), below: Some(2.0), ..good.clone() }, "spec.failover.conditions[0].above"),
    ];
    for (c, field) in cases {
        let mut p = policy(vec![c]);
        p.auditor = Some("http://auditor:8081".into());
        assert_eq!(p.resolve().expect_err("refused").field, field);
    }
    assert_eq!(policy(vec![]).resolve().expect_err("no condition").field, "spec.failover.conditions");
    let mut p = policy(vec![good.clone()]);
    p.mode = Some("sometimes".into());
    assert_eq!(p.resolve().expect_err("mode").field, "spec.failover.mode");
    let p = policy(vec![DeclaredCondition { signal: "produceAvailability".into(), above: None, below: Some(0.99), for_: "1m".into() }]);
    assert_eq!(p.resolve().expect_err("auditor needed").field, "spec.failover.conditions[0].signal");
}

#[test]
fn auditor_figures_become_readings_and_stale_ones_are_unknown() {
    let figures = serde_json::json!([{ "cluster": "blue", "updated_ms": 10_000, "brokers": [
        { "broker": 1, "produce_availability": 1.0, "consume_availability": 1.0, "records_lost": 0, "latency_ms_p99": 12.0 },
        { "broker": 2, "produce_availability": 0.5, "consume_availability": 0.9, "records_lost": 3, "latency_ms_p99": 40.0 }
    ]}]);
    assert_eq!(signals::auditor_value(Signal::ProduceAvailability, "blue", &figures, 12_000), Ok(0.5));
    assert_eq!(signals::auditor_value(Signal::LostRecords, "blue", &figures, 12_000), Ok(3.0));
    assert_eq!(signals::auditor_value(Signal::LatencyP99Ms, "blue", &figures, 12_000), Ok(40.0));
    assert!(signals::auditor_value(Signal::ProduceAvailability, "blue", &figures, 100_000).is_err(), "stale");
    assert!(signals::auditor_value(Signal::ProduceAvailability, "green", &figures, 12_000).is_err(), "not audited");
}
