use std::collections::BTreeMap;

use fleet_api::client::{ClientCounters, ClientReport, ClientRole, ClientView, ConsumerState, ProducerState};
use fleet_api::operation::{BuildSpec, FailoverSpec, Operation, OperationSpec, OperationStatus, Phase};
use fleet_api::route::{Retain, RouteState, RouteStatus, CANARY_TOPIC};
use fleet_api::spec::{Declared, DeclaredClusterSpec, DeclaredSpec, DeclaredTopicSpec};

use super::*;

fn cluster_spec(brokers: i64) -> DeclaredClusterSpec {
    DeclaredClusterSpec {
        kafka_version: "3.9".into(),
        brokers,
        instance_type: None,
        availability_zones: vec!["a".into(), "b".into(), "c".into()],
        priority_class: Some("high".into()),
        broker_config: BTreeMap::new(),
        provider: None,
        immutable: None,
        controllers: None,
        controller_instance_type: None,
        combined: None,
    }
}

fn topic(cluster: &str, name: &str) -> Declared {
    Declared {
        name: name.into(),
        generation: Some(1),
        labels: BTreeMap::new(),
        spec: DeclaredSpec::Topic(DeclaredTopicSpec {
            cluster: cluster.into(),
            partitions: 6,
            replication_factor: Some(3),
            retention_hours: None,
            priority_class: None,
            configs: BTreeMap::new(),
            keyed: Some(true),
        }),
    }
}

fn spec(fallback: bool, build: bool) -> FailoverSpec {
    FailoverSpec {
        route: "events".into(),
        from: "blue".into(),
        to: (!build).then(|| "green".into()),
        build: build.then(|| BuildSpec { source: "blue".into(), brokers: 4 }),
        deadline_ms: 10_000,
        reason: "test".into(),
        retain: if fallback { Retain::Teardown } else { Retain::Standby },
        replaces: None,
        prior: RouteStatus { cluster: "blue".into(), ..Default::default() },
    }
}

fn op(s: &FailoverSpec, fallback: bool) -> Operation {
    let spec = if fallback { OperationSpec::Fallback(s.clone()) } else { OperationSpec::Failover(s.clone()) };
    Operation::new("failover-blue-1", s.from.clone(), spec, 0, "test")
}

fn observed(now_ms: i64) -> FailoverObserved {
    FailoverObserved {
        now_ms,
        route: Seen::Known(Some("blue".into())),
        clusters: Seen::Known(BTreeMap::from([("blue".to_string(), (cluster_spec(3), false)), ("green".to_string(), (cluster_spec(3), false))])),
        source_topics: Seen::Known(vec![topic("blue", "orders"), topic("blue", "clicks")]),
        ..Default::default()
    }
}

fn client(instance: &str, role: ClientRole, cluster: &str, drained_from: Option<&str>) -> ClientView {
    ClientView { credential: None,
        report: ClientReport {
            instance: instance.into(),
            route: "events".into(),
            role,
            generation: 5,
            cluster: cluster.into(),
            counters: ClientCounters::default(),
            consumer: (role == ClientRole::Consumer).then(|| ConsumerState {
                group: "g".into(),
                lag: 0,
                drained: drained_from.is_some(),
                drained_cluster: drained_from.map(str::to_string),
                draining: None,
            }),
            producer: (role == ClientRole::Producer).then(ProducerState::default),
        },
        reported_ms: 0,
        expires_ms: 0,
    }
}

fn advance(o: &mut Operation, st: OperationStatus) {
    o.status = st;
}

