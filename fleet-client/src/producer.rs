//! `FleetProducer`: sends to whichever cluster the route is bound to, never blocking.
//!
//! Every accepted record counts against a bounded buffer until a cluster acknowledges it or it
//! fails. With a binding, `send` hands the record straight to librdkafka (non-blocking); without
//! one (or during an ordered switch) it waits in the buffer. A switch makes a producer for the new
//! cluster, warms its metadata, sends new records to it, and gives the old one `drain_timeout` to
//! deliver: what the old cluster did not persist comes back through the delivery callback and is
//! re-sent to the new one; a record whose fate is unknown is re-sent and counted as a possible
//! duplicate (at-least-once).

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use fleet_api::client::{ClientCounters, ClientReport, ClientRole, RouteBinding};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Message};

use crate::config::{ClientConfig, ConfigError, FullBuffer};
use crate::follow::{self, Follower, Follows};
use crate::metrics::ClientMetrics;
use prometheus_client::metrics::counter::Counter;

/// A record for a topic of the route's cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Shared, so a hot loop reuses one name: `Record::to(&topic, payload)`.
    pub topic: Arc<str>,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
}

impl Record {
    pub fn new(topic: &str, payload: impl Into<Vec<u8>>) -> Self {
        Self { topic: Arc::from(topic), key: None, payload: payload.into() }
    }
    /// A record for a topic name held by the caller (no allocation for the name).
    pub fn to(topic: &Arc<str>, payload: impl Into<Vec<u8>>) -> Self {
        Self { topic: topic.clone(), key: None, payload: payload.into() }
    }
    pub fn with_key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.key = Some(key.into());
        self
    }
    fn size(&self) -> usize {
        self.topic.len() + self.key.as_ref().map_or(0, Vec::len) + self.payload.len()
    }
}

/// `send` refused the record; it never waits.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The buffer is full. The record is handed back with `FullBuffer::Return`.
    #[error("buffer full ({records} records, {bytes} bytes held): record {}", if .record.is_some() { "returned" } else { "dropped" })]
    Full { records: usize, bytes: usize, record: Option<Box<Record>> },
    #[error("the producer is closed")]
    Closed,
}

/// Where a record ended up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    pub cluster: String,
    pub generation: i64,
    pub partition: i32,
    pub offset: i64,
}

#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeliveryError {
    #[error("failed: {0}")]
    Failed(String),
    #[error("the producer closed before the record was acknowledged")]
    Closed,
}

/// A record's delivery result; await it (or drop it: the record is sent either way).
pub struct Delivery(tokio::sync::oneshot::Receiver<Result<Delivered, DeliveryError>>);

impl Future for Delivery {
    type Output = Result<Delivered, DeliveryError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|r| r.unwrap_or(Err(DeliveryError::Closed)))
    }
}

type Tracker = tokio::sync::oneshot::Sender<Result<Delivered, DeliveryError>>;

/// An accepted record until it resolves. One allocation per record: librdkafka's delivery
/// callback gets it back as its opaque while `send` borrowed the payload from a second handle.
struct PendingRecord {
    record: Record,
    size: usize,
    tracker: Option<Mutex<Option<Tracker>>>,
    /// Re-sent after a first copy whose fate is unknown.
    maybe_duplicate: std::sync::atomic::AtomicBool,
}

type Pending = Arc<PendingRecord>;

impl PendingRecord {
    fn take_tracker(&self) -> Option<Tracker> {
        self.tracker.as_ref().and_then(|t| t.lock().unwrap_or_else(|p| p.into_inner()).take())
    }
}

type KafkaProducer = ThreadedProducer<LinkContext>;

/// One cluster's producers (one per `acks` level in use), for one binding.
struct Link {
    id: u64,
    binding: RouteBinding,
    producers: BTreeMap<String, KafkaProducer>,
    /// `acks` when the topic is not in the binding, or for every topic when configured.
    default_acks: String,
    records: Counter,
}

impl Link {
    /// The producer for a topic's `acks` (no allocation: this is on `send`'s path).
    fn producer_for(&self, topic: &str) -> Option<&KafkaProducer> {
        let acks = match self.producers.len() {
            1 => None,
            _ => self.binding.topics.get(topic).map(|t| t.acks.as_str()),
        };
        self.producers.get(acks.unwrap_or(&self.default_acks)).or_else(|| self.producers.values().next())
    }

    fn in_flight(&self) -> i32 {
        self.producers.values().map(|p| p.in_flight_count()).sum()
    }
    fn fatal(&self) -> Option<String> {
        self.producers.values().find_map(|p| p.client().fatal_error()).map(|(code, reason)| format!("{code:?}: {reason}"))
    }
}

