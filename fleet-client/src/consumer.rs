//! `FleetConsumer`: reads the route's topics from the cluster the route is bound to.
//!
//! At a switch it keeps reading each cluster the route left before the new one, and finishes
//! with it only when its **group** is done there: the route's binding says when that cluster is
//! sealed (producers have drained their links to it, and it refuses the route's writes), the
//! end offsets of every partition of the topics are taken after that, and the cluster is drained
//! when the group's committed offsets reach them for every partition (whoever in the group read
//! them, through any rebalance) and a second look at the ends finds nothing new. Only then is it
//! reported drained; the new cluster is then read from the group's offsets there (from the
//! beginning for a group new to it). Offsets are stored only for records handed to the caller,
//! when the caller asks for the next one, so processing is at-least-once end to end.
//!
//! Network calls the drain needs (end offsets, committed offsets, lag) run on a thread of their
//! own: `poll` waits at most its timeout.

use std::collections::{BTreeMap, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use fleet_api::client::{ClientCounters, ClientReport, ClientRole, ConsumerState, RouteBinding, RoutePhase};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::config::{ClientConfig, ConfigError};
use crate::follow::{self, BindingSource, Follower, Follows};
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
    /// Milliseconds since the epoch, as the cluster has it.
    pub timestamp: Option<i64>,
    pub headers: Vec<(String, Vec<u8>)>,
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
    report_now: tokio::sync::Notify,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Follows for Inner {
    fn on_binding(&self, binding: RouteBinding, _source: BindingSource) {
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
            producer: None,
        }
    }
    fn report_now(&self) -> Option<&tokio::sync::Notify> {
        Some(&self.report_now)
    }
}

struct Reading {
    consumer: Arc<BaseConsumer>,
    cluster: String,
    generation: i64,
    /// Next offset per partition, from the records handed out.
    next: BTreeMap<(String, i32), i64>,
}

/// A check on a thread of its own; its answer is picked up by a later `poll`.
struct Pending<T> {
    answer: Arc<Mutex<Option<T>>>,
}