#[test]
fn a_build_declares_one_immutable_clone_named_after_its_source() {
    let s = spec(false, true);
    let mut o = op(&s, false);
    let (st, effects, action) = next(&o, &s, &observed(1), &FailoverSettings::default());
    assert_eq!(st.phase, Phase::Building);
    assert_eq!(st.target.as_deref(), Some("blue-1"));
    assert!(action.is_none());
    assert_eq!(effects.declare.len(), 1, "exactly one cluster declared, in the write that enters Building");
    let DeclaredSpec::KafkaCluster(c) = &effects.declare[0].spec else { panic!("a cluster") };
    assert_eq!((c.brokers, c.immutable, c.priority_class.as_deref()), (4, Some(true), Some("high")));
    assert_eq!(effects.route_status.as_ref().map(|(_, r)| r.phase), Some(RouteState::FailingOver));
    advance(&mut o, st);

    // Building: nothing more is declared until the clone converged.
    let mut obs = observed(2);
    obs.target = Seen::Known(TargetState { converged: false, live_brokers: 2, desired_brokers: 4, topics: vec![], step_error: None });
    let (st, effects, _) = next(&o, &s, &obs, &FailoverSettings::default());
    assert_eq!(st.phase, Phase::Building);
    assert!(effects.declare.is_empty());
    obs.target = Seen::Known(TargetState { converged: true, live_brokers: 4, desired_brokers: 4, topics: vec![], step_error: None });
    let (st, effects, _) = next(&o, &s, &obs, &FailoverSettings::default());
    assert_eq!(st.phase, Phase::Preparing);
    let names: Vec<&str> = effects.declare.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["orders", "clicks", CANARY_TOPIC]);
    for d in &effects.declare {
        let DeclaredSpec::Topic(t) = &d.spec else { panic!("topics") };
        assert_eq!(t.cluster, "blue-1");
    }
}

#[test]
fn names_skip_taken_ones_and_never_nest() {
    let mut declared: BTreeMap<String, (DeclaredClusterSpec, bool)> = BTreeMap::new();
    assert_eq!(build_name("blue", &declared), "blue-1");
    declared.insert("blue-1".into(), (cluster_spec(3), false));
    assert_eq!(build_name("blue", &declared), "blue-2");
    assert_eq!(build_name("blue-1", &declared), "blue-2");
    let long = "a".repeat(63);
    assert!(build_name(&long, &declared).len() <= 63);
}

#[test]
fn verifying_waits_for_health_then_the_canary_moves_the_route() {
    let s = spec(false, false);
    let mut o = op(&s, false);
    let (st, effects, _) = next(&o, &s, &observed(1), &FailoverSettings::default());
    assert_eq!(st.phase, Phase::Preparing, "a named standby is not built");
    assert_eq!(effects.declare.len(), 3);
    advance(&mut o, st);
    let mut obs = observed(2);
    obs.target = Seen::Known(TargetState { converged: true, live_brokers: 3, desired_brokers: 3, topics: vec!["orders".into(), "clicks".into()], step_error: None });
    let (st, _, _) = next(&o, &s, &obs, &FailoverSettings::default());
    assert_eq!(st.phase, Phase::Preparing, "the canary topic is still missing");
    obs.target = Seen::Known(TargetState { converged: true, live_brokers: 3, desired_brokers: 3, topics: vec!["orders".into(), "clicks".into(), CANARY_TOPIC.into()], step_error: None });
    let (st, _, _) = next(&o, &s, &obs, &FailoverSettings::default());
    assert_eq!(st.phase, Phase::Verifying);
    advance(&mut o, st);

    obs.health = Seen::Known(Err("broker 2 is not registered".into()));
    let (st, _, action) = next(&o, &s, &obs, &FailoverSettings::default());
    assert_eq!((st.phase, action), (Phase::Verifying, None));
    assert!(st.message.unwrap_or_default().contains("unhealthy"));
    obs.health = Seen::Unknown("timeout".into());
    assert_eq!(next(&o, &s, &obs, &FailoverSettings::default()).2, None, "unknown health is not healthy");
    obs.health = Seen::Known(Ok(()));
    assert_eq!(next(&o, &s, &obs, &FailoverSettings::default()).2, Some(Action::Canary { cluster: "green".into() }));

    let (st, effects) = after_canary(&o, &s, Err("timeout".into()), 3);
    assert_eq!(st.phase, Phase::Verifying);
    assert!(effects.route_status.is_none(), "a failed canary moves nothing");
    let (st, effects) = after_canary(&o, &s, Ok(120), 3);
    assert_eq!(st.phase, Phase::SwitchingProducers);
    assert_eq!(effects.route_status.as_ref().map(|(r, s)| (r.as_str(), s.cluster.as_str())), Some(("events", "green")));
    assert!(effects.unless_cancelled, "the switch is written only if no cancel came first");
    assert_eq!(st.canary_millis, Some(120));

    // Past the verify deadline: failed, the route's status restored.
    let mut late = observed(FailoverSettings::default().verify_timeout_ms + 10);
    late.health = Seen::Known(Err("sick".into()));
    let (st, effects, _) = next(&o, &s, &late, &FailoverSettings::default());
    assert_eq!(st.phase, Phase::Failed);
    assert_eq!(effects.route_status.map(|(_, r)| (r.phase, r.cluster)), Some((RouteState::Normal, "blue".into())));
}