struct LinkContext {
    inner: Weak<Inner>,
    link: u64,
    cluster: String,
    generation: i64,
    /// This cluster's counter, resolved once (not per record).
    acknowledged: Counter,
}

impl ClientContext for LinkContext {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(cluster = %self.cluster, error = %error, reason, "librdkafka");
    }
}

impl ProducerContext for LinkContext {
    type DeliveryOpaque = Pending;
    fn delivery(&self, result: &DeliveryResult<'_>, pending: Pending) {
        let Some(inner) = self.inner.upgrade() else { return };
        match result {
            Ok(m) => inner.acknowledged(pending, &self.acknowledged, || Delivered {
                cluster: self.cluster.clone(),
                generation: self.generation,
                partition: m.partition(),
                offset: m.offset(),
            }),
            Err((e, _)) => inner.not_delivered(pending, e, self.link),
        }
    }
}

#[derive(Default)]
struct State {
    active: Option<Arc<Link>>,
    /// Old clusters' producers delivering what they hold, until their deadline.
    draining: Vec<(Arc<Link>, Instant)>,
    /// Re-sends, before `pending`.
    retry: VecDeque<Pending>,
    pending: VecDeque<Pending>,
    /// An ordered switch is waiting for the old cluster: nothing is handed over.
    held: bool,
    /// The newest binding, not applied yet (applied on the follower's thread).
    next: Option<RouteBinding>,
    binding: Option<RouteBinding>,
    closed: bool,
    last_error: Option<String>,
    /// The active link could not be made: when to try again.
    retry_link_at: Option<Instant>,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    acknowledged: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    possible_duplicates: AtomicU64,
}

struct Inner {
    config: ClientConfig,
    instance: String,
    state: Mutex<State>,
    counters: Counters,
    /// Records and bytes accepted and not yet resolved: atomics, so a delivery takes no lock.
    buffered: AtomicUsize,
    buffered_bytes: AtomicUsize,
    metrics: ClientMetrics,
    dropped: Counter,
    next_link: AtomicU64,
    me: Weak<Inner>,
}

/// A producer that follows a route. Cheap to share behind an `Arc`; `send` takes `&self`.
pub struct FleetProducer {
    inner: Arc<Inner>,
    follower: Option<Follower>,
}

impl FleetProducer {
    /// Starts following the route and returns at once: no network I/O happens on this thread,
    /// so neither a fleet manager nor Kafka outage delays it.
    pub fn new(config: ClientConfig) -> Result<Self, ConfigError> {
        config.check()?;
        let instance = config.instance_name("producer");
        let metrics = ClientMetrics::new(&config.route, "producer");
        let dropped = metrics.dropped.get_or_create(&metrics.labels).clone();
        let inner = Arc::new_cyclic(|me| Inner {
            instance,
            state: Mutex::new(State::default()),
            counters: Counters::default(),
            buffered: AtomicUsize::new(0),
            buffered_bytes: AtomicUsize::new(0),
            metrics,
            dropped,
            next_link: AtomicU64::new(1),
            me: me.clone(),
            config: config.clone(),
        });
        let follower = follow::spawn(config, inner.clone(), Duration::from_millis(20))
            .map_err(|e| ConfigError { field: "route", message: format!("cannot start the follower thread: {e}") })?;
        Ok(Self { inner, follower: Some(follower) })
    }

    /// Accepts a record or refuses it at once (full buffer, closed); never waits.
    pub fn send(&self, record: Record) -> Result<(), SendError> {
        self.inner.accept(record, None)
    }

    /// As `send`, with the record's delivery result.
    pub fn send_tracked(&self, record: Record) -> Result<Delivery, SendError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.inner.accept(record, Some(tx))?;
        Ok(Delivery(rx))
    }

    pub fn counters(&self) -> ClientCounters {
        self.inner.counters()
    }

    /// The binding in use (`None` before the first one).
    pub fn binding(&self) -> Option<RouteBinding> {
        self.inner.lock().binding.clone()
    }

    /// Why the last binding fetch (or producer) failed, if it did.
    pub fn last_error(&self) -> Option<String> {
        self.inner.lock().last_error.clone()
    }

    pub fn metrics(&self) -> &ClientMetrics {
        &self.inner.metrics
    }

    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    /// Stops accepting records and waits up to `timeout` for what is buffered to be
    /// acknowledged; returns how many records were still buffered (they fail as `Closed`).
    pub fn close(mut self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let buffered = self.inner.buffered.load(Ordering::SeqCst);
            if buffered == 0 || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.shutdown()
    }

    fn shutdown(&mut self) -> usize {
        self.inner.lock().closed = true;
        drop(self.follower.take());
        let (links, waiting) = {
            let mut st = self.inner.lock();
            let mut links: Vec<Arc<Link>> = st.draining.drain(..).map(|(l, _)| l).collect();
            links.extend(st.active.take());
            let st = &mut *st;
            let waiting: Vec<Pending> = st.retry.drain(..).chain(st.pending.drain(..)).collect();
            (links, waiting)
        };
        // Dropping a producer purges it; its callbacks see `closed` and fail the records.
        drop(links);
        for p in waiting {
            self.inner.finish(p, Err(DeliveryError::Closed));
        }
        self.inner.buffered.load(Ordering::SeqCst)
    }
}

