//! `local-fleet demo`: a 3-node ZooKeeper ensemble and the fleet manager (SQLite, local hosts);
//! first a Kafka 4.4 cluster in KRaft mode (`examples/kraft`: 3 controller hosts, 3 broker hosts)
//! shown with `kafka-metadata-quorum`, kcat and the healthcheck; then, for the operations that
//! speak ZooKeeper today, `fleetctl apply` of the 3.9 example cluster (3 brokers, each booted through `kafka-bootstrap` on
//! its own local host) and its topics, `fleetctl describe` showing it converged, a message
//! produced and consumed with kcat, the auditor heartbeating every broker, a scale-up, then the
//! route `events` failed over to a freshly built cluster while producers and consumers follow it
//! through the client library (a broker killed first), and fallen back once the original is
//! repaired, every acknowledged record found again with kcat.
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
    // Ctrl-C, SIGTERM, or SIGHUP (the terminal closed) at any point: the demo's future is
    // dropped, and with it every fixture it holds, each stopping what it started (the fleet
    // manager its local hosts, the ensemble its nodes).
    let stop = fleet_common::signals::stop_requested();
    tokio::select! {
        done = demo(exit) => done,
        signal = stop => {
            println!("==> {signal}: stopping everything the demo started");
            Ok(())
        }
    }
}

async fn demo(exit: bool) -> Result<()> {
    println!("==> starting a 3-node ZooKeeper ensemble");
    let zk = ZkEnsemble::start(3).await;
    println!("    zookeeper: {}", zk.connect_string());

    let mut options = FleetManagerOptions::new(&zk.connect_string());
    // The KRaft cluster's 6 hosts, the 5-broker demo cluster and its fresh 5-broker clone
    // during the failover.
    options.local_max_hosts = 16;
    let fm = FleetManager::start(options).await;
    println!("==> fleet manager at {} (SQLite {}, local hosts under {})", fm.url(), fm.database_url(), fm.hosts_root().display());
    kraft_demo(&fm).await?;

    println!("==> a Kafka 3.9 cluster (ZooKeeper mode): scale-up, the auditor, failover and fallback");
    let examples = fleet_tests::repo_root().join("examples/fleet");
    let examples = examples.display().to_string();
    fleetctl(&fm, &["apply", "-f", &examples, "--wait", "--timeout", "180s"]).await?;
    fleetctl(&fm, &["get", "topics", "--cluster", "demo"]).await?;
    let described = fleetctl(&fm, &["describe", "cluster", "demo"]).await?;
    anyhow::ensure!(described.contains("Status: Converged"), "the cluster did not converge");

    let bootstrap = fm.cluster_servers(Some("demo"));
    let brokers = bootstrap.split(',').count();
    kcat_round_trip(&bootstrap, "demo-events", "hello from kafka-fleet").await?;
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
    let bootstrap = fm.cluster_servers(Some("demo"));
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

    let (auditor_routes, _route_auditor) = failover_demo(&fm).await?;

    if !exit && std::io::stdin().is_terminal() {
        // What a person needs to drive the fleet from another terminal.
        println!("fleet is up; from another terminal:");
        println!("    export FLEET_API={}", fm.url());
        println!("    export FLEET_TOKEN={}", fleet_tests::fleet_manager::WRITE_TOKEN);
        println!("    fleetctl get clusters; fleetctl get operations; fleetctl journal");
        println!("  things to try:");
        println!("    fleetctl failover events --build --wait         # a fresh, immutable cluster takes the route");
        println!("    fleetctl fallback events --wait                 # and back (the build stays as a standby)");
        println!("    fleetctl release-standby events                 # drop the standby once nobody uses it");
        println!("    fleetctl rebalance demo --hold                  # held for approval: fleetctl approve operation ID");
        println!("    fleetctl scale-up demo --brokers 6 --dry-run    # the plan, nothing written");
        println!("  ZooKeeper:          {}", zk.connect_string());
        println!("  Kafka (demo):       {bootstrap}");
        println!("  auditor dashboard:  http://127.0.0.1:{auditor_port}/ (route events: {auditor_routes})");
        println!("  fleet manager:      {}/metrics  {}/openapi.json", fm.url(), fm.url());
        println!("  read-only token (dashboards): {}", fleet_tests::fleet_manager::READ_TOKEN);
        println!("Ctrl-C stops it");
        // The signal ends `main`'s select, which drops this future and the fixtures with it.
        std::future::pending::<()>().await;
    }
    println!("==> stopping (the fleet manager's hosts with it)");
    drop(fm);
    drop(zk);
    Ok(())
}