#[test]
fn stragglers_are_named_at_the_deadline_and_do_not_hold_the_operation() {
    let s = spec(false, false);
    let mut o = op(&s, false);
    let mut st = OperationStatus::new(0);
    st.target = Some("green".into());
    st.switched_at_ms = Some(1_000);
    st.enter(Phase::SwitchingProducers, 1_000, None);
    advance(&mut o, st);
    let mut obs = observed(2_000);
    obs.clients = Seen::Known(vec![client("p1", ClientRole::Producer, "green", None), client("p2", ClientRole::Producer, "blue", None)]);
    let (st, _, _) = next(&o, &s, &obs, &FailoverSettings::default());
    assert_eq!(st.phase, Phase::SwitchingProducers);
    assert!(st.message.unwrap_or_default().contains("p2"));
    obs.now_ms = 11_000;
    let (st, _, _) = next(&o, &s, &obs, &FailoverSettings::default());
    assert_eq!(st.phase, Phase::SwitchingProducers, "who else writes to blue is not known yet");
    obs.sharing = Seen::Known(vec![]);
    let (st, effects, _) = next(&o, &s, &obs, &FailoverSettings::default());
    assert_eq!(st.phase, Phase::Sealing);
    assert_eq!(st.stragglers, vec!["producer p2".to_string()]);
    let (_, rs) = effects.route_status.expect("the seal is written");
    assert_eq!(rs.sealed, vec!["blue".to_string()], "the reconciler seals blue for the route");
    assert_eq!(rs.switch, Some(SwitchState { from: "blue".into(), sealed: false }), "consumers wait for the seal");
    advance(&mut o, st);
    // Sealing: until every partition leader refuses the route's writes.
    obs.seal = Seen::Known(SealState { refusing: 10, open: vec!["orders-3".into()], unknown: vec![] });
    let (st, effects, _) = next(&o, &s, &obs, &FailoverSettings::default());
    assert_eq!(st.phase, Phase::Sealing);
    assert!(st.message.as_deref().is_some_and(|m| m.contains("orders-3")), "{:?}", st.message);
    assert!(effects.route_status.is_none());
    obs.seal = Seen::Known(SealState { refusing: 12, open: vec![], unknown: vec![] });
    let (st, effects, _) = next(&o, &s, &obs, &FailoverSettings::default());
    assert_eq!(st.phase, Phase::DrainingConsumers);
    let (_, rs) = effects.route_status.expect("the binding says sealed");
    assert_eq!(rs.switch, Some(SwitchState { from: "blue".into(), sealed: true }));
    advance(&mut o, st);

    // Consumers: drained the old cluster and on the new one.
    obs.clients = Seen::Known(vec![client("c1", ClientRole::Consumer, "green", Some("blue")), client("c2", ClientRole::Consumer, "green", None)]);
    let (st, _, _) = next(&o, &s, &obs, &FailoverSettings::default());
    assert_eq!(st.phase, Phase::DrainingConsumers);
    obs.clients = Seen::Known(vec![client("c1", ClientRole::Consumer, "green", Some("blue")), client("c2", ClientRole::Consumer, "green", Some("blue"))]);
    let (st, effects, _) = next(&o, &s, &obs, &FailoverSettings::default());
    assert_eq!(st.phase, Phase::Succeeded);
    let (_, rs) = effects.route_status.expect("route status");
    assert_eq!((rs.phase, rs.cluster.as_str(), rs.standby.as_deref()), (RouteState::FailedOver, "green", Some("blue")));
    assert_eq!((rs.switch, rs.sealed), (None, vec!["blue".to_string()]), "the switch is over; blue stays sealed for the route");
    assert!(effects.delete_clusters.is_empty(), "a failover keeps what it left as the standby");
}

fn switching(s: &FailoverSpec) -> Operation {
    let mut o = op(s, false);
    let mut st = OperationStatus::new(0);
    st.target = Some("green".into());
    st.switched_at_ms = Some(1_000);
    st.enter(Phase::SwitchingProducers, 1_000, None);
    o.status = st;
    o
}

