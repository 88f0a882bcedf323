//! Operations as resources: stored requests whose `status.phase` the leader advances on one
//! machine ([`machine`]): observe what the phase needs, a pure `next`, one idempotent action at a
//! time, each phase recorded with its effects on specs in one fenced write. A crash or a change
//! of leader resumes from the stored phase. The kinds: [`scale_up`], [`reassign`] (decommission
//! and rebalance), [`rollout`] (config changes and rolling restarts), [`failover`] (failover and
//! fallback).
//!
//! Emergencies come first: a failover or fallback of a route on a cluster makes the cluster's
//! maintenance operation step aside (its `pausedBy`); it plans again once the emergency has ended.

pub mod failover;
pub mod machine;
pub mod reassign;
pub mod rollout;
pub mod scale_up;

use std::time::Duration;

use fleet_api::operation::{Operation, OperationSpec, OperationStatus, Phase};
use fleet_common::FleetPaths;
use zookeeper_client as zk;

use crate::plan::Seen;
use crate::spec::{DeclaredSpec, Kind};
use crate::store::{NewJournalEntry, OperationEffects, Store, StoreError};
use scale_up::ScaleUpSettings;

pub use machine::{ActionResult, Backoff, Machine, Recorder, Step};

/// Live broker -> rack (empty when the broker has none).
/// Why an operation is refused on a KRaft cluster: operations move replicas and configs through
/// ZooKeeper, which a 4.x cluster does not have (their KRaft actions are not built yet).
pub fn kraft_refusal(what: &str, cluster: &str, version: &str) -> String {
    format!(
        "cluster `{cluster}` runs Kafka {version} in KRaft mode: {what} is not supported on KRaft clusters yet (operations speak ZooKeeper); \
         declare brokers and topics with fleetctl apply, which works on both"
    )
}

pub async fn live_brokers(zk: &zk::Client, kafka: &fleet_common::KafkaPaths) -> Result<std::collections::BTreeMap<i32, String>, String> {
    Ok(crate::observe::registrations(zk, kafka).await?.into_iter().map(|(id, reg)| (id, reg.rack.unwrap_or_default())).collect())
}

/// A read's result as an observation: an error is `Unknown` (with why), never empty.
pub fn seen<T>(r: Result<T, String>) -> Seen<T> {
    match r {
        Ok(v) => Seen::Known(v),
        Err(e) => Seen::Unknown(e),
    }
}

/// Brokers that active decommissions move replicas off, and whether each may be retired now (its
/// operation is `Retiring` and has itself seen no replica left on them): the reconciler neither
/// replaces nor terminates their hosts until then, and places new partitions elsewhere.
pub fn leaving_brokers(ops: &[Operation]) -> std::collections::BTreeMap<i32, bool> {
    ops.iter()
        .filter(|o| !o.status.phase.is_terminal())
        .filter_map(|o| match &o.spec {
            OperationSpec::Decommission(s) => Some((s, o.status.phase == Phase::Retiring && o.status.retire_cleared_at_ms.is_some())),
            _ => None,
        })
        .flat_map(|(s, retiring)| s.leaving.iter().map(move |b| (*b, retiring)))
        .collect()
}

/// Why the cluster's hosts are left alone: a failover or fallback has switched a route's
/// producers off it and its consumers are draining it (a replacement broker would move leaders
/// under them). Before the switch, the cluster still carries the route and is repaired as usual.
pub fn frozen_by(ops: &[Operation], cluster: &str) -> Option<String> {
    ops.iter()
        .filter(|o| !o.status.phase.is_terminal() && o.cluster == cluster)
        .filter(|o| matches!(o.status.phase, Phase::SwitchingProducers | Phase::Sealing | Phase::DrainingConsumers))
        .find_map(|o| o.spec.route().map(|route| format!("{} moves route {route} off it", o.id)))
}

/// Brokers a rolling restart has stopped and waits for: their hosts are not replaced meanwhile.
pub fn restarting_brokers(ops: &[Operation], cluster: &str, now_ms: i64) -> std::collections::BTreeMap<i32, String> {
    rollout::restarting(ops, cluster, now_ms)
}

/// Whether a maintenance operation is to step aside, as observed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Pause {
    /// Nothing asks it to.
    #[default]
    None,
    /// A failover or fallback on its cluster is under way.
    Requested { by: String },
    /// The one it stepped aside for has ended: it may resume.
    Over { by: String },
}

/// Drives one cluster's operations for the current leader.
pub struct Driver<'a> {
    pub store: &'a Store,
    pub zk: &'a zk::Client,
    pub leader_znode: &'a str,
    pub paths: &'a FleetPaths,
    pub epoch: i64,
    pub identity: &'a str,
    pub settings: ScaleUpSettings,
    pub failover: failover::FailoverSettings,
    pub moves: reassign::MoveSettings,
    pub metrics: &'a crate::metrics::Metrics,
    pub health: &'a dyn crate::observe::health::HealthJudge,
    /// Where hosts come from (a rolling restart restarts them).
    pub hosts: &'a crate::providers::HostProviders,
    pub backoff: &'a Backoff,
    /// The longest one action may take before it counts as a retry.
    pub step_timeout: Duration,
    /// Clusters to reconcile at once after a write (see [`crate::controller::Reconciler::touched`]).
    pub touched: &'a std::sync::Mutex<std::collections::BTreeSet<String>>,
}

