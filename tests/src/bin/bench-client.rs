//! The client library's figures, in one run against one local broker:
//! 1. `send` latency with every broker and the fleet manager down and the buffer full (p50,
//!    p99.9, max): what a service pays per record during an outage.
//! 2. Producer throughput, side by side and with the same settings (100-byte unkeyed records,
//!    acks=all with idempotence, linger.ms, batch.size, lz4): `FleetProducer` (starting from its
//!    binding cache, the fleet manager unreachable), raw `rdkafka` (`BaseProducer`, retrying on a
//!    full queue), and Kafka's `kafka-producer-perf-test`. Rounds alternate; medians are printed.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use clap::Parser;
use fleet_api::client::{RouteBinding, RoutePhase};
use fleet_client::{BindingCache, ClientConfig, FleetProducer, FullBuffer, Record, SendError};
use fleet_tests::{LocalCluster, ZkEnsemble};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

#[derive(Parser)]
#[command(name = "bench-client")]
struct Args {
    #[arg(long, default_value_t = 1_000_000)]
    records: usize,
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    #[arg(long, default_value_t = 2_000_000)]
    latency_sends: usize,
    #[arg(long, default_value_t = 10)]
    linger_ms: u64,
    #[arg(long, default_value_t = 262_144)]
    batch_size: usize,
}

const TOPIC: &str = "bench";

fn binding(servers: &str) -> RouteBinding {
    RouteBinding {
        route: "bench".into(),
        cluster: "bench".into(),
        bootstrap_servers: servers.split(',').map(str::to_string).collect(),
        generation: 1,
        phase: RoutePhase::Steady,
        topics: Default::default(),
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
        let r = producer.send(Record::new(TOPIC, payload.clone()));
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
            "  {what:<32} n={:<9} p50 {:>6.2} us  p99.9 {:>7.2} us  max {:>8.2} us",
            h.len(),
            h.value_at_quantile(0.5) as f64 / 1000.0,
            h.value_at_quantile(0.999) as f64 / 1000.0,
            h.max() as f64 / 1000.0
        );
    }
    println!("  counters: sent {} dropped {} buffered {}", counters.sent, counters.dropped, counters.buffered);
    ensure!(full.max() < 50_000_000, "a refused send took {} us", full.max() / 1000);
    let _unsent = producer.close(Duration::ZERO);
    Ok(())
}

fn fleet_round(args: &Args, cache: &std::path::Path) -> Result<f64> {
    let mut c = config(cache, args);
    // The same queue bounds as the raw producer below.
    c.buffer_records = 500_000;
    c.buffer_bytes = 1024 * 1024 * 1024;
    c.kafka.insert("queue.buffering.max.kbytes".into(), "1048576".into());
    c.full_buffer = FullBuffer::Return;
    let producer = FleetProducer::new(c).map_err(anyhow::Error::msg)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while producer.binding().is_none() {
        ensure!(Instant::now() < deadline, "no binding from the cache");
        std::thread::sleep(Duration::from_millis(5));
    }
    let payload = vec![b'x'; 100];
    let topic: std::sync::Arc<str> = TOPIC.into();
    let start = Instant::now();
    for _ in 0..args.records {
        let mut record = Record::to(&topic, payload.clone());
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err(SendError::Full { record: Some(r), .. }) => {
                    record = *r;
                    std::thread::sleep(Duration::from_micros(200));
                }
                Err(e) => anyhow::bail!("{e}"),
            }
        }
    }
    while producer.counters().acknowledged + producer.counters().failed < args.records as u64 {
        ensure!(start.elapsed() < Duration::from_secs(300), "not acknowledged: {:?}", producer.counters());
        std::thread::sleep(Duration::from_millis(2));
    }
    let secs = start.elapsed().as_secs_f64();
    ensure!(producer.counters().failed == 0, "failures: {:?}", producer.counters());
    let _unsent = producer.close(Duration::from_secs(5));
    Ok(args.records as f64 / secs)
}

fn raw_round(args: &Args, servers: &str) -> Result<f64> {
    let producer: BaseProducer = rdkafka::ClientConfig::new()
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
        .create()?;
    let payload = [b'x'; 100];
    let start = Instant::now();
    for _ in 0..args.records {
        let mut record = BaseRecord::<(), [u8]>::to(TOPIC).payload(&payload[..]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(1));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(300))?;
    Ok(args.records as f64 / start.elapsed().as_secs_f64())
}

fn java_round(args: &Args, servers: &str) -> Result<f64> {
    let (linger, batch) = (format!("linger.ms={}", args.linger_ms), format!("batch.size={}", args.batch_size));
    let props = ["acks=all", "enable.idempotence=true", &linger, &batch, "compression.type=lz4"];
    fleet_tests::kafka::producer_perf_test(servers, TOPIC, args.records as u64, &props).map_err(anyhow::Error::msg)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(args.rounds > 0 && args.records > 0, "bad sizes");
    let dir = tempfile::tempdir()?;
    send_latency(&args, dir.path())?;

    let zk = ZkEnsemble::start(1).await;
    let cluster = LocalCluster::bench_broker(&zk).await;
    cluster.create_topic(TOPIC, &["1", "1", "1", "1", "1", "1"]).await;
    let servers = cluster.bootstrap_servers();
    let cache = dir.path().join("bench.json");
    BindingCache::new(&cache).store(&binding(&servers))?;

    let (mut fleet, mut raw, mut java) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..args.rounds {
        let a = args.records;
        let s = servers.clone();
        // Alternate which producer goes first (the broker warms up, the page cache fills).
        let (f, r) = if round % 2 == 0 {
            let f = tokio::task::block_in_place(|| fleet_round(&args, &cache))?;
            (f, tokio::task::block_in_place(|| raw_round(&args, &s))?)
        } else {
            let r = tokio::task::block_in_place(|| raw_round(&args, &s))?;
            (tokio::task::block_in_place(|| fleet_round(&args, &cache))?, r)
        };
        let j = tokio::task::block_in_place(|| java_round(&args, &s))?;
        eprintln!("round {}/{}: FleetProducer {f:.0}  rdkafka {r:.0}  perf-test {j:.0} records/s ({a} records)", round + 1, args.rounds);
        fleet.push(f);
        raw.push(r);
        java.push(j);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (f, r, j) = (median(&mut fleet), median(&mut raw), median(&mut java));
    println!(
        "one broker, 6 partitions, {} x 100-byte unkeyed records, acks=all + idempotence, linger.ms={}, batch.size={}, lz4; median of {} rounds",
        args.records, args.linger_ms, args.batch_size, args.rounds
    );
    println!("{:<34} {:>10.0} records/s", "FleetProducer (fleet-client)", f);
    println!("{:<34} {:>10.0} records/s  (FleetProducer at {:.1}%)", "rdkafka BaseProducer", r, 100.0 * f / r);
    println!("{:<34} {:>10.0} records/s  (FleetProducer at {:.1}%)", "kafka-producer-perf-test", j, 100.0 * f / j);
    Ok(())
}
