//! From what was observed (in ZooKeeper, or through the Kafka protocol for a KRaft cluster) to
//! findings: a pure function, testable without I/O.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use fleet_common::znodes::{BrokerRegistration, PartitionState};
use serde::Serialize;

/// One scan's view of a cluster, as plain data.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterObservation {
    /// `/brokers/ids/<id>`, the live brokers.
    pub brokers: BTreeMap<i32, BrokerRegistration>,
    /// `/controller`'s broker id; `None` when the znode is absent.
    pub controller: Option<i32>,
    pub topics: BTreeMap<String, TopicObservation>,
    /// Broker IDs the fleet's registry says the cluster has (empty when it keeps none).
    pub registry_ids: BTreeSet<i32>,
    /// Cluster-wide `min.insync.replicas` from `/config/brokers/<default>`, when set there.
    pub default_min_isr: Option<i32>,
    /// Round trip of one read against ZooKeeper during the scan.
    pub zookeeper_latency: Duration,
    /// KRaft: the controller quorum (`None` for a ZooKeeper-mode cluster). `controller` is then
    /// the quorum's leader, a controller node rather than a broker.
    pub quorum: Option<QuorumObservation>,
    /// KRaft: brokers registered with the controller but fenced (not serving).
    pub fenced: BTreeSet<i32>,
    /// KRaft: node IDs the fleet's registry holds for controllers (combined nodes included).
    pub registry_controllers: BTreeSet<i32>,
}

/// A KRaft cluster's controller quorum as its leader described it, or why it could not be asked.
#[derive(Clone, Debug, PartialEq)]
pub enum QuorumObservation {
    Known(fleet_common::kafka_wire::QuorumInfo),
    /// DescribeQuorum failed (no leader elected, or no controller reachable through the brokers).
    Unanswered(String),
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct TopicObservation {
    pub partitions: BTreeMap<i32, PartitionObservation>,
    /// The topic's `min.insync.replicas` override, when it has one.
    pub min_isr: Option<i32>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PartitionObservation {
    /// Assigned replicas, preferred leader first.
    pub replicas: Vec<i32>,
    /// `None` while the controller has not yet written the state (partition being created).
    pub state: Option<PartitionState>,
    /// Replicas being added by a reassignment (the topic znode's `adding_replicas`): they
    /// catch up before joining the ISR, which is a move, not a replica falling behind.
    pub adding: Vec<i32>,
}

/// What is expected of a cluster (from configuration or the command line).
#[derive(Clone, Debug, Default)]
pub struct Expectations {
    /// Explicit broker set; when `None`, the fleet's registry, else the assigned replicas.
    pub brokers: Option<BTreeSet<i32>>,
    /// Racks brokers may register with; empty means any.
    pub racks: BTreeSet<String>,
}

#[derive(Clone, Debug)]
pub struct Thresholds {
    /// `min.insync.replicas` when neither the topic nor the cluster config sets it.
    pub default_min_isr: i32,
    /// A broker leading fewer than this share of its preferred partitions is imbalanced
    /// (Kafka's own `leader.imbalance.per.broker.percentage` default is 10%).
    pub leader_imbalance_ratio: f64,
    pub slow_zookeeper: Duration,
    /// KRaft: a voter that has not fetched from the leader for this long is missing (Kafka's
    /// own `controller.quorum.fetch.timeout.ms` is 2 s; a few of them, and a scan's age, more).
    pub voter_fetch_timeout: Duration,
    /// KRaft: a replica of the metadata log that has not been caught up for this long, while
    /// still fetching, is lagging (the log takes a no-op record every 500 ms, so a live replica
    /// is caught up many times a second).
    pub quorum_catch_up: Duration,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            default_min_isr: 1,
            leader_imbalance_ratio: 0.10,
            slow_zookeeper: Duration::from_millis(500),
            voter_fetch_timeout: Duration::from_secs(15),
            quorum_catch_up: Duration::from_secs(30),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Reported, not alarming: the cluster stays healthy (a partition being moved on purpose).
    Info,
    Warning,
    Critical,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    MissingBroker,
    NoController,
    OfflinePartition,
    UnderMinIsrPartition,
    UnderReplicatedPartition,
    MovingPartition,
    PreferredLeaderImbalance,
    BrokerWithoutLeadership,
    UnexpectedRack,
    DuplicateEndpoint,
    ZookeeperSlow,
    ZookeeperUnreachable,
    NoQuorumLeader,
    MissingVoter,
    LaggingVoter,
    LaggingObserver,
}

impl FindingKind {
    pub const ALL: [FindingKind; 16] = [
        FindingKind::MissingBroker,
        FindingKind::NoController,
        FindingKind::OfflinePartition,
        FindingKind::UnderMinIsrPartition,
        FindingKind::UnderReplicatedPartition,
        FindingKind::MovingPartition,
        FindingKind::PreferredLeaderImbalance,
        FindingKind::BrokerWithoutLeadership,
        FindingKind::UnexpectedRack,
        FindingKind::DuplicateEndpoint,
        FindingKind::ZookeeperSlow,
        FindingKind::ZookeeperUnreachable,
        FindingKind::NoQuorumLeader,
        FindingKind::MissingVoter,
        FindingKind::LaggingVoter,
        FindingKind::LaggingObserver,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::MissingBroker => "missing_broker",
            FindingKind::NoController => "no_controller",
            FindingKind::OfflinePartition => "offline_partition",
            FindingKind::UnderMinIsrPartition => "under_min_isr_partition",
            FindingKind::UnderReplicatedPartition => "under_replicated_partition",
            FindingKind::MovingPartition => "moving_partition",
            FindingKind::PreferredLeaderImbalance => "preferred_leader_imbalance",
            FindingKind::BrokerWithoutLeadership => "broker_without_leadership",
            FindingKind::UnexpectedRack => "unexpected_rack",
            FindingKind::DuplicateEndpoint => "duplicate_endpoint",
            FindingKind::ZookeeperSlow => "zookeeper_slow",
            FindingKind::ZookeeperUnreachable => "zookeeper_unreachable",
            FindingKind::NoQuorumLeader => "no_quorum_leader",
            FindingKind::MissingVoter => "missing_voter",
            FindingKind::LaggingVoter => "lagging_voter",
            FindingKind::LaggingObserver => "lagging_observer",
        }
    }
}

/// One sign of unhealthiness, with the evidence that shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub severity: Severity,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<i32>,
    pub evidence: serde_json::Value,
}

