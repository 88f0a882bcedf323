//! Per-broker heartbeats. A monitor topic has, for every broker, a partition it leads (replication
//! factor 1 by default, so a partition's availability is its broker's). Each interval one record
//! goes to every partition and is consumed back; results are attributed to the partition's
//! preferred leader. Headers carry the auditor instance, a per-partition sequence number, the
//! send time and a checksum, so the consuming side (this instance or another) can tell lost,
//! duplicated and out-of-order records and the end-to-end latency.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

pub const H_INSTANCE: &str = "auditor-instance";
pub const H_SEQ: &str = "auditor-seq";
pub const H_SENT_US: &str = "auditor-sent-us";
pub const H_CHECKSUM: &str = "auditor-checksum";

#[derive(Clone, Debug)]
pub struct HeartbeatSpec {
    pub cluster: String,
    pub bootstrap_servers: String,
    pub topic: String,
    pub interval: Duration,
    pub record_size: usize,
    pub instance_id: String,
    pub replication_factor: i32,
    /// Availability is computed over this many recent intervals.
    pub window: usize,
    pub produce: bool,
    pub consume: bool,
}

/// FNV-1a: a stable checksum of the payload, carried in a header.
pub fn checksum(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// Counts of one interval for one broker.
#[derive(Clone, Copy, Debug, Default)]
struct Tick {
    attempts: u64,
    produced: u64,
    consumed: u64,
}

#[derive(Debug)]
struct BrokerState {
    ticks: VecDeque<Tick>,
    latency_us: Histogram<u64>,
    lost: u64,
    duplicated: u64,
    out_of_order: u64,
    checksum_errors: u64,
}

impl BrokerState {
    fn new() -> Self {
        Self {
            ticks: VecDeque::from([Tick::default()]),
            latency_us: latency_histogram(),
            lost: 0,
            duplicated: 0,
            out_of_order: 0,
            checksum_errors: 0,
        }
    }
}

/// 1 µs to 1 h at 3 significant figures.
fn latency_histogram() -> Histogram<u64> {
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("constant, valid histogram bounds")
}

/// Per-broker figures served by the API, the metrics and the dashboard.
#[derive(Clone, Debug, Serialize)]
pub struct BrokerFigures {
    pub broker: i32,
    pub partitions: Vec<i32>,
    /// produced / attempts over the window (1.0 when nothing was attempted).
    pub produce_availability: f64,
    /// consumed / produced over the window.
    pub consume_availability: f64,
    pub latency_ms_p50: f64,
    pub latency_ms_p99: f64,
    pub latency_ms_p999: f64,
    pub records_lost: u64,
    pub records_duplicated: u64,
    pub records_out_of_order: u64,
    pub checksum_errors: u64,
    pub attempts_total: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ClusterFigures {
    pub cluster: String,
    pub instance: String,
    pub topic: String,
    pub interval_ms: u64,
    pub brokers: Vec<BrokerFigures>,
    pub updated_ms: u64,
}

/// The shared state a heartbeat updates and the server reads.
pub struct Heartbeat {
    spec: HeartbeatSpec,
    state: Mutex<HeartbeatState>,
}

#[derive(Default)]
struct HeartbeatState {
    /// partition -> preferred leader broker.
    preferred: BTreeMap<i32, i32>,
    brokers: BTreeMap<i32, BrokerState>,
    /// (instance, partition) -> next expected sequence number.
    expected_seq: BTreeMap<(String, i32), u64>,
    attempts_total: BTreeMap<i32, u64>,
    updated_ms: u64,
}

impl Heartbeat {
    pub fn new(spec: HeartbeatSpec) -> Arc<Self> {
        Arc::new(Self { spec, state: Mutex::new(HeartbeatState::default()) })
    }

    pub fn spec(&self) -> &HeartbeatSpec {
        &self.spec
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut HeartbeatState) -> T) -> T {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    fn broker_for(&self, st: &mut HeartbeatState, partition: i32) -> Option<i32> {
        let b = *st.preferred.get(&partition)?;
        st.brokers.entry(b).or_insert_with(BrokerState::new);
        Some(b)
    }

    /// Starts a new interval: the oldest one leaves the window.
    fn rotate(&self) {
        let window = self.spec.window.max(1);
        self.with_state(|st| {
            for b in st.brokers.values_mut() {
                b.ticks.push_front(Tick::default());
                b.ticks.truncate(window + 1);
            }
            st.updated_ms = now_us() / 1000;
        });
    }

    pub fn figures(&self) -> ClusterFigures {
        self.with_state(|st| {
            let mut brokers = Vec::new();
            for (id, b) in &st.brokers {
                // The newest tick is still filling: the window is the completed ones.
                let done: Vec<Tick> = b.ticks.iter().skip(1).copied().collect();
                let sum = |f: fn(&Tick) -> u64| done.iter().map(f).sum::<u64>();
                let (attempts, produced, consumed) = (sum(|t| t.attempts), sum(|t| t.produced), sum(|t| t.consumed));
                let ratio = |num: u64, den: u64| if den == 0 { 1.0 } else { (num as f64 / den as f64).min(1.0) };
                let q = |p: f64| if b.latency_us.is_empty() { 0.0 } else { b.latency_us.value_at_quantile(p) as f64 / 1000.0 };
                brokers.push(BrokerFigures {
                    broker: *id,
                    partitions: st.preferred.iter().filter(|(_, l)| *l == id).map(|(p, _)| *p).collect(),
                    produce_availability: ratio(produced, attempts),
                    consume_availability: ratio(consumed, produced),
                    latency_ms_p50: q(0.5),
                    latency_ms_p99: q(0.99),
                    latency_ms_p999: q(0.999),
                    records_lost: b.lost,
                    records_duplicated: b.duplicated,
                    records_out_of_order: b.out_of_order,
                    checksum_errors: b.checksum_errors,
                    attempts_total: st.attempts_total.get(id).copied().unwrap_or(0),
                });
            }
            ClusterFigures {
                cluster: self.spec.cluster.clone(),
                instance: self.spec.instance_id.clone(),
                topic: self.spec.topic.clone(),
                interval_ms: self.spec.interval.as_millis() as u64,
                brokers,
                updated_ms: st.updated_ms,
            }
        })
    }
}

fn client_config(spec: &HeartbeatSpec) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &spec.bootstrap_servers);
    c
}

