//! Per-broker heartbeats. A monitor topic has, for every broker, a partition it leads (replication
//! factor 1 by default, so a partition's availability is its broker's). Each interval one record
//! goes to every partition and is consumed back; results are attributed to the partition's
//! preferred leader. Headers carry the auditor instance, a per-partition sequence number, the
//! send time and a checksum, so the consuming side (this instance or another) can tell lost,
//! duplicated and out-of-order records and the end-to-end latency.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
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
    /// The cluster's ZooKeeper with its Kafka chroot, as older configs give it: no longer used
    /// (drifted monitor leadership is restored through the Kafka protocol on both kinds of cluster).
    pub zookeeper: Option<fleet_common::ZkAddress>,
}

#[cfg(test)]
mod tests {
    #[test]
    fn drift_is_a_live_preferred_leader_not_leading() {
        let live = std::collections::BTreeSet::from([1, 2]);
        let leaders = vec![(0, 1, vec![1, 2]), (1, 1, vec![2, 1]), (2, 1, vec![3, 1]), (3, -1, vec![2])];
        assert_eq!(super::drifted(&leaders, &live), vec![1, 3]);
    }

    #[test]
    fn a_broker_emptied_on_purpose_is_not_given_a_monitor_partition_again() {
        use std::collections::{BTreeMap, BTreeSet};
        // Broker 4 led partition 3; a decommission moved it to broker 1.
        let seen = BTreeSet::from([1, 2, 3, 4]);
        let existing = BTreeMap::from([(0, vec![1]), (1, vec![2]), (2, vec![3]), (3, vec![1])]);
        assert_eq!(super::draining_brokers(&seen, &existing), BTreeSet::from([4]));
        // A broker never seen leading is new: not draining.
        assert!(super::draining_brokers(&BTreeSet::from([1, 2, 3]), &existing).is_empty());
    }
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
    lost: u64,
}

/// Everything counted for one monitor partition.
#[derive(Debug)]
struct Counters {
    ticks: VecDeque<Tick>,
    latency_us: Histogram<u64>,
    lost: u64,
    duplicated: u64,
    out_of_order: u64,
    checksum_errors: u64,
    attempts_total: u64,
}

