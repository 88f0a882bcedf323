//! Operations as resources: stored requests (scale-up) whose `status.phase` the leader advances
//! with a pure `next(operation, observed) -> (status, action)`, carrying out one idempotent
//! action at a time and recording each phase (with its effects on specs) in one fenced write.
//! A crash or a change of leader resumes from the stored phase; see [`scale_up`].

pub mod failover;
pub mod reassign;
pub mod scale_up;

use std::time::Duration;

use fleet_api::operation::{Operation, OperationSpec, OperationStatus, Phase};
use fleet_common::FleetPaths;
use zookeeper_client as zk;

use crate::plan::Seen;
use crate::spec::{DeclaredSpec, Kind};
use crate::store::{now_ms, NewJournalEntry, OperationEffects, Store, StoreError};
use scale_up::{live, Action, ActionResult, ScaleUpObserved, ScaleUpSettings};

/// Live broker -> rack (empty when the broker has none).
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

/// How soon to look again at a cluster with an operation under way.
pub const OPERATION_POLL: Duration = Duration::from_millis(500);

/// Brokers that active decommissions move replicas off, and whether each is retiring now: the
/// reconciler neither replaces nor terminates their hosts until then.
pub fn leaving_brokers(ops: &[Operation]) -> std::collections::BTreeMap<i32, bool> {
    ops.iter()
        .filter(|o| !o.status.phase.is_terminal())
        .filter_map(|o| match &o.spec {
            OperationSpec::Decommission(s) => Some((s, o.status.phase == Phase::Retiring)),
            _ => None,
        })
        .flat_map(|(s, retiring)| s.leaving.iter().map(move |b| (*b, retiring)))
        .collect()
}

/// Why the cluster's hosts are left alone: a failover or fallback is moving a route off it.
pub fn frozen_by(ops: &[Operation], cluster: &str) -> Option<String> {
    ops.iter()
        .filter(|o| !o.status.phase.is_terminal() && o.cluster == cluster)
        .find_map(|o| o.spec.route().map(|route| format!("{} moves route {route} off it", o.id)))
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
    pub metrics: &'a crate::metrics::Metrics,
    pub health: &'a dyn crate::observe::health::HealthJudge,
}

