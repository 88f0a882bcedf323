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
use crate::plan::{DesiredCluster, HostRole, HostState, ObservedCluster, ObservedHost, ObservedQuorum, ObservedTopic, QuorumMember, Seen};
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
    let registry = match fleet_common::registry::read_registry(zk, paths).await {
        Ok(r) => Seen::Known(r.into_iter().map(|(id, e)| (id, e.lease.instance_id)).collect::<BTreeMap<i32, String>>()),
        Err(e) => Seen::Unknown(e.to_string()),
    };
    let names: Vec<&str> = if desired.deleting { Vec::new() } else { desired.topics.iter().map(|t| t.spec.name.as_str()).collect() };
    if desired.spec.is_kraft() {
        // Kafka's own state is in the controllers, not ZooKeeper: asked through the protocol.
        let (live_brokers, mut quorum, topics) = observe_kraft(&hosts, &names).await;
        if let Seen::Known(q) = &mut quorum {
            match current_directories(zk, paths).await {
                Ok(d) => q.current_directories = d,
                // Without them no voter can be told replaced: the quorum is not known enough.
                Err(e) => quorum = Seen::Unknown(e),
            }
        }
        if let Some(m) = metrics {
            let registry_reads = if registry.known().is_some_and(|r| !r.is_empty()) { 2 } else { 1 };
            m.zookeeper_reads.inc_by((1 + registry_reads) as u64);
        }
        return ObservedCluster { at_ms: now_ms(), hosts, live_brokers, registry, topics, dns, zk_state, quorum };
    }
    let live_brokers = match zk.list_children(&kafka.broker_ids()).await {
        Ok(children) => Seen::Known(children.iter().filter_map(|c| c.parse::<i32>().ok()).collect::<BTreeSet<i32>>()),
        Err(zk::Error::NoNode) => Seen::Known(BTreeSet::new()),
        Err(e) => Seen::Unknown(format!("list {}: {e}", kafka.broker_ids())),
    };
    let topics = match read_topics(zk, paths, &names).await {
        Ok(t) => Seen::Known(t),
        Err(e) => Seen::Unknown(e),
    };
    if let Some(m) = metrics {
        // check + list + registry (list and one multi-read) + three reads per topic.
        let registry_reads = if registry.known().is_some_and(|r| !r.is_empty()) { 2 } else { 1 };
        m.zookeeper_reads.inc_by((2 + registry_reads + 3 * names.len()) as u64);
    }
    ObservedCluster { at_ms: now_ms(), hosts, live_brokers, registry, topics, dns, zk_state, quorum: Seen::Unknown("ZooKeeper mode: no controller quorum".into()) }
}

/// `<cluster>/kraft/formatted/<id>`: the directory each controller node formatted last.
async fn current_directories(zk: &zk::Client, paths: &ClusterPaths) -> Result<BTreeMap<i32, String>, String> {
    let dir = paths.kraft_formatted();
    let children = match zk.list_children(&dir).await {
        Ok(c) => c,
        Err(zk::Error::NoNode) => return Ok(BTreeMap::new()),
        Err(e) => return Err(format!("list {dir}: {e}")),
    };
    let mut out = BTreeMap::new();
    for child in children {
        let Ok(id) = child.parse::<i32>() else { continue };
        let path = format!("{dir}/{child}");
        match zk.get_data(&path).await {
            Ok((data, _)) => {
                out.insert(id, String::from_utf8_lossy(&data).trim().to_string());
            }
            Err(zk::Error::NoNode) => {}
            Err(e) => return Err(format!("read {path}: {e}")),
        }
    }
    Ok(out)
}

/// How long one Kafka protocol call of an observation may take.
const KRAFT_CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// `ip:port` of the running hosts with one of `roles`.
pub fn host_endpoints(hosts: &[ObservedHost], roles: &[HostRole]) -> Vec<String> {
    hosts
        .iter()
        .filter(|h| h.state == HostState::Running && roles.contains(&h.role))
        .filter_map(|h| {
            let ip = h.private_ip.as_deref()?;
            let ip = if ip.contains(':') { format!("[{ip}]") } else { ip.to_string() };
            Some(format!("{ip}:{}", h.port.unwrap_or(9092)))
        })
        .collect()
}

