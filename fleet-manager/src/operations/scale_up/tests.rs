use super::*;
use super::super::machine::Step;
use super::super::Pause;
use crate::store::OperationEffects;
use crate::spec::ProviderKind;
use fleet_api::operation::OperationSpec;

fn cluster(brokers: u32) -> ClusterSpec {
    ClusterSpec {
        name: "blue".into(),
        kafka_version: "3.9".into(),
        brokers,
        instance_type: "r5.xlarge".into(),
        availability_zones: vec!["zone-a".into(), "zone-b".into(), "zone-c".into()],
        priority_class: PriorityClass::Medium,
        broker_config: BTreeMap::new(),
        provider: ProviderKind::Local,
        controllers: 0,
        controller_instance_type: String::new(),
        combined: false,
    }
}

fn topic(name: &str, keyed: bool, class: PriorityClass) -> TopicSpec {
    TopicSpec {
        cluster: "blue".into(),
        name: name.into(),
        partitions: 6,
        replication_factor: 2,
        priority_class: class,
        configs: BTreeMap::new(),
        keyed,
    }
}

fn topics() -> Vec<TopicSpec> {
    vec![
        topic("clicks", false, PriorityClass::Medium),
        topic("orders", true, PriorityClass::High),
        topic("traces", false, PriorityClass::Low),
    ]
}

fn request(brokers: i64) -> ScaleUpRequest {
    ScaleUpRequest { cluster: "blue".into(), brokers, ..ScaleUpRequest::default() }
}

#[test]
fn bad_requests_name_the_field() {
    let c = cluster(3);
    let cases: Vec<(ScaleUpRequest, &str)> = vec![
        (request(3), "brokers"),
        (request(2), "brokers"),
        (request(1000), "brokers"),
        (ScaleUpRequest { topics: Some(vec!["nope".into()]), ..request(6) }, "topics"),
        (ScaleUpRequest { topics: Some(vec!["orders".into()]), ..request(6) }, "topics"),
        (ScaleUpRequest { partitions_per_topic: Some(0), ..request(6) }, "partitionsPerTopic"),
        (ScaleUpRequest { class: Some("urgent".into()), ..request(6) }, "class"),
    ];
    for (req, field) in cases {
        let e = resolve(&req, &c, &topics()).expect_err(field);
        assert_eq!(e.field, field, "{e}");
    }
}

#[test]
fn all_skips_keyed_topics_and_names_allow_them_when_asked() {
    let s = resolve(&request(6), &cluster(3), &topics()).expect("valid");
    assert_eq!(s.topics, ["clicks", "traces"]);
    assert_eq!(s.skipped.len(), 1);
    assert!(s.skipped[0].reason.contains("keyed"));
    let s = resolve(&ScaleUpRequest { class: Some("low".into()), ..request(6) }, &cluster(3), &topics()).expect("valid");
    assert_eq!(s.topics, ["traces"]);
    let s = resolve(&ScaleUpRequest { topics: Some(vec!["orders".into()]), allow_keyed: true, ..request(6) }, &cluster(3), &topics()).expect("allowed");
    assert_eq!(s.topics, ["orders"]);
}

fn znode(name: &str, version: i32, partitions: u32) -> TopicZnode {
    let parts: serde_json::Map<String, serde_json::Value> =
        (0..partitions).map(|p| (p.to_string(), serde_json::json!([1 + (p as i32 % 3), 1 + ((p as i32 + 1) % 3)]))).collect();
    let data = serde_json::json!({"version": 3, "topic_id": format!("id-{name}"), "partitions": parts, "adding_replicas": {}, "removing_replicas": {}});
    TopicZnode::decode(&format!("/brokers/topics/{name}"), version, 500, &serde_json::to_vec(&data).expect("json")).expect("decodes")
}

fn live(n: i32) -> BTreeMap<i32, String> {
    (1..=n).map(|b| (b, ["zone-a", "zone-b", "zone-c"][((b - 1) % 3) as usize].to_string())).collect()
}

fn operation(spec: &ScaleUpSpec) -> Operation {
    Operation::new("scale-up-blue-1", "blue", OperationSpec::ScaleUp(spec.clone()), 0, "test")
}

fn observed(declared: u32, brokers: i32, topics: &[(&str, i32, u32)]) -> ScaleUpObserved {
    ScaleUpObserved {
        now_ms: 1_000,
        declared_brokers: Seen::Known(declared),
        before: Seen::Known((1..=declared as i32).collect()),
        live: Seen::Known(live(brokers)),
        registry: Seen::Known(BTreeMap::new()),
        topics: Seen::Known(topics.iter().map(|(n, v, p)| (n.to_string(), znode(n, *v, *p))).collect()),
        guards: Seen::Known(Guards { controller: true, ..Guards::default() }),
        leaders: Seen::Unknown("not read".into()),
        pause: Seen::Known(Pause::None),
        cluster_gone: false,
    }
}

