//! A ConfigRollout's reads and writes: registrations (with the zxid that tells a restart),
//! the controller and in-sync replicas from ZooKeeper; dynamic configs through Kafka's Admin API
//! (IncrementalAlterConfigs, DescribeConfigs), as `kafka-configs --bootstrap-server` makes them.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use fleet_common::kafka_wire::{self, SOURCE_DYNAMIC_BROKER, SOURCE_DYNAMIC_DEFAULT};
use fleet_common::znodes::{ControllerZnode, PartitionState};
use fleet_common::KafkaPaths;
use zookeeper_client as zk;

use super::super::machine::ActionResult;
use super::{AdminWrite, Registered, Scope};

const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Kafka's error codes that refuse a change for good (any other is tried again).
const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
const INVALID_CONFIG: i16 = 40;
const INVALID_REQUEST: i16 = 42;
const POLICY_VIOLATION: i16 = 44;

/// Every live broker with its registration's creation zxid and its endpoint.
pub async fn registered(zk: &zk::Client, kafka: &KafkaPaths) -> Result<BTreeMap<i32, Registered>, String> {
    Ok(crate::observe::registrations_with_zxid(zk, kafka)
        .await?
        .into_iter()
        .map(|(id, (reg, czxid))| (id, Registered { czxid, endpoint: crate::observe::endpoint_of(&reg) }))
        .collect())
}

/// The active controller (`None` while there is none).
pub async fn controller(zk: &zk::Client, kafka: &KafkaPaths) -> Result<Option<i32>, String> {
    let path = kafka.controller();
    match zk.get_data(&path).await {
        Ok((data, _)) => Ok(Some(fleet_common::znodes::decode::<ControllerZnode>(&path, "the controller", &data).map_err(|e| e.to_string())?.brokerid)),
        Err(zk::Error::NoNode) => Ok(None),
        Err(e) => Err(format!("read {path}: {e}")),
    }
}

/// Partitions (`topic-p`) whose ISR lacks one of their replicas, or that have no state yet.
pub async fn lagging(zk: &zk::Client, kafka: &KafkaPaths) -> Result<Vec<String>, String> {
    let assigned = crate::operations::reassign::live::partitions(zk, kafka, None).await?;
    let reads = assigned.iter().map(|((t, p), now)| async move {
        let path = kafka.partition_state(t, *p as i32);
        match zk.get_data(&path).await {
            Ok((data, _)) => {
                let state: PartitionState = fleet_common::znodes::decode(&path, "a partition state", &data).map_err(|e| e.to_string())?;
                let full = now.replicas.iter().all(|r| state.isr.contains(r));
                Ok((!full).then(|| format!("{t}-{p}")))
            }
            Err(zk::Error::NoNode) => Ok(Some(format!("{t}-{p}"))),
            Err(e) => Err(format!("read {path}: {e}")),
        }
    });
    let mut out = Vec::new();
    for r in futures::future::join_all(reads).await {
        if let Some(p) = r? {
            out.push(p);
        }
    }
    Ok(out)
}

/// Partitions whose replication factor is at or below their `min.insync.replicas` (the topic's
/// own, else `default_min_isr`): no restart order keeps acks=all writes to them going.
pub async fn unprotected(zk: &zk::Client, kafka: &KafkaPaths, default_min_isr: usize) -> Result<Vec<String>, String> {
    let assigned = crate::operations::reassign::live::partitions(zk, kafka, None).await?;
    let topics: std::collections::BTreeSet<&String> = assigned.keys().map(|(t, _)| t).collect();
    let reads = topics.into_iter().map(|t| async move {
        let path = kafka.topic_config(t);
        match zk.get_data(&path).await {
            Ok((data, _)) => {
                let v: serde_json::Value = serde_json::from_slice(&data).map_err(|e| format!("{path}: {e}"))?;
                let m = v.get("config").and_then(|c| c.get("min.insync.replicas")).and_then(|m| m.as_str()).and_then(|m| m.trim().parse().ok());
                Ok((t.clone(), m.unwrap_or(default_min_isr)))
            }
            Err(zk::Error::NoNode) => Ok((t.clone(), default_min_isr)),
            Err(e) => Err(format!("read {path}: {e}")),
        }
    });
    let mut min_isr = BTreeMap::new();
    for r in futures::future::join_all(reads).await {
        let (t, m) = r?;
        min_isr.insert(t, m);
    }
    Ok(assigned
        .iter()
        .filter_map(|((t, p), now)| {
            let m = min_isr.get(t).copied().unwrap_or(default_min_isr);
            (now.replicas.len() <= m).then(|| format!("{t}-{p} (RF {}, min ISR {m})", now.replicas.len()))
        })
        .collect())
}

