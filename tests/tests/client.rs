//! The client library against real parts: a fleet manager, two single-broker local clusters and
//! kcat. One fixture, in order: (a) a producer started before the fleet manager and every broker
//! exist; (b) the fleet manager killed while it produces; (c) the route moved by hand from cluster
//! A to B under a steady acks=all load with sequence numbers, checked by reading both clusters with
//! kcat; (d) a restarted consumer resuming from its committed offsets; then bad input.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fleet_client::{ClientConfig, FleetProducer, Record};
use fleet_tests::clients::Reader;
use fleet_tests::fleet_manager::{FleetManager, FleetManagerOptions, CLIENT_TOKEN, READ_TOKEN};
use fleet_tests::kafka::local_cluster_yaml;
use fleet_tests::{init_logging, wait_until, ZkEnsemble};

const ROUTE: &str = "orders";
const TOPIC: &str = "events";

fn cluster_docs(name: &str) -> String {
    let mut text = local_cluster_yaml(name, 1, &[]);
    text.push_str(&format!(
        "---\napiVersion: kafka-fleet.io/v1\nkind: Topic\nmetadata: {{ name: {TOPIC} }}\nspec: {{ cluster: {name}, partitions: 3, replicationFactor: 1, priorityClass: high }}\n"
    ));
    text
}

fn route_doc(cluster: &str) -> String {
    format!("apiVersion: kafka-fleet.io/v1\nkind: Route\nmetadata: {{ name: {ROUTE} }}\nspec: {{ cluster: {cluster} }}\n")
}