/// A Kafka 4.4 cluster in KRaft mode, applied from `examples/kraft`: 3 controller hosts form
/// the quorum, 3 broker hosts register; shown with Kafka's own `kafka-metadata-quorum`, a kcat
/// round trip and the healthcheck's verdict (read through the Kafka protocol).
async fn kraft_demo(fm: &FleetManager) -> Result<()> {
    println!("==> a Kafka 4.4 cluster in KRaft mode: 3 controllers, 3 brokers");
    let examples = fleet_tests::repo_root().join("examples/kraft").display().to_string();
    fleetctl(fm, &["apply", "-f", &examples, "--wait", "--timeout", "300s"]).await?;
    let described = fleetctl(fm, &["describe", "cluster", "stream"]).await?;
    anyhow::ensure!(described.contains("Status: Converged"), "the KRaft cluster did not converge");
    let role_endpoints = |role: &str| {
        fm.local_hosts()
            .into_iter()
            .filter(|h| h.cluster.as_deref() == Some("stream") && h.state == fleet_common::local::LocalInstanceState::Running)
            .filter(|h| h.role.as_deref().unwrap_or("broker") == role)
            .filter_map(|h| h.port.map(|p| format!("127.0.0.1:{p}")))
            .collect::<Vec<_>>()
    };
    let controllers = role_endpoints("controller");
    let brokers = role_endpoints("broker").join(",");
    let controller = controllers.first().cloned().unwrap_or_default();
    println!("$ kafka-metadata-quorum --bootstrap-controller {controller} describe --status");
    let out = fleet_tests::kafka::kafka4_tool("org.apache.kafka.tools.MetadataQuorumCommand", &["--bootstrap-controller", &controller, "describe", "--status"]).await;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    for line in text.lines().filter(|l| ["ClusterId:", "LeaderId:", "CurrentVoters:", "CurrentObservers:"].iter().any(|k| l.starts_with(k))) {
        println!("{line}");
    }
    anyhow::ensure!(out.status.success(), "kafka-metadata-quorum failed: {}", String::from_utf8_lossy(&out.stderr));
    kcat_round_trip(&brokers, "stream-events", "hello from KRaft").await?;
    println!("$ kafka-healthcheck check --zookeeper {} --fleet-root {} --cluster stream --bootstrap-server {brokers}", fm.options.zookeeper, fm.options.fleet_root);
    let out = tokio::process::Command::new(fleet_tests::workspace_bin("kafka-healthcheck"))
        .args(["check", "--zookeeper", &fm.options.zookeeper, "--fleet-root", &fm.options.fleet_root, "--cluster", "stream", "--bootstrap-server", &brokers])
        .output()
        .await?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    anyhow::ensure!(out.status.code() != Some(2), "the healthcheck could not tell: {}", String::from_utf8_lossy(&out.stderr));
    println!("==> the KRaft cluster is up; a killed host of either role is replaced by the fleet manager, the voter set repaired");
    Ok(())
}

/// One message produced to partition 0 of `topic` with kcat and read back, each step printed.
async fn kcat_round_trip(bootstrap: &str, topic: &str, greeting: &str) -> Result<()> {
    let message = format!("{greeting} at {}", chrono_like_now());
    println!("==> kcat -P -b {bootstrap} -t {topic} -p 0   <<< {message:?}");
    fleet_tests::kcat::produce(bootstrap, topic, &message).await;
    let got = fleet_tests::kcat::consume_one(bootstrap, topic).await;
    println!("==> kcat -C -b {bootstrap} -t {topic} -p 0 -c 1   >>> {got:?}");
    anyhow::ensure!(got == message, "consumed {got:?}, produced {message:?}");
    Ok(())
}

fn chrono_like_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    format!("unix time {secs}")
}

