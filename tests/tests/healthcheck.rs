//! kafka-healthcheck against a real 3-broker cluster and a 3-node ZooKeeper ensemble.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use fleet_tests::healthcheck::{sample, HealthcheckServer};
use fleet_tests::kafka::ClusterSpec;
use fleet_tests::{wait_until, workspace_bin, LocalCluster, ZkEnsemble};
use serde_json::Value;

const INTERVAL_MS: u64 = 1000;

async fn three_broker_cluster(zk: &ZkEnsemble) -> LocalCluster {
    let mut cluster = LocalCluster::new(zk, ClusterSpec::local(3));
    for (i, az) in ["local-a", "local-b", "local-c"].iter().enumerate() {
        cluster.add_local_instance(&format!("host-{}", i + 1), az);
    }
    for i in 1..=3 {
        cluster.start_broker(&format!("host-{i}")).await;
    }
    cluster
}

fn config_for(cluster: &LocalCluster) -> String {
    format!(
        "scanIntervalMs: {INTERVAL_MS}\nzookeeperTimeoutMs: 3000\nclusters:\n  - name: {}\n    zookeeper: \"{}\"\n    fleetRoot: \"{}\"\n    expectedRacks: [local-a, local-b, local-c]\n",
        cluster.name, cluster.zookeeper, cluster.fleet_root
    )
}

/// Waits for a `/health` answer satisfying `pred`.
async fn wait_health(hc: &HealthcheckServer, what: &str, deadline: Duration, pred: impl Fn(u16, &Value) -> bool) -> Value {
    wait_until(what, deadline, || async {
        let (status, body) = hc.get_json("/health").await?;
        if pred(status, &body) {
            Ok(Some(body))
        } else {
            Err(format!("{status} {}", body["findings"]))
        }
    })
    .await
}

fn findings_of(body: &Value, kind: &str) -> Vec<Value> {
    body["findings"].as_array().map(|a| a.iter().filter(|f| f["kind"] == kind).cloned().collect()).unwrap_or_default()
}

fn partitions_of(body: &Value, kind: &str) -> BTreeSet<(String, i64)> {
    findings_of(body, kind)
        .iter()
        .map(|f| (f["topic"].as_str().unwrap_or_default().to_string(), f["partition"].as_i64().unwrap_or(-1)))
        .collect()
}

async fn wait_unregistered(cluster: &LocalCluster, broker_id: i32) -> Instant {
    let zk = cluster.zk_client().await;
    let path = cluster.paths().kafka().broker(broker_id);
    wait_until(&format!("broker {broker_id} to leave /brokers/ids"), Duration::from_secs(60), || {
        let (zk, path) = (&zk, path.clone());
        async move { Ok(matches!(zk.get_data(&path).await, Err(zookeeper_client::Error::NoNode)).then_some(())) }
    })
    .await;
    Instant::now()
}

