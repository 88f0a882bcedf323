//! The client library's figures, in one run on this machine:
//! 1. `send` latency with every broker and the fleet manager down and the buffer full (p50,
//!    p99.9, max): what a service pays per record during an outage.
//! 2. Producer throughput against one local broker, side by side with the same settings
//!    (100-byte unkeyed records, acks=all with idempotence, linger.ms, batch.size, lz4, the same
//!    queue bounds): `FleetProducer` (starting from its binding cache, the fleet manager
//!    unreachable) against rdkafka's `ThreadedProducer` with a delivery callback that counts
//!    (the work any producer that wants to know what was delivered does), and Kafka's
//!    `kafka-producer-perf-test` for reference. Rounds alternate; medians are printed. Build it
//!    `--release`: both producers' code is then compiled at the same level.
//! 3. Acknowledgement latency across a switch: a real fleet manager with two 1-broker clusters
//!    and a route, a `FleetProducer` sending tracked records at a steady rate (linger.ms=5, as
//!    the auditor), and `fleetctl failover --to` the other cluster: p50/p99/max of the records
//!    sent in the second before and the three seconds after the producer saw the switch.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use clap::Parser;
use fleet_api::client::{RouteBinding, RoutePhase};
use fleet_client::{BindingCache, ClientConfig, FleetProducer, FullBuffer, Record, SendError};
use fleet_tests::fleet_manager::{FleetManager, FleetManagerOptions, CLIENT_TOKEN};
use fleet_tests::kafka::local_cluster_yaml;
use fleet_tests::{LocalCluster, ZkEnsemble};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

#[derive(Parser)]
#[command(name = "bench-client")]
struct Args {
    #[arg(long, default_value_t = 1_000_000)]
    records: usize,
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Uncounted rounds of each producer first.
    #[arg(long, default_value_t = 3)]
    warmup_rounds: usize,
    #[arg(long, default_value_t = 2_000_000)]
    latency_sends: usize,
    #[arg(long, default_value_t = 10)]
    linger_ms: u64,
    #[arg(long, default_value_t = 262_144)]
    batch_size: usize,
    /// Records per second during the switch measurement.
    #[arg(long, default_value_t = 2000)]
    switch_rate: u64,
    /// Skip the switch measurement (it starts a fleet manager and two clusters).
    #[arg(long)]
    no_switch: bool,
    /// For profiling one side: run only this producer's rounds (`fleet` or `raw`), printing
    /// its figures; no comparison.
    #[arg(long)]
    only: Option<String>,
}

const TOPIC: &str = "bench";

/// How often a sender found the buffer full and waited (printed per round).
static FULL_WAITS: AtomicU64 = AtomicU64::new(0);

/// CPU seconds this process (every thread, live or ended) has used: the producers' side of the
/// machine, without the broker's.
fn process_cpu_secs() -> f64 {
    // utime and stime, fields 14 and 15, in USER_HZ (100 a second on Linux); after the command
    // name, which may hold spaces, so counted from its closing parenthesis.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn binding(servers: &str) -> RouteBinding {
    RouteBinding {
        route: "bench".into(),
        cluster: "bench".into(),
        bootstrap_servers: servers.split(',').map(str::to_string).collect(),
        generation: 1,
        phase: RoutePhase::Steady,
        topics: Default::default(),
        next: None,
        previous: None,
        left: Vec::new(),
    }
}

fn config(cache: &std::path::Path, args: &Args) -> ClientConfig {
    // Port 9 (discard): nothing answers there; the producer runs from its cache.
    let mut c = ClientConfig::new("bench", &["http://127.0.0.1:9"]);
    c.cache_path = Some(cache.to_path_buf());
    c.acks = Some("all".into());
    c.kafka.insert("linger.ms".into(), args.linger_ms.to_string());
    c.kafka.insert("batch.size".into(), args.batch_size.to_string());
    c.kafka.insert("sticky.partitioning.linger.ms".into(), args.linger_ms.to_string());
    c
}

