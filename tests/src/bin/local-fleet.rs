//! `local-fleet demo`: a 3-node ZooKeeper ensemble and the fleet manager (SQLite, local hosts);
//! `fleetctl apply` of the example cluster (3 brokers, each booted through `kafka-bootstrap` on
//! its own local host) and its topics, `fleetctl describe` showing it converged, a message
//! produced and consumed with kcat, and the auditor heartbeating every broker.
//! From a terminal it stays up until Ctrl-C; otherwise it stops everything and exits.

use std::io::IsTerminal;

use anyhow::Result;
use clap::{Parser, Subcommand};
use fleet_tests::fleet_manager::{FleetManager, FleetManagerOptions};
use fleet_tests::ZkEnsemble;

#[derive(Parser)]
#[command(name = "local-fleet")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Boot the local fleet through the fleet manager and show a produce/consume round trip.
    Demo {
        /// Stop right after the round trip, even from a terminal.
        #[arg(long)]
        exit: bool,
    },
}

async fn fleetctl(fm: &FleetManager, args: &[&str]) -> Result<String> {
    println!("$ fleetctl {}", args.join(" "));
    let out = fm.fleetctl(args).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    // Progress lines (stderr) came before the final answer (stdout).
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    print!("{stdout}");
    anyhow::ensure!(out.status.success(), "fleetctl {} failed ({})", args.join(" "), out.status);
    Ok(stdout)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let Cli { command: Command::Demo { exit } } = Cli::parse();
    println!("==> starting a 3-node ZooKeeper ensemble");
    let zk = ZkEnsemble::start(3).await;
    println!("    zookeeper: {}", zk.connect_string());

    let fm = FleetManager::start(FleetManagerOptions::new(&zk.connect_string())).await;
    println!("==> fleet manager at {} (SQLite {}, local hosts under {})", fm.url(), fm.database_url(), fm.hosts_root().display());
    let examples = fleet_tests::repo_root().join("examples/fleet");
    let examples = examples.display().to_string();
    fleetctl(&fm, &["apply", "-f", &examples, "--wait", "--timeout", "180s"]).await?;
    fleetctl(&fm, &["get", "topics", "--cluster", "demo"]).await?;
    let described = fleetctl(&fm, &["describe", "cluster", "demo"]).await?;
    anyhow::ensure!(described.contains("Status: Converged"), "the cluster did not converge");

    let bootstrap: String = fm
        .local_hosts()
        .iter()
        .filter_map(|h| h.port.map(|p| format!("127.0.0.1:{p}")))
        .collect::<Vec<_>>()
        .join(",");
    let brokers = fm.local_hosts().len();
    let message = format!("hello from kafka-fleet at {}", chrono_like_now());
    println!("==> kcat -P -b {bootstrap} -t demo-events -p 0   <<< {message:?}");
    fleet_tests::kcat::produce(&bootstrap, "demo-events", &message).await;
    let got = fleet_tests::kcat::consume_one(&bootstrap, "demo-events").await;
    println!("==> kcat -C -b {bootstrap} -t demo-events -p 0 -c 1   >>> {got:?}");
    anyhow::ensure!(got == message, "consumed {got:?}, produced {message:?}");
    println!("==> round trip OK");

    // The auditor heartbeats every broker; its dashboard stays up with the fleet.
    let auditor_port = fleet_tests::free_port();
    let auditor_config = fm.run.path.join("auditor.yaml");
    std::fs::write(
        &auditor_config,
        format!("instanceId: demo-auditor\nlisten: 127.0.0.1:{auditor_port}\nclusters:\n  - name: demo\n    bootstrapServers: \"{bootstrap}\"\n    intervalMs: 500\n    windowIntervals: 4\n"),
    )?;
    let mut cmd = std::process::Command::new(fleet_tests::workspace_bin("kafka-auditor"));
    cmd.arg("run").arg("--config").arg(&auditor_config);
    let _auditor = fleet_tests::process::ManagedProcess::spawn("auditor", cmd, &fm.run.path.join("auditor.log"))?;
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

    // Scale-up: 3 -> 5 brokers, new partitions placed on the new brokers in one ZooKeeper commit.
    fleetctl(&fm, &["scale-up", "demo", "--brokers", "5", "--dry-run"]).await?;
    fleetctl(&fm, &["scale-up", "demo", "--brokers", "5", "--wait", "--timeout", "300s"]).await?;
    let bootstrap = fm.bootstrap_servers();
    println!("$ kafka-topics --bootstrap-server {bootstrap} --describe --topic demo-activity");
    let described = fleet_tests::kafka::kafka_tool("org.apache.kafka.tools.TopicCommand", &["--bootstrap-server", &bootstrap, "--describe", "--topic", "demo-activity"]).await;
    let text = String::from_utf8_lossy(&described.stdout).into_owned();
    // Kafka's tool logs to stdout too: show its answer only.
    for line in text.lines().filter(|l| l.trim_start().starts_with("Topic:")) {
        println!("{line}");
    }
    let topics = fleet_tests::kafka::parse_describe(&text);
    let leaders: std::collections::BTreeSet<i32> = topics.get("demo-activity").map(|t| t.partitions.values().map(|p| p.0).collect()).unwrap_or_default();
    for new_broker in [4, 5] {
        anyhow::ensure!(leaders.contains(&new_broker), "broker {new_broker} leads no partition of demo-activity: {}", String::from_utf8_lossy(&described.stderr));
    }
    println!("==> brokers 4 and 5 lead partitions of demo-activity");
    let figures = fleet_tests::wait_until("the auditor to see all 5 brokers at 100% produce and consume", std::time::Duration::from_secs(90), || {
        let url = figures_url.clone();
        async move {
            let v: serde_json::Value = reqwest::get(&url).await.map_err(|e| e.to_string())?.json().await.map_err(|e| e.to_string())?;
            let seen = v[0]["brokers"].as_array().cloned().unwrap_or_default();
            let ready = seen.len() == 5 && seen.iter().all(|b| b["produce_availability"] == 1.0 && b["consume_availability"] == 1.0 && b["attempts_total"].as_u64().unwrap_or(0) >= 4);
            if ready { Ok(Some(seen)) } else { Err(format!("{seen:?}")) }
        }
    })
    .await;
    for b in &figures {
        println!(
            "    broker {}: produce {:.0}%, consume {:.0}%",
            b["broker"],
            b["produce_availability"].as_f64().unwrap_or(0.0) * 100.0,
            b["consume_availability"].as_f64().unwrap_or(0.0) * 100.0
        );
    }

    if !exit && std::io::stdin().is_terminal() {
        // What a person needs to drive the fleet from another terminal.
        println!("fleet is up; from another terminal:");
        println!("    export FLEET_API={}", fm.url());
        println!("    export FLEET_TOKEN={}", fleet_tests::fleet_manager::WRITE_TOKEN);
        println!("    fleetctl get clusters; fleetctl get operations; fleetctl journal");
        println!("  ZooKeeper:          {}", zk.connect_string());
        println!("  Kafka (demo):       {bootstrap}");
        println!("  auditor dashboard:  http://127.0.0.1:{auditor_port}/");
        println!("  fleet manager:      {}/metrics  {}/openapi.json", fm.url(), fm.url());
        println!("  read-only token (dashboards): {}", fleet_tests::fleet_manager::READ_TOKEN);
        println!("Ctrl-C stops it");
        tokio::signal::ctrl_c().await?;
    }
    println!("==> stopping (the fleet manager's hosts with it)");
    drop(fm);
    drop(zk);
    Ok(())
}

fn chrono_like_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    format!("unix time {secs}")
}
