//! A failover or fallback on the operation machine: what each phase reads (only that), and its one
//! action, the canary through the target.

use std::time::Duration;

use async_trait::async_trait;
use fleet_api::operation::{FailoverSpec, Operation, Phase};

use super::super::machine::{ActionResult, Machine, Step};
use super::super::Driver;
use super::{Action, FailoverSettings, SwitchPhase};
use crate::plan::Seen;
use crate::spec::{DeclaredSpec, Kind};
use crate::store::{now_ms, StoreError};

pub struct Switch {
    pub spec: FailoverSpec,
    pub settings: FailoverSettings,
}

fn unknown<T>(e: StoreError) -> Seen<T> {
    Seen::Unknown(e.to_string())
}

/// The topics a seal covers on `cluster`: those declared on it, the canary's and Kafka's internal
/// ones aside.
async fn sealable_topics(cx: &Driver<'_>, cluster: &str) -> Result<Vec<String>, String> {
    let rows = cx.store.list(Some(Kind::Topic), Some(cluster)).await.map_err(|e| e.to_string())?;
    Ok(rows.into_iter().filter(|r| !r.deleting).map(|r| r.declared.name).filter(|t| t != fleet_api::route::CANARY_TOPIC && !t.starts_with("__")).collect())
}

/// Whether each partition leader of `cluster`'s topics takes writes, probed without writing.
async fn probe_seal(cx: &Driver<'_>, cluster: &str) -> Seen<super::SealState> {
    let topics = match sealable_topics(cx, cluster).await {
        Ok(t) => t,
        Err(e) => return Seen::Unknown(e),
    };
    if topics.is_empty() {
        return Seen::Known(super::SealState::default());
    }
    let servers = match crate::observe::bootstrap_servers(cx.zk, &cx.paths.cluster(cluster)).await {
        Ok(s) if !s.is_empty() => s,
        Ok(_) => return Seen::Unknown(format!("no broker of {cluster} is registered")),
        Err(e) => return Seen::Unknown(e),
    };
    match fleet_common::kafka_wire::probe_writes(&servers, &topics, Duration::from_secs(5)).await {
        Ok(found) => {
            let mut state = super::SealState::default();
            for ((topic, partition), probe) in found {
                match probe {
                    fleet_common::kafka_wire::WriteProbe::Refused => state.refusing += 1,
                    fleet_common::kafka_wire::WriteProbe::Open => state.open.push(format!("{topic}-{partition}")),
                    fleet_common::kafka_wire::WriteProbe::Unknown(why) => state.unknown.push(format!("{topic}-{partition}: {why}")),
                }
            }
            Seen::Known(state)
        }
        Err(e) => Seen::Unknown(e.to_string()),
    }
}

/// Other routes whose traffic is on `cluster` (a seal would refuse their producers too).
async fn sharing(cx: &Driver<'_>, route: &str, cluster: &str) -> Seen<Vec<String>> {
    let (routes, statuses) = match (cx.store.list(Some(Kind::Route), None).await, cx.store.route_statuses().await) {
        (Ok(r), Ok(s)) => (r, s),
        (Err(e), _) | (_, Err(e)) => return unknown(e),
    };
    Seen::Known(
        routes
            .iter()
            .filter(|r| r.declared.name != route)
            .filter(|r| {
                let DeclaredSpec::Route(spec) = &r.declared.spec else { return false };
                let bound = statuses.get(&r.declared.name).map(|s| s.cluster.as_str()).filter(|c| !c.is_empty()).unwrap_or(spec.cluster.as_str());
                bound == cluster
            })
            .map(|r| r.declared.name.clone())
            .collect(),
    )
}

#[async_trait]
impl<'a> Machine<Driver<'a>> for Switch {
    type Observed = super::FailoverObserved;
    type Action = Action;