fn send_latency(args: &Args, dir: &std::path::Path) -> Result<()> {
    let cache = dir.join("dead.json");
    // A cluster that does not exist: port 1 refuses connections.
    BindingCache::new(&cache).store(&binding("127.0.0.1:1"))?;
    let mut c = config(&cache, args);
    c.buffer_records = 10_000;
    let producer = FleetProducer::new(c).map_err(anyhow::Error::msg)?;
    let mut accepted = hdrhistogram::Histogram::<u64>::new(3)?;
    let mut full = hdrhistogram::Histogram::<u64>::new(3)?;
    let payload = vec![b'x'; 100];
    for _ in 0..args.latency_sends {
        let t = Instant::now();
        let r = producer.send(Record::new(TOPIC, &payload));
        let ns = t.elapsed().as_nanos() as u64;
        match r {
            Ok(()) => accepted.record(ns)?,
            Err(SendError::Full { .. }) => full.record(ns)?,
            Err(e) => anyhow::bail!("{e}"),
        }
    }
    let counters = producer.counters();
    println!("send() with every broker and the fleet manager down, buffer 10000 records, {} calls:", args.latency_sends);
    for (what, h) in [("accepted (buffer filling)", &accepted), ("refused (buffer full, dropped)", &full)] {
        println!(
            "  {what:<32} n={:<9} p50 {:>6.3} us  p99.9 {:>7.3} us  max {:>8.2} us",
            h.len(),
            h.value_at_quantile(0.5) as f64 / 1000.0,
            h.value_at_quantile(0.999) as f64 / 1000.0,
            h.max() as f64 / 1000.0
        );
    }
    println!("  counters: sent {} dropped {} buffered {}", counters.sent, counters.dropped, counters.buffered);
    ensure!(full.max() < 50_000_000, "a refused send took {} us", full.max() / 1000);
    let _ = producer.close(Duration::ZERO);
    Ok(())
}

/// A round's figures: records a second, and the producer side's CPU per record (ns, every
/// thread of this process) while the clock ran.
struct Round {
    rate: f64,
    cpu_ns: f64,
}

fn fleet_round(args: &Args, cache: &std::path::Path) -> Result<Round> {
    let mut c = config(cache, args);
    // The same queue bounds as the raw producer below.
    c.buffer_records = 500_000;
    c.buffer_bytes = 1024 * 1024 * 1024;
    c.full_buffer = FullBuffer::Return;
    let producer = FleetProducer::new(c).map_err(anyhow::Error::msg)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while producer.binding().is_none() {
        ensure!(Instant::now() < deadline, "no binding from the cache");
        std::thread::sleep(Duration::from_millis(5));
    }
    let payload = [b'x'; 100];
    // Warmed as the raw producer is: connected, metadata and producer ID in hand, before the clock.
    producer.send(Record::new(TOPIC, &payload)).map_err(|e| anyhow::anyhow!("{e}"))?;
    while producer.counters().acknowledged < 1 {
        ensure!(Instant::now() < deadline + Duration::from_secs(20), "warm-up record not acknowledged: {:?}", producer.counters());
        std::thread::sleep(Duration::from_millis(1));
    }
    // Its follower started too: HTTP client built (TLS roots read) and the fleet manager tried,
    // one-off start-up work that must not land inside the clock.
    while producer.last_error().is_none() {
        ensure!(Instant::now() < deadline + Duration::from_secs(20), "the follower never tried the fleet manager");
        std::thread::sleep(Duration::from_millis(1));
    }
    let (start, cpu) = (Instant::now(), process_cpu_secs());
    for _ in 0..args.records {
        loop {
            match producer.send(Record::new(TOPIC, &payload)) {
                Ok(()) => break,
                Err(SendError::Full { .. }) => {
                    FULL_WAITS.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_micros(200))
                }
                Err(e) => anyhow::bail!("{e}"),
            }
        }
    }
    while producer.counters().acknowledged + producer.counters().failed < args.records as u64 + 1 {
        ensure!(start.elapsed() < Duration::from_secs(300), "not acknowledged: {:?}", producer.counters());
        std::thread::sleep(Duration::from_millis(2));
    }
    let (secs, cpu) = (start.elapsed().as_secs_f64(), process_cpu_secs() - cpu);
    ensure!(producer.counters().failed == 0, "failures: {:?}", producer.counters());
    let _ = producer.close(Duration::from_secs(5));
    Ok(Round { rate: args.records as f64 / secs, cpu_ns: cpu * 1e9 / args.records as f64 })
}

/// The baseline: librdkafka's threaded producer with a delivery callback that counts.
struct Counting {
    delivered: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
}

