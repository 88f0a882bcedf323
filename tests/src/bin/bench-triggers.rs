//! `bench-triggers`: how long one trigger pass takes for a fleet of routes with failover policies.
//!
//! In process, over a real store (SQLite in a temp folder): R routes over C clusters, each with a
//! policy on the healthcheck's signals. The healthcheck is a stand-in that answers after a fixed
//! latency (what a `kafka-healthcheck check` process or a service round trip costs), counting
//! how often it is asked. Side by side in one run:
//!
//! - per route, serial: one verdict per route, one route after another (the pass before this
//!   change: `signals::read` for every route in turn);
//! - the pass as it runs now (`evaluate_triggers`): one verdict per cluster shared by its routes,
//!   `--concurrency` at a time, then each route evaluated and what changed recorded.
//!
//! Prints the figures; `-o json` for automation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use clap::Parser;
use fleet_common::{FleetPaths, ZkAddress, ZkConnector};
use fleet_manager::controller::{ReconcileSettings, Reconciler};
use fleet_manager::observe::health::{HealthJudge, Verdict};
use fleet_manager::spec;
use fleet_manager::store::Store;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 1000)]
    routes: usize,
    #[arg(long, default_value_t = 50)]
    clusters: usize,
    /// What one verdict costs, in ms.
    #[arg(long, default_value_t = 50)]
    verdict_ms: u64,
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Passes of the current code; the median is reported.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Skip the per-route serial pass (it takes routes x verdict time).
    #[arg(long)]
    no_serial: bool,
    #[arg(long, short = 'o', default_value = "table")]
    output: String,
}

/// Healthy after `latency`, counting calls.
struct SlowHealth {
    latency: Duration,
    calls: AtomicU64,
}

#[async_trait]
impl HealthJudge for SlowHealth {
    async fn judge(&self, _cluster: &str) -> Result<Verdict, String> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(self.latency).await;
        Ok(Verdict { healthy: true, summary: String::new(), findings: Default::default() })
    }
}

fn docs(args: &Args) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for c in 0..args.clusters {
        out.push(serde_json::json!({"apiVersion": "kafka-fleet.io/v1", "kind": "KafkaCluster", "metadata": {"name": format!("c{c:03}")},
            "spec": {"kafkaVersion": "3.9", "brokers": 3, "availabilityZones": ["a", "b", "c"]}}));
    }
    for r in 0..args.routes {
        out.push(serde_json::json!({"apiVersion": "kafka-fleet.io/v1", "kind": "Route", "metadata": {"name": format!("r{r:04}")},
            "spec": {"cluster": format!("c{:03}", r % args.clusters), "failover": {"mode": "recommend", "conditions": [
                {"signal": "offlinePartitions", "above": 0, "for": "30s"},
                {"signal": "missingBrokers", "above": 0, "for": "1m"}]}}}));
    }
    out
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let store = Store::open(&format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display())).await?;
    let batch: Vec<_> = docs(&args).into_iter().map(spec::validate_value).collect::<Result<_, _>>()?;
    for chunk in batch.chunks(200) {
        store.apply(chunk, "bench", false).await?;
    }
    store.claim_leadership(1).await?;
    let health = Arc::new(SlowHealth { latency: Duration::from_millis(args.verdict_ms), calls: AtomicU64::new(0) });
    let reconciler = Reconciler {
        store: store.clone(),
        zk_address: ZkAddress::parse("127.0.0.1:1")?,
        zk_connector: ZkConnector::default(),
        paths: FleetPaths::new("/bench"),
        hosts: Default::default(),
        dns: Arc::new(fleet_manager::providers::NoDns),
        settings: ReconcileSettings { trigger_concurrency: args.concurrency, ..ReconcileSettings::default() },
        identity: "bench".into(),
        leader: Default::default(),
        wake: Default::default(),
        metrics: Arc::new(fleet_manager::metrics::Metrics::default()),
        health: health.clone(),
        op_backoff: Default::default(),
        touched: Default::default(),
    };
    let http = reqwest::Client::new();

    // Per route, serial: a verdict for every route, one after another.
    let serial = if args.no_serial {
        None
    } else {
        let routes = store.list(Some(spec::Kind::Route), None).await?;
        let before = health.calls.load(Ordering::Relaxed);
        let started = Instant::now();
        for r in &routes {
            let spec::DeclaredSpec::Route(s) = &r.declared.spec else { continue };
            let Some(policy) = s.failover.as_ref().and_then(|p| p.resolve().ok()) else { continue };
            let _ = fleet_manager::triggers::signals::read(&policy, &s.cluster, health.as_ref(), &http, 0).await;
        }
        Some((started.elapsed(), health.calls.load(Ordering::Relaxed) - before))
    };

    // The pass as it runs now.
    let mut passes = Vec::new();
    let mut calls = 0;
    for _ in 0..args.rounds.max(1) {
        let before = health.calls.load(Ordering::Relaxed);
        let started = Instant::now();
        reconciler.evaluate_triggers(1, &http).await?;
        passes.push(started.elapsed());
        calls = health.calls.load(Ordering::Relaxed) - before;
    }
    let first = passes[0];
    let now = median(passes);
    let interval = ReconcileSettings::default().trigger_interval;
    let serial_ms = serial.map(|(d, _)| d.as_millis() as u64);
    if args.output == "json" {
        println!(
            "{}",
            serde_json::json!({"routes": args.routes, "clusters": args.clusters, "verdictMs": args.verdict_ms, "concurrency": args.concurrency,
                "perRouteSerialMs": serial_ms, "perRouteSerialVerdicts": serial.map(|(_, c)| c),
                "passMedianMs": now.as_millis() as u64, "firstPassMs": first.as_millis() as u64, "passVerdicts": calls, "intervalMs": interval.as_millis() as u64})
        );
    } else {
        println!("{} routes with policies over {} clusters; a verdict costs {} ms; trigger interval {} s", args.routes, args.clusters, args.verdict_ms, interval.as_secs());
        if let Some((d, c)) = serial {
            println!("  per route, serial (before):        {:>8} ms  ({c} verdicts)", d.as_millis());
        }
        println!("  shared per cluster, {:>2} at a time:  {:>8} ms  median of {} passes (first {} ms, which writes every route's state; {calls} verdicts)", args.concurrency, now.as_millis(), args.rounds, first.as_millis());
        println!("  within one interval: {}", if now < interval { "yes" } else { "no" });
    }
    Ok(())
}
