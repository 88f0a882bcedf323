//! `bench-operations`: what operations under way cost the fleet's ZooKeeper and host provider.
//!
//! A real fleet manager with local hosts: `--clusters` clusters of two brokers each (a 4-partition
//! topic), then a held decommission of broker 2 on every one (each waits for approval in
//! `ProposalReady`, as a change window would), and for `--seconds` the requests ZooKeeper
//! received (its `mntr` counter: every client, the brokers' own traffic included, which is the
//! same for both builds) and the fleet manager's own counters from `/metrics` (provider calls,
//! reconciles) are sampled, per minute. With `--bins A,B` the
//! same run is made with each folder's binaries (e.g. a build of the previous commit, and this
//! one), side by side.
//!
//! Prints the figures; `-o json` for automation.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use fleet_tests::fleet_manager::{FleetManager, FleetManagerOptions};
use fleet_tests::kafka::local_cluster_yaml;
use fleet_tests::ZkEnsemble;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 10)]
    clusters: usize,
    /// How long the counters are sampled with the operations held.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Folders of binaries to run in turn (default: this build's).
    #[arg(long, value_delimiter = ',')]
    bins: Vec<PathBuf>,
    /// Also sample the same fleet with no operation (the brokers' and reconciler's own traffic).
    #[arg(long)]
    baseline: bool,
    #[arg(long, short = 'o', default_value = "table")]
    output: String,
}

/// The sum of every sample of `metric` in an OpenMetrics text.
fn counter(text: &str, metric: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(metric) && (l.as_bytes().get(metric.len()) == Some(&b' ') || l.as_bytes().get(metric.len()) == Some(&b'{')))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

/// Requests the ZooKeeper server has received (`zk_packets_received` in `mntr`).
async fn zk_packets(zk: &ZkEnsemble) -> anyhow::Result<f64> {
    let answer = fleet_tests::wire::four_letter_word(zk.nodes[0].client_port, "mntr").await.map_err(anyhow::Error::msg)?;
    answer
        .lines()
        .find_map(|l| l.strip_prefix("zk_packets_received").map(|v| v.trim().parse::<f64>()))
        .ok_or_else(|| anyhow::anyhow!("no zk_packets_received in mntr: {answer}"))?
        .map_err(Into::into)
}

async fn metrics(fm: &FleetManager) -> anyhow::Result<String> {
    Ok(fm.http().get(format!("{}/metrics", fm.url())).send().await?.text().await?)
}

async fn run(bins: Option<&PathBuf>, args: &Args) -> anyhow::Result<Vec<serde_json::Value>> {
    match bins {
        Some(dir) => std::env::set_var("FLEET_BIN_DIR", dir),
        None => std::env::remove_var("FLEET_BIN_DIR"),
    }
    let zk = ZkEnsemble::start(1).await;
    let mut options = FleetManagerOptions::new(&zk.connect_string());
    options.local_max_hosts = args.clusters * 2 + 2;
    options.interval_secs = 30;
    // Twenty broker JVMs boot at once on two cores: a slow one is not replaced meanwhile.
    options.replace_grace_secs = 300;
    // The log cleaner alone allocates a 128 MiB dedupe buffer at start.
    options.extra_args = vec!["--local-heap-opts=-Xms64m -Xmx320m".into()];
    let fm = FleetManager::start(options).await;
    let mut docs = String::new();
    for c in 0..args.clusters {
        docs.push_str(&local_cluster_yaml(&format!("op{c}"), 2, &[]));
        docs.push_str(&format!(
            "---\napiVersion: kafka-fleet.io/v1\nkind: Topic\nmetadata: {{ name: t }}\nspec: {{ cluster: op{c}, partitions: 4, replicationFactor: 1 }}\n---\n"
        ));
    }
    let path = fm.run.path.join("fleet.yaml");
    std::fs::write(&path, docs)?;
    let out = fm.fleetctl(&["apply", "-f", &path.display().to_string(), "--wait", "--timeout", "600s"]).await;
    anyhow::ensure!(out.status.success(), "apply: {}", fleet_tests::output_text(&out));
    let mut results = Vec::new();
    if args.baseline {
        results.push(sample(&zk, &fm, bins, 0, args.seconds).await?);
    }
    for c in 0..args.clusters {
        let out = fm.fleetctl(&["decommission", &format!("op{c}"), "--brokers", "2", "--hold"]).await;
        anyhow::ensure!(out.status.success(), "decommission: {}", fleet_tests::output_text(&out));
    }
    fleet_tests::wait_until("every decommission held", Duration::from_secs(180), || async {
        let (_, ops) = fm.get("/v1/operations?active=true").await;
        let held = ops.as_array().map_or(0, |l| l.iter().filter(|o| o["status"]["phase"] == "ProposalReady").count());
        if held == args.clusters {
            Ok(Some(()))
        } else {
            Err(format!("{held} held"))
        }
    })
    .await;
    results.push(sample(&zk, &fm, bins, args.clusters, args.seconds).await?);
    fm.stop_local_hosts();
    Ok(results)
}

/// Counters over `seconds`, per minute.
async fn sample(zk: &ZkEnsemble, fm: &FleetManager, bins: Option<&PathBuf>, operations: usize, seconds: u64) -> anyhow::Result<serde_json::Value> {
    let before = metrics(fm).await?;
    let zk_before = zk_packets(zk).await?;
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let after = metrics(fm).await?;
    let zk_after = zk_packets(zk).await?;
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    let per_minute = |metric: &str| ((counter(&after, metric) - counter(&before, metric)) / minutes).round();
    let result = serde_json::json!({
        "bins": bins.map(|b| b.display().to_string()).unwrap_or_else(|| "this build".into()),
        "operations": operations,
        "zookeeperRequestsPerMinute": ((zk_after - zk_before) / minutes).round(),
        "fleetManagerCountedZookeeperReadsPerMinute": per_minute("fleet_manager_zookeeper_reads_total"),
        "providerCallsPerMinute": per_minute("fleet_manager_provider_calls_total"),
        "reconcilesPerMinute": per_minute("fleet_manager_reconciles_total"),
    });
    Ok(result)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runs: Vec<Option<&PathBuf>> = if args.bins.is_empty() { vec![None] } else { args.bins.iter().map(Some).collect() };
    let mut results = Vec::new();
    for bins in runs {
        results.extend(run(bins, &args).await?);
    }
    if args.output == "json" {
        println!("{}", serde_json::to_string_pretty(&results)?);
        return Ok(());
    }
    println!("{} clusters of 2 brokers; held decommissions (one per cluster); counters sampled for {} s", args.clusters, args.seconds);
    println!("{:<40} {:>10} {:>16} {:>16} {:>14}", "binaries", "operations", "ZK requests/min", "provider/min", "reconciles/min");
    for r in &results {
        println!(
            "{:<40} {:>10} {:>16} {:>16} {:>14}",
            r["bins"].as_str().unwrap_or(""),
            r["operations"],
            r["zookeeperRequestsPerMinute"],
            r["providerCallsPerMinute"],
            r["reconcilesPerMinute"]
        );
    }
    Ok(())
}
