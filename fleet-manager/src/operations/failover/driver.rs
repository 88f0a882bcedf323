//! The leader's side of a failover or fallback: observe what the phase needs, ask
//! [`super::next`], record the phase with its effects, run the canary, record again.

use std::time::Duration;

use fleet_api::operation::{FailoverSpec, Operation, Phase};

use super::super::Driver;
use crate::plan::Seen;
use crate::spec::{DeclaredSpec, Kind};
use crate::store::{now_ms, StoreError};

impl Driver<'_> {
    #[tracing::instrument(skip_all, fields(route = %spec.route, target = op.status.target.as_deref().unwrap_or("-")))]
    /// Advances a failover or fallback; returns the phase it is left in.
    pub(in crate::operations) async fn drive_failover(&self, mut op: Operation, spec: FailoverSpec) -> Result<Phase, StoreError> {
        for _ in 0..6 {
            let observed = self.observe_failover(&op, &spec).await;
            let (status, effects, action) = super::next(&op, &spec, &observed, &self.failover);
            let Some(super::Action::Canary { cluster }) = action else {
                let moved = status.phase != op.status.phase;
                if status != op.status {
                    self.save(&op, &status, &effects).await?;
                    op.status = status;
                }
                if moved && !op.status.phase.is_terminal() {
                    continue;
                }
                return Ok(op.status.phase);
            };
            let result = match crate::observe::bootstrap_servers(self.zk, &self.paths.cluster(&cluster)).await {
                Ok(servers) if !servers.is_empty() => super::canary::round_trip(&servers, &op.id, Duration::from_secs(15)).await,
                Ok(_) => Err(format!("no broker of {cluster} is registered")),
                Err(e) => Err(e),
            };
            match &result {
                Ok(ms) => tracing::info!(cluster, millis = ms, "canary went through"),
                Err(e) => tracing::warn!(cluster, error = %e, "canary failed"),
            }
            let (status, effects) = super::after_canary(&op, &spec, result, now_ms());
            self.save(&op, &status, &effects).await?;
            let moved = status.phase != op.status.phase;
            op.status = status;
            if !moved {
                return Ok(op.status.phase);
            }
        }
        Ok(op.status.phase)
    }

    /// Reads what the failover's phase depends on, and only that.
    async fn observe_failover(&self, op: &Operation, spec: &FailoverSpec) -> super::FailoverObserved {
        let phase = op.status.phase;
        let mut obs = super::FailoverObserved { now_ms: now_ms(), ..Default::default() };
        fn unknown<T>(e: StoreError) -> Seen<T> {
            Seen::Unknown(e.to_string())
        }
        if phase == Phase::Pending {
            obs.route = match self.store.get(Kind::Route, &spec.route).await {
                Ok(r) => Seen::Known(match &r.declared.spec {
                    DeclaredSpec::Route(r) => Some(r.cluster.clone()),
                    _ => None,
                }),
                Err(StoreError::NotFound { .. }) => Seen::Known(None),
                Err(e) => unknown(e),
            };
            obs.clusters = match self.store.list(Some(Kind::KafkaCluster), None).await {
                Ok(rows) => Seen::Known(
                    rows.into_iter()
                        .filter_map(|r| match r.declared.spec {
                            DeclaredSpec::KafkaCluster(s) => Some((r.declared.name, (s, r.deleting))),
                            _ => None,
                        })
                        .collect(),
                ),
                Err(e) => unknown(e),
            };
        }
        if matches!(phase, Phase::Pending | Phase::Building | Phase::Preparing) {
            obs.source_topics = match self.store.list(Some(Kind::Topic), Some(&spec.from)).await {
                Ok(rows) => Seen::Known(rows.into_iter().filter(|r| !r.deleting).map(|r| r.declared).collect()),
                Err(e) => unknown(e),
            };
        }
        if let (Some(target), Phase::Building | Phase::Preparing) = (&op.status.target, phase) {
            obs.target = match self.store.status(target).await {
                Ok(Some(v)) => match serde_json::from_value::<fleet_api::wire::ClusterStatus>(v) {
                    Ok(s) => Seen::Known(super::TargetState {
                        converged: s.converged,
                        live_brokers: s.brokers.live.known().map(|l| l.len()).unwrap_or(0),
                        desired_brokers: s.brokers.desired,
                        topics: s.topics.known().map(|t| t.keys().cloned().collect()).unwrap_or_default(),
                    }),
                    Err(e) => Seen::Unknown(format!("status of {target} unreadable: {e}")),
                },
                Ok(None) => Seen::Unknown(format!("{target} not reconciled yet")),
                Err(e) => unknown(e),
            };
        }
        if let (Some(target), Phase::Verifying) = (&op.status.target, phase) {
            obs.health = match self.health.judge(target).await {
                Ok(v) if v.healthy => Seen::Known(Ok(())),
                Ok(v) => Seen::Known(Err(v.summary)),
                Err(e) => Seen::Unknown(e),
            };
        }
        if matches!(phase, Phase::SwitchingProducers | Phase::DrainingConsumers) {
            obs.clients = match self.store.client_reports(Some(&spec.route)).await {
                Ok(c) => Seen::Known(c),
                Err(e) => unknown(e),
            };
        }
        obs
    }
}