/// Per-broker figures exported as gauges.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct BrokerFigures {
    pub up: bool,
    pub leader_partitions: u64,
    pub preferred_partitions: u64,
    pub under_replicated_partitions: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Evaluation {
    pub findings: Vec<Finding>,
    pub brokers: BTreeMap<i32, BrokerFigures>,
    pub partitions: u64,
    pub expected_brokers: Vec<i32>,
}

pub fn evaluate(obs: &ClusterObservation, expect: &Expectations, th: &Thresholds) -> Evaluation {
    let mut findings = Vec::new();
    let assigned: BTreeSet<i32> =
        obs.topics.values().flat_map(|t| t.partitions.values().flat_map(|p| p.replicas.iter().copied())).collect();
    let expected: BTreeSet<i32> = match &expect.brokers {
        Some(b) => b.clone(),
        None if !obs.registry_ids.is_empty() => obs.registry_ids.clone(),
        None => assigned.clone(),
    };
    let mut figures: BTreeMap<i32, BrokerFigures> = expected
        .iter()
        .chain(obs.brokers.keys())
        .map(|id| (*id, BrokerFigures { up: obs.brokers.contains_key(id), ..Default::default() }))
        .collect();

    for id in expected.iter().filter(|id| !obs.brokers.contains_key(id)) {
        let message = match (&obs.quorum, obs.fenced.contains(id)) {
            (None, _) => format!("broker {id} is expected but not registered in /brokers/ids"),
            (Some(_), true) => format!("broker {id} is registered but fenced: its heartbeats to the controller stopped, it serves nothing"),
            (Some(_), false) => format!("broker {id} is expected but not registered with the controller"),
        };
        findings.push(Finding {
            kind: FindingKind::MissingBroker,
            severity: Severity::Warning,
            message,
            broker: Some(*id),
            topic: None,
            partition: None,
            // KRaft: registered means with the controller, fenced or not; `live` serve.
            evidence: match &obs.quorum {
                None => serde_json::json!({ "expected": expected, "registered": obs.brokers.keys().collect::<Vec<_>>() }),
                Some(_) => serde_json::json!({
                    "expected": expected,
                    "registered": obs.brokers.keys().chain(&obs.fenced).collect::<BTreeSet<_>>(),
                    "live": obs.brokers.keys().collect::<Vec<_>>(),
                    "fenced": obs.fenced,
                }),
            },
        });
    }
    match (&obs.quorum, obs.controller) {
        (Some(quorum), _) => quorum_findings(quorum, &obs.registry_controllers, th, &mut findings),
        (None, Some(c)) if obs.brokers.contains_key(&c) => {}
        (None, other) => findings.push(Finding {
            kind: FindingKind::NoController,
            severity: Severity::Critical,
            message: match other {
                Some(c) => format!("/controller names broker {c}, which is not registered"),
                None => "no active controller (/controller is absent)".to_string(),
            },
            broker: other,
            topic: None,
            partition: None,
            evidence: serde_json::json!({ "controller": other }),
        }),
    }

    let cluster_min_isr = obs.default_min_isr.unwrap_or(th.default_min_isr);
    let mut partitions = 0u64;
    for (topic, t) in &obs.topics {
        let min_isr = t.min_isr.unwrap_or(cluster_min_isr);
        for (p, part) in &t.partitions {
            partitions += 1;
            if let Some(preferred) = part.replicas.first() {
                figures.entry(*preferred).or_default().preferred_partitions += 1;
            }
            let Some(state) = &part.state else { continue };
            if state.leader >= 0 {
                figures.entry(state.leader).or_default().leader_partitions += 1;
            }
            let evidence = || serde_json::json!({ "replicas": part.replicas, "isr": state.isr, "leader": state.leader, "leader_epoch": state.leader_epoch });
            let partition_finding = |kind, severity, message: String| Finding {
                kind,
                severity,
                message,
                broker: None,
                topic: Some(topic.clone()),
                partition: Some(*p),
                evidence: evidence(),
            };
            if state.leader < 0 || !obs.brokers.contains_key(&state.leader) {
                findings.push(partition_finding(
                    FindingKind::OfflinePartition,
                    Severity::Critical,
                    format!("{topic}-{p} has no live leader (leader {})", state.leader),
                ));
                continue;
            }
            let in_sync = part.replicas.iter().filter(|r| state.isr.contains(r)).count();
            if (in_sync as i32) < min_isr {
                findings.push(partition_finding(
                    FindingKind::UnderMinIsrPartition,
                    Severity::Critical,
                    format!("{topic}-{p} has {in_sync} in-sync replicas, below min.insync.replicas={min_isr}: acks=all writes fail"),
                ));
            }
            let behind: Vec<i32> = part.replicas.iter().filter(|r| !state.isr.contains(r) && !part.adding.contains(r)).copied().collect();
            let catching_up: Vec<i32> = part.adding.iter().filter(|r| !state.isr.contains(r)).copied().collect();
            if !behind.is_empty() {
                for r in &behind {
                    figures.entry(*r).or_default().under_replicated_partitions += 1;
                }
                findings.push(partition_finding(
                    FindingKind::UnderReplicatedPartition,
                    Severity::Warning,
                    format!("{topic}-{p} is under-replicated: isr {:?} of replicas {:?}", state.isr, part.replicas),
                ));
            } else if !part.adding.is_empty() {
                let mut f = partition_finding(
                    FindingKind::MovingPartition,
                    Severity::Info,
                    format!("{topic}-{p} is being moved: replicas {:?} being added ({:?} catching up), isr {:?}", part.adding, catching_up, state.isr),
                );
                f.evidence["adding"] = serde_json::json!(part.adding);
                findings.push(f);
            }
        }
    }

    // Preferred-leader imbalance, per live broker, as Kafka's controller measures it.
    let mut led_preferred: HashMap<i32, u64> = HashMap::new();
    for t in obs.topics.values() {
        for part in t.partitions.values() {
            if let (Some(preferred), Some(state)) = (part.replicas.first(), &part.state) {
                if state.leader == *preferred {
                    *led_preferred.entry(*preferred).or_default() += 1;
                }
            }
        }
    }
    for (id, f) in &figures {
        if !f.up || f.preferred_partitions == 0 {
            continue;
        }
        let led = led_preferred.get(id).copied().unwrap_or(0);
        let ratio = (f.preferred_partitions - led) as f64 / f.preferred_partitions as f64;
        if ratio > th.leader_imbalance_ratio {
            findings.push(Finding {
                kind: FindingKind::PreferredLeaderImbalance,
                severity: Severity::Warning,
                message: format!(
                    "broker {id} leads {led} of the {} partitions it is preferred leader for ({:.0}% imbalance)",
                    f.preferred_partitions,
                    ratio * 100.0
                ),
                broker: Some(*id),
                topic: None,
                partition: None,
                evidence: serde_json::json!({ "preferred": f.preferred_partitions, "leading_preferred": led, "ratio": ratio }),
            });
        }
    }

    // A live broker leading nothing while others lead: it takes no produce traffic (brokers added
    // without partitions placed on them, or never given back their leadership).
    if figures.values().any(|f| f.up && f.leader_partitions > 0) {
        for (id, f) in figures.iter().filter(|(_, f)| f.up && f.leader_partitions == 0) {
            findings.push(Finding {
                kind: FindingKind::BrokerWithoutLeadership,
                severity: Severity::Warning,
                message: format!(
                    "broker {id} leads no partition while other brokers do: it takes no produce traffic (a replaced broker until Kafka's leader rebalance, or a preferred-leader election, gives its partitions back; a new broker until partitions are placed on it)"
                ),
                broker: Some(*id),
                topic: None,
                partition: None,
                evidence: serde_json::json!({ "preferred": f.preferred_partitions, "replicas_behind": f.under_replicated_partitions }),
            });
        }
    }

    let mut endpoints: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (id, reg) in &obs.brokers {
        if !expect.racks.is_empty() && !reg.rack.as_ref().is_some_and(|r| expect.racks.contains(r)) {
            findings.push(Finding {
                kind: FindingKind::UnexpectedRack,
                severity: Severity::Warning,
                message: format!("broker {id} registered with rack {:?}, not one of {:?}", reg.rack, expect.racks),
                broker: Some(*id),
                topic: None,
                partition: None,
                evidence: serde_json::json!({ "rack": reg.rack, "expected": expect.racks }),
            });
        }
        for e in &reg.endpoints {
            endpoints.entry(e.as_str()).or_default().push(*id);
        }
    }
    for (endpoint, ids) in endpoints.into_iter().filter(|(_, ids)| ids.len() > 1) {
        findings.push(Finding {
            kind: FindingKind::DuplicateEndpoint,
            severity: Severity::Critical,
            message: format!("brokers {ids:?} all advertise {endpoint}"),
            broker: ids.first().copied(),
            topic: None,
            partition: None,
            evidence: serde_json::json!({ "endpoint": endpoint, "brokers": ids }),
        });
    }

    if obs.zookeeper_latency > th.slow_zookeeper {
        findings.push(Finding {
            kind: FindingKind::ZookeeperSlow,
            severity: Severity::Warning,
            message: format!(
                "ZooKeeper answered in {} ms (threshold {} ms)",
                obs.zookeeper_latency.as_millis(),
                th.slow_zookeeper.as_millis()
            ),
            broker: None,
            topic: None,
            partition: None,
            evidence: serde_json::json!({ "latency_ms": obs.zookeeper_latency.as_millis() as u64 }),
        });
    }

    findings.sort_by(|a, b| {
        b.severity.cmp(&a.severity).then(a.kind.cmp(&b.kind)).then(a.topic.cmp(&b.topic)).then(a.partition.cmp(&b.partition))
    });
    Evaluation { findings, brokers: figures, partitions, expected_brokers: expected.into_iter().collect() }
}