/// A KRaft cluster through the Kafka protocol: unfenced brokers (DescribeCluster), the quorum
/// (DescribeQuorum) and the declared topics (Metadata, DescribeConfigs), each asked of the
/// provider's running hosts in turn. No running broker host means no live broker (known); hosts
/// that do not answer leave it unknown.
async fn observe_kraft(hosts: &Seen<Vec<ObservedHost>>, names: &[&str]) -> (Seen<BTreeSet<i32>>, Seen<ObservedQuorum>, Seen<BTreeMap<String, ObservedTopic>>) {
    let Some(hosts) = hosts.known() else {
        let why = format!("hosts unknown: {}", hosts.reason().unwrap_or_default());
        return (Seen::Unknown(why.clone()), Seen::Unknown(why.clone()), Seen::Unknown(why));
    };
    let brokers = host_endpoints(hosts, &[HostRole::Broker, HostRole::Combined]);
    let controllers = host_endpoints(hosts, &[HostRole::Controller]);
    let live = if brokers.is_empty() {
        Seen::Known(BTreeSet::new())
    } else {
        let mut last = String::new();
        let mut seen = None;
        for address in &brokers {
            match fleet_common::kafka_wire::describe_cluster(address, true, KRAFT_CALL_TIMEOUT).await {
                Ok(info) => {
                    seen = Some(info.brokers.iter().filter(|b| !b.fenced).map(|b| b.broker_id).collect());
                    break;
                }
                Err(e) => last = e.to_string(),
            }
        }
        match seen {
            Some(ids) => Seen::Known(ids),
            None => Seen::Unknown(format!("no broker answered DescribeCluster ({last})")),
        }
    };
    let quorum = if controllers.is_empty() && brokers.is_empty() {
        Seen::Unknown("no running controller or broker host to ask".into())
    } else {
        let mut last = String::new();
        let mut seen = None;
        for address in controllers.iter().chain(&brokers) {
            match fleet_common::kafka_wire::describe_quorum(address, KRAFT_CALL_TIMEOUT).await {
                Ok(q) => {
                    seen = Some(observed_quorum(&q));
                    break;
                }
                Err(e) => last = e.to_string(),
            }
        }
        match seen {
            Some(q) => Seen::Known(q),
            None => Seen::Unknown(format!("no node answered DescribeQuorum ({last})")),
        }
    };
    let topics = if names.is_empty() {
        Seen::Known(BTreeMap::new())
    } else if brokers.is_empty() {
        Seen::Unknown("no running broker host to ask for topics".into())
    } else {
        match fleet_common::kafka_wire::describe_topics(&brokers, names, KRAFT_CALL_TIMEOUT).await {
            Ok(t) => Seen::Known(
                t.into_iter()
                    .map(|(name, t)| {
                        let topic = ObservedTopic {
                            partitions: t.partitions.len() as u32,
                            replication_factor: t.partitions.values().map(|r| r.len()).min().unwrap_or(0) as u16,
                            configs: t.configs,
                            // KRaft deletes a topic in one metadata record: there is no pending state.
                            marked_for_deletion: false,
                        };
                        (name, topic)
                    })
                    .collect(),
            ),
            Err(e) => Seen::Unknown(format!("topics: {e}")),
        }
    };
    (live, quorum, topics)
}

fn observed_quorum(q: &fleet_common::kafka_wire::QuorumInfo) -> ObservedQuorum {
    let member = |r: &fleet_common::kafka_wire::QuorumReplica| QuorumMember {
        node_id: r.node_id,
        directory_id: r.directory_id.clone().unwrap_or_default(),
        log_end_offset: r.log_end_offset,
        last_fetch_ms: r.last_fetch_ms,
    };
    ObservedQuorum {
        leader_id: (q.leader_id >= 0).then_some(q.leader_id),
        leader_epoch: q.leader_epoch,
        high_watermark: q.high_watermark,
        voters: q.voters.iter().map(member).collect(),
        observers: q.observers.iter().map(member).collect(),
        current_directories: BTreeMap::new(),
    }
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
    Ok(registrations_with_zxid(zk, kafka).await?.into_iter().map(|(id, (reg, _))| (id, reg)).collect())
}

