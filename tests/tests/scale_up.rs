//! Scale-up against real parts: a fleet manager launching local broker hosts (racks zone-a/b/c),
//! a producer writing to every topic throughout, the auditor heartbeating. Results are checked
//! with Kafka's own `kafka-topics --describe`, not with the project's code. One fixture, run
//! through in order: bad input, the scale-up (with a crash right after its commit), a forced
//! controller move, and a commit refused because a topic changed after planning.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleet_tests::fleet_manager::{FleetManager, FleetManagerOptions};
use fleet_tests::kafka::{describe_topics, local_cluster_yaml, DescribedTopic};
use fleet_tests::{init_logging, wait_until, ZkEnsemble};
use rdkafka::producer::{FutureProducer, FutureRecord};

const CLUSTER: &str = "grow";
const TOPICS: usize = 20;
/// Keyed topics (left alone by `--topics all`).
const KEYED: [&str; 3] = ["t17", "t18", "t19"];

fn specs() -> String {
    let mut text = local_cluster_yaml(CLUSTER, 3, &[("zookeeper.session.timeout.ms", "6000")]);
    for i in 0..TOPICS {
        let name = format!("t{i:02}");
        // Two topics with three copies (high class), the rest two (medium).
        let class = if i < 2 { ", priorityClass: high" } else { "" };
        let keyed = if KEYED.contains(&name.as_str()) { ", keyed: true" } else { "" };
        text.push_str(&format!(
            "---\napiVersion: kafka-fleet.io/v1\nkind: Topic\nmetadata: {{ name: {name} }}\nspec: {{ cluster: {CLUSTER}, partitions: 6{class}{keyed} }}\n"
        ));
    }
    text
}

fn text(out: &std::process::Output) -> String {
    format!("exit {:?}\nstdout: {}\nstderr: {}", out.status.code(), String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Every topic znode's (version, data): what "nothing was written to ZooKeeper" compares.
async fn topic_znodes(zk: &zookeeper_client::Client, root: &str) -> BTreeMap<String, (i32, Vec<u8>)> {
    let kafka = fleet_common::FleetPaths::new(root).cluster(CLUSTER).kafka();
    let mut out = BTreeMap::new();
    for t in zk.list_children(&kafka.topics()).await.expect("topics") {
        let (data, stat) = zk.get_data(&kafka.topic(&t)).await.expect("topic znode");
        out.insert(t, (stat.version, data));
    }
    out
}

/// Broker -> rack, from the brokers' own registrations.
async fn racks(zk: &zookeeper_client::Client, root: &str) -> BTreeMap<i32, String> {
    let kafka = fleet_common::FleetPaths::new(root).cluster(CLUSTER).kafka();
    let mut out = BTreeMap::new();
    for id in zk.list_children(&kafka.broker_ids()).await.expect("ids") {
        let Ok(id) = id.parse::<i32>() else { continue };
        let (data, _) = zk.get_data(&kafka.broker(id)).await.expect("registration");
        let reg: fleet_common::znodes::BrokerRegistration = serde_json::from_slice(&data).expect("registration json");
        out.insert(id, reg.rack.unwrap_or_default());
    }
    out
}

async fn operation(fm: &FleetManager, id: &str) -> serde_json::Value {
    let (code, body) = fm.get(&format!("/v1/operations/{id}")).await;
    assert_eq!(code, 200, "{body}");
    body
}

async fn wait_phase(fm: &FleetManager, id: &str, phase: &str, deadline: Duration) -> serde_json::Value {
    wait_until(&format!("operation {id} {phase}"), deadline, || async move {
        let op = operation(fm, id).await;
        if op["status"]["phase"] == phase {
            Ok(Some(op))
        } else if op["status"]["phase"] == "Failed" {
            panic!("operation failed: {op}");
        } else {
            Err(format!("{} {} / {}", op["status"]["phase"], op["status"]["message"], fm.log_tail(3)))
        }
    })
    .await
}

/// Writes unkeyed records to every topic until stopped; counts deliveries and errors.
struct Load {
    stop: Arc<AtomicBool>,
    delivered: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
    first_error: Arc<std::sync::Mutex<Option<String>>>,
    task: tokio::task::JoinHandle<()>,
}

fn start_load(bootstrap: &str) -> Load {
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("linger.ms", "20")
        // New partitions are written to within seconds of their creation.
        .set("topic.metadata.refresh.interval.ms", "2000")
        .set("message.timeout.ms", "30000")
        .create()
        .expect("producer");
    let stop = Arc::new(AtomicBool::new(false));
    let delivered = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None));
    let (s, d, e, f) = (stop.clone(), delivered.clone(), errors.clone(), first_error.clone());
    let task = tokio::spawn(async move {
        use futures::StreamExt;
        let mut pending = futures::stream::FuturesUnordered::new();
        let count = |r: Result<rdkafka::producer::future_producer::OwnedDeliveryResult, futures::channel::oneshot::Canceled>| match r {
            Ok(Ok(_)) => {
                d.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Err((err, _))) => {
                e.fetch_add(1, Ordering::Relaxed);
                f.lock().expect("lock").get_or_insert(err.to_string());
            }
            Err(_) => {
                e.fetch_add(1, Ordering::Relaxed);
                f.lock().expect("lock").get_or_insert("delivery canceled".into());
            }
        };
        let mut n = 0u64;
        while !s.load(Ordering::Relaxed) {
            for i in 0..TOPICS {
                let topic = format!("t{i:02}");
                let payload = format!("record {n}");
                n += 1;
                match producer.send_result(FutureRecord::<(), String>::to(&topic).payload(&payload)) {
                    Ok(delivery) => pending.push(delivery),
                    Err((err, _)) => count(Ok(Err((err, rdkafka::message::OwnedMessage::new(None, None, topic.clone(), rdkafka::Timestamp::NotAvailable, 0, 0, None))))),
                }
            }
            // Collect what has been answered meanwhile, without waiting.
            let tick = tokio::time::sleep(Duration::from_millis(50));
            tokio::pin!(tick);
            loop {
                tokio::select! {
                    Some(r) = pending.next(), if !pending.is_empty() => count(r),
                    _ = &mut tick => break,
                }
            }
        }
        while let Some(r) = pending.next().await {
            count(r);
        }
    });
    Load { stop, delivered, errors, first_error, task }
}

