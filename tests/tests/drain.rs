//! Drains that miss nothing, judged with kcat: a fleet manager, three single-broker local
//! clusters (blue, green, red) and a route. One fixture, in order:
//! (a) the write probe tells an open cluster (nothing written);
//! (b) a `fleetctl produce` process cut off from the fleet manager (a frozen proxy) but not from
//!     Kafka across `failover --to green`, a consumer group reading the route, and a keyed topic
//!     written by a producer that did not ask for an ordered switch: every acknowledged record
//!     is read by the group, the operation names the straggler and seals blue, each key stays in
//!     order across the clusters;
//! (c) a `fleetctl produce` stopped with SIGSTOP across `fallback` (blue is opened again first),
//!     with a member added to the group during the drain;
//! (d) two failovers (blue -> green -> red) while the group is stuck: it drains blue, then
//!     green, then reads red, and misses nothing;
//! (e) the cluster in use dies with records queued in librdkafka and the route moves: each
//!     record is re-sent and acknowledged, the buffer empties; a producer closed with records
//!     queued fails each one as `Closed` within its timeout.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fleet_client::{BindingCache, ClientConfig, DeliveryError, FleetProducer, Record};
use fleet_tests::clients::Reader;
use fleet_tests::fleet_manager::{FleetManager, FleetManagerOptions, CLIENT_TOKEN};
use fleet_tests::workspace_bin;
use fleet_tests::kafka::local_cluster_yaml;
use fleet_tests::proxy::FreezableProxy;
use fleet_tests::{init_logging, wait_until, ZkEnsemble};
use tokio::io::AsyncWriteExt;

const ROUTE: &str = "orders";
const TOPIC: &str = "events";
const KEYED: &str = "keyed";
const CLUSTERS: [&str; 3] = ["blue", "green", "red"];

fn cluster_docs(name: &str) -> String {
    let mut text = local_cluster_yaml(name, 1, &[]);
    for (topic, keyed) in [(TOPIC, false), (KEYED, true)] {
        text.push_str(&format!(
            "---\napiVersion: kafka-fleet.io/v1\nkind: Topic\nmetadata: {{ name: {topic} }}\nspec: {{ cluster: {name}, partitions: 3, replicationFactor: 1, priorityClass: high, keyed: {keyed} }}\n"
        ));
    }
    text
}

