//! Reading a cluster's state out of ZooKeeper, with requests pipelined on one session: every
//! read of a stage is in flight at once (bounded), rather than one round trip at a time. A KRaft
//! cluster has no Kafka znodes: it is read through the Kafka protocol (DescribeCluster with
//! fenced brokers, Metadata, DescribeConfigs, DescribeQuorum), the fleet's registry still from
//! ZooKeeper.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use fleet_common::znodes::{self, BrokerRegistration, ControllerZnode, PartitionState, TopicAssignment};
use fleet_common::{ClusterPaths, KafkaPaths};
use zookeeper_client as zk;

use fleet_common::kafka_wire::{self, WireError};
use fleet_common::znodes::BrokerIdLease;

use crate::findings::{ClusterObservation, PartitionObservation, QuorumObservation, TopicObservation};

/// Reads per multi-read request: ~80-200 bytes each, far below ZooKeeper's 1 MiB packet limit.
const BATCH: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error("no Kafka cluster at {chroot}: /brokers does not exist (wrong --cluster or --fleet-root, or the cluster never started)")]
    NoCluster { chroot: String },
    #[error("zookeeper read of {path} failed: {source}")]
    Zk {
        path: String,
        #[source]
        source: zk::Error,
    },
    #[error(transparent)]
    Decode(#[from] znodes::ZnodeDecodeError),
    #[error("no node-ID registry at {path}: wrong --cluster or --fleet-root, or the fleet never built this cluster")]
    NoRegistry { path: String },
    #[error("no broker of {bootstrap:?} answered: {source}")]
    Kafka {
        bootstrap: Vec<String>,
        #[source]
        source: WireError,
    },
}

fn zk_err(path: &str) -> impl FnOnce(zk::Error) -> ObserveError + '_ {
    move |source| ObserveError::Zk { path: path.to_string(), source }
}

async fn data_or_none(client: &zk::Client, path: &str) -> Result<Option<Vec<u8>>, ObserveError> {
    match client.get_data(path).await {
        Ok((data, _)) => Ok(Some(data)),
        Err(zk::Error::NoNode) => Ok(None),
        Err(e) => Err(zk_err(path)(e)),
    }
}

async fn children_or_empty(client: &zk::Client, path: &str) -> Result<Vec<String>, ObserveError> {
    match client.list_children(path).await {
        Ok(c) => Ok(c),
        Err(zk::Error::NoNode) => Ok(Vec::new()),
        Err(e) => Err(zk_err(path)(e)),
    }
}

/// Reads many znodes, absent ones coming back as `None`: in multi-read requests of
/// [`BATCH`] reads each, all batches in flight at once on the session. One request per batch
/// rather than per znode is what makes a 10,000-partition scan cheap for ZooKeeper too.
async fn read_all(client: &zk::Client, paths: Vec<String>) -> Result<Vec<(String, Option<Vec<u8>>)>, ObserveError> {
    let mut batches = Vec::new();
    for chunk in paths.chunks(BATCH) {
        let mut reader = client.new_multi_reader();
        for path in chunk {
            reader.add_get_data(path).map_err(zk_err(path))?;
        }
        // `commit` sends the request now; awaiting comes later, so every batch is in flight.
        let sent = reader.commit();
        batches.push(async move { (chunk, sent.await) });
    }
    let mut out = Vec::with_capacity(paths.len());
    for (chunk, result) in futures::future::join_all(batches).await {
        let results = result.map_err(zk_err(chunk.first().map(String::as_str).unwrap_or("/")))?;
        for (path, r) in chunk.iter().zip(results) {
            let data = match r {
                zk::MultiReadResult::Data { data, .. } => Some(data),
                zk::MultiReadResult::Error { err: zk::Error::NoNode } => None,
                zk::MultiReadResult::Error { err } => return Err(zk_err(path)(err)),
                _ => None,
            };
            out.push((path.clone(), data));
        }
    }
    Ok(out)
}