impl<T: Send + 'static> Pending<T> {
    fn start(name: &str, work: impl FnOnce() -> T + Send + 'static) -> Option<Self> {
        let answer = Arc::new(Mutex::new(None));
        let slot = answer.clone();
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let out = work();
                *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(out);
            })
            .ok()?;
        Some(Self { answer })
    }
    fn take(&self) -> Option<T> {
        self.answer.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// End offsets per partition (the next offset a producer would get), and where each starts.
type Ends = BTreeMap<(String, i32), (i64, i64)>;

enum Check {
    /// The ends of every partition of the topics.
    Ends(Result<Ends, String>),
    /// The group's committed offsets for them, and the ends read again after.
    Committed(Result<(BTreeMap<(String, i32), i64>, Ends), String>),
}

/// A cluster the route left, read until the group is done with it.
struct Drain {
    cluster: String,
    servers: Vec<String>,
    reading: Option<Reading>,
    /// When the binding first allowed its ends to be taken (it was sealed, or its switch over).
    sealed_at: Option<Instant>,
    targets: Option<Ends>,
    check: Option<Pending<Check>>,
    checked_at: Option<Instant>,
    /// Times the ends were found to have moved once reached (replication catching up on
    /// records acknowledged by the leader alone); a cluster still written to (not sealed) is
    /// finished after a few.
    extended: u32,
    began: Instant,
}

impl Drain {
    fn new(cluster: &str, servers: Vec<String>, reading: Option<Reading>) -> Self {
        Self { cluster: cluster.to_string(), servers, reading, sealed_at: None, targets: None, check: None, checked_at: None, extended: 0, began: Instant::now() }
    }
}

/// A consumer that follows a route. Owned by one thread (`poll` takes `&mut self`).
pub struct FleetConsumer {
    inner: Arc<Inner>,
    follower: Option<Follower>,
    reading: Option<Reading>,
    /// Clusters to finish before the bound one is read, oldest first.
    drains: VecDeque<Drain>,
    /// The record handed out last: its offset is stored when the caller asks for the next one.
    handed: Option<(String, String, i32, i64)>,
    lag: Option<Pending<Option<u64>>>,
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
            report_now: tokio::sync::Notify::new(),
            config: config.clone(),
        });
        let follower = follow::spawn(config, inner.clone(), Duration::from_millis(500))
            .map_err(|e| ConfigError { field: "route", message: format!("cannot start the follower thread: {e}") })?;
        Ok(Self { inner, follower: Some(follower), reading: None, drains: VecDeque::new(), handed: None, lag: None, lag_at: Instant::now() })
    }

    /// The binding the consumer follows (the newest it has).
    pub fn binding(&self) -> Option<RouteBinding> {
        self.inner.lock().latest.clone()
    }

    /// The cluster it reads now (a cluster the route left while it drains it).
    pub fn reading(&self) -> Option<String> {
        self.drains.front().map(|d| d.cluster.clone()).or_else(|| self.reading.as_ref().map(|r| r.cluster.clone()))
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

    fn connect(&self, cluster: &str, servers: &[String], generation: i64) -> Result<Reading, KafkaError> {
        let mut c = rdkafka::ClientConfig::new();
        c.set("bootstrap.servers", servers.join(","))
            .set("group.id", &self.inner.group)
            .set("client.id", format!("{}-{cluster}", self.inner.instance))
            .set("enable.auto.commit", if self.inner.config.auto_commit { "true" } else { "false" })
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
        tracing::info!(route = %self.inner.config.route, cluster, generation, "consuming");
        Ok(Reading { consumer: Arc::new(consumer), cluster: cluster.to_string(), generation, next: BTreeMap::new() })
    }

    fn reading_of(&self, cluster: &str) -> Option<&Reading> {
        self.drains.iter().find(|d| d.cluster == cluster).and_then(|d| d.reading.as_ref()).or_else(|| self.reading.as_ref().filter(|r| r.cluster == cluster))
    }

    /// Stores the offset of the record handed out last (the caller is done with it).
    fn store_handed(&mut self) {
        let Some((cluster, topic, partition, offset)) = self.handed.take() else { return };
        if let Some(r) = self.reading_of(&cluster) {
            // librdkafka's rd_kafka_offset_store stores offset + 1 (the next to read) itself.
            if let Err(e) = r.consumer.store_offset(&topic, partition, offset) {
                tracing::debug!(error = %e, topic, partition, "offset not stored");
            }
        }
    }

    /// Follows the newest binding: the cluster it was reading, and every cluster the route left
    /// after that one, are queued to be drained (in the order the route left them) before the
    /// bound cluster is read.
    fn follow(&mut self) {
        let Some(b) = self.inner.lock().latest.clone() else { return };
        let switching = matches!(b.phase, RoutePhase::Switching | RoutePhase::Sealed);
        // The clusters the route left, oldest first, the one being switched off last.
        let mut chain: Vec<(String, Vec<String>)> = b.left.iter().map(|a| (a.cluster.clone(), a.bootstrap_servers.clone())).collect();
        if let Some(p) = b.previous.as_ref().filter(|_| switching) {
            chain.retain(|(c, _)| *c != p.cluster);
            chain.push((p.cluster.clone(), p.bootstrap_servers.clone()));
        }
        chain.retain(|(c, _)| *c != b.cluster);
        let fresh = self.reading.is_none() && self.drains.is_empty() && self.inner.lock().cluster.is_empty();
        let queue = |this: &mut Self, cluster: &str, servers: Vec<String>, reading: Option<Reading>| {
            if this.drains.iter().any(|d| d.cluster == cluster) {
                return;
            }
            tracing::info!(from = %cluster, to = %b.cluster, "route moved: draining the cluster it left first");
            this.inner.metrics.switches.get_or_create(&this.inner.metrics.labels).inc();
            let mut s = this.inner.lock();
            s.state.drained = false;
            s.state.drained_cluster = None;
            drop(s);
            this.drains.push_back(Drain::new(cluster, servers, reading));
        };
        if let Some(r) = self.reading.take() {
            if r.cluster == b.cluster {
                self.reading = Some(Reading { generation: b.generation, ..r });
            } else {
                let cluster = r.cluster.clone();
                queue(self, &cluster, Vec::new(), Some(r));
            }
        }
        if let Some(last) = self.drains.back().map(|d| d.cluster.clone()) {
            // Every cluster left after the last one queued (a second switch during a drain).
            match chain.iter().position(|(c, _)| *c == last) {
                Some(i) => {
                    for (c, servers) in chain[i + 1..].to_vec() {
                        queue(self, &c, servers, None);
                    }
                }
                None => {
                    if let Some((c, servers)) = chain.last().filter(|_| switching).cloned() {
                        queue(self, &c, servers, None);
                    }
                }
            }
        } else if fresh && switching {
            // Started during a switch: the cluster it leaves is drained first.
            if let Some((c, servers)) = chain.last().cloned() {
                queue(self, &c, servers, None);
            }
        }
        // Servers for a drain that has none yet.
        for d in self.drains.iter_mut().filter(|d| d.servers.is_empty()) {
            if let Some((_, servers)) = chain.iter().find(|(c, _)| *c == d.cluster) {
                d.servers = servers.clone();
            }
        }
        // A drain may take its ends unless its cluster's producers are still being switched off it.
        for d in self.drains.iter_mut() {
            let switching_off = b.phase == RoutePhase::Switching && b.previous.as_ref().is_some_and(|p| p.cluster == d.cluster);
            if !switching_off && d.sealed_at.is_none() {
                d.sealed_at = Some(Instant::now());
            }
        }
    }

    /// The next record, waiting up to `timeout`; `None` when there is none yet (or no binding).
    pub fn poll(&mut self, timeout: Duration) -> Option<ConsumedRecord> {
        self.store_handed();
        self.follow();
        if !self.drains.is_empty() {
            return self.poll_drain(timeout);
        }
        let Some(binding) = self.inner.lock().latest.clone() else {
            // No binding yet (the fleet manager not answered, no cache): wait a little rather
            // than have a caller's poll loop spin a core.
            std::thread::sleep(timeout.min(Duration::from_millis(50)));
            return None;
        };
        if self.reading.is_none() {
            match self.connect(&binding.cluster, &binding.bootstrap_servers, binding.generation) {
                Ok(r) => {
                    let mut s = self.inner.lock();
                    s.generation = binding.generation;
                    s.cluster = binding.cluster.clone();
                    drop(s);
                    self.inner.metrics.generation.get_or_create(&self.inner.metrics.labels).set(binding.generation);
                    self.reading = Some(r);
                }
                Err(e) => {
                    self.inner.lock().last_error = Some(format!("cannot consume from {}: {e}", binding.cluster));
                    std::thread::sleep(timeout.min(Duration::from_millis(100)));
                    return None;
                }
            }
        }
        self.inner.lock().generation = binding.generation;
        self.update_lag();
        let reading = self.reading.as_mut()?;
        let record = take_record(reading, timeout, &self.inner)?;
        self.handed = Some((record.cluster.clone(), record.topic.clone(), record.partition, record.offset));
        Some(record)
    }

    /// The lag (records between position and end, summed), read every few seconds off the
    /// caller's thread.
    fn update_lag(&mut self) {
        if let Some(l) = &self.lag {
            if let Some(found) = l.take() {
                self.lag = None;
                if let Some(lag) = found {
                    self.inner.lock().state.lag = lag;
                }
            }
        }
        if self.lag.is_some() || self.lag_at.elapsed() < Duration::from_secs(5) {
            return;
        }
        self.lag_at = Instant::now();
        let Some(r) = &self.reading else { return };
        let (consumer, next) = (r.consumer.clone(), r.next.clone());
        self.lag = Pending::start("fleet-consumer-lag", move || {
            let assigned = consumer.assignment().ok()?;
            let parts: Vec<(String, i32)> = assigned.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect();
            let ends = ends_of(&consumer, &parts, Duration::from_secs(2)).ok()?;
            let position = consumer.position().ok();
            let mut total = 0u64;
            for (tp, (_, high)) in &ends {
                let pos = next.get(tp).copied().unwrap_or(-1).max(
                    position.as_ref().and_then(|p| p.find_partition(&tp.0, tp.1)).and_then(|e| e.offset().to_raw()).unwrap_or(-1),
                );
                if pos >= 0 && *high > pos {
                    total += (*high - pos) as u64;
                }
            }
            Some(total)
        });
    }

    fn poll_drain(&mut self, timeout: Duration) -> Option<ConsumedRecord> {
        let deadline = self.inner.config.consumer_drain_timeout;
        let topics = self.inner.config.topics.clone();
        let inner = self.inner.clone();
        let drain = self.drains.front_mut()?;
        {
            let mut s = inner.lock();
            s.state.draining = Some(drain.cluster.clone());
            s.cluster = drain.cluster.clone();
        }
        if drain.reading.is_none() {
            if drain.servers.is_empty() {
                // Its servers are not known (it may be down): nothing can be read from it.
                if drain.began.elapsed() >= deadline {
                    return self.give_up("its brokers could not be listed");
                }
                std::thread::sleep(timeout.min(Duration::from_millis(100)));
                return None;
            }
            let (cluster, servers) = (drain.cluster.clone(), drain.servers.clone());
            let generation = inner.lock().generation;
            let connected = {
                let this: &FleetConsumer = self;
                this.connect(&cluster, &servers, generation)
            };
            let drain = self.drains.front_mut()?;
            match connected {
                Ok(r) => drain.reading = Some(r),
                Err(e) => {
                    inner.lock().last_error = Some(format!("cannot read {cluster} to drain it: {e}"));
                    return None;
                }
            }
        }
        let drain = self.drains.front_mut()?;
        // Answers of checks run off this thread.
        if let Some(answer) = drain.check.as_ref().and_then(Pending::take) {
            drain.check = None;
            match answer {
                Check::Ends(Ok(ends)) => {
                    tracing::info!(cluster = %drain.cluster, partitions = ends.len(), "end offsets taken after the seal; the group reads up to them");
                    drain.targets = Some(ends);
                }
                Check::Ends(Err(e)) => tracing::warn!(cluster = %drain.cluster, error = %e, "end offsets unknown; asked again"),
                Check::Committed(Ok((committed, ends))) => {
                    let targets = drain.targets.clone().unwrap_or_default();
                    let reached = targets.iter().all(|(tp, (low, end))| end <= low || committed.get(tp).is_some_and(|c| c >= end));
                    let grew = ends.iter().any(|(tp, (_, end))| targets.get(tp).is_none_or(|(_, t)| end > t));
                    if reached && (!grew || drain.extended >= 3) {
                        if grew {
                            tracing::warn!(cluster = %drain.cluster, "the cluster is still written to (not sealed): finished at the ends taken");
                        }
                        return self.finish_drain();
                    }
                    if grew && reached {
                        tracing::info!(cluster = %drain.cluster, "the ends moved since they were taken: reading up to the new ones");
                        drain.extended += 1;
                        drain.targets = Some(ends);
                    }
                }
                Check::Committed(Err(e)) => tracing::debug!(cluster = %drain.cluster, error = %e, "committed offsets unknown; asked again"),
            }
        }
        let drain = self.drains.front_mut()?;
        if let Some(sealed) = drain.sealed_at {
            if sealed.elapsed() >= deadline {
                return self.give_up("its deadline passed");
            }
            let due = drain.checked_at.is_none_or(|at| at.elapsed() >= Duration::from_millis(500));
            if drain.check.is_none() && due {
                drain.checked_at = Some(Instant::now());
                if let Some(r) = &drain.reading {
                    let consumer = r.consumer.clone();
                    let topics = topics.clone();
                    let targets = drain.targets.clone();
                    drain.check = Pending::start("fleet-consumer-drain", move || check(&consumer, &topics, targets));
                }
            }
        }
        let reading = drain.reading.as_mut()?;
        let record = take_record(reading, timeout.min(Duration::from_millis(100)), &inner)?;
        self.handed = Some((record.cluster.clone(), record.topic.clone(), record.partition, record.offset));
        Some(record)
    }

    fn finish_drain(&mut self) -> Option<ConsumedRecord> {
        self.store_handed();
        let drain = self.drains.pop_front()?;
        if let Some(r) = &drain.reading {
            match r.consumer.commit_consumer_state(CommitMode::Sync) {
                // Nothing read since the last commit: nothing to commit.
                Err(KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) | Ok(()) => {}
                Err(e) => tracing::warn!(cluster = %drain.cluster, error = %e, "final commit on the old cluster failed"),
            }
        }
        tracing::info!(cluster = %drain.cluster, "drained: the group has committed every partition to its end");
        let mut s = self.inner.lock();
        s.state.drained = true;
        s.state.drained_cluster = Some(drain.cluster.clone());
        s.state.draining = None;
        drop(s);
        drop(drain);
        self.inner.report_now.notify_one();
        None
    }

    fn give_up(&mut self, why: &str) -> Option<ConsumedRecord> {
        self.store_handed();
        let drain = self.drains.pop_front()?;
        tracing::error!(cluster = %drain.cluster, why, "gave up draining a cluster the route left: records there may be unread");
        if let Some(r) = &drain.reading {
            let _ = r.consumer.commit_consumer_state(CommitMode::Sync);
        }
        let mut s = self.inner.lock();
        s.state.drained = false;
        s.state.drained_cluster = None;
        s.state.draining = None;
        s.last_error = Some(format!("gave up draining {}: {why}", drain.cluster));
        drop(s);
        self.inner.report_now.notify_one();
        None
    }

    /// Stores the last record's offset and commits what was read, on every cluster it reads.
    pub fn commit(&mut self) -> Result<(), KafkaError> {
        self.store_handed();
        for r in self.reading.iter().chain(self.drains.iter().filter_map(|d| d.reading.as_ref())) {
            match r.consumer.commit_consumer_state(CommitMode::Sync) {
                Err(KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) | Ok(()) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The records as a `Stream` (for async callers): each item is what `poll` gives.
    pub fn stream(&mut self) -> RecordStream<'_> {
        RecordStream { consumer: self, sleep: None }
    }

    /// Stores the last record's offset and commits; what a restarted consumer resumes from.
    pub fn close(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        if let Err(e) = self.commit() {
            tracing::debug!(error = %e, "commit at close");
        }
        if let Some(f) = self.follower.take() {
            f.stop(Duration::from_millis(200));
        }
    }
}

impl Drop for FleetConsumer {
    fn drop(&mut self) {
        if self.follower.is_some() {
            self.finish();
        }
    }
}

/// [`FleetConsumer::stream`]: polls without blocking, and sleeps briefly when nothing came.
pub struct RecordStream<'a> {
    consumer: &'a mut FleetConsumer,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl futures_core::Stream for RecordStream<'_> {
    type Item = ConsumedRecord;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ConsumedRecord>> {
        loop {
            if let Some(s) = self.sleep.as_mut() {
                if std::future::Future::poll(s.as_mut(), cx).is_pending() {
                    return Poll::Pending;
                }
                self.sleep = None;
            }
            if let Some(r) = self.consumer.poll(Duration::ZERO) {
                return Poll::Ready(Some(r));
            }
            self.sleep = Some(Box::pin(tokio::time::sleep(Duration::from_millis(5))));
        }
    }
}

fn take_record(reading: &mut Reading, timeout: Duration, inner: &Inner) -> Option<ConsumedRecord> {
    use rdkafka::message::Headers;
    match reading.consumer.poll(timeout)? {
        Ok(m) => {
            let record = ConsumedRecord {
                cluster: reading.cluster.clone(),
                generation: reading.generation,
                topic: m.topic().to_string(),
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                timestamp: m.timestamp().to_millis(),
                headers: m.headers().map(|h| h.iter().map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec).unwrap_or_default())).collect()).unwrap_or_default(),
            };
            reading.next.insert((record.topic.clone(), record.partition), record.offset + 1);
            inner.consumed.fetch_add(1, Ordering::Relaxed);
            inner.metrics.records.get_or_create(&inner.metrics.cluster(&record.cluster)).inc();
            Some(record)
        }
        Err(e) => {
            tracing::debug!(error = %e, "consumer error");
            None
        }
    }
}