fn text(out: &std::process::Output) -> String {
    format!("exit {:?}\nstdout: {}\nstderr: {}", out.status.code(), String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn client_config(fm_url: &str, cache: &std::path::Path) -> ClientConfig {
    let mut c = ClientConfig::new(ROUTE, &[fm_url]);
    c.token = Some(CLIENT_TOKEN.into());
    c.cache_path = Some(cache.to_path_buf());
    c.acks = Some("all".into());
    c.watch_wait = Duration::from_secs(10);
    c.report_interval = Duration::from_millis(500);
    c.kafka.insert("linger.ms".into(), "5".into());
    c
}

fn reader_config(fm_url: &str, dir: &std::path::Path, member: &str) -> ClientConfig {
    let mut c = client_config(fm_url, &dir.join(format!("{member}.binding.json")));
    c.kafka.remove("linger.ms");
    c.group = Some("audit".into());
    c.topics = vec![TOPIC.into()];
    c.instance = Some(format!("reader-{member}"));
    // A dead cluster is given up on within the test's time.
    c.consumer_drain_timeout = Duration::from_secs(40);
    c
}

/// Every payload of `topic` on each cluster, read with kcat.
async fn kcat(fm: &FleetManager, topic: &str) -> BTreeMap<&'static str, Vec<String>> {
    let mut out = BTreeMap::new();
    for c in CLUSTERS {
        let servers = fm.cluster_servers(Some(c));
        let read = if servers.is_empty() { Vec::new() } else { fleet_tests::kcat::read_all(&servers, topic).await };
        out.insert(c, read);
    }
    out
}

async fn operation(fm: &FleetManager, id: &str) -> serde_json::Value {
    fm.get(&format!("/v1/operations/{id}")).await.1
}

async fn start_op(fm: &FleetManager, args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.extend(["--deadline", "5s", "-o", "json"]);
    let out = fm.fleetctl(&all).await;
    assert!(out.status.success(), "{args:?}: {}", text(&out));
    let op: serde_json::Value = serde_json::from_slice(&out.stdout).expect("operation json");
    op["id"].as_str().expect("operation id").to_string()
}

async fn wait_phase(fm: &FleetManager, id: &str, phases: &[&str], within: Duration) -> serde_json::Value {
    wait_until(&format!("{id} in {phases:?}"), within, || async {
        let op = operation(fm, id).await;
        let phase = op["status"]["phase"].as_str().unwrap_or_default().to_string();
        if phases.contains(&phase.as_str()) {
            Ok(Some(op))
        } else if ["Failed", "Cancelled"].contains(&phase.as_str()) {
            panic!("{id} ended: {op}");
        } else {
            Err(format!("{phase}: {}", op["status"]["message"]))
        }
    })
    .await
}

fn history(op: &serde_json::Value) -> Vec<String> {
    op["status"]["history"].as_array().into_iter().flatten().filter_map(|h| h["phase"].as_str().map(str::to_string)).collect()
}

/// `fleetctl produce` fed `count` numbered lines at `per_second`, through `api`.
struct ProduceProcess {
    child: tokio::process::Child,
    feeder: tokio::task::JoinHandle<()>,
}

impl ProduceProcess {
    fn start(api: &str, cache: &std::path::Path, prefix: &str, count: usize, per_second: usize) -> Self {
        let mut child = tokio::process::Command::new(workspace_bin("fleetctl"))
            .args(["produce", ROUTE, "--topic", TOPIC, "--cache", &cache.display().to_string(), "--timeout", "120s", "-o", "json"])
            .env("FLEET_API", api)
            .env("FLEET_TOKEN", CLIENT_TOKEN)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("fleetctl produce");
        let mut stdin = child.stdin.take().expect("stdin");
        let prefix = prefix.to_string();
        let feeder = tokio::spawn(async move {
            let batch = (per_second / 10).max(1);
            let mut n = 0;
            while n < count {
                let mut lines = String::new();
                for _ in 0..batch.min(count - n) {
                    lines.push_str(&format!("{prefix}{n}\n"));
                    n += 1;
                }
                if stdin.write_all(lines.as_bytes()).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let _ = stdin.shutdown().await;
        });
        Self { child, feeder }
    }

    fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    fn signal(&self, signal: &str) {
        let ok = std::process::Command::new("kill").args([signal, &self.pid().to_string()]).status().expect("kill").success();
        assert!(ok, "kill {signal}");
    }

    /// Waits for the input to end and the process to exit; its summary (`-o json`).
    async fn finish(self) -> serde_json::Value {
        self.feeder.await.expect("feeder");
        let out = tokio::time::timeout(Duration::from_secs(180), self.child.wait_with_output()).await.expect("fleetctl produce exits").expect("output");
        assert!(out.status.success(), "fleetctl produce: {}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("summary json ({e}): {}", text(&out)))
    }
}

/// Distinct payloads with `prefix` across readers.
fn read_by_group(readers: &[&Reader], prefix: &str) -> BTreeSet<String> {
    readers.iter().flat_map(|r| r.payloads()).filter(|p| p.starts_with(prefix)).collect()
}

async fn group_reads(readers: &[&Reader], expected: &BTreeSet<String>, prefix: &str, within: Duration) {
    wait_until(&format!("the group to read every acknowledged {prefix} record"), within, || async {
        let read = read_by_group(readers, prefix);
        let missing: Vec<&String> = expected.difference(&read).collect();
        if missing.is_empty() {
            Ok(Some(()))
        } else {
            Err(format!("{} of {} missing, e.g. {:?}", missing.len(), expected.len(), missing.iter().take(5).collect::<Vec<_>>()))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drains_miss_nothing_across_failovers() {
    init_logging();
    let zk = ZkEnsemble::start(1).await;
    let work = tempfile::tempdir().expect("tempdir");
    let mut options = FleetManagerOptions::new(&zk.connect_string());
    options.extra_args = ["--client-report-ttl-secs", "10", "--failover-seal-timeout-secs", "10"].iter().map(|s| s.to_string()).collect();
    options.local_max_hosts = 6;
    let fm = FleetManager::start(options).await;
    let docs: Vec<String> = CLUSTERS.iter().map(|c| cluster_docs(c)).collect();
    let path = fm.run.path.join("clusters.yaml");
    std::fs::write(&path, format!("{}---\napiVersion: kafka-fleet.io/v1\nkind: Route\nmetadata: {{ name: {ROUTE} }}\nspec: {{ cluster: blue }}\n", docs.join("---\n"))).expect("specs");
    let out = fm.fleetctl(&["apply", "-f", &path.display().to_string(), "--wait", "--timeout", "300s"]).await;
    assert!(out.status.success(), "{}", text(&out));

    // ---- (a) The probe: an open cluster says so, and nothing is written.
    let blue = fm.cluster_servers(Some("blue"));
    let probed = fleet_common::kafka_wire::probe_writes(&[blue.clone()], &[TOPIC.to_string()], Duration::from_secs(5)).await.expect("probe");
    assert_eq!(probed.len(), 3, "{probed:?}");
    assert!(probed.values().all(|p| *p == fleet_common::kafka_wire::WriteProbe::Open), "{probed:?}");
    assert!(fleet_tests::kcat::read_all(&blue, TOPIC).await.is_empty(), "the probe wrote nothing");

    // ---- (b) A producer cut off from the fleet manager (not from Kafka) across a failover.
    let m1 = Reader::start(reader_config(&fm.url(), work.path(), "m1"));
    let proxy = FreezableProxy::start(&fm.url().trim_start_matches("http://").to_string()).await;
    let straggler = ProduceProcess::start(&proxy.url(), &work.path().join("s1.binding.json"), "s1-", 6000, 100);
    // Keyed records (the binding says `keyed`): the caller asks for no ordered switch.
    let keyed = Arc::new(FleetProducer::new(client_config(&fm.url(), &work.path().join("keyed.binding.json"))).expect("keyed producer"));
    let keyed_stop = Arc::new(AtomicBool::new(false));
    let keyed_acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let keyed_load = {
        let (p, stop, acked) = (keyed.clone(), keyed_stop.clone(), keyed_acked.clone());
        tokio::spawn(async move {
            let mut waiting = Vec::new();
            let mut seq = 0u64;
            while !stop.load(Ordering::SeqCst) {
                for k in 0..8 {
                    let key = format!("k{k}");
                    let payload = format!("{key}-{seq}");
                    if let Ok(d) = p.send_tracked(Record::new(KEYED, payload.as_bytes()).with_key(key.as_bytes())) {
                        waiting.push((payload, d));
                    }
                }
                seq += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            for (payload, d) in waiting {
                if let Ok(Ok(done)) = tokio::time::timeout(Duration::from_secs(120), d).await {
                    acked.lock().expect("lock").push((payload, done.cluster));
                }
            }
        })
    };
    wait_until("the straggler to report blue", Duration::from_secs(60), || async {
        let (_, clients) = fm.get(&format!("/v1/clients?route={ROUTE}")).await;
        let on_blue = clients.as_array().is_some_and(|l| l.iter().any(|c| c["report"]["role"] == "producer" && c["report"]["cluster"] == "blue" && c["report"]["counters"]["acknowledged"].as_u64().unwrap_or(0) > 0));
        if on_blue {
            Ok(Some(()))
        } else {
            Err(format!("{clients}"))
        }
    })
    .await;
    let straggler_pid = straggler.pid();
    proxy.freeze();
    let id = start_op(&fm, &["failover", ROUTE, "--to", "green"]).await;
    let done = wait_phase(&fm, &id, &["Succeeded"], Duration::from_secs(180)).await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    proxy.thaw();
    let summary = straggler.finish().await;
    assert_eq!((summary["counters"]["acknowledged"].as_u64(), summary["counters"]["failed"].as_u64()), (Some(6000), Some(0)), "{summary}");
    let phases = history(&done);
    assert!(phases.iter().any(|p| p == "Sealing"), "blue was sealed: {phases:?}");
    let stragglers: Vec<String> = done["status"]["stragglers"].as_array().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_string)).collect();
    assert!(stragglers.iter().any(|s| s.contains(&format!("-{straggler_pid}-producer"))), "the cut-off producer is named: {stragglers:?} ({done})");
    let on_clusters = kcat(&fm, TOPIC).await;
    let written: BTreeSet<String> = on_clusters.values().flatten().filter(|p| p.starts_with("s1-")).cloned().collect();
    assert_eq!(written.len(), 6000, "kcat finds every line on blue and green");
    assert!(on_clusters["green"].iter().any(|p| p.starts_with("s1-")), "what blue refused went to green");
    group_reads(&[&m1], &written, "s1-", Duration::from_secs(120)).await;
    // Order per key across the switch, on both clusters.
    keyed_stop.store(true, Ordering::SeqCst);
    keyed_load.await.expect("keyed load");
    assert_eq!(keyed.counters().possible_duplicates, 0, "{:?}", keyed.counters());
    let keyed_read = kcat(&fm, KEYED).await;
    let seq = |p: &String| p.split_once('-').and_then(|(k, n)| n.parse::<u64>().ok().map(|n| (k.to_string(), n)));
    for key in (0..8).map(|k| format!("k{k}")) {
        let on = |c: &str| keyed_read[c].iter().filter_map(seq).filter(|(k, _)| *k == key).map(|(_, n)| n).collect::<Vec<u64>>();
        let (b, g) = (on("blue"), on("green"));
        assert!(b.windows(2).all(|w| w[0] < w[1]) && g.windows(2).all(|w| w[0] < w[1]), "{key} in order on each cluster");
        assert!(!b.is_empty() && !g.is_empty(), "{key} written on both");
        assert!(b.last() < g.first(), "{key}: every blue record before every green one ({:?} then {:?})", b.last(), g.first());
    }
    let acked = keyed_acked.lock().expect("lock").clone();
    let read: BTreeSet<&String> = keyed_read.values().flatten().collect();
    assert!(acked.iter().all(|(p, _)| read.contains(p)), "every acknowledged keyed record is on a cluster");

    // ---- (c) A producer stopped with SIGSTOP across a fallback (blue opened again first), a
    // member added to the group during the drain.
    let straggler = ProduceProcess::start(&fm.url(), &work.path().join("s2.binding.json"), "s2-", 4000, 100);
    wait_until("the stopped-to-be producer to write", Duration::from_secs(60), || async {
        let n = fleet_tests::kcat::read_all(&fm.cluster_servers(Some("green")), TOPIC).await.iter().filter(|p| p.starts_with("s2-")).count();
        if n > 0 {
            Ok(Some(()))
        } else {
            Err("none yet".to_string())
        }
    })
    .await;
    let stopped_pid = straggler.pid();
    straggler.signal("-STOP");
    let id = start_op(&fm, &["fallback", ROUTE]).await;
    wait_phase(&fm, &id, &["SwitchingProducers", "Sealing", "DrainingConsumers", "Succeeded"], Duration::from_secs(180)).await;
    let m2 = Reader::start(reader_config(&fm.url(), work.path(), "m2"));
    let done = wait_phase(&fm, &id, &["Succeeded"], Duration::from_secs(180)).await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    straggler.signal("-CONT");
    let summary = straggler.finish().await;
    assert_eq!((summary["counters"]["acknowledged"].as_u64(), summary["counters"]["failed"].as_u64()), (Some(4000), Some(0)), "{summary}");
    let phases = history(&done);
    assert!(phases.iter().any(|p| p == "Sealing"), "green was sealed: {phases:?}");
    let stragglers = done["status"]["stragglers"].to_string();
    assert!(stragglers.contains(&format!("-{stopped_pid}-producer")), "the stopped producer is named: {stragglers}");
    let written: BTreeSet<String> = kcat(&fm, TOPIC).await.values().flatten().filter(|p| p.starts_with("s2-")).cloned().collect();
    assert_eq!(written.len(), 4000, "kcat finds every line");
    group_reads(&[&m1, &m2], &written, "s2-", Duration::from_secs(120)).await;
    // Blue took writes again, and green refuses them now.
    let green = fm.cluster_servers(Some("green"));
    let probed = fleet_common::kafka_wire::probe_writes(&[green], &[TOPIC.to_string()], Duration::from_secs(5)).await.expect("probe");
    assert!(probed.values().all(|p| *p == fleet_common::kafka_wire::WriteProbe::Refused), "green is sealed: {probed:?}");

    // ---- (d) blue -> green -> red while the group is stuck in its own work.
    m1.pause();
    m2.pause();
    let steady = Arc::new(FleetProducer::new(client_config(&fm.url(), &work.path().join("s3.binding.json"))).expect("producer"));
    let load = fleet_tests::clients::SequencedLoad::start(vec![steady.clone()], TOPIC, "s3-", 5, Duration::from_millis(20));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let first = start_op(&fm, &["failover", ROUTE, "--to", "green"]).await;
    wait_phase(&fm, &first, &["Succeeded"], Duration::from_secs(180)).await;
    let second = start_op(&fm, &["failover", ROUTE, "--to", "red"]).await;
    wait_phase(&fm, &second, &["Succeeded"], Duration::from_secs(180)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, acked) = load.stop().await;
    let acked: BTreeSet<String> = acked.into_keys().collect();
    let by_cluster = kcat(&fm, TOPIC).await;
    for c in CLUSTERS {
        assert!(by_cluster[c].iter().any(|p| p.starts_with("s3-")), "{c} took some of the load");
    }
    m1.resume();
    m2.resume();
    group_reads(&[&m1, &m2], &acked, "s3-", Duration::from_secs(180)).await;

    // ---- (e) The cluster in use dies with records queued in librdkafka; the route moves.
    let mut c = client_config(&fm.url(), &work.path().join("s4.binding.json"));
    c.drain_timeout = Duration::from_secs(2);
    let queued = FleetProducer::new(c).expect("producer");
    wait_until("a binding", Duration::from_secs(30), || async { if queued.binding().is_some_and(|b| b.cluster == "red") { Ok(Some(())) } else { Err("none".to_string()) } }).await;
    fm.kill_cluster_hosts("red");
    let deliveries: Vec<_> = (0..300).map(|i| queued.send_tracked(Record::new(TOPIC, format!("s4-{i}").as_bytes())).expect("accepted")).collect();
    let id = start_op(&fm, &["failover", ROUTE, "--to", "blue"]).await;
    for d in deliveries {
        let delivered = tokio::time::timeout(Duration::from_secs(120), d).await.expect("resolved in time").expect("acknowledged");
        assert_eq!(delivered.cluster, "blue");
    }
    let counters = queued.counters();
    assert!(counters.resent >= 300, "every queued record was re-sent from red's purged link: {counters:?}");
    wait_until("the buffer to empty", Duration::from_secs(30), || async { if queued.buffered() == 0 { Ok(Some(())) } else { Err(format!("{:?}", queued.counters())) } }).await;
    let on_blue = fleet_tests::kcat::read_all(&fm.cluster_servers(Some("blue")), TOPIC).await;
    assert_eq!(on_blue.iter().filter(|p| p.starts_with("s4-")).collect::<BTreeSet<_>>().len(), 300, "kcat finds them on blue");
    let done = wait_phase(&fm, &id, &["Succeeded"], Duration::from_secs(180)).await;
    assert!(done["status"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{done}");
    // Closed with records queued for a cluster that cannot be reached: each fails as Closed, in time.
    let dead = work.path().join("dead.binding.json");
    BindingCache::new(&dead).store(&fleet_api::client::RouteBinding {
        route: ROUTE.into(),
        cluster: "gone".into(),
        bootstrap_servers: vec!["127.0.0.1:1".into()],
        generation: 1,
        phase: fleet_api::client::RoutePhase::Steady,
        topics: Default::default(),
        next: None,
        previous: None,
        left: Vec::new(),
    })
    .expect("cache");
    let mut c = ClientConfig::new(ROUTE, &["http://127.0.0.1:9"]);
    c.cache_path = Some(dead);
    let closing = FleetProducer::new(c).expect("producer");
    wait_until("the cached binding", Duration::from_secs(10), || async { if closing.binding().is_some() { Ok(Some(())) } else { Err("none".to_string()) } }).await;
    let deliveries: Vec<_> = (0..100).map(|i| closing.send_tracked(Record::new(TOPIC, format!("c-{i}").as_bytes())).expect("accepted")).collect();
    let started = Instant::now();
    let closed = closing.close(Duration::from_millis(500));
    assert!(started.elapsed() < Duration::from_secs(2), "close took {:?}", started.elapsed());
    assert_eq!(closed.unacknowledged, 100);
    for d in deliveries {
        assert_eq!(tokio::time::timeout(Duration::from_secs(5), d).await.expect("resolved"), Err(DeliveryError::Closed));
    }
    m1.stop();
    m2.stop();
}
