//! `FleetConsumer`: reads the route's topics from the cluster the route is bound to.
//!
//! At a switch it keeps reading the old cluster up to the end offsets taken when the switch
//! settled (or until `drain_timeout`), commits, reports itself drained, then reads the new
//! cluster from the beginning (its group has no offsets there). Offsets are stored only for
//! records handed to the caller and committed after the caller asked for the next one, so
//! processing is at-least-once end to end.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use fleet_api::client::{ClientCounters, ClientReport, ClientRole, ConsumerState, RouteBinding};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::Message;

use crate::config::{ClientConfig, ConfigError};
use crate::follow::{self, Follower, Follows};
use crate::metrics::ClientMetrics;

/// A record read from the route's current (or draining) cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumedRecord {
    pub cluster: String,
    pub generation: i64,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
}

#[derive(Default)]
struct Shared {
    latest: Option<RouteBinding>,
    last_error: Option<String>,
    state: ConsumerState,
    generation: i64,
    cluster: String,
}

struct Inner {
    config: ClientConfig,
    instance: String,
    group: String,
    shared: Mutex<Shared>,
    consumed: AtomicU64,
    metrics: ClientMetrics,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Follows for Inner {
    fn on_binding(&self, binding: RouteBinding, _from_cache: bool) {
        self.lock().latest = Some(binding);
    }
    fn on_error(&self, message: String) {
        self.lock().last_error = Some(message);
    }
    fn report(&self) -> ClientReport {
        let s = self.lock();
        ClientReport {
            instance: self.instance.clone(),
            route: self.config.route.clone(),
            role: ClientRole::Consumer,
            generation: s.generation,
            cluster: s.cluster.clone(),
            counters: ClientCounters { consumed: self.consumed.load(Ordering::Relaxed), ..Default::default() },
            consumer: Some(s.state.clone()),
        }
    }
}

struct Reading {
    consumer: BaseConsumer,
    binding: RouteBinding,
    /// Next offset per partition, from the records handed out.
    next: BTreeMap<(String, i32), i64>,
}

struct Drain {
    reading: Reading,
    began: Instant,
    /// End offsets per partition, taken once the switch settled.
    targets: Option<BTreeMap<(String, i32), i64>>,
}

/// A consumer that follows a route. Owned by one thread (`poll` takes `&mut self`).
pub struct FleetConsumer {
    inner: Arc<Inner>,
    follower: Option<Follower>,
    reading: Option<Reading>,
    drain: Option<Drain>,
    /// The record handed out last: its offset is stored when the caller asks for the next one.
    handed: Option<(bool, String, i32, i64)>,
    lag_at: Instant,
}

impl FleetConsumer {
    /// Starts following the route and returns at once. Needs `group` and `topics`.
    pub fn new(config: ClientConfig) -> Result<Self, ConfigError> {
        config.check()?;
        let group = config.group.clone().filter(|g| !g.is_empty()).ok_or(ConfigError { field: "group", message: "a consumer needs a group".into() })?;
        if config.topics.is_empty() {
            return Err(ConfigError { field: "topics", message: "name at least one topic to read".into() });
        }
        let inner = Arc::new(Inner {
            instance: config.instance_name("consumer"),
            group: group.clone(),
            shared: Mutex::new(Shared { state: ConsumerState { group, ..Default::default() }, ..Default::default() }),
            consumed: AtomicU64::new(0),
            metrics: ClientMetrics::new(&config.route, "consumer"),
            config: config.clone(),
        });
        let follower = follow::spawn(config, inner.clone(), Duration::from_millis(500))
            .map_err(|e| ConfigError { field: "route", message: format!("cannot start the follower thread: {e}") })?;
        Ok(Self { inner, follower: Some(follower), reading: None, drain: None, handed: None, lag_at: Instant::now() })
    }

    pub fn binding(&self) -> Option<RouteBinding> {
        self.reading.as_ref().map(|r| r.binding.clone())
    }

    pub fn last_error(&self) -> Option<String> {
        self.inner.lock().last_error.clone()
    }

