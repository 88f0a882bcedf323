//! Failover and fallback as a state machine: `next(operation, observed) -> (status, effects,
//! action)`, pure.
//!
//! Pending -> [Building: a fresh, immutable clone of the cluster is declared (its name recorded in
//! the same write) and built by the reconciler] -> Preparing: the route's topics and the canary
//! topic are declared on the target -> Verifying: the target converged, the healthcheck calls it
//! healthy, a canary record goes through it -> SwitchingProducers: the route points at the target
//! (its binding's generation changes); every producer reports it, or the deadline passes and the
//! stragglers are named -> DrainingConsumers: every consumer reports the old cluster drained (or
//! the deadline) -> Succeeded: the route is `FailedOver` with the old cluster as its standby (a
//! fallback: `Normal`, and the cluster it left kept or torn down per the route's `retain`).
//!
//! Every phase and what it declares are written together, so a crash or a new leader resumes
//! from the stored phase and never declares a second cluster.

pub mod canary;
mod driver;
pub mod request;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use fleet_api::client::{ClientRole, ClientView};
use fleet_api::operation::{FailoverSpec, Operation, OperationStatus, Phase};
use fleet_api::route::{RouteMove, RouteState, RouteStatus, CANARY_TOPIC};
use fleet_api::spec::{Declared, DeclaredClusterSpec, DeclaredSpec, DeclaredTopicSpec, Scalar};

use crate::plan::Seen;
use crate::store::OperationEffects;

#[derive(Clone, Copy, Debug)]
pub struct FailoverSettings {
    /// How long a fresh cluster may take to converge.
    pub build_timeout_ms: i64,
    /// How long the target may take to carry the topics, be called healthy and pass the canary.
    pub verify_timeout_ms: i64,
}

impl Default for FailoverSettings {
    fn default() -> Self {
        // Verifying may wait for Kafka's preferred-leader rebalance of a repaired cluster (every
        // 5 minutes by default) before the healthcheck calls it healthy.
        Self { build_timeout_ms: 15 * 60_000, verify_timeout_ms: 10 * 60_000 }
    }
}

/// The target cluster as the reconciler last recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetState {
    pub converged: bool,
    pub live_brokers: usize,
    pub desired_brokers: u32,
    /// Topics that exist in Kafka.
    pub topics: Vec<String>,
}

/// What one step of a failover depends on; each phase reads only what it needs.
#[derive(Clone, Debug, Default)]
pub struct FailoverObserved {
    pub now_ms: i64,
    /// The cluster the route points at; `Known(None)` once the route is gone.
    pub route: Seen<Option<String>>,
    /// Declared clusters (being deleted or not): name -> (spec, deleting).
    pub clusters: Seen<BTreeMap<String, (DeclaredClusterSpec, bool)>>,
    /// The route's topics on the cluster it leaves, as declared.
    pub source_topics: Seen<Vec<Declared>>,
    pub target: Seen<TargetState>,
    /// The healthcheck's verdict on the target: healthy, or why not.
    pub health: Seen<Result<(), String>>,
    pub clients: Seen<Vec<ClientView>>,
}

/// The one action that is not a store write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Produce a record to the canary topic of `cluster` and read it back.
    Canary { cluster: String },
}

pub type Next = (OperationStatus, OperationEffects, Option<Action>);

fn is_fallback(op: &Operation) -> bool {
    op.spec.kind() == "Fallback"
}

/// The route's status while the operation runs.
fn moving_status(op: &Operation, spec: &FailoverSpec) -> RouteStatus {
    RouteStatus {
        phase: if is_fallback(op) { RouteState::FallingBack } else { RouteState::FailingOver },
        operation: Some(op.id.clone()),
        clients: Vec::new(),
        ..spec.prior.clone()
    }
}

/// The name of a fresh build of `source`: `<base>-<n>`, the lowest `n` no declared cluster has.
pub fn build_name(source: &str, declared: &BTreeMap<String, (DeclaredClusterSpec, bool)>) -> String {
    // blue-2 rebuilt is blue-3, not blue-2-1.
    let base: String = fleet_api::spec::cluster_family(source).chars().take(56).collect();
    let base = base.trim_end_matches('-');
    (1..).map(|n| format!("{base}-{n}")).find(|name| !declared.contains_key(name)).unwrap_or_else(|| format!("{base}-x"))
}

