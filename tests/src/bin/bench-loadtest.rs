//! `kafka-auditor loadtest` side by side, in one run, with Kafka's own `kafka-producer-perf-test`
//! (`org.apache.kafka.tools.ProducerPerformance` from the pinned kafka-tools jar) against the same
//! single broker: 100-byte records, acks=1. The perf test is given the number of records the
//! auditor acknowledged in its run, so both do the same work in about the same time. Rounds
//! alternate the two tools; medians are printed.

use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use clap::Parser;
use fleet_tests::kafka::ClusterSpec;
use fleet_tests::{kafka_libs, log4j_config, workspace_bin, LocalCluster, ZkEnsemble};

#[derive(Parser)]
#[command(name = "bench-loadtest")]
struct Args {
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    #[arg(long, default_value_t = 6)]
    partitions: usize,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(args.rounds > 0 && args.seconds > 0, "bad sizes");
    let zk = ZkEnsemble::start(1).await;
    let mut cluster = LocalCluster::new(&zk, ClusterSpec::local(1));
    cluster.extra_env.push(("KAFKA_HEAP_OPTS".into(), "-Xms512m -Xmx1g".into()));
    // The broker at full speed: the C2 compiler and G1, as in production.
    cluster.extra_env.push(("KAFKA_JVM_OPTS".into(), "-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true".into()));
    cluster.add_local_instance("host-1", "local-a");
    cluster.start_broker("host-1").await;
    let partitions: Vec<String> = (0..args.partitions).map(|_| "1".to_string()).collect();
    let refs: Vec<&str> = partitions.iter().map(String::as_str).collect();
    cluster.create_topic("loadtest", &refs).await;
    let bootstrap = cluster.bootstrap_servers();

    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for round in 0..args.rounds {
        let out = Command::new(workspace_bin("kafka-auditor"))
            .args(["loadtest", "--bootstrap-servers", &bootstrap, "--topic", "loadtest", "--rate", "max", "--size", "100"])
            .args(["--acks", "1", "--duration", &format!("{}s", args.seconds), "-o", "json"])
            .output()
            .context("kafka-auditor")?;
        ensure!(out.status.success(), "kafka-auditor loadtest failed: {}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let acked = v["acked"].as_u64().unwrap_or(0);
        let rate = v["msgs_per_s"].as_f64().unwrap_or(0.0);
        ours.push(rate);

        let out = Command::new("java")
            .args(["-Xmx512M", "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true"])
            .arg(format!("-Dlog4j.configuration=file:{}", log4j_config().display()))
            .arg("-cp")
            .arg(format!("{}/*", kafka_libs().display()))
            .args(["org.apache.kafka.tools.ProducerPerformance", "--topic", "loadtest", "--num-records", &acked.to_string()])
            .args(["--record-size", "100", "--throughput", "-1", "--producer-props", &format!("bootstrap.servers={bootstrap}"), "acks=1"])
            .output()
            .context("kafka-producer-perf-test")?;
        ensure!(out.status.success(), "perf test failed: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        let last = text.lines().rev().find(|l| l.contains("records sent")).context("no summary line from the perf test")?;
        // "N records sent, X records/sec (Y MB/sec), ..."
        let theirs_rate: f64 = last.split(',').nth(1).and_then(|s| s.split_whitespace().next()).and_then(|s| s.parse().ok()).context("parse")?;
        theirs.push(theirs_rate);
        eprintln!("round {}/{}: kafka-auditor {rate:.0} msg/s ({acked} records); kafka-producer-perf-test {theirs_rate:.0} msg/s: {last}", round + 1, args.rounds);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (o, t) = (median(&mut ours), median(&mut theirs));
    println!("one broker, {} partitions, 100-byte records, acks=1, {} s per run, median of {} rounds", args.partitions, args.seconds, args.rounds);
    println!("{:<40} {:>12.0} msg/s", "kafka-auditor loadtest", o);
    println!("{:<40} {:>12.0} msg/s", "kafka-producer-perf-test", t);
    println!("{:<40} {:>12.2}x", "ratio", o / t);
    Ok(())
}
