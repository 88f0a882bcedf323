//! kafka-auditor against a real broker.

use fleet_tests::kafka::ClusterSpec;
use fleet_tests::{workspace_bin, LocalCluster, ZkEnsemble};

fn auditor(args: &[&str]) -> std::process::Output {
    std::process::Command::new(workspace_bin("kafka-auditor")).args(args).output().expect("kafka-auditor")
}

/// Records in `topic`, counted by Kafka's own view (kcat, end of every partition).
fn topic_records(bootstrap: &str, topic: &str) -> usize {
    let out = std::process::Command::new("kcat")
        .args(["-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q", "-f", "x\n"])
        .output()
        .expect("kcat");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// A one-broker cluster on a standalone ZooKeeper.
async fn one_broker(zk: &ZkEnsemble) -> LocalCluster {
    let mut cluster = LocalCluster::new(zk, ClusterSpec::local(1));
    cluster.add_local_instance("host-1", "local-a");
    cluster.start_broker("host-1").await;
    cluster
}

#[tokio::test]
async fn loadtest_paces_to_the_rate_and_rejects_bad_input_before_sending() {
    let zk = ZkEnsemble::start(1).await;
    let cluster = one_broker(&zk).await;
    cluster.create_topic("load", &["1", "1", "1"]).await;
    let bootstrap = cluster.bootstrap_servers();

    let out = auditor(&["loadtest", "--bootstrap-servers", &bootstrap, "--topic", "load", "--rate", "2000", "--duration", "2s", "--acks", "all", "-o", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let acked = v["acked"].as_u64().expect("acked");
    assert!((3600..=4400).contains(&acked), "2000 msg/s for 2 s, got {acked}: {v}");
    assert_eq!(v["errors"], 0);
    assert!(v["latency_ms_p99"].as_f64().is_some_and(|p| p > 0.0), "{v}");
    assert_eq!(topic_records(&bootstrap, "load"), acked as usize, "Kafka holds exactly what was acknowledged");

    // With the consuming side: everything acknowledged is read back, with end-to-end latency.
    let out = auditor(&["loadtest", "--bootstrap-servers", &bootstrap, "--topic", "load", "--rate", "1000", "--duration", "2s", "--consume", "-o", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let c: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(c["consumed"]["consumed"], c["acked"], "{c}");
    assert!(c["consumed"]["end_to_end_ms_p99"].as_f64().is_some_and(|p| p > 0.0), "{c}");
    let acked = acked + c["acked"].as_u64().unwrap_or(0);

    for (args, needle) in [
        (vec!["--rate", "0"], "--rate"),
        (vec!["--rate", "-5"], "--rate"),
        (vec!["--size", "0"], "--size"),
        (vec!["--duration", "soon"], "--duration"),
        (vec!["--acks", "2"], "--acks"),
        (vec!["--producer-config", "novalue"], "--producer-config"),
    ] {
        let mut all = vec!["loadtest", "--bootstrap-servers", &bootstrap, "--topic", "load"];
        all.extend(args.iter().copied());
        let out = auditor(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(needle), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(topic_records(&bootstrap, "load"), acked as usize, "bad input sent nothing");
}

struct AuditorProcess {
    port: u16,
    _process: fleet_tests::process::ManagedProcess,
    _run: fleet_tests::RunDir,
}

impl AuditorProcess {
    fn start(cluster: &LocalCluster, interval_ms: u64) -> Self {
        Self::start_as(cluster, interval_ms, "test-auditor", "both")
    }

    fn start_as(cluster: &LocalCluster, interval_ms: u64, instance: &str, mode: &str) -> Self {
        Self::start_with(cluster, interval_ms, instance, mode, "")
    }

    fn start_with(cluster: &LocalCluster, interval_ms: u64, instance: &str, mode: &str, extra: &str) -> Self {
        let run = fleet_tests::RunDir::new("auditor");
        let port = fleet_tests::free_port();
        let config = run.path.join("auditor.yaml");
        std::fs::write(
            &config,
            format!(
                "instanceId: {instance}\nmode: {mode}\nlisten: 127.0.0.1:{port}\nclusters:\n  - name: {}\n    bootstrapServers: \"{}\"\n    intervalMs: {interval_ms}\n    windowIntervals: 4\n{extra}",
                cluster.name,
                cluster.bootstrap_servers()
            ),
        )
        .expect("config");
        let mut cmd = std::process::Command::new(workspace_bin("kafka-auditor"));
        cmd.arg("run").arg("--config").arg(&config).env("FLEET_LOG", "info");
        let process = fleet_tests::process::ManagedProcess::spawn("auditor", cmd, &run.path.join("auditor.log")).expect("spawn auditor");
        Self { port, _process: process, _run: run }
    }

    /// broker -> (produce availability, consume availability, p99 ms, attempts so far)
    async fn get(&self, path: &str) -> Result<serde_json::Value, String> {
        reqwest::get(format!("http://127.0.0.1:{}{path}", self.port))
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())
    }

    async fn figures(&self) -> Result<std::collections::BTreeMap<i64, (f64, f64, f64, u64)>, String> {
        let body = self.get("/api/figures").await?;
        Ok(body[0]["brokers"]
            .as_array()
            .ok_or("no brokers yet")?
            .iter()
            .map(|b| {
                (
                    b["broker"].as_i64().unwrap_or(-1),
                    (
                        b["produce_availability"].as_f64().unwrap_or(-1.0),
                        b["consume_availability"].as_f64().unwrap_or(-1.0),
                        b["latency_ms_p99"].as_f64().unwrap_or(0.0),
                        b["attempts_total"].as_u64().unwrap_or(0),
                    ),
                )
            })
            .collect())
    }
}

#[tokio::test]
async fn heartbeat_availability_per_broker_follows_a_stopped_broker() {
    let zk = ZkEnsemble::start(1).await;
    let mut cluster = LocalCluster::new(&zk, ClusterSpec::local(3));
    for i in 1..=3 {
        cluster.add_local_instance(&format!("host-{i}"), "local-a");
        cluster.start_broker(&format!("host-{i}")).await;
    }
    let auditor = AuditorProcess::start(&cluster, 500);
    let all_healthy = |f: &std::collections::BTreeMap<i64, (f64, f64, f64, u64)>| {
        f.len() == 3 && f.values().all(|(p, c, lat, n)| *p == 1.0 && *c == 1.0 && *lat > 0.0 && *n >= 6)
    };
    fleet_tests::wait_until("every broker at 100% with latency figures", std::time::Duration::from_secs(60), || async {
        let f = auditor.figures().await?;
        if all_healthy(&f) { Ok(Some(())) } else { Err(format!("{f:?}")) }
    })
    .await;

    // Per-partition figures, and the history the dashboard starts from.
    let body = auditor.get("/api/figures").await.expect("figures");
    assert_eq!(body[0]["partitions"].as_array().map(Vec::len), Some(3), "{body}");
    let history = auditor.get("/api/history").await.expect("history");
    assert!(history[&cluster.name].as_array().is_some_and(|h| h.len() >= 2), "{history}");

    // Broker 2 stops: its availability drops within a few intervals; the others stay at 100%.
    let host = cluster.brokers.iter().find(|b| b.broker_id == 2).map(|b| b.instance_id.clone()).expect("broker 2");
    cluster.stop_broker(&host);
    let f = fleet_tests::wait_until("broker 2's availability to drop", std::time::Duration::from_secs(15), || async {
        let f = auditor.figures().await?;
        let dropped = f.get(&2).is_some_and(|(p, _, _, _)| *p < 1.0);
        if dropped { Ok(Some(f)) } else { Err(format!("{f:?}")) }
    })
    .await;
    for b in [1, 3] {
        assert_eq!(f[&b].0, 1.0, "broker {b} must stay at 100%: {f:?}");
        assert_eq!(f[&b].1, 1.0, "broker {b} must stay at 100%: {f:?}");
    }

    // The dashboard, in a real browser: one row per broker, the stopped one marked.
    let url = format!("http://127.0.0.1:{}/", auditor.port);
    let dom = fleet_tests::browser::dump_dom(&url, &cluster.run.path).expect("chromium renders the dashboard");
    let rows: Vec<&str> = dom.split("<tr").skip(1).filter(|r| r.contains("data-broker")).collect();
    assert_eq!(rows.len(), 3, "one row per broker: {dom}");
    let row = |id: i64| rows.iter().find(|r| r.contains(&format!("data-broker=\"{id}\""))).copied().unwrap_or_default();
    assert!(row(2).contains("class=\"problem\""), "broker 2 marked: {}", row(2));
    assert!(!row(1).contains("class=\"problem\"") && !row(3).contains("class=\"problem\""), "{dom}");
    let shot = fleet_tests::repo_root().join("target/test-output/auditor-dashboard-broker-2-stopped.png");
    std::fs::create_dir_all(shot.parent().expect("folder")).expect("test output folder");
    fleet_tests::browser::screenshot(&url, &shot, &cluster.run.path).expect("screenshot");
    eprintln!("dashboard screenshot: {}", shot.display());

    // /metrics carries every series the shipped Grafana dashboard queries, per broker.
    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", auditor.port)).await.expect("metrics").text().await.expect("text");
    let grafana = std::fs::read_to_string(fleet_tests::repo_root().join("auditor/grafana/kafka-auditor.json")).expect("grafana json");
    let dashboard: serde_json::Value = serde_json::from_str(&grafana).expect("grafana json parses");
    let mut queried = std::collections::BTreeSet::new();
    for p in dashboard["panels"].as_array().expect("panels") {
        let expr = p["targets"][0]["expr"].as_str().unwrap_or_default();
        for part in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if part.starts_with("kafka_auditor_") {
                queried.insert(part.to_string());
            }
        }
    }
    assert!(queried.len() >= 6, "{queried:?}");
    for name in &queried {
        assert!(metrics.contains(&format!("{name}{{cluster=\"{}\"", cluster.name)), "{name} not in /metrics:\n{metrics}");
    }
    assert!(metrics.contains("kafka_auditor_produce_availability{") && metrics.contains("broker=\"2\"} 0"), "{metrics}");

    // It comes back: availability recovers.
    cluster.start_broker(&host).await;
    fleet_tests::wait_until("broker 2 to recover", std::time::Duration::from_secs(60), || async {
        let f = auditor.figures().await?;
        if all_healthy(&f) { Ok(Some(())) } else { Err(format!("{f:?}")) }
    })
    .await;
}

fn write_set(path: &std::path::Path, n: usize, skip: Option<usize>) {
    let mut text = String::new();
    for i in (0..n).filter(|i| Some(*i) != skip) {
        text.push_str(&format!("{{\"key\": \"k{i}\", \"value\": \"event {i}\", \"headers\": {{\"source\": \"replay-test\"}}}}\n"));
    }
    std::fs::write(path, text).expect("write set");
}

#[tokio::test]
async fn replay_verifies_a_complete_set_and_reports_a_missing_record() {
    let zk = ZkEnsemble::start(1).await;
    let cluster = one_broker(&zk).await;
    cluster.create_topic("replayed", &["1", "1", "1"]).await;
    cluster.create_topic("gappy", &["1", "1"]).await;
    let bootstrap = cluster.bootstrap_servers();
    let full = cluster.run.path.join("set.jsonl");
    write_set(&full, 10_000, None);

    let out = auditor(&["replay", "--bootstrap-servers", &bootstrap, "--topic", "replayed", "--file", full.to_str().unwrap_or_default(), "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["verification"]["complete"], true, "{v}");
    assert_eq!(v["verification"]["found"], 10_000);
    assert_eq!(topic_records(&bootstrap, "replayed"), 10_000, "kcat agrees");

    // The topic side lacks record 4242: the consuming side reports exactly that one missing.
    let gappy = cluster.run.path.join("gappy.jsonl");
    write_set(&gappy, 10_000, Some(4242));
    let out = auditor(&["replay", "--bootstrap-servers", &bootstrap, "--topic", "gappy", "--file", gappy.to_str().unwrap_or_default(), "--no-verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let out = auditor(&["verify", "--bootstrap-servers", &bootstrap, "--topic", "gappy", "--file", full.to_str().unwrap_or_default(), "-o", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["complete"], false);
    assert_eq!(v["missing"].as_array().map(Vec::len), Some(1), "{}", v["missing"]);
    assert_eq!(v["missing"][0]["key"], "k4242");
    assert_eq!(v["unexpected"].as_array().map(Vec::len), Some(0));

    // Bad input: an unreadable file, an invalid line: an error naming it, nothing sent.
    let before = topic_records(&bootstrap, "replayed");
    let bad = cluster.run.path.join("bad.jsonl");
    std::fs::write(&bad, "{\"value\": \"ok\"}\n{\"value\": \"fine\"}\n{\"value\": 17}\n").expect("write");
    for (file, needle) in [(bad.to_str().unwrap_or_default(), "line 3"), ("/nonexistent/set.jsonl", "cannot read replay file")] {
        let out = auditor(&["replay", "--bootstrap-servers", &bootstrap, "--topic", "replayed", "--file", file]);
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains(needle), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(topic_records(&bootstrap, "replayed"), before, "nothing sent on bad input");
}

#[tokio::test]
async fn producer_and_consumer_instances_split_the_roles() {
    let zk = ZkEnsemble::start(1).await;
    let mut cluster = LocalCluster::new(&zk, ClusterSpec::local(2));
    for i in 1..=2 {
        cluster.add_local_instance(&format!("host-{i}"), "local-a");
        cluster.start_broker(&format!("host-{i}")).await;
    }
    let producer = AuditorProcess::start_as(&cluster, 300, "producer-1", "producer");
    let consumer = AuditorProcess::start_as(&cluster, 300, "consumer-1", "consumer");
    // The consumer-only instance sees the producer's heartbeats for every broker: latency and
    // consume availability, without producing anything itself.
    fleet_tests::wait_until("the consumer instance to see both brokers", std::time::Duration::from_secs(60), || async {
        let f = consumer.figures().await?;
        let ok = f.len() == 2 && f.values().all(|(_, c, lat, attempts)| *c == 1.0 && *lat > 0.0 && *attempts == 0);
        if ok { Ok(Some(())) } else { Err(format!("{f:?}")) }
    })
    .await;
    let f = producer.figures().await.expect("producer figures");
    assert!(f.values().all(|(p, _, _, attempts)| *p == 1.0 && *attempts > 0), "{f:?}");
}

#[tokio::test]
async fn drifted_monitor_leadership_is_restored_to_the_preferred_broker() {
    let zk = ZkEnsemble::start(1).await;
    let mut spec = ClusterSpec::local(2);
    // Kafka's own rebalancer off: whatever restores leadership here is the auditor.
    spec.properties.insert("auto.leader.rebalance.enable".into(), "false".into());
    let mut cluster = LocalCluster::new(&zk, spec);
    for i in 1..=2 {
        cluster.add_local_instance(&format!("host-{i}"), "local-a");
        cluster.start_broker(&format!("host-{i}")).await;
    }
    // No ZooKeeper address: the election goes through the Kafka protocol (ElectLeaders).
    let extra = "    replicationFactor: 2\n".to_string();
    let auditor = AuditorProcess::start_with(&cluster, 300, "leader-keeper", "both", &extra);
    let zkc = cluster.zk_client().await;
    let kafka_paths = cluster.paths().kafka();
    let state_path = |p: i32| kafka_paths.partition_state("__kafka_auditor", p);
    let leader_of = |p: i32| {
        let (zkc, path) = (&zkc, state_path(p));
        async move {
            let (data, _) = zkc.get_data(&path).await.map_err(|e| e.to_string())?;
            let v: serde_json::Value = serde_json::from_slice(&data).map_err(|e| e.to_string())?;
            Ok::<i64, String>(v["leader"].as_i64().unwrap_or(-1))
        }
    };
    // The monitor topic: partition 1 is preferred-led by broker 2.
    fleet_tests::wait_until("broker 2 leading its monitor partition", std::time::Duration::from_secs(60), || async {
        Ok((leader_of(1).await? == 2 && auditor.figures().await?.len() == 2).then_some(()))
    })
    .await;
    let host2 = cluster.brokers.iter().find(|b| b.broker_id == 2).map(|b| b.instance_id.clone()).expect("broker 2");
    cluster.stop_broker(&host2);
    fleet_tests::wait_until("leadership to move to broker 1", std::time::Duration::from_secs(30), || async {
        Ok((leader_of(1).await? == 1).then_some(()))
    })
    .await;
    cluster.start_broker(&host2).await;
    fleet_tests::wait_until("the auditor to restore broker 2 as leader", std::time::Duration::from_secs(60), || async {
        let l = leader_of(1).await?;
        if l == 2 { Ok(Some(())) } else { Err(format!("leader {l}")) }
    })
    .await;
}