/// Runs `next` (and `after` with a successful result) once: the action taken and the effects
/// written with the phase.
fn step_with(op: &mut Operation, spec: &ScaleUpSpec, obs: &ScaleUpObserved) -> (Option<Action>, OperationEffects) {
    let s = next(op, spec, obs, &ScaleUpSettings::default());
    op.status = s.status;
    if let Some(a) = &s.action {
        op.status = after(op, a, ActionResult::Done { millis: 7 }, obs.now_ms).status;
    }
    (s.action, s.effects)
}

fn step(op: &mut Operation, spec: &ScaleUpSpec, obs: &ScaleUpObserved) -> Option<Action> {
    step_with(op, spec, obs).0
}

#[test]
fn runs_through_its_phases_and_commits_once() {
    let spec = resolve(&request(6), &cluster(3), &topics()).expect("valid");
    let mut op = operation(&spec);
    let ts = [("clicks", 0, 6), ("traces", 0, 6)];
    let (action, effects) = step_with(&mut op, &spec, &observed(3, 3, &ts));
    assert_eq!((action, effects.raise_brokers), (None, Some(6)), "the count is raised with the phase (an override of the spec)");
    assert_eq!(op.status.phase, Phase::WaitingForBrokers);
    assert_eq!(op.status.brokers_before.as_deref(), Some(&[1, 2, 3][..]));
    assert_eq!(step(&mut op, &spec, &observed(6, 4, &ts)), None, "two brokers still booting");
    assert_eq!(op.status.phase, Phase::WaitingForBrokers);
    step(&mut op, &spec, &observed(6, 6, &ts));
    assert_eq!(op.status.phase, Phase::Committing);
    let plan = op.status.plan.clone().expect("plan");
    assert_eq!(plan.topics.iter().map(|t| t.to).collect::<Vec<_>>(), [12, 12]);
    assert_eq!(plan.new_brokers, [4, 5, 6]);
    assert!(matches!(step(&mut op, &spec, &observed(6, 6, &ts)), Some(Action::Commit(_))));
    assert_eq!(op.status.phase, Phase::WaitingForLeaders);
    assert_eq!(op.status.commit_millis, Some(7));

    let mut obs = observed(6, 6, &ts);
    let mut leaders: BTreeMap<(String, u32), Option<i64>> =
        plan.topics.iter().flat_map(|t| t.new_partitions.keys().map(move |p| ((t.topic.clone(), *p), Some(1_100)))).collect();
    leaders.insert(("clicks".into(), 7), None);
    obs.leaders = Seen::Known(leaders.clone());
    step(&mut op, &spec, &obs);
    assert_eq!(op.status.phase, Phase::WaitingForLeaders);
    assert_eq!(op.status.progress, Some(Progress { done: 11, total: 12 }));
    leaders.insert(("clicks".into(), 7), Some(1_250));
    obs.leaders = Seen::Known(leaders);
    step(&mut op, &spec, &obs);
    assert_eq!(op.status.phase, Phase::RecordingSpecs);
    assert_eq!(op.status.leaders_millis, Some(250), "from the commit (at 1,000) to the last leader (1,250)");
    let (action, effects) = step_with(&mut op, &spec, &obs);
    assert_eq!(action, None);
    assert_eq!(effects.topic_partitions, BTreeMap::from([("clicks".to_string(), 12), ("traces".to_string(), 12)]));
    assert_eq!(op.status.phase, Phase::Succeeded);
    assert!(op.status.message.as_deref().is_some_and(|m| m.contains("brokers: 6")), "it says what the user writes: {:?}", op.status.message);
    let phases: Vec<Phase> = op.status.history.iter().map(|h| h.phase).collect();
    assert_eq!(
        phases,
        [Phase::Pending, Phase::WaitingForBrokers, Phase::Committing, Phase::WaitingForLeaders, Phase::RecordingSpecs, Phase::Succeeded]
    );
}

fn committing(spec: &ScaleUpSpec) -> (Operation, PlacementPlan) {
    let mut op = operation(spec);
    let ts = [("clicks", 0, 6), ("traces", 0, 6)];
    step(&mut op, spec, &observed(3, 3, &ts));
    step(&mut op, spec, &observed(6, 6, &ts));
    assert_eq!(op.status.phase, Phase::Committing);
    let plan = op.status.plan.clone().expect("plan");
    (op, plan)
}

