//! Failover and fallback against real parts: a fleet manager, local 3-broker clusters, the
//! healthcheck, kcat. One fixture, in order, under a steady acks=all load from a producer group
//! (three client instances, sequence numbers) read by a consumer group (two instances):
//! 1. a broker of `blue` killed, then `failover --build` with the fleet manager killed (-9) on
//!    entering each phase: exactly one new cluster, every producer on it, consumers drained, and
//!    `blue`'s dead broker not replaced while the route leaves it;
//! 2. bad input and guard rails, each refused with nothing changed;
//! 3. `fallback` once `blue` is repaired, with a producer that never moves (named a straggler at
//!    the deadline) and a second operation refused while it runs;
//! 4. maintenance never blocks an emergency: a held rebalance on the target refuses the failover
//!    (naming it), a held rebalance on the source steps aside for it (paused, then planned again);
//!    `failover --to` the warm standby, a cancel after the switch refused; then every acknowledged
//!    record is found with kcat on the two clusters (duplicates counted) and read by the consumer
//!    group; the unchanged documents applied again change nothing;
//! 5. a build that cannot get hosts fails at once with the provider's reason, and is torn down;
//! 6. `fallback` with `retain: teardown` while a producer still uses the cluster it leaves: kept
//!    as a standby, naming it; released by hand once nobody uses it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleet_client::{ClientConfig, FleetProducer};
use fleet_tests::clients::{Reader, SequencedLoad};
use fleet_tests::fleet_manager::{running_batch_bytes, FleetManager, FleetManagerOptions, CLIENT_TOKEN};
use fleet_tests::kafka::{kafka_tool, local_cluster_yaml};
use fleet_tests::{init_logging, wait_until, ZkEnsemble};

const ROUTE: &str = "events";
const TOPIC: &str = "clicks";
const PRODUCERS: usize = 3;
const PHASES: [&str; 6] = ["Building", "Preparing", "Verifying", "SwitchingProducers", "Sealing", "DrainingConsumers"];

fn text(out: &std::process::Output) -> String {
    fleet_tests::output_text(out)
}

async fn apply(fm: &FleetManager, name: &str, docs: &str) -> std::process::Output {
    fm.apply_yaml(name, docs).await
}

fn route_doc(name: &str, cluster: &str, retain: &str) -> String {
    format!("apiVersion: kafka-fleet.io/v1\nkind: Route\nmetadata: {{ name: {name} }}\nspec: {{ cluster: {cluster}, retain: {retain} }}\n")
}

async fn kcat_all(servers: &str) -> Vec<String> {
    fleet_tests::kcat::read_all(servers, TOPIC).await
}

