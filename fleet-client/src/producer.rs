//! `FleetProducer`: sends to whichever cluster the route is bound to, never blocking.
//!
//! A record is handed straight to librdkafka (which copies it) and counts against a bounded
//! buffer until a cluster acknowledges it or it fails; nothing of it is kept here. Only a record
//! that must wait (no binding yet, an ordered switch, librdkafka's queue full) is copied into a
//! queue of this library's own, and a record a cluster did not take is copied back out of its
//! delivery report to be re-sent. Every record ends acknowledged, failed (with Kafka's error
//! code) or re-sent, never silently destroyed:
//!
//! - A switch makes (or takes the warmed) link to the new cluster and sends new records to it;
//!   the old link keeps delivering what it holds for `drain_timeout`, then is purged, and each
//!   purged record is re-sent with its real fate (`rd_kafka_message_status`): not persisted, or
//!   possibly persisted (re-sent and counted as a possible duplicate). A link is dropped only
//!   when librdkafka holds nothing more of it, and the producer reports the old cluster as
//!   drained only then: that is what lets the fleet manager seal it.
//! - A sealed cluster refuses the route's writes (`MESSAGE_TOO_LARGE`): on a link the route has
//!   left, the record is re-sent to the new cluster; on the bound one (this producer has not
//!   heard of the switch) it is held and the binding fetched afresh, then re-sent where that
//!   says, or failed if the binding still names the same cluster.
//! - Topics the binding marks `keyed` (or all, with `ordered_switch`) switch in order: their
//!   records wait until the old links are empty, and re-sends go first. On one cluster, order
//!   per key is kept by idempotence (`acks=all`) or one request in flight (other `acks`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use fleet_api::client::{ClientCounters, ClientReport, ClientRole, ProducerState, RouteBinding, RoutePhase};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, DeliveryResult, Header, Headers, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, PurgeConfig, ThreadedProducer};
use rdkafka::{ClientContext, Message};

use crate::config::{ClientConfig, ConfigError, FullBuffer};
use crate::follow::{self, BindingSource, Follower, Follows};
use crate::metrics::{ClientMetrics, ClusterReports};
use prometheus_client::metrics::counter::Counter;

/// A record for a topic of the route's cluster, borrowed: librdkafka copies what it sends, so
/// nothing is allocated for a record on `send`'s path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub topic: &'a str,
    pub key: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
    /// A partition chosen by the caller (default: Kafka's murmur2 partitioner on the key).
    pub partition: Option<i32>,
    /// Milliseconds since the epoch (default: when librdkafka takes it).
    pub timestamp: Option<i64>,
    pub headers: &'a [(&'a str, &'a [u8])],
}

impl<'a> Record<'a> {
    pub fn new(topic: &'a str, payload: &'a [u8]) -> Self {
        Self { topic, key: None, payload: Some(payload), partition: None, timestamp: None, headers: &[] }
    }
    pub fn with_key(mut self, key: &'a [u8]) -> Self {
        self.key = Some(key);
        self
    }
    pub fn with_partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }
    pub fn with_timestamp(mut self, millis: i64) -> Self {
        self.timestamp = Some(millis);
        self
    }
    pub fn with_headers(mut self, headers: &'a [(&'a str, &'a [u8])]) -> Self {
        self.headers = headers;
        self
    }
    fn size(&self) -> usize {
        self.topic.len() + self.key.map_or(0, <[u8]>::len) + self.payload.map_or(0, <[u8]>::len) + self.headers.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
    }
}

/// `send` refused the record; it never waits. The record stays the caller's.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SendError {
    /// The buffer is full: counted as dropped (`FullBuffer::Drop`) or returned (`Return`).
    #[error("buffer full ({records} records, {bytes} bytes held): record {}", if *.dropped { "dropped" } else { "returned" })]
    Full { records: usize, bytes: usize, dropped: bool },
    #[error("the producer is closed")]
    Closed,
    /// librdkafka refused the record itself (e.g. larger than `message.max.bytes`).
    #[error("refused: {code:?}: {message}")]
    Refused { code: RDKafkaErrorCode, message: String },
}

/// Where a record ended up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    pub cluster: String,
    pub generation: i64,
    pub partition: i32,
    pub offset: i64,
    /// The record's timestamp as the cluster has it (create or log-append time).
    pub timestamp: Option<i64>,
}

#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeliveryError {
    /// A cluster refused it for good, with Kafka's (or librdkafka's) error code.
    #[error("{cluster} refused it: {code:?} ({message})")]
    Kafka { cluster: String, code: RDKafkaErrorCode, message: String },
    /// Not acknowledged within `delivery_timeout`.
    #[error("not acknowledged within the delivery timeout ({0})")]
    TimedOut(String),
    #[error("the producer closed before the record was acknowledged")]
    Closed,
}

impl DeliveryError {
    /// Kafka's (or librdkafka's) error code, when a cluster gave one.
    pub fn code(&self) -> Option<RDKafkaErrorCode> {
        match self {
            DeliveryError::Kafka { code, .. } => Some(*code),
            _ => None,
        }
    }
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

/// What librdkafka carries for a record (its delivery opaque): two flags, a tracker slot and,
/// on 64-bit targets, the record's size (bits 0-1 flags, 2-33 slot + 1, 34-63 size), so a
/// delivery report settles the buffer without asking librdkafka for the record's parts.
/// Untracked records carry no slot, so `send` allocates nothing for them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tag(usize);

impl Tag {
    const DUPLICATE: usize = 1;
    const PARTITIONED: usize = 2;
    const SLOT_BITS: u32 = 32;
    const SIZE_SHIFT: u32 = 34;
    fn new(slot: Option<usize>, partitioned: bool, size: usize) -> Self {
        let flags = if partitioned { Self::PARTITIONED } else { 0 };
        let slot_bits = slot.map_or(0, |s| (s + 1) << 2);
        // The size when it fits (0: not carried, read from the report instead).
        let size_bits = if usize::BITS >= 64 && size < (1 << (usize::BITS - Self::SIZE_SHIFT).min(30)) && slot.is_none_or(|s| s + 1 < (1 << Self::SLOT_BITS)) {
            size << Self::SIZE_SHIFT.min(usize::BITS - 1)
        } else {
            0
        };
        Tag(size_bits | slot_bits | flags)
    }
    fn slot(self) -> Option<usize> {
        let raw = if usize::BITS >= 64 { (self.0 >> 2) & ((1 << Self::SLOT_BITS) - 1) } else { self.0 >> 2 };
        raw.checked_sub(1)
    }
    /// The record's size as the buffer counts it, from the tag or else from librdkafka's report.
    fn size_of(self, m: &BorrowedMessage<'_>) -> usize {
        match if usize::BITS >= 64 { self.0 >> Self::SIZE_SHIFT.min(usize::BITS - 1) } else { 0 } {
            0 => report_size(m),
            size => size,
        }
    }
    fn maybe_duplicate(self) -> bool {
        self.0 & Self::DUPLICATE != 0
    }
    fn partitioned(self) -> bool {
        self.0 & Self::PARTITIONED != 0
    }
    fn with_duplicate(self) -> Self {
        Tag(self.0 | Self::DUPLICATE)
    }
}

/// Delivery trackers of `send_tracked` records, by slot.
#[derive(Default)]
struct Slots {
    entries: Vec<Option<Tracker>>,
    free: Vec<usize>,
}

impl Slots {
    fn insert(&mut self, t: Tracker) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.entries[i] = Some(t);
                i
            }
            None => {
                self.entries.push(Some(t));
                self.entries.len() - 1
            }
        }
    }
    fn take(&mut self, i: usize) -> Option<Tracker> {
        let t = self.entries.get_mut(i)?.take();
        if t.is_some() {
            self.free.push(i);
        }
        t
    }
}