#[test]
fn a_commit_that_landed_before_a_crash_is_not_made_again() {
    let spec = resolve(&request(6), &cluster(3), &topics()).expect("valid");
    let (op, plan) = committing(&spec);
    // What ZooKeeper holds after the commit (versions moved on).
    let mut obs = observed(6, 6, &[]);
    let mut topics = BTreeMap::new();
    for t in &plan.topics {
        let z = znode(&t.topic, 0, 6);
        let data = z.with_partitions(&t.new_partitions);
        topics.insert(t.topic.clone(), TopicZnode::decode(&z.path, 1, 700, &data).expect("decodes"));
    }
    obs.topics = Seen::Known(topics);
    let Step { status: st, action, .. } = next(&op, &spec, &obs, &ScaleUpSettings::default());
    assert_eq!(action, None, "no second commit");
    assert_eq!(st.phase, Phase::WaitingForLeaders);
    assert_eq!(st.committed_at_ms, Some(700), "dated by the znodes' last write");
}

#[test]
fn a_topic_changed_after_planning_fails_the_operation_naming_it() {
    let spec = resolve(&request(6), &cluster(3), &topics()).expect("valid");
    let (op, _) = committing(&spec);
    let obs = observed(6, 6, &[("clicks", 0, 6), ("traces", 1, 6)]);
    let Step { status: st, action, .. } = next(&op, &spec, &obs, &ScaleUpSettings::default());
    assert_eq!(action, None);
    assert_eq!(st.phase, Phase::Failed);
    assert!(st.message.as_deref().is_some_and(|m| m.contains("traces") && m.contains("nothing was committed")), "{st:?}");
}

#[test]
fn refusals_name_the_topic() {
    let spec = resolve(&request(6), &cluster(3), &topics()).expect("valid");
    let new: BTreeSet<i32> = [4, 5, 6].into();
    let mut ts: BTreeMap<String, TopicZnode> = [("clicks", 0, 6), ("traces", 0, 6)].iter().map(|(n, v, p)| (n.to_string(), znode(n, *v, *p))).collect();
    let settings = ScaleUpSettings::default();
    let guards = Guards { controller: true, reassigning: ["traces".to_string()].into(), ..Guards::default() };
    let e = make_plan(&spec, 3, &live(6), &new, &ts, &guards, &settings).expect_err("reassigning");
    assert!(e.contains("traces") && e.contains("reassignment"), "{e}");
    let guards = Guards { controller: true, deleting: ["clicks".to_string()].into(), ..Guards::default() };
    assert!(make_plan(&spec, 3, &live(6), &new, &ts, &guards, &settings).expect_err("deleting").contains("clicks is being deleted"));
    let guards = Guards { controller: true, migrating: true, ..Guards::default() };
    assert!(make_plan(&spec, 3, &live(6), &new, &ts, &guards, &settings).expect_err("kraft").contains("KRaft"));
    let tight = ScaleUpSettings { max_commit_bytes: 500, ..settings };
    let guards = Guards { controller: true, ..Guards::default() };
    assert!(make_plan(&spec, 3, &live(6), &new, &ts, &guards, &tight).expect_err("too big").contains("jute.maxbuffer"));
    let split_spec = ScaleUpSpec { allow_split: true, ..spec.clone() };
    assert_eq!(make_plan(&split_spec, 3, &live(6), &new, &ts, &guards, &tight).expect("split").commits, 2);
    if let Some(z) = ts.get_mut("clicks") {
        z.partitions.insert(1, vec![1, 2, 3]);
    }
    assert!(make_plan(&spec, 3, &live(6), &new, &ts, &guards, &settings).expect_err("mixed rf").contains("clicks has partitions with different replication factors"));
}

#[test]
fn held_plans_wait_for_approval_and_can_be_cancelled() {
    let spec = ScaleUpSpec { hold: true, ..resolve(&request(6), &cluster(3), &topics()).expect("valid") };
    let mut op = operation(&spec);
    let ts = [("clicks", 0, 6), ("traces", 0, 6)];
    step(&mut op, &spec, &observed(3, 3, &ts));
    step(&mut op, &spec, &observed(6, 6, &ts));
    assert_eq!(op.status.phase, Phase::ProposalReady);
    step(&mut op, &spec, &observed(6, 6, &ts));
    assert_eq!(op.status.phase, Phase::ProposalReady, "held");
    op.approved = true;
    step(&mut op, &spec, &observed(6, 6, &ts));
    assert_eq!(op.status.phase, Phase::Committing);
    // Once committing, a cancel no longer applies.
    op.cancel_requested = true;
    let st = next(&op, &spec, &observed(6, 6, &ts), &ScaleUpSettings::default()).status;
    assert_eq!(st.phase, Phase::Committing);
    let mut fresh = operation(&spec);
    fresh.cancel_requested = true;
    let Step { status: st, action, .. } = next(&fresh, &spec, &observed(3, 3, &ts), &ScaleUpSettings::default());
    assert_eq!((st.phase, action), (Phase::Cancelled, None));
}