impl ClientContext for Counting {}

impl ProducerContext for Counting {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.delivered.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

fn raw_round(args: &Args, servers: &str) -> Result<Round> {
    let delivered = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let producer: ThreadedProducer<Counting> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", servers)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", args.linger_ms.to_string())
        .set("batch.size", args.batch_size.to_string())
        .set("sticky.partitioning.linger.ms", args.linger_ms.to_string())
        .set("compression.type", "lz4")
        .set("partitioner", "murmur2_random")
        .set("queue.buffering.max.messages", "500000")
        .set("queue.buffering.max.kbytes", "1048576")
        .create_with_context(Counting { delivered: delivered.clone(), failed: failed.clone() })?;
    let payload = [b'x'; 100];
    // Warmed before the clock, as the FleetProducer is: one record sent and delivered first.
    producer.send(BaseRecord::<(), [u8]>::to(TOPIC).payload(&payload[..])).map_err(|(e, _)| e)?;
    let warm_deadline = Instant::now() + Duration::from_secs(30);
    while delivered.load(Ordering::Relaxed) < 1 {
        ensure!(Instant::now() < warm_deadline && failed.load(Ordering::Relaxed) == 0, "warm-up record not delivered");
        std::thread::sleep(Duration::from_millis(1));
    }
    let (start, cpu) = (Instant::now(), process_cpu_secs());
    for _ in 0..args.records {
        let mut record = BaseRecord::<(), [u8]>::to(TOPIC).payload(&payload[..]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    record = r;
                    FULL_WAITS.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        }
    }
    while delivered.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < args.records as u64 + 1 {
        ensure!(start.elapsed() < Duration::from_secs(300), "not delivered");
        std::thread::sleep(Duration::from_millis(2));
    }
    let (secs, cpu) = (start.elapsed().as_secs_f64(), process_cpu_secs() - cpu);
    ensure!(failed.load(Ordering::Relaxed) == 0, "failures");
    producer.flush(Duration::from_secs(5))?;
    Ok(Round { rate: args.records as f64 / secs, cpu_ns: cpu * 1e9 / args.records as f64 })
}

fn java_round(args: &Args, servers: &str) -> Result<f64> {
    let (linger, batch) = (format!("linger.ms={}", args.linger_ms), format!("batch.size={}", args.batch_size));
    let props = ["acks=all", "enable.idempotence=true", &linger, &batch, "compression.type=lz4"];
    fleet_tests::kafka::producer_perf_test(servers, TOPIC, args.records as u64, &props).map_err(anyhow::Error::msg)
}

fn quantiles(h: &hdrhistogram::Histogram<u64>) -> String {
    if h.is_empty() {
        return "no records".into();
    }
    format!(
        "n={:<6} p50 {:>6.1} ms  p99 {:>6.1} ms  max {:>7.1} ms",
        h.len(),
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0
    )
}