impl Drop for FleetProducer {
    fn drop(&mut self) {
        if self.follower.is_some() {
            self.shutdown();
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn counters(&self) -> ClientCounters {
        let c = &self.counters;
        ClientCounters {
            sent: c.sent.load(Ordering::Relaxed),
            acknowledged: c.acknowledged.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            buffered: self.buffered.load(Ordering::Relaxed) as u64,
            possible_duplicates: c.possible_duplicates.load(Ordering::Relaxed),
            consumed: 0,
        }
    }

    fn accept(&self, record: Record, tracker: Option<tokio::sync::oneshot::Sender<Result<Delivered, DeliveryError>>>) -> Result<(), SendError> {
        let size = record.size();
        let records = self.buffered.fetch_add(1, Ordering::SeqCst);
        let bytes = self.buffered_bytes.fetch_add(size, Ordering::SeqCst);
        if records >= self.config.buffer_records || bytes + size > self.config.buffer_bytes {
            self.buffered.fetch_sub(1, Ordering::SeqCst);
            self.buffered_bytes.fetch_sub(size, Ordering::SeqCst);
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            self.dropped.inc();
            let record = (self.config.full_buffer == FullBuffer::Return).then(|| Box::new(record));
            return Err(SendError::Full { records, bytes, record });
        }
        let mut st = self.lock();
        if st.closed {
            drop(st);
            self.buffered.fetch_sub(1, Ordering::SeqCst);
            self.buffered_bytes.fetch_sub(size, Ordering::SeqCst);
            return Err(SendError::Closed);
        }
        self.counters.sent.fetch_add(1, Ordering::Relaxed);
        let pending = Arc::new(PendingRecord { record, size, tracker: tracker.map(|t| Mutex::new(Some(t))), maybe_duplicate: Default::default() });
        let direct = st.pending.is_empty() && st.retry.is_empty() && !st.held;
        match (&st.active, direct) {
            (Some(link), true) => {
                let link = link.clone();
                match self.hand(&link, pending) {
                    Ok(()) => {}
                    Err((p, None)) => st.pending.push_back(p),
                    Err((p, Some(why))) => {
                        drop(st);
                        self.fail(p, why);
                    }
                }
            }
            _ => st.pending.push_back(pending),
        }
        Ok(())
    }


    /// Gives a record to librdkafka (non-blocking). Handed back when its queue is full (no
    /// reason) or when librdkafka refuses the record itself (the reason: the caller fails it once
    /// the state lock is released).
    fn hand(&self, link: &Link, pending: Pending) -> Result<(), (Pending, Option<String>)> {
        let Some(producer) = link.producer_for(&pending.record.topic) else { return Err((pending, None)) };
        let held = pending.clone();
        let record = &held.record;
        let mut base = BaseRecord::with_opaque_to(&record.topic, pending).payload(&record.payload[..]);
        if let Some(k) = &record.key {
            base = base.key(&k[..]);
        }
        match producer.send(base) {
            Ok(()) => {
                link.records.inc();
                Ok(())
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), base)) => Err((base.delivery_opaque, None)),
            Err((e, base)) => Err((base.delivery_opaque, Some(e.to_string()))),
        }
    }

    fn release(&self, pending: &Pending) {
        self.buffered.fetch_sub(1, Ordering::SeqCst);
        self.buffered_bytes.fetch_sub(pending.size, Ordering::SeqCst);
    }

    fn finish(&self, pending: Pending, outcome: Result<Delivered, DeliveryError>) {
        self.release(&pending);
        if let Some(t) = pending.take_tracker() {
            let _ = t.send(outcome);
        }
    }

    fn fail(&self, pending: Pending, why: String) {
        self.counters.failed.fetch_add(1, Ordering::Relaxed);
        self.metrics.failed.get_or_create(&self.metrics.labels).inc();
        self.finish(pending, Err(DeliveryError::Failed(why)));
    }