/// `cluster` locates the fleet's registry; `kafka` is where Kafka's znodes are.
pub async fn observe(
    client: &zk::Client,
    kafka: &KafkaPaths,
    cluster: Option<&ClusterPaths>,
) -> Result<ClusterObservation, ObserveError> {
    let brokers_root = format!("{}/brokers", kafka.chroot());
    let started = Instant::now();
    let exists = client.check_stat(&brokers_root).await.map_err(zk_err(&brokers_root))?;
    let zookeeper_latency = started.elapsed();
    if exists.is_none() {
        return Err(ObserveError::NoCluster { chroot: kafka.chroot().to_string() });
    }

    let ids_path = kafka.broker_ids();
    let topics_path = kafka.topics();
    let controller_path = kafka.controller();
    let default_config_path = format!("{}/config/brokers/<default>", kafka.chroot());
    let registry_path = cluster.map(ClusterPaths::broker_ids);
    let (broker_ids, topic_names, controller, default_config, registry) = tokio::try_join!(
        children_or_empty(client, &ids_path),
        children_or_empty(client, &topics_path),
        data_or_none(client, &controller_path),
        data_or_none(client, &default_config_path),
        async {
            match &registry_path {
                Some(p) => children_or_empty(client, p).await,
                None => Ok(Vec::new()),
            }
        },
    )?;

    let broker_paths: Vec<String> = broker_ids.iter().map(|id| format!("{ids_path}/{id}")).collect();
    let topic_paths: Vec<String> = topic_names.iter().map(|t| kafka.topic(t)).collect();
    let topic_config_paths: Vec<String> = topic_names.iter().map(|t| kafka.topic_config(t)).collect();
    let (broker_data, topic_data, topic_configs) = tokio::try_join!(
        read_all(client, broker_paths),
        read_all(client, topic_paths),
        read_all(client, topic_config_paths),
    )?;

    let mut brokers = BTreeMap::new();
    for ((path, data), id) in broker_data.into_iter().zip(&broker_ids) {
        // A broker that went away between the list and the read is simply not live.
        let (Some(data), Ok(id)) = (data, id.parse::<i32>()) else { continue };
        let reg: BrokerRegistration = znodes::decode(&path, "a broker registration", &data)?;
        brokers.insert(id, reg);
    }
    let controller = match controller {
        Some(data) => Some(znodes::decode::<ControllerZnode>(&controller_path, "the controller znode", &data)?.brokerid),
        None => None,
    };

    let mut topics = BTreeMap::new();
    let mut state_paths = Vec::new();
    for (((path, data), (_, config)), name) in topic_data.into_iter().zip(topic_configs).zip(&topic_names) {
        let Some(data) = data else { continue };
        let assignment: TopicAssignment = znodes::decode(&path, "a topic assignment", &data)?;
        let min_isr = config.as_deref().and_then(min_isr_of);
        let mut partitions = BTreeMap::new();
        for (key, replicas) in assignment.partitions {
            let Ok(p) = key.parse::<i32>() else { continue };
            state_paths.push((name.clone(), p));
            let adding = assignment.adding_replicas.get(&key).cloned().unwrap_or_default();
            partitions.insert(p, PartitionObservation { replicas, state: None, adding });
        }
        topics.insert(name.clone(), TopicObservation { partitions, min_isr });
    }
    let states = read_all(client, state_paths.iter().map(|(t, p)| kafka.partition_state(t, *p)).collect()).await?;
    for ((topic, p), (path, data)) in state_paths.into_iter().zip(states) {
        let Some(data) = data else { continue };
        let state: PartitionState = znodes::decode(&path, "a partition state", &data)?;
        if let Some(part) = topics.get_mut(&topic).and_then(|t| t.partitions.get_mut(&p)) {
            part.state = Some(state);
        }
    }

    Ok(ClusterObservation {
        brokers,
        controller,
        topics,
        registry_ids: registry.iter().filter_map(|id| id.parse().ok()).collect::<BTreeSet<i32>>(),
        default_min_isr: default_config.as_deref().and_then(min_isr_of),
        zookeeper_latency,
        ..Default::default()
    })
}