/// Producers and consumers on route `events` through the client library, the auditor following
/// the route, a broker killed, `failover events --build --wait`, then `fallback events --wait`:
/// every acknowledged record is found on the two clusters with kcat. Returns the auditor's URL
/// and process (it stays up with the fleet).
async fn failover_demo(fm: &FleetManager) -> Result<(String, fleet_tests::process::ManagedProcess)> {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::Duration;

    use fleet_client::{ClientConfig, FleetProducer};
    // The high class: acks=all, 3 copies, min.insync.replicas 2.
    const TOPIC: &str = "demo-activity";
    let client = |name: &str| {
        let mut c = ClientConfig::new("events", &[fm.url().as_str()]);
        c.token = Some(fleet_tests::fleet_manager::CLIENT_TOKEN.into());
        c.cache_path = Some(fm.run.path.join(format!("{name}.binding.json")));
        c.report_interval = Duration::from_millis(500);
        c
    };
    println!("==> two producers and a consumer group on route `events` (fleet-client), the auditor following the route");
    let producers: Vec<Arc<FleetProducer>> = (0..2).map(|i| FleetProducer::new(client(&format!("producer-{i}"))).map(Arc::new)).collect::<Result<_, _>>()?;
    let mut consumer_config = client("consumer");
    consumer_config.group = Some("demo-readers".into());
    consumer_config.topics = vec![TOPIC.into()];
    let reader = fleet_tests::clients::Reader::start(consumer_config);
    let auditor_port = fleet_tests::free_port();
    let auditor_config = fm.run.path.join("route-auditor.yaml");
    std::fs::write(
        &auditor_config,
        format!("instanceId: demo-route-auditor\nlisten: 127.0.0.1:{auditor_port}\nroutes:\n  - name: events\n    fleetManagers: [\"{}\"]\n    topic: {TOPIC}\n    intervalMs: 100\n", fm.url()),
    )?;
    let mut cmd = std::process::Command::new(fleet_tests::workspace_bin("kafka-auditor"));
    cmd.arg("run").arg("--config").arg(&auditor_config).env("FLEET_CLIENT_TOKEN", fleet_tests::fleet_manager::CLIENT_TOKEN);
    let auditor = fleet_tests::process::ManagedProcess::spawn("route-auditor", cmd, &fm.run.path.join("route-auditor.log"))?;
    let load = fleet_tests::clients::SequencedLoad::start(producers.clone(), TOPIC, "demo-", 1, Duration::from_millis(10));
    let acknowledged = || producers.iter().map(|p| p.counters().acknowledged).sum::<u64>();
    fleet_tests::wait_until("the producers' first 500 acknowledgements", Duration::from_secs(60), || {
        let n = acknowledged();
        async move { if n >= 500 { Ok(Some(())) } else { Err(format!("{n}")) } }
    })
    .await;
    fleetctl(fm, &["get", "clients", "--route", "events"]).await?;

    let victim = fm.local_hosts().iter().filter(|h| h.cluster.as_deref() == Some("demo")).map(|h| h.instance_id.clone()).next_back();
    if let Some(host) = &victim {
        println!("==> kill -9 of broker host {host} (the cluster is in trouble)");
        fm.kill_host(host);
    }
    fleetctl(fm, &["failover", "events", "--build", "--reason", "broker lost", "--wait", "--timeout", "600s"]).await?;
    fleetctl(fm, &["get", "routes"]).await?;
    fleetctl(fm, &["get", "clients", "--route", "events"]).await?;
    let before = acknowledged();
    fleet_tests::wait_until("acknowledgements from the new cluster", Duration::from_secs(60), || {
        let n = acknowledged() - before;
        async move { if n >= 500 { Ok(Some(())) } else { Err(format!("{n}")) } }
    })
    .await;
    println!("==> the original is repaired by the reconciler now that traffic left it; fallback verifies it first");
    fleetctl(fm, &["fallback", "events", "--reason", "demo repaired", "--wait", "--timeout", "600s"]).await?;
    fleetctl(fm, &["describe", "route", "events"]).await?;
    let before = acknowledged();
    fleet_tests::wait_until("acknowledgements after the fallback", Duration::from_secs(60), || {
        let n = acknowledged() - before;
        async move { if n >= 500 { Ok(Some(())) } else { Err(format!("{n}")) } }
    })
    .await;
    let (_, acked) = load.stop().await;
    let consumed = reader.payloads().len();
    reader.stop();
    let mut found: BTreeMap<String, usize> = BTreeMap::new();
    for cluster in ["demo", "demo-1"] {
        let servers = fm.cluster_servers(Some(cluster));
        println!("$ kcat -C -b {servers} -t {TOPIC} -o beginning -e");
        let lines = fleet_tests::kcat::read_all(&servers, TOPIC).await;
        println!("    {} records on {cluster}", lines.len());
        for l in lines {
            *found.entry(l).or_default() += 1;
        }
    }
    let lost = acked.keys().filter(|k| !found.contains_key(*k)).count();
    let on: BTreeMap<&str, usize> = acked.values().fold(BTreeMap::new(), |mut m, c| {
        *m.entry(c.as_str()).or_default() += 1;
        m
    });
    let duplicates = found.iter().filter(|(k, n)| k.starts_with("demo-") && **n > 1).count();
    println!("==> {} records acknowledged ({on:?}), {lost} lost, {duplicates} duplicated; the consumer group read {consumed}", acked.len());
    anyhow::ensure!(lost == 0, "{lost} acknowledged records are missing from both clusters");
    let routes: serde_json::Value = reqwest::get(format!("http://127.0.0.1:{auditor_port}/api/routes")).await?.json().await?;
    println!("==> the auditor on route events: {}", routes[0]);
    // The warm standby the fallback left is released (no client uses it any more), so the hosts
    // it held are free for the next failover --build.
    println!("==> releasing the warm standby demo-1 (its hosts are needed for the next build)");
    // Refused while a client's last report still names it (reports lapse 30 s after a client
    // moves): asked again until that has passed, with a deadline.
    let started = std::time::Instant::now();
    loop {
        let out = fm.fleetctl(&["release-standby", "events"]).await;
        let said = fleet_tests::output_text(&out);
        match out.status.code() {
            Some(0) => {
                print!("{}", String::from_utf8_lossy(&out.stdout));
                break;
            }
            // 4: still in use (a client's last report names it); anything else is final.
            Some(4) if started.elapsed() < Duration::from_secs(90) => {
                println!("    (not yet: a client's report still names demo-1; asking again in 5 s)");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            _ => anyhow::bail!("fleetctl release-standby events failed: {said}"),
        }
    }
    Ok((format!("http://127.0.0.1:{auditor_port}/"), auditor))
}