/// The clone a build declares: same version, zones, class, instance type, provider and broker
/// configs, `brokers` brokers, immutable.
pub fn clone_cluster(name: &str, source: &DeclaredClusterSpec, brokers: u32, op_id: &str, source_name: &str) -> Declared {
    let mut spec = source.clone();
    spec.brokers = i64::from(brokers);
    spec.immutable = Some(true);
    Declared {
        name: name.to_string(),
        generation: None,
        labels: [("kafka-fleet.io/built-by".to_string(), op_id.to_string()), ("kafka-fleet.io/built-from".to_string(), source_name.to_string())].into(),
        spec: DeclaredSpec::KafkaCluster(spec),
    }
}

/// The topics a target needs: the route's topics as declared on the cluster it leaves (same
/// partitions, replication and configs), and the canary topic.
pub fn target_topics(target: &str, target_brokers: u32, source_topics: &[Declared]) -> Vec<Declared> {
    let mut out: Vec<Declared> = source_topics
        .iter()
        .filter(|d| d.name != CANARY_TOPIC)
        .filter_map(|d| match &d.spec {
            DeclaredSpec::Topic(t) => {
                Some(Declared { name: d.name.clone(), generation: None, labels: d.labels.clone(), spec: DeclaredSpec::Topic(DeclaredTopicSpec { cluster: target.into(), ..t.clone() }) })
            }
            _ => None,
        })
        .collect();
    out.push(canary_topic(target, target_brokers));
    out
}

pub fn canary_topic(cluster: &str, brokers: u32) -> Declared {
    Declared {
        name: CANARY_TOPIC.into(),
        generation: None,
        labels: BTreeMap::new(),
        spec: DeclaredSpec::Topic(DeclaredTopicSpec {
            cluster: cluster.into(),
            partitions: 1,
            replication_factor: Some(i64::from(brokers.clamp(1, 3))),
            retention_hours: Some(1.0),
            priority_class: Some("low".into()),
            configs: BTreeMap::from([("min.insync.replicas".to_string(), Scalar::Int(if brokers >= 3 { 2 } else { 1 }))]),
            keyed: None,
        }),
    }
}

fn fail(mut st: OperationStatus, spec: &FailoverSpec, now: i64, why: String) -> Next {
    st.enter(Phase::Failed, now, Some(format!("{why}; the route stays on {}", spec.from)));
    let effects = OperationEffects { route_status: Some((spec.route.clone(), RouteStatus { operation: None, ..spec.prior.clone() })), ..Default::default() };
    (st, effects, None)
}

fn wait(mut st: OperationStatus, message: impl Into<String>) -> Next {
    st.message = Some(message.into());
    (st, OperationEffects::default(), None)
}

/// Clients of the route with `role` that are not yet where they should be.
fn pending_clients(clients: &[ClientView], role: ClientRole, done: impl Fn(&ClientView) -> bool) -> Vec<String> {
    clients.iter().filter(|c| c.report.role == role && !done(c)).map(|c| c.report.instance.clone()).collect()
}