#[test]
fn a_producer_on_the_new_cluster_still_delivering_to_the_old_one_holds_the_seal() {
    let s = spec(false, false);
    let o = switching(&s);
    let mut obs = observed(2_000);
    obs.sharing = Seen::Known(vec![]);
    let mut p = client("p1", ClientRole::Producer, "green", None);
    p.report.producer = Some(ProducerState { draining: vec!["blue".into()], warm: None });
    obs.clients = Seen::Known(vec![p.clone()]);
    let (st, _, _) = next(&o, &s, &obs, &FailoverSettings::default());
    assert_eq!(st.phase, Phase::SwitchingProducers, "its link to blue still holds records");
    p.report.producer = Some(ProducerState::default());
    obs.clients = Seen::Known(vec![p]);
    let (st, _, _) = next(&o, &s, &obs, &FailoverSettings::default());
    assert_eq!(st.phase, Phase::Sealing);
    assert!(st.stragglers.is_empty());
}

#[test]
fn a_cluster_other_routes_write_to_is_not_sealed() {
    let s = spec(false, false);
    let o = switching(&s);
    let mut obs = observed(2_000);
    obs.clients = Seen::Known(vec![client("p1", ClientRole::Producer, "green", None)]);
    obs.sharing = Seen::Known(vec!["payments".into()]);
    let (st, effects, _) = next(&o, &s, &obs, &FailoverSettings::default());
    assert_eq!(st.phase, Phase::DrainingConsumers);
    assert!(st.message.as_deref().is_some_and(|m| m.contains("payments")), "{:?}", st.message);
    let (_, rs) = effects.route_status.expect("route status");
    assert!(rs.sealed.is_empty(), "nothing sealed");
    assert_eq!(rs.switch.map(|s| s.sealed), Some(true), "consumers go on");
}

#[test]
fn a_seal_not_seen_by_its_deadline_lets_consumers_go_on_and_says_so() {
    let s = spec(false, false);
    let mut o = switching(&s);
    o.status.enter(Phase::Sealing, 2_000, None);
    let settings = FailoverSettings::default();
    let mut obs = observed(3_000);
    obs.seal = Seen::Unknown("no broker of blue is registered".into());
    let (st, _, _) = next(&o, &s, &obs, &settings);
    assert_eq!(st.phase, Phase::Sealing, "unknown is not sealed");
    obs.now_ms = 2_000 + settings.seal_timeout_ms;
    let (st, effects, _) = next(&o, &s, &obs, &settings);
    assert_eq!(st.phase, Phase::DrainingConsumers);
    assert!(st.message.as_deref().is_some_and(|m| m.contains("not seen sealed") && m.contains("no broker")), "{:?}", st.message);
    assert_eq!(effects.route_status.and_then(|(_, r)| r.switch).map(|s| s.sealed), Some(true));
}

#[test]
fn verifying_warms_clients_and_a_target_sealed_before_is_opened_first() {
    let mut s = spec(true, false);
    s.prior = RouteStatus { phase: RouteState::FailedOver, cluster: "blue".into(), standby: Some("green".into()), sealed: vec!["green".into()], ..Default::default() };
    let mut o = op(&s, true);
    let (st, effects, _) = next(&o, &s, &observed(1), &FailoverSettings::default());
    assert_eq!(st.phase, Phase::Preparing);
    let (_, rs) = effects.route_status.expect("route status");
    assert!(rs.sealed.is_empty(), "going back to green opens it");
    advance(&mut o, st);
    let mut obs = observed(2);
    obs.target = Seen::Known(TargetState { converged: true, live_brokers: 3, desired_brokers: 3, topics: vec!["orders".into(), "clicks".into(), CANARY_TOPIC.into()], step_error: None });
    let (st, effects, _) = next(&o, &s, &obs, &FailoverSettings::default());
    assert_eq!(st.phase, Phase::Verifying);
    assert_eq!(effects.route_status.and_then(|(_, r)| r.warming).as_deref(), Some("green"), "clients build their links to green now");
    advance(&mut o, st);
    obs.health = Seen::Known(Ok(()));
    obs.seal = Seen::Known(SealState { refusing: 2, open: vec!["orders-0".into()], unknown: vec![] });
    let (st, _, action) = next(&o, &s, &obs, &FailoverSettings::default());
    assert_eq!((st.phase, action), (Phase::Verifying, None), "green still refuses writes");
    obs.seal = Seen::Known(SealState { refusing: 0, open: vec!["orders-0".into(), "orders-1".into()], unknown: vec![] });
    let (_, _, action) = next(&o, &s, &obs, &FailoverSettings::default());
    assert_eq!(action, Some(Action::Canary { cluster: "green".into() }));
    let (_, effects) = after_canary(&o, &s, Ok(5), 3);
    let (_, rs) = effects.route_status.expect("the switch");
    assert_eq!((rs.cluster.as_str(), rs.switch, rs.warming), ("green", Some(SwitchState { from: "blue".into(), sealed: false }), None));
}

