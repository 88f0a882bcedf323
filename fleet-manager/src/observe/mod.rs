//! `observe`: what the provider, ZooKeeper and DNS say of one cluster right now. Every source that
//! cannot be read becomes `Seen::Unknown(why)`, never an empty list.
//!
//! [`Observer`] is the seam the controller observes through: [`LiveObserver`] reads the real
//! world; tests substitute a simulated one to drive a reconcile in-process.

pub mod health;

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use fleet_common::znodes::{BrokerRegistration, TopicAssignment};
use fleet_common::{ClusterPaths, FleetPaths};
use zookeeper_client as zk;

use crate::metrics::Metrics;
use crate::plan::{DesiredCluster, ObservedCluster, ObservedTopic, Seen};
use crate::providers::{DnsZone, HostProvider, HostProviders};
use crate::store::now_ms;

/// What the controller observes a cluster through.
#[async_trait]
pub trait Observer: Send + Sync {
    async fn observe(&self, desired: &DesiredCluster) -> ObservedCluster;
}

/// The real world: the cluster's host provider, the DNS zone, and ZooKeeper (when connected).
pub struct LiveObserver<'a> {
    pub zk: Option<&'a zk::Client>,
    pub paths: &'a FleetPaths,
    pub hosts: &'a HostProviders,
    pub dns: &'a dyn DnsZone,
    pub metrics: &'a Metrics,
}

#[async_trait]
impl Observer for LiveObserver<'_> {
    async fn observe(&self, desired: &DesiredCluster) -> ObservedCluster {
        let provider = self.hosts.get(desired.spec.provider);
        observe_cluster(desired, self.zk, &self.paths.cluster(&desired.spec.name), provider, self.dns, Some(self.metrics)).await
    }
}

#[tracing::instrument(skip_all, fields(cluster = %desired.spec.name))]
pub async fn observe_cluster(
    desired: &DesiredCluster,
    zk: Option<&zk::Client>,
    paths: &ClusterPaths,
    hosts: Option<&dyn HostProvider>,
    dns: &dyn DnsZone,
    metrics: Option<&Metrics>,
) -> ObservedCluster {
    let cluster = desired.spec.name.as_str();
    let hosts = match hosts {
        Some(p) => {
            if let Some(m) = metrics {
                m.provider_call("hosts:list");
            }
            match p.list(cluster).await {
                Ok(h) => Seen::Known(h),
                Err(e) => Seen::Unknown(e.to_string()),
            }
        }
        None => Seen::Unknown(format!("provider {:?} is not configured on this fleet manager", desired.spec.provider)),
    };
    if let Some(m) = metrics {
        m.provider_call("dns:list");
    }
    let dns = match dns.list(cluster).await {
        Ok(d) => Seen::Known(d),
        Err(e) => Seen::Unknown(e.to_string()),
    };
    let Some(zk) = zk else {
        let mut o = ObservedCluster::unknown(now_ms(), "ZooKeeper is not connected");
        o.hosts = hosts;
        o.dns = dns;
        return o;
    };
    let kafka = paths.kafka();
    let zk_state = match zk.check_stat(paths.base()).await {
        Ok(stat) => Seen::Known(stat.is_some()),
        Err(e) => Seen::Unknown(format!("check {}: {e}", paths.base())),
    };
    let live_brokers = match zk.list_children(&kafka.broker_ids()).await {
        Ok(children) => Seen::Known(children.iter().filter_map(|c| c.parse::<i32>().ok()).collect::<BTreeSet<i32>>()),
        Err(zk::Error::NoNode) => Seen::Known(BTreeSet::new()),
        Err(e) => Seen::Unknown(format!("list {}: {e}", kafka.broker_ids())),
    };
    let registry = match fleet_common::registry::read_registry(zk, paths).await {
        Ok(r) => Seen::Known(r.into_iter().map(|(id, e)| (id, e.lease.instance_id)).collect::<BTreeMap<i32, String>>()),
        Err(e) => Seen::Unknown(e.to_string()),
    };
    let names: Vec<&str> = if desired.deleting { Vec::new() } else { desired.topics.iter().map(|t| t.spec.name.as_str()).collect() };
    let topics = match read_topics(zk, paths, &names).await {
        Ok(t) => Seen::Known(t),
        Err(e) => Seen::Unknown(e),
    };
    if let Some(m) = metrics {
        // check + list + registry (list and one multi-read) + three reads per topic.
        let registry_reads = if registry.known().is_some_and(|r| !r.is_empty()) { 2 } else { 1 };
        m.zookeeper_reads.inc_by((2 + registry_reads + 3 * names.len()) as u64);
    }
    ObservedCluster { at_ms: now_ms(), hosts, live_brokers, registry, topics, dns, zk_state }
}

