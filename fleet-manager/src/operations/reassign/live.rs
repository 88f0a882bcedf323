//! A decommission's or rebalance's reads and writes in ZooKeeper, the way Kafka's own tools make
//! them in ZooKeeper mode: `/admin/reassign_partitions`, `/admin/preferred_replica_election`,
//! and topic and broker configs with a change notification. Every write is a multi that also
//! checks the leader's election znode, so a deposed leader writes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use fleet_api::operation::ThrottleSet;
use fleet_common::znodes::PartitionState;
use fleet_common::{ClusterPaths, KafkaPaths};
use zookeeper_client as zk;

use super::moves::{self, Move};
use super::super::machine::ActionResult;
use super::{PartitionNow, Partitions};

pub const LEADER_REPLICAS: &str = "leader.replication.throttled.replicas";
pub const FOLLOWER_REPLICAS: &str = "follower.replication.throttled.replicas";
pub const LEADER_RATE: &str = "leader.replication.throttled.rate";
pub const FOLLOWER_RATE: &str = "follower.replication.throttled.rate";

/// Every partition of the named topics (all topics when `None`).
pub async fn partitions(zk: &zk::Client, kafka: &KafkaPaths, topics: Option<&BTreeSet<String>>) -> Result<Partitions, String> {
    let names: Vec<String> = match topics {
        Some(t) => t.iter().cloned().collect(),
        None => match zk.list_children(&kafka.topics()).await {
            Ok(c) => c,
            Err(zk::Error::NoNode) => Vec::new(),
            Err(e) => return Err(format!("list {}: {e}", kafka.topics())),
        },
    };
    let reads = names.iter().map(|name| async move {
        let path = kafka.topic(name);
        match zk.get_data(&path).await {
            Ok((data, _)) => decode_topic(&path, &data).map(|p| Some((name.clone(), p))),
            Err(zk::Error::NoNode) => Ok(None),
            Err(e) => Err(format!("read {path}: {e}")),
        }
    });
    let mut out = Partitions::new();
    for r in futures::future::join_all(reads).await {
        if let Some((topic, parts)) = r? {
            for (p, now) in parts {
                out.insert((topic.clone(), p), now);
            }
        }
    }
    Ok(out)
}

fn decode_topic(path: &str, bytes: &[u8]) -> Result<BTreeMap<u32, PartitionNow>, String> {
    let data: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| format!("{path}: not JSON: {e}"))?;
    let list = |key: &str, p: &str| -> Vec<i32> {
        data.get(key).and_then(|m| m.get(p)).and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default()
    };
    let parts = data.get("partitions").and_then(|p| p.as_object()).ok_or_else(|| format!("{path}: no `partitions`"))?;
    let mut out = BTreeMap::new();
    for (k, v) in parts {
        let p: u32 = k.parse().map_err(|_| format!("{path}: partition `{k}` is not a number"))?;
        let replicas: Vec<i32> = serde_json::from_value(v.clone()).map_err(|e| format!("{path}: partition {k}: {e}"))?;
        out.insert(p, PartitionNow { replicas, adding: list("adding_replicas", k), removing: list("removing_replicas", k) });
    }
    Ok(out)
}

fn reassign_path(kafka: &KafkaPaths) -> String {
    format!("{}/admin/reassign_partitions", kafka.chroot())
}

fn election_path(kafka: &KafkaPaths) -> String {
    format!("{}/admin/preferred_replica_election", kafka.chroot())
}

/// The partitions `/admin/reassign_partitions` lists; `None` when there is none.
pub async fn reassigning(zk: &zk::Client, kafka: &KafkaPaths) -> Result<Option<BTreeSet<(String, u32)>>, String> {
    let path = reassign_path(kafka);
    match zk.get_data(&path).await {
        Ok((data, _)) => {
            let v: serde_json::Value = serde_json::from_slice(&data).map_err(|e| format!("{path}: {e}"))?;
            let listed = v
                .get("partitions")
                .and_then(|p| p.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|p| Some((p.get("topic")?.as_str()?.to_string(), p.get("partition")?.as_u64()? as u32)))
                        .collect()
                })
                .unwrap_or_default();
            Ok(Some(listed))
        }
        Err(zk::Error::NoNode) => Ok(None),
        Err(e) => Err(format!("read {path}: {e}")),
    }
}