/// A record this library holds (waiting to be handed over, or taken back to be re-sent).
#[derive(Clone, Debug)]
struct Owned {
    topic: String,
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    partition: Option<i32>,
    timestamp: Option<i64>,
    headers: Vec<(String, Vec<u8>)>,
    tag: Tag,
    size: usize,
    /// When it was refused by a cluster the route may have left (held for a fresh binding).
    refused_at: Option<Instant>,
}

impl Owned {
    fn from_record(r: &Record<'_>, tag: Tag) -> Self {
        Self {
            topic: r.topic.to_string(),
            key: r.key.map(<[u8]>::to_vec),
            payload: r.payload.map(<[u8]>::to_vec),
            partition: r.partition,
            timestamp: r.timestamp,
            headers: r.headers.iter().map(|(k, v)| (k.to_string(), v.to_vec())).collect(),
            tag,
            size: r.size(),
            refused_at: None,
        }
    }

    /// A record as librdkafka reports it back, to be sent again.
    fn from_report(m: &BorrowedMessage<'_>, tag: Tag) -> Self {
        let headers: Vec<(String, Vec<u8>)> =
            m.headers().map(|h| h.iter().map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec).unwrap_or_default())).collect()).unwrap_or_default();
        let topic = m.topic().to_string();
        let key = m.key().map(<[u8]>::to_vec);
        let payload = m.payload().map(<[u8]>::to_vec);
        let size = tag.size_of(m);
        Self {
            topic,
            key,
            payload,
            partition: tag.partitioned().then(|| m.partition()),
            timestamp: m.timestamp().to_millis(),
            headers,
            tag,
            size,
            refused_at: None,
        }
    }
}

/// The size a record counts for in the buffer, as its delivery report shows it (the same sum
/// as [`Record::size`]).
fn report_size(m: &BorrowedMessage<'_>) -> usize {
    let headers: usize = m.headers().map(|h| h.iter().map(|h| h.key.len() + h.value.map_or(0, <[u8]>::len)).sum()).unwrap_or(0);
    m.topic().len() + m.key().map_or(0, <[u8]>::len) + m.payload().map_or(0, <[u8]>::len) + headers
}

/// What librdkafka knows of a record it gave back: whether the cluster may have written it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    NotPersisted,
    PossiblyPersisted,
    Persisted,
}

#[allow(unsafe_code)]
fn fate(m: &BorrowedMessage<'_>) -> Fate {
    use rdkafka::bindings::rd_kafka_msg_status_t as S;
    // SAFETY: `m` borrows a live librdkafka message for the length of the delivery callback;
    // rd_kafka_message_status only reads its status field.
    match unsafe { rdkafka::bindings::rd_kafka_message_status(m.ptr()) } {
        S::RD_KAFKA_MSG_STATUS_NOT_PERSISTED => Fate::NotPersisted,
        S::RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED => Fate::PossiblyPersisted,
        S::RD_KAFKA_MSG_STATUS_PERSISTED => Fate::Persisted,
    }
}

type KafkaProducer = ThreadedProducer<LinkContext>;

/// One cluster's producers (one per `acks` level in use), for one binding.
struct Link {
    id: u64,
    cluster: String,
    servers: Vec<String>,
    /// The binding generation records delivered through it are reported with (a warmed link
    /// takes the generation of the binding it is switched to).
    generation: Arc<AtomicI64>,
    producers: BTreeMap<String, KafkaProducer>,
    /// `acks` per topic of the binding it was made for (a topic not listed: `default_acks`).
    acks: BTreeMap<String, String>,
    default_acks: String,
}

impl Link {
    /// The producer for a topic's `acks` (no allocation: this is on `send`'s path).
    fn producer_for(&self, topic: &str) -> Option<&KafkaProducer> {
        if self.producers.len() == 1 {
            return self.producers.values().next();
        }
        let acks = self.acks.get(topic).map_or(self.default_acks.as_str(), String::as_str);
        self.producers.get(acks).or_else(|| self.producers.values().next())
    }

    /// Records librdkafka still holds for it (queued, in flight, or reports not yet served).
    fn in_flight(&self) -> i32 {
        self.producers.values().map(|p| p.in_flight_count()).sum()
    }

    fn purge(&self) {
        for p in self.producers.values() {
            p.purge(PurgeConfig::default().queue().inflight());
        }
    }

    fn fatal(&self) -> Option<String> {
        self.producers.values().find_map(|p| p.client().fatal_error()).map(|(code, reason)| format!("{code:?}: {reason}"))
    }

    fn serves(&self, binding: &RouteBinding) -> bool {
        self.cluster == binding.cluster && self.servers == binding.bootstrap_servers
    }
}

struct LinkContext {
    /// Strong, not weak: a delivery report must not pay for an upgrade (two atomic operations a
    /// record). The cycle it makes (Inner -> its links -> their contexts -> Inner) is broken by
    /// `close` and `Drop`, which take every link out of Inner and drop it.
    inner: Arc<Inner>,
    link: u64,
    cluster: String,
    generation: Arc<AtomicI64>,
    /// This cluster's report counts, resolved once (not per record): each record handed to a
    /// link gets exactly one report, and counting it there keeps an atomic off `send`'s path.
    reports: Arc<ClusterReports>,
}

impl ClientContext for LinkContext {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(cluster = %self.cluster, error = %error, reason, "librdkafka");
    }
}

