//! The fleet manager against real parts: ZooKeeper, Kafka brokers booted by `kafka-bootstrap` as
//! local hosts, PostgreSQL and SQLite stores, moto for EC2. Claims about Kafka are checked with
//! kcat, not with the project's own database.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use fleet_manager::spec;
use fleet_manager::store::{ApplyOutcome, Store, StoreError};
use fleet_tests::fleet_manager::{FleetManager, FleetManagerOptions, READ_TOKEN, WRITE_TOKEN};
use fleet_tests::kafka::local_properties;
use fleet_tests::{init_logging, kcat, wait_until, Postgres, ZkEnsemble};

fn cluster_yaml(name: &str, brokers: usize, provider: &str) -> String {
    let mut text = format!(
        "apiVersion: kafka-fleet.io/v1\nkind: KafkaCluster\nmetadata:\n  name: {name}\nspec:\n  kafkaVersion: \"3.9\"\n  brokers: {brokers}\n  \
         availabilityZones: [zone-a, zone-b, zone-c]\n  priorityClass: medium\n  provider: {provider}\n  brokerConfig:\n"
    );
    for (k, v) in local_properties(3) {
        text.push_str(&format!("    {k}: \"{v}\"\n"));
    }
    // A killed broker leaves /brokers/ids within seconds (ZooKeeper here ticks every 500 ms).
    text.push_str("    zookeeper.session.timeout.ms: 6000\n");
    text
}

fn topics_yaml(cluster: &str) -> String {
    format!(
        "apiVersion: kafka-fleet.io/v1\nkind: Topic\nmetadata: {{ name: orders }}\nspec: {{ cluster: {cluster}, partitions: 6 }}\n---\n\
         apiVersion: kafka-fleet.io/v1\nkind: Topic\nmetadata: {{ name: clicks }}\nspec: {{ cluster: {cluster}, partitions: 3, priorityClass: high, configs: {{ cleanup.policy: delete }} }}\n---\n\
         apiVersion: kafka-fleet.io/v1\nkind: Route\nmetadata: {{ name: events }}\nspec: {{ cluster: {cluster} }}\n"
    )
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write spec");
    path.display().to_string()
}

