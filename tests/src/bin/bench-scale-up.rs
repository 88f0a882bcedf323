//! `bench-scale-up`: adding partitions on new brokers, this project's scale-up side by side with
//! Kafka's own tool, in one run on one cluster.
//!
//! A 3-broker cluster (fleet manager, local hosts, racks zone-a/b/c) is declared with three groups
//! of N topics of 4 partitions and 2 copies. Then:
//! (a) `fleetctl scale-up --brokers 6 --class low` adds partitions to group `a` (4 -> 8, placed on
//!     the 3 new brokers) in one ZooKeeper multi; the commit time and the time from the commit
//!     until every new partition has a leader are the operation's own figures, and the leaders are
//!     also timed by this bench from ZooKeeper's partition states.
//! (b) what an operator would do to place them on the new brokers: `kafka-topics --alter
//!     --partitions 8 --replica-assignment ...` once per topic of group `b`;
//! (c) the fastest peer: one `kafka-topics --alter --topic 'c-.*' --partitions 8` (Kafka places
//!     the new partitions over every broker, and writes one topic after another).
//! Same cluster, same partition counts and copies on every side; (b) and (c) run after the new
//! brokers are up, so none of them waits for brokers.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use clap::Parser;
use fleet_common::KafkaPaths;
use fleet_tests::fleet_manager::{FleetManager, FleetManagerOptions};
use fleet_tests::kafka::{kafka_tool, local_cluster_yaml};
use fleet_tests::ZkEnsemble;
use zookeeper_client as zk;

#[derive(Parser)]
struct Args {
    /// Topics per group.
    #[arg(long, default_value_t = 200)]
    topics: usize,
    #[arg(long, short = 'o', default_value = "table")]
    output: String,
}

const CLUSTER: &str = "bench";

fn specs(topics: usize) -> String {
    let mut text = local_cluster_yaml(CLUSTER, 3, &[]);
    for group in ["a", "b", "c"] {
        // Group a is the low class (selected with --class low); both classes keep 2 copies.
        let class = if group == "a" { "low" } else { "medium" };
        for i in 0..topics {
            text.push_str(&format!(
                "---\napiVersion: kafka-fleet.io/v1\nkind: Topic\nmetadata: {{ name: {group}-{i:03} }}\nspec: {{ cluster: {CLUSTER}, partitions: 4, priorityClass: {class} }}\n"
            ));
        }
    }
    text
}