impl Driver<'_> {
    /// Advances the cluster's operations as far as they go now. `Some(delay)` while one is
    /// under way: when to look again. `Err` only for store writes (a fenced one among them).
    #[tracing::instrument(skip(self), fields(epoch = self.epoch))]
    pub async fn drive(&self, cluster: &str) -> Result<Option<Duration>, StoreError> {
        let ops = match self.store.operations(Some(cluster), true).await {
            Ok(o) => o,
            Err(e @ StoreError::Fenced { .. }) => return Err(e),
            Err(e) => {
                tracing::warn!(cluster, error = %e, "operations unreadable");
                return Ok(Some(Duration::from_secs(2)));
            }
        };
        let mut poll: Option<Duration> = None;
        // Oldest first: a maintenance operation pauses before the failover it makes way for acts.
        for op in ops.into_iter().rev() {
            if let Some(next) = self.drive_one(op).await? {
                poll = Some(poll.map_or(next, |p| p.min(next)));
            }
        }
        Ok(poll)
    }

    #[tracing::instrument(skip_all, fields(cluster = %op.cluster, operation = %op.id, kind = op.spec.kind()))]
    async fn drive_one(&self, op: Operation) -> Result<Option<Duration>, StoreError> {
        match op.spec.clone() {
            OperationSpec::ScaleUp(spec) => machine::run(self, &scale_up::ScaleUp { spec, settings: self.settings }, op).await,
            OperationSpec::Decommission(spec) => machine::run(self, &reassign::Moves { spec, decommission: true, settings: self.moves }, op).await,
            OperationSpec::Rebalance(spec) => machine::run(self, &reassign::Moves { spec, decommission: false, settings: self.moves }, op).await,
            OperationSpec::Failover(spec) | OperationSpec::Fallback(spec) => machine::run(self, &failover::Switch { spec, settings: self.failover }, op).await,
            OperationSpec::ConfigRollout(spec) => machine::run(self, &rollout::Rollout { spec }, op).await,
        }
    }

    /// The cluster's declared (effective) broker count; `None` when it is being deleted or gone.
    pub(crate) async fn declared_brokers(&self, cluster: &str) -> Option<Seen<u32>> {
        match self.store.get(Kind::KafkaCluster, cluster).await {
            Ok(r) if r.deleting => None,
            Ok(r) => Some(match &r.declared.spec {
                DeclaredSpec::KafkaCluster(c) => Seen::Known(c.brokers.max(0) as u32),
                _ => Seen::Unknown(format!("{cluster} is not a cluster")),
            }),
            Err(StoreError::NotFound { .. }) => None,
            Err(e) => Some(Seen::Unknown(e.to_string())),
        }
    }

    /// Whether a maintenance operation is to step aside now, or may resume.
    pub(crate) async fn pause_of(&self, op: &Operation) -> Seen<Pause> {
        let Some(by) = op.paused_by.clone() else { return Seen::Known(Pause::None) };
        match self.store.operation(&by).await {
            Ok(other) if other.status.phase.is_terminal() => Seen::Known(Pause::Over { by }),
            Ok(_) => Seen::Known(Pause::Requested { by }),
            Err(StoreError::NotFound { .. }) => Seen::Known(Pause::Over { by }),
            Err(e) => Seen::Unknown(e.to_string()),
        }
    }

}

#[async_trait::async_trait]
impl Recorder for Driver<'_> {
    fn backoff(&self) -> &Backoff {
        self.backoff
    }

    fn step_timeout(&self) -> Duration {
        self.step_timeout
    }

    async fn reload(&self, id: &str) -> Result<Operation, StoreError> {
        self.store.operation(id).await
    }

    /// The one place an operation's progress is written: its status, the effects of the phase
    /// and the journal entry of a phase change, in one fenced transaction.
    async fn record(&self, op: &Operation, status: &OperationStatus, effects: &OperationEffects) -> Result<(), StoreError> {
        let mut journal = Vec::new();
        if status.phase != op.status.phase {
            tracing::info!(from = op.status.phase.as_str(), to = status.phase.as_str(), message = status.message.as_deref().unwrap_or(""), "operation phase");
            journal.push(NewJournalEntry {
                actor: format!("reconciler@{}", self.identity),
                cluster: op.cluster.clone(),
                action: "operation-phase".into(),
                detail: serde_json::json!({ "operation": op.id, "from": op.status.phase, "to": status.phase }),
                outcome: match status.phase {
                    Phase::Failed => "error",
                    _ => "ok",
                },
                message: format!("{}: {} -> {}{}", op.id, op.status.phase.as_str(), status.phase.as_str(), status.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()),
            });
        }
        self.store.advance_operation(self.epoch, op, status, effects, &journal).await?;
        if let Some((_, route)) = &effects.route_status {
            // A seal put on or taken off is applied by those clusters' reconcilers: now.
            let mut touched = self.touched.lock().unwrap_or_else(|p| p.into_inner());
            touched.extend(route.sealed.iter().cloned());
            touched.extend(route.switch.iter().map(|s| s.from.clone()));
            touched.extend(op.status.target.iter().cloned());
            if let OperationSpec::Failover(f) | OperationSpec::Fallback(f) = &op.spec {
                touched.insert(f.from.clone());
                touched.extend(f.to.iter().cloned());
            }
        }
        if status.phase != op.status.phase && op.spec.route().is_some() {
            crate::failpoints::crash_on_entering(status.phase.as_str());
        }
        if status.phase != op.status.phase {
            let labels = crate::metrics::PhaseLabels { kind: op.spec.kind().to_string(), phase: status.phase.as_str().to_string() };
            self.metrics.operation_phases.get_or_create(&labels).inc();
            if status.phase == Phase::Succeeded {
                if let Some(ms) = status.commit_millis {
                    self.metrics.scale_up_commit_seconds.observe(ms as f64 / 1000.0);
                }
                if let Some(ms) = status.leaders_millis {
                    self.metrics.scale_up_leaders_seconds.observe(ms as f64 / 1000.0);
                }
            }
        }
        Ok(())
    }
}