#[test]
fn a_fallback_tears_down_what_it_left_when_the_route_says_so() {
    let s = spec(true, false);
    let mut o = op(&s, true);
    let mut st = OperationStatus::new(0);
    st.target = Some("green".into());
    st.enter(Phase::DrainingConsumers, 1_000, None);
    advance(&mut o, st);
    let mut obs = observed(2_000);
    obs.clients = Seen::Known(vec![]);
    let (st, effects, _) = next(&o, &s, &obs, &FailoverSettings::default());
    assert_eq!(st.phase, Phase::Succeeded);
    assert_eq!(effects.delete_clusters, vec!["blue".to_string()]);
    let (_, rs) = effects.route_status.expect("route status");
    assert_eq!((rs.phase, rs.standby), (RouteState::Normal, None));
}

#[test]
fn cancelling_a_build_tears_it_down_and_restores_the_route() {
    let s = spec(false, true);
    let mut o = op(&s, false);
    let (st, _, _) = next(&o, &s, &observed(1), &FailoverSettings::default());
    advance(&mut o, st);
    o.cancel_requested = true;
    let (st, effects, _) = next(&o, &s, &observed(2), &FailoverSettings::default());
    assert_eq!(st.phase, Phase::Cancelled);
    assert_eq!(effects.delete_clusters, vec!["blue-1".to_string()]);
    assert_eq!(effects.route_status.map(|(_, r)| r.phase), Some(RouteState::Normal));
    // After the switch it is no longer cancellable: undoing it is a fallback.
    let mut st = o.status.clone();
    st.enter(Phase::SwitchingProducers, 3, None);
    o.status = st;
    assert!(!o.cancellable());
}

#[test]
fn a_route_moved_meanwhile_fails_the_operation_before_anything_is_declared() {
    let s = spec(false, true);
    let o = op(&s, false);
    let mut obs = observed(1);
    obs.route = Seen::Known(Some("red".into()));
    let (st, effects, _) = next(&o, &s, &obs, &FailoverSettings::default());
    assert_eq!(st.phase, Phase::Failed);
    assert!(effects.declare.is_empty());
    obs.route = Seen::Unknown("store down".into());
    let (st, effects, _) = next(&o, &s, &obs, &FailoverSettings::default());
    assert_eq!(st.phase, Phase::Pending, "unknown is not gone");
    assert!(effects.declare.is_empty());
}

#[test]
fn a_rebuild_fallback_replaces_the_original_and_keeps_what_it_left_as_standby() {
    let mut s = spec(true, true);
    s.retain = Retain::Standby;
    s.from = "blue-1".into();
    s.replaces = Some("blue".into());
    s.prior = RouteStatus { phase: RouteState::FailedOver, cluster: "blue-1".into(), standby: Some("blue".into()), ..Default::default() };
    let mut o = op(&s, true);
    let mut obs = observed(1);
    obs.route = Seen::Known(Some("blue-1".into()));
    obs.clusters = Seen::Known(BTreeMap::from([("blue".to_string(), (cluster_spec(3), false)), ("blue-1".to_string(), (cluster_spec(3), false))]));
    let (st, effects, _) = next(&o, &s, &obs, &FailoverSettings::default());
    assert_eq!((st.phase, st.target.as_deref()), (Phase::Building, Some("blue-2")));
    assert_eq!(effects.route_status.map(|(_, r)| (r.phase, r.standby)), Some((RouteState::FallingBack, Some("blue".into()))));
    let mut st = st;
    st.enter(Phase::DrainingConsumers, 5, None);
    advance(&mut o, st);
    obs.clients = Seen::Known(vec![]);
    let (st, effects, _) = next(&o, &s, &obs, &FailoverSettings::default());
    assert_eq!(st.phase, Phase::Succeeded);
    assert_eq!(effects.delete_clusters, vec!["blue".to_string()], "the original is replaced; what the route left stays warm");
    let (_, rs) = effects.route_status.expect("route status");
    assert_eq!((rs.phase, rs.cluster.as_str(), rs.standby.as_deref()), (RouteState::Normal, "blue-2", Some("blue-1")));
}