/// KRaft: the controller quorum's own findings. Ages are measured on the leader's clock (the
/// newest timestamp it reported), not this process's, so a skewed clock cannot fake a finding.
fn quorum_findings(quorum: &QuorumObservation, expected: &BTreeSet<i32>, th: &Thresholds, findings: &mut Vec<Finding>) {
    let finding = |kind, severity, broker, message: String, evidence| Finding { kind, severity, message, broker, topic: None, partition: None, evidence };
    let q = match quorum {
        QuorumObservation::Unanswered(error) => {
            findings.push(finding(
                FindingKind::NoQuorumLeader,
                Severity::Critical,
                None,
                format!("the controller quorum did not answer DescribeQuorum: {error}"),
                serde_json::json!({ "error": error }),
            ));
            return;
        }
        QuorumObservation::Known(q) => q,
    };
    let voters: Vec<i32> = q.voters.iter().map(|v| v.node_id).collect();
    if q.leader_id < 0 {
        findings.push(finding(
            FindingKind::NoQuorumLeader,
            Severity::Critical,
            None,
            format!("the controller quorum has no leader (epoch {}): no metadata change can be made", q.leader_epoch),
            serde_json::json!({ "voters": voters, "leader_epoch": q.leader_epoch }),
        ));
    }
    let clock = q.clock_ms().unwrap_or(-1);
    let age = |ms: i64| q.age_ms(ms).map(|a| Duration::from_millis(a as u64));
    for id in expected.iter().filter(|id| !voters.contains(id)) {
        findings.push(finding(
            FindingKind::MissingVoter,
            Severity::Warning,
            Some(*id),
            format!("controller {id} is not a voter: the voter set is {voters:?} (being repaired, or a directory never added)"),
            serde_json::json!({ "voters": voters, "expected": expected }),
        ));
    }
    for v in q.voters.iter().filter(|v| v.node_id != q.leader_id && q.leader_id >= 0) {
        let evidence = serde_json::json!({
            "directory_id": v.directory_id, "lag": q.lag(v), "last_fetch_ms": v.last_fetch_ms,
            "last_caught_up_ms": v.last_caught_up_ms, "leader_clock_ms": clock,
        });
        match age(v.last_fetch_ms) {
            Some(a) if a <= th.voter_fetch_timeout => {}
            stale => {
                let since = stale.map(|a| format!("for {} s", a.as_secs())).unwrap_or_else(|| "since the leader was elected".into());
                findings.push(finding(
                    FindingKind::MissingVoter,
                    Severity::Warning,
                    Some(v.node_id),
                    format!("voter {} has not fetched from the quorum leader {since}: one more loss and the quorum may stall", v.node_id),
                    evidence,
                ));
                continue;
            }
        }
        if q.lag(v) > 0 && age(v.last_caught_up_ms).is_none_or(|a| a > th.quorum_catch_up) {
            findings.push(finding(
                FindingKind::LaggingVoter,
                Severity::Warning,
                Some(v.node_id),
                format!("voter {} is {} records behind the metadata log and has not caught up for over {} s", v.node_id, q.lag(v), th.quorum_catch_up.as_secs()),
                evidence,
            ));
        }
    }
    // Observers that stopped fetching are gone (a dead broker is its own finding; an old
    // directory lingers in the leader's list); one that fetches but never catches up is stuck.
    for o in &q.observers {
        let fetching = age(o.last_fetch_ms).is_some_and(|a| a <= th.voter_fetch_timeout);
        if fetching && q.lag(o) > 0 && age(o.last_caught_up_ms).is_none_or(|a| a > th.quorum_catch_up) {
            findings.push(finding(
                FindingKind::LaggingObserver,
                Severity::Warning,
                Some(o.node_id),
                format!("observer {} fetches but is {} records behind the metadata log and has not caught up for over {} s", o.node_id, q.lag(o), th.quorum_catch_up.as_secs()),
                serde_json::json!({ "directory_id": o.directory_id, "lag": q.lag(o), "last_caught_up_ms": o.last_caught_up_ms, "leader_clock_ms": clock }),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(id: i32, rack: &str) -> (i32, BrokerRegistration) {
        (
            id,
            BrokerRegistration {
                version: 5,
                host: Some("127.0.0.1".into()),
                port: Some(9000 + id),
                endpoints: vec![format!("PLAINTEXT://127.0.0.1:{}", 9000 + id)],
                listener_security_protocol_map: None,
                rack: Some(rack.into()),
                jmx_port: None,
                timestamp: None,
                features: None,
            },
        )
    }

    fn part(replicas: &[i32], leader: i32, isr: &[i32]) -> PartitionObservation {
        PartitionObservation {
            replicas: replicas.to_vec(),
            state: Some(PartitionState { controller_epoch: 1, leader, version: 1, leader_epoch: 0, isr: isr.to_vec() }),
            adding: Vec::new(),
        }
    }

    #[test]
    fn a_partition_being_moved_is_reported_as_moving_not_under_replicated() {
        let mut obs = healthy();
        let t = obs.topics.values_mut().next().expect("topic");
        // Reassigning [1,2] -> [1,4]: the znode lists 1,2,4; 4 is catching up.
        let mut moving = part(&[1, 2, 4], 1, &[1, 2]);
        moving.adding = vec![4];
        t.partitions.insert(0, moving);
        let e = evaluate(&obs, &Expectations::default(), &Thresholds::default());
        let kinds: Vec<(FindingKind, Severity)> = e.findings.iter().map(|f| (f.kind, f.severity)).collect();
        assert!(kinds.contains(&(FindingKind::MovingPartition, Severity::Info)), "{kinds:?}");
        assert!(!kinds.iter().any(|k| k.0 == FindingKind::UnderReplicatedPartition), "{kinds:?}");
        // A replica that is not being added and left the ISR is still an alarm.
        let t = obs.topics.values_mut().next().expect("topic");
        let mut behind = part(&[1, 2, 4], 1, &[1]);
        behind.adding = vec![4];
        t.partitions.insert(0, behind);
        let e = evaluate(&obs, &Expectations::default(), &Thresholds::default());
        assert!(e.findings.iter().any(|f| f.kind == FindingKind::UnderReplicatedPartition));
    }

    fn healthy() -> ClusterObservation {
        let topic = TopicObservation {
            partitions: BTreeMap::from([(0, part(&[1, 2], 1, &[1, 2])), (1, part(&[2, 3], 2, &[2, 3])), (2, part(&[3, 1], 3, &[3, 1]))]),
            min_isr: None,
        };
        ClusterObservation {
            brokers: BTreeMap::from([broker(1, "a"), broker(2, "b"), broker(3, "c")]),
            controller: Some(1),
            topics: BTreeMap::from([("events".to_string(), topic)]),
            registry_ids: BTreeSet::from([1, 2, 3]),
            default_min_isr: None,
            zookeeper_latency: Duration::from_millis(2),
            ..Default::default()
        }
    }

    fn replica(node_id: i32, log_end_offset: i64, last_fetch_ms: i64, last_caught_up_ms: i64) -> fleet_common::kafka_wire::QuorumReplica {
        fleet_common::kafka_wire::QuorumReplica { node_id, directory_id: Some(format!("dir-{node_id}")), log_end_offset, last_caught_up_ms, last_fetch_ms }
    }

    #[test]
    fn kraft_quorum_findings_on_the_leaders_clock() {
        use fleet_common::kafka_wire::QuorumInfo;
        let now = 1_000_000_000;
        let mut o = healthy();
        // Brokers 1-3, controllers 11-13; the leader's own entry carries the clock.
        o.controller = Some(11);
        o.registry_controllers = BTreeSet::from([11, 12, 13]);
        let whole = QuorumInfo {
            leader_id: 11,
            leader_epoch: 4,
            high_watermark: 500,
            voters: vec![replica(11, 500, now, now), replica(12, 500, now - 300, now - 300), replica(13, 499, now - 200, now - 700)],
            observers: vec![replica(1, 500, now - 100, now - 100)],
        };
        o.quorum = Some(QuorumObservation::Known(whole.clone()));
        assert_eq!(kinds(&evaluate(&o, &Expectations::default(), &Thresholds::default())), vec![], "a whole quorum is healthy");

        // A newly elected leader reports a dead voter with no fetch time; a voter set short of
        // an expected controller; a fetching observer that never catches up.
        let mut broken = whole.clone();
        broken.voters[1] = replica(12, 100, -1, -1);
        broken.voters.truncate(2);
        broken.observers.push(replica(21, 10, now - 50, now - 120_000));
        broken.observers.push(replica(13, 10, now - 900_000, now - 900_000));
        o.quorum = Some(QuorumObservation::Known(broken));
        let k = kinds(&evaluate(&o, &Expectations::default(), &Thresholds::default()));
        assert!(k.contains(&(FindingKind::MissingVoter, None, None, Some(12))), "{k:?}");
        assert!(k.contains(&(FindingKind::MissingVoter, None, None, Some(13))), "{k:?}");
        assert!(k.contains(&(FindingKind::LaggingObserver, None, None, Some(21))), "{k:?}");
        assert!(!k.contains(&(FindingKind::LaggingObserver, None, None, Some(13))), "an observer that stopped fetching is gone, not lagging: {k:?}");

        // A voter that fetches but has not caught up for over the threshold.
        let mut lagging = whole.clone();
        lagging.voters[2] = replica(13, 200, now - 100, now - 60_000);
        o.quorum = Some(QuorumObservation::Known(lagging));
        assert_eq!(kinds(&evaluate(&o, &Expectations::default(), &Thresholds::default())), vec![(FindingKind::LaggingVoter, None, None, Some(13))]);

        // No leader, or no answer: critical, never healthy.
        let mut leaderless = whole;
        leaderless.leader_id = -1;
        o.quorum = Some(QuorumObservation::Known(leaderless));
        assert!(evaluate(&o, &Expectations::default(), &Thresholds::default()).findings.iter().any(|f| f.kind == FindingKind::NoQuorumLeader && f.severity == Severity::Critical));
        o.quorum = Some(QuorumObservation::Unanswered("timed out".into()));
        assert!(evaluate(&o, &Expectations::default(), &Thresholds::default()).findings.iter().any(|f| f.kind == FindingKind::NoQuorumLeader));
    }

    #[test]
    fn a_fenced_kraft_broker_is_missing_and_its_partitions_offline() {
        let mut o = healthy();
        o.quorum = Some(QuorumObservation::Unanswered("x".into()));
        o.brokers.remove(&3);
        o.fenced.insert(3);
        let e = evaluate(&o, &Expectations::default(), &Thresholds::default());
        let missing = e.findings.iter().find(|f| f.kind == FindingKind::MissingBroker).expect("missing broker");
        assert!(missing.message.contains("fenced"), "{}", missing.message);
        assert!(kinds(&e).contains(&(FindingKind::OfflinePartition, Some("events".into()), Some(2), None)), "{:?}", kinds(&e));
    }

    type Where = (FindingKind, Option<String>, Option<i32>, Option<i32>);

    fn kinds(e: &Evaluation) -> Vec<Where> {
        e.findings.iter().map(|f| (f.kind, f.topic.clone(), f.partition, f.broker)).collect()
    }

    #[test]
    fn healthy_cluster_has_no_findings() {
        let e = evaluate(&healthy(), &Expectations::default(), &Thresholds::default());
        assert!(e.findings.is_empty(), "{:?}", e.findings);
        assert_eq!(e.partitions, 3);
        assert_eq!(e.brokers[&2].leader_partitions, 1);
    }

    #[test]
    fn brokers_added_without_partitions_are_reported_leading_nothing() {
        let mut o = healthy();
        o.brokers.extend([broker(4, "a"), broker(5, "b")]);
        o.registry_ids.extend([4, 5]);
        let e = evaluate(&o, &Expectations::default(), &Thresholds::default());
        let idle: Vec<Option<i32>> = e.findings.iter().filter(|f| f.kind == FindingKind::BrokerWithoutLeadership).map(|f| f.broker).collect();
        assert_eq!(idle, [Some(4), Some(5)]);
        // A cluster with no partition at all is not "unbalanced".
        let mut empty = healthy();
        empty.topics.clear();
        assert!(evaluate(&empty, &Expectations::default(), &Thresholds::default()).findings.is_empty());
    }

    #[test]
    fn stopped_broker_is_missing_and_its_partitions_under_replicated() {
        let mut o = healthy();
        o.brokers.remove(&3);
        let t = o.topics.get_mut("events").expect("topic");
        t.partitions.insert(1, part(&[2, 3], 2, &[2]));
        t.partitions.insert(2, part(&[3, 1], 1, &[1]));
        let e = evaluate(&o, &Expectations::default(), &Thresholds::default());
        let k = kinds(&e);
        assert!(k.contains(&(FindingKind::MissingBroker, None, None, Some(3))));
        assert!(k.contains(&(FindingKind::UnderReplicatedPartition, Some("events".into()), Some(1), None)));
        assert!(!k.iter().any(|x| x.0 == FindingKind::MovingPartition));
        assert!(k.contains(&(FindingKind::UnderReplicatedPartition, Some("events".into()), Some(2), None)));
        assert!(!k.iter().any(|x| x.0 == FindingKind::UnderReplicatedPartition && x.2 == Some(0)));
        assert_eq!(e.brokers[&3].under_replicated_partitions, 2);
        assert!(!e.brokers[&3].up);
    }

    #[test]
    fn leaderless_partition_is_offline_and_critical() {
        let mut o = healthy();
        o.topics.get_mut("events").expect("topic").partitions.insert(0, part(&[1, 2], -1, &[1]));
        let e = evaluate(&o, &Expectations::default(), &Thresholds::default());
        assert_eq!(e.findings[0].kind, FindingKind::OfflinePartition);
        assert_eq!(e.findings[0].severity, Severity::Critical);
        assert_eq!(e.findings[0].evidence["leader"], -1);
    }

    #[test]
    fn min_isr_comes_from_topic_then_cluster_then_default() {
        let mut o = healthy();
        o.topics.get_mut("events").expect("topic").partitions.insert(0, part(&[1, 2], 1, &[1]));
        let th = Thresholds::default();
        let count = |o: &ClusterObservation| {
            evaluate(o, &Expectations::default(), &th).findings.iter().filter(|f| f.kind == FindingKind::UnderMinIsrPartition).count()
        };
        assert_eq!(count(&o), 0);
        o.default_min_isr = Some(2);
        assert_eq!(count(&o), 1);
        o.topics.get_mut("events").expect("topic").min_isr = Some(1);
        assert_eq!(count(&o), 0);
    }

    #[test]
    fn no_controller_or_dead_controller() {
        let mut o = healthy();
        o.controller = None;
        assert!(kinds(&evaluate(&o, &Expectations::default(), &Thresholds::default())).iter().any(|k| k.0 == FindingKind::NoController));
        o.controller = Some(9);
        assert!(kinds(&evaluate(&o, &Expectations::default(), &Thresholds::default())).iter().any(|k| k.0 == FindingKind::NoController));
    }

    #[test]
    fn imbalance_rack_endpoint_and_slow_zookeeper() {
        let mut o = healthy();
        // Broker 2 is preferred for partition 1 but broker 3 leads it.
        o.topics.get_mut("events").expect("topic").partitions.insert(1, part(&[2, 3], 3, &[2, 3]));
        o.brokers.get_mut(&3).expect("b3").endpoints = vec!["PLAINTEXT://127.0.0.1:9001".into()];
        o.zookeeper_latency = Duration::from_secs(1);
        let expect = Expectations { brokers: None, racks: BTreeSet::from(["a".to_string(), "b".to_string()]) };
        let k = kinds(&evaluate(&o, &expect, &Thresholds::default()));
        assert!(k.contains(&(FindingKind::PreferredLeaderImbalance, None, None, Some(2))), "{k:?}");
        assert!(k.contains(&(FindingKind::UnexpectedRack, None, None, Some(3))), "{k:?}");
        assert!(k.contains(&(FindingKind::DuplicateEndpoint, None, None, Some(1))), "{k:?}");
        assert!(k.iter().any(|x| x.0 == FindingKind::ZookeeperSlow));
    }

    #[test]
    fn explicit_expectations_win_over_the_registry() {
        let o = healthy();
        let expect = Expectations { brokers: Some(BTreeSet::from([1, 2, 3, 4])), racks: BTreeSet::new() };
        let k = kinds(&evaluate(&o, &expect, &Thresholds::default()));
        assert_eq!(k, vec![(FindingKind::MissingBroker, None, None, Some(4))]);
    }
}