impl ProducerContext for LinkContext {
    type DeliveryOpaque = usize;
    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        let inner = &self.inner;
        let tag = Tag(opaque);
        match result {
            Ok(m) => {
                // Two atomic adds a record: the buffer, then this cluster's count (in that
                // order: see `Inner::counters`).
                inner.resolved(tag.size_of(m));
                self.reports.acknowledged.fetch_add(1, Ordering::Release);
                if let Some(slot) = tag.slot() {
                    let delivered = Delivered {
                        cluster: self.cluster.clone(),
                        generation: self.generation.load(Ordering::Relaxed),
                        partition: m.partition(),
                        offset: m.offset(),
                        timestamp: m.timestamp().to_millis(),
                    };
                    inner.answer(slot, Ok(delivered));
                }
            }
            Err((e, m)) => {
                self.reports.other.fetch_add(1, Ordering::Relaxed);
                inner.not_delivered(self, e, m, tag)
            }
        }
    }
}

/// An old cluster's link, delivering what it holds.
struct Draining {
    link: Arc<Link>,
    /// When it is purged if it still holds records.
    deadline: Instant,
    purged: bool,
}

#[derive(Default)]
struct State {
    /// Re-sends, handed over before `pending`.
    retry: VecDeque<Owned>,
    /// Waiting for a binding, or held by an ordered switch.
    pending: VecDeque<Owned>,
    /// Refused for their size by the bound cluster (it may be sealed: this producer may have
    /// missed a switch): held until a fresh binding says where they go.
    refused: VecDeque<Owned>,
    /// An ordered switch: these topics' records wait until the old links are empty (`None`
    /// inside: every topic).
    held: Option<Option<BTreeSet<String>>>,
    draining: Vec<Draining>,
    /// A link to the cluster a switch is about to go to, built ahead of it.
    warm: Option<Arc<Link>>,
    /// The newest binding, not applied yet (applied on the follower's thread).
    next: Option<RouteBinding>,
    binding: Option<RouteBinding>,
    last_error: Option<String>,
    /// The active link could not be made: when to try again.
    retry_link_at: Option<Instant>,
}

impl State {
    fn held_topic(&self, topic: &str) -> bool {
        match &self.held {
            None => false,
            Some(None) => true,
            Some(Some(topics)) => topics.contains(topic),
        }
    }
}

/// A counter on a cache line of its own: senders and librdkafka's delivery thread each write
/// their own and do not pull each other's lines.
#[derive(Default)]
#[repr(align(128))]
struct Padded<T>(T);

/// Records and bytes in one word, so one atomic add moves both: the count in the top 24 bits,
/// bytes in the low 40. Totals wrap; the difference of two (what is buffered) is exact while
/// fewer than 2^24 records and 2^40 bytes are buffered, which the buffer's bounds keep
/// (`MAX_BUFFER_RECORDS`, `MAX_BUFFER_BYTES`, with room for senders racing past them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Units(u64);

impl Units {
    const BYTES_BITS: u32 = 40;
    const BYTES_MASK: u64 = (1 << Self::BYTES_BITS) - 1;
    fn one(size: usize) -> u64 {
        (1 << Self::BYTES_BITS) + (size as u64 & Self::BYTES_MASK)
    }
    /// `self - earlier` as (records, bytes). An `earlier` that is in fact later (a racing
    /// read) gives a huge count or byte figure, never a small one: read as full, then checked.
    fn since(self, earlier: Units) -> (u64, u64) {
        let d = self.0.wrapping_sub(earlier.0);
        (d >> Self::BYTES_BITS, d & Self::BYTES_MASK)
    }
    /// A difference only a racing read gives: a negative one wraps to near the top of its
    /// field, above what any bounded buffer (10,000,000 records, 256 GiB) holds.
    fn racing((records, bytes): (u64, u64)) -> bool {
        records > (1 << 24) - (1 << 22) || bytes > 1 << 39
    }
}

#[derive(Default)]
struct Counters {
    /// Accepted, as `Units` (less those taken back): written by senders only.
    sent: Padded<AtomicU64>,
    /// Acknowledged or failed, as `Units`: written by the delivery thread mostly.
    resolved: Padded<AtomicU64>,
    /// A `resolved` a sender read lately: the buffer is full only if `sent - this` says so and
    /// then `sent - resolved` agrees (so a sender seldom reads the delivery thread's line).
    seen_resolved: Padded<AtomicU64>,
    failed: AtomicU64,
    /// The highest `sent` `counters` has shown.
    sent_shown: AtomicU64,
    dropped: AtomicU64,
    returned: AtomicU64,
    resent: AtomicU64,
    possible_duplicates: AtomicU64,
}

struct Inner {
    config: ClientConfig,
    instance: String,
    /// The link records go to now; read on every `send`, written at a switch.
    active: RwLock<Option<Arc<Link>>>,
    active_id: AtomicU64,
    /// `send` may hand records straight to the active link: nothing waits before them.
    direct: AtomicBool,
    closed: AtomicBool,
    state: Mutex<State>,
    slots: Mutex<Slots>,
    counters: Counters,
    metrics: ClientMetrics,
    dropped: Counter,
    next_link: AtomicU64,
    /// Report at once (a link emptied, a switch made), not at the next interval.
    report_now: tokio::sync::Notify,
    /// Fetch the binding afresh (a record was refused for its size by the bound cluster).
    refresh: tokio::sync::Notify,
    me: Weak<Inner>,
}

/// What `close` left undone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Closed {
    /// Records not acknowledged by the deadline: each failed as `DeliveryError::Closed`.
    pub unacknowledged: u64,
}