#[test]
fn a_build_the_provider_refuses_fails_at_once_with_its_words_and_is_torn_down() {
    let s = spec(false, true);
    let mut o = op(&s, false);
    let (st, _, _) = next(&o, &s, &observed(1), &FailoverSettings::default());
    advance(&mut o, st);
    // A retryable provider error is shown while it waits.
    let mut obs = observed(2);
    let limit = "10 local hosts are running, the limit (--local-max-hosts) is 10".to_string();
    obs.target = Seen::Known(TargetState { converged: false, live_brokers: 0, desired_brokers: 4, topics: vec![], step_error: Some((limit.clone(), true)) });
    let (st, effects, _) = next(&o, &s, &obs, &FailoverSettings::default());
    assert_eq!(st.phase, Phase::Building);
    assert!(st.message.as_deref().is_some_and(|m| m.contains(&limit)), "the provider's error in the status at once: {st:?}");
    assert!(effects.delete_clusters.is_empty());
    // A terminal one fails the operation at once, tears the build down, restores the route.
    obs.target = Seen::Known(TargetState { converged: false, live_brokers: 0, desired_brokers: 4, topics: vec![], step_error: Some((limit.clone(), false)) });
    let (st, effects, _) = next(&o, &s, &obs, &FailoverSettings::default());
    assert_eq!(st.phase, Phase::Failed);
    assert!(st.message.as_deref().is_some_and(|m| m.contains(&limit) && m.contains("blue-1 is torn down")), "{st:?}");
    assert_eq!(effects.delete_clusters, vec!["blue-1".to_string()]);
    assert_eq!(effects.route_status.map(|(_, r)| (r.cluster, r.operation)), Some(("blue".to_string(), None)));
}

#[test]
fn a_build_that_does_not_converge_in_time_fails_naming_the_last_wait_and_is_torn_down() {
    let s = spec(false, true);
    let mut o = op(&s, false);
    let settings = FailoverSettings { build_timeout_ms: 60_000, ..FailoverSettings::default() };
    let (st, _, _) = next(&o, &s, &observed(1), &settings);
    advance(&mut o, st);
    let mut obs = observed(30_000);
    obs.target = Seen::Known(TargetState { converged: false, live_brokers: 1, desired_brokers: 4, topics: vec![], step_error: None });
    let (st, _, _) = next(&o, &s, &obs, &settings);
    assert_eq!(st.phase, Phase::Building, "within the bound");
    advance(&mut o, st);
    let mut late = obs.clone();
    late.now_ms = 61_002;
    let (st, effects, _) = next(&o, &s, &late, &settings);
    assert_eq!(st.phase, Phase::Failed);
    assert!(st.message.as_deref().is_some_and(|m| m.contains("did not converge within 60s") && m.contains("1 of 4 brokers live")), "{st:?}");
    assert_eq!(effects.delete_clusters, vec!["blue-1".to_string()]);
}

#[test]
fn a_fresh_build_named_like_a_cluster_the_route_once_sealed_starts_open() {
    // The route left blue-1 sealed earlier; blue-1 was torn down, and the next build takes the name.
    let mut s = spec(false, true);
    s.prior.sealed = vec!["blue-1".into(), "red".into()];
    let mut o = op(&s, false);
    let (st, effects, _) = next(&o, &s, &observed(1), &FailoverSettings::default());
    assert_eq!(st.target.as_deref(), Some("blue-1"));
    let (_, rs) = effects.route_status.expect("route status");
    assert_eq!(rs.sealed, vec!["red".to_string()], "the build is not sealed by the reconciler");
    advance(&mut o, st);
    // Verifying does not wait for an opening that nothing would do.
    let mut st = o.status.clone();
    st.enter(Phase::Verifying, 2, None);
    o.status = st;
    let mut obs = observed(3);
    obs.health = Seen::Known(Ok(()));
    let (_, _, action) = next(&o, &s, &obs, &FailoverSettings::default());
    assert!(matches!(action, Some(Action::Canary { .. })), "straight to the canary: {action:?}");
}
