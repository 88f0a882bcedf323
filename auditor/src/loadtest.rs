//! `kafka-auditor loadtest`: produce at a fixed rate or as fast as the cluster takes it, and
//! report achieved msg/s, MB/s and acknowledgement latency percentiles, live and at the end.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use serde::Serialize;

/// Exactly what the user asked for, validated.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    pub bootstrap_servers: String,
    pub topic: String,
    /// Messages per second over all producers; `None` for as fast as possible.
    pub rate: Option<u64>,
    pub size: usize,
    pub duration: Duration,
    pub acks: Acks,
    pub producers: usize,
    /// Extra librdkafka settings (`key=value`), applied last.
    pub producer_config: Vec<(String, String)>,
    /// Also consume what is produced, and measure end-to-end latency.
    pub consume: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acks {
    None,
    Leader,
    All,
}

impl Acks {
    fn as_str(self) -> &'static str {
        match self {
            Acks::None => "0",
            Acks::Leader => "1",
            Acks::All => "all",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("--rate `{0}`: give messages per second above 0 (e.g. 50000), or `max`")]
    Rate(String),
    #[error("--size `{0}`: give a record size in bytes, 1 to 1000000")]
    Size(String),
    #[error("--duration `{0}`: give a duration such as 30s, 5m or 500ms (above 0, at most 24h)")]
    Duration(String),
    #[error("--acks `{0}`: use 0, 1 or all")]
    Acks(String),
    #[error("--producers `{0}`: use 1 to 64")]
    Producers(String),
    #[error("--producer-config `{0}`: use key=value (librdkafka property)")]
    ProducerConfig(String),
    #[error("--topic must not be empty")]
    Topic,
}

pub fn parse_rate(s: &str) -> Result<Option<u64>, SpecError> {
    if s.eq_ignore_ascii_case("max") {
        return Ok(None);
    }
    match s.parse::<i64>() {
        Ok(n) if n > 0 => Ok(Some(n as u64)),
        _ => Err(SpecError::Rate(s.to_string())),
    }
}

pub fn parse_duration(s: &str) -> Result<Duration, SpecError> {
    let err = || SpecError::Duration(s.to_string());
    let (num, unit) = s.find(|c: char| !c.is_ascii_digit() && c != '.').map(|i| s.split_at(i)).unwrap_or((s, "s"));
    let n: f64 = num.parse().map_err(|_| err())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(err()),
    };
    if !(secs > 0.0 && secs <= 86_400.0) {
        return Err(err());
    }
    Ok(Duration::from_secs_f64(secs))
}

pub fn parse_acks(s: &str) -> Result<Acks, SpecError> {
    match s {
        "0" => Ok(Acks::None),
        "1" => Ok(Acks::Leader),
        "all" | "-1" => Ok(Acks::All),
        _ => Err(SpecError::Acks(s.to_string())),
    }
}

/// Figures of a run (or of the run so far).
#[derive(Clone, Debug, Default, Serialize)]
pub struct LoadReport {
    pub elapsed_s: f64,
    pub sent: u64,
    pub acked: u64,
    pub errors: u64,
    pub msgs_per_s: f64,
    pub mb_per_s: f64,
    pub latency_ms_p50: f64,
    pub latency_ms_p99: f64,
    pub latency_ms_p999: f64,
    pub latency_ms_max: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// The consuming side, with `--consume`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumed: Option<ConsumeReport>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ConsumeReport {
    pub consumed: u64,
    pub msgs_per_s: f64,
    pub end_to_end_ms_p50: f64,
    pub end_to_end_ms_p99: f64,
    pub end_to_end_ms_p999: f64,
}

struct Stats {
    acked: AtomicU64,
    errors: AtomicU64,
    /// Acknowledgement latency in microseconds.
    latency: Mutex<Histogram<u64>>,
    first_error: Mutex<Option<String>>,
}

struct LoadContext {
    started: Instant,
    stats: Arc<Stats>,
}

impl ClientContext for LoadContext {}

impl ProducerContext for LoadContext {
    /// Send time, in microseconds since the run started: no allocation per message.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_at_us: usize) {
        match result {
            Ok(_) => {
                self.stats.acked.fetch_add(1, Ordering::Relaxed);
                let now_us = self.started.elapsed().as_micros() as u64;
                if let Ok(mut h) = self.stats.latency.lock() {
                    let _ = h.record(now_us.saturating_sub(sent_at_us as u64).max(1));
                }
            }
            Err((e, _)) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = self.stats.first_error.lock() {
                    first.get_or_insert_with(|| e.to_string());
                }
            }
        }
    }
}