/// Partitions whose preferred leader (first replica) is `broker`, led by another broker now.
pub async fn led_elsewhere(zk: &zk::Client, kafka: &KafkaPaths, broker: i32) -> Result<Vec<(String, u32)>, String> {
    let assigned = crate::operations::reassign::live::partitions(zk, kafka, None).await?;
    let preferred: std::collections::BTreeSet<(String, u32)> = assigned.iter().filter(|(_, p)| p.replicas.first() == Some(&broker)).map(|(k, _)| k.clone()).collect();
    let leaders = crate::operations::reassign::live::leaders(zk, kafka, &preferred).await?;
    Ok(leaders.into_iter().filter(|(_, l)| *l != broker).map(|(k, _)| k).collect())
}

/// Registered brokers that do not answer ApiVersions within 2 s (or registered no endpoint).
pub async fn unreachable(brokers: &BTreeMap<i32, Registered>) -> Vec<i32> {
    let probes = brokers.iter().map(|(id, r)| async move {
        let answered = match &r.endpoint {
            Some(e) => kafka_wire::Connection::open(e, Duration::from_secs(2)).await.is_ok(),
            None => false,
        };
        (!answered).then_some(*id)
    });
    futures::future::join_all(probes).await.into_iter().flatten().collect()
}

/// What some broker does not report as `writes` want (`broker 2: num.io.threads=8, want 6`).
pub async fn read_back(brokers: &BTreeMap<i32, Registered>, writes: &[AdminWrite]) -> Result<Vec<String>, String> {
    let keys: Vec<String> = writes.iter().map(|w| w.key.clone()).collect();
    let reads = brokers.iter().map(|(id, r)| {
        let keys = keys.clone();
        async move {
            let Some(endpoint) = &r.endpoint else { return Err(format!("broker {id} registered no endpoint")) };
            let got = kafka_wire::describe_broker_configs(endpoint, &id.to_string(), &keys, ADMIN_TIMEOUT).await.map_err(|e| e.to_string())?;
            let mut lag = Vec::new();
            for w in writes {
                let entry = got.get(&w.key);
                let ok = match &w.value {
                    Some(v) => entry.is_some_and(|e| e.value.as_deref() == Some(v.as_str())),
                    // Deleted: no dynamic value of it left at its scope.
                    None => entry.is_none_or(|e| e.source != if w.scope == Scope::Default { SOURCE_DYNAMIC_DEFAULT } else { SOURCE_DYNAMIC_BROKER }),
                };
                if !ok {
                    let now = entry.and_then(|e| e.value.clone()).unwrap_or_else(|| "(not reported)".into());
                    lag.push(format!("broker {id}: {}={now}, want {}", w.key, w.value.as_deref().unwrap_or("(no dynamic value)")));
                }
            }
            Ok(lag)
        }
    });
    let mut out = Vec::new();
    for r in futures::future::join_all(reads).await {
        out.extend(r?);
    }
    Ok(out)
}

/// Makes every write: cluster-wide keys once (the default, through any broker), per-broker keys
/// on each broker (each through itself, as ZooKeeper-mode Kafka requires).
pub async fn configure(brokers: &BTreeMap<i32, Registered>, writes: &[AdminWrite]) -> ActionResult {
    let started = Instant::now();
    let endpoints: Vec<(i32, String)> = brokers.iter().filter_map(|(id, r)| r.endpoint.clone().map(|e| (*id, e))).collect();
    let Some((_, any)) = endpoints.first() else {
        return ActionResult::Retry("no broker registered to send the configs to".into());
    };
    let pairs = |scope: Scope| -> Vec<(String, Option<String>)> { writes.iter().filter(|w| w.scope == scope).map(|w| (w.key.clone(), w.value.clone())).collect() };
    let result = async {
        let default = pairs(Scope::Default);
        if let Some((id, any)) = endpoints.first() {
            step_thread_pools(*id, any, &default).await?;
        }
        if !default.is_empty() {
            kafka_wire::alter_broker_configs(any, "", &default, ADMIN_TIMEOUT).await?;
        }
        let each = pairs(Scope::EachBroker);
        if !each.is_empty() {
            for (id, endpoint) in &endpoints {
                kafka_wire::alter_broker_configs(endpoint, &id.to_string(), &each, ADMIN_TIMEOUT).await?;
            }
        }
        Ok::<(), kafka_wire::WireError>(())
    }
    .await;
    match result {
        Ok(()) => ActionResult::Done { millis: started.elapsed().as_millis() as u64 },
        // Kafka refused a value (validated before anything is stored): retrying cannot help.
        Err(e @ kafka_wire::WireError::Kafka { code: INVALID_CONFIG | INVALID_REQUEST | POLICY_VIOLATION | CLUSTER_AUTHORIZATION_FAILED, .. }) => {
            ActionResult::Refused(format!("Kafka refused the change: {e}"))
        }
        Err(e) => ActionResult::Retry(e.to_string()),
    }
}