#[tokio::test]
async fn healthcheck_reports_missing_brokers_urp_offline_and_recovery() {
    let zk = ZkEnsemble::start(3).await;
    let mut cluster = three_broker_cluster(&zk).await;
    // Explicit assignments, so the exact partitions each failure touches are known.
    cluster.create_topic("rf3", &["1:2:3", "2:3:1", "3:1:2"]).await;
    cluster.create_topic("rf2", &["1:2", "2:3", "3:1", "2:1"]).await;
    let hc = HealthcheckServer::start(&config_for(&cluster)).await;
    let healthy = wait_health(&hc, "a healthy verdict", Duration::from_secs(60), |s, b| s == 200 && b["status"] == "healthy").await;
    assert_eq!(healthy["partitions"], 7, "{healthy}");
    assert_eq!(healthy["zookeeper_session"], "SyncConnected");
    let latency = sample(&hc.metrics().await, &format!("kafka_health_zookeeper_latency_seconds{{cluster=\"{}\"}}", cluster.name));
    assert!(latency.is_some_and(|l| l > 0.0 && l < 1.0), "{latency:?}");

    // Stop broker 3 (host-3): within two scan intervals, it is missing and exactly the partitions
    // holding a replica on it are under-replicated.
    let b3 = cluster.brokers.iter().find(|b| b.broker_id == 3).map(|b| b.instance_id.clone()).expect("broker 3");
    cluster.stop_broker(&b3);
    let gone = wait_unregistered(&cluster, 3).await;
    let two_intervals = Duration::from_millis(2 * INTERVAL_MS) + Duration::from_millis(500);
    let body = wait_health(&hc, "missing broker 3 and its URPs", two_intervals, |s, b| {
        s == 503 && !findings_of(b, "missing_broker").is_empty() && partitions_of(b, "under_replicated_partition").len() == 5
    })
    .await;
    assert!(gone.elapsed() <= two_intervals + Duration::from_millis(200), "took {:?}", gone.elapsed());
    assert_eq!(findings_of(&body, "missing_broker")[0]["broker"], 3);
    let expected_urp: BTreeSet<(String, i64)> =
        [("rf3", 0), ("rf3", 1), ("rf3", 2), ("rf2", 1), ("rf2", 2)].iter().map(|(t, p)| (t.to_string(), *p)).collect();
    assert_eq!(partitions_of(&body, "under_replicated_partition"), expected_urp);
    let metrics = hc.metrics().await;
    let label = |kind: &str| format!("kafka_health_findings{{cluster=\"{}\",kind=\"{kind}\"}}", cluster.name);
    assert_eq!(sample(&metrics, &label("under_replicated_partition")), Some(5.0), "{metrics}");
    assert_eq!(sample(&metrics, &label("missing_broker")), Some(1.0));
    assert_eq!(sample(&metrics, &format!("kafka_health_broker_up{{cluster=\"{}\",broker=\"3\"}}", cluster.name)), Some(0.0));

    // Stop broker 1 as well: rf2-2 (3,1) now has no live replica: offline.
    let b1 = cluster.brokers.iter().find(|b| b.broker_id == 1).map(|b| b.instance_id.clone()).expect("broker 1");
    cluster.stop_broker(&b1);
    wait_unregistered(&cluster, 1).await;
    let body = wait_health(&hc, "offline partitions", Duration::from_secs(30), |_, b| !findings_of(b, "offline_partition").is_empty()).await;
    assert_eq!(partitions_of(&body, "offline_partition"), BTreeSet::from([("rf2".to_string(), 2)]), "{body}");
    assert_eq!(body["findings"][0]["severity"], "critical");

    // Restart both: back to healthy (preferred leaders restored by the controller).
    for host in [&b3, &b1] {
        cluster.start_broker(host).await;
    }
    wait_health(&hc, "healthy again", Duration::from_secs(90), |s, b| s == 200 && b["status"] == "healthy").await;
}

