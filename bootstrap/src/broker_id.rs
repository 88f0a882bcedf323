//! Sequential broker IDs under a ZooKeeper lock.
//!
//! The registry `/<root>/clusters/<cluster>/broker-ids/<id>` maps each ID to the instance holding
//! it. Under a Curator-compatible lock, an instance:
//! 1. gets its own ID back if it already has one (restart);
//! 2. else takes over the lowest ID whose instance the provider reports terminated or no longer
//!    knows, provided no broker with that ID is registered in `/brokers/ids` (it could be alive
//!    on a host we are wrong about);
//! 3. else takes the lowest ID, from the base up, that is neither in the registry nor live.
//!
//! The decision is a pure function ([`decide`]); the writes go through the lock's fenced
//! operations, so a client that lost the lock (session expired while it thought it held it)
//! cannot write.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fleet_common::paths::ClusterPaths;
use fleet_common::znodes::{self, BrokerIdLease};
use fleet_common::zk::{ensure_path, FleetAcl};
use zookeeper_client as zk;

use crate::provider::{InfraProvider, InstanceStatus};

pub use fleet_common::registry::RegistryEntry;

/// What to do; the plan of one assignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The instance already holds this ID.
    Keep { id: i32 },
    /// Take over the ID of a terminated (or no longer known) instance.
    Reuse { id: i32, previous_instance_id: String, version: i32 },
    /// A fresh ID.
    New { id: i32 },
}

impl Decision {
    pub fn id(&self) -> i32 {
        match self {
            Decision::Keep { id } | Decision::Reuse { id, .. } | Decision::New { id } => *id,
        }
    }

    pub fn assignment(&self) -> Assignment {
        let (how, previous_instance_id) = match self {
            Decision::Keep { .. } => ("kept", None),
            Decision::New { .. } => ("new", None),
            Decision::Reuse { previous_instance_id, .. } => ("reused", Some(previous_instance_id.clone())),
        };
        Assignment { broker_id: self.id(), how, previous_instance_id }
    }
}

/// What the provider said of the other instances: `None` when it could not be asked (unknown), in
/// which case nothing is reused.
pub type ProviderView = Option<HashMap<String, InstanceStatus>>;

/// The role of a node registered without one (every ZooKeeper-mode broker).
pub const ROLE_BROKER: &str = "broker";

pub fn decide(
    instance_id: &str,
    registry: &BTreeMap<i32, RegistryEntry>,
    provider: &ProviderView,
    live_brokers: &BTreeSet<i32>,
    base: i32,
    role: &str,
) -> Decision {
    if let Some((id, _)) = registry.iter().find(|(_, e)| e.lease.instance_id == instance_id) {
        return Decision::Keep { id: *id };
    }
    if let Some(statuses) = provider {
        let reusable = registry.iter().find(|(id, e)| {
            let gone = !matches!(statuses.get(&e.lease.instance_id), Some(InstanceStatus::Alive));
            let same_role = e.lease.role.as_deref().unwrap_or(ROLE_BROKER) == role;
            gone && same_role && !live_brokers.contains(id)
        });
        if let Some((id, e)) = reusable {
            return Decision::Reuse { id: *id, previous_instance_id: e.lease.instance_id.clone(), version: e.version };
        }
    }
    let mut id = base;
    while registry.contains_key(&id) || live_brokers.contains(&id) {
        id += 1;
    }
    Decision::New { id }
}

#[derive(Debug, thiserror::Error)]
pub enum AssignError {
    #[error("zookeeper operation `{op}` on {path} failed: {source}")]
    Zk {
        op: &'static str,
        path: String,
        #[source]
        source: zk::Error,
    },
    #[error("timed out after {0:?} waiting for the broker-ID lock (another bootstrap holds it?)")]
    LockTimeout(Duration),
    #[error("lost the broker-ID lock before writing (session expired); nothing was written")]
    LockLost,
    #[error(transparent)]
    Decode(#[from] znodes::ZnodeDecodeError),
}

fn zk_err<'a>(op: &'static str, path: &'a str) -> impl FnOnce(zk::Error) -> AssignError + 'a {
    move |source| AssignError::Zk { op, path: path.to_string(), source }
}

/// Result of an assignment, for logs and `--output json`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Assignment {
    pub broker_id: i32,
    /// `kept`, `reused` or `new`.
    pub how: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_instance_id: Option<String>,
}