/// Topic -> partitions on `servers`, from kcat's metadata listing.
async fn kcat_topics(servers: &str) -> BTreeMap<String, usize> {
    let out = tokio::process::Command::new("kcat").args(["-L", "-J", "-b", servers]).output().await.expect("run kcat -L");
    assert!(out.status.success(), "kcat -L: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("kcat JSON");
    v["topics"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| (t["topic"].as_str().unwrap_or_default().to_string(), t["partitions"].as_array().map_or(0, Vec::len)))
        .collect()
}

fn client_config(fm_url: &str, cache: std::path::PathBuf) -> ClientConfig {
    let mut c = ClientConfig::new(ROUTE, &[fm_url]);
    c.token = Some(CLIENT_TOKEN.into());
    c.cache_path = Some(cache);
    c.watch_wait = Duration::from_secs(10);
    c.report_interval = Duration::from_millis(500);
    c.kafka.insert("linger.ms".into(), "5".into());
    c
}

async fn reports(fm: &FleetManager) -> Vec<serde_json::Value> {
    let (code, body) = fm.get(&format!("/v1/clients?route={ROUTE}")).await;
    assert_eq!(code, 200, "{body}");
    body.as_array().map(|l| l.iter().map(|v| v["report"].clone()).collect()).unwrap_or_default()
}

async fn operation(fm: &FleetManager, id: &str) -> serde_json::Value {
    let (code, body) = fm.get(&format!("/v1/operations/{id}")).await;
    assert_eq!(code, 200, "{body}");
    body
}

async fn wait_ended(fm: &FleetManager, id: &str, within: Duration) -> serde_json::Value {
    wait_until(&format!("operation {id} to end"), within, || async {
        let op = operation(fm, id).await;
        match op["status"]["phase"].as_str() {
            Some("Succeeded" | "Failed" | "Cancelled") => Ok(Some(op)),
            _ => Err(format!("{} - {}", op["status"]["phase"], op["status"]["message"])),
        }
    })
    .await
}

async fn route_status(fm: &FleetManager) -> serde_json::Value {
    let (code, body) = fm.get(&format!("/v1/routes/{ROUTE}")).await;
    assert_eq!(code, 200, "{body}");
    body["routeStatus"].clone()
}

async fn cluster_names(fm: &FleetManager) -> BTreeSet<String> {
    let (_, body) = fm.get("/v1/clusters").await;
    body.as_array().into_iter().flatten().filter_map(|c| c["name"].as_str().map(str::to_string)).collect()
}

/// The phases in an operation's history, in order.
fn phases(op: &serde_json::Value) -> Vec<String> {
    op["status"]["history"].as_array().into_iter().flatten().filter_map(|h| h["phase"].as_str().map(str::to_string)).collect()
}

/// Starts an operation with fleetctl (no wait) and returns its ID.
async fn start(fm: &FleetManager, args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let out = fm.fleetctl(&all).await;
    assert!(out.status.success(), "{}", text(&out));
    let op: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    op["id"].as_str().expect("operation id").to_string()
}

async fn refused(fm: &FleetManager, args: &[&str], expect: &[&str]) {
    let out = fm.fleetctl(args).await;
    let shown = text(&out);
    assert!(!out.status.success(), "{args:?} was accepted: {shown}");
    for e in expect {
        assert!(shown.contains(e), "{args:?}: the refusal does not say `{e}`: {shown}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_fail_over_to_a_fresh_cluster_and_fall_back() {
    init_logging();
    let zk = ZkEnsemble::start(1).await;
    let work = tempfile::tempdir().expect("tempdir");
    let mut options = FleetManagerOptions::new(&zk.connect_string());
    options.replace_grace_secs = 10;
    options.extra_args = vec!["--client-report-ttl-secs".into(), "10".into()];
    let mut fm = FleetManager::start(options).await;
    let fm_url = fm.url();
    let blue_doc = format!(
        "{}---\napiVersion: kafka-fleet.io/v1\nkind: Topic\nmetadata: {{ name: {TOPIC} }}\nspec: {{ cluster: blue, partitions: 6, replicationFactor: 3, priorityClass: high }}\n",
        local_cluster_yaml("blue", 3, &[])
    );
    let out = apply(&fm, "blue.yaml", &format!("{blue_doc}---\n{}", route_doc(ROUTE, "blue", "standby"))).await;
    assert!(out.status.success(), "{}", text(&out));

    // The load: three producer instances (acks=all from the topic's high class), sequence numbers.
    let producers: Vec<Arc<FleetProducer>> =
        (0..PRODUCERS).map(|i| Arc::new(FleetProducer::new(client_config(&fm_url, work.path().join(format!("p{i}.json")))).expect("producer"))).collect();
    let mut readers = Vec::new();
    for i in 0..2 {
        let mut c = client_config(&fm_url, work.path().join(format!("c{i}.json")));
        c.group = Some("audit".into());
        c.topics = vec![TOPIC.into()];
        readers.push(Reader::start(c));
    }
    let load = SequencedLoad::start(producers.clone(), TOPIC, "p", 5, Duration::from_millis(25));
    let acknowledged = |producers: Vec<Arc<FleetProducer>>| producers.iter().map(|p| p.counters().acknowledged).sum::<u64>();
    wait_until("the load acknowledged on blue", Duration::from_secs(240), || {
        let producers = producers.clone();
        async move {
            let n = acknowledged(producers);
            if n >= 1000 {
                Ok(Some(()))
            } else {
                Err(format!("{n} acknowledged"))
            }
        }
    })
    .await;
    let blue_servers = fm.cluster_servers(Some("blue"));

    // 1. A broker of blue lost; failover with a fresh build, the fleet manager killed on entering
    //    each phase and restarted (as a supervisor would) with the next failpoint.
    let blue_hosts: Vec<String> = fm.local_hosts().iter().filter(|h| h.cluster.as_deref() == Some("blue")).map(|h| h.instance_id.clone()).collect();
    assert_eq!(blue_hosts.len(), 3);
    fm.kill_host(&blue_hosts[2]);
    fm.kill();
    fm.options.extra_env = vec![("FLEET_FAILPOINT_CRASH_ENTERING".into(), PHASES[0].into())];
    fm.spawn().await;
    let started = Instant::now();
    let id = start(&fm, &["failover", ROUTE, "--build", "--deadline", "30s", "--reason", "broker lost"]).await;
    for (i, phase) in PHASES.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(300);
        while fm.is_running() {
            assert!(Instant::now() < deadline, "the fleet manager did not crash entering {phase}: {}", operation(&fm, &id).await);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        fm.options.extra_env = match PHASES.get(i + 1) {
            Some(next) => vec![("FLEET_FAILPOINT_CRASH_ENTERING".into(), (*next).into())],
            None => Vec::new(),
        };
        fm.spawn().await;
        // Recorded before the crash (the restarted leader may already have moved on from it).
        let op = operation(&fm, &id).await;
        assert!(phases(&op).iter().any(|p| p == phase), "crashed right after recording {phase}: {op}");
        eprintln!("crashed entering {phase} after {:?}", started.elapsed());
    }
    let op = wait_ended(&fm, &id, Duration::from_secs(300)).await;
    eprintln!("failover with a build and 6 crashes: {:?}", started.elapsed());
    assert_eq!(op["status"]["phase"], "Succeeded", "{op}");
    let mut expected = vec!["Pending".to_string()];
    expected.extend(PHASES.iter().map(|p| p.to_string()));
    expected.push("Succeeded".into());
    assert_eq!(phases(&op), expected, "each phase once, in order: {op}");
    assert_eq!(op["status"]["target"], "blue-1");
    assert_eq!(op["status"]["stragglers"], serde_json::Value::Null, "no straggler: {op}");
    assert_eq!(cluster_names(&fm).await, BTreeSet::from(["blue".to_string(), "blue-1".to_string()]), "exactly one new cluster");
    let (_, blue1) = fm.get("/v1/clusters/blue-1").await;
    assert_eq!(blue1["document"]["spec"]["brokers"], 3);
    assert_eq!(blue1["document"]["spec"]["immutable"], true);
    let blue1_servers = fm.cluster_servers(Some("blue-1"));
    let topics = kcat_topics(&blue1_servers).await;
    assert_eq!(topics.get(TOPIC), Some(&6), "the route's topic on blue-1 with its partitions, read with kcat: {topics:?}");
    assert!(topics.contains_key("fleet-canary"), "{topics:?}");
    let c = reports(&fm).await;
    let producers_on = c.iter().filter(|r| r["role"] == "producer" && r["cluster"] == "blue-1").count();
    let drained = c.iter().filter(|r| r["role"] == "consumer" && r["cluster"] == "blue-1" && r["consumer"]["drainedCluster"] == "blue").count();
    assert_eq!((producers_on, drained), (PRODUCERS, 2), "every producer on blue-1, both consumers drained blue: {c:?}");
    let rs = route_status(&fm).await;
    assert_eq!((rs["phase"].as_str(), rs["cluster"].as_str(), rs["standby"].as_str()), (Some("FailedOver"), Some("blue-1"), Some("blue")), "{rs}");
    // The journal: every phase with its time; blue's lost broker was not replaced meanwhile.
    let (_, journal) = fm.get("/v1/journal?cluster=blue&limit=500").await;
    let entries = journal.as_array().cloned().unwrap_or_default();
    let phase_entries: Vec<&serde_json::Value> = entries.iter().filter(|e| e["action"] == "operation-phase" && e["detail"]["operation"] == id.as_str()).collect();
    assert_eq!(phase_entries.len(), PHASES.len() + 1, "{phase_entries:?}");
    assert!(phase_entries.iter().all(|e| e["atMs"].as_i64().is_some_and(|t| t > 0)));
    // Repaired until the switch (it still carried the route), left alone while it drained.
    let (switched, ended) = (op["status"]["switchedAtMs"].as_i64().unwrap_or(0), op["updatedMs"].as_i64().unwrap_or(i64::MAX));
    let repairs: Vec<&serde_json::Value> =
        entries.iter().filter(|e| e["action"] == "launch-host" && e["atMs"].as_i64().is_some_and(|t| t >= switched && t <= ended)).collect();
    assert!(repairs.is_empty(), "blue was repaired while its consumers drained it: {repairs:?}");

    // 2. Bad input and guard rails: each refused, nothing changed.
    let gray = local_cluster_yaml("gray", 3, &[]).replace("provider: local", "provider: ec2");
    let out = apply(&fm, "gray.yaml", &format!("{gray}---\n{}", route_doc("spare", "gray", "standby"))).await;
    assert!(out.status.success(), "{}", text(&out));
    let (_, ops_before) = fm.get("/v1/operations").await;
    refused(&fm, &["failover", "nosuch"], &["route", "not declared"]).await;
    refused(&fm, &["failover", ROUTE, "--to", "blue-1"], &["to", "already on"]).await;
    refused(&fm, &["failover", ROUTE, "--to", "nosuch"], &["to", "not declared"]).await;
    refused(&fm, &["failover", ROUTE, "--to", "gray"], &["to", "gray", "health"]).await;
    refused(&fm, &["fallback", "spare"], &["route", "no standby"]).await;
    refused(&fm, &["failover", ROUTE, "--to", "blue", "--deadline", "0s"], &["deadlineSecs"]).await;
    refused(&fm, &["delete", "cluster", "blue"], &["standby"]).await;
    refused(&fm, &["delete", "cluster", "blue-1"], &["are on it"]).await;
    let changed = local_cluster_yaml("blue-1", 3, &[("log.retention.hours", "5")]).replace("provider: local", "provider: local\n  immutable: true");
    let out = apply(&fm, "blue-1.yaml", &changed).await;
    assert!(!out.status.success() && text(&out).contains("spec.brokerConfig") && text(&out).contains("immutable"), "{}", text(&out));
    let (_, ops_after) = fm.get("/v1/operations").await;
    assert_eq!(ops_before, ops_after, "no operation was created or changed");
    assert_eq!(route_status(&fm).await["cluster"], "blue-1");
    let out = fm.fleetctl(&["delete", "route", "spare"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let out = fm.fleetctl(&["delete", "cluster", "gray"]).await;
    assert!(out.status.success(), "{}", text(&out));

    // 3. Fallback once blue is repaired, with a producer that reports but never moves.
    let (stuck_stop, stuck) = stuck_reporter(&fm_url, "stuck-producer", "blue-1");
    let fallback = start(&fm, &["fallback", ROUTE, "--deadline", "10s"]).await;
    refused(&fm, &["failover", ROUTE, "--build"], &["route", &fallback]).await;
    let op = wait_ended(&fm, &fallback, Duration::from_secs(420)).await;
    stuck_stop.store(true, Ordering::SeqCst);
    stuck.await.expect("stuck reporter");
    assert_eq!(op["status"]["phase"], "Succeeded", "{op}");
    assert_eq!(op["status"]["stragglers"], serde_json::json!(["producer stuck-producer"]), "{op}");
    assert!(op["status"]["message"].as_str().unwrap_or_default().contains("stuck-producer"), "{op}");
    let rs = route_status(&fm).await;
    assert_eq!((rs["phase"].as_str(), rs["cluster"].as_str(), rs["standby"].as_str()), (Some("Normal"), Some("blue"), Some("blue-1")), "{rs}");
    let c = reports(&fm).await;
    assert_eq!(c.iter().filter(|r| r["role"] == "producer" && r["cluster"] == "blue").count(), PRODUCERS, "{c:?}");

    // 4. Maintenance never blocks an emergency. Both clusters get a topic Kafka's own tool put
    // entirely on broker 1 (with data on blue), so a rebalance always has moves to make.
    lopsided(&fm, "blue-1", 0).await;
    // About 10 MiB a partition: each move outlasts Kafka's first unthrottled fetch (1 MiB).
    lopsided(&fm, "blue", 4000).await;
    // A held rebalance on the target: a failover to it is refused, naming it.
    let target_rebalance = start(&fm, &["rebalance", "blue-1", "--hold"]).await;
    wait_until("the rebalance on blue-1 held", Duration::from_secs(60), || async {
        let op = operation(&fm, &target_rebalance).await;
        if op["status"]["phase"] == "ProposalReady" {
            Ok(Some(()))
        } else {
            Err(op["status"]["phase"].to_string())
        }
    })
    .await;
    refused(&fm, &["failover", ROUTE, "--to", "blue-1"], &["to", "maintenance", &target_rebalance]).await;
    assert!(fm.fleetctl(&["cancel", "operation", &target_rebalance]).await.status.success());
    // A rebalance moving data under a throttle on the source steps aside: the failover is not
    // refused; the batch in flight is cancelled through Kafka and every throttle it set is gone
    // (Kafka's own kafka-configs), then it plans again once the failover has ended.
    let source_rebalance = start(&fm, &["rebalance", "blue", "--throttle", "64KiB/s", "--max-moves-per-broker", "1"]).await;
    wait_until("the rebalance on blue moving a large batch under its throttle", Duration::from_secs(120), || async {
        let op = operation(&fm, &source_rebalance).await;
        if op["status"]["phase"] == "Moving" && op["status"]["throttled"].is_object() && running_batch_bytes(&op) > 2 << 20 {
            Ok(Some(()))
        } else {
            Err(format!("{} {}", op["status"]["phase"], op["status"]["message"]))
        }
    })
    .await;
    // A producer that reports but never moves holds the failover in SwitchingProducers until
    // its deadline (30 s): the rebalance stays paused at least that long, long enough to look.
    let (held_stop, held) = stuck_reporter(&fm_url, "stuck-producer-2", "blue");
    wait_until("the stuck producer registered", Duration::from_secs(20), || async {
        let c = reports(&fm).await;
        if c.iter().any(|r| r["instance"] == "stuck-producer-2") { Ok(Some(())) } else { Err(format!("{} reports", c.len())) }
    })
    .await;
    let quick = Instant::now();
    let to_standby = start(&fm, &["failover", ROUTE, "--to", "blue-1", "--deadline", "30s"]).await;
    let paused = operation(&fm, &source_rebalance).await;
    assert_eq!(paused["pausedBy"], to_standby.as_str(), "paused in the failover's own write: {paused}");
    wait_until("the rebalance paused", Duration::from_secs(60), || async {
        let op = operation(&fm, &source_rebalance).await;
        if op["status"]["phase"] == "Paused" { Ok(Some(())) } else { Err(op["status"]["phase"].to_string()) }
    })
    .await;
    let throttles = throttles_by_kafka_configs(&blue_servers_now(&fm)).await;
    let op = operation(&fm, &source_rebalance).await;
    assert_eq!(op["status"]["phase"], "Paused", "still paused while Kafka's tool looked: {op}");
    assert!(throttles.is_empty(), "kafka-configs shows no throttle on blue while the rebalance is paused: {throttles:?}");
    held_stop.store(true, Ordering::SeqCst);
    held.await.expect("stuck reporter");
    // Once producers are switched, a cancel is refused (a compare-and-set on the phase): undo it
    // with a fallback.
    wait_until("the failover switching producers", Duration::from_secs(120), || async {
        let op = operation(&fm, &to_standby).await;
        let p = op["status"]["phase"].as_str().unwrap_or("").to_string();
        if ["SwitchingProducers", "Sealing", "DrainingConsumers", "Succeeded"].contains(&p.as_str()) {
            Ok(Some(()))
        } else {
            Err(p)
        }
    })
    .await;
    let out = fm.fleetctl(&["cancel", "operation", &to_standby]).await;
    assert_eq!(out.status.code(), Some(4), "a cancel after the switch: {}", text(&out));
    assert!(text(&out).contains("fallback") || text(&out).contains("not taken"), "{}", text(&out));
    let op = wait_ended(&fm, &to_standby, Duration::from_secs(180)).await;
    assert_eq!(op["status"]["phase"], "Succeeded", "{op}");
    eprintln!("failover to the standby: {:?}", quick.elapsed());
    assert_eq!(route_status(&fm).await["cluster"], "blue-1");
    // The rebalance plans again once the failover has ended; cancelled, it leaves no
    // reassignment in flight (kafka-reassign-partitions --list) and no throttle.
    wait_until("the paused rebalance resumed", Duration::from_secs(60), || async {
        let op = operation(&fm, &source_rebalance).await;
        let history: Vec<String> = phases(&op);
        if history.iter().any(|p| p == "Paused") && op["status"]["phase"] != "Paused" && op["pausedBy"].is_null() {
            Ok(Some(()))
        } else {
            Err(format!("{history:?} {}", op["status"]["message"]))
        }
    })
    .await;
    let out = fm.fleetctl(&["cancel", "operation", &source_rebalance]).await;
    assert!(out.status.success() || operation(&fm, &source_rebalance).await["status"]["phase"] == "Succeeded", "{}", text(&out));
    let ended = wait_ended(&fm, &source_rebalance, Duration::from_secs(180)).await;
    assert!(["Cancelled", "Succeeded"].contains(&ended["status"]["phase"].as_str().unwrap_or("")), "{ended}");
    let listed = kafka_tool("org.apache.kafka.tools.reassign.ReassignPartitionsCommand", &["--bootstrap-server", &blue_servers_now(&fm), "--list"]).await;
    assert!(String::from_utf8_lossy(&listed.stdout).contains("No partition reassignments found"), "kafka-reassign-partitions --list: {}", text(&listed));
    assert_eq!(throttles_by_kafka_configs(&blue_servers_now(&fm)).await, Vec::<String>::new(), "no throttle left on blue");
    // The user's documents applied again, unchanged: nothing moves (the binding stays on blue-1).
    let (_, binding_before) = fm.call(reqwest::Method::GET, &format!("/v1/routes/{ROUTE}/binding"), Some(CLIENT_TOKEN), None).await;
    let out = apply(&fm, "again.yaml", &format!("{blue_doc}---\n{}", route_doc(ROUTE, "blue", "standby"))).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).lines().skip(1).all(|l| l.contains("unchanged")), "re-applied unchanged: {}", text(&out));
    let (_, binding_after) = fm.call(reqwest::Method::GET, &format!("/v1/routes/{ROUTE}/binding"), Some(CLIENT_TOKEN), None).await;
    assert_eq!((binding_after["cluster"].as_str(), &binding_after["generation"]), (Some("blue-1"), &binding_before["generation"]), "{binding_after}");
    let rs = route_status(&fm).await;
    assert_eq!((rs["phase"].as_str(), rs["cluster"].as_str()), (Some("FailedOver"), Some("blue-1")), "{rs}");
    // Changing its cluster while failed over is refused, naming the way out.
    let out = apply(&fm, "moved.yaml", &route_doc(ROUTE, "blue-1", "standby")).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("fall back first"), "{}", text(&out));
    let before = acknowledged(producers.clone());
    wait_until("load acknowledged on blue-1", Duration::from_secs(60), || {
        let producers = producers.clone();
        async move {
            let n = acknowledged(producers) - before;
            if n >= 500 {
                Ok(Some(()))
            } else {
                Err(format!("{n}"))
            }
        }
    })
    .await;
    let (sent, acked) = load.stop().await;
    let on: BTreeMap<&str, usize> = acked.values().fold(BTreeMap::new(), |mut m, c| {
        *m.entry(c.as_str()).or_default() += 1;
        m
    });
    eprintln!("sent {sent}, acknowledged {} ({on:?})", acked.len());
    assert!(on.get("blue").is_some_and(|n| *n > 0) && on.get("blue-1").is_some_and(|n| *n > 0), "{on:?}");
    let failed: u64 = producers.iter().map(|p| p.counters().failed).sum();
    let duplicates_flagged: u64 = producers.iter().map(|p| p.counters().possible_duplicates).sum();
    // Every acknowledged record, read with kcat from the two clusters.
    let mut copies: BTreeMap<String, usize> = BTreeMap::new();
    for line in kcat_all(&blue_servers_now(&fm)).await.into_iter().chain(kcat_all(&blue1_servers).await) {
        *copies.entry(line).or_default() += 1;
    }
    let lost: Vec<&String> = acked.keys().filter(|k| !copies.contains_key(*k)).collect();
    let duplicates = copies.values().filter(|n| **n > 1).count();
    eprintln!("lost {} of {} acknowledged; {duplicates} duplicated (producers flagged {duplicates_flagged} possible); {failed} failed", lost.len(), acked.len());
    assert!(lost.is_empty(), "acknowledged records missing on both clusters: {:?}", &lost[..lost.len().min(20)]);
    // And read by the consumer group (at least once).
    wait_until("the consumer group to read every acknowledged record", Duration::from_secs(90), || {
        let seen: BTreeSet<String> = readers.iter().flat_map(Reader::payloads).collect();
        let missing = acked.keys().filter(|k| !seen.contains(*k)).count();
        async move {
            if missing == 0 {
                Ok(Some(()))
            } else {
                Err(format!("{missing} not read yet"))
            }
        }
    })
    .await;
    for r in readers {
        r.stop();
    }
    drop(producers);
    let _ = blue_servers;

    // 5. A build that cannot get hosts (the local host limit): failed at once with the
    // provider's reason, and torn down; the route stays where it is.
    let running = fm.local_hosts().iter().filter(|h| h.state == fleet_common::local::LocalInstanceState::Running).count();
    fm.kill();
    fm.options.local_max_hosts = running;
    fm.spawn().await;
    let no_hosts = Instant::now();
    let build = start(&fm, &["failover", ROUTE, "--build", "--deadline", "5s"]).await;
    let op = wait_ended(&fm, &build, Duration::from_secs(120)).await;
    assert_eq!(op["status"]["phase"], "Failed", "{op}");
    let why = op["status"]["message"].as_str().unwrap_or_default().to_string();
    assert!(why.contains("--local-max-hosts") && why.contains("torn down"), "the provider's reason, and the build goes: {why}");
    eprintln!("a build with no hosts failed after {:?}: {why}", no_hosts.elapsed());
    let built = op["status"]["target"].as_str().unwrap_or_default().to_string();
    wait_until("the failed build torn down", Duration::from_secs(120), || async {
        let names = cluster_names(&fm).await;
        if names.contains(&built) {
            Err(format!("{names:?}"))
        } else {
            Ok(Some(()))
        }
    })
    .await;
    assert_eq!(route_status(&fm).await["cluster"], "blue-1");
    fm.kill();
    fm.options.local_max_hosts = running + 3;
    fm.spawn().await;

    // 6. retain: teardown, while a producer still reports the cluster the fallback leaves: it is
    // kept as a standby (no data left behind), naming the producer; released by hand once the
    // producer is gone.
    let out = apply(&fm, "route-teardown.yaml", &route_doc(ROUTE, "blue", "teardown")).await;
    assert!(out.status.success(), "{}", text(&out));
    let (lingering_stop, lingering) = stuck_reporter_every(&fm.url(), "lingering-producer", "blue-1", Duration::from_millis(500));
    let out = fm.fleetctl(&["fallback", ROUTE, "--deadline", "5s", "--wait"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let rs = route_status(&fm).await;
    assert_eq!((rs["phase"].as_str(), rs["cluster"].as_str(), rs["standby"].as_str()), (Some("Normal"), Some("blue"), Some("blue-1")), "kept: {rs}");
    let (_, ops) = fm.get("/v1/operations").await;
    let fallback_op = ops.as_array().and_then(|l| l.iter().find(|o| o["spec"]["kind"] == "fallback" && o["status"]["phase"] == "Succeeded")).cloned().expect("the fallback");
    assert!(fallback_op["status"]["message"].as_str().is_some_and(|m| m.contains("kept as a standby") && m.contains("lingering-producer")), "{fallback_op}");
    let out = fm.fleetctl(&["release-standby", ROUTE]).await;
    assert_eq!(out.status.code(), Some(4), "refused while a producer uses it: {}", text(&out));
    assert!(text(&out).contains("lingering-producer"), "{}", text(&out));
    lingering_stop.store(true, Ordering::SeqCst);
    lingering.await.expect("lingering reporter");
    wait_until("the standby released once nobody uses it", Duration::from_secs(60), || async {
        let out = fm.fleetctl(&["release-standby", ROUTE]).await;
        if out.status.success() {
            Ok(Some(()))
        } else {
            Err(text(&out))
        }
    })
    .await;
    wait_until("blue-1 torn down", Duration::from_secs(120), || async {
        let names = cluster_names(&fm).await;
        if names.contains("blue-1") {
            Err(format!("{names:?}"))
        } else {
            Ok(Some(()))
        }
    })
    .await;
    let rs = route_status(&fm).await;
    assert_eq!(rs["standby"], serde_json::Value::Null, "{rs}");
    assert!(!rs["sealed"].as_array().is_some_and(|l| l.iter().any(|c| c == "blue-1")), "a released standby is sealed for nobody: {rs}");
    let out = fm.fleetctl(&["get", "routes"]).await;
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Normal"), "{}", text(&out));

    // 7. The next build takes the released name again (as after `make demo`): it starts open,
    // not sealed as the earlier blue-1 was, and the failover goes through.
    let out = fm.fleetctl(&["failover", ROUTE, "--build", "--deadline", "10s", "--wait", "--timeout", "5m"]).await;
    assert!(out.status.success(), "a build named like a released standby: {}", text(&out));
    let rs = route_status(&fm).await;
    assert_eq!((rs["phase"].as_str(), rs["cluster"].as_str()), (Some("FailedOver"), Some("blue-1")), "{rs}");
}

/// Blue's brokers now (its lost host was replaced on another port).
fn blue_servers_now(fm: &FleetManager) -> String {
    fm.cluster_servers(Some("blue"))
}

/// A topic of 4 partitions that Kafka's own tool puts entirely on broker 1 of `cluster` (one
/// replica each), with `records` records of 10 KiB: a rebalance always has moves to make there.
async fn lopsided(fm: &FleetManager, cluster: &str, records: u64) {
    let servers = fm.cluster_servers(Some(cluster));
    let out = kafka_tool("org.apache.kafka.tools.TopicCommand", &["--bootstrap-server", &servers, "--create", "--topic", "lopsided", "--replica-assignment", "1,1,1,1"]).await;
    assert!(out.status.success(), "kafka-topics --create: {}", text(&out));
    if records > 0 {
        let props = format!("bootstrap.servers={servers}");
        let n = records.to_string();
        let out = kafka_tool(
            "org.apache.kafka.tools.ProducerPerformance",
            &["--topic", "lopsided", "--num-records", &n, "--record-size", "10240", "--throughput", "-1", "--producer-props", &props, "acks=1", "linger.ms=20"],
        )
        .await;
        assert!(out.status.success(), "perf producer: {}", text(&out));
    }
}

/// Every replication throttle on a cluster's brokers and topics, as Kafka's own `kafka-configs
/// --describe` shows them.
async fn throttles_by_kafka_configs(servers: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entity in ["brokers", "topics"] {
        let out = kafka_tool("kafka.admin.ConfigCommand", &["--bootstrap-server", servers, "--entity-type", entity, "--describe"]).await;
        assert!(out.status.success(), "kafka-configs --describe: {}", text(&out));
        found.extend(String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.contains("throttled")).map(|l| format!("{entity}: {}", l.trim())));
    }
    found
}

/// A producer instance of the route that reports `cluster` every 2 s and never moves: a failover
/// waits for it until its deadline and names it.
fn stuck_reporter(url: &str, instance: &str, cluster: &str) -> (Arc<AtomicBool>, tokio::task::JoinHandle<()>) {
    stuck_reporter_every(url, instance, cluster, Duration::from_secs(2))
}

fn stuck_reporter_every(url: &str, instance: &str, cluster: &str, every: Duration) -> (Arc<AtomicBool>, tokio::task::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let (url, flag) = (url.to_string(), stop.clone());
    let body = serde_json::json!({"instance": instance, "route": ROUTE, "role": "producer", "generation": 1, "cluster": cluster});
    let task = tokio::spawn(async move {
        let http = reqwest::Client::new();
        // The instance's credential, given with its first report, goes with every later one.
        let mut credential: Option<String> = None;
        while !flag.load(Ordering::SeqCst) {
            let mut req = http.post(format!("{url}/v1/clients/reports")).bearer_auth(CLIENT_TOKEN).json(&body);
            if let Some(c) = &credential {
                req = req.header("x-fleet-instance-credential", c);
            }
            if let Ok(r) = req.send().await {
                if let Ok(v) = r.json::<serde_json::Value>().await {
                    if let Some(c) = v["credential"].as_str() {
                        credential = Some(c.to_string());
                    }
                }
            }
            tokio::time::sleep(every).await;
        }
    });
    (stop, task)
}