/// The declared topics as Kafka has them (absent ones left out).
async fn read_topics(zk: &zk::Client, paths: &ClusterPaths, names: &[&str]) -> Result<BTreeMap<String, ObservedTopic>, String> {
    let kafka = paths.kafka();
    let reads = names.iter().map(|name| {
        let kafka = kafka.clone();
        async move {
            let topic_path = kafka.topic(name);
            let assignment = match zk.get_data(&topic_path).await {
                Ok((data, _)) => fleet_common::znodes::decode::<TopicAssignment>(&topic_path, "a topic assignment", &data)
                    .map_err(|e| e.to_string())?,
                Err(zk::Error::NoNode) => return Ok(None),
                Err(e) => return Err(format!("read {topic_path}: {e}")),
            };
            let config_path = kafka.topic_config(name);
            let configs = match zk.get_data(&config_path).await {
                Ok((data, _)) => {
                    let v: serde_json::Value = serde_json::from_slice(&data).map_err(|e| format!("{config_path}: {e}"))?;
                    v.get("config")
                        .and_then(|c| c.as_object())
                        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect())
                        .unwrap_or_default()
                }
                Err(zk::Error::NoNode) => BTreeMap::new(),
                Err(e) => return Err(format!("read {config_path}: {e}")),
            };
            let delete_path = format!("{}/admin/delete_topics/{name}", kafka.chroot());
            let marked = match zk.check_stat(&delete_path).await {
                Ok(stat) => stat.is_some(),
                Err(e) => return Err(format!("check {delete_path}: {e}")),
            };
            Ok(Some((
                name.to_string(),
                ObservedTopic {
                    partitions: assignment.partitions.len() as u32,
                    replication_factor: assignment.partitions.values().map(|r| r.len()).min().unwrap_or(0) as u16,
                    configs,
                    marked_for_deletion: marked,
                },
            )))
        }
    });
    let results = futures::future::join_all(reads).await;
    let mut out = BTreeMap::new();
    for r in results {
        if let Some((name, topic)) = r? {
            out.insert(name, topic);
        }
    }
    Ok(out)
}

/// Every live broker's registration (`/brokers/ids/<id>`); a broker gone between the listing
/// and its read is left out.
pub async fn registrations(zk: &zk::Client, kafka: &fleet_common::KafkaPaths) -> Result<BTreeMap<i32, BrokerRegistration>, String> {
    let children = match zk.list_children(&kafka.broker_ids()).await {
        Ok(c) => c,
        Err(zk::Error::NoNode) => Vec::new(),
        Err(e) => return Err(format!("list {}: {e}", kafka.broker_ids())),
    };
    let mut out = BTreeMap::new();
    for child in children {
        let Ok(id) = child.parse::<i32>() else { continue };
        let path = kafka.broker(id);
        match zk.get_data(&path).await {
            Ok((data, _)) => {
                let reg = fleet_common::znodes::decode::<BrokerRegistration>(&path, "a broker registration", &data).map_err(|e| e.to_string())?;
                out.insert(id, reg);
            }
            Err(zk::Error::NoNode) => {}
            Err(e) => return Err(format!("read {path}: {e}")),
        }
    }
    Ok(out)
}

/// `host:port` of every live broker, for Kafka's admin client.
pub async fn bootstrap_servers(zk: &zk::Client, paths: &ClusterPaths) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for reg in registrations(zk, &paths.kafka()).await?.into_values() {
        if let Some(ep) = reg.endpoints.first() {
            if let Some((_, hostport)) = ep.split_once("://") {
                out.push(hostport.to_string());
                continue;
            }
        }
        if let (Some(h), Some(p)) = (reg.host, reg.port) {
            out.push(format!("{h}:{p}"));
        }
    }
    Ok(out)
}
