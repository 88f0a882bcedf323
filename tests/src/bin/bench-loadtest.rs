//! `kafka-auditor loadtest` side by side, in one run, with Kafka's own `kafka-producer-perf-test`
//! (`org.apache.kafka.tools.ProducerPerformance` from the pinned kafka-tools jar) against the same
//! single broker: 100-byte records, acks=1. The perf test is given the number of records the
//! auditor acknowledged in its run, so both do the same work in about the same time. Rounds
//! alternate the two tools; medians are printed.

use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use clap::Parser;
use fleet_tests::{workspace_bin, LocalCluster, ZkEnsemble};

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
    let cluster = LocalCluster::bench_broker(&zk).await;
    let partitions: Vec<String> = (0..args.partitions).map(|_| "1".to_string()).collect();
    let refs: Vec<&str> = partitions.iter().map(String::as_str).collect();
    cluster.create_topic("loadtest", &refs).await;
    let bootstrap = cluster.bootstrap_servers();

    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    let mut same = Vec::new();
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

        let theirs_rate = perf_test(&bootstrap, acked, &[])?;
        theirs.push(theirs_rate);
        // Like for like: the perf test given the auditor's batching (linger.ms=5, batch.size=1000000).
        let same_rate = perf_test(&bootstrap, acked, &["linger.ms=5", "batch.size=1000000"])?;
        same.push(same_rate);
        let last = format!("like for like {same_rate:.0} msg/s");
        eprintln!("round {}/{}: kafka-auditor {rate:.0} msg/s ({acked} records); kafka-producer-perf-test {theirs_rate:.0} msg/s: {last}", round + 1, args.rounds);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (o, t, l) = (median(&mut ours), median(&mut theirs), median(&mut same));
    println!("one broker, {} partitions, 100-byte records, acks=1, {} s per run, median of {} rounds", args.partitions, args.seconds, args.rounds);
    println!("{:<40} {:>12.0} msg/s", "kafka-auditor loadtest", o);
    println!("{:<40} {:>12.0} msg/s", "kafka-producer-perf-test", t);
    println!("{:<40} {:>12.2}x", "ratio", o / t);
    println!("{:<40} {:>12.0} msg/s", "kafka-producer-perf-test, same batching", l);
    println!("{:<40} {:>12.2}x", "ratio, like for like", o / l);
    Ok(())
}

/// Kafka's `kafka-producer-perf-test` with acks=1 and `props`.
fn perf_test(bootstrap: &str, records: u64, props: &[&str]) -> Result<f64> {
    let mut all = vec!["acks=1"];
    all.extend_from_slice(props);
    fleet_tests::kafka::producer_perf_test(bootstrap, "loadtest", records, &all).map_err(anyhow::Error::msg)
}