    fn phases(&self) -> &'static [Phase] {
        &SwitchPhase::ALL
    }

    async fn observe(&self, cx: &Driver<'a>, op: &Operation) -> super::FailoverObserved {
        let spec = &self.spec;
        let phase = op.status.phase;
        let mut obs = super::FailoverObserved { now_ms: now_ms(), ..Default::default() };
        if phase == Phase::Pending {
            // Where the route's traffic is: its status, or (never moved) its spec.
            obs.route = match cx.store.get(Kind::Route, &spec.route).await {
                Ok(r) => match (&r.declared.spec, cx.store.route_status_of(&spec.route).await) {
                    (DeclaredSpec::Route(_), Ok(Some(st))) if !st.cluster.is_empty() => Seen::Known(Some(st.cluster)),
                    (DeclaredSpec::Route(r), Ok(_)) => Seen::Known(Some(r.cluster.clone())),
                    (_, Err(e)) => unknown(e),
                    _ => Seen::Known(None),
                },
                Err(StoreError::NotFound { .. }) => Seen::Known(None),
                Err(e) => unknown(e),
            };
            obs.clusters = match cx.store.list(Some(Kind::KafkaCluster), None).await {
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
            obs.source_topics = match cx.store.list(Some(Kind::Topic), Some(&spec.from)).await {
                Ok(rows) => Seen::Known(rows.into_iter().filter(|r| !r.deleting).map(|r| r.declared).collect()),
                Err(e) => unknown(e),
            };
        }
        if let (Some(target), Phase::Building | Phase::Preparing) = (&op.status.target, phase) {
            obs.target = match cx.store.status(target).await {
                Ok(Some(v)) => match serde_json::from_value::<fleet_api::wire::ClusterStatus>(v) {
                    Ok(s) => {
                        let step_error = s.last_steps.iter().rev().find(|r| !r.ok).map(|r| {
                            let retryable = r.error_class != Some(fleet_api::wire::ErrorClass::Terminal);
                            (format!("{}: {}", r.step.describe(), r.message), retryable)
                        });
                        Seen::Known(super::TargetState {
                            converged: s.converged,
                            live_brokers: s.brokers.live.known().map(|l| l.len()).unwrap_or(0),
                            desired_brokers: s.brokers.desired,
                            topics: s.topics.known().map(|t| t.keys().cloned().collect()).unwrap_or_default(),
                            step_error,
                        })
                    }
                    Err(e) => Seen::Unknown(format!("status of {target} unreadable: {e}")),
                },
                Ok(None) => Seen::Unknown(format!("{target} not reconciled yet")),
                Err(e) => unknown(e),
            };
        }
        if let (Some(target), Phase::Verifying) = (&op.status.target, phase) {
            obs.health = match cx.health.judge(target).await {
                Ok(v) if v.healthy => Seen::Known(Ok(())),
                Ok(v) => Seen::Known(Err(v.summary)),
                Err(e) => Seen::Unknown(e),
            };
            if spec.prior.sealed.iter().any(|c| c == target) {
                obs.seal = probe_seal(cx, target).await;
            }
        }
        if matches!(phase, Phase::SwitchingProducers | Phase::DrainingConsumers) {
            obs.clients = match cx.store.client_reports(Some(&spec.route)).await {
                Ok(c) => Seen::Known(c),
                Err(e) => unknown(e),
            };
        }
        if phase == Phase::SwitchingProducers {
            obs.sharing = sharing(cx, &spec.route, &spec.from).await;
        }
        if phase == Phase::Sealing {
            obs.seal = probe_seal(cx, &spec.from).await;
        }
        obs
    }

    fn next(&self, op: &Operation, observed: &super::FailoverObserved) -> Step<Action> {
        super::next_step(op, &self.spec, observed, &self.settings)
    }

    async fn act(&self, cx: &Driver<'a>, op: &Operation, action: &Action) -> ActionResult {
        let Action::Canary { cluster } = action;
        let result = match crate::observe::bootstrap_servers(cx.zk, &cx.paths.cluster(cluster)).await {
            Ok(servers) if !servers.is_empty() => super::canary::round_trip(&servers, &op.id, Duration::from_secs(15)).await,
            Ok(_) => Err(format!("no broker of {cluster} is registered")),
            Err(e) => Err(e),
        };
        match result {
            Ok(millis) => {
                tracing::info!(cluster, millis, "canary went through");
                ActionResult::Done { millis }
            }
            Err(e) => {
                tracing::warn!(cluster, error = %e, "canary failed");
                ActionResult::Retry(format!("canary through {cluster} failed: {e}"))
            }
        }
    }

    fn after(&self, op: &Operation, _action: &Action, result: ActionResult, now_ms: i64) -> Step<Action> {
        let result = match result {
            ActionResult::Done { millis } => Ok(millis),
            ActionResult::Retry(e) | ActionResult::Refused(e) => Err(e),
        };
        let (status, effects) = super::after_canary(op, &self.spec, result, now_ms);
        Step::with(status, effects)
    }

    fn poll(&self, phase: Phase) -> Duration {
        match phase {
            // A build takes minutes; clients report every few seconds.
            Phase::Building => Duration::from_secs(3),
            Phase::SwitchingProducers | Phase::Sealing | Phase::DrainingConsumers => Duration::from_millis(500),
            _ => Duration::from_secs(1),
        }
    }
}