fn producer_config(spec: &LoadSpec) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &spec.bootstrap_servers)
        .set("acks", spec.acks.as_str())
        // Throughput settings: big batches, a short linger, a deep local queue.
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "2000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("compression.type", "none")
        .set("enable.idempotence", "false")
        .set("message.timeout.ms", "30000");
    for (k, v) in &spec.producer_config {
        c.set(k, v);
    }
    c
}

fn unix_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// What the consuming side read: count, how long, end-to-end latency (µs).
type Consumed = (u64, Duration, Histogram<u64>);

/// The consuming side: from the end offsets before the run, until it has read everything
/// acknowledged (or 15 s after the producers finished). Payloads carry their send time.
fn spawn_consumer(
    spec: &LoadSpec,
    producers_done: Arc<AtomicBool>,
    acked: Arc<Stats>,
) -> anyhow::Result<std::thread::JoinHandle<anyhow::Result<Consumed>>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &spec.bootstrap_servers)
        .set("group.id", format!("kafka-auditor-loadtest-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "10")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(&spec.topic), Duration::from_secs(10))?;
    let mut tpl = TopicPartitionList::new();
    for t in metadata.topics().iter().filter(|t| t.name() == spec.topic) {
        for p in t.partitions() {
            let (_, high) = consumer.fetch_watermarks(&spec.topic, p.id(), Duration::from_secs(10))?;
            tpl.add_partition_offset(&spec.topic, p.id(), Offset::Offset(high))?;
        }
    }
    anyhow::ensure!(tpl.count() > 0, "topic {} has no partitions to consume", spec.topic);
    consumer.assign(&tpl)?;
    let mut assigned: std::collections::BTreeSet<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
    let topic = spec.topic.clone();
    Ok(std::thread::spawn(move || {
        let started = Instant::now();
        let mut latency = Histogram::new_with_bounds(1, 600_000_000, 3)?;
        let mut consumed = 0u64;
        let mut done_at: Option<Instant> = None;
        let mut next_check = Instant::now() + Duration::from_secs(1);
        loop {
            // Partitions added while the load runs (a scale-up) are read from their start.
            if Instant::now() >= next_check {
                next_check = Instant::now() + Duration::from_secs(1);
                if let Ok(added) = follow_new_partitions(&consumer, &topic, &mut assigned) {
                    if added > 0 {
                        tracing::info!(topic = %topic, added, "consuming partitions added to the topic");
                    }
                }
            }
            if producers_done.load(Ordering::Relaxed) {
                let since = *done_at.get_or_insert_with(Instant::now);
                if consumed >= acked.acked.load(Ordering::Relaxed) || since.elapsed() > Duration::from_secs(15) {
                    break;
                }
            }
            let Some(msg) = consumer.poll(Duration::from_millis(100)) else { continue };
            let Ok(msg) = msg else { continue };
            consumed += 1;
            if let Some(sent) = msg.payload().and_then(|p| p.get(..8)).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes) {
                let _ = latency.record(unix_us().saturating_sub(sent).max(1));
            }
        }
        Ok((consumed, started.elapsed(), latency))
    }))
}

/// Assigns partitions of `topic` that appeared since `assigned` was taken, from their start.
/// Returns how many were added.
pub fn follow_new_partitions(consumer: &BaseConsumer, topic: &str, assigned: &mut std::collections::BTreeSet<i32>) -> anyhow::Result<usize> {
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(5))?;
    let mut tpl = TopicPartitionList::new();
    for t in metadata.topics().iter().filter(|t| t.name() == topic) {
        for p in t.partitions() {
            if !assigned.contains(&p.id()) {
                tpl.add_partition_offset(topic, p.id(), Offset::Beginning)?;
            }
        }
    }
    let added = tpl.count();
    if added > 0 {
        consumer.incremental_assign(&tpl)?;
        assigned.extend(tpl.elements().iter().map(|e| e.partition()));
    }
    Ok(added)
}

