//! Failover figures, in one run on this machine (local 3-broker clusters, one ZooKeeper, the
//! fleet manager on SQLite), under a steady acks=all load from three client-library producers:
//! (a) `fleetctl failover --to` a standby that exists and is healthy, (b) `fleetctl failover
//! --build` (a fresh 3-broker clone), (c) two of the route's cluster's three brokers killed and
//! its failover policy (`underMinIsrPartitions > 0 for 10s`) firing a fresh build. For each: from the command (or the kill) to every producer on the new
//! cluster (seen by the producers themselves, and by the operation from their reports), each
//! phase's time, and the producers' acknowledgement latency and `send` call time, p99, before
//! vs during the switch. Anchor: Netflix's automated failover, under 5 minutes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use clap::Parser;
use fleet_client::{ClientConfig, FleetProducer, Record};
use fleet_tests::fleet_manager::{FleetManager, FleetManagerOptions, CLIENT_TOKEN};
use fleet_tests::kafka::local_cluster_yaml;
use fleet_tests::ZkEnsemble;
use hdrhistogram::Histogram;

#[derive(Parser)]
#[command(name = "bench-failover")]
struct Args {
    #[arg(long, default_value_t = 3)]
    producers: usize,
    /// Records per second per producer.
    #[arg(long, default_value_t = 200)]
    rate: u64,
    /// Seconds of load before each failover (the "before" window).
    #[arg(long, default_value_t = 10)]
    warm_secs: u64,
}

const TOPIC: &str = "bench-events";
const ROUTE: &str = "bench";