/// Reads the registry (see [`fleet_common::registry::read_registry`]).
pub async fn read_registry(client: &zk::Client, paths: &ClusterPaths) -> Result<BTreeMap<i32, RegistryEntry>, AssignError> {
    fleet_common::registry::read_registry(client, paths).await.map_err(|e| match e {
        fleet_common::registry::RegistryError::Zk { op, path, source } => AssignError::Zk { op, path, source },
        fleet_common::registry::RegistryError::Decode(d) => AssignError::Decode(d),
    })
}

/// Broker IDs with a live `/brokers/ids/<id>` ephemeral.
pub async fn live_broker_ids(client: &zk::Client, paths: &ClusterPaths) -> Result<BTreeSet<i32>, AssignError> {
    let dir = paths.kafka().broker_ids();
    match client.list_children(&dir).await {
        Ok(c) => Ok(c.iter().filter_map(|c| c.parse().ok()).collect()),
        Err(zk::Error::NoNode) => Ok(BTreeSet::new()),
        Err(e) => Err(zk_err("list", &dir)(e)),
    }
}

/// Makes sure the cluster's subtree exists (idempotent, before taking the lock): the registry
/// and its lock with the fleet's ACL; Kafka's chroot open, as Kafka would create it itself (what
/// Kafka writes inside follows its own `zookeeper.set.acl`), under parents with the fleet's ACL.
pub async fn ensure_cluster_tree(client: &zk::Client, paths: &ClusterPaths, acl: FleetAcl) -> Result<(), AssignError> {
    for path in [paths.broker_ids(), paths.broker_id_lock()] {
        ensure_path(client, &path, acl).await.map_err(zk_err("mkdir", &path))?;
    }
    let chroot = paths.kafka_chroot();
    if let Some((parent, _)) = chroot.rsplit_once('/').filter(|(p, _)| !p.is_empty()) {
        ensure_path(client, parent, acl).await.map_err(zk_err("mkdir", parent))?;
    }
    ensure_path(client, &chroot, FleetAcl::Open).await.map_err(zk_err("mkdir", &chroot))?;
    Ok(())
}

/// Takes the lock, decides, writes (fenced), releases. `role` is what the node runs (an ID
/// is reused only by a node of the same role).
#[allow(clippy::too_many_arguments)]
#[tracing::instrument(skip(client, paths, provider), fields(instance = instance_id))]
pub async fn assign(
    client: &zk::Client,
    paths: &ClusterPaths,
    instance_id: &str,
    provider: &dyn InfraProvider,
    base: i32,
    lock_timeout: Duration,
    acl: FleetAcl,
    role: &str,
    kafka_live: Option<&BTreeSet<i32>>,
) -> Result<Assignment, AssignError> {
    ensure_cluster_tree(client, paths, acl).await?;
    let lock_dir = paths.broker_id_lock();
    let prefix = zk::LockPrefix::new_curator(&lock_dir, "lock-").map_err(zk_err("lock", &lock_dir))?;
    let lock = match tokio::time::timeout(lock_timeout, client.lock(prefix, instance_id.as_bytes(), acl.acls())).await {
        Err(_) => return Err(AssignError::LockTimeout(lock_timeout)),
        Ok(Err(e)) => return Err(zk_err("lock", &lock_dir)(e)),
        Ok(Ok(lock)) => lock,
    };
    let lock_path = lock.lock_path().to_string();
    let outcome = assign_locked(&lock, paths, instance_id, provider, base, acl, role, kafka_live).await;
    // Release now rather than in the background: the process may exec Kafka right after.
    if let Err(e) = client.delete(&lock_path, None).await {
        tracing::warn!(error = %e, path = %lock_path, "could not delete lock node; it goes with the session");
    }
    drop(lock);
    outcome
}