pub async fn electing(zk: &zk::Client, kafka: &KafkaPaths) -> Result<bool, String> {
    let path = election_path(kafka);
    zk.check_stat(&path).await.map(|s| s.is_some()).map_err(|e| format!("check {path}: {e}"))
}

/// Each of a topic's partitions with its replicas, leader and ISR (leader -1 and no ISR when
/// it has no state yet).
pub async fn topic_partitions(zk: &zk::Client, kafka: &KafkaPaths, topic: &str) -> Result<Vec<fleet_api::wire::PartitionView>, String> {
    let names: BTreeSet<String> = [topic.to_string()].into();
    let assigned = partitions(zk, kafka, Some(&names)).await?;
    let reads = assigned.iter().map(|((t, p), now)| async move {
        let path = kafka.partition_state(t, *p as i32);
        let (leader, isr) = match zk.get_data(&path).await {
            Ok((data, _)) => {
                let state: PartitionState = fleet_common::znodes::decode(&path, "a partition state", &data).map_err(|e| e.to_string())?;
                (state.leader, state.isr)
            }
            Err(zk::Error::NoNode) => (-1, Vec::new()),
            Err(e) => return Err(format!("read {path}: {e}")),
        };
        Ok(fleet_api::wire::PartitionView { partition: *p, leader, replicas: now.replicas.clone(), isr })
    });
    futures::future::join_all(reads).await.into_iter().collect()
}

/// Partition -> its leader (-1 when it has none or no state yet).
pub async fn leaders(zk: &zk::Client, kafka: &KafkaPaths, keys: &BTreeSet<(String, u32)>) -> Result<BTreeMap<(String, u32), i32>, String> {
    let reads = keys.iter().map(|(t, p)| async move {
        let path = kafka.partition_state(t, *p as i32);
        match zk.get_data(&path).await {
            Ok((data, _)) => {
                let state: PartitionState = fleet_common::znodes::decode(&path, "a partition state", &data).map_err(|e| e.to_string())?;
                Ok(state.leader)
            }
            Err(zk::Error::NoNode) => Ok(-1),
            Err(e) => Err(format!("read {path}: {e}")),
        }
    });
    let results = futures::future::join_all(reads).await;
    let mut out = BTreeMap::new();
    for (k, r) in keys.iter().zip(results) {
        out.insert(k.clone(), r?);
    }
    Ok(out)
}

/// Partition sizes on each of `brokers` (all live ones when `None`), from Kafka's DescribeLogDirs;
/// a broker that does not answer within 2 s is left out.
pub async fn sizes(zk: &zk::Client, kafka: &KafkaPaths, brokers: Option<&BTreeSet<i32>>) -> BTreeMap<i32, fleet_common::kafka_wire::BrokerSizes> {
    let regs = match crate::observe::registrations(zk, kafka).await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(error = %e, "no registrations: no partition sizes");
            return BTreeMap::new();
        }
    };
    let asks = regs.into_iter().filter(|(id, _)| brokers.is_none_or(|b| b.contains(id))).filter_map(|(id, reg)| {
        let address = reg.endpoints.first().and_then(|e| e.split_once("://")).map(|(_, a)| a.to_string()).or_else(|| Some(format!("{}:{}", reg.host?, reg.port?)))?;
        Some(async move { (id, fleet_common::kafka_wire::describe_log_dirs(&address, std::time::Duration::from_secs(2)).await) })
    });
    let mut out = BTreeMap::new();
    for (id, r) in futures::future::join_all(asks).await {
        match r {
            Ok(s) => {
                out.insert(id, s);
            }
            Err(e) => tracing::debug!(broker = id, error = %e, "partition sizes unavailable"),
        }
    }
    out
}