#[tokio::test]
async fn controller_change_and_zookeeper_loss() {
    let mut zk = ZkEnsemble::start(3).await;
    let mut cluster = three_broker_cluster(&zk).await;
    let hc = HealthcheckServer::start(&config_for(&cluster)).await;
    let body = wait_health(&hc, "a healthy verdict", Duration::from_secs(60), |s, b| s == 200 && b["status"] == "healthy").await;
    let old_controller = body["controller"].as_i64().expect("a controller") as i32;

    // Kill -9 the controller: after its session expires another broker takes over, and no
    // "no controller" finding outlives the re-election.
    let victim = cluster.brokers.iter().find(|b| b.broker_id == old_controller).map(|b| b.instance_id.clone()).expect("controller");
    cluster.kill_broker(&victim);
    let zkc = cluster.zk_client().await;
    let controller_path = cluster.paths().kafka().controller();
    let new_controller = wait_until("a new controller in ZooKeeper", Duration::from_secs(60), || {
        let (zkc, path) = (&zkc, controller_path.clone());
        async move {
            let Ok((data, _)) = zkc.get_data(&path).await else { return Ok(None) };
            let v: Value = serde_json::from_slice(&data).map_err(|e| e.to_string())?;
            Ok(v["brokerid"].as_i64().filter(|id| *id as i32 != old_controller))
        }
    })
    .await;
    let body = wait_health(&hc, "the new controller observed", Duration::from_millis(3 * INTERVAL_MS), |_, b| {
        b["controller"].as_i64() == Some(new_controller)
    })
    .await;
    assert!(findings_of(&body, "no_controller").is_empty(), "{body}");
    // And it stays so over the next scans.
    let scanned = body["last_complete_scan_ms"].as_u64().expect("scan time");
    let later = wait_health(&hc, "two more scans", Duration::from_secs(10), |_, b| {
        b["last_complete_scan_ms"].as_u64().is_some_and(|t| t >= scanned + 2 * INTERVAL_MS)
    })
    .await;
    assert!(findings_of(&later, "no_controller").is_empty(), "{later}");
    assert_eq!(findings_of(&later, "missing_broker").len(), 1, "the killed broker is missing: {later}");

    // One of three ZooKeeper nodes gone: scans go on.
    zk.stop_node(0);
    let t = later["last_complete_scan_ms"].as_u64().unwrap_or(0);
    let body = wait_health(&hc, "a scan with one ZooKeeper node down", Duration::from_secs(20), |_, b| {
        b["last_complete_scan_ms"].as_u64().is_some_and(|s| s > t + INTERVAL_MS) && b["stale"] == false
    })
    .await;
    assert_ne!(body["status"], "unknown");

    // All of ZooKeeper gone: could not tell, never healthy, the last findings kept and marked stale.
    zk.stop_node(1);
    zk.stop_node(2);
    let body = wait_health(&hc, "a stale verdict", Duration::from_secs(30), |s, b| s == 503 && b["stale"] == true).await;
    assert_eq!(body["status"], "unknown");
    assert!(!findings_of(&body, "zookeeper_unreachable").is_empty());
    assert!(!findings_of(&body, "missing_broker").is_empty(), "earlier findings kept: {body}");
    let metrics = hc.metrics().await;
    assert_eq!(sample(&metrics, &format!("kafka_health_stale{{cluster=\"{}\"}}", cluster.name)), Some(1.0));
    assert_eq!(sample(&metrics, &format!("kafka_health_status{{cluster=\"{}\"}}", cluster.name)), Some(-1.0));
    drop(cluster);
}

#[tokio::test]
async fn one_shot_check_exit_codes_and_bad_input() {
    let zk = ZkEnsemble::start(1).await;
    let mut cluster = LocalCluster::new(&zk, ClusterSpec::local(1));
    cluster.add_local_instance("host-1", "local-a");
    cluster.start_broker("host-1").await;
    cluster.create_topic("events", &["1", "1"]).await;
    let check = |extra: &[&str]| {
        let mut cmd = std::process::Command::new(workspace_bin("kafka-healthcheck"));
        cmd.args(["check", "--zookeeper", &cluster.zookeeper, "--cluster", &cluster.name, "--fleet-root", &cluster.fleet_root]);
        cmd.args(extra);
        cmd
    };
    let run = |mut cmd: std::process::Command| cmd.output().expect("kafka-healthcheck");

    let out = run(check(&["-o", "json"]));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["status"], "healthy");
    assert_eq!(v["partitions"], 2);

    let out = run(check(&["--expected-brokers", "1,2"]));
    assert_eq!(out.status.code(), Some(1));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("UNHEALTHY") && table.contains("missing_broker") && table.contains("broker 2"), "{table}");

    let bad_config = cluster.run.path.join("bad.yaml");
    std::fs::write(&bad_config, "thresholds: { slowZookeeperMs: 10, colour: red }\n").expect("write");
    let out = run(check(&["--config", bad_config.to_str().unwrap_or_default()]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("colour"), "{}", String::from_utf8_lossy(&out.stderr));

    let mut cmd = std::process::Command::new(workspace_bin("kafka-healthcheck"));
    cmd.args(["check", "--zookeeper", "127.0.0.1:notaport", "--cluster", &cluster.name]);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("notaport"), "{}", String::from_utf8_lossy(&out.stderr));

    let mut cmd = std::process::Command::new(workspace_bin("kafka-healthcheck"));
    cmd.args(["check", "--zookeeper", &cluster.zookeeper, "--cluster", "no-such-cluster", "--fleet-root", &cluster.fleet_root]);
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no Kafka cluster") && err.contains("no-such-cluster"), "{err}");
}