    fn acknowledged(&self, pending: Pending, acknowledged: &Counter, delivered: impl FnOnce() -> Delivered) {
        self.counters.acknowledged.fetch_add(1, Ordering::Relaxed);
        acknowledged.inc();
        self.release(&pending);
        if let Some(t) = pending.take_tracker() {
            let _ = t.send(Ok(delivered()));
        }
    }

    /// A record a cluster did not acknowledge. Purged (a switch, a recreated producer) or timed
    /// out on a cluster we moved away from: re-sent, counted as a possible duplicate when it may
    /// have been written. Otherwise it failed.
    fn not_delivered(&self, pending: Pending, error: &KafkaError, link: u64) {
        let code = error.rdkafka_error_code();
        let mut st = self.lock();
        if st.closed {
            drop(st);
            self.finish(pending, Err(DeliveryError::Closed));
            return;
        }
        let current = st.active.as_ref().is_some_and(|l| l.id == link);
        let unknown_fate = matches!(code, Some(RDKafkaErrorCode::PurgeInflight | RDKafkaErrorCode::MessageTimedOut));
        let resend = matches!(code, Some(RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight)) || !current;
        if resend {
            if unknown_fate && !pending.maybe_duplicate.swap(true, Ordering::Relaxed) {
                self.counters.possible_duplicates.fetch_add(1, Ordering::Relaxed);
                self.metrics.possible_duplicates.get_or_create(&self.metrics.labels).inc();
            }
            st.retry.push_back(pending);
        } else {
            drop(st);
            self.fail(pending, error.to_string());
        }
    }

    /// A producer per `acks` level the binding's topics use (creating one does no network I/O).
    fn make_link(&self, binding: &RouteBinding) -> Result<Link, String> {
        let id = self.next_link.fetch_add(1, Ordering::Relaxed);
        let mut levels: Vec<String> = match &self.config.acks {
            Some(a) => vec![a.clone()],
            None => binding.topics.values().map(|t| t.acks.clone()).chain(["all".to_string()]).collect(),
        };
        levels.sort();
        levels.dedup();
        let mut producers = BTreeMap::new();
        for acks in levels {
            let mut c = rdkafka::ClientConfig::new();
            c.set("bootstrap.servers", binding.bootstrap_servers.join(","))
                .set("client.id", format!("{}-{}", self.instance, binding.cluster))
                .set("acks", &acks)
                // The source design's tuning: stick to a partition for a while, batch for 100 ms.
                .set("linger.ms", "100")
                .set("sticky.partitioning.linger.ms", "100")
                .set("compression.type", "lz4")
                // Java's partitioner, so keyed records land where Java producers put them.
                .set("partitioner", "murmur2_random")
                .set("enable.idempotence", if acks == "all" { "true" } else { "false" })
                .set("message.timeout.ms", self.config.delivery_timeout.as_millis().to_string())
                .set("queue.buffering.max.messages", self.config.buffer_records.clamp(1000, 10_000_000).to_string())
                .set("queue.buffering.max.kbytes", (self.config.buffer_bytes / 1024).clamp(1024, 2_097_151).to_string());
            for (k, v) in &self.config.kafka {
                c.set(k, v);
            }
            let context = LinkContext {
                inner: self.me.clone(),
                link: id,
                cluster: binding.cluster.clone(),
                generation: binding.generation,
                acknowledged: self.metrics.acknowledged.get_or_create(&self.metrics.cluster(&binding.cluster)).clone(),
            };
            let p: KafkaProducer = c.create_with_context(context).map_err(|e| format!("cannot create a producer for {}: {e}", binding.cluster))?;
            producers.insert(acks, p);
        }
        Ok(Link {
            id,
            binding: binding.clone(),
            producers,
            default_acks: self.config.acks.clone().unwrap_or_else(|| "all".into()),
            records: self.metrics.records.get_or_create(&self.metrics.cluster(&binding.cluster)).clone(),
        })
    }

    /// Hands waiting records to the active cluster, re-sends first.
    fn drain_waiting(&self) {
        // In chunks, the lock released between them: after a switch thousands of records may
        // wait, and `send` must not wait behind all of them.
        const CHUNK: usize = 256;
        loop {
            let mut st = self.lock();
            let Some(link) = st.active.clone().filter(|_| !st.held) else { return };
            let mut refused = Vec::new();
            let mut handed = 0;
            let mut queue_full = false;
            while handed < CHUNK {
                let Some(p) = st.retry.pop_front().or_else(|| st.pending.pop_front()) else { break };
                handed += 1;
                match self.hand(&link, p) {
                    Ok(()) => {}
                    Err((p, None)) => {
                        st.retry.push_front(p);
                        queue_full = true;
                        break;
                    }
                    Err((p, Some(why))) => refused.push((p, why)),
                }
            }
            let more = !queue_full && handed == CHUNK && !(st.retry.is_empty() && st.pending.is_empty());
            drop(st);
            for (p, why) in refused {
                self.fail(p, why);
            }
            if !more {
                return;
            }
        }
    }