/// `flush` timed out with records still buffered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{buffered} records still buffered after {waited:?}")]
pub struct FlushError {
    pub buffered: u64,
    pub waited: Duration,
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
        config.check_producer()?;
        let instance = config.instance_name("producer");
        let metrics = ClientMetrics::new(&config.route, "producer");
        let dropped = metrics.dropped.get_or_create(&metrics.labels).clone();
        let inner = Arc::new_cyclic(|me| Inner {
            instance,
            active: RwLock::new(None),
            active_id: AtomicU64::new(0),
            direct: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            state: Mutex::new(State::default()),
            slots: Mutex::new(Slots::default()),
            counters: Counters::default(),
            metrics,
            dropped,
            next_link: AtomicU64::new(1),
            report_now: tokio::sync::Notify::new(),
            refresh: tokio::sync::Notify::new(),
            me: me.clone(),
            config: config.clone(),
        });
        let follower = follow::spawn(config, inner.clone(), Duration::from_millis(20))
            .map_err(|e| ConfigError { field: "route", message: format!("cannot start the follower thread: {e}") })?;
        Ok(Self { inner, follower: Some(follower) })
    }

    /// Accepts a record or refuses it at once (full buffer, closed); never waits.
    pub fn send(&self, record: Record<'_>) -> Result<(), SendError> {
        self.inner.accept(&record, None)
    }

    /// As `send`, with the record's delivery result.
    pub fn send_tracked(&self, record: Record<'_>) -> Result<Delivery, SendError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.inner.accept(&record, Some(tx))?;
        Ok(Delivery(rx))
    }

    pub fn counters(&self) -> ClientCounters {
        self.inner.counters()
    }

    /// Records accepted and not yet acknowledged or failed.
    pub fn buffered(&self) -> u64 {
        self.inner.buffered().0
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

    /// Waits until every record accepted so far is acknowledged or failed, at most `timeout`.
    pub fn flush(&self, timeout: Duration) -> Result<(), FlushError> {
        let started = Instant::now();
        loop {
            let buffered = self.inner.buffered().0;
            if buffered == 0 {
                return Ok(());
            }
            if started.elapsed() >= timeout {
                return Err(FlushError { buffered, waited: started.elapsed() });
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Stops accepting records, waits up to `timeout` for what is buffered to be acknowledged,
    /// then fails what is left as `Closed` (each record's delivery result says so). Returns
    /// within about `timeout` whatever the follower or librdkafka are doing.
    pub fn close(mut self, timeout: Duration) -> Closed {
        let deadline = Instant::now() + timeout;
        let _ = self.flush(timeout);
        self.shutdown(deadline)
    }

    /// `close` for async callers: the wait runs on a thread of its own.
    pub async fn close_async(self, timeout: Duration) -> Closed {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new().name("fleet-producer-close".into()).spawn(move || {
            let _ = tx.send(self.close(timeout));
        });
        match spawned {
            Ok(_) => rx.await.unwrap_or_default(),
            Err(_) => Closed::default(),
        }
    }

    fn shutdown(&mut self, deadline: Instant) -> Closed {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.direct.store(false, Ordering::SeqCst);
        if let Some(f) = self.follower.take() {
            f.stop(deadline.saturating_duration_since(Instant::now()));
        }
        let (links, waiting) = {
            let mut st = self.inner.lock();
            let mut links: Vec<Arc<Link>> = st.draining.drain(..).map(|d| d.link).collect();
            links.extend(st.warm.take());
            links.extend(self.inner.active.write().unwrap_or_else(|p| p.into_inner()).take());
            let st = &mut *st;
            let waiting: Vec<Owned> = st.retry.drain(..).chain(st.pending.drain(..)).chain(st.refused.drain(..)).collect();
            (links, waiting)
        };
        let unacknowledged = self.inner.buffered().0;
        // Counted as failed, like every record that ends without an acknowledgement.
        for o in waiting {
            self.inner.fail(o.tag, o.size, DeliveryError::Closed);
        }
        // Purged, their records come back through the delivery callback (closed: failed as
        // Closed). A link is let go only once librdkafka holds nothing of it; past the
        // deadline it is let go on a thread of its own, so close returns in time.
        for l in &links {
            l.purge();
        }
        while links.iter().any(|l| l.in_flight() > 0) && Instant::now() < deadline.max(Instant::now() + Duration::from_millis(50)) {
            std::thread::sleep(Duration::from_millis(1));
        }
        if links.iter().any(|l| l.in_flight() > 0) {
            let _ = std::thread::Builder::new().name("fleet-producer-drop".into()).spawn(move || drop(links));
        } else {
            drop(links);
        }
        Closed { unacknowledged }
    }
}

impl Drop for FleetProducer {
    fn drop(&mut self) {
        if self.follower.is_some() {
            self.shutdown(Instant::now());
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records and bytes accepted and not resolved.
    fn buffered(&self) -> (u64, u64) {
        let c = &self.counters;
        // `resolved` first: every record it counts was accepted before, so `sent` read after
        // counts it too, and the difference is never negative.
        let resolved = Units(c.resolved.0.load(Ordering::Acquire));
        let buffered = Units(c.sent.0.load(Ordering::Acquire)).since(resolved);
        // Only a counting bug (a record resolved twice, or with another size) could give this.
        debug_assert!(!Units::racing(buffered), "buffer accounting broken: {buffered:?}");
        buffered
    }

    fn counters(&self) -> ClientCounters {
        let c = &self.counters;
        // Every record accepted is acknowledged, failed or still buffered. A record is counted
        // acknowledged or failed only after it left the buffer, and these are read before the
        // buffer: one in between is missed, never counted twice, so the sum is at most the
        // truth and exact when nothing moves. Shown as the highest sum yet: it never goes down.
        let failed = c.failed.load(Ordering::Acquire);
        let acknowledged = self.metrics.reports.acknowledged();
        let (buffered, _) = self.buffered();
        let sent = acknowledged + failed + buffered;
        let sent = c.sent_shown.fetch_max(sent, Ordering::Relaxed).max(sent);
        ClientCounters {
            sent,
            acknowledged,
            failed,
            dropped: c.dropped.load(Ordering::Relaxed),
            buffered,
            possible_duplicates: c.possible_duplicates.load(Ordering::Relaxed),
            consumed: 0,
            returned: c.returned.load(Ordering::Relaxed),
            resent: c.resent.load(Ordering::Relaxed),
        }
    }

    /// Counts the record in the buffer, or says it is full.
    fn admit(&self, size: usize) -> Result<(), SendError> {
        let c = &self.counters;
        let limit = self.config.buffer_records as u64;
        let byte_limit = self.config.buffer_bytes as u64;
        let one = Units::one(size);
        // What is buffered with this record counted: full if the others reach the limit in
        // records, or all with it exceed it in bytes.
        let over = |(records, bytes): (u64, u64)| records > limit || bytes > byte_limit;
        let sent = Units(c.sent.0.fetch_add(one, Ordering::AcqRel).wrapping_add(one));
        let seen = c.seen_resolved.0.load(Ordering::Acquire);
        if over(sent.since(Units(seen))) {
            // Full by a figure read lately: read the delivery thread's own. Kept as the hint
            // only if no newer one was kept meanwhile (a stalled sender must not set it back).
            let resolved = Units(c.resolved.0.load(Ordering::Acquire));
            let _ = c.seen_resolved.0.compare_exchange(seen, resolved.0, Ordering::Release, Ordering::Relaxed);
            let mut buffered = sent.since(resolved);
            if Units::racing(buffered) {
                // Records accepted after this one were resolved before it was read: `sent`
                // again, which counts them too.
                buffered = Units(c.sent.0.load(Ordering::Acquire)).since(resolved);
            }
            if over(buffered) {
                c.sent.0.fetch_sub(one, Ordering::AcqRel);
                let records = buffered.0.saturating_sub(1) as usize;
                let held = buffered.1.saturating_sub(size as u64) as usize;
                let dropped = self.config.full_buffer == FullBuffer::Drop;
                if dropped {
                    c.dropped.fetch_add(1, Ordering::Relaxed);
                    self.dropped.inc();
                } else {
                    c.returned.fetch_add(1, Ordering::Relaxed);
                }
                return Err(SendError::Full { records, bytes: held, dropped });
            }
        }
        Ok(())
    }

    fn unadmit(&self, size: usize) {
        self.counters.sent.0.fetch_sub(Units::one(size), Ordering::AcqRel);
    }

    fn resolved(&self, size: usize) {
        self.counters.resolved.0.fetch_add(Units::one(size), Ordering::AcqRel);
    }

    fn accept(&self, record: &Record<'_>, tracker: Option<Tracker>) -> Result<(), SendError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(SendError::Closed);
        }
        let size = record.size();
        self.admit(size)?;
        let slot = tracker.map(|t| self.slots.lock().unwrap_or_else(|p| p.into_inner()).insert(t));
        let tag = Tag::new(slot, record.partition.is_some(), size);
        if self.direct.load(Ordering::Acquire) {
            let active = self.active.read().unwrap_or_else(|p| p.into_inner());
            // Checked again under the lock: a switch clears it before replacing the link.
            if let Some(link) = active.as_ref().filter(|_| self.direct.load(Ordering::Acquire)) {
                match hand(link, record, tag) {
                    Handed::Taken => return Ok(()),
                    Handed::Refused(code, message) => {
                        drop(active);
                        return self.refused_at_send(tag, size, code, message);
                    }
                    // librdkafka's queue is full: the record waits in ours (below).
                    Handed::Full => {}
                }
            }
        }
        let mut st = self.lock();
        if self.closed.load(Ordering::Acquire) {
            drop(st);
            if let Some(s) = slot {
                self.slots.lock().unwrap_or_else(|p| p.into_inner()).take(s);
            }
            self.unadmit(size);
            return Err(SendError::Closed);
        }
        st.pending.push_back(Owned::from_record(record, tag));
        self.direct.store(false, Ordering::Release);
        // What waits is handed over now if it can be (not at the next tick).
        let refused = self.hand_waiting(&mut st, 64);
        drop(st);
        self.fail_all(refused);
        Ok(())
    }

    /// librdkafka refused a record on `send` (not a full queue): the caller is told at once.
    fn refused_at_send(&self, tag: Tag, size: usize, code: RDKafkaErrorCode, message: String) -> Result<(), SendError> {
        if let Some(s) = tag.slot() {
            self.slots.lock().unwrap_or_else(|p| p.into_inner()).take(s);
        }
        self.unadmit(size);
        Err(SendError::Refused { code, message })
    }

    /// Hands waiting records to the active link, re-sends first, at most `max`; what librdkafka
    /// refuses for good is returned, to be failed once the lock is released. Sets `direct` when
    /// nothing waits any more.
    fn hand_waiting(&self, st: &mut State, max: usize) -> Vec<(Owned, DeliveryError)> {
        let mut failed = Vec::new();
        let active = self.active.read().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(link) = active else { return failed };
        let mut handed = 0;
        // Re-sends go first; held topics wait (their order across the switch).
        while handed < max {
            let Some(pos) = st.retry.iter().position(|o| !st.held_topic(&o.topic)) else { break };
            let Some(o) = st.retry.remove(pos) else { break };
            handed += 1;
            match hand_owned(&link, &o) {
                Handed::Taken => {}
                Handed::Full => {
                    st.retry.insert(pos, o);
                    return failed;
                }
                Handed::Refused(code, message) => failed.push((o, DeliveryError::Kafka { cluster: link.cluster.clone(), code, message })),
            }
        }
        while handed < max {
            let Some(pos) = st.pending.iter().position(|o| !st.held_topic(&o.topic)) else { break };
            // Held topics' records before it in the queue stay in order (only theirs wait).
            let Some(o) = st.pending.remove(pos) else { break };
            handed += 1;
            match hand_owned(&link, &o) {
                Handed::Taken => {}
                Handed::Full => {
                    st.pending.insert(pos, o);
                    return failed;
                }
                Handed::Refused(code, message) => failed.push((o, DeliveryError::Kafka { cluster: link.cluster.clone(), code, message })),
            }
        }
        let idle = st.retry.is_empty() && st.pending.is_empty() && st.held.is_none();
        self.direct.store(idle && !self.closed.load(Ordering::Acquire), Ordering::Release);
        failed
    }

    fn fail_all(&self, failed: Vec<(Owned, DeliveryError)>) {
        for (o, e) in failed {
            self.fail(o.tag, o.size, e);
        }
    }

    fn answer(&self, slot: usize, outcome: Result<Delivered, DeliveryError>) {
        let tracker = self.slots.lock().unwrap_or_else(|p| p.into_inner()).take(slot);
        if let Some(t) = tracker {
            let _ = t.send(outcome);
        }
    }

    /// Resolves a record that did not reach a cluster (failed or closed), then counts it in
    /// `count` (in that order: see `counters`).
    fn finish(&self, tag: Tag, size: usize, outcome: Result<Delivered, DeliveryError>, count: &AtomicU64) {
        self.resolved(size);
        count.fetch_add(1, Ordering::Release);
        if let Some(slot) = tag.slot() {
            self.answer(slot, outcome);
        }
    }

    fn fail(&self, tag: Tag, size: usize, error: DeliveryError) {
        self.metrics.failed.get_or_create(&self.metrics.labels).inc();
        self.finish(tag, size, Err(error), &self.counters.failed);
    }

    /// A record a cluster did not acknowledge, with librdkafka's word on its fate.
    fn not_delivered(&self, link: &LinkContext, error: &KafkaError, m: &BorrowedMessage<'_>, tag: Tag) {
        let code = error.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail);
        let size = tag.size_of(m);
        if self.closed.load(Ordering::Acquire) {
            self.fail(tag, size, DeliveryError::Closed);
            return;
        }
        let fate = fate(m);
        let current = self.active_id.load(Ordering::Acquire) == link.link;
        let kafka = || DeliveryError::Kafka { cluster: link.cluster.clone(), code, message: error.to_string() };
        let resend = match code {
            // Purged (a switch retired the link, or it was recreated): sent again elsewhere.
            RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight => true,
            // A sealed cluster refuses every batch for its size.
            RDKafkaErrorCode::MessageSizeTooLarge if !current => true,
            RDKafkaErrorCode::MessageSizeTooLarge => {
                let mut o = Owned::from_report(m, tag);
                o.refused_at = Some(Instant::now());
                self.lock().refused.push_back(o);
                self.refresh.notify_one();
                return;
            }
            RDKafkaErrorCode::MessageTimedOut if current => {
                self.fail(tag, size, DeliveryError::TimedOut(format!("{} did not acknowledge it", link.cluster)));
                return;
            }
            // On a cluster the route has left, whatever went wrong, the new one gets it.
            _ if !current => true,
            _ => false,
        };
        if !resend || fate == Fate::Persisted {
            if fate == Fate::Persisted {
                // Written, though the report says otherwise (rare): not sent twice.
                let delivered = Delivered { cluster: link.cluster.clone(), generation: link.generation.load(Ordering::Relaxed), partition: m.partition(), offset: m.offset(), timestamp: None };
                self.finish(tag, size, Ok(delivered), &link.reports.persisted);
            } else {
                self.fail(tag, size, kafka());
            }
            return;
        }
        let mut tag = tag;
        if fate == Fate::PossiblyPersisted && !tag.maybe_duplicate() {
            tag = tag.with_duplicate();
            self.counters.possible_duplicates.fetch_add(1, Ordering::Relaxed);
            self.metrics.possible_duplicates.get_or_create(&self.metrics.labels).inc();
        }
        self.counters.resent.fetch_add(1, Ordering::Relaxed);
        let o = Owned::from_report(m, tag);
        let mut st = self.lock();
        st.retry.push_back(o);
        self.direct.store(false, Ordering::Release);
    }

    /// A producer per `acks` level the binding's topics use (creating one does no network I/O).
    fn make_link(&self, binding: &RouteBinding, cluster: &str, servers: &[String]) -> Result<Link, String> {
        let id = self.next_link.fetch_add(1, Ordering::Relaxed);
        let generation = Arc::new(AtomicI64::new(binding.generation));
        let acks: BTreeMap<String, String> = match &self.config.acks {
            Some(a) => binding.topics.keys().map(|t| (t.clone(), a.clone())).collect(),
            None => binding.topics.iter().map(|(t, b)| (t.clone(), b.acks.clone())).collect(),
        };
        let default_acks = self.config.acks.clone().unwrap_or_else(|| "all".into());
        let mut levels: BTreeSet<String> = acks.values().cloned().collect();
        levels.insert(default_acks.clone());
        let mut producers = BTreeMap::new();
        for level in levels {
            let mut c = rdkafka::ClientConfig::new();
            let idempotent = level == "all" || level == "-1";
            // Without idempotence, one request in flight keeps a key in order through retries
            // (when a keyed topic is written at this level).
            let keyed_here = binding.topics.iter().any(|(t, b)| b.keyed && acks.get(t).map_or(default_acks == level, |a| *a == level));
            c.set("bootstrap.servers", servers.join(","))
                .set("client.id", format!("{}-{cluster}", self.instance))
                .set("acks", &level)
                // The source design's tuning: stick to a partition for a while, batch for 100 ms.
                .set("linger.ms", "100")
                .set("sticky.partitioning.linger.ms", "100")
                .set("compression.type", "lz4")
                // Java's partitioner, so keyed records land where Java producers put them.
                .set("partitioner", "murmur2_random")
                .set("enable.idempotence", if idempotent { "true" } else { "false" })
                .set("message.timeout.ms", self.config.delivery_timeout.as_millis().to_string())
                .set("queue.buffering.max.messages", self.config.buffer_records.clamp(1000, 10_000_000).to_string())
                .set("queue.buffering.max.kbytes", (self.config.buffer_bytes / 1024).clamp(1024, 2_097_151).to_string());
            if !idempotent && (keyed_here || self.config.ordered_switch) {
                c.set("max.in.flight.requests.per.connection", "1");
            }
            for (k, v) in &self.config.kafka {
                c.set(k, v);
            }
            let Some(inner) = self.me.upgrade() else { return Err("the producer is closing".into()) };
            let context = LinkContext {
                inner,
                link: id,
                cluster: cluster.to_string(),
                generation: generation.clone(),
                reports: self.metrics.reports.cluster(self.metrics.cluster(cluster)),
            };
            let p: KafkaProducer = c.create_with_context(context).map_err(|e| format!("cannot create a producer for {cluster}: {e}"))?;
            producers.insert(level, p);
        }
        Ok(Link {
            id,
            cluster: cluster.to_string(),
            servers: servers.to_vec(),
            generation,
            producers,
            acks,
            default_acks,
        })
    }

    /// Reads the cluster's metadata through the link (so the first records do not wait for it,
    /// and an idempotent producer gets its ID meanwhile).
    fn warm_up(link: &Link, within: Duration) {
        if let Some(p) = link.producers.values().next() {
            if let Err(e) = p.client().fetch_metadata(None, within) {
                tracing::warn!(cluster = %link.cluster, error = %e, "the cluster's metadata could not be read");
            }
        }
    }

    /// Moves to `binding`'s cluster. `recreate`: the active link failed fatally, so even the same
    /// cluster gets a fresh one, and the old one is purged at once (its records re-sent, held
    /// behind the same ordering rule as a switch's).
    fn switch(&self, binding: RouteBinding, recreate: bool) {
        let span = tracing::info_span!("switch", route = %binding.route, cluster = %binding.cluster, generation = binding.generation, recreate);
        let _enter = span.enter();
        let same = !recreate && self.active.read().unwrap_or_else(|p| p.into_inner()).as_ref().is_some_and(|l| l.serves(&binding));
        if same {
            if let Some(l) = self.active.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
                l.generation.store(binding.generation, Ordering::Relaxed);
            }
            let refused: Vec<Owned> = {
                let mut st = self.lock();
                st.binding = Some(binding.clone());
                st.retry_link_at = None;
                st.refused.drain(..).collect()
            };
            // A fresh binding names the cluster that refused them: they are too large for it.
            for o in refused {
                self.fail(o.tag, o.size, DeliveryError::Kafka { cluster: binding.cluster.clone(), code: RDKafkaErrorCode::MessageSizeTooLarge, message: "larger than the topic's max.message.bytes".into() });
            }
            self.metrics.generation.get_or_create(&self.metrics.labels).set(binding.generation);
            return;
        }
        let ordered: Option<Option<BTreeSet<String>>> = if self.config.ordered_switch {
            Some(None)
        } else {
            let keyed: BTreeSet<String> = binding.topics.iter().filter(|(_, t)| t.keyed).map(|(n, _)| n.clone()).collect();
            (!keyed.is_empty()).then_some(Some(keyed))
        };
        let warm = self.lock().warm.take();
        let link = match warm.filter(|w| w.serves(&binding)) {
            Some(w) => w,
            None => match self.make_link(&binding, &binding.cluster, &binding.bootstrap_servers) {
                Ok(l) => {
                    let l = Arc::new(l);
                    Self::warm_up(&l, Duration::from_secs(2));
                    l
                }
                Err(e) => {
                    tracing::warn!(error = %e, "switch postponed");
                    let mut st = self.lock();
                    if recreate {
                        // The failed link must not take sends meanwhile: retired now (its records
                        // re-sent, held as a switch holds them), and new ones queue.
                        let old = self.active.write().unwrap_or_else(|p| p.into_inner()).take();
                        if let Some(old) = old {
                            self.direct.store(false, Ordering::SeqCst);
                            st.draining.push(Draining { link: old, deadline: Instant::now(), purged: false });
                            if let Some(o) = ordered {
                                st.held = Some(o);
                            }
                        }
                    }
                    st.last_error = Some(e);
                    st.next = Some(binding);
                    st.retry_link_at = Some(Instant::now() + Duration::from_secs(1));
                    return;
                }
            },
        };
        link.generation.store(binding.generation, Ordering::Relaxed);
        let failed = {
            let mut st = self.lock();
            let old = {
                let mut active = self.active.write().unwrap_or_else(|p| p.into_inner());
                // Cleared under the write lock: a sender that takes the read lock after this sees
                // it and queues, so no record reaches the new link ahead of the hold below.
                self.direct.store(false, Ordering::SeqCst);
                self.active_id.store(link.id, Ordering::Release);
                active.replace(link)
            };
            if let Some(old) = old {
                // Its refusals and purges come back as re-sends (to the new link).
                let deadline = if recreate { Instant::now() } else { Instant::now() + self.config.drain_timeout };
                st.draining.push(Draining { link: old, deadline, purged: false });
                if let Some(o) = ordered {
                    st.held = Some(o);
                }
            }
            // What the cluster we left refused goes to the new one, first.
            let refused: Vec<Owned> = st.refused.drain(..).collect();
            for o in refused.into_iter().rev() {
                st.retry.push_front(o);
            }
            st.binding = Some(binding.clone());
            st.last_error = None;
            st.retry_link_at = None;
            self.hand_waiting(&mut st, usize::MAX)
        };
        self.fail_all(failed);
        self.metrics.generation.get_or_create(&self.metrics.labels).set(binding.generation);
        self.metrics.switches.get_or_create(&self.metrics.labels).inc();
        self.report_now.notify_one();
        tracing::info!("producing to the new cluster");
    }

    /// Builds a link to the cluster a switch is about to go to.
    fn warm(&self, binding: &RouteBinding) {
        let Some(next) = binding.next.as_ref().filter(|_| binding.phase == RoutePhase::Warming) else {
            // No switch coming: a warmed link is let go.
            let stale = self.lock().warm.take();
            drop(stale);
            return;
        };
        if next.bootstrap_servers.is_empty() {
            return;
        }
        let have = self.lock().warm.as_ref().is_some_and(|w| w.cluster == next.cluster && w.servers == next.bootstrap_servers);
        if have {
            return;
        }
        match self.make_link(binding, &next.cluster, &next.bootstrap_servers) {
            Ok(l) => {
                Self::warm_up(&l, Duration::from_secs(2));
                tracing::info!(cluster = %next.cluster, "warmed a link for the coming switch");
                self.lock().warm = Some(Arc::new(l));
                self.report_now.notify_one();
            }
            Err(e) => tracing::warn!(cluster = %next.cluster, error = %e, "could not warm a link for the coming switch"),
        }
    }
}

enum Handed {
    Taken,
    /// librdkafka's queue is full.
    Full,
    /// librdkafka refused the record itself.
    Refused(RDKafkaErrorCode, String),
}

fn send_to(link: &Link, topic: &str, key: Option<&[u8]>, payload: Option<&[u8]>, partition: Option<i32>, timestamp: Option<i64>, headers: Option<OwnedHeaders>, tag: Tag) -> Handed {
    let Some(producer) = link.producer_for(topic) else { return Handed::Full };
    let mut base = BaseRecord::<[u8], [u8], usize>::with_opaque_to(topic, tag.0);
    base.key = key;
    base.payload = payload;
    base.partition = partition;
    base.timestamp = timestamp;
    base.headers = headers;
    match producer.send(base) {
        // Counted when its report comes (`LinkContext::delivery`), off the sender's path.
        Ok(()) => Handed::Taken,
        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => Handed::Full,
        Err((e, _)) => Handed::Refused(e.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail), e.to_string()),
    }
}

fn owned_headers<'a>(headers: impl ExactSizeIterator<Item = (&'a str, &'a [u8])>) -> Option<OwnedHeaders> {
    if headers.len() == 0 {
        return None;
    }
    let mut out = OwnedHeaders::new_with_capacity(headers.len());
    for (key, value) in headers {
        out = out.insert(Header { key, value: Some(value) });
    }
    Some(out)
}