/// The throttle rates each broker has now (an operator's, before an operation sets its own).
pub async fn prior_rates(zk: &zk::Client, kafka: &KafkaPaths, brokers: &[i32]) -> Result<BTreeMap<i32, fleet_api::operation::PriorRates>, String> {
    let mut out = BTreeMap::new();
    for b in brokers {
        let (config, _) = read_config(zk, &format!("{}/config/brokers/{b}", kafka.chroot())).await?;
        let prior = fleet_api::operation::PriorRates { leader: config.get(LEADER_RATE).cloned(), follower: config.get(FOLLOWER_RATE).cloned() };
        if prior.leader.is_some() || prior.follower.is_some() {
            out.insert(*b, prior);
        }
    }
    Ok(out)
}

/// Cancels these partitions' reassignments through the cluster's controller
/// (AlterPartitionReassignments, KIP-455): their replicas go back to where they were.
pub async fn cancel_reassignments(zk: &zk::Client, kafka: &KafkaPaths, keys: &[(String, u32)]) -> ActionResult {
    let started = Instant::now();
    let servers: Vec<String> = match crate::observe::registrations(zk, kafka).await {
        Ok(regs) => regs.values().filter_map(|r| r.endpoints.first().and_then(|e| e.split_once("://")).map(|(_, a)| a.to_string())).collect(),
        Err(e) => return ActionResult::Retry(e),
    };
    match fleet_common::kafka_wire::cancel_reassignments(&servers, keys, std::time::Duration::from_secs(10)).await {
        Ok(refused) if refused.is_empty() => ActionResult::Done { millis: started.elapsed().as_millis() as u64 },
        Ok(refused) => ActionResult::Retry(format!("the controller did not cancel: {}", refused.join("; "))),
        Err(e) => ActionResult::Retry(format!("cancelling through the controller: {e}")),
    }
}

/// Leaving brokers still registered in `/brokers/ids` or holding an ID in the registry.
pub async fn still_there(zk: &zk::Client, cluster: &ClusterPaths, leaving: &[i32]) -> Result<BTreeSet<i32>, String> {
    let kafka = cluster.kafka();
    let mut out = BTreeSet::new();
    for b in leaving {
        for path in [kafka.broker(*b), cluster.broker_id(*b)] {
            if zk.check_stat(&path).await.map_err(|e| format!("check {path}: {e}"))?.is_some() {
                out.insert(*b);
            }
        }
    }
    Ok(out)
}

/// Writes `/admin/reassign_partitions` (Kafka's controller takes it up and deletes it when every
/// listed partition has moved). Refused while another reassignment is listed.
pub async fn reassign(zk: &zk::Client, leader_znode: &str, kafka: &KafkaPaths, moves: &[Move]) -> ActionResult {
    let partitions = moves.iter().map(|m| serde_json::json!({ "topic": m.topic, "partition": m.partition, "replicas": m.to })).collect();
    create_request(zk, leader_znode, &reassign_path(kafka), partitions).await
}

/// Writes `/admin/preferred_replica_election` for these partitions.
pub async fn elect(zk: &zk::Client, leader_znode: &str, kafka: &KafkaPaths, keys: &[(String, u32)]) -> ActionResult {
    let partitions = keys.iter().map(|(t, p)| serde_json::json!({ "topic": t, "partition": p })).collect();
    create_request(zk, leader_znode, &election_path(kafka), partitions).await
}

/// Creates one of Kafka's `/admin` request znodes (`{"version":1,"partitions":[...]}`), fenced.
async fn create_request(zk: &zk::Client, leader_znode: &str, path: &str, partitions: Vec<serde_json::Value>) -> ActionResult {
    let data = serde_json::to_vec(&serde_json::json!({ "version": 1, "partitions": partitions })).unwrap_or_default();
    let started = Instant::now();
    let mut writer = match zk.new_check_writer(leader_znode, None) {
        Ok(w) => w,
        Err(e) => return ActionResult::Retry(format!("check {leader_znode}: {e}")),
    };
    // Kafka's znodes take Kafka's ACL (open without zookeeper.set.acl), not the fleet's.
    let options = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    if let Err(e) = writer.add_create(path, &data, &options) {
        return ActionResult::Refused(format!("create {path}: {e}"));
    }
    finish(writer.commit().await, leader_znode, path, started)
}

