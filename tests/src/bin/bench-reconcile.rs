//! `bench-reconcile`: what a fleet costs the fleet manager to keep reconciled, measured on a real
//! `fleet-manager` process against a real ZooKeeper.
//!
//! N clusters of 3 brokers are declared; their hosts exist (local provider instance files), their
//! IDs are registered and their brokers are live (ephemeral `/brokers/ids/<id>` made by this
//! process, no JVM). One cluster has a broker missing while its host is alive: it waits out a long
//! grace period. Over a window, the ZooKeeper requests the fleet manager sends are counted on the
//! server side (`mntr`'s `zk_packets_received`, minus this process's own), so any fleet-manager
//! binary can be measured the same way (`FLEET_BIN_DIR` picks the binary); the fleet manager's own
//! `provider_calls` counter is read too when it has one. Then its resident memory.

use std::time::{Duration, Instant};

use clap::Parser;
use fleet_common::local::{LocalInstance, LocalInstanceState};
use fleet_common::FleetPaths;
use fleet_tests::fleet_manager::{FleetManager, FleetManagerOptions, WRITE_TOKEN};
use fleet_tests::{wait_until, ZkEnsemble};
use zookeeper_client as zk;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 100)]
    clusters: usize,
    /// Measurement window.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    #[arg(long, short = 'o', default_value = "table")]
    output: String,
}

async fn packets_received(port: u16) -> u64 {
    let text = fleet_tests::wire::four_letter_word(port, "mntr").await.unwrap_or_default();
    text.lines().find_map(|l| l.strip_prefix("zk_packets_received")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

fn metric(text: &str, prefix: &str) -> f64 {
    text.lines().filter(|l| l.starts_with(prefix)).filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok()).sum()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let zk_ens = ZkEnsemble::start(1).await;
    let port = zk_ens.nodes[0].client_port;
    let mut options = FleetManagerOptions::new(&zk_ens.connect_string());
    options.replace_grace_secs = 3600;
    options.interval_secs = 30;
    let fm = FleetManager::start(options).await;
    let root = fm.options.fleet_root.clone();
    let client = zk_ens.client().await;
    let paths = FleetPaths::new(&root);
    let now = fleet_manager::store::now_ms();
    let mut docs = Vec::new();
    for c in 0..args.clusters {
        let name = format!("c{c:04}");
        let cp = paths.cluster(&name);
        for b in 1..=3i32 {
            let instance = format!("{name}-{b:04}");
            fleet_common::local::write_instance(
                &fm.hosts_root(),
                &LocalInstance {
                    instance_id: instance.clone(),
                    availability_zone: ["a", "b", "c"][(b - 1) as usize].into(),
                    state: LocalInstanceState::Running,
                    private_ip: "127.0.0.1".into(),
                    cluster: Some(name.clone()),
                    port: None,
                    launched_ms: Some(now),
                    launch_token: None,
                    role: None,
                    controller_port: None,
                    kraft: false,
                },
            )?;
            let lease = serde_json::json!({ "instanceId": instance, "assignedAtMs": now });
            fleet_common::zk::ensure_path(&client, &cp.broker_ids(), fleet_common::FleetAcl::Open).await?;
            let _ = client.create(&cp.broker_id(b), lease.to_string().as_bytes(), &zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())).await;
            // The waiting cluster: broker 2 is missing while its host is alive.
            if !(c == 0 && b == 2) {
                let ids = cp.kafka().broker_ids();
                fleet_common::zk::ensure_path(&client, &ids, fleet_common::FleetAcl::Open).await?;
                let reg = serde_json::json!({ "version": 5, "host": "127.0.0.1", "port": 9092, "endpoints": ["PLAINTEXT://127.0.0.1:9092"] });
                let _ = client.create(&format!("{ids}/{b}"), reg.to_string().as_bytes(), &zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all())).await;
            }
        }
        docs.push(serde_json::json!({
            "apiVersion": "kafka-fleet.io/v1", "kind": "KafkaCluster", "metadata": { "name": name },
            "spec": { "kafkaVersion": "3.9", "brokers": 3, "availabilityZones": ["a", "b", "c"], "provider": "local" }
        }));
    }
    let http = reqwest::Client::new();
    let applied_at = Instant::now();
    let answer = http.post(format!("{}/v1/apply", fm.url())).bearer_auth(WRITE_TOKEN).json(&serde_json::json!({ "resources": docs })).send().await?;
    anyhow::ensure!(answer.status().is_success(), "apply: {}", answer.text().await?);
    // Every cluster reconciled once: each has its series of the per-cluster gauge (cheap to read,
    // where listing 1,000 cluster views four times a second would compete for the CPU).
    let metrics_url = format!("{}/metrics", fm.url());
    wait_until("every cluster reconciled", Duration::from_secs(600), || async {
        let text = http.get(&metrics_url).send().await.map_err(|e| e.to_string())?.text().await.map_err(|e| e.to_string())?;
        let n = text.lines().filter(|l| l.starts_with("fleet_manager_cluster_converged{")).count();
        if n == args.clusters {
            Ok(Some(()))
        } else {
            Err(format!("{n} of {} reconciled", args.clusters))
        }
    })
    .await;
    let first_reconcile_ms = applied_at.elapsed().as_millis();
    let metrics_text = || async { http.get(format!("{}/metrics", fm.url())).send().await.ok()?.text().await.ok() };
    let before_metrics = metrics_text().await.unwrap_or_default();
    let p0 = packets_received(port).await;
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    let p1 = packets_received(port).await;
    let elapsed = started.elapsed().as_secs_f64();
    let after_metrics = metrics_text().await.unwrap_or_default();
    // The two mntr requests of this process are its own packets.
    let zk_per_min = (p1.saturating_sub(p0).saturating_sub(1)) as f64 * 60.0 / elapsed;
    let provider = metric(&after_metrics, "fleet_manager_provider_calls_total") - metric(&before_metrics, "fleet_manager_provider_calls_total");
    let has_counter = after_metrics.contains("fleet_manager_provider_calls_total");
    let pid = fm.process.as_ref().map(|p| p.pid()).unwrap_or(0);
    let rss_kib: u64 = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0);
    let result = serde_json::json!({
        "clusters": args.clusters,
        "windowSeconds": elapsed,
        "firstReconcileOfAllMs": first_reconcile_ms,
        "zookeeperRequestsPerMinute": zk_per_min.round(),
        "providerCallsPerMinute": if has_counter { serde_json::json!((provider * 60.0 / elapsed).round()) } else { serde_json::Value::Null },
        "fleetManagerRssMiB": rss_kib as f64 / 1024.0,
    });
    if args.output == "json" {
        println!("{result}");
    } else {
        println!("clusters                     {}", args.clusters);
        println!("all reconciled once after    {first_reconcile_ms} ms");
        println!("ZooKeeper requests / minute  {}", result["zookeeperRequestsPerMinute"]);
        println!("provider calls / minute      {}", result["providerCallsPerMinute"]);
        println!("fleet-manager RSS            {:.1} MiB", result["fleetManagerRssMiB"].as_f64().unwrap_or(0.0));
    }
    Ok(())
}
