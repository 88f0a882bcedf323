//! Auditing a route as its producers live it: records with sequence numbers sent through the
//! client library's `FleetProducer` and read back through `FleetConsumer`, so a failover shows up
//! in the figures (which cluster, how many acknowledged, lost, duplicated, how late) exactly as a
//! service using the library would see it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fleet_client::{ClientConfig, FleetConsumer, FleetProducer, Record};
use serde::Serialize;

/// One route to audit (from the config file's `routes`).
#[derive(Clone, Debug)]
pub struct RouteSpec {
    pub route: String,
    pub fleet_managers: Vec<String>,
    pub token: Option<String>,
    pub topic: String,
    pub interval: Duration,
    pub record_size: usize,
    pub instance_id: String,
    /// An acknowledged record not read back after this long counts as lost.
    pub lost_after: Duration,
    pub cache_dir: Option<std::path::PathBuf>,
    pub ca_file: Option<std::path::PathBuf>,
}

/// What `/api/routes` shows per route.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RouteFigures {
    pub route: String,
    pub instance: String,
    /// The cluster the producer writes to now, and its binding generation.
    pub cluster: String,
    pub generation: i64,
    /// The cluster the consumer reads now.
    pub consumer_cluster: String,
    pub sent: u64,
    pub acknowledged: u64,
    pub failed: u64,
    pub dropped: u64,
    pub consumed: u64,
    /// Acknowledged, not read back within `lost_after`.
    pub lost: u64,
    /// Read back more than once.
    pub duplicated: u64,
    /// Re-sent by the library after a switch, their first copy's fate unknown.
    pub possible_duplicates: u64,
    pub latency_ms_p50: f64,
    pub latency_ms_p99: f64,
    pub latency_ms_max: f64,
    /// Acknowledged records per cluster.
    pub acknowledged_by_cluster: BTreeMap<String, u64>,
}

/// Sequence numbers remembered as read (for duplicates) or lost (for a late read): the newest
/// this many, so an audit that runs for months holds a bounded set.
const WINDOW: u64 = 200_000;

#[derive(Default)]
struct Books {
    /// seq -> when it was acknowledged (not yet read back).
    unread: BTreeMap<u64, Instant>,
    /// Read, within the window.
    read: BTreeSet<u64>,
    /// Lost (acknowledged, not read within `lost_after`), within the window.
    lost: BTreeSet<u64>,
    /// Lost, older than the window.
    lost_before_window: u64,
    /// Records below the window: a duplicate there is not told from a late first read.
    floor: u64,
    duplicated: u64,
    consumed: u64,
    consumer_cluster: String,
    by_cluster: BTreeMap<String, u64>,
    latency: Option<hdrhistogram::Histogram<u64>>,
}

