//! `bench-decommission`: emptying one broker under a replication throttle, this project's
//! decommission side by side with Kafka's own `kafka-reassign-partitions --throttle`, in one run
//! on one cluster, doing the same moves at the same rate.
//!
//! A 4-broker cluster (fleet manager, local hosts, racks zone-a/b/c/a) holds N MiB of records (two
//! copies), written with Kafka's producer-perf tool; the auditor heartbeats every broker. Then:
//! (peer) the moves of `fleetctl decommission --brokers 4 --dry-run` handed to
//!        `kafka-reassign-partitions --execute --throttle`, then `--verify` every few seconds, as
//!        an operator following Kafka's documentation would (verify removes the throttles once
//!        every move is done, and only then);
//! (back) the same partitions moved back, unthrottled (the auditor's figures without a throttle);
//! (ours) `fleetctl decommission --brokers 4 --throttle` once, which also moves leadership first
//!        and retires the broker (host, DNS record, ID) afterwards.
//! Each side is timed from its first command to the last partition moved (read from the topic
//! znodes) and to the last throttle gone from `/config` (read from ZooKeeper); the auditor's
//! worst per-broker p99 latency is sampled every second during each side.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use fleet_tests::fleet_manager::{FleetManager, FleetManagerOptions};
use fleet_tests::kafka::{kafka_tool, local_cluster_yaml};
use fleet_tests::ZkEnsemble;
use zookeeper_client as zk;

#[derive(Parser)]
struct Args {
    /// MiB of records written (each kept twice).
    #[arg(long, default_value_t = 1024)]
    data_mib: u64,
    /// The throttle both sides use.
    #[arg(long, default_value = "10MiB/s")]
    throttle: String,
    /// How often the peer's operator runs `--verify`.
    #[arg(long, default_value_t = 5)]
    verify_every_secs: u64,
    #[arg(long, short = 'o', default_value = "table")]
    output: String,
}

const CLUSTER: &str = "bench";
const TOPICS: [&str; 4] = ["b0", "b1", "b2", "b3"];

fn specs() -> String {
    let mut text = local_cluster_yaml(CLUSTER, 4, &[("auto.leader.rebalance.enable", "false")]);
    for t in TOPICS {
        text.push_str(&format!("---\napiVersion: kafka-fleet.io/v1\nkind: Topic\nmetadata: {{ name: {t} }}\nspec: {{ cluster: {CLUSTER}, partitions: 8 }}\n"));
    }
    text
}

/// Partition -> replicas, from the topic znodes; `None` while any partition is being reassigned.
async fn assignment(client: &zk::Client, root: &str) -> anyhow::Result<Option<BTreeMap<(String, u32), Vec<i32>>>> {
    let kafka = fleet_common::FleetPaths::new(root).cluster(CLUSTER).kafka();
    let mut out = BTreeMap::new();
    for t in client.list_children(&kafka.topics()).await? {
        let (data, _) = client.get_data(&kafka.topic(&t)).await?;
        let a: fleet_common::znodes::TopicAssignment = serde_json::from_slice(&data)?;
        if a.adding_replicas.values().any(|r| !r.is_empty()) || a.removing_replicas.values().any(|r| !r.is_empty()) {
            return Ok(None);
        }
        for (p, r) in a.partitions {
            out.insert((t.clone(), p.parse()?), r);
        }
    }
    Ok(Some(out))
}

async fn throttles(client: &zk::Client, root: &str) -> anyhow::Result<usize> {
    let chroot = fleet_common::FleetPaths::new(root).cluster(CLUSTER).kafka_chroot();
    let mut n = 0;
    for kind in ["topics", "brokers"] {
        let dir = format!("{chroot}/config/{kind}");
        for c in client.list_children(&dir).await.unwrap_or_default() {
            let (data, _) = client.get_data(&format!("{dir}/{c}")).await?;
            n += String::from_utf8_lossy(&data).matches("throttled").count();
        }
    }
    Ok(n)
}

/// Times from `start` until every partition has `target`'s replicas, and until `/config` holds
/// no throttle (polled every 200 ms, so both sides are timed the same way).
struct Watch {
    moved_ms: Option<u64>,
    throttles_gone_ms: Option<u64>,
}