fn finish(r: Result<Vec<zk::MultiWriteResult>, zk::CheckWriteError>, leader_znode: &str, path: &str, started: Instant) -> ActionResult {
    match r {
        Ok(_) => ActionResult::Done { millis: started.elapsed().as_millis() as u64 },
        Err(zk::CheckWriteError::CheckFailed { source }) => ActionResult::Retry(format!("not the leader any more ({leader_znode}: {source})")),
        // Someone else's (or an earlier pass's) request is still there: wait for Kafka to take it.
        Err(zk::CheckWriteError::OperationFailed { source: zk::Error::NodeExists, .. }) => ActionResult::Retry(format!("{path} exists: Kafka has not taken up the last request yet")),
        Err(zk::CheckWriteError::OperationFailed { source, .. }) => ActionResult::Retry(format!("write {path}: {source}")),
        Err(zk::CheckWriteError::RequestFailed { source }) => ActionResult::Retry(format!("write {path}: {source}")),
    }
}

/// A config znode (`/config/topics/<t>` or `/config/brokers/<id>`): its settings and version
/// (`None`: absent).
async fn read_config(zk: &zk::Client, path: &str) -> Result<(BTreeMap<String, String>, Option<i32>), String> {
    match zk.get_data(path).await {
        Ok((data, stat)) => {
            let v: serde_json::Value = serde_json::from_slice(&data).map_err(|e| format!("{path}: {e}"))?;
            let config = v
                .get("config")
                .and_then(|c| c.as_object())
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
                .unwrap_or_default();
            Ok((config, Some(stat.version)))
        }
        Err(zk::Error::NoNode) => Ok((BTreeMap::new(), None)),
        Err(e) => Err(format!("read {path}: {e}")),
    }
}

fn entries(list: &[String]) -> moves::Throttled {
    list.iter().filter_map(|e| moves::parse_throttled(e)).flatten().collect()
}

/// A topic's throttle config going from `owned` entries to `want`: our old entries removed, the
/// new ones merged in, anyone else's (and a `*`) left as they are.
pub fn next_throttled(existing: Option<&str>, owned: &moves::Throttled, want: &moves::Throttled) -> Option<String> {
    let stale: moves::Throttled = owned.difference(want).copied().collect();
    let trimmed = match existing {
        Some(v) => moves::remove_throttled(v, &stale),
        None => None,
    };
    if want.is_empty() {
        trimmed
    } else {
        Some(moves::merge_throttled(trimmed.as_deref(), want))
    }
}

/// One config znode to write: (path, entity for the change notification, new config, version read).
type ConfigWrite = (String, String, BTreeMap<String, String>, Option<i32>);