/// Reads what the decision needs (registry, live brokers, and the provider's word on the other
/// instances) and decides. Read-only: `assign` calls it under the lock, `--dry-run` without.
pub async fn plan(
    client: &zk::Client,
    paths: &ClusterPaths,
    instance_id: &str,
    provider: &dyn InfraProvider,
    base: i32,
    role: &str,
    kafka_live: Option<&BTreeSet<i32>>,
) -> Result<Decision, AssignError> {
    let (registry, mut live) = tokio::try_join!(read_registry(client, paths), live_broker_ids(client, paths))?;
    live.extend(kafka_live.into_iter().flatten());
    let is_restart = registry.values().any(|e| e.lease.instance_id == instance_id);
    let others: Vec<String> = registry.values().map(|e| e.lease.instance_id.clone()).collect();
    let provider_view: ProviderView = if is_restart || others.is_empty() {
        Some(HashMap::new())
    } else if kafka_live.is_none() {
        // Which nodes Kafka sees alive is unknown: not knowing is not "none".
        None
    } else {
        match provider.statuses(&others).await {
            Ok(s) => Some(s),
            Err(e) => {
                // Unknown is not absent: without the provider's word, reuse nothing.
                tracing::warn!(error = %e, "provider could not be asked; no broker ID will be reused this time");
                None
            }
        }
    };
    Ok(decide(instance_id, &registry, &provider_view, &live, base, role))
}