/// Waits for the auditor to report every one of `brokers` at 100% produce and consume.
async fn wait_auditor(url: &str, brokers: usize, deadline: Duration) {
    wait_until(&format!("the auditor to report {brokers} brokers at 100%"), deadline, || async move {
        let v: serde_json::Value = reqwest::get(url).await.map_err(|e| e.to_string())?.json().await.map_err(|e| e.to_string())?;
        let seen = v[0]["brokers"].as_array().cloned().unwrap_or_default();
        let ok = seen.len() == brokers
            && seen.iter().all(|b| b["produce_availability"] == 1.0 && b["consume_availability"] == 1.0 && b["attempts_total"].as_u64().unwrap_or(0) >= 4);
        if ok {
            Ok(Some(()))
        } else {
            Err(format!("{seen:?}"))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_up_adds_partitions_on_new_brokers_atomically() {
    init_logging();
    let zk = ZkEnsemble::start(1).await;
    let mut options = FleetManagerOptions::new(&zk.connect_string());
    // The first process dies right after its scale-up commit.
    options.extra_env.push(("FLEET_FAILPOINT_CRASH_AFTER_COMMIT".into(), "1".into()));
    let mut fm = FleetManager::start(options).await;
    let root = fm.options.fleet_root.clone();
    let client = zk.client().await;
    let spec_path = fm.run.path.join("grow.yaml");
    std::fs::write(&spec_path, specs()).expect("specs");
    let out = fm.fleetctl(&["apply", "-f", &spec_path.display().to_string(), "--wait", "--timeout", "180s"]).await;
    assert!(out.status.success(), "{}", text(&out));

    // ---- Bad input: refused naming the field; nothing written to ZooKeeper or the store.
    let before_zk = topic_znodes(&client, &root).await;
    let (_, journal_before) = fm.get("/v1/journal?limit=1").await;
    let cases: &[(&[&str], i32, &str)] = &[
        (&["scale-up", "nope", "--brokers", "6"], 3, "cluster"),
        (&["scale-up", CLUSTER, "--brokers", "3"], 2, "brokers"),
        (&["scale-up", CLUSTER, "--brokers", "6", "--topics", "t00,missing"], 2, "missing"),
        (&["scale-up", CLUSTER, "--brokers", "6", "--topics", "t18"], 2, "keyed"),
        (&["scale-up", CLUSTER, "--brokers", "6", "--partitions-per-topic", "0"], 2, "partitionsPerTopic"),
    ];
    for (args, code, needle) in cases {
        let out = fm.fleetctl(args).await;
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {}", text(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains(needle), "{args:?} names {needle}: {}", text(&out));
    }
    // A dry run shows the plan for the brokers expected and writes nothing either.
    let out = fm.fleetctl(&["scale-up", CLUSTER, "--brokers", "6", "--dry-run", "-o", "json"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let dry: serde_json::Value = serde_json::from_slice(&out.stdout).expect("dry-run json");
    assert_eq!(dry["plan"]["predicted"], true, "{dry}");
    assert_eq!(dry["plan"]["newBrokers"], serde_json::json!([4, 5, 6]), "{dry}");
    assert_eq!(dry["plan"]["topics"].as_array().map(Vec::len), Some(TOPICS - KEYED.len()), "{dry}");
    assert_eq!(dry["plan"]["commits"], 1);
    assert_eq!(topic_znodes(&client, &root).await, before_zk, "ZooKeeper untouched by refused or dry-run requests");
    let (_, journal_after) = fm.get("/v1/journal?limit=1").await;
    assert_eq!(journal_before, journal_after, "nothing journalled");
    let (_, ops) = fm.get("/v1/operations").await;
    assert_eq!(ops, serde_json::json!([]), "no operation stored");

    // ---- The scale-up, with a producer on every topic and the auditor heartbeating.
    let servers = fm.bootstrap_servers();
    let ids_before: BTreeMap<String, String> =
        describe_topics(&servers, None).await.expect("describe").into_iter().map(|(t, d)| (t, d.topic_id)).collect();
    let load = start_load(&servers);
    let auditor_port = fleet_tests::free_port();
    let auditor_config = fm.run.path.join("auditor.yaml");
    std::fs::write(
        &auditor_config,
        format!("instanceId: grow-auditor\nlisten: 127.0.0.1:{auditor_port}\nclusters:\n  - name: {CLUSTER}\n    bootstrapServers: \"{servers}\"\n    intervalMs: 500\n    windowIntervals: 4\n"),
    )
    .expect("auditor config");
    let mut cmd = std::process::Command::new(fleet_tests::workspace_bin("kafka-auditor"));
    cmd.arg("run").arg("--config").arg(&auditor_config);
    let _auditor = fleet_tests::process::ManagedProcess::spawn("auditor", cmd, &fm.run.path.join("auditor.log")).expect("auditor");
    let figures = format!("http://127.0.0.1:{auditor_port}/api/figures");
    wait_auditor(&figures, 3, Duration::from_secs(60)).await;

    let out = fm.fleetctl(&["scale-up", CLUSTER, "--brokers", "6", "-o", "json"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let op: serde_json::Value = serde_json::from_slice(&out.stdout).expect("operation json");
    let id = op["id"].as_str().expect("operation id").to_string();
    // A second scale-up while one runs: refused, naming the cluster.
    let out = fm.fleetctl(&["scale-up", CLUSTER, "--brokers", "7"]).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&id), "{}", text(&out));

    // The failpoint kills the fleet manager right after the commit; a new process finishes.
    let started = Instant::now();
    while fm.process.as_mut().is_some_and(|p| p.is_running()) {
        assert!(started.elapsed() < Duration::from_secs(240), "the commit never happened: {}", fm.log_tail(30));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let store = fleet_manager::store::Store::open(&fm.database_url()).await.expect("store");
    let stored = store.operation(&id).await.expect("stored operation");
    assert_eq!(stored.status.phase.as_str(), "Committing", "killed before recording the commit");
    drop(store);
    fm.options.extra_env.clear();
    fm.spawn().await;
    let done = wait_phase(&fm, &id, "Succeeded", Duration::from_secs(120)).await;
    let history: Vec<&str> = done["status"]["history"].as_array().expect("history").iter().filter_map(|h| h["phase"].as_str()).collect();
    assert_eq!(history, ["Pending", "WaitingForBrokers", "Committing", "WaitingForLeaders", "RecordingSpecs", "Succeeded"], "{done}");
    assert!(done["status"]["leadersMillis"].as_u64().is_some(), "{done}");

    // Checked with Kafka's own tool.
    let servers = fm.bootstrap_servers();
    let racks = racks(&client, &root).await;
    assert_eq!(racks.keys().copied().collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
    let described = describe_topics(&servers, None).await.expect("describe");
    let new_brokers: BTreeSet<i32> = [4, 5, 6].into();
    let mut new_leaders: BTreeMap<i32, usize> = BTreeMap::new();
    for i in 0..TOPICS {
        let name = format!("t{i:02}");
        let t: &DescribedTopic = described.get(&name).unwrap_or_else(|| panic!("{name} described"));
        assert_eq!(t.topic_id, ids_before[&name], "{name} keeps its topic ID");
        if KEYED.contains(&name.as_str()) {
            assert_eq!(t.partitions.len(), 6, "keyed {name} untouched");
            continue;
        }
        assert_eq!(t.partitions.len(), 12, "{name}: 6 partitions on 3 brokers, 3 added -> 12 (not added twice)");
        for p in 6..12 {
            let (leader, replicas, isr) = &t.partitions[&p];
            assert!(replicas.iter().all(|r| new_brokers.contains(r)), "{name}-{p} on new brokers only: {replicas:?}");
            let distinct: BTreeSet<&str> = replicas.iter().map(|r| racks[r].as_str()).collect();
            assert_eq!(distinct.len(), replicas.len(), "{name}-{p} replicas in distinct racks: {replicas:?}");
            assert!(isr.contains(leader), "{name}-{p} has a leader in its ISR: {leader} / {isr:?}");
            *new_leaders.entry(*leader).or_default() += 1;
        }
    }
    let (min, max) = (new_leaders.values().min().copied().unwrap_or(0), new_leaders.values().max().copied().unwrap_or(0));
    assert!(new_leaders.len() == 3 && max - min <= 1, "leaders over brokers 4-6 differ by at most one: {new_leaders:?}");
    // The specs now declare what Kafka has.
    let (_, topic) = fm.get(&format!("/v1/clusters/{CLUSTER}/topics/t00")).await;
    assert_eq!(topic["effective"]["partitions"], 12, "{topic}");
    let (_, keyed) = fm.get(&format!("/v1/clusters/{CLUSTER}/topics/t17")).await;
    assert_eq!(keyed["effective"]["partitions"], 6);
    // The user's documents are theirs: applied again unchanged (brokers 3, partitions 6), they
    // change nothing; the scale-up's counts are overrides that say what to write; `get -o yaml`
    // prints them, and that applies unchanged too.
    assert_eq!(topic["document"]["spec"]["partitions"], 6, "{topic}");
    assert!(topic["overrides"][0]["reason"].as_str().is_some_and(|r| r.contains("partitions: 12")), "{topic}");
    let out = fm.fleetctl(&["apply", "-f", &spec_path.display().to_string(), "-o", "json"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let again: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(again["results"].as_array().is_some_and(|r| r.iter().all(|r| r["outcome"] == "unchanged")), "{again}");
    assert!(again["operations"].as_array().is_none_or(|o| o.is_empty()), "no decommission of the new brokers: {again}");
    let (_, cluster) = fm.get(&format!("/v1/clusters/{CLUSTER}")).await;
    assert_eq!(cluster["effective"]["brokers"], 6, "{cluster}");
    let described_again = describe_topics(&fm.bootstrap_servers(), Some("t00")).await.expect("describe");
    assert_eq!(described_again["t00"].partitions.len(), 12, "partitions unchanged by Kafka's tool");
    let out = fm.fleetctl(&["get", "clusters", "-o", "yaml"]).await;
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("brokers: 6"), "{}", text(&out));
    // A lower count than the scale-up raised is refused unless confirmed, naming the scale-up.
    let lowered = specs().replace("brokers: 3", "brokers: 4");
    let out = fm.apply_yaml("lowered.yaml", &lowered).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--confirm-decommission") && text(&out).contains("scale-up"), "{}", text(&out));

    // The auditor follows the new brokers and their monitor partitions: 100% both ways on six.
    wait_auditor(&figures, 6, Duration::from_secs(90)).await;
    load.stop.store(true, Ordering::Relaxed);
    load.task.await.expect("producer task");
    let delivered = load.delivered.load(Ordering::Relaxed);
    assert!(delivered > 1_000, "the producer wrote throughout: {delivered}");
    assert_eq!(load.errors.load(Ordering::Relaxed), 0, "the producer saw no error: {:?}", load.first_error.lock().expect("lock"));

    // ---- A forced controller move changes neither partition counts nor topic IDs.
    let kafka = fleet_common::FleetPaths::new(&root).cluster(CLUSTER).kafka();
    let (old, _) = client.get_data(&kafka.controller()).await.expect("controller");
    client.delete(&kafka.controller(), None).await.expect("delete /controller");
    wait_until("a new controller", Duration::from_secs(60), || {
        let (client, path, old) = (&client, kafka.controller(), old.clone());
        async move {
            match client.get_data(&path).await {
                Ok((data, _)) if data != old => Ok(Some(())),
                other => Err(format!("{:?}", other.map(|d| String::from_utf8_lossy(&d.0).into_owned()))),
            }
        }
    })
    .await;
    let after_move = describe_topics(&servers, None).await.expect("describe");
    for (name, t) in &described {
        let a = &after_move[name];
        assert_eq!((a.partitions.len(), &a.topic_id), (t.partitions.len(), &t.topic_id), "{name} after the controller moved");
    }

    // ---- A topic changed between plan and commit: nothing is committed, the error names it.
    let out = fm.fleetctl(&["scale-up", CLUSTER, "--brokers", "7", "--topics", "t00,t01", "--hold", "-o", "json"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let held: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let held_id = held["id"].as_str().expect("id").to_string();
    let proposal = wait_phase(&fm, &held_id, "ProposalReady", Duration::from_secs(150)).await;
    assert_eq!(proposal["status"]["plan"]["topics"][0]["to"], 14, "12 on 6 brokers, 1 added -> 14: {proposal}");
    let before = topic_znodes(&client, &root).await;
    // Another writer touches t01 (same content, a new version).
    let (data, stat) = client.get_data(&kafka.topic("t01")).await.expect("t01");
    client.set_data(&kafka.topic("t01"), &data, Some(stat.version)).await.expect("touch t01");
    let out = fm.fleetctl(&["approve", "operation", &held_id, "--wait", "--timeout", "60s"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("t01") && stderr.contains("nothing was committed"), "{}", text(&out));
    let after = topic_znodes(&client, &root).await;
    assert_eq!(after["t00"], before["t00"], "t00 unchanged: the commit is all or nothing");
    assert_eq!(after["t01"].1, before["t01"].1, "t01's assignment unchanged");
    let described = describe_topics(&fm.bootstrap_servers(), Some("t0[01]")).await.expect("describe");
    assert_eq!(described["t00"].partitions.len(), 12);
    assert_eq!(described["t01"].partitions.len(), 12);

    // ---- Keyed topics cannot take the scale-up route: a rebalance spreads replicas and preferred
    // leaders over every broker (7 now: the held scale-up raised the count), under a throttle.
    let servers = fm.bootstrap_servers();
    let count = |d: &BTreeMap<String, DescribedTopic>| {
        let (mut replicas, mut preferred): (BTreeMap<i32, usize>, BTreeMap<i32, usize>) = Default::default();
        for t in d.values() {
            for (_, r, _) in t.partitions.values() {
                for b in r {
                    *replicas.entry(*b).or_default() += 1;
                }
                *preferred.entry(r[0]).or_default() += 1;
            }
        }
        let spread = |m: &BTreeMap<i32, usize>| m.values().max().copied().unwrap_or(0) - m.values().min().copied().unwrap_or(0);
        (spread(&replicas), spread(&preferred), (replicas, preferred))
    };
    let (spread_before, _, before_counts) = count(&describe_topics(&servers, None).await.expect("describe"));
    let out = fm.fleetctl(&["rebalance", CLUSTER, "--throttle", "50MiB/s", "--wait", "--timeout", "240s", "-o", "json"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let done: serde_json::Value = serde_json::from_slice(&out.stdout).expect("rebalance json");
    assert_eq!(done["status"]["phase"], "Succeeded", "{done}");
    let described = describe_topics(&servers, None).await.expect("describe");
    let (replica_spread, leader_spread, after_counts) = count(&described);
    // The auditor may add a monitor partition for the newest broker meanwhile: one more at most.
    assert!(
        replica_spread <= 2 && leader_spread <= 2,
        "replicas and preferred leaders per broker {before_counts:?} -> {after_counts:?}; planned {} {}",
        done["status"]["moves"]["replicasAfter"],
        done["status"]["moves"]["leadersAfter"]
    );
    assert!(spread_before > replica_spread, "the rebalance evened things out: {before_counts:?} -> {after_counts:?}");
    for keyed in KEYED {
        assert!(described[keyed].partitions.values().any(|(_, r, _)| r.iter().any(|b| *b >= 4)), "keyed {keyed} now uses the new brokers");
        assert_eq!(described[keyed].partitions.len(), 6, "keyed {keyed} keeps its partitions");
    }
    for (t, d) in &described {
        for (p, (_, r, isr)) in &d.partitions {
            let (r, i): (BTreeSet<&i32>, BTreeSet<&i32>) = (r.iter().collect(), isr.iter().collect());
            assert_eq!(r, i, "{t}-{p} fully in sync after the rebalance");
        }
    }
    let chroot = fleet_common::FleetPaths::new(&root).cluster(CLUSTER).kafka_chroot();
    for kind in ["topics", "brokers"] {
        for c in client.list_children(&format!("{chroot}/config/{kind}")).await.unwrap_or_default() {
            let (data, _) = client.get_data(&format!("{chroot}/config/{kind}/{c}")).await.expect("config");
            assert!(!String::from_utf8_lossy(&data).contains("throttled"), "{kind}/{c} keeps a throttle: {}", String::from_utf8_lossy(&data));
        }
    }
}