async fn watch(client: &zk::Client, root: &str, target: &BTreeMap<(String, u32), Vec<i32>>, start: Instant, stop: &tokio::sync::watch::Receiver<bool>) -> anyhow::Result<Watch> {
    let mut w = Watch { moved_ms: None, throttles_gone_ms: None };
    let mut seen_throttle = false;
    loop {
        if w.moved_ms.is_none() {
            if let Some(now) = assignment(client, root).await? {
                let sets = |r: &Vec<i32>| r.iter().copied().collect::<std::collections::BTreeSet<_>>();
                if target.iter().all(|(k, r)| now.get(k).is_some_and(|n| sets(n) == sets(r))) {
                    w.moved_ms = Some(start.elapsed().as_millis() as u64);
                }
            }
        }
        let t = throttles(client, root).await?;
        seen_throttle |= t > 0;
        if w.moved_ms.is_some() && t == 0 && w.throttles_gone_ms.is_none() {
            w.throttles_gone_ms = Some(start.elapsed().as_millis() as u64);
        }
        if (w.throttles_gone_ms.is_some() && (seen_throttle || *stop.borrow())) || start.elapsed() > Duration::from_secs(1800) {
            return Ok(w);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn reassignment_json(moves: &BTreeMap<(String, u32), Vec<i32>>) -> String {
    let partitions: Vec<serde_json::Value> = moves.iter().map(|((t, p), r)| serde_json::json!({"topic": t, "partition": p, "replicas": r, "log_dirs": r.iter().map(|_| "any").collect::<Vec<_>>()})).collect();
    serde_json::json!({"version": 1, "partitions": partitions}).to_string()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rate = fleet_manager::operations::reassign::moves::parse_rate(&args.throttle).map_err(|e| anyhow::anyhow!(e))?;
    let zk_ens = ZkEnsemble::start(1).await;
    let fm = FleetManager::start(FleetManagerOptions::new(&zk_ens.connect_string())).await;
    let root = fm.options.fleet_root.clone();
    let client = zk_ens.client().await;
    let spec_path = fm.run.path.join("bench.yaml");
    std::fs::write(&spec_path, specs())?;
    eprintln!("declaring a 4-broker cluster; writing {} MiB (two copies)", args.data_mib);
    let out = fm.fleetctl(&["apply", "-f", &spec_path.display().to_string(), "--wait", "--timeout", "600s"]).await;
    anyhow::ensure!(out.status.success(), "apply: {}", String::from_utf8_lossy(&out.stderr));
    let bootstrap = fm.bootstrap_servers();
    let records = (args.data_mib * 1024 * 1024 / 10240 / TOPICS.len() as u64).to_string();
    for t in TOPICS {
        let props = format!("bootstrap.servers={bootstrap}");
        let out = kafka_tool(
            "org.apache.kafka.tools.ProducerPerformance",
            &["--topic", t, "--num-records", &records, "--record-size", "10240", "--throughput", "-1", "--producer-props", &props, "acks=1", "linger.ms=20", "batch.size=524288"],
        )
        .await;
        anyhow::ensure!(out.status.success(), "producer-perf: {}", String::from_utf8_lossy(&out.stderr));
    }

    // The auditor, and a sampler of its worst per-broker p99 labelled with the side running.
    let auditor_port = fleet_tests::free_port();
    let auditor_config = fm.run.path.join("auditor.yaml");
    std::fs::write(
        &auditor_config,
        format!("instanceId: bench-auditor\nlisten: 127.0.0.1:{auditor_port}\nclusters:\n  - name: {CLUSTER}\n    bootstrapServers: \"{bootstrap}\"\n    intervalMs: 250\n    windowIntervals: 8\n"),
    )?;
    let mut cmd = std::process::Command::new(fleet_tests::workspace_bin("kafka-auditor"));
    cmd.arg("run").arg("--config").arg(&auditor_config);
    let _auditor = fleet_tests::process::ManagedProcess::spawn("auditor", cmd, &fm.run.path.join("auditor.log"))?;
    let label = Arc::new(Mutex::new(String::from("warm-up")));
    let samples: Arc<Mutex<Vec<(String, f64)>>> = Arc::default();
    let (l2, s2) = (label.clone(), samples.clone());
    let figures_url = format!("http://127.0.0.1:{auditor_port}/api/figures");
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let Ok(r) = http.get(&figures_url).send().await else { continue };
            let Ok(v) = r.json::<serde_json::Value>().await else { continue };
            let worst = v.as_array().into_iter().flatten().flat_map(|c| c["brokers"].as_array().cloned().unwrap_or_default()).filter_map(|b| b["latency_ms_p99"].as_f64()).fold(0.0, f64::max);
            let l = l2.lock().map(|l| l.clone()).unwrap_or_default();
            if let Ok(mut s) = s2.lock() {
                s.push((l, worst));
            }
        }
    });
    let set_label = |l: &str| {
        if let Ok(mut g) = label.lock() {
            *g = l.to_string();
        }
    };
    tokio::time::sleep(Duration::from_secs(15)).await;
    set_label("idle");
    tokio::time::sleep(Duration::from_secs(15)).await;

    // The moves, as this project plans them.
    let out = fm.fleetctl(&["decommission", CLUSTER, "--brokers", "4", "--dry-run", "-o", "json"]).await;
    anyhow::ensure!(out.status.success(), "dry run: {}", String::from_utf8_lossy(&out.stderr));
    let dry: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let mut to = BTreeMap::new();
    let mut from = BTreeMap::new();
    for m in dry["moves"]["moves"].as_array().into_iter().flatten() {
        let key = (m["topic"].as_str().unwrap_or_default().to_string(), m["partition"].as_u64().unwrap_or(0) as u32);
        let list = |v: &serde_json::Value| v.as_array().into_iter().flatten().filter_map(|b| b.as_i64()).map(|b| b as i32).collect::<Vec<i32>>();
        to.insert(key.clone(), list(&m["to"]));
        from.insert(key, list(&m["from"]));
    }
    let on_broker: u64 = {
        let dir = fm.hosts_root();
        let mut total = 0;
        for e in walk(&dir) {
            total += e;
        }
        total / 4
    };
    eprintln!("{} partition moves off broker 4 (about {} MiB per broker on disk)", to.len(), on_broker >> 20);

    // (peer) kafka-reassign-partitions --execute --throttle, then --verify every few seconds.
    set_label("peer (throttled)");
    let plan_path = fm.run.path.join("peer-plan.json");
    std::fs::write(&plan_path, reassignment_json(&to))?;
    let plan_arg = plan_path.display().to_string();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let start = Instant::now();
    let watcher = {
        let (c, r, t, s) = (client.clone(), root.clone(), to.clone(), stop_rx.clone());
        tokio::spawn(async move { watch(&c, &r, &t, start, &s).await })
    };
    let rate_arg = rate.to_string();
    let out = kafka_tool("org.apache.kafka.tools.reassign.ReassignPartitionsCommand", &["--bootstrap-server", &bootstrap, "--reassignment-json-file", &plan_arg, "--execute", "--throttle", &rate_arg]).await;
    anyhow::ensure!(out.status.success(), "reassign --execute: {}", String::from_utf8_lossy(&out.stderr));
    let mut verify_runs = 0;
    loop {
        tokio::time::sleep(Duration::from_secs(args.verify_every_secs)).await;
        verify_runs += 1;
        let out = kafka_tool("org.apache.kafka.tools.reassign.ReassignPartitionsCommand", &["--bootstrap-server", &bootstrap, "--reassignment-json-file", &plan_arg, "--verify"]).await;
        let text = String::from_utf8_lossy(&out.stdout);
        if out.status.success() && !text.contains("still in progress") && text.contains("is complete") {
            break;
        }
        anyhow::ensure!(start.elapsed() < Duration::from_secs(1800), "peer not done: {text}");
    }
    let _ = stop_tx.send(true);
    let peer = watcher.await??;
    let peer_steps = 1 + verify_runs;

    // (back) unthrottled, the same partitions back onto broker 4.
    set_label("unthrottled");
    let back_path = fm.run.path.join("back-plan.json");
    std::fs::write(&back_path, reassignment_json(&from))?;
    let back_arg = back_path.display().to_string();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let start = Instant::now();
    let watcher = {
        let (c, r, t, s) = (client.clone(), root.clone(), from.clone(), stop_rx.clone());
        tokio::spawn(async move { watch(&c, &r, &t, start, &s).await })
    };
    let out = kafka_tool("org.apache.kafka.tools.reassign.ReassignPartitionsCommand", &["--bootstrap-server", &bootstrap, "--reassignment-json-file", &back_arg, "--execute"]).await;
    anyhow::ensure!(out.status.success(), "reassign back: {}", String::from_utf8_lossy(&out.stderr));
    let _ = stop_tx.send(true);
    let back = watcher.await??;
    let _ = kafka_tool("org.apache.kafka.tools.reassign.ReassignPartitionsCommand", &["--bootstrap-server", &bootstrap, "--reassignment-json-file", &back_arg, "--verify"]).await;
    let _ = kafka_tool("org.apache.kafka.tools.LeaderElectionCommand", &["--bootstrap-server", &bootstrap, "--election-type", "preferred", "--all-topic-partitions"]).await;
    set_label("idle");
    tokio::time::sleep(Duration::from_secs(10)).await;

    // (ours) one command.
    set_label("fleet (throttled)");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let start = Instant::now();
    let watcher = {
        let (c, r, t, s) = (client.clone(), root.clone(), to.clone(), stop_rx.clone());
        tokio::spawn(async move { watch(&c, &r, &t, start, &s).await })
    };
    let out = fm.fleetctl(&["decommission", CLUSTER, "--brokers", "4", "--throttle", &args.throttle, "--wait", "--timeout", "1800s", "-o", "json"]).await;
    anyhow::ensure!(out.status.success(), "decommission: {}", String::from_utf8_lossy(&out.stderr));
    let total_ms = start.elapsed().as_millis() as u64;
    let _ = stop_tx.send(true);
    let ours = watcher.await??;
    set_label("done");
    let op: serde_json::Value = serde_json::from_slice(&out.stdout)?;

    let samples = samples.lock().map(|s| s.clone()).unwrap_or_default();
    let p99 = |l: &str| -> (f64, f64) {
        let mut v: Vec<f64> = samples.iter().filter(|(x, _)| x == l).map(|(_, p)| *p).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        if v.is_empty() {
            return (0.0, 0.0);
        }
        (v[v.len() / 2], v[v.len() - 1])
    };
    let ms = |w: Option<u64>| w.map(|m| format!("{:.1} s", m as f64 / 1000.0)).unwrap_or_else(|| "-".into());
    let figures = serde_json::json!({
        "moves": to.len(),
        "throttleBytesPerSec": rate,
        "peer": {"movedMs": peer.moved_ms, "throttlesGoneMs": peer.throttles_gone_ms, "steps": peer_steps, "verifyEverySecs": args.verify_every_secs},
        "unthrottled": {"movedMs": back.moved_ms},
        "fleet": {"movedMs": ours.moved_ms, "throttlesGoneMs": ours.throttles_gone_ms, "succeededMs": total_ms, "steps": 1, "history": op["status"]["history"]},
        "auditorP99Ms": {"idle": p99("idle"), "peerThrottled": p99("peer (throttled)"), "unthrottled": p99("unthrottled"), "fleetThrottled": p99("fleet (throttled)")},
    });
    if args.output == "json" {
        println!("{}", serde_json::to_string_pretty(&figures)?);
        return Ok(());
    }
    println!("{} partition moves off broker 4 at {} ({} bytes/s), about {} MiB per broker", to.len(), args.throttle, rate, on_broker >> 20);
    println!("| side | all moved | throttles gone | operator steps |");
    println!("| --- | ---: | ---: | --- |");
    println!("| kafka-reassign-partitions --throttle, --verify every {} s | {} | {} | {} (execute + {} verify) |", args.verify_every_secs, ms(peer.moved_ms), ms(peer.throttles_gone_ms), peer_steps, verify_runs);
    println!("| fleetctl decommission --throttle | {} | {} | 1 (retired the broker too: {:.1} s) |", ms(ours.moved_ms), ms(ours.throttles_gone_ms), total_ms as f64 / 1000.0);
    println!("| (moved back, unthrottled) | {} | - | - |", ms(back.moved_ms));
    println!("auditor p99, worst broker, median / max of 1 s samples:");
    for (name, l) in [("idle", "idle"), ("peer, throttled", "peer (throttled)"), ("unthrottled move", "unthrottled"), ("fleet, throttled", "fleet (throttled)")] {
        let (m, x) = p99(l);
        println!("  {name}: {m:.1} ms / {x:.1} ms");
    }
    Ok(())
}

/// Bytes of partition segments under `dir` (every host's disk).
fn walk(dir: &std::path::Path) -> Vec<u64> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "log") && p.parent().and_then(|q| q.file_name()).is_some_and(|n| TOPICS.iter().any(|t| n.to_string_lossy().starts_with(&format!("{t}-")))) {
                out.push(e.metadata().map(|m| m.len()).unwrap_or(0));
            }
        }
    }
    out
}