impl Driver<'_> {
    /// Advances the cluster's operations as far as they go now. `Some(poll)` while one is under
    /// way. `Err` only for store writes (a fenced one among them).
    #[tracing::instrument(skip(self), fields(epoch = self.epoch))]
    pub async fn drive(&self, cluster: &str) -> Result<Option<Duration>, StoreError> {
        let ops = match self.store.operations(Some(cluster), true).await {
            Ok(o) => o,
            Err(e @ StoreError::Fenced { .. }) => return Err(e),
            Err(e) => {
                tracing::warn!(cluster, error = %e, "operations unreadable");
                return Ok(Some(OPERATION_POLL * 4));
            }
        };
        if ops.is_empty() {
            return Ok(None);
        }
        let mut poll = None;
        for op in ops {
            // Brokers take a while to boot or stop (minutes on EC2): no need to look twice a second.
            let next = match self.drive_one(op).await? {
                Phase::WaitingForBrokers | Phase::Retiring | Phase::Building => Duration::from_millis(crate::plan::PROGRESS_POLL_MS as u64),
                p if p.is_terminal() => continue,
                _ => OPERATION_POLL,
            };
            poll = Some(poll.map_or(next, |p: Duration| p.min(next)));
        }
        Ok(poll)
    }

    #[tracing::instrument(skip_all, fields(cluster = %op.cluster, operation = %op.id))]
    /// Advances one operation; returns the phase it is left in.
    async fn drive_one(&self, op: Operation) -> Result<Phase, StoreError> {
        match op.spec.clone() {
            OperationSpec::ScaleUp(spec) => self.drive_scale_up(op, spec).await,
            OperationSpec::Decommission(spec) => self.drive_moves(op, spec, true).await,
            OperationSpec::Rebalance(spec) => self.drive_moves(op, spec, false).await,
            OperationSpec::Failover(spec) | OperationSpec::Fallback(spec) => self.drive_failover(op, spec).await,
        }
    }

    /// The cluster's declared broker count; `None` when it is being deleted or gone.
    async fn declared_brokers(&self, cluster: &str) -> Option<Seen<u32>> {
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

    async fn drive_scale_up(&self, mut op: Operation, spec: fleet_api::operation::ScaleUpSpec) -> Result<Phase, StoreError> {
        // The cluster's declared size, read once: only `Pending` uses it, and an action that
        // raises it moves the operation past `Pending`.
        let Some(declared_brokers) = self.declared_brokers(&op.cluster).await else {
            let mut status = op.status.clone();
            let done = if status.phase.cancellable() { "nothing was committed" } else { "it ended where it was" };
            status.enter(Phase::Failed, now_ms(), Some(format!("cluster {} is being deleted or gone; {done}", op.cluster)));
            self.save(&op, &status, &OperationEffects::default()).await?;
            return Ok(Phase::Failed);
        };
        // A few phases can pass in one go (e.g. commit, then leaders already there).
        for _ in 0..6 {
            let observed = self.observe(&op, &spec, &declared_brokers).await;
            let (status, action) = scale_up::next(&op, &spec, &observed, &self.settings);
            let Some(action) = action else {
                if self.settle(&mut op, status).await? {
                    continue;
                }
                return Ok(op.status.phase);
            };
            // The phase the action belongs to is recorded before the action (so a crash after
            // it resumes there and recognises what was done).
            if status.phase != op.status.phase || status.brokers_before != op.status.brokers_before {
                self.save(&op, &status, &OperationEffects::default()).await?;
            }
            op.status = status;
            let (result, effects) = match &action {
                Action::RaiseBrokers(n) => (ActionResult::Done { millis: 0 }, OperationEffects { raise_brokers: Some(*n), ..OperationEffects::default() }),
                Action::RecordSpecs(counts) => {
                    (ActionResult::Done { millis: 0 }, OperationEffects { topic_partitions: counts.clone(), ..OperationEffects::default() })
                }
                Action::Commit(plan) => {
                    let kafka = self.paths.cluster(&op.cluster).kafka();
                    let r = live::commit(self.zk, self.leader_znode, &kafka, plan, self.settings.max_commit_bytes).await;
                    match &r {
                        ActionResult::Done { millis } => tracing::info!(millis, partitions = plan.new_partition_count(), "scale-up committed"),
                        other => tracing::warn!(result = ?other, "scale-up commit not made"),
                    }
                    (r, OperationEffects::default())
                }
            };
            let retry = matches!(result, ActionResult::Retry(_));
            let status = scale_up::after(op.status.clone(), &action, result, now_ms());
            self.save(&op, &status, &effects).await?;
            op.status = status;
            if retry || op.status.phase.is_terminal() {
                return Ok(op.status.phase);
            }
        }
        Ok(op.status.phase)
    }

    /// Reads what the operation's phase depends on, and only that.
    async fn observe(&self, op: &Operation, spec: &fleet_api::operation::ScaleUpSpec, declared_brokers: &Seen<u32>) -> ScaleUpObserved {
        let kafka = self.paths.cluster(&op.cluster).kafka();
        let phase = op.status.phase;
        let waiting = matches!(phase, Phase::Pending | Phase::WaitingForBrokers);
        let live = if waiting { seen(live_brokers(self.zk, &kafka).await) } else { Default::default() };
        let needs_topics = matches!(phase, Phase::WaitingForBrokers | Phase::Committing);
        let topics = if needs_topics { seen(live::topic_znodes(self.zk, &kafka, &spec.topics).await) } else { Default::default() };
        let guards = if phase == Phase::WaitingForBrokers { seen(live::guards(self.zk, &kafka).await) } else { Default::default() };
        let leaders = match (&op.status.plan, phase) {
            (Some(plan), Phase::WaitingForLeaders) => seen(live::leaders(self.zk, &kafka, plan).await),
            _ => Default::default(),
        };
        ScaleUpObserved { now_ms: now_ms(), declared_brokers: declared_brokers.clone(), live, topics, guards, leaders }
    }

    /// Records a status reached without an action; `true` when it entered a new, non-final phase
    /// (the next one may be reachable in the same pass).
    pub(crate) async fn settle(&self, op: &mut Operation, status: OperationStatus) -> Result<bool, StoreError> {
        if status == op.status {
            return Ok(false);
        }
        let moved = status.phase != op.status.phase;
        self.save(op, &status, &OperationEffects::default()).await?;
        op.status = status;
        Ok(moved && !op.status.phase.is_terminal())
    }

    pub(crate) async fn save(&self, op: &Operation, status: &OperationStatus, effects: &OperationEffects) -> Result<(), StoreError> {
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