/// Makes sure every live broker is the preferred leader of at least one monitor partition.
/// Returns partition -> preferred leader.
pub async fn ensure_monitor_topic(spec: &HeartbeatSpec, producer: &FutureProducer) -> anyhow::Result<BTreeMap<i32, i32>> {
    let metadata = {
        let p = producer.clone();
        let topic = spec.topic.clone();
        tokio::task::spawn_blocking(move || p.client().fetch_metadata(Some(&topic), Duration::from_secs(10))).await??
    };
    let mut brokers: Vec<i32> = metadata.brokers().iter().map(|b| b.id()).collect();
    brokers.sort_unstable();
    anyhow::ensure!(!brokers.is_empty(), "no brokers in the metadata of {}", spec.bootstrap_servers);
    let existing: BTreeMap<i32, Vec<i32>> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == spec.topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| (p.id(), p.replicas().to_vec())))
        .collect();
    let rf = spec.replication_factor.clamp(1, brokers.len() as i32) as usize;
    let replicas_for = |leader_index: usize| -> Vec<i32> { (0..rf).map(|k| brokers[(leader_index + k) % brokers.len()]).collect() };
    let admin: AdminClient<DefaultClientContext> = client_config(spec).create()?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    if existing.is_empty() {
        let assignment: Vec<Vec<i32>> = (0..brokers.len()).map(replicas_for).collect();
        let refs: Vec<&[i32]> = assignment.iter().map(Vec::as_slice).collect();
        let topic = NewTopic::new(&spec.topic, brokers.len() as i32, TopicReplication::Variable(&refs));
        for r in admin.create_topics([&topic], &options).await? {
            if let Err((t, e)) = r {
                if e != rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists {
                    anyhow::bail!("creating monitor topic {t}: {e}");
                }
            }
        }
        tracing::info!(cluster = %spec.cluster, topic = %spec.topic, partitions = brokers.len(), "monitor topic created");
        return Ok(assignment.iter().enumerate().map(|(p, r)| (p as i32, r[0])).collect());
    }
    let led: std::collections::BTreeSet<i32> = existing.values().filter_map(|r| r.first().copied()).collect();
    let missing: Vec<usize> = brokers.iter().enumerate().filter(|(_, b)| !led.contains(b)).map(|(i, _)| i).collect();
    let mut preferred: BTreeMap<i32, i32> = existing.iter().filter_map(|(p, r)| Some((*p, *r.first()?))).collect();
    if !missing.is_empty() {
        // New brokers joined: one more partition each, led by it.
        let assignment: Vec<Vec<i32>> = missing.iter().map(|i| replicas_for(*i)).collect();
        let refs: Vec<&[i32]> = assignment.iter().map(Vec::as_slice).collect();
        let total = existing.len() + assignment.len();
        let new_parts = NewPartitions::new(&spec.topic, total).assign(&refs);
        for r in admin.create_partitions([&new_parts], &options).await? {
            if let Err((t, e)) = r {
                anyhow::bail!("adding monitor partitions to {t}: {e}");
            }
        }
        for (k, r) in assignment.iter().enumerate() {
            preferred.insert((existing.len() + k) as i32, r[0]);
        }
        tracing::info!(cluster = %spec.cluster, added = assignment.len(), "monitor partitions added for new brokers");
    }
    Ok(preferred)
}