pub struct RouteAudit {
    spec: RouteSpec,
    producer: FleetProducer,
    books: Arc<Mutex<Books>>,
    stop: Arc<AtomicBool>,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn client_config(spec: &RouteSpec, role: &str) -> ClientConfig {
    let urls: Vec<&str> = spec.fleet_managers.iter().map(String::as_str).collect();
    let mut c = ClientConfig::new(&spec.route, &urls);
    c.token = spec.token.clone();
    c.ca_file = spec.ca_file.clone();
    c.acks = Some("all".into());
    c.instance = Some(format!("{}-{role}", spec.instance_id));
    c.cache_path = spec.cache_dir.as_ref().map(|d| d.join(format!("{}-{role}.binding.json", spec.route)));
    // A heartbeat every interval: batching for 100 ms would only add latency.
    c.kafka.insert("linger.ms".into(), "5".into());
    c
}

impl RouteAudit {
    /// Starts the producer and the consumer thread; returns at once (the library never blocks).
    pub fn start(spec: RouteSpec) -> anyhow::Result<Arc<Self>> {
        let producer = FleetProducer::new(client_config(&spec, "producer")).map_err(|e| anyhow::anyhow!("routes: {}: {e}", spec.route))?;
        let mut consumer_config = client_config(&spec, "consumer");
        consumer_config.kafka.remove("linger.ms");
        consumer_config.group = Some(format!("kafka-auditor-{}", spec.instance_id));
        consumer_config.topics = vec![spec.topic.clone()];
        let mut consumer = FleetConsumer::new(consumer_config).map_err(|e| anyhow::anyhow!("routes: {}: {e}", spec.route))?;
        let books = Arc::new(Mutex::new(Books { latency: hdrhistogram::Histogram::new(3).ok(), ..Default::default() }));
        let stop = Arc::new(AtomicBool::new(false));
        let prefix = format!("{}|", spec.instance_id);
        let (b, s) = (books.clone(), stop.clone());
        std::thread::Builder::new().name(format!("audit-read-{}", spec.route)).spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let Some(r) = consumer.poll(Duration::from_millis(100)) else { continue };
                let text = String::from_utf8_lossy(&r.payload);
                // "instance|seq|sent_ms|padding": only this instance's records count.
                let Some(rest) = text.strip_prefix(&prefix) else { continue };
                let mut parts = rest.split('|');
                let (Some(seq), Some(sent)) = (parts.next().and_then(|v| v.parse::<u64>().ok()), parts.next().and_then(|v| v.parse::<u64>().ok())) else { continue };
                let mut books = b.lock().unwrap_or_else(|p| p.into_inner());
                books.consumed += 1;
                books.consumer_cluster = r.cluster.clone();
                books.slide(seq);
                if seq < books.floor {
                    continue;
                }
                if !books.read.insert(seq) {
                    books.duplicated += 1;
                    continue;
                }
                books.unread.remove(&seq);
                books.lost.remove(&seq);
                let latency = now_ms().saturating_sub(sent).max(1);
                if let Some(h) = books.latency.as_mut() {
                    let _ = h.record(latency);
                }
            }
            consumer.close();
        })?;
        Ok(Arc::new(Self { spec, producer, books, stop }))
    }

    pub fn spec(&self) -> &RouteSpec {
        &self.spec
    }

    /// Sends one record per interval until stopped.
    pub async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.spec.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let topic = self.spec.topic.clone();
        let mut seq = 0u64;
        while !self.stop.load(Ordering::SeqCst) {
            tick.tick().await;
            let mut payload = format!("{}|{seq}|{}|", self.spec.instance_id, now_ms());
            if payload.len() < self.spec.record_size {
                payload.push_str(&"x".repeat(self.spec.record_size - payload.len()));
            }
            if let Ok(delivery) = self.producer.send_tracked(Record::new(&topic, payload.as_bytes())) {
                let books = self.books.clone();
                let n = seq;
                tokio::spawn(async move {
                    if let Ok(d) = delivery.await {
                        let mut books = books.lock().unwrap_or_else(|p| p.into_inner());
                        *books.by_cluster.entry(d.cluster).or_default() += 1;
                        books.slide(n);
                        if n >= books.floor && !books.read.contains(&n) {
                            books.unread.insert(n, Instant::now());
                        }
                    }
                });
            }
            seq += 1;
        }
    }

    pub fn figures(&self) -> RouteFigures {
        let counters = self.producer.counters();
        let binding = self.producer.binding();
        let mut books = self.books.lock().unwrap_or_else(|p| p.into_inner());
        let lost_after = self.spec.lost_after;
        let late: Vec<u64> = books.unread.iter().filter(|(_, at)| at.elapsed() > lost_after).map(|(s, _)| *s).collect();
        for s in late {
            books.unread.remove(&s);
            books.lost.insert(s);
        }
        let q = |h: &Option<hdrhistogram::Histogram<u64>>, at: f64| h.as_ref().filter(|h| !h.is_empty()).map_or(0.0, |h| h.value_at_quantile(at) as f64);
        RouteFigures {
            route: self.spec.route.clone(),
            instance: self.spec.instance_id.clone(),
            cluster: binding.as_ref().map(|b| b.cluster.clone()).unwrap_or_default(),
            generation: binding.map_or(0, |b| b.generation),
            consumer_cluster: books.consumer_cluster.clone(),
            sent: counters.sent,
            acknowledged: counters.acknowledged,
            failed: counters.failed,
            dropped: counters.dropped,
            consumed: books.consumed,
            lost: books.lost.len() as u64 + books.lost_before_window,
            duplicated: books.duplicated,
            possible_duplicates: counters.possible_duplicates,
            latency_ms_p50: q(&books.latency, 0.5),
            latency_ms_p99: q(&books.latency, 0.99),
            latency_ms_max: books.latency.as_ref().map_or(0.0, |h| h.max() as f64),
            acknowledged_by_cluster: books.by_cluster.clone(),
        }
    }
}

impl Books {
    /// Moves the window up to `newest`: what falls below it is forgotten (lost ones counted).
    fn slide(&mut self, newest: u64) {
        let floor = newest.saturating_sub(WINDOW);
        if floor <= self.floor {
            return;
        }
        self.floor = floor;
        self.read = self.read.split_off(&floor);
        let kept = self.lost.split_off(&floor);
        self.lost_before_window += self.lost.len() as u64;
        self.lost = kept;
        // Acknowledged this long ago and still not read: lost.
        let kept = self.unread.split_off(&floor);
        self.lost_before_window += self.unread.len() as u64;
        self.unread = kept;
    }
}

impl Drop for RouteAudit {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}