fn text(out: &std::process::Output) -> String {
    format!("exit {:?}\nstdout: {}\nstderr: {}", out.status.code(), String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

async fn apply(fm: &FleetManager, name: &str, docs: &str) {
    let path = fm.run.path.join(name);
    std::fs::write(&path, docs).expect("write specs");
    let out = fm.fleetctl(&["apply", "-f", &path.display().to_string()]).await;
    assert!(out.status.success(), "{}", text(&out));
}

async fn kcat_all(servers: &str) -> Vec<String> {
    fleet_tests::kcat::read_all(servers, TOPIC).await
}

fn client_config(fm_url: &str, cache: &std::path::Path) -> ClientConfig {
    let mut c = ClientConfig::new(ROUTE, &[fm_url]);
    c.token = Some(CLIENT_TOKEN.into());
    c.cache_path = Some(cache.to_path_buf());
    c.acks = Some("all".into());
    c.watch_wait = Duration::from_secs(10);
    c.report_interval = Duration::from_millis(500);
    c
}

/// (partition, committed offset, end offset) of `group` on `servers`, read with a plain consumer.
fn group_offsets(servers: &str, group: &str) -> Vec<(i32, i64, i64)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = rdkafka::ClientConfig::new().set("bootstrap.servers", servers).set("group.id", group).create().expect("consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..3 {
        tpl.add_partition(TOPIC, p);
    }
    let committed = c.committed_offsets(tpl, Duration::from_secs(10)).expect("committed");
    (0..3)
        .map(|p| {
            let at = committed.find_partition(TOPIC, p).and_then(|e| e.offset().to_raw()).unwrap_or(-1);
            let (_, high) = c.fetch_watermarks(TOPIC, p, Duration::from_secs(10)).expect("watermarks");
            (p, at, high)
        })
        .collect()
}

async fn clients(fm: &FleetManager) -> Vec<serde_json::Value> {
    let (code, body) = fm.get(&format!("/v1/clients?route={ROUTE}")).await;
    assert_eq!(code, 200, "{body}");
    // Each entry is {report, reportedMs, expiresMs}: the reports themselves.
    body.as_array().map(|l| l.iter().map(|v| v["report"].clone()).collect()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_follow_a_route_and_never_block() {
    init_logging();
    let zk = ZkEnsemble::start(1).await;
    let work = tempfile::tempdir().expect("tempdir");
    let cache = work.path().join("orders.binding.json");
    let port = fleet_tests::free_port();
    let fm_url = format!("http://127.0.0.1:{port}");

    // (a) Nothing exists yet: construction and send return at once.
    let started = Instant::now();
    let mut producer_config = client_config(&fm_url, &cache);
    producer_config.kafka.insert("linger.ms".into(), "5".into());
    producer_config.drain_timeout = Duration::from_secs(2);
    let producer = Arc::new(FleetProducer::new(producer_config).expect("producer"));
    let built = started.elapsed();
    assert!(built < Duration::from_millis(100), "construction took {built:?}");
    let mut early = Vec::new();
    let mut slowest = Duration::ZERO;
    for i in 0..200 {
        let t = Instant::now();
        early.push(producer.send_tracked(Record::new(TOPIC, format!("early-{i}").as_bytes())).expect("accepted"));
        slowest = slowest.max(t.elapsed());
    }
    assert!(slowest < Duration::from_millis(5), "slowest send with nothing up: {slowest:?}");
    assert_eq!(producer.counters().buffered, 200);

    let mut options = FleetManagerOptions::new(&zk.connect_string());
    options.port = Some(port);
    let mut fm = FleetManager::start(options).await;
    apply(&fm, "clusters.yaml", &format!("{}---\n{}", cluster_docs("blue"), cluster_docs("green"))).await;
    apply(&fm, "route.yaml", &route_doc("blue")).await;
    for d in early {
        let delivered = tokio::time::timeout(Duration::from_secs(180), d).await.expect("delivered in time").expect("delivered");
        assert_eq!(delivered.cluster, "blue");
    }
    let blue = fm.cluster_servers(Some("blue"));
    let green = fm.cluster_servers(Some("green"));
    assert!(!blue.is_empty() && !green.is_empty(), "both clusters run: {blue} / {green}");
    let on_blue = kcat_all(&blue).await;
    assert_eq!(on_blue.iter().filter(|l| l.starts_with("early-")).count(), 200, "kcat reads the 200 early records on blue");
    assert!(std::fs::read_to_string(&cache).expect("cache written").contains("\"blue\""));

    // A consumer group on the route, and a steady acks=all load with sequence numbers.
    let mut consumer_config = client_config(&fm_url, &work.path().join("consumer.binding.json"));
    consumer_config.group = Some("audit".into());
    consumer_config.topics = vec![TOPIC.into()];
    let reader = Reader::start(consumer_config.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<BTreeMap<u64, String>>> = Arc::new(Mutex::new(BTreeMap::new()));
    // A keyed stream that needs order: an ordered switch (the old cluster drains first).
    let mut ordered_config = client_config(&fm_url, &work.path().join("ordered.binding.json"));
    ordered_config.ordered_switch = true;
    ordered_config.kafka.insert("linger.ms".into(), "5".into());
    let ordered = Arc::new(FleetProducer::new(ordered_config).expect("ordered producer"));
    let ordered_acked = Arc::new(Mutex::new(0u64));
    let load = {
        let (producer, ordered, stop, acked, ordered_acked) = (producer.clone(), ordered.clone(), stop.clone(), acked.clone(), ordered_acked.clone());
        tokio::spawn(async move {
            let mut waiting = Vec::new();
            let mut ordered_waiting = Vec::new();
            let mut seq = 0u64;
            while !stop.load(Ordering::SeqCst) {
                for _ in 0..10 {
                    if let Ok(d) = producer.send_tracked(Record::new(TOPIC, format!("seq-{seq}").as_bytes())) {
                        waiting.push((seq, d));
                    }
                    seq += 1;
                }
                if let Ok(d) = ordered.send_tracked(Record::new(TOPIC, format!("ord-{seq}").as_bytes()).with_key(b"k")) {
                    ordered_waiting.push(d);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            for (seq, d) in waiting {
                if let Ok(Ok(done)) = tokio::time::timeout(Duration::from_secs(60), d).await {
                    acked.lock().expect("lock").insert(seq, done.cluster);
                }
            }
            for d in ordered_waiting {
                if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(60), d).await {
                    *ordered_acked.lock().expect("lock") += 1;
                }
            }
            seq
        })
    };

    // (b) The fleet manager killed: producing goes on with the binding it has.
    wait_until("the load to be acknowledged", Duration::from_secs(30), || {
        let producer = producer.clone();
        async move {
            let n = producer.counters().acknowledged;
            if n >= 1000 {
                Ok(Some(()))
            } else {
                Err(format!("{n} acknowledged"))
            }
        }
    })
    .await;
    fm.kill();
    let before = producer.counters().acknowledged;
    wait_until("acknowledgements while the fleet manager is down", Duration::from_secs(20), || {
        let producer = producer.clone();
        async move {
            let now = producer.counters().acknowledged;
            if now >= before + 500 {
                Ok(Some(()))
            } else {
                Err(format!("{now} acknowledged (from {before})"))
            }
        }
    })
    .await;
    assert_eq!(producer.counters().failed, 0);
    fm.spawn().await;

    // (c) The route moved by hand: producers and consumers follow within 5 seconds.
    wait_until("the consumer to report on blue", Duration::from_secs(30), || async {
        let c = clients(&fm).await;
        if c.iter().any(|r| r["role"] == "consumer" && r["cluster"] == "blue") && c.iter().any(|r| r["role"] == "producer" && r["cluster"] == "blue") {
            Ok(Some(()))
        } else {
            Err(format!("{c:?}"))
        }
    })
    .await;
    // The auditor on the route, through the same library: per-route figures as producers live them.
    let auditor_port = fleet_tests::free_port();
    let auditor_config = fm.run.path.join("auditor.yaml");
    std::fs::write(
        &auditor_config,
        format!(
            "instanceId: route-auditor\nlisten: 127.0.0.1:{auditor_port}\nroutes:\n  - name: {ROUTE}\n    fleetManagers: [\"{}\"]\n    topic: {TOPIC}\n    intervalMs: 50\n    lostAfterSecs: 5\n",
            fm.url()
        ),
    )
    .expect("auditor config");
    let mut cmd = std::process::Command::new(fleet_tests::workspace_bin("kafka-auditor"));
    cmd.arg("run").arg("--config").arg(&auditor_config).env("FLEET_CLIENT_TOKEN", CLIENT_TOKEN);
    let auditor = fleet_tests::process::ManagedProcess::spawn("auditor", cmd, &fm.run.path.join("auditor.log")).expect("auditor");
    let route_figures = format!("http://127.0.0.1:{auditor_port}/api/routes");
    let audited = |want: &'static str| {
        let url = route_figures.clone();
        move || {
            let url = url.clone();
            async move {
                let v: serde_json::Value = reqwest::get(&url).await.map_err(|e| e.to_string())?.json().await.map_err(|e| e.to_string())?;
                let f = v[0].clone();
                let on = |c: &str| f["acknowledged_by_cluster"][c].as_u64().unwrap_or(0);
                let done = f["consumer_cluster"] == want && f["cluster"] == want && on(want) >= 10 && (want == "blue" || on("blue") >= 10);
                if done {
                    Ok(Some(f))
                } else {
                    Err(f.to_string())
                }
            }
        }
    };
    wait_until("the auditor to read its route records on blue", Duration::from_secs(60), audited("blue")).await;

    let (_, route) = fm.get(&format!("/v1/routes/{ROUTE}/binding")).await;
    let old_generation = route["generation"].as_i64().expect("generation");
    let moved_at = Instant::now();
    apply(&fm, "route-green.yaml", &route_doc("green")).await;
    let (code, now_bound) = fm.call(reqwest::Method::GET, &format!("/v1/routes/{ROUTE}/binding?after={old_generation}&waitMs=1000"), Some(CLIENT_TOKEN), None).await;
    assert_eq!(code, 200, "{now_bound}");
    assert_eq!(now_bound["cluster"], "green", "{now_bound}");
    let moved = wait_until("producer and consumer on green, the consumer drained", Duration::from_secs(30), || async {
        let c = clients(&fm).await;
        let producer_moved = c.iter().any(|r| r["role"] == "producer" && r["cluster"] == "green");
        let consumer_moved = c.iter().any(|r| r["role"] == "consumer" && r["cluster"] == "green" && r["consumer"]["drainedCluster"] == "blue");
        if producer_moved && consumer_moved {
            Ok(Some(moved_at.elapsed()))
        } else {
            Err(format!("{c:?}"))
        }
    })
    .await;
    eprintln!("producer and consumer moved {moved:?} after the change");
    assert!(moved <= Duration::from_secs(5) + Duration::from_millis(500), "moved after {moved:?} (reports every 500 ms)");
    // The load goes on until green has acknowledged a good share of it.
    let on_green_from = producer.counters().acknowledged;
    wait_until("1,000 acknowledgements after the move", Duration::from_secs(30), || {
        let producer = producer.clone();
        async move {
            let n = producer.counters().acknowledged - on_green_from;
            if n >= 1000 {
                Ok(Some(()))
            } else {
                Err(format!("{n} acknowledged since the move"))
            }
        }
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    let sent = load.await.expect("load");
    let acked = acked.lock().expect("lock").clone();
    let counters = producer.counters();
    eprintln!("sent {sent}, acknowledged {}, counters {counters:?}", acked.len());
    assert!(acked.values().any(|c| c == "blue") && acked.values().any(|c| c == "green"), "acknowledged on both clusters");

    // The ordered stream: every record acknowledged, and none on green before the last on blue.
    let ord = |lines: &[String]| -> Vec<u64> { lines.iter().filter_map(|l| l.strip_prefix("ord-").and_then(|n| n.parse().ok())).collect() };
    let (blue_lines, green_lines) = (kcat_all(&blue).await, kcat_all(&green).await);
    let (ord_blue, ord_green) = (ord(&blue_lines), ord(&green_lines));
    assert_eq!((ord_blue.len() + ord_green.len()) as u64, *ordered_acked.lock().expect("lock"), "every ordered record acknowledged once");
    assert!(ord_blue.windows(2).all(|w| w[0] < w[1]) && ord_green.windows(2).all(|w| w[0] < w[1]), "in order on each cluster");
    assert!(!ord_blue.is_empty() && !ord_green.is_empty(), "the ordered stream moved");
    assert!(ord_blue.last() < ord_green.first(), "green starts after blue ends: {:?} / {:?}", ord_blue.last(), ord_green.first());
    drop(ordered);

    // Every acknowledged record is on one of the clusters, read with kcat.
    let mut copies: BTreeMap<u64, usize> = BTreeMap::new();
    for line in blue_lines.into_iter().chain(green_lines) {
        if let Some(n) = line.strip_prefix("seq-").and_then(|n| n.parse().ok()) {
            *copies.entry(n).or_default() += 1;
        }
    }
    let lost: Vec<u64> = acked.keys().filter(|s| !copies.contains_key(s)).copied().collect();
    assert!(lost.is_empty(), "{} acknowledged records missing from both clusters, e.g. {:?}", lost.len(), &lost[..lost.len().min(10)]);
    let duplicated = copies.values().filter(|n| **n > 1).count() as u64;
    eprintln!("kcat: {} distinct records, {duplicated} duplicated, {} counted as possible duplicates", copies.len(), counters.possible_duplicates);
    assert!(duplicated <= counters.possible_duplicates, "every duplicate was counted");

    // The consumer read every acknowledged record (at-least-once), from both clusters.
    let wanted: BTreeSet<String> = acked.keys().map(|s| format!("seq-{s}")).collect();
    wait_until("the consumer to have read every acknowledged record", Duration::from_secs(60), || async {
        let seen: BTreeSet<String> = reader.seen.lock().expect("lock").iter().map(|(_, p)| p.clone()).collect();
        let missing = wanted.difference(&seen).count();
        if missing == 0 {
            Ok(Some(()))
        } else {
            Err(format!("{missing} not read yet"))
        }
    })
    .await;
    // The auditor saw the move as a producer does: both clusters acknowledged, nothing lost.
    wait_until("the auditor on green", Duration::from_secs(30), audited("green")).await;
    wait_until("the auditor's loss window to pass since the move", Duration::from_secs(30), || async {
        if moved_at.elapsed() > Duration::from_secs(8) {
            Ok(Some(()))
        } else {
            Err(format!("{:?} since the move", moved_at.elapsed()))
        }
    })
    .await;
    let v: serde_json::Value = reqwest::get(&route_figures).await.expect("auditor").json().await.expect("figures");
    eprintln!("auditor route figures: {}", v[0]);
    assert_eq!(v[0]["lost"], 0, "{}", v[0]);
    assert!(v[0]["duplicated"].as_u64() <= v[0]["possible_duplicates"].as_u64(), "{}", v[0]);
    drop(auditor);

    let out = fm.fleetctl(&["get", "clients", "--route", ROUTE, "-o", "json"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("clients json");
    assert!(listed.as_array().is_some_and(|l| l.len() >= 2), "{listed}");

    // (d) A restarted consumer resumes from its committed offsets.
    let before_restart = reader.seen.lock().expect("lock").len();
    reader.stop();
    for i in 0..50 {
        let d = producer.send_tracked(Record::new(TOPIC, format!("after-{i}").as_bytes())).expect("accepted");
        tokio::time::timeout(Duration::from_secs(30), d).await.expect("in time").expect("delivered");
    }
    for (name, servers) in [("blue", &blue), ("green", &green)] {
        eprintln!("{name}: group audit at {:?}", group_offsets(servers, "audit"));
    }
    let again = Reader::start(consumer_config);
    let got = wait_until("the restarted consumer to read the 50 new records", Duration::from_secs(60), || async {
        let seen = again.seen.lock().expect("lock").clone();
        let new = seen.iter().filter(|(_, p)| p.starts_with("after-")).count();
        if new == 50 {
            Ok(Some(seen))
        } else {
            Err(format!("{new} of 50 ({} records in all)", seen.len()))
        }
    })
    .await;
    // Records written before the restart read again (the auditor's, written meanwhile, are new).
    let reread = got.iter().filter(|(_, p)| p.starts_with("seq-") || p.starts_with("early-")).count();
    eprintln!("restarted consumer re-read {reread} records (of {before_restart} read before)");
    assert!(reread <= 10, "resumed from committed offsets, not from the beginning: re-read {reread}");
    again.stop();

    // The commands on top of the library: stdin to the route, the route to stdout.
    let mut child = tokio::process::Command::new(fleet_tests::workspace_bin("fleetctl"))
        .args(["produce", ROUTE, "--topic", TOPIC, "-o", "json"])
        .env("FLEET_API", fm.url())
        .env("FLEET_TOKEN", CLIENT_TOKEN)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("fleetctl produce");
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"line-1\nline-2\nline-3\n").await.expect("write");
    }
    let out = child.wait_with_output().await.expect("fleetctl produce");
    assert!(out.status.success(), "{}", text(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("summary");
    assert_eq!(summary["counters"]["acknowledged"], 3, "{summary}");
    assert_eq!(summary["cluster"], "green", "{summary}");
    let green_lines = kcat_all(&green).await;
    assert!(["line-1", "line-2", "line-3"].iter().all(|l| green_lines.iter().any(|g| g == l)), "kcat reads the lines on green");
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(fleet_tests::workspace_bin("fleetctl"))
            .args(["consume", ROUTE, "--topic", TOPIC, "--group", "script", "--idle", "5s", "-o", "json"])
            .env("FLEET_API", fm.url())
            .env("FLEET_TOKEN", CLIENT_TOKEN)
            .output(),
    )
    .await
    .expect("consume ends when idle")
    .expect("fleetctl consume");
    assert!(out.status.success(), "{}", text(&out));
    let consumed = String::from_utf8_lossy(&out.stdout);
    assert!(consumed.lines().any(|l| l.contains("\"line-3\"") && l.contains("\"green\"")), "{consumed}");

    // Bad input. An unknown route: a clear error, and the cache is left as it was.
    let nope_cache = work.path().join("nope.json");
    let cached = std::fs::read(&cache).expect("cache");
    std::fs::write(&nope_cache, &cached).expect("copy");
    let mut c = client_config(&fm.url(), &nope_cache);
    c.route = "nope".into();
    let unknown = FleetProducer::new(c).expect("producer");
    let why = wait_until("the unknown route's error", Duration::from_secs(10), || async {
        unknown.last_error().filter(|e| e.contains("nope") && e.contains("does not know")).map(Some).ok_or_else(|| format!("{:?}", unknown.last_error()))
    })
    .await;
    eprintln!("unknown route: {why}");
    assert_eq!(std::fs::read(&nope_cache).expect("cache"), cached, "cache untouched");
    drop(unknown);

    // A malformed binding (a stand-in fleet manager answering nonsense).
    let fake = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let fake_url = format!("http://{}", fake.local_addr().expect("addr"));
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = fake.accept().await {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let body = format!("{{\"route\":\"{ROUTE}\",\"cluster\":\"x\",\"bootstrapServers\":[],\"generation\":1,\"phase\":\"Steady\"}}");
            let _ = s.write_all(format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len()).as_bytes()).await;
        }
    });
    let bad_cache = work.path().join("bad.json");
    let bad = FleetProducer::new(client_config(&fake_url, &bad_cache)).expect("producer");
    let why = wait_until("the malformed binding's error", Duration::from_secs(10), || async {
        bad.last_error().filter(|e| e.contains("malformed binding") && e.contains("bootstrapServers")).map(Some).ok_or_else(|| format!("{:?}", bad.last_error()))
    })
    .await;
    eprintln!("malformed binding: {why}");
    assert!(!bad_cache.exists(), "nothing cached");
    assert!(bad.binding().is_none());
    drop(bad);

    // Tokens: a read token cannot report, a client token cannot read anything else.
    let report = serde_json::json!({"instance": "probe", "route": ROUTE, "role": "producer", "generation": 1});
    let (code, body) = fm.call(reqwest::Method::POST, "/v1/clients/reports", Some(READ_TOKEN), Some(("application/json", report.to_string()))).await;
    assert_eq!(code, 403, "{body}");
    let (code, body) = fm.call(reqwest::Method::GET, "/v1/clusters", Some(CLIENT_TOKEN), None).await;
    assert_eq!(code, 403, "{body}");
    assert!(body["message"].as_str().unwrap_or("").contains("client scope"), "{body}");
    for (bad, field) in [
        (serde_json::json!({"instance": "probe", "route": ROUTE, "role": "producer", "generation": 1, "colour": "red"}), "colour"),
        (serde_json::json!({"instance": "probe", "route": ROUTE, "role": "producer", "generation": 1, "counters": {"sent": -1}}), "counters.sent"),
    ] {
        let (code, body) = fm.call(reqwest::Method::POST, "/v1/clients/reports", Some(CLIENT_TOKEN), Some(("application/json", bad.to_string()))).await;
        assert_eq!(code, 422, "{body}");
        assert!(body["field"].as_str().unwrap_or("").contains(field) || body["message"].as_str().unwrap_or("").contains(field), "names {field}: {body}");
    }
    assert!(clients(&fm).await.iter().all(|c| c["instance"] != "probe"), "nothing stored");
    let mut zero = client_config(&fm.url(), &cache);
    zero.buffer_records = 0;
    let refused = FleetProducer::new(zero).err().expect("refused");
    assert_eq!(refused.field, "buffer_records", "{refused}");

    // (e) The cluster in use dies with records in flight, and the route moves back to blue: what
    // green never persisted is re-sent to blue (kcat finds every record acknowledged).
    fm.kill_cluster_hosts("green");
    let stranded: Vec<_> = (0..300).map(|i| producer.send_tracked(Record::new(TOPIC, format!("stranded-{i}").as_bytes())).expect("accepted")).collect();
    let switched = Instant::now();
    apply(&fm, "route-back.yaml", &route_doc("blue")).await;
    for d in stranded {
        let done = tokio::time::timeout(Duration::from_secs(60), d).await.expect("re-sent in time").expect("delivered");
        assert_eq!(done.cluster, "blue", "{done:?}");
    }
    let on_blue = kcat_all(&blue).await;
    assert_eq!((0..300).filter(|i| on_blue.iter().any(|l| *l == format!("stranded-{i}"))).count(), 300, "kcat finds every stranded record on blue");
    let c = producer.counters();
    eprintln!("300 records stranded on a dead cluster re-sent to blue in {:?}; possible duplicates {}", switched.elapsed(), c.possible_duplicates);
    assert_eq!(c.failed, 0, "{c:?}");

    drop(producer);
    fm.stop_local_hosts();
}