/// Runs the heartbeat until the process ends.
pub async fn run(hb: Arc<Heartbeat>) -> anyhow::Result<()> {
    let spec = hb.spec().clone();
    let producer: FutureProducer = client_config(&spec)
        .set("acks", "all")
        .set("linger.ms", "0")
        // A heartbeat that cannot be delivered within two intervals is a failed heartbeat.
        .set("message.timeout.ms", (spec.interval.as_millis() as u64 * 2).max(1000).to_string())
        .set("request.timeout.ms", (spec.interval.as_millis() as u64 * 2).max(1000).to_string())
        .create()?;
    let preferred = loop {
        match ensure_monitor_topic(&spec, &producer).await {
            Ok(p) => break p,
            Err(e) => {
                tracing::warn!(cluster = %spec.cluster, error = %e, "monitor topic not ready; retrying");
                tokio::time::sleep(spec.interval).await;
            }
        }
    };
    hb.with_state(|st| {
        st.preferred = preferred.clone();
        for b in preferred.values() {
            st.brokers.entry(*b).or_insert_with(BrokerState::new);
        }
    });
    if spec.consume {
        let hb = hb.clone();
        let partitions: Vec<i32> = preferred.keys().copied().collect();
        tokio::spawn(async move {
            if let Err(e) = consume(hb, partitions).await {
                tracing::error!(error = %e, "heartbeat consumer stopped");
            }
        });
    }
    let payload: Vec<u8> = (0..spec.record_size).map(|i| (i % 251) as u8).collect();
    let sum = checksum(&payload).to_string();
    let mut seq: BTreeMap<i32, u64> = BTreeMap::new();
    let mut ticker = tokio::time::interval(spec.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut round = 0u64;
    loop {
        ticker.tick().await;
        hb.rotate();
        round += 1;
        // Every 30 intervals, look for brokers that joined.
        if round.is_multiple_of(30) {
            if let Ok(p) = ensure_monitor_topic(&spec, &producer).await {
                hb.with_state(|st| st.preferred = p);
            }
        }
        if !spec.produce {
            continue;
        }
        let partitions: Vec<i32> = hb.with_state(|st| st.preferred.keys().copied().collect());
        for p in partitions {
            let n = seq.entry(p).or_insert(0);
            let this_seq = *n;
            *n += 1;
            hb.with_state(|st| {
                if let Some(b) = hb.broker_for(st, p) {
                    if let Some(t) = st.brokers.get_mut(&b).and_then(|s| s.ticks.front_mut()) {
                        t.attempts += 1;
                    }
                    *st.attempts_total.entry(b).or_default() += 1;
                }
            });
            let headers = OwnedHeaders::new()
                .insert(Header { key: H_INSTANCE, value: Some(spec.instance_id.as_str()) })
                .insert(Header { key: H_SEQ, value: Some(this_seq.to_string().as_str()) })
                .insert(Header { key: H_SENT_US, value: Some(now_us().to_string().as_str()) })
                .insert(Header { key: H_CHECKSUM, value: Some(sum.as_str()) });
            let record = FutureRecord::<(), [u8]>::to(&spec.topic).partition(p).payload(&payload[..]).headers(headers);
            // Drop the record on a local error, so the future owns nothing borrowed.
            let delivery = producer.send_result(record).map_err(|(e, _)| e);
            let hb = hb.clone();
            tokio::spawn(async move {
                let ok = match delivery {
                    Ok(f) => matches!(f.await, Ok(Ok(_))),
                    Err(_) => false,
                };
                if ok {
                    hb.with_state(|st| {
                        if let Some(b) = hb.broker_for(st, p) {
                            if let Some(t) = st.brokers.get_mut(&b).and_then(|s| s.ticks.front_mut()) {
                                t.produced += 1;
                            }
                        }
                    });
                }
            });
        }
    }
}

async fn consume(hb: Arc<Heartbeat>, partitions: Vec<i32>) -> anyhow::Result<()> {
    let spec = hb.spec().clone();
    let consumer: StreamConsumer = client_config(&spec)
        .set("group.id", format!("kafka-auditor-{}-{}", spec.cluster, spec.instance_id))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "50")
        .set("enable.partition.eof", "false")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for p in &partitions {
        tpl.add_partition_offset(&spec.topic, *p, Offset::End)?;
    }
    consumer.assign(&tpl)?;
    loop {
        let msg = match consumer.recv().await {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(error = %e, "heartbeat consume error");
                continue;
            }
        };
        let received_us = now_us();
        let p = msg.partition();
        let mut instance = None;
        let mut seq = None;
        let mut sent = None;
        let mut sum = None;
        if let Some(h) = msg.headers() {
            for i in 0..h.count() {
                let header = h.get(i);
                let value = header.value.and_then(|v| std::str::from_utf8(v).ok());
                match header.key {
                    H_INSTANCE => instance = value.map(str::to_string),
                    H_SEQ => seq = value.and_then(|v| v.parse::<u64>().ok()),
                    H_SENT_US => sent = value.and_then(|v| v.parse::<u64>().ok()),
                    H_CHECKSUM => sum = value.and_then(|v| v.parse::<u64>().ok()),
                    _ => {}
                }
            }
        }
        let (Some(instance), Some(seq), Some(sent)) = (instance, seq, sent) else { continue };
        let checksum_ok = sum == Some(checksum(msg.payload().unwrap_or_default()));
        hb.with_state(|st| {
            let Some(b) = hb.broker_for(st, p) else { return };
            let expected = st.expected_seq.entry((instance.clone(), p)).or_insert(seq);
            let (mut lost, mut dup, mut ooo) = (0, 0, 0);
            if seq == *expected {
                *expected += 1;
            } else if seq > *expected {
                lost = seq - *expected;
                *expected = seq + 1;
            } else if seq + 1 == *expected {
                dup = 1;
            } else {
                ooo = 1;
            }
            let Some(state) = st.brokers.get_mut(&b) else { return };
            state.lost += lost;
            state.duplicated += dup;
            state.out_of_order += ooo;
            if !checksum_ok {
                state.checksum_errors += 1;
            }
            // Only this instance's records count toward consume availability of its produce.
            if instance == hb.spec.instance_id {
                if let Some(t) = state.ticks.front_mut() {
                    t.consumed += 1;
                }
            }
            let _ = state.latency_us.record(received_us.saturating_sub(sent).max(1));
        });
    }
}