/// Kafka's own check of each dynamic value `writes` set, through any broker of `brokers`,
/// nothing stored: `Ok(None)` when every value passes, `Ok(Some((key, why)))` for the first
/// refused, `Err` when no broker could be asked. Thread pools are left to the catalog's ranges
/// (Kafka checks their size against the current one, which a stepped change gets past).
pub async fn validate(brokers: &BTreeMap<i32, Registered>, writes: &[AdminWrite]) -> Result<Option<(String, String)>, String> {
    let Some((id, address)) = brokers.iter().find_map(|(id, r)| r.endpoint.clone().map(|e| (*id, e))) else {
        return Err("no broker registered".into());
    };
    for w in writes.iter().filter(|w| w.value.is_some() && !THREAD_POOLS.contains(&w.key.as_str())) {
        let resource = if w.scope == Scope::Default { String::new() } else { id.to_string() };
        match kafka_wire::validate_broker_configs(&address, &resource, &[(w.key.clone(), w.value.clone())], ADMIN_TIMEOUT).await {
            Ok(()) => {}
            Err(kafka_wire::WireError::Kafka { code: INVALID_CONFIG | INVALID_REQUEST | POLICY_VIOLATION, message, .. }) => {
                return Ok(Some((w.key.clone(), message.unwrap_or_else(|| "refused".into()))));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(None)
}

/// Thread pools Kafka resizes at run time only to at most double, or at least half, their
/// current size (its `DynamicThreadPool` and log cleaner checks).
const THREAD_POOLS: [&str; 6] = ["num.io.threads", "num.network.threads", "num.replica.fetchers", "num.recovery.threads.per.data.dir", "background.threads", "log.cleaner.threads"];

/// The next size on the way from `now` to `want` that Kafka accepts in one change.
pub fn thread_pool_step(now: i64, want: i64) -> i64 {
    if want > now {
        want.min(now.max(1) * 2)
    } else {
        want.max((now + 1) / 2)
    }
}

/// Takes each thread pool among `writes` to its size in steps Kafka accepts (2 -> 4 -> 6), each
/// step written as the cluster-wide default through broker `id` and waited for there.
async fn step_thread_pools(id: i32, address: &str, writes: &[(String, Option<String>)]) -> Result<(), kafka_wire::WireError> {
    let wanted: Vec<(String, i64)> = writes
        .iter()
        .filter(|(k, _)| THREAD_POOLS.contains(&k.as_str()))
        .filter_map(|(k, v)| Some((k.clone(), v.as_deref()?.trim().parse::<i64>().ok()?)))
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = wanted.iter().map(|(k, _)| k.clone()).collect();
    let protocol = |what: String| kafka_wire::WireError::Protocol { address: address.to_string(), what };
    for _ in 0..12 {
        let now = kafka_wire::describe_broker_configs(address, &id.to_string(), &keys, ADMIN_TIMEOUT).await?;
        let current = |k: &str| now.get(k).and_then(|e| e.value.as_deref()).and_then(|v| v.trim().parse::<i64>().ok());
        let step: Vec<(String, Option<String>)> = wanted
            .iter()
            .filter_map(|(k, want)| {
                let c = current(k)?;
                (c != *want).then(|| (k.clone(), Some(thread_pool_step(c, *want).to_string())))
            })
            .collect();
        // Within one step of the target (or not reported): the final write does the rest.
        let last_step = |(k, v): &(String, Option<String>)| wanted.iter().any(|(wk, w)| wk == k && v.as_deref() == Some(w.to_string().as_str()));
        if step.iter().all(last_step) {
            return Ok(());
        }
        kafka_wire::alter_broker_configs(address, "", &step, ADMIN_TIMEOUT).await?;
        // The broker takes the default from ZooKeeper's change notification: wait until it has.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let now = kafka_wire::describe_broker_configs(address, &id.to_string(), &keys, ADMIN_TIMEOUT).await?;
            if step.iter().all(|(k, v)| now.get(k).and_then(|e| e.value.as_deref()) == v.as_deref()) {
                break;
            }
            if Instant::now() > deadline {
                return Err(protocol(format!("broker {id} did not take the thread pool step {step:?} within 10 s")));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tracing::info!(broker = id, ?step, "thread pools resized one step");
    }
    Err(protocol(format!("thread pools not at their sizes after 12 steps: {wanted:?}")))
}