#[test]
fn a_failover_on_its_cluster_pauses_it_before_the_commit_and_it_plans_again_after() {
    let spec = resolve(&request(6), &cluster(3), &topics()).expect("valid");
    let mut op = operation(&spec);
    let ts = [("clicks", 0, 6), ("traces", 0, 6)];
    step(&mut op, &spec, &observed(3, 3, &ts));
    assert_eq!(op.status.phase, Phase::WaitingForBrokers);
    op.paused_by = Some("failover-blue-9".into());
    let mut obs = observed(6, 4, &ts);
    obs.pause = Seen::Known(Pause::Requested { by: "failover-blue-9".into() });
    step(&mut op, &spec, &obs);
    assert_eq!(op.status.phase, Phase::Paused);
    assert!(op.status.message.as_deref().is_some_and(|m| m.contains("failover-blue-9") && m.contains("nothing was committed")), "{:?}", op.status.message);
    step(&mut op, &spec, &obs);
    assert_eq!(op.status.phase, Phase::Paused, "while the failover runs");
    obs.pause = Seen::Known(Pause::Over { by: "failover-blue-9".into() });
    let (_, effects) = step_with(&mut op, &spec, &obs);
    assert_eq!(op.status.phase, Phase::WaitingForBrokers, "back where it was, planning again");
    assert_eq!(effects.resume.as_deref(), Some("failover-blue-9"), "its pausedBy is cleared with the phase");
    // Committed: a failover does not stop it (it finishes).
    let (mut committing, _) = committing(&spec);
    let mut obs = observed(6, 6, &ts);
    obs.pause = Seen::Known(Pause::Requested { by: "failover-blue-9".into() });
    step(&mut committing, &spec, &obs);
    assert_ne!(committing.status.phase, Phase::Paused);
}

#[test]
fn brokers_it_started_from_come_from_the_registry_not_one_live_read() {
    let spec = resolve(&request(6), &cluster(3), &topics()).expect("valid");
    let mut op = operation(&spec);
    let ts = [("clicks", 0, 6), ("traces", 0, 6)];
    // Broker 2 is briefly out of /brokers/ids when the operation starts: still one of the three.
    let mut obs = observed(3, 3, &ts);
    obs.live = Seen::Known(live(3).into_iter().filter(|(b, _)| *b != 2).collect());
    step(&mut op, &spec, &obs);
    assert_eq!(op.status.brokers_before.as_deref(), Some(&[1, 2, 3][..]));
    // Broker 2 back and two new ones: still waiting for the third new broker, not planning.
    step(&mut op, &spec, &observed(6, 5, &ts));
    assert_eq!(op.status.phase, Phase::WaitingForBrokers);
}

#[test]
fn a_broker_that_never_registers_fails_it_naming_the_broker() {
    let spec = resolve(&request(6), &cluster(3), &topics()).expect("valid");
    let mut op = operation(&spec);
    let ts = [("clicks", 0, 6), ("traces", 0, 6)];
    step(&mut op, &spec, &observed(3, 3, &ts));
    let mut obs = observed(6, 5, &ts);
    obs.registry = Seen::Known([(4, "blue-0004"), (5, "blue-0005"), (6, "blue-0006")].into_iter().map(|(i, h)| (i, h.to_string())).collect());
    obs.now_ms = 1_000 + ScaleUpSettings::default().brokers_timeout_ms + 1;
    step(&mut op, &spec, &obs);
    assert_eq!(op.status.phase, Phase::Failed);
    assert!(op.status.message.as_deref().is_some_and(|m| m.contains("broker 6 (host blue-0006)")), "{:?}", op.status.message);
}

#[test]
fn a_phase_that_is_not_a_scale_ups_fails_it() {
    let spec = resolve(&request(6), &cluster(3), &topics()).expect("valid");
    let mut op = operation(&spec);
    op.status.enter(Phase::DrainingConsumers, 5, None);
    step(&mut op, &spec, &observed(3, 3, &[]));
    assert_eq!(op.status.phase, Phase::Failed);
    assert!(op.status.message.as_deref().is_some_and(|m| m.contains("DrainingConsumers")));
}

#[test]
fn rewritten_znode_keeps_topic_id_and_existing_partitions() {
    let z = znode("clicks", 4, 2);
    let data = z.with_partitions(&[(2, vec![4, 5])].into());
    let v: serde_json::Value = serde_json::from_slice(&data).expect("json");
    assert_eq!(v["topic_id"], "id-clicks");
    assert_eq!(v["version"], 3);
    assert_eq!(v["partitions"]["0"], serde_json::json!([1, 2]));
    assert_eq!(v["partitions"]["2"], serde_json::json!([4, 5]));
    assert_eq!(v["adding_replicas"], serde_json::json!({}));
}