    pub fn metrics(&self) -> &ClientMetrics {
        &self.inner.metrics
    }

    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    /// Whether it drained a previous cluster since the last switch.
    pub fn drained(&self) -> bool {
        self.inner.lock().state.drained
    }

    fn connect(&self, binding: &RouteBinding) -> Result<Reading, KafkaError> {
        let mut c = rdkafka::ClientConfig::new();
        c.set("bootstrap.servers", binding.bootstrap_servers.join(","))
            .set("group.id", &self.inner.group)
            .set("client.id", format!("{}-{}", self.inner.instance, binding.cluster))
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            // A group new to this cluster (the route just moved here) reads it from the beginning.
            .set("auto.offset.reset", "earliest");
        for (k, v) in &self.inner.config.kafka {
            c.set(k, v);
        }
        let consumer: BaseConsumer = c.create()?;
        let topics: Vec<&str> = self.inner.config.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics)?;
        let mut s = self.inner.lock();
        s.generation = binding.generation;
        s.cluster = binding.cluster.clone();
        drop(s);
        self.inner.metrics.generation.get_or_create(&self.inner.metrics.labels).set(binding.generation);
        tracing::info!(route = %binding.route, cluster = %binding.cluster, generation = binding.generation, "consuming");
        Ok(Reading { consumer, binding: binding.clone(), next: BTreeMap::new() })
    }

    /// Stores the offset of the record handed out last (the caller is done with it).
    fn store_handed(&mut self) {
        let Some((from_drain, topic, partition, offset)) = self.handed.take() else { return };
        let reading = if from_drain { self.drain.as_ref().map(|d| &d.reading) } else { self.reading.as_ref() };
        if let Some(r) = reading {
            // librdkafka's rd_kafka_offset_store stores offset + 1 (the next to read) itself.
            if let Err(e) = r.consumer.store_offset(&topic, partition, offset) {
                tracing::debug!(error = %e, topic, partition, "offset not stored");
            }
        }
    }

    /// The next record, waiting up to `timeout`; `None` when there is none yet (or no binding).
    pub fn poll(&mut self, timeout: Duration) -> Option<ConsumedRecord> {
        self.store_handed();
        let latest = self.inner.lock().latest.clone();
        if let Some(b) = latest {
            let moved = self.reading.as_ref().is_some_and(|r| r.binding.cluster != b.cluster);
            if moved && self.drain.is_none() {
                if let Some(reading) = self.reading.take() {
                    tracing::info!(from = %reading.binding.cluster, to = %b.cluster, "route moved: draining the old cluster");
                    self.inner.metrics.switches.get_or_create(&self.inner.metrics.labels).inc();
                    let mut s = self.inner.lock();
                    s.state.drained = false;
                    s.state.drained_cluster = None;
                    drop(s);
                    self.drain = Some(Drain { reading, began: Instant::now(), targets: None });
                }
            } else if self.reading.is_none() && self.drain.is_none() {
                match self.connect(&b) {
                    Ok(r) => self.reading = Some(r),
                    Err(e) => self.inner.lock().last_error = Some(format!("cannot consume from {}: {e}", b.cluster)),
                }
            } else if let Some(r) = self.reading.as_mut() {
                r.binding.generation = b.generation;
            }
        }
        if self.drain.is_some() {
            return self.poll_drain(timeout);
        }
        let record = self.poll_from(false, timeout);
        if self.lag_at.elapsed() > Duration::from_secs(5) {
            self.lag_at = Instant::now();
            if let Some(r) = &self.reading {
                let lag = lag(r);
                self.inner.lock().state.lag = lag;
            }
        }
        record
    }

    fn poll_from(&mut self, from_drain: bool, timeout: Duration) -> Option<ConsumedRecord> {
        let reading = if from_drain { &mut self.drain.as_mut()?.reading } else { self.reading.as_mut()? };
        match reading.consumer.poll(timeout)? {
            Ok(m) => {
                let record = ConsumedRecord {
                    cluster: reading.binding.cluster.clone(),
                    generation: reading.binding.generation,
                    topic: m.topic().to_string(),
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                };
                reading.next.insert((record.topic.clone(), record.partition), record.offset + 1);
                self.handed = Some((from_drain, record.topic.clone(), record.partition, record.offset));
                self.inner.consumed.fetch_add(1, Ordering::Relaxed);
                self.inner.metrics.records.get_or_create(&self.inner.metrics.cluster(&record.cluster)).inc();
                Some(record)
            }
            Err(e) => {
                tracing::debug!(error = %e, "consumer error");
                None
            }
        }
    }

