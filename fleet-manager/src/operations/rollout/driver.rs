//! A ConfigRollout on the operation machine: what each phase reads (only that), and its actions
//! (Admin API writes, a host's restart through its provider).

use std::time::{Duration, Instant};

use async_trait::async_trait;
use fleet_api::operation::{Operation, Phase, RolloutSpec};

use super::super::machine::{ActionResult, Machine, Step};
use super::super::{seen, Driver};
use super::{admin_writes, live, RolloutAction, RolloutObserved};
use crate::plan::Seen;
use crate::providers::ErrorClass;
use crate::spec::{DeclaredSpec, Kind};
use crate::store::now_ms;

pub struct Rollout {
    pub spec: RolloutSpec,
}

const PHASES: [Phase; 3] = [Phase::Pending, Phase::Configuring, Phase::Rolling];

#[async_trait]
impl<'a> Machine<Driver<'a>> for Rollout {
    type Observed = RolloutObserved;
    type Action = RolloutAction;

    fn phases(&self) -> &'static [Phase] {
        &PHASES
    }

    async fn observe(&self, cx: &Driver<'a>, op: &Operation) -> RolloutObserved {
        let kafka = cx.paths.cluster(&op.cluster).kafka();
        let zk = cx.zk;
        let mut o = RolloutObserved { now_ms: now_ms(), pause: cx.pause_of(op).await, ..RolloutObserved::default() };
        match cx.declared_brokers(&op.cluster).await {
            None => {
                o.cluster_gone = true;
                return o;
            }
            Some(d) => o.declared = d,
        }
        match op.status.phase {
            Phase::Configuring => {
                o.brokers = seen(live::registered(zk, &kafka).await);
                o.read_back = match &o.brokers {
                    Seen::Known(b) => seen(live::read_back(b, &admin_writes(&self.spec)).await),
                    Seen::Unknown(why) => Seen::Unknown(why.clone()),
                };
            }
            Phase::Rolling => {
                o.brokers = seen(live::registered(zk, &kafka).await);
                o.controller = seen(live::controller(zk, &kafka).await);
                let roll = op.status.roll.clone().unwrap_or_default();
                if roll.registrations.is_empty() {
                    let default_min_isr = match cx.store.get(Kind::KafkaCluster, &op.cluster).await {
                        Ok(r) => match &r.declared.spec {
                            DeclaredSpec::KafkaCluster(c) => crate::spec::effective_cluster(&op.cluster, c).broker_config.get("min.insync.replicas").and_then(|v| v.trim().parse().ok()).unwrap_or(1),
                            _ => 1,
                        },
                        Err(_) => 1,
                    };
                    o.unprotected = seen(live::unprotected(zk, &kafka, default_min_isr).await);
                }
                // ISR and health matter once no restart is under way, or once it is back.
                let current_back = roll.current.is_none_or(|c| {
                    o.brokers.known().and_then(|b| b.get(&c)).is_some_and(|r| roll.registrations.get(&c).is_some_and(|was| *was != r.czxid))
                });
                if current_back {
                    o.lagging = seen(live::lagging(zk, &kafka).await);
                    o.unreachable = match &o.brokers {
                        Seen::Known(b) => Seen::Known(live::unreachable(b).await),
                        Seen::Unknown(why) => Seen::Unknown(why.clone()),
                    };
                    let whole = o.brokers.known().is_some_and(|b| roll.registrations.keys().all(|id| b.contains_key(id)));
                    let answering = o.unreachable.known().is_some_and(|u| u.is_empty());
                    if whole && answering && o.lagging.known().is_some_and(|l| l.is_empty()) {
                        o.health = match cx.health.judge(&op.cluster).await {
                            Ok(v) if v.healthy => Seen::Known(None),
                            Ok(v) => Seen::Known(Some(v.summary)),
                            Err(e) => Seen::Unknown(e),
                        };
                    }
                }
            }
            _ => {}
        }
        o
    }

    fn next(&self, op: &Operation, o: &RolloutObserved) -> Step<RolloutAction> {
        super::next(&self.spec, op, o)
    }

    async fn act(&self, cx: &Driver<'a>, op: &Operation, action: &RolloutAction) -> ActionResult {
        let kafka = cx.paths.cluster(&op.cluster).kafka();
        match action {
            RolloutAction::Configure => {
                let brokers = match live::registered(cx.zk, &kafka).await {
                    Ok(b) => b,
                    Err(e) => return ActionResult::Retry(e),
                };
                let r = live::configure(&brokers, &admin_writes(&self.spec)).await;
                if let ActionResult::Done { millis } = &r {
                    tracing::info!(millis, keys = admin_writes(&self.spec).len(), "dynamic broker configs written");
                }
                r
            }
            RolloutAction::Restart { broker } => restart(cx, &op.cluster, *broker).await,
            RolloutAction::RestoreLeaders { broker } => {
                let keys = match live::led_elsewhere(cx.zk, &kafka, *broker).await {
                    Ok(k) => k,
                    Err(e) => return ActionResult::Retry(e),
                };
                if keys.is_empty() {
                    return ActionResult::Done { millis: 0 };
                }
                tracing::info!(broker, partitions = keys.len(), "preferred-leader election for the restarted broker");
                crate::operations::reassign::live::elect(cx.zk, cx.leader_znode, &kafka, &keys).await
            }
        }
    }

    fn after(&self, op: &Operation, action: &RolloutAction, result: ActionResult, now_ms: i64) -> Step<RolloutAction> {
        super::after(op, action, result, now_ms)
    }

    fn poll(&self, phase: Phase) -> Duration {
        match phase {
            Phase::Configuring => Duration::from_millis(500),
            _ => Duration::from_secs(2),
        }
    }
}

/// Restarts `broker`'s host through the cluster's provider (the fleet's registry says which host
/// holds the ID).
#[tracing::instrument(skip(cx), fields(broker))]
async fn restart(cx: &Driver<'_>, cluster: &str, broker: i32) -> ActionResult {
    let started = Instant::now();
    let provider_kind = match cx.store.get(Kind::KafkaCluster, cluster).await {
        Ok(r) => match &r.declared.spec {
            DeclaredSpec::KafkaCluster(c) => crate::spec::effective_cluster(cluster, c).provider,
            _ => return ActionResult::Refused(format!("{cluster} is not a cluster")),
        },
        Err(e) => return ActionResult::Retry(e.to_string()),
    };
    let Some(provider) = cx.hosts.get(provider_kind) else {
        return ActionResult::Refused(format!("the fleet manager has no {provider_kind:?} host provider to restart brokers with"));
    };
    let registry = match fleet_common::registry::read_registry(cx.zk, &cx.paths.cluster(cluster)).await {
        Ok(r) => r,
        Err(e) => return ActionResult::Retry(e.to_string()),
    };
    let Some(entry) = registry.get(&broker) else {
        return ActionResult::Retry(format!("broker {broker} is in no host's lease (the fleet's registry): its host may be being replaced"));
    };
    let instance = entry.lease.instance_id.clone();
    tracing::info!(instance = %instance, "restarting broker");
    match provider.restart(cluster, &instance).await {
        Ok(()) => ActionResult::Done { millis: started.elapsed().as_millis() as u64 },
        // Not allowed, not configured, or no such host: asking again cannot help.
        Err(e) if e.class() == ErrorClass::Terminal => ActionResult::Refused(format!("restart of broker {broker} (host {instance}): {e}")),
        Err(e) => ActionResult::Retry(format!("restart of broker {broker} (host {instance}): {e}")),
    }
}