    fn switch(&self, binding: RouteBinding) {
        let span = tracing::info_span!("switch", route = %binding.route, cluster = %binding.cluster, generation = binding.generation);
        let _enter = span.enter();
        let same_cluster = {
            let st = self.lock();
            st.active.as_ref().is_some_and(|l| l.binding.cluster == binding.cluster && l.binding.bootstrap_servers == binding.bootstrap_servers)
        };
        if same_cluster {
            self.lock().binding = Some(binding.clone());
            self.metrics.generation.get_or_create(&self.metrics.labels).set(binding.generation);
            return;
        }
        let link = match self.make_link(&binding) {
            Ok(l) => Arc::new(l),
            Err(e) => {
                tracing::warn!(error = %e, "switch postponed");
                let mut st = self.lock();
                st.last_error = Some(e);
                st.next = Some(binding);
                st.retry_link_at = Some(Instant::now() + Duration::from_secs(1));
                return;
            }
        };
        // Metadata first, so the first records do not wait on it (and a dead cluster shows up here).
        if let Some(p) = link.producers.values().next() {
            if let Err(e) = p.client().fetch_metadata(None, Duration::from_secs(5)) {
                tracing::warn!(error = %e, "the new cluster's metadata could not be read; switching anyway");
            }
        }
        let old = if self.config.ordered_switch {
            let old = {
                let mut st = self.lock();
                st.held = true;
                st.active.take()
            };
            if let Some(old) = &old {
                let deadline = Instant::now() + self.config.drain_timeout;
                while old.in_flight() > 0 && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            // Purges what is left (re-sent to the new cluster, first).
            drop(old);
            None
        } else {
            let mut st = self.lock();
            st.active.take()
        };
        {
            let mut st = self.lock();
            if let Some(old) = old {
                let deadline = Instant::now() + self.config.drain_timeout;
                st.draining.push((old, deadline));
            }
            st.active = Some(link);
            st.held = false;
            st.binding = Some(binding.clone());
            st.last_error = None;
        }
        self.metrics.generation.get_or_create(&self.metrics.labels).set(binding.generation);
        self.metrics.switches.get_or_create(&self.metrics.labels).inc();
        tracing::info!("producing to the new cluster");
        self.drain_waiting();
    }
}

impl Follows for Inner {
    fn on_binding(&self, binding: RouteBinding, _from_cache: bool) {
        self.lock().next = Some(binding);
        self.tick();
    }

    fn on_error(&self, message: String) {
        self.lock().last_error = Some(message);
    }

    fn report(&self) -> ClientReport {
        let binding = self.lock().binding.clone();
        ClientReport {
            instance: self.instance.clone(),
            route: self.config.route.clone(),
            role: ClientRole::Producer,
            generation: binding.as_ref().map_or(0, |b| b.generation),
            cluster: binding.map(|b| b.cluster).unwrap_or_default(),
            counters: self.counters(),
            consumer: None,
        }
    }

    fn tick(&self) {
        let (next, done, fatal) = {
            let mut st = self.lock();
            let now = Instant::now();
            let next = match st.retry_link_at {
                Some(at) if at > now => None,
                _ => st.next.take(),
            };
            // Old clusters that delivered everything, or ran out of time (dropping purges them).
            let mut done = Vec::new();
            st.draining.retain(|(l, deadline)| {
                let keep = l.in_flight() > 0 && now < *deadline;
                if !keep {
                    done.push(l.clone());
                }
                keep
            });
            let fatal = st.active.as_ref().and_then(|l| l.fatal().map(|f| (l.binding.clone(), f)));
            self.metrics.buffered.get_or_create(&self.metrics.labels).set(self.buffered.load(Ordering::Relaxed) as i64);
            (next, done, fatal)
        };
        drop(done);
        if let Some(b) = next {
            self.switch(b);
        } else if let Some((binding, why)) = fatal {
            // librdkafka gave up on this producer: a fresh one, its records re-sent.
            tracing::error!(cluster = %binding.cluster, error = %why, "producer failed fatally; recreating it");
            let old = self.lock().active.take();
            drop(old);
            self.switch(binding);
        }
        self.drain_waiting();
    }
}