impl Counters {
    fn new() -> Self {
        Self {
            ticks: VecDeque::from([Tick::default()]),
            latency_us: latency_histogram(),
            lost: 0,
            duplicated: 0,
            out_of_order: 0,
            checksum_errors: 0,
            attempts_total: 0,
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

/// The same figures for one partition of the monitor topic.
#[derive(Clone, Debug, Serialize)]
pub struct PartitionFigures {
    pub partition: i32,
    pub preferred_leader: i32,
    pub produce_availability: f64,
    pub consume_availability: f64,
    pub latency_ms_p99: f64,
    pub records_lost: u64,
    pub records_duplicated: u64,
    pub records_out_of_order: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ClusterFigures {
    pub cluster: String,
    pub instance: String,
    pub topic: String,
    pub interval_ms: u64,
    pub brokers: Vec<BrokerFigures>,
    pub partitions: Vec<PartitionFigures>,
    pub updated_ms: u64,
}

/// The shared state a heartbeat updates and the server reads.
pub struct Heartbeat {
    spec: HeartbeatSpec,
    state: Mutex<HeartbeatState>,
    history: Mutex<VecDeque<HistoryPoint>>,
}

/// One interval's per-broker figures, kept so the dashboard shows the last minutes at once.
#[derive(Clone, Debug, Serialize)]
pub struct HistoryPoint {
    pub at_ms: u64,
    /// broker -> (min of produce and consume availability, p99 latency ms)
    pub brokers: BTreeMap<i32, (f64, f64)>,
}

/// How much history is kept.
const HISTORY: Duration = Duration::from_secs(10 * 60);

#[derive(Default)]
struct HeartbeatState {
    /// partition -> preferred leader broker.
    preferred: BTreeMap<i32, i32>,
    partitions: BTreeMap<i32, Counters>,
    /// (instance, partition) -> next expected sequence number.
    expected_seq: BTreeMap<(String, i32), u64>,
    updated_ms: u64,
}

impl Heartbeat {
    pub fn new(spec: HeartbeatSpec) -> Arc<Self> {
        Arc::new(Self { spec, state: Mutex::new(HeartbeatState::default()), history: Mutex::new(VecDeque::new()) })
    }

    pub fn spec(&self) -> &HeartbeatSpec {
        &self.spec
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut HeartbeatState) -> T) -> T {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// The counters of a partition we know the preferred leader of.
    fn counters(st: &mut HeartbeatState, partition: i32) -> Option<&mut Counters> {
        st.preferred.get(&partition)?;
        Some(st.partitions.entry(partition).or_insert_with(Counters::new))
    }

    /// Starts a new interval: the oldest one leaves the window.
    fn rotate(&self) {
        let window = self.spec.window.max(1);
        self.with_state(|st| {
            for c in st.partitions.values_mut() {
                c.ticks.push_front(Tick::default());
                c.ticks.truncate(window + 1);
            }
            st.updated_ms = now_us() / 1000;
        });
    }

    fn record_history(&self) {
        let f = self.figures();
        let point = HistoryPoint {
            at_ms: now_us() / 1000,
            brokers: f
                .brokers
                .iter()
                .map(|b| (b.broker, (b.produce_availability.min(b.consume_availability), b.latency_ms_p99)))
                .collect(),
        };
        let keep = (HISTORY.as_millis() / self.spec.interval.as_millis().max(1)) as usize;
        let mut h = self.history.lock().unwrap_or_else(|p| p.into_inner());
        h.push_back(point);
        while h.len() > keep.max(1) {
            h.pop_front();
        }
    }

    pub fn history(&self) -> Vec<HistoryPoint> {
        self.history.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect()
    }

    pub fn figures(&self) -> ClusterFigures {
        let own_produce = self.spec.produce;
        self.with_state(|st| {
            // The newest tick is still filling: the window is the completed ones.
            let window = |cs: &[&Counters]| -> Tick {
                let mut t = Tick::default();
                for c in cs {
                    for x in c.ticks.iter().skip(1) {
                        t.attempts += x.attempts;
                        t.produced += x.produced;
                        t.consumed += x.consumed;
                        t.lost += x.lost;
                    }
                }
                t
            };
            let ratio = |num: u64, den: u64| if den == 0 { 1.0 } else { (num as f64 / den as f64).min(1.0) };
            // With our own producer we know what should have arrived; a consumer-only instance
            // goes by sequence gaps, as Xinfra Monitor does.
            let consume_availability =
                |t: &Tick| if own_produce { ratio(t.consumed, t.produced) } else { ratio(t.consumed, t.consumed + t.lost) };
            let q = |h: &Histogram<u64>, p: f64| if h.is_empty() { 0.0 } else { h.value_at_quantile(p) as f64 / 1000.0 };
            let mut by_broker: BTreeMap<i32, Vec<(i32, &Counters)>> = BTreeMap::new();
            for (p, leader) in &st.preferred {
                if let Some(c) = st.partitions.get(p) {
                    by_broker.entry(*leader).or_default().push((*p, c));
                }
            }
            let mut brokers = Vec::new();
            let mut partitions = Vec::new();
            for (id, parts) in &by_broker {
                let cs: Vec<&Counters> = parts.iter().map(|(_, c)| *c).collect();
                let t = window(&cs);
                let mut latency = latency_histogram();
                for c in &cs {
                    let _ = latency.add(&c.latency_us);
                }
                brokers.push(BrokerFigures {
                    broker: *id,
                    partitions: parts.iter().map(|(p, _)| *p).collect(),
                    produce_availability: ratio(t.produced, t.attempts),
                    consume_availability: consume_availability(&t),
                    latency_ms_p50: q(&latency, 0.5),
                    latency_ms_p99: q(&latency, 0.99),
                    latency_ms_p999: q(&latency, 0.999),
                    records_lost: cs.iter().map(|c| c.lost).sum(),
                    records_duplicated: cs.iter().map(|c| c.duplicated).sum(),
                    records_out_of_order: cs.iter().map(|c| c.out_of_order).sum(),
                    checksum_errors: cs.iter().map(|c| c.checksum_errors).sum(),
                    attempts_total: cs.iter().map(|c| c.attempts_total).sum(),
                });
                for (p, c) in parts {
                    let t = window(&[c]);
                    partitions.push(PartitionFigures {
                        partition: *p,
                        preferred_leader: *id,
                        produce_availability: ratio(t.produced, t.attempts),
                        consume_availability: consume_availability(&t),
                        latency_ms_p99: q(&c.latency_us, 0.99),
                        records_lost: c.lost,
                        records_duplicated: c.duplicated,
                        records_out_of_order: c.out_of_order,
                    });
                }
            }
            partitions.sort_by_key(|p| p.partition);
            ClusterFigures {
                cluster: self.spec.cluster.clone(),
                instance: self.spec.instance_id.clone(),
                topic: self.spec.topic.clone(),
                interval_ms: self.spec.interval.as_millis() as u64,
                brokers,
                partitions,
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
/// `seen_leaders`: live brokers this heartbeat has seen leading a monitor partition (kept up to
/// date here; a broker that leaves the cluster is forgotten, so an ID reused later is new).
pub async fn ensure_monitor_topic(spec: &HeartbeatSpec, producer: &FutureProducer, seen_leaders: &mut BTreeSet<i32>) -> anyhow::Result<BTreeMap<i32, i32>> {
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
        seen_leaders.extend(brokers.iter().copied());
        return Ok(assignment.iter().enumerate().map(|(p, r)| (p as i32, r[0])).collect());
    }
    let led: std::collections::BTreeSet<i32> = existing.values().filter_map(|r| r.first().copied()).collect();
    seen_leaders.retain(|b| brokers.contains(b));
    let draining = draining_brokers(seen_leaders, &existing);
    seen_leaders.extend(led.iter().copied());
    if !draining.is_empty() {
        tracing::info!(cluster = %spec.cluster, ?draining, "monitor partitions were moved off these brokers (a decommission): none added back");
    }
    let missing: Vec<usize> = brokers.iter().enumerate().filter(|(_, b)| !led.contains(b) && !draining.contains(b)).map(|(i, _)| i).collect();
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
            seen_leaders.insert(r[0]);
        }
        tracing::info!(cluster = %spec.cluster, added = assignment.len(), "monitor partitions added for new brokers");
    }
    Ok(preferred)
}

/// Live brokers that led a monitor partition and now hold none: their replicas were moved off on
/// purpose (a decommission emptying them). Adding a partition back on them would undo the move,
/// and the decommission would move it again, forever.
pub fn draining_brokers(seen_leaders: &BTreeSet<i32>, existing: &BTreeMap<i32, Vec<i32>>) -> BTreeSet<i32> {
    let holding: BTreeSet<i32> = existing.values().flatten().copied().collect();
    seen_leaders.iter().copied().filter(|b| !holding.contains(b)).collect()
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
    let mut seen_leaders = BTreeSet::new();
    let preferred = loop {
        match ensure_monitor_topic(&spec, &producer, &mut seen_leaders).await {
            Ok(p) => break p,
            Err(e) => {
                tracing::warn!(cluster = %spec.cluster, error = %e, "monitor topic not ready; retrying");
                tokio::time::sleep(spec.interval).await;
            }
        }
    };
    hb.with_state(|st| {
        for p in preferred.keys() {
            st.partitions.entry(*p).or_insert_with(Counters::new);
        }
        st.preferred = preferred.clone();
    });
    // The consumer follows the monitor topic's partitions as they are added (new brokers).
    let (partitions_tx, partitions_rx) = tokio::sync::watch::channel(preferred.keys().copied().collect::<BTreeSet<i32>>());
    if spec.consume {
        let hb = hb.clone();
        tokio::spawn(async move {
            if let Err(e) = consume(hb, partitions_rx).await {
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
        hb.record_history();
        round += 1;
        // Every few intervals, look for brokers that joined (and partitions added by anyone).
        if round.is_multiple_of(FOLLOW_EVERY_INTERVALS) {
            if let Ok(p) = ensure_monitor_topic(&spec, &producer, &mut seen_leaders).await {
                let partitions: BTreeSet<i32> = p.keys().copied().collect();
                hb.with_state(|st| st.preferred = p);
                partitions_tx.send_if_modified(|known| {
                    let grown = !partitions.is_subset(known);
                    known.extend(partitions);
                    grown
                });
            }
        }
        // Every 5 intervals, put drifted leadership back on the preferred leaders.
        if round.is_multiple_of(5) {
            if let Err(e) = restore_preferred_leaders(&spec, &producer).await {
                tracing::warn!(cluster = %spec.cluster, error = %e, "could not restore preferred leaders");
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
                if let Some(c) = Heartbeat::counters(st, p) {
                    c.attempts_total += 1;
                    if let Some(t) = c.ticks.front_mut() {
                        t.attempts += 1;
                    }
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
                        if let Some(t) = Heartbeat::counters(st, p).and_then(|c| c.ticks.front_mut()) {
                            t.produced += 1;
                        }
                    });
                }
            });
        }
    }
}

/// Partitions of the monitor topic led by another broker than their preferred (first) replica,
/// while the preferred one is alive.
pub fn drifted(leaders: &[(i32, i32, Vec<i32>)], live: &std::collections::BTreeSet<i32>) -> Vec<i32> {
    leaders
        .iter()
        .filter(|(_, leader, replicas)| replicas.first().is_some_and(|p| p != leader && live.contains(p)))
        .map(|(p, _, _)| *p)
        .collect()
}

/// Asks for a preferred-replica election of the drifted monitor partitions through the Kafka
/// protocol (ElectLeaders, as `kafka-leader-election` does): the same call for a ZooKeeper-mode
/// and a KRaft cluster, so no ZooKeeper address is needed.
async fn restore_preferred_leaders(spec: &HeartbeatSpec, producer: &FutureProducer) -> anyhow::Result<()> {
    let metadata = {
        let p = producer.clone();
        let topic = spec.topic.clone();
        tokio::task::spawn_blocking(move || p.client().fetch_metadata(Some(&topic), Duration::from_secs(10))).await??
    };
    let live: std::collections::BTreeSet<i32> = metadata.brokers().iter().map(|b| b.id()).collect();
    let leaders: Vec<(i32, i32, Vec<i32>)> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == spec.topic)
        .flat_map(|t| t.partitions().iter().map(|p| (p.id(), p.leader(), p.replicas().to_vec())))
        .collect();
    let partitions = drifted(&leaders, &live);
    if partitions.is_empty() {
        return Ok(());
    }
    let bootstrap: Vec<String> = spec.bootstrap_servers.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    let refused = fleet_common::kafka_wire::elect_preferred_leaders(&bootstrap, &spec.topic, &partitions, Duration::from_secs(10)).await?;
    if refused.is_empty() {
        tracing::info!(cluster = %spec.cluster, ?partitions, "preferred-leader election requested for drifted monitor partitions");
    } else {
        tracing::warn!(cluster = %spec.cluster, ?refused, "preferred-leader election refused for some monitor partitions");
    }
    Ok(())
}

/// How often (in intervals) the heartbeat looks for new brokers and partitions.
const FOLLOW_EVERY_INTERVALS: u64 = 3;

async fn consume(hb: Arc<Heartbeat>, mut partitions: tokio::sync::watch::Receiver<BTreeSet<i32>>) -> anyhow::Result<()> {
    let spec = hb.spec().clone();
    // Consumer-only instances share the partitions through one consumer group; an instance that
    // also produces reads every partition itself.
    let group = if spec.produce {
        format!("kafka-auditor-{}-{}", spec.cluster, spec.instance_id)
    } else {
        format!("kafka-auditor-{}", spec.cluster)
    };
    let consumer: StreamConsumer = client_config(&spec)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "latest")
        .set("fetch.wait.max.ms", "50")
        .set("enable.partition.eof", "false")
        // A group member sees partitions added to the topic at the next metadata refresh.
        .set("topic.metadata.refresh.interval.ms", (spec.interval.as_millis() as u64 * FOLLOW_EVERY_INTERVALS).max(1000).to_string())
        .create()?;
    let mut assigned: BTreeSet<i32> = BTreeSet::new();
    if spec.produce {
        let initial = partitions.borrow_and_update().clone();
        let mut tpl = TopicPartitionList::new();
        for p in &initial {
            tpl.add_partition_offset(&spec.topic, *p, Offset::End)?;
        }
        consumer.assign(&tpl)?;
        assigned = initial;
    } else {
        consumer.subscribe(&[spec.topic.as_str()])?;
    }
    loop {
        let msg = tokio::select! {
            m = consumer.recv() => m,
            changed = partitions.changed(), if spec.produce => {
                if changed.is_err() {
                    return Ok(());
                }
                // New partitions are read from their start: their first heartbeats count.
                let now = partitions.borrow_and_update().clone();
                let mut tpl = TopicPartitionList::new();
                for p in now.difference(&assigned) {
                    tpl.add_partition_offset(&spec.topic, *p, Offset::Beginning)?;
                }
                if tpl.count() > 0 {
                    consumer.incremental_assign(&tpl)?;
                    tracing::info!(cluster = %spec.cluster, partitions = ?now.difference(&assigned).collect::<Vec<_>>(), "consuming new monitor partitions");
                    assigned = now;
                }
                continue;
            }
        };
        let msg = match msg {
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
        let mine = instance == hb.spec.instance_id;
        hb.with_state(|st| {
            let expected = st.expected_seq.entry((instance, p)).or_insert(seq);
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
            let Some(c) = Heartbeat::counters(st, p) else { return };
            c.lost += lost;
            c.duplicated += dup;
            c.out_of_order += ooo;
            if !checksum_ok {
                c.checksum_errors += 1;
            }
            if let Some(t) = c.ticks.front_mut() {
                t.lost += lost;
                // With our own producer, only our records count toward consume availability.
                if mine || !hb.spec.produce {
                    t.consumed += 1;
                }
            }
            let _ = c.latency_us.record(received_us.saturating_sub(sent).max(1));
        });
    }
}