/// Runs the load; `progress` is called about once a second with the figures so far.
pub fn run(spec: &LoadSpec, mut progress: impl FnMut(&LoadReport)) -> anyhow::Result<LoadReport> {
    let started = Instant::now();
    let stats = Arc::new(Stats {
        acked: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        latency: Mutex::new(Histogram::new_with_bounds(1, 600_000_000, 3)?),
        first_error: Mutex::new(None),
    });
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let producers_done = Arc::new(AtomicBool::new(false));
    let consumer = if spec.consume { Some(spawn_consumer(spec, producers_done.clone(), stats.clone())?) } else { None };
    let payload = vec![b'x'; spec.size];
    let mut threads = Vec::new();
    for _ in 0..spec.producers {
        let producer: ThreadedProducer<LoadContext> =
            producer_config(spec).create_with_context(LoadContext { started, stats: stats.clone() })?;
        let (topic, mut payload, sent, stop) = (spec.topic.clone(), payload.clone(), sent.clone(), stop.clone());
        let stamp = spec.consume && payload.len() >= 8;
        let per_producer_rate = spec.rate.map(|r| (r as f64 / spec.producers as f64).max(1.0));
        let deadline = started + spec.duration;
        threads.push(std::thread::spawn(move || {
            let mut n: u64 = 0;
            let mut uncounted = 0u64;
            loop {
                // The clock and the stop flag every 256 records at full rate (a record costs
                // about a microsecond; two clock reads per record would be a tenth of it).
                if (per_producer_rate.is_some() || n % 256 == 0) && (stop.load(Ordering::Relaxed) || Instant::now() >= deadline) {
                    break;
                }
                if let Some(rate) = per_producer_rate {
                    // Pace to the schedule: message n is due at n / rate seconds.
                    let due = started + Duration::from_secs_f64(n as f64 / rate);
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep((due - now).min(Duration::from_millis(5)));
                        continue;
                    }
                }
                let opaque = started.elapsed().as_micros() as usize;
                if stamp {
                    // The consuming side reads the send time from the first 8 bytes.
                    payload[..8].copy_from_slice(&unix_us().to_le_bytes());
                }
                let mut record = BaseRecord::with_opaque_to(&topic, opaque).payload(&payload[..]);
                loop {
                    match producer.send::<(), [u8]>(record) {
                        Ok(()) => break,
                        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                            record = r;
                            producer.poll(Duration::from_millis(1));
                        }
                        Err((e, _)) => {
                            tracing::warn!(error = %e, "send failed");
                            break;
                        }
                    }
                }
                n += 1;
                uncounted += 1;
                if uncounted == 64 {
                    sent.fetch_add(uncounted, Ordering::Relaxed);
                    uncounted = 0;
                }
            }
            sent.fetch_add(uncounted, Ordering::Relaxed);
            let _ = producer.flush(Duration::from_secs(30));
        }));
    }
    let report = |elapsed: Duration| -> LoadReport {
        let acked = stats.acked.load(Ordering::Relaxed);
        let secs = elapsed.as_secs_f64().max(1e-9);
        let h = stats.latency.lock().map(|h| h.clone()).ok();
        let pct = |q: f64| h.as_ref().map(|h| h.value_at_quantile(q) as f64 / 1000.0).unwrap_or(0.0);
        LoadReport {
            elapsed_s: secs,
            sent: sent.load(Ordering::Relaxed),
            acked,
            errors: stats.errors.load(Ordering::Relaxed),
            msgs_per_s: acked as f64 / secs,
            mb_per_s: acked as f64 * spec.size as f64 / secs / 1_000_000.0,
            latency_ms_p50: pct(0.5),
            latency_ms_p99: pct(0.99),
            latency_ms_p999: pct(0.999),
            latency_ms_max: h.as_ref().map(|h| h.max() as f64 / 1000.0).unwrap_or(0.0),
            first_error: stats.first_error.lock().ok().and_then(|e| e.clone()),
            consumed: None,
        }
    };
    let mut next_progress = started + Duration::from_secs(1);
    while threads.iter().any(|t| !t.is_finished()) {
        std::thread::sleep(Duration::from_millis(50));
        if Instant::now() >= next_progress {
            progress(&report(started.elapsed()));
            next_progress += Duration::from_secs(1);
        }
    }
    for t in threads {
        let _ = t.join();
    }
    // Throughput over the sending window plus the final flush: everything acked counts.
    let mut final_report = report(started.elapsed());
    producers_done.store(true, Ordering::Relaxed);
    if let Some(consumer) = consumer {
        let (consumed, took, latency) = consumer.join().map_err(|_| anyhow::anyhow!("consumer thread panicked"))??;
        let q = |p: f64| if latency.is_empty() { 0.0 } else { latency.value_at_quantile(p) as f64 / 1000.0 };
        final_report.consumed = Some(ConsumeReport {
            consumed,
            msgs_per_s: consumed as f64 / took.as_secs_f64().max(1e-9),
            end_to_end_ms_p50: q(0.5),
            end_to_end_ms_p99: q(0.99),
            end_to_end_ms_p999: q(0.999),
        });
    }
    Ok(final_report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(parse_rate("max"), Ok(None));
        assert_eq!(parse_rate("5000"), Ok(Some(5000)));
        for bad in ["0", "-5", "fast", ""] {
            assert_eq!(parse_rate(bad), Err(SpecError::Rate(bad.into())));
        }
    }

    #[test]
    fn durations_and_acks() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        for bad in ["0s", "-1s", "1y", "abc", "25h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_acks("all"), Ok(Acks::All));
        assert!(parse_acks("2").is_err());
    }
}