/// Acknowledgement latency across a `failover --to` between two 1-broker clusters.
async fn switch_latency(args: &Args, zk: &ZkEnsemble) -> Result<()> {
    let fm = FleetManager::start(FleetManagerOptions::new(&zk.connect_string())).await;
    let mut docs = String::new();
    for c in ["blue", "green"] {
        docs.push_str(&local_cluster_yaml(c, 1, &[]));
        docs.push_str(&format!("---\napiVersion: kafka-fleet.io/v1\nkind: Topic\nmetadata: {{ name: {TOPIC} }}\nspec: {{ cluster: {c}, partitions: 6, replicationFactor: 1 }}\n---\n"));
    }
    docs.push_str("apiVersion: kafka-fleet.io/v1\nkind: Route\nmetadata: { name: bench }\nspec: { cluster: blue }\n");
    let path = fm.run.path.join("switch.yaml");
    std::fs::write(&path, docs)?;
    let out = fm.fleetctl(&["apply", "-f", &path.display().to_string(), "--wait", "--timeout", "300s"]).await;
    ensure!(out.status.success(), "apply: {}", fleet_tests::output_text(&out));
    let mut c = ClientConfig::new("bench", &[&fm.url()]);
    c.token = Some(CLIENT_TOKEN.into());
    c.acks = Some("all".into());
    c.kafka.insert("linger.ms".into(), "5".into());
    c.report_interval = Duration::from_millis(500);
    let producer = Arc::new(FleetProducer::new(c).map_err(anyhow::Error::msg)?);
    let deadline = Instant::now() + Duration::from_secs(60);
    while producer.binding().is_none() {
        ensure!(Instant::now() < deadline, "no binding");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // (sent at, acknowledgement latency) of every record.
    let samples: Arc<Mutex<Vec<(Instant, Option<Duration>)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (p, s, st, rate) = (producer.clone(), samples.clone(), stop.clone(), args.switch_rate.max(1));
    let load = tokio::spawn(async move {
        let every = Duration::from_micros(1_000_000 / rate);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut seq = 0u64;
        while !st.load(Ordering::Relaxed) {
            tick.tick().await;
            let payload = format!("switch-{seq}");
            seq += 1;
            let sent = Instant::now();
            if let Ok(d) = p.send_tracked(Record::new(TOPIC, payload.as_bytes())) {
                let s = s.clone();
                tokio::spawn(async move {
                    let acked = d.await.ok().map(|_| sent.elapsed());
                    s.lock().unwrap_or_else(|p| p.into_inner()).push((sent, acked));
                });
            }
        }
    });
    tokio::time::sleep(Duration::from_secs(5)).await;
    let out = fm.fleetctl(&["failover", "bench", "--to", "green", "--deadline", "30s", "-o", "json"]).await;
    ensure!(out.status.success(), "failover: {}", fleet_tests::output_text(&out));
    let deadline = Instant::now() + Duration::from_secs(120);
    let switched = loop {
        if producer.binding().is_some_and(|b| b.cluster == "green") {
            break Instant::now();
        }
        ensure!(Instant::now() < deadline, "the producer did not switch");
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.store(true, Ordering::Relaxed);
    load.await?;
    producer.flush(Duration::from_secs(30)).map_err(anyhow::Error::msg).context("flush")?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let samples = samples.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut before = hdrhistogram::Histogram::<u64>::new(3)?;
    let mut during = hdrhistogram::Histogram::<u64>::new(3)?;
    let mut unacked = 0;
    for (sent, acked) in &samples {
        let Some(acked) = acked else {
            unacked += 1;
            continue;
        };
        let us = acked.as_micros() as u64;
        if *sent + Duration::from_secs(1) < switched && *sent + Duration::from_secs(4) >= switched {
            before.record(us.max(1))?;
        } else if *sent + Duration::from_secs(1) >= switched && *sent < switched + Duration::from_secs(3) {
            during.record(us.max(1))?;
        }
    }
    println!("acknowledgement latency across `fleetctl failover --to` (two 1-broker clusters, {} records/s, acks=all, linger.ms=5):", args.switch_rate);
    println!("  {:<40} {}", "steady (3 s before the switch)", quantiles(&before));
    println!("  {:<40} {}", "switch (1 s before to 3 s after)", quantiles(&during));
    println!("  records not acknowledged: {unacked}; counters {:?}", producer.counters());
    ensure!(unacked == 0, "{unacked} records not acknowledged across the switch");
    fm.stop_local_hosts();
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(args.rounds > 0 && args.records > 0, "bad sizes");
    let dir = tempfile::tempdir()?;
    send_latency(&args, dir.path())?;

    let zk = ZkEnsemble::start(1).await;
    {
        let cluster = LocalCluster::bench_broker(&zk).await;
        cluster.create_topic(TOPIC, &["1", "1", "1", "1", "1", "1"]).await;
        let servers = cluster.bootstrap_servers();
        let cache = dir.path().join("bench.json");
        BindingCache::new(&cache).store(&binding(&servers))?;

        if let Some(only) = &args.only {
            for round in 0..args.rounds {
                let r = match only.as_str() {
                    "fleet" => tokio::task::block_in_place(|| fleet_round(&args, &cache))?,
                    "raw" => tokio::task::block_in_place(|| raw_round(&args, &servers))?,
                    other => anyhow::bail!("--only {other}: use fleet or raw"),
                };
                println!("{only} round {}: {:.0} records/s, producer-side CPU {:.0} ns/record", round + 1, r.rate, r.cpu_ns);
            }
            return Ok(());
        }
        // Rounds of each first, not counted: the broker's JIT (its compiler threads take a core
        // for the first rounds) and page cache warm up on them, not on whichever producer
        // happens to go first.
        for _ in 0..args.warmup_rounds {
            let warm_fleet = tokio::task::block_in_place(|| fleet_round(&args, &cache))?.rate;
            let warm_raw = tokio::task::block_in_place(|| raw_round(&args, &servers))?.rate;
            eprintln!("warm-up (not counted): FleetProducer {warm_fleet:.0}  ThreadedProducer+counting {warm_raw:.0} records/s");
        }
        let (mut fleet, mut raw, mut java) = (Vec::new(), Vec::new(), Vec::new());
        // Producer-side CPU per record (ns, every thread of this process), per round.
        let (mut fleet_cpu, mut raw_cpu) = (Vec::new(), Vec::new());
        for round in 0..args.rounds {
            let a = args.records;
            let s = servers.clone();
            // Alternate which producer goes first (the broker warms up, the page cache fills).
            let fleet_round_waits = |args: &Args| -> Result<(Round, u64)> {
                let before = FULL_WAITS.load(Ordering::Relaxed);
                let f = tokio::task::block_in_place(|| fleet_round(args, &cache))?;
                Ok((f, FULL_WAITS.load(Ordering::Relaxed) - before))
            };
            let raw_round_waits = |args: &Args| -> Result<(Round, u64)> {
                let before = FULL_WAITS.load(Ordering::Relaxed);
                let r = tokio::task::block_in_place(|| raw_round(args, &s))?;
                Ok((r, FULL_WAITS.load(Ordering::Relaxed) - before))
            };
            let ((f, fw), (r, rw)) = if round % 2 == 0 {
                let f = fleet_round_waits(&args)?;
                (f, raw_round_waits(&args)?)
            } else {
                let r = raw_round_waits(&args)?;
                (fleet_round_waits(&args)?, r)
            };
            eprintln!("  full-buffer waits: FleetProducer {fw}, ThreadedProducer {rw}; producer-side CPU per record: FleetProducer {:.0} ns, ThreadedProducer {:.0} ns", f.cpu_ns, r.cpu_ns);
            fleet_cpu.push(f.cpu_ns);
            raw_cpu.push(r.cpu_ns);
            let (f, r) = (f.rate, r.rate);
            eprintln!("round {}/{}: FleetProducer {f:.0}  ThreadedProducer+counting {r:.0} records/s ({a} records)", round + 1, args.rounds);
            fleet.push(f);
            raw.push(r);
        }
        // Kafka's own producer for reference, after the pairs: its JVM's start would otherwise
        // sit between them and share the cores with the broker's compiler.
        for round in 0..args.rounds.min(3) {
            let j = tokio::task::block_in_place(|| java_round(&args, &servers))?;
            eprintln!("perf-test round {}: {j:.0} records/s", round + 1);
            java.push(j);
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.total_cmp(b));
            v[v.len() / 2]
        };
        // The ratio of each round (both producers ran back to back on the same broker state).
        let mut ratios: Vec<f64> = fleet.iter().zip(&raw).map(|(f, r)| f / r).collect();
        let ratio = median(&mut ratios);
        let (f, r, j) = (median(&mut fleet), median(&mut raw), median(&mut java));
        println!(
            "one broker, 6 partitions, {} x 100-byte unkeyed records, acks=all + idempotence, linger.ms={}, batch.size={}, lz4; median of {} rounds",
            args.records, args.linger_ms, args.batch_size, args.rounds
        );
        println!("{:<40} {:>10.0} records/s", "FleetProducer (fleet-client)", f);
        println!("{:<40} {:>10.0} records/s  (FleetProducer at {:.1}%)", "rdkafka ThreadedProducer, counting", r, 100.0 * f / r);
        println!("{:<40} {:>10.0} records/s  (FleetProducer at {:.1}%)", "kafka-producer-perf-test", j, 100.0 * f / j);
        println!("FleetProducer / ThreadedProducer, median of the rounds' ratios: {:.1}%", 100.0 * ratio);
        println!("producer-side CPU per record while the clock ran (this process, every thread), median: FleetProducer {:.0} ns, ThreadedProducer {:.0} ns", median(&mut fleet_cpu), median(&mut raw_cpu));
    }
    if !args.no_switch {
        switch_latency(&args, &zk).await?;
    }
    Ok(())
}