fn text(out: &std::process::Output) -> String {
    format!("stdout: {}\nstderr: {}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

async fn status(fm: &FleetManager, cluster: &str) -> serde_json::Value {
    let (code, body) = fm.get(&format!("/v1/clusters/{cluster}")).await;
    assert_eq!(code, 200, "{body}");
    body
}

async fn wait_converged(fm: &FleetManager, cluster: &str, revision: i64, deadline: Duration) {
    let what = format!("cluster {cluster} converged on revision {revision}");
    wait_until(&what, deadline, || async move {
        let v = status(fm, cluster).await;
        let st = &v["status"];
        if st["converged"] == true && st["observedRevision"].as_i64().unwrap_or(0) >= revision {
            Ok(Some(()))
        } else {
            Err(format!("phase {} plan {} / {}", st["phase"], st["plan"], fm.log_tail(5)))
        }
    })
    .await
}

async fn registry(zk: &zookeeper_client::Client, root: &str, cluster: &str) -> BTreeMap<i32, String> {
    let paths = fleet_common::FleetPaths::new(root).cluster(cluster);
    kafka_bootstrap::broker_id::read_registry(zk, &paths)
        .await
        .expect("registry")
        .into_iter()
        .map(|(id, e)| (id, e.lease.instance_id))
        .collect()
}

async fn live_brokers(zk: &zookeeper_client::Client, root: &str, cluster: &str) -> BTreeSet<i32> {
    let path = fleet_common::FleetPaths::new(root).cluster(cluster).kafka().broker_ids();
    zk.list_children(&path).await.unwrap_or_default().iter().filter_map(|c| c.parse().ok()).collect()
}

/// Apply -> converge (checked through kcat) -> crash mid-apply twice -> no duplicates ->
/// scale up -> a broker killed -9 is replaced with its ID -> teardown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_manager_builds_scales_heals_and_survives_its_own_crash() {
    init_logging();
    let zk = ZkEnsemble::start(1).await;
    let mut options = FleetManagerOptions::new(&zk.connect_string());
    // The first run dies right after its second step (two of three hosts launched).
    options.extra_env.push(("FLEET_FAILPOINT_CRASH_AFTER_STEPS".into(), "2".into()));
    let mut fm = FleetManager::start(options).await;
    let specs = fm.run.path.join("specs");
    std::fs::create_dir_all(&specs).expect("specs dir");
    write(&specs, "10-cluster.yaml", &cluster_yaml("blue", 3, "local"));
    write(&specs, "20-topics.yaml", &topics_yaml("blue"));

    let out = fm.fleetctl(&["apply", "-f", &specs.display().to_string(), "-o", "json"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let applied: serde_json::Value = serde_json::from_slice(&out.stdout).expect("apply json");
    assert_eq!(applied["results"].as_array().map(|r| r.len()), Some(4), "{applied}");

    // Crash 1: the failpoint kills the process between launches.
    let started = Instant::now();
    while fm.process.as_mut().is_some_and(|p| p.is_running()) {
        assert!(started.elapsed() < Duration::from_secs(30), "failpoint never fired: {}", fm.log_tail(20));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(fm.local_hosts().len(), 2, "two hosts launched before the crash");
    fm.options.extra_env.clear();
    fm.spawn().await;

    // Crash 2: kill -9 once every host is launched but before the topics exist.
    wait_until("three hosts launched", Duration::from_secs(30), || async {
        Ok((fm.local_hosts().len() >= 3).then_some(()))
    })
    .await;
    fm.kill();
    fm.spawn().await;

    let revision = applied["revisions"]["blue"].as_i64().expect("revision");
    wait_converged(&fm, "blue", revision, Duration::from_secs(150)).await;

    // No duplicate host, three IDs, three live brokers.
    let hosts = fm.local_hosts();
    assert_eq!(hosts.len(), 3, "no duplicate host: {hosts:?}");
    let client = zk.client().await;
    let root = fm.options.fleet_root.clone();
    let reg = registry(&client, &root, "blue").await;
    assert_eq!(reg.keys().copied().collect::<Vec<_>>(), [1, 2, 3]);
    let zones: BTreeSet<&str> = hosts.iter().map(|h| h.availability_zone.as_str()).collect();
    assert_eq!(zones.len(), 3, "one host per zone: {hosts:?}");

    // Through Kafka (kcat), not our database: partitions and replication as declared.
    let md = kcat::metadata(&fm.bootstrap_servers()).await.expect("kcat metadata");
    assert_eq!(kcat::topic_shape(&md, "orders"), Some((6, 2)), "orders: medium class = 2 copies; {md}");
    assert_eq!(kcat::topic_shape(&md, "clicks"), Some((3, 3)), "clicks: high class = 3 copies");
    // Each topic was created exactly once across the crashes.
    let (_, journal) = fm.get("/v1/journal?cluster=blue&limit=1000").await;
    for topic in ["orders", "clicks"] {
        let creates = journal
            .as_array()
            .expect("journal")
            .iter()
            .filter(|e| e["action"] == "create-topic" && e["outcome"] == "ok" && e["detail"]["topic"] == topic)
            .count();
        assert_eq!(creates, 1, "{topic} created once");
    }
    // The high class's retention reached Kafka's topic config.
    let cfg_path = fleet_common::FleetPaths::new(&root).cluster("blue").kafka().topic_config("clicks");
    let (cfg, _) = client.get_data(&cfg_path).await.expect("topic config");
    let cfg: serde_json::Value = serde_json::from_slice(&cfg).expect("config json");
    assert_eq!(cfg["config"]["retention.ms"], "86400000");
    assert_eq!(cfg["config"]["min.insync.replicas"], "2");

    // fleetctl describe shows it converged.
    let out = fm.fleetctl(&["describe", "cluster", "blue"]).await;
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Converged"), "{}", text(&out));

    // Grow a topic and change its retention: `fleetctl plan` shows it, apply does it, Kafka has it.
    let grown = topics_yaml("blue").replace("{ cluster: blue, partitions: 6 }", "{ cluster: blue, partitions: 8, retentionHours: 6 }");
    let grown_path = write(&fm.run.path, "grown.yaml", &grown);
    let out = fm.fleetctl(&["plan", "-f", &grown_path]).await;
    let planned = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success() && planned.contains("add partitions to orders: 6 -> 8") && planned.contains("retention.ms"), "{}", text(&out));
    let out = fm.fleetctl(&["apply", "-f", &grown_path, "--wait", "--timeout", "60s"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let md = kcat::metadata(&fm.bootstrap_servers()).await.expect("kcat metadata");
    assert_eq!(kcat::topic_shape(&md, "orders"), Some((8, 2)));
    // describe topic shows Kafka's own view: every partition led, its replicas and ISR.
    let out = fm.fleetctl(&["describe", "topic", "blue/orders"]).await;
    let described = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success() && described.contains("Partitions (8; 0 offline"), "{}", text(&out));
    let out = fm.fleetctl(&["get", "topic", "orders", "--cluster", "blue", "-o", "json"]).await;
    let view: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let parts = view[0]["partitions"]["value"].as_array().unwrap_or_else(|| panic!("partitions: {view}"));
    assert_eq!(parts.len(), 8, "{view}");
    assert!(parts.iter().all(|p| p["leader"].as_i64().is_some_and(|l| l > 0) && p["replicas"].as_array().is_some_and(|r| r.len() == 2)), "{view}");
    let (cfg, _) = client.get_data(&fleet_common::FleetPaths::new(&root).cluster("blue").kafka().topic_config("orders")).await.expect("config");
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&cfg).expect("json")["config"]["retention.ms"], "21600000");
    // Delete a topic: Kafka drops it.
    let out = fm.fleetctl(&["delete", "topic", "clicks", "--cluster", "blue", "--wait", "--timeout", "60s"]).await;
    assert!(out.status.success(), "{}", text(&out));
    wait_until("clicks gone from Kafka", Duration::from_secs(60), || async {
        let md = kcat::metadata(&fm.bootstrap_servers()).await?;
        Ok(kcat::topic_shape(&md, "clicks").is_none().then_some(()))
    })
    .await;

    // Scale up: the new broker takes the next ID, in the emptiest zone.
    write(&specs, "10-cluster.yaml", &cluster_yaml("blue", 4, "local"));
    write(&specs, "20-topics.yaml", &grown.replace("kind: Topic\nmetadata: { name: clicks }", "kind: Topic\nmetadata: { name: clicks-v2 }"));
    let out = fm.fleetctl(&["apply", "-f", &specs.display().to_string(), "--wait", "--timeout", "150s"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let reg = registry(&client, &root, "blue").await;
    assert_eq!(reg.keys().copied().collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(live_brokers(&client, &root, "blue").await.len(), 4);

    // kill -9 broker 2's JVM: after the grace period its host is replaced and ID 2 comes back.
    let victim = reg[&2].clone();
    let pid: i32 = std::fs::read_to_string(fm.hosts_root().join(&victim).join("data/kafka.pid"))
        .expect("kafka.pid")
        .trim()
        .parse()
        .expect("pid");
    fleet_tests::process::signal_pid(pid, libc::SIGKILL);
    let replaced = wait_until("broker 2 back on a new host", Duration::from_secs(150), || {
        let client = client.clone();
        let root = root.clone();
        let victim = victim.clone();
        async move {
            let reg = registry(&client, &root, "blue").await;
            let live = live_brokers(&client, &root, "blue").await;
            match reg.get(&2) {
                Some(holder) if holder != &victim && live.contains(&2) => Ok(Some(holder.clone())),
                other => Err(format!("broker 2 held by {other:?}, live {live:?}")),
            }
        }
    })
    .await;
    let hosts = fm.local_hosts();
    let victim_host = hosts.iter().find(|h| h.instance_id == victim).expect("old host record");
    assert_eq!(victim_host.state, fleet_common::local::LocalInstanceState::Terminated);
    assert!(hosts.iter().any(|h| h.instance_id == replaced && h.availability_zone == victim_host.availability_zone), "same zone");
    assert_eq!(live_brokers(&client, &root, "blue").await.into_iter().collect::<Vec<_>>(), [1, 2, 3, 4]);

    // Teardown: the route protects the cluster until it is deleted.
    let out = fm.fleetctl(&["delete", "cluster", "blue"]).await;
    assert_eq!(out.status.code(), Some(4), "conflict while a route points at it: {}", text(&out));
    let out = fm.fleetctl(&["delete", "route", "events"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let out = fm.fleetctl(&["delete", "cluster", "blue", "--wait", "--timeout", "120s"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(fm.local_hosts().iter().all(|h| h.state == fleet_common::local::LocalInstanceState::Terminated));
    // The cluster's DNS records went with it.
    assert!(fleet_common::local::read_record(&fm.dns_root(), "blue.local").expect("routes").is_empty());
    assert!(fleet_common::local::read_record(&fm.dns_root(), "broker-1.blue.local").expect("routes").is_empty());
    let (code, _) = fm.get("/v1/clusters/blue/topics/orders").await;
    assert_eq!(code, 404);

    // The cluster's ZooKeeper state went too: declared again under the same name, it starts
    // empty (broker ID 1 on a new host, none of the old topics), checked with kcat.
    let cluster_base = fleet_common::FleetPaths::new(&root).cluster("blue");
    assert!(client.check_stat(cluster_base.base()).await.expect("stat").is_none(), "{} removed", cluster_base.base());
    let again = write(&fm.run.path, "again.yaml", &cluster_yaml("blue", 1, "local"));
    let out = fm.fleetctl(&["apply", "-f", &again, "--wait", "--timeout", "120s"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let reg = registry(&client, &root, "blue").await;
    let old_hosts: BTreeSet<String> = hosts.iter().map(|h| h.instance_id.clone()).collect();
    assert_eq!(reg.keys().copied().collect::<Vec<_>>(), [1], "IDs start over: {reg:?}");
    assert!(!old_hosts.contains(&reg[&1]), "ID 1 is held by a new host, not an old registry entry");
    let md = kcat::metadata(&fm.bootstrap_servers()).await.expect("kcat metadata");
    for old in ["orders", "clicks-v2"] {
        assert_eq!(kcat::topic_shape(&md, old), None, "old topic {old} is gone: {md}");
    }
}

/// Two fleet managers on one PostgreSQL store: one leader; the standby serves reads and takes over
/// within the ZooKeeper session timeout when the leader dies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standby_takes_over_when_the_leader_dies() {
    init_logging();
    let zk = ZkEnsemble::start(1).await;
    let pg = Postgres::start().await;
    pg.create_database("fleet_ha").await;
    let mut options = FleetManagerOptions::new(&zk.connect_string());
    options.database = Some(pg.url("fleet_ha"));
    options.local_hosts = false;
    options.session_timeout_ms = 4000;
    let mut first = FleetManager::start(options.clone()).await;
    wait_until("first instance leads", Duration::from_secs(20), || async {
        Ok(first.health().await.filter(|h| h["leader"] == true).map(|_| ()))
    })
    .await;
    let second = FleetManager::start(options).await;
    // Only one leader, for a while.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let (a, b) = (first.health().await.expect("first"), second.health().await.expect("second"));
        assert!(a["leader"] == true && b["leader"] == false, "exactly one leader: {a} {b}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A write through the standby is visible through the leader (one store).
    let specs = first.run.path.join("ha.yaml");
    std::fs::write(&specs, cluster_yaml("green", 1, "ec2")).expect("spec");
    let out = second.fleetctl(&["apply", "-f", &specs.display().to_string()]).await;
    assert!(out.status.success(), "{}", text(&out));
    let (code, body) = first.get("/v1/clusters/green").await;
    assert_eq!(code, 200, "{body}");

    let killed = Instant::now();
    first.kill();
    wait_until("standby takes over", Duration::from_secs(15), || async {
        Ok(second.health().await.filter(|h| h["leader"] == true).map(|_| ()))
    })
    .await;
    let took = killed.elapsed();
    assert!(took <= Duration::from_millis(4000 + 3000), "took over in {took:?}, session timeout 4 s");
    eprintln!("standby took over {took:?} after the leader was killed");
    let (_, journal) = second.get("/v1/journal?limit=20").await;
    assert!(journal.as_array().expect("journal").iter().any(|e| e["action"] == "elected" && e["actor"].as_str().is_some_and(|a| a.contains(&format!("fm-{}", second.port)))));
}

/// The store's contract, run on SQLite and on PostgreSQL alike.
async fn exercise_store(url: &str) {
    let store = Store::open(url).await.expect("open store");
    // A shared secret is made once: the first candidate stays, later ones read it back.
    assert_eq!(store.secret_or_insert("host-token-key", "first").await.expect("secret"), "first");
    assert_eq!(store.secret_or_insert("host-token-key", "second").await.expect("secret"), "first");
    let doc = |yaml: &str| -> Vec<spec::Declared> {
        spec::parse_yaml_documents(yaml).expect("yaml").into_iter().map(|v| spec::validate_value(v).expect("valid")).collect()
    };
    let cluster = doc(&cluster_yaml("blue", 3, "local"));
    let topics = doc(&topics_yaml("blue"));
    let mut batch = cluster.clone();
    batch.extend(topics.clone());
    let r = store.apply(&batch, "test", false).await.expect("apply");
    assert!(r.iter().all(|x| x.outcome == ApplyOutcome::Created && x.generation == 1));
    let rev1 = store.revision().await.expect("revision");
    // Idempotent.
    let r = store.apply(&batch, "test", false).await.expect("re-apply");
    assert!(r.iter().all(|x| x.outcome == ApplyOutcome::Unchanged));
    assert_eq!(store.revision().await.expect("revision"), rev1);
    // A change bumps the generation.
    let bigger = doc(&cluster_yaml("blue", 5, "local"));
    let r = store.apply(&bigger, "test", false).await.expect("scale up");
    assert_eq!((r[0].outcome, r[0].generation), (ApplyOutcome::Configured, 2));
    // A stale generation is refused.
    let mut stale = doc(&cluster_yaml("blue", 6, "local"));
    stale[0].generation = Some(1);
    assert!(matches!(store.apply(&stale, "test", false).await, Err(StoreError::Conflict { .. })));
    // Rejected batches write nothing, not even their valid part.
    let before = store.fingerprint().await.expect("fingerprint");
    let mut bad = doc(&cluster_yaml("red", 1, "local"));
    bad.extend(doc("apiVersion: kafka-fleet.io/v1\nkind: Topic\nmetadata: { name: t }\nspec: { cluster: red, partitions: 1, replicationFactor: 3 }\n"));
    assert!(matches!(store.apply(&bad, "test", false).await, Err(StoreError::Invalid(e)) if e.field == "spec.replicationFactor"));
    assert!(matches!(store.apply(&doc(&cluster_yaml("blue", 2, "local")), "test", false).await, Err(StoreError::Invalid(e)) if e.field == "spec.brokers"));
    assert!(store.apply(&bigger, "test", true).await.is_ok(), "dry run");
    assert_eq!(store.fingerprint().await.expect("fingerprint"), before);
    // Operations: one at a time per cluster; a phase is written with its effects on specs, fenced.
    use fleet_api::operation::{OperationSpec, Phase, ScaleUpSpec, TopicSelection};
    use fleet_manager::store::{OperationCommand, OperationEffects};
    let grow = OperationSpec::ScaleUp(ScaleUpSpec {
        from_brokers: 5,
        brokers: 7,
        selection: TopicSelection::All,
        topics: vec!["orders".into()],
        skipped: Vec::new(),
        partitions_per_topic: None,
        allow_keyed: false,
        allow_split: false,
        hold: false,
    });
    let op = store.create_operation("blue", &grow, "test").await.expect("create operation");
    assert_eq!((op.id.as_str(), op.status.phase), ("scale-up-blue-1", Phase::Pending));
    assert!(matches!(store.create_operation("blue", &grow, "test").await, Err(StoreError::Conflict { .. })), "one at a time");
    assert!(store.clusters_changed_since(rev1).await.expect("changed").contains(&"blue".to_string()));
    store.claim_leadership(7).await.expect("claim");
    let mut status = op.status.clone();
    status.enter(Phase::WaitingForBrokers, 1, None);
    let raise = OperationEffects { raise_brokers: Some(7), ..OperationEffects::default() };
    store.advance_operation(7, &op, &status, &raise, &[]).await.expect("advance");
    let blue = store.get(spec::Kind::KafkaCluster, "blue").await.expect("blue");
    assert!(matches!(&blue.declared.spec, spec::DeclaredSpec::KafkaCluster(c) if c.brokers == 7), "brokers raised with the phase");
    assert!(matches!(&blue.user.spec, spec::DeclaredSpec::KafkaCluster(c) if c.brokers == 5), "as an override: the user's spec is untouched");
    assert!(matches!(store.advance_operation(6, &op, &status, &raise, &[]).await, Err(StoreError::Fenced { .. })), "an older leader is refused");
    status.enter(Phase::Succeeded, 2, None);
    let record = OperationEffects { topic_partitions: [("orders".to_string(), 12)].into(), ..OperationEffects::default() };
    store.advance_operation(7, &op, &status, &record, &[]).await.expect("advance");
    let orders = store.get(spec::Kind::Topic, &spec::topic_key("blue", "orders")).await.expect("orders");
    assert!(matches!(&orders.declared.spec, spec::DeclaredSpec::Topic(t) if t.partitions == 12), "partitions recorded");
    assert!(orders.overrides.contains_key("partitions"), "as an override");
    assert!(store.operations(Some("blue"), true).await.expect("active").is_empty(), "ended");
    assert_eq!(store.operation(&op.id).await.expect("op").status.phase, Phase::Succeeded);
    assert!(matches!(store.command_operation(&op.id, OperationCommand::Cancel, "test").await, Err(StoreError::Conflict { .. })));
    // A decommission lowers the declared count with the phase that retires the brokers.
    let shrink = OperationSpec::Decommission(fleet_api::operation::MoveSpec {
        leaving: vec![6, 7],
        from_brokers: 7,
        throttle_bytes: Some(1 << 20),
        max_moves_per_broker: 5,
        max_moves: 50,
        hold: false,
    });
    let op = store.create_operation("blue", &shrink, "test").await.expect("create decommission");
    assert_eq!(op.id, "decommission-blue-2");
    let mut status = op.status.clone();
    status.enter(Phase::Retiring, 3, None);
    let lower = OperationEffects { lower_brokers: Some(5), ..OperationEffects::default() };
    store.advance_operation(7, &op, &status, &lower, &[]).await.expect("advance");
    let blue = store.get(spec::Kind::KafkaCluster, "blue").await.expect("blue");
    assert!(matches!(&blue.declared.spec, spec::DeclaredSpec::KafkaCluster(c) if c.brokers == 5), "brokers lowered with the phase");
    status.enter(Phase::Succeeded, 4, None);
    store.advance_operation(7, &op, &status, &OperationEffects::default(), &[]).await.expect("advance");
    // A failover: its build declared once however often the phase is written, the route moved and
    // its status written with the phase; one per route; what a route or an operation uses stays.
    use fleet_api::operation::{BuildSpec, FailoverSpec};
    use fleet_api::route::{RouteState, RouteStatus};
    use fleet_manager::operations::failover;
    let plan = FailoverSpec {
        route: "events".into(),
        from: "blue".into(),
        to: None,
        build: Some(BuildSpec { source: "blue".into(), brokers: 5 }),
        deadline_ms: 60_000,
        reason: "test".into(),
        retain: Default::default(),
        replaces: None,
        prior: RouteStatus { cluster: "blue".into(), ..Default::default() },
    };
    let op = store.create_operation("blue", &OperationSpec::Failover(plan.clone()), "test").await.expect("create failover");
    assert!(
        matches!(store.create_operation("green", &OperationSpec::Fallback(plan.clone()), "test").await, Err(StoreError::Conflict { resource, .. }) if resource == "Route/events"),
        "one failover or fallback per route"
    );
    let spec::DeclaredSpec::KafkaCluster(blue_spec) = store.get(spec::Kind::KafkaCluster, "blue").await.expect("blue").declared.spec else { panic!("a cluster") };
    let mut status = op.status.clone();
    status.target = Some("blue-1".into());
    status.enter(Phase::Building, 5, None);
    let moving = RouteStatus { phase: RouteState::FailingOver, cluster: "blue".into(), operation: Some(op.id.clone()), ..Default::default() };
    let building = OperationEffects {
        declare: vec![failover::clone_cluster("blue-1", &blue_spec, 5, &op.id, "blue")],
        route_status: Some(("events".into(), moving)),
        ..OperationEffects::default()
    };
    store.advance_operation(7, &op, &status, &building, &[]).await.expect("building");
    store.advance_operation(7, &op, &status, &building, &[]).await.expect("the same phase written again");
    let built = store.get(spec::Kind::KafkaCluster, "blue-1").await.expect("built");
    assert_eq!(built.generation, 1, "declared once");
    assert!(matches!(&built.declared.spec, spec::DeclaredSpec::KafkaCluster(c) if c.is_immutable() && c.brokers == 5));
    assert!(matches!(store.delete(spec::Kind::KafkaCluster, "blue-1", "test", None).await, Err(StoreError::Conflict { message, .. }) if message.contains(&op.id)));
    assert!(matches!(store.delete(spec::Kind::Route, "events", "test", None).await, Err(StoreError::Conflict { .. })), "a route being moved stays");
    let source: Vec<spec::Declared> = store.list(Some(spec::Kind::Topic), Some("blue")).await.expect("topics").into_iter().map(|r| r.declared).collect();
    status.enter(Phase::SwitchingProducers, 6, None);
    let switched = RouteStatus { phase: RouteState::FailingOver, cluster: "blue-1".into(), operation: Some(op.id.clone()), ..Default::default() };
    let switching = OperationEffects {
        declare: failover::target_topics("blue-1", 5, &source),
        route_status: Some(("events".into(), switched)),
        ..OperationEffects::default()
    };
    store.advance_operation(7, &op, &status, &switching, &[]).await.expect("switch");
    // The route's spec stays the user's; where its traffic is, is its status.
    assert_eq!(store.get(spec::Kind::Route, "events").await.expect("route").cluster, "blue");
    assert_eq!(store.route_status_of("events").await.expect("status").map(|s| s.cluster), Some("blue-1".to_string()));
    let on_target: BTreeSet<String> = store.list(Some(spec::Kind::Topic), Some("blue-1")).await.expect("topics").into_iter().map(|r| r.declared.name).collect();
    assert_eq!(on_target, BTreeSet::from(["orders".to_string(), "clicks".to_string(), "fleet-canary".to_string()]));
    status.enter(Phase::Succeeded, 7, None);
    let done = RouteStatus { phase: RouteState::FailedOver, cluster: "blue-1".into(), standby: Some("blue".into()), ..Default::default() };
    let finished = OperationEffects { route_status: Some(("events".into(), done.clone())), delete_clusters: vec!["blue-1".into()], ..OperationEffects::default() };
    store.advance_operation(7, &op, &status, &finished, &[]).await.expect("succeeded");
    assert_eq!(store.route_statuses().await.expect("route statuses").get("events").map(|s| RouteStatus { revision: 0, ..s.clone() }), Some(done.clone()));
    assert!(!store.get(spec::Kind::KafkaCluster, "blue-1").await.expect("blue-1").deleting, "a cluster a route points at is not torn down");
    assert!(matches!(store.delete(spec::Kind::KafkaCluster, "blue", "test", None).await, Err(StoreError::Conflict { message, .. }) if message.contains("standby")));
    // Deleting: the route protects its cluster; a cluster takes its topics along.
    assert!(matches!(store.delete(spec::Kind::KafkaCluster, "blue-1", "test", None).await, Err(StoreError::Conflict { .. })));
    store.delete(spec::Kind::Route, "events", "test", None).await.expect("delete route");
    assert!(store.route_statuses().await.expect("route statuses").is_empty(), "its status goes with it");
    store.delete(spec::Kind::KafkaCluster, "blue", "test", None).await.expect("delete cluster");
    store.delete(spec::Kind::KafkaCluster, "blue-1", "test", None).await.expect("delete the build");
    let all = store.list(None, None).await.expect("list");
    assert!(all.iter().all(|r| r.deleting), "clusters and topics marked");
    store.remove(spec::Kind::KafkaCluster, "blue").await.expect("remove");
    store.remove(spec::Kind::KafkaCluster, "blue-1").await.expect("remove the build");
    assert!(store.list(None, None).await.expect("list").is_empty());
    // The journal kept every accepted write, newest first.
    let journal = store.journal(None, 100, None).await.expect("journal");
    assert_eq!(journal.len(), 4 + 1 + 1 + 2 + 1 + 2, "the decommission and failover created, the build deleted");
    assert!(journal.windows(2).all(|w| w[0].id > w[1].id));
    assert_eq!(journal[0].action, "delete KafkaCluster");
    // Intents and observations round-trip.
    store.put_intent("blue", &serde_json::json!({"missingSince": {"2": 5}})).await.expect("intent");
    store.put_intent("blue", &serde_json::json!({"missingSince": {}})).await.expect("intent again");
    assert_eq!(store.intent("blue").await.expect("intent"), Some(serde_json::json!({"missingSince": {}})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_contract_holds_on_sqlite_and_postgresql() {
    init_logging();
    let dir = tempfile::tempdir().expect("tempdir");
    exercise_store(&format!("sqlite://{}?mode=rwc", dir.path().join("fleet.db").display())).await;
    let pg = Postgres::start().await;
    pg.create_database("fleet_store").await;
    exercise_store(&pg.url("fleet_store")).await;
}

/// At least 30 malformed specs and API bodies: each gets a 4xx (or fleetctl a non-zero exit)
/// naming the field, and the database is unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_naming_the_field_and_nothing_is_written() {
    init_logging();
    let zk = ZkEnsemble::start(1).await;
    let mut options = FleetManagerOptions::new(&zk.connect_string());
    options.local_hosts = false;
    let fm = FleetManager::start(options).await;
    wait_until("leader", Duration::from_secs(20), || async { Ok(fm.health().await.filter(|h| h["leader"] == true).map(|_| ())) }).await;
    // A cluster to refer to (ec2: not configured here, so nothing is launched).
    let ok = fm
        .call(reqwest::Method::POST, "/v1/apply", Some(WRITE_TOKEN), Some(("application/yaml", cluster_yaml("blue", 3, "ec2"))))
        .await;
    assert_eq!(ok.0, 200, "{}", ok.1);
    let store = Store::open(&fm.database_url()).await.expect("store");
    let before = store.fingerprint().await.expect("fingerprint");

    let c = |spec: &str| format!("{{\"apiVersion\":\"kafka-fleet.io/v1\",\"kind\":\"KafkaCluster\",\"metadata\":{{\"name\":\"red\"}},\"spec\":{spec}}}");
    let t = |name: &str, spec: &str| format!("{{\"apiVersion\":\"kafka-fleet.io/v1\",\"kind\":\"Topic\",\"metadata\":{{\"name\":\"{name}\"}},\"spec\":{spec}}}");
    let good_c = r#"{"kafkaVersion":"3.9","brokers":3,"availabilityZones":["a"]}"#;
    let huge = format!("[{}]", vec![t("x", r#"{"cluster":"blue","partitions":1}"#); 12_000].join(","));
    // (body, expected status, expected field)
    let cases: Vec<(String, u16, &str)> = vec![
        (c(r#"{"kafkaVersion":"3.9","brokers":3,"availabilityZones":["a"],"colour":"red"}"#), 422, "spec.colour"),
        (c(r#"{"kafkaVersion":"3.9","brokers":"three","availabilityZones":["a"]}"#), 422, "spec.brokers"),
        (c(r#"{"kafkaVersion":"3.9","brokers":-1,"availabilityZones":["a"]}"#), 422, "spec.brokers"),
        (c(r#"{"kafkaVersion":"3.9","brokers":0,"availabilityZones":["a"]}"#), 422, "spec.brokers"),
        (c(r#"{"kafkaVersion":"3.9","brokers":201,"availabilityZones":["a"]}"#), 422, "spec.brokers"),
        (c(r#"{"kafkaVersion":"2.8","brokers":3,"availabilityZones":["a"]}"#), 422, "spec.kafkaVersion"),
        (c(r#"{"kafkaVersion":"3.9","brokers":3,"availabilityZones":[]}"#), 422, "spec.availabilityZones"),
        (c(r#"{"kafkaVersion":"3.9","brokers":3,"availabilityZones":["a","a"]}"#), 422, "spec.availabilityZones[1]"),
        (c(r#"{"kafkaVersion":"3.9","brokers":3,"availabilityZones":["Zone A"]}"#), 422, "spec.availabilityZones[0]"),
        (c(r#"{"kafkaVersion":"3.9","brokers":3,"availabilityZones":["a"],"priorityClass":"urgent"}"#), 422, "spec.priorityClass"),
        (c(r#"{"kafkaVersion":"3.9","brokers":3,"availabilityZones":["a"],"provider":"gcp"}"#), 422, "spec.provider"),
        (c(r#"{"kafkaVersion":"3.9","brokers":3,"availabilityZones":["a"],"instanceType":"huge"}"#), 422, "spec.instanceType"),
        (c(r#"{"kafkaVersion":"3.9","brokers":3,"availabilityZones":["a"],"brokerConfig":{"num.io.thread":8}}"#), 422, "spec.brokerConfig.num.io.thread"),
        (c(r#"{"kafkaVersion":"3.9","brokers":3,"availabilityZones":["a"],"brokerConfig":{"num.io.threads":"many"}}"#), 422, "spec.brokerConfig.num.io.threads"),
        (c(r#"{"kafkaVersion":"3.9","brokers":3,"availabilityZones":["a"],"brokerConfig":{"broker.id":7}}"#), 422, "spec.brokerConfig.broker.id"),
        (c(r#"{"kafkaVersion":"3.9","availabilityZones":["a"]}"#), 422, "spec"),
        (c(r#"[1,2]"#), 422, "spec"),
        (format!(r#"{{"apiVersion":"kafka-fleet.io/v1","kind":"KafkaCluster","metadata":{{"name":"Red_Cluster"}},"spec":{good_c}}}"#), 422, "metadata.name"),
        (format!(r#"{{"apiVersion":"kafka-fleet.io/v2","kind":"KafkaCluster","metadata":{{"name":"red"}},"spec":{good_c}}}"#), 422, "apiVersion"),
        (format!(r#"{{"apiVersion":"kafka-fleet.io/v1","kind":"Broker","metadata":{{"name":"red"}},"spec":{good_c}}}"#), 422, "kind"),
        (format!(r#"{{"apiVersion":"kafka-fleet.io/v1","kind":"KafkaCluster","metadata":{{"name":"red","owner":"me"}},"spec":{good_c}}}"#), 422, "metadata.owner"),
        (format!(r#"{{"apiVersion":"kafka-fleet.io/v1","kind":"KafkaCluster","metadata":{{"name":"red"}},"spec":{good_c},"status":{{}}}}"#), 422, "status"),
        (format!(r#"{{"apiVersion":"kafka-fleet.io/v1","kind":"KafkaCluster","metadata":{{"name":"blue","generation":7}},"spec":{good_c}}}"#), 409, ""),
        (t("orders", r#"{"cluster":"blue","partitions":-3}"#), 422, "spec.partitions"),
        (t("orders", r#"{"cluster":"blue","partitions":0}"#), 422, "spec.partitions"),
        (t("orders", r#"{"cluster":"blue","partitions":10001}"#), 422, "spec.partitions"),
        (t("orders", r#"{"cluster":"blue","partitions":"six"}"#), 422, "spec.partitions"),
        (t("orders", r#"{"cluster":"blue","partitions":6,"replicationFactor":4}"#), 422, "spec.replicationFactor"),
        (t("orders", r#"{"cluster":"blue","partitions":6,"replicationFactor":0}"#), 422, "spec.replicationFactor"),
        // An undeclared cluster is what is missing: 404, naming the field.
        (t("orders", r#"{"cluster":"nowhere","partitions":6}"#), 404, "spec.cluster"),
        (t("orders", r#"{"cluster":"blue","partitions":6,"retentionHours":-1}"#), 422, "spec.retentionHours"),
        (t("orders", r#"{"cluster":"blue","partitions":6,"configs":{"retention.msec":1}}"#), 422, "spec.configs.retention.msec"),
        (t("orders", r#"{"cluster":"blue","partitions":6,"configs":{"segment.bytes":"big"}}"#), 422, "spec.configs.segment.bytes"),
        (t("orders", r#"{"cluster":"blue","partitions":6,"configs":{"min.insync.replicas":3}}"#), 422, "spec.configs.min.insync.replicas"),
        (t("orders", r#"{"cluster":"blue","partitions":6,"retentionHours":2,"configs":{"retention.ms":1}}"#), 422, "spec.configs.retention.ms"),
        (t("bad topic!", r#"{"cluster":"blue","partitions":6}"#), 422, "metadata.name"),
        (t("__consumer_offsets", r#"{"cluster":"blue","partitions":6}"#), 422, "metadata.name"),
        (t(&"x".repeat(250), r#"{"cluster":"blue","partitions":6}"#), 422, "metadata.name"),
        (r#"{"apiVersion":"kafka-fleet.io/v1","kind":"Route","metadata":{"name":"events"},"spec":{"cluster":"nowhere"}}"#.to_string(), 404, "spec.cluster"),
        (format!("[{},{}]", t("dup", r#"{"cluster":"blue","partitions":1}"#), t("dup", r#"{"cluster":"blue","partitions":2}"#)), 422, "metadata.name"),
        (format!("[{},{}]", c(good_c), t("orders", r#"{"cluster":"red","partitions":6,"replicationFactor":5}"#)), 422, "spec.replicationFactor"),
        (r#"{"resources":[],"force":true}"#.to_string(), 422, "force"),
        (r#"{"resources":[]}"#.to_string(), 422, "resources"),
        ("{not json".to_string(), 400, "(body)"),
        (huge, 413, "(body)"),
    ];
    assert!(cases.len() >= 30);
    for (body, status, field) in &cases {
        let (code, answer) = fm.call(reqwest::Method::POST, "/v1/apply", Some(WRITE_TOKEN), Some(("application/json", body.clone()))).await;
        let shown: String = body.chars().take(160).collect();
        assert_eq!(code, *status, "{shown} -> {answer}");
        if !field.is_empty() {
            assert_eq!(answer["field"], *field, "{shown} -> {answer}");
        }
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()), "{answer}");
    }
    // Scale-down is refused on the stored cluster.
    let (code, answer) = fm
        .call(reqwest::Method::POST, "/v1/apply", Some(WRITE_TOKEN), Some(("application/yaml", cluster_yaml("blue", 2, "ec2"))))
        .await;
    assert_eq!((code, answer["field"].as_str()), (422, Some("spec.brokers")), "{answer}");
    // Auth and paths.
    let body = Some(("application/json", c(good_c)));
    assert_eq!(fm.call(reqwest::Method::POST, "/v1/apply", None, body.clone()).await.0, 401);
    assert_eq!(fm.call(reqwest::Method::POST, "/v1/apply", Some("wrong-token-123"), body.clone()).await.0, 401);
    assert_eq!(fm.call(reqwest::Method::POST, "/v1/apply", Some(READ_TOKEN), body.clone()).await.0, 403);
    assert_eq!(fm.call(reqwest::Method::DELETE, "/v1/clusters/blue", Some(READ_TOKEN), None).await.0, 403);
    let (code, answer) = fm.call(reqwest::Method::DELETE, "/v1/clusters/Not_A_Name", Some(WRITE_TOKEN), None).await;
    assert_eq!((code, answer["field"].as_str()), (422, Some("name")));
    assert_eq!(fm.call(reqwest::Method::DELETE, "/v1/clusters/nowhere", Some(WRITE_TOKEN), None).await.0, 404);
    assert_eq!(fm.call(reqwest::Method::GET, "/v1/journal?limit=0", Some(READ_TOKEN), None).await.1["field"], "limit");
    assert_eq!(fm.call(reqwest::Method::GET, "/v1/clusters/blue/brokers/x/properties", Some(READ_TOKEN), None).await.1["field"], "id");

    // fleetctl: bad files exit 2 naming the file, document and field; nothing is sent.
    let dir = fm.run.path.join("bad");
    std::fs::create_dir_all(&dir).expect("dir");
    let fleetctl_cases = [
        ("unknown.yaml", "apiVersion: kafka-fleet.io/v1\nkind: Topic\nmetadata: { name: t }\nspec: { cluster: blue, partitions: 3, partitons: 4 }\n", "spec.partitons"),
        ("negative.yaml", "apiVersion: kafka-fleet.io/v1\nkind: Topic\nmetadata: { name: t }\nspec: { cluster: blue, partitions: -3 }\n", "spec.partitions"),
        ("broken.yaml", "apiVersion: kafka-fleet.io/v1\nkind: Topic\nmetadata: { name: t\n", "not valid YAML"),
        ("rf.yaml", "apiVersion: kafka-fleet.io/v1\nkind: Topic\nmetadata: { name: t }\nspec: { cluster: blue, partitions: 3, replicationFactor: 5 }\n", "spec.replicationFactor"),
    ];
    for (name, body, field) in fleetctl_cases {
        let path = write(&dir, name, body);
        let out = fm.fleetctl(&["apply", "-f", &path]).await;
        assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(field), "{name}: {err}");
    }
    let out = fm.fleetctl(&["get", "clusters", "-o", "xml"]).await;
    assert_eq!(out.status.code(), Some(2));

    assert_eq!(store.fingerprint().await.expect("fingerprint"), before, "rejected input changed the store");

    // And the good path of the same API still works: OpenAPI, metrics, get, dry run.
    let (code, openapi) = fm.call(reqwest::Method::GET, "/openapi.json", None, None).await;
    assert!(code == 200 && openapi["paths"]["/v1/apply"].is_object(), "{openapi}");
    let out = fm.fleetctl(&["get", "clusters", "-o", "yaml"]).await;
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("name: blue"), "{}", text(&out));
}

/// A fleet manager whose ec2 provider talks to moto, launching moto's first image.
/// A launch template in moto holding only an image (what terraform's templates would add
/// does not change what these tests check); its ID.
async fn launch_template(ec2: &aws_sdk_ec2::Client, name: &str, image: &str) -> String {
    ec2.create_launch_template()
        .launch_template_name(name)
        .launch_template_data(aws_sdk_ec2::types::RequestLaunchTemplateData::builder().image_id(image).build())
        .send()
        .await
        .expect("launch template")
        .launch_template()
        .and_then(|t| t.launch_template_id())
        .expect("template id")
        .to_string()
}

async fn ec2_options(zk: &ZkEnsemble, moto: &fleet_tests::Moto, ec2: &aws_sdk_ec2::Client) -> FleetManagerOptions {
    let ami = ec2.describe_images().send().await.expect("images").images().first().and_then(|i| i.image_id()).expect("ami").to_string();
    let mut options = FleetManagerOptions::new(&zk.connect_string());
    options.extra_args = vec!["--ec2-region".into(), "us-east-1".into(), "--ec2-endpoint-url".into(), moto.endpoint(), "--ec2-image-id".into(), ami];
    options.extra_env = fleet_tests::moto::AWS_ENV.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    options
}

/// The ec2 provider against moto, configured as terraform's outputs configure it (a launch
/// template, a subnet per zone, a per-family instance profile): RunInstances with the cluster tag
/// and user-data; the test plays the booting host by starting a local broker for the instance
/// moto reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ec2_provider_launches_tagged_instances_that_become_brokers() {
    init_logging();
    let zk = ZkEnsemble::start(1).await;
    let moto = fleet_tests::Moto::start().await;
    let ec2 = moto.ec2().await;
    let mut options = ec2_options(&zk, &moto, &ec2).await;
    let ami = ec2.describe_images().send().await.expect("images").images().last().and_then(|i| i.image_id()).expect("ami").to_string();
    let vpc = ec2.create_vpc().cidr_block("10.40.0.0/16").send().await.expect("vpc").vpc().and_then(|v| v.vpc_id()).expect("vpc id").to_string();
    let subnet = ec2
        .create_subnet()
        .vpc_id(&vpc)
        .cidr_block("10.40.0.0/20")
        .availability_zone("us-east-1a")
        .send()
        .await
        .expect("subnet")
        .subnet()
        .and_then(|s| s.subnet_id())
        .expect("subnet id")
        .to_string();
    let template = launch_template(&ec2, "kafka-fleet-broker-test", &ami).await;
    // KRaft controllers launch from a template of their own (terraform's controller template);
    // its image differs here so that an instance tells which template it came from.
    let images = ec2.describe_images().send().await.expect("images");
    let controller_ami = images.images().iter().filter_map(|i| i.image_id()).find(|id| *id != ami).expect("a second image").to_string();
    let controller_template = launch_template(&ec2, "kafka-fleet-controller-test", &controller_ami).await;
    moto.create_instance_profile("kafka-fleet-broker-amber").await;
    moto.create_instance_profile("kafka-fleet-broker-jade").await;
    // The launch template replaces the image flag, as in terraform's fleet_manager_env output.
    options.extra_args.truncate(4);
    options.extra_env.extend([
        ("FLEET_EC2_CONTROLLER_LAUNCH_TEMPLATE".to_string(), controller_template.clone()),
        ("FLEET_EC2_KAFKA4_LIBS".to_string(), "/opt/kafka4/libs".to_string()),
        ("FLEET_EC2_LAUNCH_TEMPLATE".to_string(), template.clone()),
        ("FLEET_EC2_SUBNETS".to_string(), format!("us-east-1a={subnet}")),
        ("FLEET_EC2_INSTANCE_PROFILE_PREFIX".to_string(), "kafka-fleet-broker-".to_string()),
    ]);
    let fm = FleetManager::start(options).await;
    let yaml = cluster_yaml("amber", 1, "ec2").replace("availabilityZones: [zone-a, zone-b, zone-c]", "availabilityZones: [us-east-1a]")
        + "---\napiVersion: kafka-fleet.io/v1\nkind: Topic\nmetadata: { name: audit }\nspec: { cluster: amber, partitions: 2, replicationFactor: 1 }\n";
    let path = write(&fm.run.path, "amber.yaml", &yaml);
    let out = fm.fleetctl(&["apply", "-f", &path, "-o", "json"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let revision = serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("json")["revisions"]["amber"].as_i64().expect("revision");

    let instance = wait_until("an instance tagged for amber", Duration::from_secs(30), || {
        let ec2 = ec2.clone();
        async move {
            let out = ec2
                .describe_instances()
                .filters(aws_sdk_ec2::types::Filter::builder().name("tag:fleet:cluster").values("amber").build())
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let ids: Vec<(String, String)> = out
                .reservations()
                .iter()
                .flat_map(|r| r.instances())
                .map(|i| (i.instance_id().unwrap_or_default().to_string(), i.placement().and_then(|p| p.availability_zone()).unwrap_or_default().to_string()))
                .collect();
            Ok((ids.len() == 1).then(|| ids[0].clone()))
        }
    })
    .await;
    assert_eq!(instance.1, "us-east-1a");
    // Launched from the template, into the zone's subnet, with the family's instance profile.
    let described = ec2.describe_instances().instance_ids(&instance.0).send().await.expect("describe");
    let launched = described.reservations().iter().flat_map(|r| r.instances()).next().expect("the instance");
    assert_eq!(launched.subnet_id(), Some(subnet.as_str()));
    assert_eq!(launched.image_id(), Some(ami.as_str()), "the template's image");
    let profile = launched.iam_instance_profile().and_then(|p| p.arn()).unwrap_or_default();
    assert!(profile.ends_with("/kafka-fleet-broker-amber"), "instance profile {profile}");
    // The user-data boots the host: the cluster file, then kafka-bootstrap.
    let attr = ec2
        .describe_instance_attribute()
        .instance_id(&instance.0)
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
        .send()
        .await
        .expect("user data");
    let encoded = attr.user_data().and_then(|u| u.value()).expect("user data set").to_string();
    let script = String::from_utf8(base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded).expect("base64")).expect("utf-8");
    assert!(script.contains("cluster: amber") && script.contains("kafka-bootstrap run"), "{script}");
    // No secret in user-data: it names the secret holding amber's host token, which the fleet
    // manager put in Secrets Manager before launching (read back from moto).
    let secret_name = "kafka-fleet/hosts/amber/fleet-api-token";
    assert!(!script.contains("fh2.") && script.contains(&format!("tokenSecret: {secret_name}")), "{script}");
    let stored = moto.secrets().await.get_secret_value().secret_id(secret_name).send().await.expect("the host token's secret");
    assert!(stored.secret_string().is_some_and(|t| t.starts_with("fh2.amber.")), "{stored:?}");
    assert!(!script.contains("169.254.169.254") && !script.contains("--instance-id"), "the bootstrap reads its instance ID through IMDSv2 itself: {script}");
    for configured in [fleet_tests::fleet_manager::WRITE_TOKEN, fleet_tests::fleet_manager::READ_TOKEN, fleet_tests::fleet_manager::CLIENT_TOKEN] {
        assert!(!script.contains(configured), "a configured token in user-data: {script}");
    }
    // Play the host booting: kafka-bootstrap with the ec2 provider, in the fleet's namespace.
    let mut spec = fleet_tests::kafka::ClusterSpec::local(1);
    spec.name = "amber".into();
    spec.fleet_root = Some(fm.options.fleet_root.clone());
    spec.provider = fleet_tests::kafka::HostProvider::Ec2 { endpoint: moto.endpoint() };
    // As the user-data's cluster file has it: the token read from the secret, then used for
    // the broker's persisted properties (required: a token refused would stop the boot).
    spec.fleet_api = Some(fm.url());
    spec.fleet_api_token_secret = Some(secret_name.to_string());
    let mut host = fleet_tests::LocalCluster::new(&zk, spec);
    host.start_broker(&instance.0).await;
    wait_converged(&fm, "amber", revision, Duration::from_secs(90)).await;
    let md = kcat::metadata(&host.bootstrap_servers()).await.expect("kcat");
    assert_eq!(kcat::topic_shape(&md, "audit"), Some((2, 1)));
    // Still exactly one instance: nothing was launched twice while the host booted.
    let out = ec2.describe_instances().send().await.expect("describe");
    let count = out.reservations().iter().flat_map(|r| r.instances()).filter(|i| i.tags().iter().any(|t| t.key() == Some("fleet:cluster") && t.value() == Some("amber"))).count();
    assert_eq!(count, 1);

    // A KRaft cluster on EC2: its controllers launch first, from the controller template, with
    // the declared controller instance type, the family's profile, and user-data that boots
    // Kafka 4.x's jars as a controller on 9093 with the cluster ID minted for the resource.
    // (No host boots here, so no quorum forms and no broker is launched: brokers wait for a
    // quorum leader.)
    let yaml = "apiVersion: kafka-fleet.io/v1\nkind: KafkaCluster\nmetadata: { name: jade }\nspec:\n  kafkaVersion: \"4.4\"\n  brokers: 1\n  controllers: 1\n  \
                controllerInstanceType: t3.small\n  availabilityZones: [us-east-1a]\n  provider: ec2\n";
    let path = write(&fm.run.path, "jade.yaml", yaml);
    let out = fm.fleetctl(&["apply", "-f", &path, "-o", "json"]).await;
    assert!(out.status.success(), "a KRaft cluster on ec2 is accepted: {}", text(&out));
    let controller = wait_until("a controller instance tagged for jade", Duration::from_secs(30), || {
        let ec2 = ec2.clone();
        async move {
            let out = ec2
                .describe_instances()
                .filters(aws_sdk_ec2::types::Filter::builder().name("tag:fleet:cluster").values("jade").build())
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let found: Vec<aws_sdk_ec2::types::Instance> = out.reservations().iter().flat_map(|r| r.instances()).cloned().collect();
            Ok((found.len() == 1).then(|| found[0].clone()))
        }
    })
    .await;
    let tag = |key: &str| controller.tags().iter().find(|t| t.key() == Some(key)).and_then(|t| t.value()).unwrap_or_default().to_string();
    assert_eq!(tag("fleet:role"), "controller");
    assert_eq!(controller.image_id(), Some(controller_ami.as_str()), "launched from the controller template");
    assert_eq!(controller.instance_type().map(|t| t.as_str()), Some("t3.small"), "the declared controllerInstanceType");
    assert!(controller.iam_instance_profile().and_then(|p| p.arn()).unwrap_or_default().ends_with("/kafka-fleet-broker-jade"));
    let attr = ec2
        .describe_instance_attribute()
        .instance_id(controller.instance_id().unwrap_or_default())
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
        .send()
        .await
        .expect("user data");
    let encoded = attr.user_data().and_then(|u| u.value()).expect("user data set").to_string();
    let script = String::from_utf8(base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded).expect("base64")).expect("utf-8");
    let kafka_id = status(&fm, "jade").await["status"]["kafkaClusterId"].as_str().unwrap_or_default().to_string();
    assert!(!kafka_id.is_empty() && script.contains(&kafka_id), "the minted cluster ID in the cluster file: {kafka_id}: {script}");
    assert!(script.contains("--kafka-libs /opt/kafka4/libs --role controller --port 9093"), "{script}");
    assert!(script.contains("controllers: 1"), "{script}");
}

/// A launch whose answer is lost (the call cut off after EC2 made the instance) is retried with
/// its launch token and finds that instance: one host, not one per retry. Checked against moto's
/// own DescribeInstances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ec2_launch_retried_after_a_lost_answer_makes_one_instance() {
    init_logging();
    let zk = ZkEnsemble::start(1).await;
    let moto = fleet_tests::Moto::start().await;
    let ec2 = moto.ec2().await;
    let mut options = ec2_options(&zk, &moto, &ec2).await;
    // The first five answers are lost: the step's own retries (four attempts) all fail, the step
    // is journalled as failed, and the next reconcile asks again with the same token.
    options.extra_env.push(("FLEET_FAILPOINT_LOSE_LAUNCH_ANSWER".into(), "5".into()));
    let fm = FleetManager::start(options).await;
    let yaml = cluster_yaml("cobalt", 1, "ec2").replace("availabilityZones: [zone-a, zone-b, zone-c]", "availabilityZones: [us-east-1b]");
    let path = write(&fm.run.path, "cobalt.yaml", &yaml);
    let out = fm.fleetctl(&["apply", "-f", &path]).await;
    assert!(out.status.success(), "{}", text(&out));
    let instances = || {
        let ec2 = ec2.clone();
        async move {
            let out = ec2
                .describe_instances()
                .filters(aws_sdk_ec2::types::Filter::builder().name("tag:fleet:cluster").values("cobalt").build())
                .send()
                .await
                .expect("describe");
            out.reservations()
                .iter()
                .flat_map(|r| r.instances())
                .map(|i| {
                    let token = i.tags().iter().find(|t| t.key() == Some("fleet:launch-token")).and_then(|t| t.value()).unwrap_or_default().to_string();
                    (i.instance_id().unwrap_or_default().to_string(), token)
                })
                .collect::<Vec<_>>()
        }
    };
    // The launch step fails (every attempt's answer lost; each retry asked with the same token
    // and found the instance the first attempt made); the next reconcile observes the host
    // carrying that token, so nothing is launched again.
    wait_until("the launch failed, and its host observed", Duration::from_secs(60), || async {
        let (_, journal) = fm.get("/v1/journal?cluster=cobalt&limit=100").await;
        let entries = journal.as_array().cloned().unwrap_or_default();
        let lost = entries.iter().filter(|e| e["action"] == "launch-host" && e["outcome"] == "error").count();
        let (_, v) = fm.get("/v1/clusters/cobalt").await;
        let hosts = v["status"]["hosts"].as_array().map(|h| h.len()).unwrap_or(0);
        if lost >= 1 && hosts == 1 {
            Ok(Some(()))
        } else {
            Err(format!("lost {lost}, hosts {hosts}: {}", fm.log_tail(5)))
        }
    })
    .await;
    // Two more reconciles later, still exactly one instance, carrying the token.
    let (_, first) = fm.get("/v1/clusters/cobalt").await;
    let seen_at = first["status"]["atMs"].as_i64().unwrap_or(0);
    wait_until("two more reconciles", Duration::from_secs(30), || async {
        let (_, v) = fm.get("/v1/clusters/cobalt").await;
        Ok((v["status"]["atMs"].as_i64().unwrap_or(0) > seen_at + 2_000).then_some(()))
    })
    .await;
    let found = instances().await;
    assert_eq!(found.len(), 1, "one instance for one broker despite the lost answers: {found:?}");
    assert!(!found[0].1.is_empty(), "tagged with its launch token: {found:?}");
}

/// A leader paused mid-reconcile (SIGSTOP after it launched a host, before it recorded) loses its
/// session; the standby takes over and claims the store with a newer epoch. Resumed, the old
/// leader tries to record: the store refuses it, and none of its writes land.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_leaders_writes_are_fenced_after_the_standby_takes_over() {
    init_logging();
    let zk = ZkEnsemble::start(1).await;
    let pg = Postgres::start().await;
    pg.create_database("fleet_fence").await;
    let mut options = FleetManagerOptions::new(&zk.connect_string());
    options.database = Some(pg.url("fleet_fence"));
    options.session_timeout_ms = 4000;
    let mut first_options = options.clone();
    first_options.extra_env.push(("FLEET_FAILPOINT_STOP_BEFORE_RECORD".into(), "1".into()));
    let first = FleetManager::start(first_options).await;
    wait_until("first instance leads", Duration::from_secs(20), || async {
        Ok(first.health().await.filter(|h| h["leader"] == true).map(|_| ()))
    })
    .await;
    // The standby has no host provider: it observes hosts as unknown and launches nothing.
    let mut standby_options = options;
    standby_options.local_hosts = false;
    let second = FleetManager::start(standby_options).await;
    let path = write(&first.run.path, "violet.yaml", &cluster_yaml("violet", 1, "local"));
    let out = second.fleetctl(&["apply", "-f", &path]).await;
    assert!(out.status.success(), "{}", text(&out));

    // The leader launches, then stops itself before recording.
    let pid = first.process.as_ref().expect("process").pid();
    wait_until("the leader paused (SIGSTOP)", Duration::from_secs(60), || async {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
        let state = stat.rsplit(')').next().and_then(|r| r.split_whitespace().next()).unwrap_or("");
        Ok((state == "T").then_some(()))
    })
    .await;
    wait_until("standby takes over", Duration::from_secs(30), || async {
        Ok(second.health().await.filter(|h| h["leader"] == true).map(|_| ()))
    })
    .await;
    let store = Store::open(&pg.url("fleet_fence")).await.expect("store");
    let journal = store.journal(None, 1000, None).await.expect("journal");
    let elected = journal
        .iter()
        .find(|e| e.action == "elected" && e.actor.contains(&format!("fm-{}", second.port)))
        .map(|e| e.id)
        .expect("standby's election journalled");
    let first_actor = format!("fm-{}", first.port);

    fleet_tests::process::signal_pid(pid as i32, libc::SIGCONT);
    let fenced = wait_until("the resumed leader's write refused", Duration::from_secs(30), || async {
        let text = reqwest::get(format!("{}/metrics", first.url())).await.map_err(|e| e.to_string())?.text().await.map_err(|e| e.to_string())?;
        let n: f64 = text
            .lines()
            .find(|l| l.starts_with("fleet_manager_fenced_writes_total"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        Ok((n >= 1.0).then_some(n))
    })
    .await;
    eprintln!("fenced writes of the resumed leader: {fenced}");
    // Nothing written by the old leader after the new one was elected.
    let journal = store.journal(None, 1000, None).await.expect("journal");
    let late: Vec<_> = journal.iter().filter(|e| e.id > elected && e.actor.contains(&first_actor)).collect();
    assert!(late.is_empty(), "the deposed leader wrote after the takeover: {late:?}");
    // Its launch answer (the instance ID) never reached the intent; the launch token did (persisted before the call).
    let intent = store.intent("violet").await.expect("intent").expect("some");
    let launches = intent["launches"].as_object().expect("launches");
    assert_eq!(launches.len(), 1, "{intent}");
    assert!(launches.values().all(|l| l.get("instanceId").is_none()), "the late record did not land: {intent}");
    assert!(store.leader_epoch().await.expect("epoch") > 0);
    wait_until("the old leader steps down", Duration::from_secs(20), || async {
        Ok(first.health().await.filter(|h| h["leader"] == false).map(|_| ()))
    })
    .await;
}
