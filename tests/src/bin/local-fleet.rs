//! `local-fleet demo`: a 3-node ZooKeeper ensemble and a 3-broker Kafka cluster, each broker booted
//! through `kafka-bootstrap` on its own local host, then a message produced and consumed with kcat.
//! From a terminal it stays up until Ctrl-C; otherwise it stops everything and exits.

use std::io::IsTerminal;

use anyhow::Result;
use clap::{Parser, Subcommand};
use fleet_tests::kafka::ClusterSpec;
use fleet_tests::{LocalCluster, ZkEnsemble};

#[derive(Parser)]
#[command(name = "local-fleet")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Boot the local fleet and show a produce/consume round trip.
    Demo {
        #[arg(long, default_value_t = 3)]
        brokers: usize,
        /// Stop right after the round trip, even from a terminal.
        #[arg(long)]
        exit: bool,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let Cli { command: Command::Demo { brokers, exit } } = Cli::parse();
    println!("==> starting a 3-node ZooKeeper ensemble");
    let zk = ZkEnsemble::start(3).await;
    println!("    zookeeper: {}", zk.connect_string());

    let mut spec = ClusterSpec::local(brokers);
    spec.name = "demo".into();
    spec.properties.insert("auto.create.topics.enable".into(), "true".into());
    let mut cluster = LocalCluster::new(&zk, spec);
    println!("==> booting {brokers} brokers through kafka-bootstrap (cluster file {})", cluster.cluster_file.display());
    let zones = ["local-a", "local-b", "local-c"];
    for i in 1..=brokers {
        let instance = format!("demo-host-{i}");
        cluster.add_local_instance(&instance, zones[(i - 1) % zones.len()]);
        let b = cluster.start_broker(&instance).await;
        println!("    {instance}: broker {} at {} (log {})", b.broker_id, b.bootstrap_server(), b.process.log.display());
    }
    for b in &cluster.brokers {
        if let Some(reg) = cluster.registration(b.broker_id).await {
            println!("    /brokers/ids/{}: rack {:?}, {:?}", b.broker_id, reg.rack.unwrap_or_default(), reg.endpoints);
        }
    }
    let routes = fleet_common::local::read_record(&cluster.dns_root, "demo.local")?;
    println!("    local route demo.local -> {:?}", routes.iter().flat_map(|r| r.values.clone()).collect::<Vec<_>>());

    let bootstrap = cluster.bootstrap_servers();
    let message = format!("hello from kafka-fleet at {}", chrono_like_now());
    println!("==> kcat -P -b {bootstrap} -t demo-events   <<< {message:?}");
    fleet_tests::kcat::produce(&bootstrap, "demo-events", &message).await;
    let got = fleet_tests::kcat::consume_one(&bootstrap, "demo-events").await;
    println!("==> kcat -C -b {bootstrap} -t demo-events -c 1   >>> {got:?}");
    anyhow::ensure!(got == message, "consumed {got:?}, produced {message:?}");
    println!("==> round trip OK");

    // The auditor heartbeats every broker; its dashboard stays up with the fleet.
    let auditor_port = fleet_tests::free_port();
    let auditor_config = cluster.run.path.join("auditor.yaml");
    std::fs::write(
        &auditor_config,
        format!("instanceId: demo-auditor\nlisten: 127.0.0.1:{auditor_port}\nclusters:\n  - name: demo\n    bootstrapServers: \"{bootstrap}\"\n    intervalMs: 500\n    windowIntervals: 4\n"),
    )?;
    let mut cmd = std::process::Command::new(fleet_tests::workspace_bin("kafka-auditor"));
    cmd.arg("run").arg("--config").arg(&auditor_config);
    let _auditor = fleet_tests::process::ManagedProcess::spawn("auditor", cmd, &cluster.run.path.join("auditor.log"))?;
    println!("==> kafka-auditor heartbeating every broker: dashboard http://127.0.0.1:{auditor_port}/");
    let figures_url = format!("http://127.0.0.1:{auditor_port}/api/figures");
    let figures = fleet_tests::wait_until("the auditor to see every broker at 100%", std::time::Duration::from_secs(60), || {
        let url = figures_url.clone();
        async move {
            let v: serde_json::Value = reqwest::get(&url).await.map_err(|e| e.to_string())?.json().await.map_err(|e| e.to_string())?;
            let seen = v[0]["brokers"].as_array().cloned().unwrap_or_default();
            let ready = seen.len() == brokers && seen.iter().all(|b| b["produce_availability"] == 1.0 && b["consume_availability"] == 1.0 && b["attempts_total"].as_u64().unwrap_or(0) >= 4);
            Ok(ready.then_some(seen))
        }
    })
    .await;
    for b in &figures {
        println!(
            "    broker {}: produce {:.0}%, consume {:.0}%, end-to-end p99 {:.1} ms",
            b["broker"],
            b["produce_availability"].as_f64().unwrap_or(0.0) * 100.0,
            b["consume_availability"].as_f64().unwrap_or(0.0) * 100.0,
            b["latency_ms_p99"].as_f64().unwrap_or(0.0)
        );
    }

    if !exit && std::io::stdin().is_terminal() {
        println!("fleet is up; Ctrl-C stops it");
        tokio::signal::ctrl_c().await?;
    }
    println!("==> stopping");
    drop(cluster);
    drop(zk);
    Ok(())
}

fn chrono_like_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    format!("unix time {secs}")
}