fn hand(link: &Link, r: &Record<'_>, tag: Tag) -> Handed {
    send_to(link, r.topic, r.key, r.payload, r.partition, r.timestamp, owned_headers(r.headers.iter().copied()), tag)
}

fn hand_owned(link: &Link, o: &Owned) -> Handed {
    let headers = owned_headers(o.headers.iter().map(|(k, v)| (k.as_str(), v.as_slice())));
    send_to(link, &o.topic, o.key.as_deref(), o.payload.as_deref(), o.partition, o.timestamp, headers, o.tag)
}

impl Follows for Inner {
    fn on_binding(&self, binding: RouteBinding, source: BindingSource) {
        let mut st = self.lock();
        // A fresh answer naming the bound cluster settles records it refused (in `switch`).
        if source == BindingSource::Fresh || st.binding.as_ref().is_none_or(|b| b.generation != binding.generation) {
            st.next = Some(binding);
        }
        drop(st);
        self.tick();
    }

    fn on_error(&self, message: String) {
        self.lock().last_error = Some(message);
    }

    fn report(&self) -> ClientReport {
        let st = self.lock();
        let binding = st.binding.clone();
        let mut draining: Vec<String> = st.draining.iter().map(|d| d.link.cluster.clone()).collect();
        draining.sort();
        draining.dedup();
        draining.truncate(16);
        let warm = st.warm.as_ref().map(|w| w.cluster.clone());
        drop(st);
        ClientReport {
            instance: self.instance.clone(),
            route: self.config.route.clone(),
            role: ClientRole::Producer,
            generation: binding.as_ref().map_or(0, |b| b.generation),
            cluster: binding.map(|b| b.cluster).unwrap_or_default(),
            counters: self.counters(),
            consumer: None,
            producer: Some(ProducerState { draining, warm }),
        }
    }