/// Every partition of `topics` on the consumer's cluster (from its metadata).
fn partitions_of(consumer: &BaseConsumer, topics: &[String], timeout: Duration) -> Result<Vec<(String, i32)>, String> {
    let mut out = Vec::new();
    for t in topics {
        let meta = consumer.fetch_metadata(Some(t), timeout).map_err(|e| format!("metadata of {t}: {e}"))?;
        for topic in meta.topics() {
            if let Some(e) = topic.error() {
                return Err(format!("metadata of {t}: {e:?}"));
            }
            out.extend(topic.partitions().iter().map(|p| (topic.name().to_string(), p.id())));
        }
    }
    Ok(out)
}

/// Start and end offsets of each partition, in one ListOffsets round per end.
fn ends_of(consumer: &BaseConsumer, parts: &[(String, i32)], timeout: Duration) -> Result<Ends, String> {
    let ask = |at: Offset| -> Result<BTreeMap<(String, i32), i64>, String> {
        let mut tpl = TopicPartitionList::new();
        for (t, p) in parts {
            tpl.add_partition_offset(t, *p, at).map_err(|e| e.to_string())?;
        }
        let found = consumer.offsets_for_times(tpl, timeout).map_err(|e| e.to_string())?;
        let mut out = BTreeMap::new();
        for e in found.elements() {
            if let Err(err) = e.error() {
                return Err(format!("{}-{}: {err}", e.topic(), e.partition()));
            }
            match e.offset().to_raw() {
                Some(o) if o >= 0 => {
                    out.insert((e.topic().to_string(), e.partition()), o);
                }
                other => return Err(format!("{}-{}: no offset ({other:?})", e.topic(), e.partition())),
            }
        }
        Ok(out)
    };
    let ends = ask(Offset::End)?;
    let starts = ask(Offset::Beginning)?;
    // Unknown is not empty: every partition must have both.
    parts
        .iter()
        .map(|tp| match (starts.get(tp), ends.get(tp)) {
            (Some(s), Some(e)) => Ok((tp.clone(), (*s, *e))),
            _ => Err(format!("{}-{}: offsets missing", tp.0, tp.1)),
        })
        .collect()
}

/// A drain's check: the ends (first), else the group's committed offsets and the ends again.
fn check(consumer: &BaseConsumer, topics: &[String], targets: Option<Ends>) -> Check {
    let timeout = Duration::from_secs(5);
    let ends = partitions_of(consumer, topics, timeout).and_then(|parts| ends_of(consumer, &parts, timeout));
    let Some(targets) = targets else { return Check::Ends(ends) };
    // Ours first: what this member read counts for the group.
    let _ = consumer.commit_consumer_state(CommitMode::Sync);
    let mut tpl = TopicPartitionList::new();
    for (t, p) in targets.keys() {
        if let Err(e) = tpl.add_partition(t, *p).set_offset(Offset::Invalid) {
            return Check::Committed(Err(e.to_string()));
        }
    }
    let committed = consumer.committed_offsets(tpl, timeout).map_err(|e| e.to_string()).map(|found| {
        found.elements().iter().filter_map(|e| e.offset().to_raw().filter(|o| *o >= 0).map(|o| ((e.topic().to_string(), e.partition()), o))).collect::<BTreeMap<_, _>>()
    });
    Check::Committed(committed.and_then(|c| ends.map(|e| (c, e))))
}