    fn poll_drain(&mut self, timeout: Duration) -> Option<ConsumedRecord> {
        let settle = self.inner.config.switch_settle;
        let deadline = self.inner.config.drain_timeout;
        let drain = self.drain.as_mut()?;
        if drain.targets.is_none() && drain.began.elapsed() >= settle {
            let t = end_offsets(&drain.reading);
            tracing::info!(cluster = %drain.reading.binding.cluster, partitions = t.len(), "end offsets taken; reading up to them");
            drain.targets = Some(t);
        }
        let finished = match &drain.targets {
            None => false,
            Some(t) => drain.began.elapsed() >= settle + deadline || t.iter().all(|(tp, end)| reached(&drain.reading, tp, *end)),
        };
        if !finished {
            return self.poll_from(true, timeout.min(Duration::from_millis(100)));
        }
        let drain = self.drain.take()?;
        let old = drain.reading.binding.cluster.clone();
        let complete = drain.targets.as_ref().is_some_and(|t| t.iter().all(|(tp, end)| reached(&drain.reading, tp, *end)));
        match drain.reading.consumer.commit_consumer_state(CommitMode::Sync) {
            // Nothing read since the last commit: nothing to commit.
            Err(rdkafka::error::KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) | Ok(()) => {}
            Err(e) => tracing::warn!(cluster = %old, error = %e, "final commit on the old cluster failed"),
        }
        drop(drain);
        tracing::info!(cluster = %old, complete, "old cluster drained");
        let mut s = self.inner.lock();
        s.state.drained = true;
        s.state.drained_cluster = Some(old);
        drop(s);
        None
    }

    /// Stores the last record's offset and commits; what a restarted consumer resumes from.
    pub fn close(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        self.store_handed();
        for r in self.reading.iter().chain(self.drain.as_ref().map(|d| &d.reading)) {
            if let Err(e) = r.consumer.commit_consumer_state(CommitMode::Sync) {
                tracing::debug!(error = %e, "commit at close");
            }
        }
        drop(self.follower.take());
    }
}

impl Drop for FleetConsumer {
    fn drop(&mut self) {
        if self.follower.is_some() {
            self.finish();
        }
    }
}

fn assigned(r: &Reading) -> Vec<(String, i32)> {
    r.consumer
        .assignment()
        .map(|tpl| tpl.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect())
        .unwrap_or_default()
}

fn end_offsets(r: &Reading) -> BTreeMap<(String, i32), i64> {
    let mut out = BTreeMap::new();
    for (topic, partition) in assigned(r) {
        match r.consumer.fetch_watermarks(&topic, partition, Duration::from_secs(2)) {
            Ok((low, high)) if high > low => {
                out.insert((topic, partition), high);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(topic, partition, error = %e, "end offset unknown; drained until the deadline"),
        }
    }
    out
}

fn position(r: &Reading, tp: &(String, i32)) -> i64 {
    let from_records = r.next.get(tp).copied().unwrap_or(-1);
    let committed = r
        .consumer
        .position()
        .ok()
        .and_then(|tpl| tpl.find_partition(&tp.0, tp.1).and_then(|e| e.offset().to_raw()))
        .unwrap_or(-1);
    from_records.max(committed)
}

fn reached(r: &Reading, tp: &(String, i32), end: i64) -> bool {
    position(r, tp) >= end
}

fn lag(r: &Reading) -> u64 {
    let mut total = 0u64;
    for tp in assigned(r) {
        if let Ok((_, high)) = r.consumer.fetch_watermarks(&tp.0, tp.1, Duration::from_millis(200)) {
            let pos = position(r, &tp);
            if pos >= 0 && high > pos {
                total += (high - pos) as u64;
            }
        }
    }
    total
}