/// Makes the throttles this operation holds go from `owned` to `want`, in one multi: each config
/// znode written at the version read, with Kafka's change notification, so brokers apply it.
/// Rates are removed from a broker only while they still hold the value this operation set.
pub async fn apply_throttles(zk: &zk::Client, leader_znode: &str, kafka: &KafkaPaths, owned: &ThrottleSet, want: &ThrottleSet) -> ActionResult {
    let started = Instant::now();
    let root = kafka.chroot();
    let mut writes: Vec<ConfigWrite> = Vec::new();
    let topics: BTreeSet<&String> = owned.topics.keys().chain(want.topics.keys()).collect();
    for topic in topics {
        let path = kafka.topic_config(topic);
        let (config, version) = match read_config(zk, &path).await {
            Ok(c) => c,
            Err(e) => return ActionResult::Retry(e),
        };
        let mut next = config.clone();
        let o = owned.topics.get(topic).cloned().unwrap_or_default();
        let w = want.topics.get(topic).cloned().unwrap_or_default();
        for (key, o, w) in [(LEADER_REPLICAS, &o.leader, &w.leader), (FOLLOWER_REPLICAS, &o.follower, &w.follower)] {
            match next_throttled(config.get(key).map(String::as_str), &entries(o), &entries(w)) {
                Some(v) => next.insert(key.to_string(), v),
                None => next.remove(key),
            };
        }
        if next != config && !(version.is_none() && next.is_empty()) {
            writes.push((path, format!("topics/{topic}"), next, version));
        }
    }
    // Rates: ours, or the lower rate an operator had set there (kept, and put back when this
    // operation lets go); never removed while it is someone else's.
    let set_by_us = |set: &ThrottleSet, prior: Option<&String>| -> String {
        match prior.and_then(|p| p.trim().parse::<u64>().ok()) {
            Some(p) => p.min(set.rate).to_string(),
            None => set.rate.to_string(),
        }
    };
    let brokers: BTreeSet<i32> = owned.brokers.iter().chain(want.brokers.iter()).copied().collect();
    for b in brokers {
        let path = format!("{root}/config/brokers/{b}");
        let (config, version) = match read_config(zk, &path).await {
            Ok(c) => c,
            Err(e) => return ActionResult::Retry(e),
        };
        let prior = want.prior.get(&b).or_else(|| owned.prior.get(&b)).cloned().unwrap_or_default();
        let mut next = config.clone();
        for (key, prior_value) in [(LEADER_RATE, prior.leader.as_ref()), (FOLLOWER_RATE, prior.follower.as_ref())] {
            if want.brokers.contains(&b) {
                next.insert(key.to_string(), set_by_us(want, prior_value));
            } else if owned.brokers.contains(&b) && next.get(key) == Some(&set_by_us(owned, prior_value)) {
                match prior_value {
                    Some(v) => next.insert(key.to_string(), v.clone()),
                    None => next.remove(key),
                };
            }
        }
        if next != config {
            writes.push((path, format!("brokers/{b}"), next, version));
        }
    }
    if writes.is_empty() {
        return ActionResult::Done { millis: 0 };
    }
    let mut writer = match zk.new_check_writer(leader_znode, None) {
        Ok(w) => w,
        Err(e) => return ActionResult::Retry(format!("check {leader_znode}: {e}")),
    };
    // Kafka's znodes take Kafka's ACL (open without zookeeper.set.acl), not the fleet's.
    let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    let sequential = zk::CreateMode::PersistentSequential.with_acls(zk::Acls::anyone_all());
    let notification = format!("{root}/config/changes/config_change_");
    for (path, entity, config, version) in &writes {
        let data = serde_json::to_vec(&serde_json::json!({ "version": 1, "config": config })).unwrap_or_default();
        let added = match version {
            Some(v) => writer.add_set_data(path, &data, Some(*v)),
            None => writer.add_create(path, &data, &persistent),
        };
        if let Err(e) = added {
            return ActionResult::Refused(format!("write {path}: {e}"));
        }
        let change = serde_json::to_vec(&serde_json::json!({ "version": 2, "entity_path": entity })).unwrap_or_default();
        if let Err(e) = writer.add_create(&notification, &change, &sequential) {
            return ActionResult::Refused(format!("create {notification}: {e}"));
        }
    }
    match writer.commit().await {
        Ok(_) => ActionResult::Done { millis: started.elapsed().as_millis() as u64 },
        Err(zk::CheckWriteError::CheckFailed { source }) => ActionResult::Retry(format!("not the leader any more ({leader_znode}: {source})")),
        // A config changed (or appeared) since it was read: read again next pass.
        Err(zk::CheckWriteError::OperationFailed { source, index }) => {
            ActionResult::Retry(format!("throttle write {}: {source}; read again", writes.get(index / 2).map(|w| w.0.as_str()).unwrap_or("")))
        }
        Err(zk::CheckWriteError::RequestFailed { source }) => ActionResult::Retry(format!("throttle write: {source}")),
    }
}
