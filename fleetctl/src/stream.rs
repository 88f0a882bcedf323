//! `fleetctl produce` and `fleetctl consume`: stdin to a route and a route to stdout, through the
//! client library, so scripts follow a route across clusters the way services do.

use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleet_client::{ClientConfig, FleetConsumer, FleetProducer, FullBuffer, Record, SendError};
use serde_json::json;

use crate::{Failure, Output, Result};

#[derive(clap::Args, Debug)]
pub struct ProduceArgs {
    pub route: String,
    /// The topic every line goes to.
    #[arg(long)]
    pub topic: String,
    /// Split each line at the first DELIM into key and value.
    #[arg(long)]
    pub key_delimiter: Option<String>,
    /// Keep the route's last binding here, to start while the fleet manager is down.
    #[arg(long)]
    pub cache: Option<std::path::PathBuf>,
    /// At the end of input, how long to wait for acknowledgements.
    #[arg(long, default_value = "60s", value_parser = crate::parse_duration)]
    pub timeout: Duration,
    /// Records held (not yet acknowledged) at most; more lines wait (a script is not a service).
    #[arg(long, default_value_t = 100_000)]
    pub buffer: usize,
}

#[derive(clap::Args, Debug)]
pub struct ConsumeArgs {
    pub route: String,
    /// A topic to read (repeatable); it must be declared on the route's cluster.
    #[arg(long = "topic", required = true)]
    pub topics: Vec<String>,
    /// The consumer group (offsets are committed for it, on each cluster the route uses).
    #[arg(long)]
    pub group: String,
    /// Stop after this many records.
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop when no record came for this long.
    #[arg(long, value_parser = crate::parse_duration)]
    pub idle: Option<Duration>,
    /// Keep the route's last binding here, to start while the fleet manager is down.
    #[arg(long)]
    pub cache: Option<std::path::PathBuf>,
}

/// Where the fleet manager is and how to talk to it (from fleetctl's global options).
pub struct Api {
    pub url: String,
    pub token: Option<String>,
    pub ca_file: Option<std::path::PathBuf>,
}

fn config(api: &Api, route: &str, cache: Option<std::path::PathBuf>) -> ClientConfig {
    let urls: Vec<&str> = api.url.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    let mut c = ClientConfig::new(route, &urls);
    c.token = api.token.clone();
    c.ca_file = api.ca_file.clone();
    c.cache_path = cache;
    c
}

pub fn produce(api: &Api, args: ProduceArgs, output: Output) -> Result<()> {
    let mut c = config(api, &args.route, args.cache.clone());
    c.buffer_records = args.buffer;
    c.full_buffer = FullBuffer::Return;
    let producer = FleetProducer::new(c).map_err(|e| Failure::new(2, e.to_string()))?;
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line = line.map_err(|e| Failure::new(1, format!("reading stdin: {e}")))?;
        let record = match args.key_delimiter.as_deref().and_then(|d| line.split_once(d)) {
            Some((k, v)) => Record::new(&args.topic, v.as_bytes()).with_key(k.as_bytes()),
            None => Record::new(&args.topic, line.as_bytes()),
        };
        // A script waits for room rather than lose lines.
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err(SendError::Full { .. }) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => return Err(Failure::new(1, e.to_string())),
            }
        }
    }
    let _ = producer.flush(args.timeout);
    let counters = producer.counters();
    let binding = producer.binding();
    let error = producer.last_error();
    let unsent = producer.close(Duration::ZERO).unacknowledged;
    let summary = json!({
        "route": args.route,
        "cluster": binding.as_ref().map(|b| b.cluster.clone()),
        "generation": binding.as_ref().map(|b| b.generation),
        "counters": counters,
        "unacknowledged": unsent,
    });
    match output {
        Output::Json | Output::Yaml => outln!("{summary}"),
        Output::Table => eprintln!(
            "{} sent, {} acknowledged, {} failed, {} unacknowledged ({})",
            counters.sent,
            counters.acknowledged,
            counters.failed,
            unsent,
            binding.map_or("no binding".to_string(), |b| format!("cluster {} generation {}", b.cluster, b.generation))
        ),
    }
    if counters.failed > 0 || unsent > 0 {
        return Err(Failure::new(1, format!("{} records not acknowledged{}", counters.failed + unsent, error.map(|e| format!(": {e}")).unwrap_or_default())));
    }
    Ok(())
}

pub fn consume(api: &Api, args: ConsumeArgs, output: Output, stop: Arc<AtomicBool>) -> Result<()> {
    let mut c = config(api, &args.route, args.cache.clone());
    c.group = Some(args.group.clone());
    c.topics = args.topics.clone();
    let mut consumer = FleetConsumer::new(c).map_err(|e| Failure::new(2, e.to_string()))?;
    let mut stdout = std::io::stdout().lock();
    let mut seen = 0u64;
    let mut last = Instant::now();
    while !stop.load(Ordering::SeqCst) && args.count.is_none_or(|n| seen < n) {
        if args.idle.is_some_and(|d| last.elapsed() >= d) {
            break;
        }
        let Some(r) = consumer.poll(Duration::from_millis(200)) else { continue };
        seen += 1;
        last = Instant::now();
        let written = match output {
            Output::Table => writeln!(stdout, "{}", String::from_utf8_lossy(&r.payload)),
            Output::Json | Output::Yaml => writeln!(
                stdout,
                "{}",
                json!({"cluster": r.cluster, "generation": r.generation, "topic": r.topic, "partition": r.partition, "offset": r.offset,
                       "key": r.key.as_deref().map(String::from_utf8_lossy), "payload": String::from_utf8_lossy(&r.payload)})
            ),
        };
        if written.and_then(|()| stdout.flush()).is_err() {
            break; // the reader went away
        }
    }
    consumer.close();
    Ok(())
}
