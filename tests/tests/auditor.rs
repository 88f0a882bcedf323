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

#[tokio::test]
async fn loadtest_paces_to_the_rate_and_rejects_bad_input_before_sending() {
    let zk = ZkEnsemble::start(1).await;
    let mut cluster = LocalCluster::new(&zk, ClusterSpec::local(1));
    cluster.add_local_instance("host-1", "local-a");
    cluster.start_broker("host-1").await;
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