#[allow(clippy::too_many_arguments)]
async fn assign_locked(
    lock: &zk::LockClient<'_>,
    paths: &ClusterPaths,
    instance_id: &str,
    provider: &dyn InfraProvider,
    base: i32,
    acl: FleetAcl,
    role: &str,
    kafka_live: Option<&BTreeSet<i32>>,
) -> Result<Assignment, AssignError> {
    let decision = plan(lock.client(), paths, instance_id, provider, base, role, kafka_live).await?;
    let lease_role = (role != ROLE_BROKER).then(|| role.to_string());
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    let fenced = |e: zk::Error| match e {
        zk::Error::RuntimeInconsistent | zk::Error::SessionExpired => AssignError::LockLost,
        other => AssignError::Zk { op: "fenced write", path: paths.broker_ids(), source: other },
    };
    match &decision {
        Decision::Keep { .. } => {}
        Decision::New { id } => {
            let lease = BrokerIdLease { instance_id: instance_id.to_string(), assigned_at_ms: now_ms, previous_instance_id: None, role: lease_role };
            let data = serde_json::to_vec(&lease).unwrap_or_default();
            let options = zk::CreateMode::Persistent.with_acls(acl.acls());
            lock.create(&paths.broker_id(*id), &data, &options).await.map_err(fenced)?;
        }
        Decision::Reuse { id, previous_instance_id, version } => {
            let lease = BrokerIdLease {
                instance_id: instance_id.to_string(),
                assigned_at_ms: now_ms,
                previous_instance_id: Some(previous_instance_id.clone()),
                role: lease_role,
            };
            let data = serde_json::to_vec(&lease).unwrap_or_default();
            lock.set_data(&paths.broker_id(*id), &data, Some(*version)).await.map_err(fenced)?;
        }
    }
    let assignment = decision.assignment();
    tracing::info!(broker = assignment.broker_id, how = assignment.how, "broker ID assigned");
    Ok(assignment)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(entries: &[(i32, &str)]) -> BTreeMap<i32, RegistryEntry> {
        entries
            .iter()
            .map(|(id, inst)| {
                let lease = BrokerIdLease { instance_id: inst.to_string(), assigned_at_ms: 0, previous_instance_id: None, role: None };
                (*id, RegistryEntry { lease, version: 0 })
            })
            .collect()
    }

    fn view(entries: &[(&str, InstanceStatus)]) -> ProviderView {
        Some(entries.iter().map(|(i, s)| (i.to_string(), *s)).collect())
    }

    #[test]
    fn first_instance_gets_the_base() {
        assert_eq!(decide("a", &BTreeMap::new(), &view(&[]), &BTreeSet::new(), 1, "broker"), Decision::New { id: 1 });
        assert_eq!(decide("a", &BTreeMap::new(), &view(&[]), &BTreeSet::new(), 0, "broker"), Decision::New { id: 0 });
    }

    #[test]
    fn restart_keeps_its_id_even_if_provider_is_unknown() {
        let r = registry(&[(1, "a"), (2, "b")]);
        assert_eq!(decide("b", &r, &None, &BTreeSet::from([1, 2]), 1, "broker"), Decision::Keep { id: 2 });
    }

    #[test]
    fn lowest_terminated_or_absent_id_is_reused() {
        let r = registry(&[(1, "a"), (2, "b"), (3, "c")]);
        let v = view(&[("a", InstanceStatus::Alive), ("b", InstanceStatus::Terminated)]);
        // b (2) is terminated and c (3) is absent: the lowest wins.
        assert_eq!(
            decide("d", &r, &v, &BTreeSet::from([1]), 1, "broker"),
            Decision::Reuse { id: 2, previous_instance_id: "b".into(), version: 0 }
        );
    }

    #[test]
    fn an_id_is_reused_only_by_a_node_of_the_same_role() {
        // KRaft: controller 2 and broker 5 died together. The broker's replacement must not take
        // node ID 2 (the dead voter's) nor the controller's take 5 (the broker's replicas).
        let mut r = registry(&[(1, "c1"), (2, "c2"), (3, "c3"), (4, "b1"), (5, "b2"), (6, "b3")]);
        for id in [1, 2, 3] {
            r.get_mut(&id).expect("entry").lease.role = Some("controller".into());
        }
        let v = view(&[("c1", InstanceStatus::Alive), ("c2", InstanceStatus::Terminated), ("c3", InstanceStatus::Alive), ("b1", InstanceStatus::Alive), ("b2", InstanceStatus::Terminated), ("b3", InstanceStatus::Alive)]);
        assert_eq!(decide("b9", &r, &v, &BTreeSet::new(), 1, "broker"), Decision::Reuse { id: 5, previous_instance_id: "b2".into(), version: 0 });
        assert_eq!(decide("c9", &r, &v, &BTreeSet::new(), 1, "controller"), Decision::Reuse { id: 2, previous_instance_id: "c2".into(), version: 0 });
        // No dead node of its role: a new ID, never another role's.
        assert_eq!(decide("x9", &r, &v, &BTreeSet::new(), 1, "combined"), Decision::New { id: 7 });
    }

    #[test]
    fn never_reuses_an_id_whose_broker_is_live() {
        let r = registry(&[(1, "a"), (2, "b")]);
        let v = view(&[("a", InstanceStatus::Terminated), ("b", InstanceStatus::Alive)]);
        assert_eq!(decide("c", &r, &v, &BTreeSet::from([1, 2]), 1, "broker"), Decision::New { id: 3 });
    }

    #[test]
    fn unknown_provider_reuses_nothing() {
        let r = registry(&[(1, "a")]);
        assert_eq!(decide("c", &r, &None, &BTreeSet::new(), 1, "broker"), Decision::New { id: 2 });
    }

    #[test]
    fn new_ids_skip_live_brokers_outside_the_registry() {
        // A broker started by hand with ID 2 must not be collided with.
        let r = registry(&[(1, "a")]);
        let v = view(&[("a", InstanceStatus::Alive)]);
        assert_eq!(decide("c", &r, &v, &BTreeSet::from([1, 2]), 1, "broker"), Decision::New { id: 3 });
    }
}