/// The next status, the effects to write with it, and the action to take.
pub fn next(op: &Operation, spec: &FailoverSpec, obs: &FailoverObserved, settings: &FailoverSettings) -> Next {
    let mut st = op.status.clone();
    let now = obs.now_ms;
    if op.cancel_requested && op.cancellable() {
        // A build nothing uses yet goes; a named standby stays as it was.
        let built = spec.build.as_ref().and(st.target.clone());
        let started = st.phase != Phase::Pending;
        st.enter(Phase::Cancelled, now, Some(format!("cancelled before the switch; the route stays on {}{}", spec.from, built.as_deref().map(|b| format!(", {b} is torn down")).unwrap_or_default())));
        let effects = OperationEffects {
            route_status: started.then(|| (spec.route.clone(), RouteStatus { operation: None, ..spec.prior.clone() })),
            delete_clusters: built.into_iter().collect(),
            ..Default::default()
        };
        return (st, effects, None);
    }
    let since = st.since_ms();
    match st.phase {
        Phase::Pending => {
            let (Seen::Known(route), Seen::Known(clusters)) = (&obs.route, &obs.clusters) else {
                return wait(st, "waiting to read the route and the declared clusters");
            };
            match route {
                None => return fail(st, spec, now, format!("route {} was deleted", spec.route)),
                Some(c) if *c != spec.from => return fail(st, spec, now, format!("route {} moved to {c} meanwhile", spec.route)),
                Some(_) => {}
            }
            let mut effects = OperationEffects { route_status: Some((spec.route.clone(), moving_status(op, spec))), ..Default::default() };
            if let Some(build) = &spec.build {
                let Some((source, _)) = clusters.get(&build.source) else {
                    return fail(st, spec, now, format!("cluster {} to clone is gone", build.source));
                };
                let name = build_name(&build.source, clusters);
                effects.declare.push(clone_cluster(&name, source, build.brokers, &op.id, &build.source));
                st.target = Some(name.clone());
                st.enter(Phase::Building, now, Some(format!("building {name}: {} brokers cloned from {}", build.brokers, build.source)));
                return (st, effects, None);
            }
            let Some(target) = spec.to.clone() else { return fail(st, spec, now, "neither a target nor a build".into()) };
            let Seen::Known(topics) = &obs.source_topics else { return wait(st, "waiting to read the route's topics") };
            let Some((t, false)) = clusters.get(&target) else { return fail(st, spec, now, format!("cluster {target} is gone or being deleted")) };
            effects.declare = target_topics(&target, t.brokers.max(1) as u32, topics);
            st.target = Some(target.clone());
            st.enter(Phase::Preparing, now, Some(format!("declaring {} topic(s) on {target}", effects.declare.len())));
            (st, effects, None)
        }
        Phase::Building => {
            let Some(target) = st.target.clone() else { return fail(st, spec, now, "no target recorded".into()) };
            if now - since > settings.build_timeout_ms {
                return fail(st, spec, now, format!("{target} did not converge within {}s (left for inspection)", settings.build_timeout_ms / 1000));
            }
            let (Seen::Known(state), Seen::Known(topics)) = (&obs.target, &obs.source_topics) else {
                return wait(st, format!("building {target}: waiting for the reconciler's first pass"));
            };
            if !state.converged || state.live_brokers < state.desired_brokers as usize {
                return wait(st, format!("building {target}: {} of {} brokers live", state.live_brokers, state.desired_brokers));
            }
            let declare = target_topics(&target, state.desired_brokers, topics);
            st.enter(Phase::Preparing, now, Some(format!("{target} built ({} brokers); declaring {} topic(s)", state.live_brokers, declare.len())));
            (st, OperationEffects { declare, ..Default::default() }, None)
        }
        Phase::Preparing => {
            let Some(target) = st.target.clone() else { return fail(st, spec, now, "no target recorded".into()) };
            if now - since > settings.verify_timeout_ms {
                return fail(st, spec, now, format!("topics not created on {target} within {}s", settings.verify_timeout_ms / 1000));
            }
            let (Seen::Known(state), Seen::Known(topics)) = (&obs.target, &obs.source_topics) else {
                return wait(st, format!("waiting to read {target}'s topics"));
            };
            let missing: Vec<String> =
                target_topics(&target, state.desired_brokers, topics).into_iter().map(|d| d.name).filter(|n| !state.topics.contains(n)).collect();
            if !missing.is_empty() || !state.converged {
                return wait(st, format!("creating topics on {target}: {} missing", missing.len()));
            }
            st.enter(Phase::Verifying, now, Some(format!("verifying {target}: health and a canary record")));
            (st, OperationEffects::default(), None)
        }
        Phase::Verifying => {
            let Some(target) = st.target.clone() else { return fail(st, spec, now, "no target recorded".into()) };
            if now - since > settings.verify_timeout_ms {
                let last = st.message.clone().unwrap_or_default();
                return fail(st, spec, now, format!("{target} not verified within {}s: {last}", settings.verify_timeout_ms / 1000));
            }
            match &obs.health {
                Seen::Known(Ok(())) => (st, OperationEffects::default(), Some(Action::Canary { cluster: target })),
                Seen::Known(Err(why)) => wait(st, format!("{target} is unhealthy: {why}")),
                Seen::Unknown(why) => wait(st, format!("{target}'s health unknown: {why}")),
            }
        }
        Phase::SwitchingProducers => {
            let Some(target) = st.target.clone() else { return fail(st, spec, now, "no target recorded".into()) };
            let Seen::Known(clients) = &obs.clients else { return wait(st, "waiting to read client reports") };
            let pending = pending_clients(clients, ClientRole::Producer, |c| c.report.cluster == target);
            let switched = st.switched_at_ms.unwrap_or(since);
            if pending.is_empty() {
                st.enter(Phase::DrainingConsumers, now, Some(format!("every producer is on {target}; waiting for consumers to drain {}", spec.from)));
            } else if now - switched >= spec.deadline_ms as i64 {
                let message = format!("producer(s) {} did not report {target} within {}s; going on without them", pending.join(", "), spec.deadline_ms / 1000);
                st.stragglers.extend(pending.iter().map(|p| format!("producer {p}")));
                st.enter(Phase::DrainingConsumers, now, Some(message));
            } else {
                return wait(st, format!("{} producer(s) not yet on {target}: {}", pending.len(), pending.join(", ")));
            }
            (st, OperationEffects::default(), None)
        }
        Phase::DrainingConsumers => {
            let Some(target) = st.target.clone() else { return fail(st, spec, now, "no target recorded".into()) };
            let Seen::Known(clients) = &obs.clients else { return wait(st, "waiting to read client reports") };
            let from = spec.from.clone();
            let pending = pending_clients(clients, ClientRole::Consumer, |c| {
                c.report.cluster == target && c.report.consumer.as_ref().is_some_and(|s| s.drained && s.drained_cluster.as_deref() == Some(from.as_str()))
            });
            if !pending.is_empty() && now - since < spec.deadline_ms as i64 {
                return wait(st, format!("{} consumer(s) have not drained {from}: {}", pending.len(), pending.join(", ")));
            }
            let mut message = format!("route {} is on {target}", spec.route);
            if !pending.is_empty() {
                message.push_str(&format!("; consumer(s) {} did not report {from} drained within {}s", pending.join(", "), spec.deadline_ms / 1000));
                st.stragglers.extend(pending.iter().map(|p| format!("consumer {p}")));
            }
            if !st.stragglers.is_empty() {
                message.push_str(&format!(" (stragglers: {})", st.stragglers.join(", ")));
            }
            let last_move = RouteMove { at_ms: st.switched_at_ms.unwrap_or(now), from: from.clone(), to: target.clone(), operation: op.id.clone(), reason: spec.reason.clone() };
            let mut effects = OperationEffects::default();
            let status = if is_fallback(op) {
                let keep = spec.retain == fleet_api::route::Retain::Standby;
                if !keep {
                    effects.delete_clusters.push(from.clone());
                    message.push_str(&format!("; {from} is torn down (retain: teardown)"));
                } else {
                    message.push_str(&format!("; {from} is kept as a warm standby"));
                }
                if let Some(old) = &spec.replaces {
                    effects.delete_clusters.push(old.clone());
                    message.push_str(&format!("; {old} is replaced by {target} and torn down"));
                }
                RouteStatus { phase: RouteState::Normal, cluster: target, standby: keep.then_some(from), operation: None, last_move: Some(last_move), clients: Vec::new() }
            } else {
                message.push_str(&format!("; {from} is its standby"));
                RouteStatus { phase: RouteState::FailedOver, cluster: target, standby: Some(from), operation: None, last_move: Some(last_move), clients: Vec::new() }
            };
            effects.route_status = Some((spec.route.clone(), status));
            st.enter(Phase::Succeeded, now, Some(message));
            (st, effects, None)
        }
        Phase::Succeeded | Phase::Failed | Phase::Cancelled => (st, OperationEffects::default(), None),
        other => fail(st, spec, now, format!("phase {} is not a failover's", other.as_str())),
    }
}

/// The status after the canary: on success the route points at the target, in the same write.
pub fn after_canary(op: &Operation, spec: &FailoverSpec, result: Result<u64, String>, now: i64) -> (OperationStatus, OperationEffects) {
    let mut st = op.status.clone();
    let target = st.target.clone().unwrap_or_default();
    match result {
        Ok(millis) => {
            st.canary_millis = Some(millis);
            st.switched_at_ms = Some(now);
            st.enter(Phase::SwitchingProducers, now, Some(format!("{target} verified (canary {millis} ms); route {} now points at it", spec.route)));
            let status = RouteStatus { cluster: target.clone(), ..moving_status(op, spec) };
            (st, OperationEffects { point_route: Some((spec.route.clone(), target)), route_status: Some((spec.route.clone(), status)), ..Default::default() })
        }
        Err(e) => {
            st.message = Some(format!("canary through {target} failed: {e}; retrying"));
            (st, OperationEffects::default())
        }
    }
}
