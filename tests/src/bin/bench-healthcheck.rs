//! Scan time of a cluster holding many partitions: `kafka-healthcheck check` side by side, in the
//! same run and on the same cluster, with Kafka's own
//! `kafka-topics --describe --under-replicated-partitions`. Both are timed as a whole command
//! (what an operator waits for), median of `--runs`; the healthcheck's in-process scan time is
//! printed as well.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use clap::Parser;
use fleet_tests::kafka::ClusterSpec;
use fleet_tests::{kafka_libs, log4j_config, wait_until, workspace_bin, LocalCluster, ZkEnsemble};

#[derive(Parser)]
#[command(name = "bench-healthcheck")]
struct Args {
    /// Total partitions, spread over `--topics` topics.
    #[arg(long, default_value_t = 10_000)]
    partitions: usize,
    #[arg(long, default_value_t = 10)]
    topics: usize,
    #[arg(long, default_value_t = 3)]
    brokers: usize,
    #[arg(long, default_value_t = 2)]
    replication: usize,
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(args.runs > 0 && args.topics > 0 && args.partitions >= args.topics, "bad sizes");
    ensure!(args.replication <= args.brokers, "--replication must not exceed --brokers");
    let zk = ZkEnsemble::start(3).await;
    let mut cluster = LocalCluster::new(&zk, ClusterSpec::local(args.brokers));
    cluster.extra_env.push(("KAFKA_HEAP_OPTS".into(), "-Xms256m -Xmx768m".into()));
    for i in 1..=args.brokers {
        cluster.add_local_instance(&format!("host-{i}"), "local-a");
        cluster.start_broker(&format!("host-{i}")).await;
    }
    let per_topic = args.partitions / args.topics;
    eprintln!("creating {} topics x {per_topic} partitions, replication {}", args.topics, args.replication);
    for t in 0..args.topics {
        let out = fleet_tests::kafka::kafka_tool(
            "org.apache.kafka.tools.TopicCommand",
            &[
                "--bootstrap-server",
                &cluster.bootstrap_servers(),
                "--create",
                "--topic",
                &format!("bench-{t}"),
                "--partitions",
                &per_topic.to_string(),
                "--replication-factor",
                &args.replication.to_string(),
            ],
        )
        .await;
        ensure!(out.status.success(), "topic creation failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let total = per_topic * args.topics;
    let check = || {
        let mut cmd = Command::new(workspace_bin("kafka-healthcheck"));
        cmd.args(["check", "--zookeeper", &cluster.zookeeper, "--cluster", &cluster.name, "--fleet-root", &cluster.fleet_root, "-o", "json"]);
        cmd
    };
    eprintln!("waiting for all {total} partitions to have a leader");
    wait_until("every partition led and the cluster healthy", Duration::from_secs(600), || async {
        let out = check().output().map_err(|e| e.to_string())?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
        let ok = v["partitions"] == total && v["status"] == "healthy";
        Ok(ok.then_some(()))
    })
    .await;

    let mut ours = Vec::new();
    let mut ours_scan = Vec::new();
    let mut theirs = Vec::new();
    let mut jvm_only = Vec::new();
    let kafka_topics = |extra: &[&str]| {
        // Kafka's tool with kafka-run-class.sh's default JVM options.
        let mut cmd = Command::new("java");
        cmd.args(["-Xmx256M", "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35"])
            .args(["-XX:+ExplicitGCInvokesConcurrent", "-Djava.awt.headless=true"])
            .arg(format!("-Dlog4j.configuration=file:{}", log4j_config().display()))
            .arg("-cp")
            .arg(format!("{}/*", kafka_libs().display()))
            .arg("org.apache.kafka.tools.TopicCommand")
            .args(extra);
        cmd
    };
    for run in 0..args.runs {
        let started = Instant::now();
        let out = check().output().context("kafka-healthcheck")?;
        ours.push(started.elapsed());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        ours_scan.push(Duration::from_millis(v["last_scan_duration_ms"].as_u64().unwrap_or(0)));

        let started = Instant::now();
        let out = kafka_topics(&["--bootstrap-server", &cluster.bootstrap_servers(), "--describe", "--under-replicated-partitions"])
            .output()
            .context("kafka-topics")?;
        theirs.push(started.elapsed());
        ensure!(out.status.success(), "kafka-topics failed: {}", String::from_utf8_lossy(&out.stderr));
        // The same tool doing no work: how much of its time is JVM start-up.
        let started = Instant::now();
        kafka_topics(&["--version"]).output().context("kafka-topics --version")?;
        jvm_only.push(started.elapsed());
        eprintln!("run {}/{}: kafka-healthcheck check {:?} (scan {:?}), kafka-topics --describe --under-replicated-partitions {:?}",
            run + 1, args.runs, ours[run], ours_scan[run], theirs[run]);
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (o, s, t, j) = (median(&mut ours), median(&mut ours_scan), median(&mut theirs), median(&mut jvm_only));
    println!("{total} partitions, {} brokers, replication {}, median of {} runs", args.brokers, args.replication, args.runs);
    println!("{:<58} {:>8} ms", "kafka-healthcheck check (whole command)", o.as_millis());
    println!("{:<58} {:>8} ms", "  of which the ZooKeeper scan", s.as_millis());
    println!("{:<58} {:>8} ms", "kafka-topics --describe --under-replicated-partitions", t.as_millis());
    println!("{:<58} {:>8} ms", "  kafka-topics --version (its JVM start-up alone)", j.as_millis());
    println!("{:<58} {:>8.1}x", "speed-up (whole commands)", t.as_secs_f64() / o.as_secs_f64());
    Ok(())
}