    fn report_now(&self) -> Option<&tokio::sync::Notify> {
        Some(&self.report_now)
    }

    fn refresh_wanted(&self) -> Option<&tokio::sync::Notify> {
        Some(&self.refresh)
    }

    fn tick(&self) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        let (next, emptied, fatal, timed_out) = {
            let mut st = self.lock();
            let next = match st.retry_link_at {
                Some(at) if at > now => None,
                _ => st.next.take(),
            };
            // Old links: dropped once librdkafka holds nothing of theirs; purged at their
            // deadline (the purged records come back as re-sends).
            let mut emptied = Vec::new();
            let mut i = 0;
            while i < st.draining.len() {
                let d = &mut st.draining[i];
                if d.link.in_flight() == 0 {
                    emptied.push(st.draining.remove(i));
                    continue;
                }
                if now >= d.deadline && !d.purged {
                    tracing::info!(cluster = %d.link.cluster, held = d.link.in_flight(), "old cluster's link purged: its records are re-sent");
                    d.link.purge();
                    d.purged = true;
                }
                i += 1;
            }
            if st.draining.is_empty() && st.held.is_some() {
                // Every old link is empty: the ordered topics go on, re-sends first.
                st.held = None;
            }
            // Refused by the bound cluster and no fresh binding within the delivery timeout.
            let limit = self.config.delivery_timeout;
            let mut timed_out = Vec::new();
            while st.refused.front().is_some_and(|o| o.refused_at.is_some_and(|at| now.duration_since(at) >= limit)) {
                timed_out.extend(st.refused.pop_front());
            }
            let fatal = self.active.read().unwrap_or_else(|p| p.into_inner()).as_ref().and_then(|l| l.fatal().map(|f| (l.cluster.clone(), f)));
            self.metrics.buffered.get_or_create(&self.metrics.labels).set(self.buffered().0 as i64);
            (next, emptied, fatal, timed_out)
        };
        if !emptied.is_empty() {
            for d in &emptied {
                tracing::info!(cluster = %d.link.cluster, "old cluster's link is empty");
            }
            drop(emptied);
            self.report_now.notify_one();
        }
        for o in timed_out {
            self.fail(o.tag, o.size, DeliveryError::TimedOut("refused for its size where it was sent; no binding came to say where else it goes".into()));
        }
        if let Some(b) = next {
            self.switch(b.clone(), false);
            self.warm(&b);
        } else if let Some((cluster, why)) = fatal {
            // librdkafka gave up on this producer: a fresh one, its records re-sent.
            tracing::error!(cluster = %cluster, error = %why, "producer failed fatally; recreating it");
            let binding = self.lock().binding.clone();
            if let Some(b) = binding {
                self.switch(b, true);
            }
        }
        let failed = {
            let mut st = self.lock();
            if st.retry.is_empty() && st.pending.is_empty() {
                if st.held.is_none() {
                    self.direct.store(self.active.read().unwrap_or_else(|p| p.into_inner()).is_some(), Ordering::Release);
                }
                Vec::new()
            } else {
                self.hand_waiting(&mut st, usize::MAX)
            }
        };
        self.fail_all(failed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{MAX_BUFFER_BYTES, MAX_BUFFER_RECORDS};

    #[test]
    fn a_tag_carries_its_slot_and_flags() {
        assert_eq!(Tag::new(None, false, 0).0, 0, "an untracked record carries nothing");
        let t = Tag::new(Some(41), true, 1234);
        assert_eq!((t.slot(), t.partitioned(), t.maybe_duplicate()), (Some(41), true, false));
        let d = t.with_duplicate();
        assert_eq!((d.slot(), d.partitioned(), d.maybe_duplicate()), (Some(41), true, true));
        assert_eq!(Tag::new(Some(0), false, 5).slot(), Some(0));
        assert_eq!(Tag::new(Some((1 << 32) - 2), false, 7).slot(), Some((1 << 32) - 2), "the largest slot with a size");
        if usize::BITS >= 64 {
            assert_eq!(d.0 >> Tag::SIZE_SHIFT, 1234, "the size rides along");
            assert_eq!(Tag::new(None, false, 1 << 30).0 >> Tag::SIZE_SHIFT, 0, "too large: read from the report");
        }
    }

    #[test]
    fn buffered_units_survive_wrapping_and_flag_a_racing_read() {
        let one = Units::one(100);
        // Totals far past the 24-bit count: the difference is still exact.
        let resolved = Units(0u64.wrapping_sub(3 * one));
        let sent = Units(resolved.0.wrapping_add(5 * one).wrapping_add(Units::one(7)));
        assert_eq!(sent.since(resolved), (6, 507));
        // A `resolved` read after more records were resolved than this `sent` counts: flagged
        // as huge (checked again), never as a small buffer.
        let behind = Units(one).since(Units(one + Units::one(1)));
        assert!(Units::racing(behind) && behind.0 > MAX_BUFFER_RECORDS as u64, "{behind:?}");
        let fewer_bytes = Units(2 * one).since(Units(Units::one(5000)));
        assert!(Units::racing(fewer_bytes) && fewer_bytes.1 > MAX_BUFFER_BYTES, "{fewer_bytes:?}");
        // A full buffer at its bounds, with senders racing past them, is not a racing read.
        let full = Units((MAX_BUFFER_RECORDS as u64 + 64) << Units::BYTES_BITS | (MAX_BUFFER_BYTES + (64 << 20))).since(Units(0));
        assert!(!Units::racing(full), "{full:?}");
    }

    #[test]
    fn slots_are_reused_and_taken_once() {
        let mut slots = Slots::default();
        let (a, _ra) = tokio::sync::oneshot::channel();
        let (b, _rb) = tokio::sync::oneshot::channel();
        let i = slots.insert(a);
        let j = slots.insert(b);
        assert_ne!(i, j);
        assert!(slots.take(i).is_some());
        assert!(slots.take(i).is_none(), "a tracker answers once");
        let (c, _rc) = tokio::sync::oneshot::channel();
        assert_eq!(slots.insert(c), i, "a freed slot is reused");
    }

    #[test]
    fn a_record_counts_its_topic_key_payload_and_headers() {
        let headers: &[(&str, &[u8])] = &[("h", b"vv")];
        let r = Record::new("topic", b"12345").with_key(b"k").with_headers(headers);
        assert_eq!(r.size(), 5 + 1 + 5 + 3);
    }
}