/// [`registrations`] with each znode's creation zxid: new at every registration, so it tells a
/// broker that registered again (restarted) from one that stayed.
pub async fn registrations_with_zxid(zk: &zk::Client, kafka: &fleet_common::KafkaPaths) -> Result<BTreeMap<i32, (BrokerRegistration, i64)>, String> {
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
            Ok((data, stat)) => {
                let reg = fleet_common::znodes::decode::<BrokerRegistration>(&path, "a broker registration", &data).map_err(|e| e.to_string())?;
                out.insert(id, (reg, stat.czxid));
            }
            Err(zk::Error::NoNode) => {}
            Err(e) => return Err(format!("read {path}: {e}")),
        }
    }
    Ok(out)
}

pub(crate) fn endpoint_of(reg: &BrokerRegistration) -> Option<String> {
    if let Some(ep) = reg.endpoints.first() {
        if let Some((_, hostport)) = ep.split_once("://") {
            return Some(hostport.to_string());
        }
    }
    match (&reg.host, reg.port) {
        (Some(h), Some(p)) => Some(format!("{h}:{p}")),
        _ => None,
    }
}

/// `host:port` of every live broker, for Kafka's admin client.
pub async fn bootstrap_servers(zk: &zk::Client, paths: &ClusterPaths) -> Result<Vec<String>, String> {
    Ok(registrations(zk, &paths.kafka()).await?.values().filter_map(endpoint_of).collect())
}

/// Live brokers whose registration the fleet can vouch for: each one's ID is in the fleet's own
/// registry (written under its ZooKeeper identity), leased to a host the provider lists as
/// running, and the endpoint it registered is that host's address (and port, where the provider
/// assigns one). Kafka's `/brokers/ids` is open to any ZooKeeper client in ZooKeeper mode, so a
/// registration alone is not trusted. `registrations` are the live brokers' endpoints (`None`:
/// registered without one). Returns the endpoints and why each other one was refused.
pub fn vouched_endpoints(
    registrations: &BTreeMap<i32, Option<String>>,
    registry: &BTreeMap<i32, String>,
    hosts: &[crate::plan::ObservedHost],
) -> (Vec<String>, Vec<String>) {
    let mut servers = Vec::new();
    let mut refused = Vec::new();
    for (id, endpoint) in registrations {
        let Some(endpoint) = endpoint.clone() else {
            refused.push(format!("broker {id} registered no endpoint"));
            continue;
        };
        let Some(instance) = registry.get(id) else {
            refused.push(format!("broker {id} ({endpoint}) is not in the fleet's broker-ID registry"));
            continue;
        };
        let Some(host) = hosts.iter().find(|h| &h.instance_id == instance && h.state == fleet_api::model::HostState::Running) else {
            refused.push(format!("broker {id} ({endpoint}): its registry entry names {instance}, which is not a running host of the cluster"));
            continue;
        };
        let (ep_host, ep_port) = match endpoint.rsplit_once(':') {
            Some((h, p)) => (h.trim_start_matches('[').trim_end_matches(']'), p.parse::<u16>().ok()),
            None => (endpoint.as_str(), None),
        };
        if host.private_ip.as_deref().is_some_and(|ip| ip != ep_host) || host.port.is_some_and(|p| Some(p) != ep_port) {
            let expected = format!("{}{}", host.private_ip.as_deref().unwrap_or("?"), host.port.map(|p| format!(":{p}")).unwrap_or_default());
            refused.push(format!("broker {id} registered {endpoint}, but its host {instance} is {expected}"));
            continue;
        }
        servers.push(endpoint);
    }
    (servers, refused)
}

