//! Time for N concurrent broker-ID assignments against a real 3-node ZooKeeper ensemble.
//!
//! Two figures per N: `processes` (N `kafka-bootstrap assign-id` processes started at once, as N
//! hosts booting together would) and `sessions` (N ZooKeeper sessions in one process calling the
//! same library code: the lock protocol without process start-up). Median of `--runs` runs.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use clap::Parser;
use fleet_tests::kafka::ClusterSpec;
use fleet_tests::{LocalCluster, ZkEnsemble};
use kafka_bootstrap::provider::LocalProvider;

#[derive(Parser)]
#[command(name = "bench-broker-ids")]
struct Args {
    #[arg(long, default_value_t = 5)]
    runs: usize,
    #[arg(long, value_delimiter = ',', default_value = "50,100")]
    sizes: Vec<usize>,
    #[arg(long, short = 'o', default_value = "text")]
    output: String,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(args.runs > 0, "--runs must be at least 1");
    let zk = ZkEnsemble::start(3).await;
    let mut rows = Vec::new();
    for &n in &args.sizes {
        ensure!(n > 0, "--sizes entries must be at least 1");
        let mut by_process = Vec::new();
        let mut by_session = Vec::new();
        for run in 0..args.runs {
            by_process.push(time_processes(&zk, n).await?);
            by_session.push(time_sessions(&zk, n).await?);
            eprintln!("n={n} run {}/{}: processes {:?}, sessions {:?}", run + 1, args.runs, by_process[run], by_session[run]);
        }
        rows.push((n, median(&mut by_process), median(&mut by_session)));
    }
    if args.output == "json" {
        let json: Vec<_> = rows
            .iter()
            .map(|(n, p, s)| serde_json::json!({"assignments": n, "processes_ms": p.as_millis(), "sessions_ms": s.as_millis(), "runs": args.runs}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        println!("concurrent broker-ID assignments, 3-node ZooKeeper ensemble, median of {} runs", args.runs);
        println!("{:>12} {:>16} {:>16}", "assignments", "processes (ms)", "sessions (ms)");
        for (n, p, s) in rows {
            println!("{n:>12} {:>16} {:>16}", p.as_millis(), s.as_millis());
        }
    }
    Ok(())
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn cluster_with_hosts(zk: &ZkEnsemble, n: usize) -> (LocalCluster, Vec<String>) {
    let cluster = LocalCluster::new(zk, ClusterSpec::local(1));
    let instances: Vec<String> = (0..n).map(|i| format!("bench-{i}")).collect();
    for i in &instances {
        cluster.add_local_instance(i, "local-a");
    }
    (cluster, instances)
}

async fn time_processes(zk: &ZkEnsemble, n: usize) -> Result<Duration> {
    let (cluster, instances) = cluster_with_hosts(zk, n);
    let started = Instant::now();
    let runs = instances.iter().map(|i| {
        let cmd = cluster.bootstrap_command(&["assign-id", "--instance-id", i]);
        async move { tokio::process::Command::from(cmd).output().await }
    });
    let outs = futures::future::join_all(runs).await;
    let elapsed = started.elapsed();
    let mut ids = BTreeSet::new();
    for out in outs {
        let out = out?;
        ensure!(out.status.success(), "assign-id failed: {}", String::from_utf8_lossy(&out.stderr));
        ids.insert(String::from_utf8_lossy(&out.stdout).trim().parse::<i32>()?);
    }
    ensure!(ids == (1..=n as i32).collect(), "IDs were not 1..={n}: {ids:?}");
    Ok(elapsed)
}

async fn time_sessions(zk: &ZkEnsemble, n: usize) -> Result<Duration> {
    let (cluster, instances) = cluster_with_hosts(zk, n);
    let address = fleet_common::ZkAddress::parse(&zk.connect_string())?;
    let connector = fleet_common::ZkConnector::default();
    // Sessions are opened before the clock starts: this figure is the lock protocol alone.
    let mut clients = Vec::new();
    for _ in 0..n {
        clients.push(connector.connect(&address).await?);
    }
    let provider = LocalProvider { root: cluster.hosts_root.clone() };
    let paths = cluster.paths();
    let started = Instant::now();
    let runs = clients.iter().zip(&instances).map(|(client, instance)| {
        let (paths, provider) = (&paths, &provider);
        async move {
            kafka_bootstrap::broker_id::assign(client, paths, instance, provider, 1, Duration::from_secs(120), fleet_common::FleetAcl::Open, "broker", Some(&Default::default())).await
        }
    });
    let results = futures::future::join_all(runs).await;
    let elapsed = started.elapsed();
    let mut ids = BTreeSet::new();
    for r in results {
        ids.insert(r?.broker_id);
    }
    ensure!(ids == (1..=n as i32).collect(), "IDs were not 1..={n}: {ids:?}");
    Ok(elapsed)
}