/// Waits until partitions 4..8 of every topic of `group` have a leader in their ISR; returns when
/// the last one got it (its state znode's creation time on the ZooKeeper server, ms), so every
/// side is timed the same way whatever the polling.
async fn wait_leaders(client: &zk::Client, kafka: &KafkaPaths, group: &str, topics: usize, deadline: Duration) -> anyhow::Result<i64> {
    let started = Instant::now();
    let keys: Vec<(String, i32)> = (0..topics).flat_map(|i| (4..8).map(move |p| (format!("{group}-{i:03}"), p))).collect();
    loop {
        let reads = keys.iter().map(|(t, p)| async move {
            match client.get_data(&kafka.partition_state(t, *p)).await {
                Ok((data, stat)) => serde_json::from_slice::<fleet_common::znodes::PartitionState>(&data)
                    .ok()
                    .filter(|s| s.leader >= 0 && s.isr.contains(&s.leader))
                    .map(|_| stat.ctime),
                Err(_) => None,
            }
        });
        let led: Vec<i64> = futures::future::join_all(reads).await.into_iter().flatten().collect();
        if led.len() == keys.len() {
            return Ok(led.into_iter().max().unwrap_or(0));
        }
        anyhow::ensure!(started.elapsed() < deadline, "group {group}: {} of {} new partitions led after {deadline:?}", led.len(), keys.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn now_ms() -> i64 {
    fleet_manager::store::now_ms()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let zk_ens = ZkEnsemble::start(1).await;
    let fm = FleetManager::start(FleetManagerOptions::new(&zk_ens.connect_string())).await;
    let client = zk_ens.client().await;
    let kafka = fleet_common::FleetPaths::new(&fm.options.fleet_root).cluster(CLUSTER).kafka();
    let spec_path = fm.run.path.join("bench.yaml");
    std::fs::write(&spec_path, specs(args.topics))?;
    eprintln!("declaring a 3-broker cluster with 3 x {} topics of 4 partitions", args.topics);
    let out = fm.fleetctl(&["apply", "-f", &spec_path.display().to_string(), "--wait", "--timeout", "900s"]).await;
    anyhow::ensure!(out.status.success(), "apply: {}", String::from_utf8_lossy(&out.stderr));

    // (a) this project's scale-up.
    eprintln!("(a) fleetctl scale-up --brokers 6 --class low");
    let out = fm.fleetctl(&["scale-up", CLUSTER, "--brokers", "6", "--class", "low", "--wait", "--timeout", "600s", "-o", "json"]).await;
    anyhow::ensure!(out.status.success(), "scale-up: {}", String::from_utf8_lossy(&out.stderr));
    let op: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let a_commit = op["status"]["commitMillis"].as_u64().unwrap_or(0);
    let a_leaders = op["status"]["leadersMillis"].as_u64().unwrap_or(0);
    let a_bytes = op["status"]["plan"]["commitBytes"].as_u64().unwrap_or(0);
    let a_partitions = op["status"]["plan"]["topics"].as_array().map(|t| t.len() * 4).unwrap_or(0);
    let mut a_on_new = true;
    for t in op["status"]["plan"]["topics"].as_array().into_iter().flatten() {
        for r in t["newPartitions"].as_object().into_iter().flat_map(|m| m.values()) {
            a_on_new &= r.as_array().into_iter().flatten().all(|b| b.as_i64().is_some_and(|b| b >= 4));
        }
    }
    let bootstrap = fm.bootstrap_servers();

    // (b) kafka-topics --alter once per topic, with the new partitions placed on brokers 4-6.
    eprintln!("(b) kafka-topics --alter --replica-assignment, once per topic");
    let started = Instant::now();
    let b_start = now_ms();
    for i in 0..args.topics {
        let topic = format!("b-{i:03}");
        let (data, _) = client.get_data(&kafka.topic(&topic)).await?;
        let existing: fleet_common::znodes::TopicAssignment = serde_json::from_slice(&data)?;
        let mut assignment: BTreeMap<u32, String> = existing
            .partitions
            .iter()
            .filter_map(|(p, r)| Some((p.parse::<u32>().ok()?, r.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(":"))))
            .collect();
        for (k, p) in (4..8u32).enumerate() {
            let k = (i * 4 + k) as i32;
            assignment.insert(p, format!("{}:{}", 4 + k % 3, 4 + (k + 1) % 3));
        }
        let list = assignment.values().cloned().collect::<Vec<_>>().join(",");
        let out = kafka_tool(
            "org.apache.kafka.tools.TopicCommand",
            &["--bootstrap-server", &bootstrap, "--alter", "--topic", &topic, "--partitions", "8", "--replica-assignment", &list],
        )
        .await;
        anyhow::ensure!(out.status.success(), "kafka-topics --alter {topic}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let b_commit = started.elapsed();
    let b_last = wait_leaders(&client, &kafka, "b", args.topics, Duration::from_secs(600)).await?;
    let b_leaders = Duration::from_millis((b_last - b_start).max(0) as u64);

    // (c) one kafka-topics --alter over every topic of group c.
    eprintln!("(c) kafka-topics --alter --topic 'c-.*' --partitions 8");
    let started = Instant::now();
    let c_start = now_ms();
    let out = kafka_tool("org.apache.kafka.tools.TopicCommand", &["--bootstrap-server", &bootstrap, "--alter", "--topic", "c-.*", "--partitions", "8"]).await;
    anyhow::ensure!(out.status.success(), "kafka-topics --alter c-.*: {}", String::from_utf8_lossy(&out.stderr));
    let c_commit = started.elapsed();
    let c_last = wait_leaders(&client, &kafka, "c", args.topics, Duration::from_secs(600)).await?;
    let c_leaders = Duration::from_millis((c_last - c_start).max(0) as u64);
    let mut c_on_new = 0usize;
    for i in 0..args.topics {
        let (data, _) = client.get_data(&kafka.topic(&format!("c-{i:03}"))).await?;
        let t: fleet_common::znodes::TopicAssignment = serde_json::from_slice(&data)?;
        c_on_new += (4..8).filter(|p| t.partitions.get(&p.to_string()).is_some_and(|r| r.iter().all(|b| *b >= 4))).count();
    }

    let a_total = a_commit + a_leaders;
    let figures = serde_json::json!({
        "topics": args.topics,
        "newPartitionsPerGroup": args.topics * 4,
        "a": {"commitMs": a_commit, "leadersMs": a_total, "commitBytes": a_bytes, "partitions": a_partitions, "allOnNewBrokers": a_on_new, "atomic": true},
        "b": {"commitMs": b_commit.as_millis() as u64, "leadersMs": b_leaders.as_millis() as u64, "allOnNewBrokers": true, "atomic": false},
        "c": {"commitMs": c_commit.as_millis() as u64, "leadersMs": c_leaders.as_millis() as u64, "onNewBrokers": c_on_new, "atomic": false},
    });
    if args.output == "json" {
        println!("{}", serde_json::to_string_pretty(&figures)?);
        return Ok(());
    }
    println!("{} topics per group, 4 -> 8 partitions each ({} new partitions), 3 brokers added to 3", args.topics, args.topics * 4);
    println!("| side | write (commit) | until every new partition has a leader | on the new brokers | atomic |");
    println!("| --- | ---: | ---: | --- | --- |");
    println!("| (a) fleetctl scale-up | {a_commit} ms (one multi, {a_bytes} bytes) | {a_total} ms | all | yes |");
    println!("| (b) kafka-topics --alter --replica-assignment x{} | {} ms | {} ms | all | no |", args.topics, b_commit.as_millis(), b_leaders.as_millis());
    println!("| (c) kafka-topics --alter --topic 'c-.*' | {} ms | {} ms | {c_on_new} of {} | no |", c_commit.as_millis(), c_leaders.as_millis(), args.topics * 4);
    let ratio = |x: u128| if a_total == 0 { f64::INFINITY } else { x as f64 / a_total as f64 };
    println!("to all leaders: (b) / (a) = {:.0}x, (c) / (a) = {:.1}x", ratio(b_leaders.as_millis()), ratio(c_leaders.as_millis()));
    Ok(())
}