/// The cluster's brokers as clients should be given them: [`vouched_endpoints`] of its live
/// registrations, read from ZooKeeper, and the hosts the provider lists.
pub async fn vouched_bootstrap_servers(zk: &zk::Client, paths: &ClusterPaths, hosts: &[crate::plan::ObservedHost]) -> Result<(Vec<String>, Vec<String>), String> {
    let regs: BTreeMap<i32, Option<String>> = registrations(zk, &paths.kafka()).await?.iter().map(|(id, reg)| (*id, endpoint_of(reg))).collect();
    let registry: BTreeMap<i32, String> =
        fleet_common::registry::read_registry(zk, paths).await.map_err(|e| e.to_string())?.into_iter().map(|(id, e)| (id, e.lease.instance_id)).collect();
    Ok(vouched_endpoints(&regs, &registry, hosts))
}

/// A KRaft cluster's brokers as clients should be given them: the unfenced ones (a fenced broker
/// is registered but not serving), as DescribeCluster through its running broker hosts reports
/// them, vouched for against the fleet's registry and the provider's hosts like ZooKeeper-mode
/// registrations.
pub async fn vouched_kraft_servers(zk: &zk::Client, paths: &ClusterPaths, hosts: &[crate::plan::ObservedHost]) -> Result<(Vec<String>, Vec<String>), String> {
    let mut errors = Vec::new();
    let mut described = None;
    for address in host_endpoints(hosts, &[HostRole::Broker, HostRole::Combined]) {
        match fleet_common::kafka_wire::describe_cluster(&address, false, KRAFT_CALL_TIMEOUT).await {
            Ok(info) => {
                described = Some(info);
                break;
            }
            Err(e) => errors.push(format!("{address}: {e}")),
        }
    }
    let Some(info) = described else {
        return Err(if errors.is_empty() { "no running broker host to ask".to_string() } else { format!("no broker answered DescribeCluster: {}", errors.join("; ")) });
    };
    let regs: BTreeMap<i32, Option<String>> = info
        .brokers
        .iter()
        .filter(|b| !b.fenced)
        .map(|b| (b.broker_id, Some(if b.host.contains(':') { format!("[{}]:{}", b.host, b.port) } else { format!("{}:{}", b.host, b.port) })))
        .collect();
    let registry: BTreeMap<i32, String> =
        fleet_common::registry::read_registry(zk, paths).await.map_err(|e| e.to_string())?.into_iter().map(|(id, e)| (id, e.lease.instance_id)).collect();
    Ok(vouched_endpoints(&regs, &registry, hosts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ObservedHost;
    use fleet_api::model::HostState;

    fn reg(endpoint: &str) -> Option<String> {
        let registration: BrokerRegistration = serde_json::from_value(serde_json::json!({"version": 5, "endpoints": [format!("PLAINTEXT://{endpoint}")]})).expect("registration");
        endpoint_of(&registration)
    }

    fn host(id: &str, state: HostState, port: u16) -> ObservedHost {
        ObservedHost { instance_id: id.into(), availability_zone: "a".into(), state, launched_ms: 0, launch_token: None, private_ip: Some("127.0.0.1".into()), port: Some(port), role: Default::default() }
    }

    #[test]
    fn only_registrations_the_fleet_vouches_for_are_served() {
        let regs: BTreeMap<i32, Option<String>> = [
            (1, reg("127.0.0.1:9001")),
            (2, reg("127.0.0.1:19999")),  // port not its host's
            (3, reg("127.0.0.1:9003")),   // host terminated
            (99, reg("127.0.0.1:9099")),  // not in the registry: an ephemeral znode anyone made
            (4, reg("10.9.9.9:9004")),    // another address
        ]
        .into();
        let registry: BTreeMap<i32, String> = [(1, "h1"), (2, "h2"), (3, "h3"), (4, "h4")].into_iter().map(|(i, h)| (i, h.to_string())).collect();
        let hosts = vec![host("h1", HostState::Running, 9001), host("h2", HostState::Running, 9002), host("h3", HostState::Terminated, 9003), host("h4", HostState::Running, 9004)];
        let (servers, refused) = vouched_endpoints(&regs, &registry, &hosts);
        assert_eq!(servers, vec!["127.0.0.1:9001".to_string()]);
        assert_eq!(refused.len(), 4, "{refused:?}");
        assert!(refused.iter().any(|r| r.contains("broker 99") && r.contains("registry")), "{refused:?}");
        assert!(refused.iter().any(|r| r.contains("19999")), "{refused:?}");
    }
}