/// A KRaft cluster: brokers, partitions and the quorum through the Kafka protocol on one of
/// `bootstrap`, the nodes the fleet's registry holds (by role) from ZooKeeper. No broker
/// answering is a failed scan (unknown), never an empty cluster; a quorum that does not answer
/// while brokers do is a finding.
pub async fn observe_kraft(
    client: &zk::Client,
    cluster: &ClusterPaths,
    bootstrap: &[String],
    timeout: std::time::Duration,
) -> Result<ClusterObservation, ObserveError> {
    let registry_path = cluster.broker_ids();
    let started = Instant::now();
    // Which nodes to expect comes from the registry: a missing one is a wrong name, not a
    // cluster that expects nothing.
    let ids = match client.list_children(&registry_path).await {
        Ok(ids) => ids,
        Err(zk::Error::NoNode) => return Err(ObserveError::NoRegistry { path: registry_path }),
        Err(e) => return Err(zk_err(&registry_path)(e)),
    };
    let zookeeper_latency = started.elapsed();
    let leases = read_all(client, ids.iter().map(|id| format!("{registry_path}/{id}")).collect()).await?;
    let (mut registry_ids, mut registry_controllers) = (BTreeSet::new(), BTreeSet::new());
    for ((path, data), id) in leases.into_iter().zip(&ids) {
        let (Some(data), Ok(id)) = (data, id.parse::<i32>()) else { continue };
        let lease: BrokerIdLease = znodes::decode(&path, "a node ID lease", &data)?;
        match lease.role.as_deref() {
            Some("controller") => {
                registry_controllers.insert(id);
            }
            Some("combined") => {
                registry_controllers.insert(id);
                registry_ids.insert(id);
            }
            _ => {
                registry_ids.insert(id);
            }
        }
    }

    let kafka = |source| ObserveError::Kafka { bootstrap: bootstrap.to_vec(), source };
    // The first broker that answers DescribeCluster is asked the rest.
    let mut answered = None;
    let mut last = WireError::NoBroker(bootstrap.to_vec());
    for address in bootstrap {
        match kafka_wire::describe_cluster(address, true, timeout).await {
            Ok(info) => {
                answered = Some((address.clone(), info));
                break;
            }
            Err(e) => last = e,
        }
    }
    let (address, info) = answered.ok_or_else(|| kafka(last))?;
    // The quorum through any broker that can forward DescribeQuorum: one cut off from the
    // controllers does not make a healthy quorum look leaderless.
    let quorum = async {
        let mut errors = Vec::new();
        for a in std::iter::once(&address).chain(bootstrap.iter().filter(|a| **a != address)) {
            match kafka_wire::describe_quorum(a, timeout).await {
                Ok(q) => return QuorumObservation::Known(q),
                Err(e) => errors.push(e.to_string()),
            }
        }
        QuorumObservation::Unanswered(errors.join("; "))
    };
    let bootstrap = std::slice::from_ref(&address);
    let (snapshot, moving, quorum) = tokio::join!(kafka_wire::describe_partitions(bootstrap, timeout), kafka_wire::list_reassignments(bootstrap, timeout), quorum);
    let snapshot = snapshot.map_err(kafka)?;
    // Replicas a reassignment is adding catch up before joining the ISR: a move, not a
    // replica falling behind. When the controller cannot say (no quorum leader, say), its
    // out-of-sync replicas are reported as under-replicated, as if nothing moved: the scan's
    // other findings (the quorum's first) matter more than telling a move apart.
    let moving = moving.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "partition reassignments unknown: replicas being added count as out of sync");
        BTreeMap::new()
    });

    let mut brokers = BTreeMap::new();
    let mut fenced = BTreeSet::new();
    for b in &info.brokers {
        if b.fenced {
            fenced.insert(b.broker_id);
            continue;
        }
        let host = if b.host.contains(':') { format!("[{}]", b.host) } else { b.host.clone() };
        brokers.insert(
            b.broker_id,
            BrokerRegistration {
                version: 0,
                host: Some(b.host.clone()),
                port: Some(b.port),
                endpoints: vec![format!("{host}:{}", b.port)],
                listener_security_protocol_map: None,
                rack: b.rack.clone(),
                jmx_port: None,
                timestamp: None,
                features: None,
            },
        );
    }
    let topics = snapshot
        .topics
        .into_iter()
        .map(|(name, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|(p, m)| {
                    let state = PartitionState { controller_epoch: 0, leader: m.leader, version: 0, leader_epoch: m.leader_epoch, isr: m.isr };
                    let adding = moving.get(&(name.clone(), p.max(0) as u32)).map(|r| r.adding.clone()).unwrap_or_default();
                    (p, PartitionObservation { replicas: m.replicas, state: Some(state), adding })
                })
                .collect();
            let min_isr = snapshot.min_isr.get(&name).copied();
            (name, TopicObservation { partitions, min_isr })
        })
        .collect();
    let controller = match &quorum {
        QuorumObservation::Known(q) if q.leader_id >= 0 => Some(q.leader_id),
        _ => None,
    };
    Ok(ClusterObservation {
        brokers,
        controller,
        topics,
        registry_ids,
        default_min_isr: None,
        zookeeper_latency,
        quorum: Some(quorum),
        fenced,
        registry_controllers,
    })
}

/// `min.insync.replicas` from a `/config/...` znode: `{"version":1,"config":{...}}`.
fn min_isr_of(data: &[u8]) -> Option<i32> {
    let v: serde_json::Value = serde_json::from_slice(data).ok()?;
    v.get("config")?.get("min.insync.replicas")?.as_str()?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn min_isr_is_read_from_config_znodes() {
        assert_eq!(super::min_isr_of(br#"{"version":1,"config":{"min.insync.replicas":"2"}}"#), Some(2));
        assert_eq!(super::min_isr_of(br#"{"version":1,"config":{}}"#), None);
        assert_eq!(super::min_isr_of(b"garbage"), None);
    }
}