/// One record: when it was handed to `send_tracked`, how long the call took, how long until acked.
#[derive(Clone, Copy)]
struct Sample {
    at_ms: i64,
    send_ns: u64,
    ack_us: Option<u64>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

async fn fleetctl(fm: &FleetManager, args: &[&str]) -> Result<String> {
    let out = fm.fleetctl(args).await;
    ensure!(out.status.success(), "fleetctl {}: {}{}", args.join(" "), String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn p99(samples: &[Sample], from: i64, to: i64, f: impl Fn(&Sample) -> Option<u64>) -> (u64, usize) {
    let mut h = Histogram::<u64>::new(3).expect("histogram");
    for s in samples.iter().filter(|s| s.at_ms >= from && s.at_ms < to) {
        if let Some(v) = f(s) {
            let _ = h.record(v.max(1));
        }
    }
    (h.value_at_quantile(0.99), h.len() as usize)
}

struct Figures {
    scenario: &'static str,
    /// Automatic: from the kill to the operation's creation.
    detected_ms: Option<i64>,
    all_moved_ms: i64,
    op_saw_ms: i64,
    phases: Vec<(String, i64)>,
    ack_before: (u64, usize),
    ack_during: (u64, usize),
    send_before: (u64, usize),
    send_during: (u64, usize),
}

/// How a failover starts: a command, or two of the route's cluster's three brokers killed (its
/// policy fires).
enum Start<'a> {
    Command(&'a [&'a str]),
    KillTwoBrokers,
}

async fn failover(fm: &FleetManager, scenario: &'static str, start: Start<'_>, producers: &[Arc<FleetProducer>], samples: &Mutex<Vec<Sample>>, warm: Duration) -> Result<Figures> {
    tokio::time::sleep(warm).await;
    let from: Vec<String> = producers.iter().map(|p| p.binding().map(|b| b.cluster).unwrap_or_default()).collect();
    let started = now_ms();
    let watch = Instant::now();
    let (id, detected_ms) = match start {
        Start::Command(args) => {
            let mut cmd: Vec<&str> = args.to_vec();
            cmd.extend(["--deadline", "60s", "-o", "json"]);
            let op: serde_json::Value = serde_json::from_str(&fleetctl(fm, &cmd).await?)?;
            (op["id"].as_str().context("operation id")?.to_string(), None)
        }
        Start::KillTwoBrokers => {
            let (_, before) = fm.get("/v1/operations").await;
            let known = before.as_array().map_or(0, Vec::len);
            let hosts: Vec<String> = fm.local_hosts().iter().filter(|h| h.cluster.as_deref() == Some(from[0].as_str()) && h.state == fleet_common::local::LocalInstanceState::Running).map(|h| h.instance_id.clone()).collect();
            for h in hosts.iter().take(2) {
                fm.kill_host(h);
            }
            let op = loop {
                ensure!(watch.elapsed() < Duration::from_secs(180), "no automatic failover within 3 minutes");
                let (_, ops) = fm.get("/v1/operations").await;
                let ops = ops.as_array().cloned().unwrap_or_default();
                if ops.len() > known {
                    break ops[0].clone();
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            let created = op["createdMs"].as_i64().unwrap_or(started);
            (op["id"].as_str().context("operation id")?.to_string(), Some(created - started))
        }
    };
    // Every producer's switch, seen by the producer (its binding's cluster changes).
    let mut moved: Vec<Option<i64>> = vec![None; producers.len()];
    while moved.iter().any(Option::is_none) {
        ensure!(watch.elapsed() < Duration::from_secs(600), "producers did not move within 10 minutes");
        for (i, p) in producers.iter().enumerate() {
            if moved[i].is_none() && p.binding().is_some_and(|b| b.cluster != from[i]) {
                moved[i] = Some(now_ms());
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let all_moved = moved.iter().flatten().max().copied().unwrap_or(started);
    let done = loop {
        let (_, op) = fm.get(&format!("/v1/operations/{id}")).await;
        match op["status"]["phase"].as_str() {
            Some("Succeeded") => break op,
            Some("Failed" | "Cancelled") => anyhow::bail!("{id} ended: {op}"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    let history: Vec<(String, i64)> =
        done["status"]["history"].as_array().into_iter().flatten().map(|h| (h["phase"].as_str().unwrap_or("").to_string(), h["atMs"].as_i64().unwrap_or(0))).collect();
    let phases: Vec<(String, i64)> = history.windows(2).map(|w| (w[0].0.clone(), w[1].1 - w[0].1)).collect();
    let op_saw = history.iter().find(|(p, _)| p == "DrainingConsumers").map_or(0, |(_, t)| *t);
    let switched = done["status"]["switchedAtMs"].as_i64().unwrap_or(started);
    // Let the last records of the window be acknowledged before reading it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let samples = samples.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone();
    let before = (started - warm.as_millis() as i64, started);
    let during = (switched - 500, all_moved + 2_000);
    Ok(Figures {
        scenario,
        detected_ms,
        all_moved_ms: all_moved - started,
        op_saw_ms: op_saw - started,
        phases,
        ack_before: p99(&samples, before.0, before.1, |s| s.ack_us),
        ack_during: p99(&samples, during.0, during.1, |s| s.ack_us),
        send_before: p99(&samples, before.0, before.1, |s| Some(s.send_ns)),
        send_during: p99(&samples, during.0, during.1, |s| Some(s.send_ns)),
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    let zk = ZkEnsemble::start(1).await;
    let mut options = FleetManagerOptions::new(&zk.connect_string());
    // blue, the standby green, a fresh build, and the automatic one's build.
    options.local_max_hosts = 12;
    options.extra_args = vec!["--trigger-interval-secs".into(), "2".into()];
    let fm = FleetManager::start(options).await;
    let topic = |cluster: &str| {
        format!("apiVersion: kafka-fleet.io/v1\nkind: Topic\nmetadata: {{ name: {TOPIC} }}\nspec: {{ cluster: {cluster}, partitions: 6, replicationFactor: 3, priorityClass: high }}\n")
    };
    let docs = format!(
        "{}---\n{}---\n{}---\napiVersion: kafka-fleet.io/v1\nkind: Route\nmetadata: {{ name: {ROUTE} }}\nspec: {{ cluster: blue }}\n",
        local_cluster_yaml("blue", 3, &[("zookeeper.session.timeout.ms", "6000"), ("replica.lag.time.max.ms", "5000")]),
        topic("blue"),
        local_cluster_yaml("green", 3, &[])
    );
    let path = fm.run.path.join("bench.yaml");
    std::fs::write(&path, docs)?;
    eprintln!("building blue and the standby green (3 brokers each)");
    fleetctl(&fm, &["apply", "-f", &path.display().to_string(), "--wait", "--timeout", "300s"]).await?;

    let producers: Vec<Arc<FleetProducer>> = (0..args.producers)
        .map(|i| {
            let mut c = ClientConfig::new(ROUTE, &[fm.url().as_str()]);
            c.token = Some(CLIENT_TOKEN.into());
            c.cache_path = Some(fm.run.path.join(format!("p{i}.json")));
            c.report_interval = Duration::from_millis(500);
            c.kafka.insert("linger.ms".into(), "5".into());
            FleetProducer::new(c).map(Arc::new)
        })
        .collect::<Result<_, _>>()?;
    let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (producers, samples, stop, rate) = (producers.clone(), samples.clone(), stop.clone(), args.rate);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut seq = 0u64;
            while !stop.load(Ordering::SeqCst) {
                tick.tick().await;
                for p in &producers {
                    let at_ms = now_ms();
                    let t = Instant::now();
                    let sent = p.send_tracked(Record::new(TOPIC, format!("r-{seq}").as_bytes()));
                    let send_ns = t.elapsed().as_nanos() as u64;
                    seq += 1;
                    let index = {
                        let Ok(mut s) = samples.lock() else { return };
                        s.push(Sample { at_ms, send_ns, ack_us: None });
                        s.len() - 1
                    };
                    if let Ok(d) = sent {
                        let samples = samples.clone();
                        tokio::spawn(async move {
                            if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(120), d).await {
                                if let Ok(mut s) = samples.lock() {
                                    s[index].ack_us = Some(t.elapsed().as_micros() as u64);
                                }
                            }
                        });
                    }
                }
            }
        })
    };
    let warm = Duration::from_secs(args.warm_secs);
    // Producers' first seconds (metadata, idempotent producer IDs) are not "before" anything.
    eprintln!("warming up the load for 15 s");
    tokio::time::sleep(Duration::from_secs(15)).await;
    let mut figures = Vec::new();
    eprintln!("(a) failover to the healthy standby green");
    figures.push(failover(&fm, "(a) standby", Start::Command(&["failover", ROUTE, "--to", "green"]), &producers, &samples, warm).await?);
    eprintln!("back to blue");
    fleetctl(&fm, &["fallback", ROUTE, "--wait", "--deadline", "30s"]).await?;
    eprintln!("(b) failover with a fresh 3-broker build");
    figures.push(failover(&fm, "(b) fresh build", Start::Command(&["failover", ROUTE, "--build"]), &producers, &samples, warm).await?);
    eprintln!("(c) two of blue-1's three brokers killed: the route's policy fails it over (a fresh build)");
    let policy = format!(
        "apiVersion: kafka-fleet.io/v1\nkind: Route\nmetadata: {{ name: {ROUTE} }}\nspec:\n  cluster: blue-1\n  failover:\n    conditions:\n      - {{ signal: underMinIsrPartitions, above: 0, for: 10s }}\n"
    );
    let path = fm.run.path.join("policy.yaml");
    std::fs::write(&path, policy)?;
    fleetctl(&fm, &["apply", "-f", &path.display().to_string()]).await?;
    figures.push(failover(&fm, "(c) automatic", Start::KillTwoBrokers, &producers, &samples, warm).await?);
    stop.store(true, Ordering::SeqCst);
    load.await?;
    let failed: u64 = producers.iter().map(|p| p.counters().failed).sum();
    let dropped: u64 = producers.iter().map(|p| p.counters().dropped).sum();

    println!("failover, {} producers x {} records/s (acks=all, 100-byte-ish records), local 3-broker clusters, 2 cores", args.producers, args.rate);
    println!("{:<16} {:>10} {:>22} {:>22}  phases (s)", "scenario", "detected", "all producers moved", "operation saw them");
    for f in &figures {
        let phases: Vec<String> = f.phases.iter().map(|(p, ms)| format!("{p} {:.1}", *ms as f64 / 1000.0)).collect();
        let detected = f.detected_ms.map_or("-".to_string(), |d| format!("{:.1} s", d as f64 / 1000.0));
        println!("{:<16} {detected:>10} {:>20.1} s {:>20.1} s  {}", f.scenario, f.all_moved_ms as f64 / 1000.0, f.op_saw_ms as f64 / 1000.0, phases.join(", "));
    }
    println!("{:<16} {:>24} {:>24} {:>18} {:>18}", "scenario", "ack p99 before", "ack p99 during switch", "send() p99 before", "send() p99 during");
    for f in &figures {
        println!(
            "{:<16} {:>16.1} ms ({:>5}) {:>16.1} ms ({:>5}) {:>12.1} µs {:>15.1} µs",
            f.scenario,
            f.ack_before.0 as f64 / 1000.0,
            f.ack_before.1,
            f.ack_during.0 as f64 / 1000.0,
            f.ack_during.1,
            f.send_before.0 as f64 / 1000.0,
            f.send_during.0 as f64 / 1000.0
        );
    }
    println!("failed {failed}, dropped {dropped}; anchor: Netflix's automated failover, under 5 minutes; targets here (a) < 10 s, (b) < 60 s");
    for p in producers {
        if let Ok(p) = Arc::try_unwrap(p) {
            p.close(Duration::from_secs(5));
        }
    }
    Ok(())
}
