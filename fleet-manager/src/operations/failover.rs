//! Failover and fallback as a state machine: `next(operation, observed) -> (status, effects,
//! action)`, pure.
//!
//! Pending -> [Building: a fresh, immutable clone of the cluster is declared (its name recorded in
//! the same write) and built by the reconciler] -> Preparing: the route's topics and the canary
//! topic are declared on the target -> Verifying: the target converged, the healthcheck calls it
//! healthy, a canary record goes through it (the binding names it as `next` meanwhile, so clients
//! build their links to it ahead of the switch) -> SwitchingProducers: the route points at the
//! target (its binding's generation changes); every producer reports it and its link to the old
//! cluster empty, or the deadline passes and the stragglers are named -> Sealing: the old
//! cluster's topics refuse the route's writes (`max.message.bytes=0`, applied by the reconciler)
//! and every partition leader is seen refusing them -> DrainingConsumers: consumers take the old
//! cluster's end offsets (after the seal, so no acknowledged record lands past them) and report it
//! drained when their group has committed every partition to them (or the deadline) ->
//! Succeeded: the route is `FailedOver` with the old cluster as its standby (a fallback: `Normal`,
//! and the cluster it left kept or torn down per the route's `retain`). A cluster stays sealed
//! for the route until a failover or fallback goes back to it (then it is opened again before the
//! canary).
//!
//! Every phase and what it declares are written together, so a crash or a new leader resumes
//! from the stored phase and never declares a second cluster.

pub mod canary;
mod driver;
pub mod request;
#[cfg(test)]
mod tests;

pub use driver::Switch;

/// A failover's or fallback's phases: the wire's phases a switch runs through, and no others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwitchPhase {
    Pending,
    Building,
    Preparing,
    Verifying,
    SwitchingProducers,
    Sealing,
    DrainingConsumers,
    Succeeded,
    Failed,
    Cancelled,
}

impl SwitchPhase {
    pub const ALL: [Phase; 10] = [
        Phase::Pending,
        Phase::Building,
        Phase::Preparing,
        Phase::Verifying,
        Phase::SwitchingProducers,
        Phase::Sealing,
        Phase::DrainingConsumers,
        Phase::Succeeded,
        Phase::Failed,
        Phase::Cancelled,
    ];
}

impl TryFrom<Phase> for SwitchPhase {
    type Error = Phase;
    fn try_from(p: Phase) -> Result<Self, Phase> {
        Ok(match p {
            Phase::Pending => Self::Pending,
            Phase::Building => Self::Building,
            Phase::Preparing => Self::Preparing,
            Phase::Verifying => Self::Verifying,
            Phase::SwitchingProducers => Self::SwitchingProducers,
            Phase::Sealing => Self::Sealing,
            Phase::DrainingConsumers => Self::DrainingConsumers,
            Phase::Succeeded => Self::Succeeded,
            Phase::Failed => Self::Failed,
            Phase::Cancelled => Self::Cancelled,
            other => return Err(other),
        })
    }
}

use std::collections::BTreeMap;

use fleet_api::client::{ClientRole, ClientView};
use fleet_api::operation::{FailoverSpec, Operation, OperationStatus, Phase};
use fleet_api::route::{RouteMove, RouteState, RouteStatus, SwitchState, CANARY_TOPIC};
use fleet_api::spec::{Declared, DeclaredClusterSpec, DeclaredSpec, DeclaredTopicSpec, Scalar};

use crate::plan::Seen;
use crate::store::OperationEffects;

#[derive(Clone, Copy, Debug)]
pub struct FailoverSettings {
    /// How long a fresh cluster may take to converge.
    pub build_timeout_ms: i64,
    /// How long the target may take to carry the topics, be called healthy and pass the canary.
    pub verify_timeout_ms: i64,
    /// How long the old cluster may take to refuse the route's writes on every partition (the
    /// reconciler writes the seal; each broker applies it from ZooKeeper).
    pub seal_timeout_ms: i64,
}

impl Default for FailoverSettings {
    fn default() -> Self {
        // Verifying may wait for Kafka's preferred-leader rebalance of a repaired cluster (every
        // 5 minutes by default) before the healthcheck calls it healthy.
        Self { build_timeout_ms: 15 * 60_000, verify_timeout_ms: 10 * 60_000, seal_timeout_ms: 60_000 }
    }
}

/// Whether a cluster's partition leaders take the route's writes, probed partition by partition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SealState {
    /// Partitions whose leader refuses writes.
    pub refusing: usize,
    /// Partitions whose leader would take them, or whose answer is unknown (with why).
    pub open: Vec<String>,
    pub unknown: Vec<String>,
}

impl SealState {
    /// Every probed partition refuses writes, and there was at least one: a seal over nothing
    /// (no topic declared on the cluster) proves nothing.
    pub fn sealed(&self) -> bool {
        self.refusing > 0 && self.open.is_empty() && self.unknown.is_empty()
    }
    fn covers_nothing(&self) -> bool {
        self.refusing == 0 && self.open.is_empty() && self.unknown.is_empty()
    }
    pub fn opened(&self) -> bool {
        self.refusing == 0 && self.unknown.is_empty()
    }
    fn describe(&self) -> String {
        let mut parts = vec![format!("{} partition(s) refusing writes", self.refusing)];
        if !self.open.is_empty() {
            parts.push(format!("{} still open ({})", self.open.len(), self.open.iter().take(5).cloned().collect::<Vec<_>>().join(", ")));
        }
        if !self.unknown.is_empty() {
            parts.push(format!("{} unknown ({})", self.unknown.len(), self.unknown.iter().take(3).cloned().collect::<Vec<_>>().join("; ")));
        }
        parts.join(", ")
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
    /// The last failed step of the target's reconcile (a host launch the provider refused), and
    /// whether retrying can help.
    pub step_error: Option<(String, bool)>,
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
    /// Sealing: the old cluster's partitions, probed. Verifying, for a target this route sealed
    /// before: the target's.
    pub seal: Seen<SealState>,
    /// Other routes that write to the cluster this one leaves: it is not sealed for them.
    pub sharing: Seen<Vec<String>>,
}

/// The one action that is not a store write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Produce a record to the canary topic of `cluster` and read it back.
    Canary { cluster: String },
}

pub type Next = (OperationStatus, OperationEffects, Option<Action>);

/// [`next`] as the machine's step.
pub fn next_step(op: &Operation, spec: &FailoverSpec, obs: &FailoverObserved, settings: &FailoverSettings) -> super::machine::Step<Action> {
    let (status, effects, action) = next(op, spec, obs, settings);
    super::machine::Step { status, effects, action }
}

fn is_fallback(op: &Operation) -> bool {
    op.spec.kind() == "Fallback"
}

/// The route's status while the operation runs. A named target the route sealed when it left
/// it is opened again (the reconciler takes the seal away; Verifying waits for it).
fn moving_status(op: &Operation, spec: &FailoverSpec) -> RouteStatus {
    // A fresh build was never sealed by the route, even when an earlier cluster of its name
    // was: it is not in the list the reconciler seals.
    let target = spec.to.as_deref().or(spec.build.as_ref().and(op.status.target.as_deref()));
    RouteStatus {
        phase: if is_fallback(op) { RouteState::FallingBack } else { RouteState::FailingOver },
        operation: Some(op.id.clone()),
        clients: Vec::new(),
        sealed: spec.prior.sealed.iter().filter(|c| Some(c.as_str()) != target).cloned().collect(),
        warming: None,
        switch: None,
        ..spec.prior.clone()
    }
}

/// The route's status with `cluster` added to what it sealed.
fn sealing(mut status: RouteStatus, cluster: &str) -> RouteStatus {
    if !status.sealed.iter().any(|c| c == cluster) {
        status.sealed.push(cluster.to_string());
    }
    status
}

/// Whether the route sealed `target` when it left it (it must take writes again before the
/// switch). A fresh build never was, whatever an earlier cluster of its name went through.
fn was_sealed(spec: &FailoverSpec, target: &str) -> bool {
    spec.build.is_none() && spec.prior.sealed.iter().any(|c| c == target)
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
    // A build nothing uses yet goes with the failure (it never took traffic).
    let built = spec.build.as_ref().and(st.target.clone()).filter(|_| st.switched_at_ms.is_none());
    let teardown = built.as_deref().map(|b| format!("; {b} is torn down")).unwrap_or_default();
    st.enter(Phase::Failed, now, Some(format!("{why}; the route stays on {}{teardown}", spec.from)));
    let effects = OperationEffects {
        route_status: Some((spec.route.clone(), RouteStatus { operation: None, ..spec.prior.clone() })),
        delete_clusters: built.into_iter().collect(),
        ..Default::default()
    };
    (st, effects, None)
}

fn wait(mut st: OperationStatus, message: impl Into<String>) -> Next {
    st.message = Some(message.into());
    (st, OperationEffects::default(), None)
}

/// Clients of the route that still use `cluster`, or consumers that have not reported it drained.
pub fn still_using(clients: &[ClientView], cluster: &str) -> Vec<String> {
    clients
        .iter()
        .filter(|c| {
            c.report.cluster == cluster
                || (c.report.role == ClientRole::Consumer && !c.report.consumer.as_ref().is_some_and(|s| s.drained && s.drained_cluster.as_deref() == Some(cluster)))
        })
        .map(|c| format!("{} {}", if c.report.role == ClientRole::Consumer { "consumer" } else { "producer" }, c.report.instance))
        .collect()
}

/// Producers of the route not yet on `target`, or still delivering to `from` (their link to it
/// not empty).
fn producers_pending(clients: &[ClientView], target: &str, from: &str) -> Vec<String> {
    pending_clients(clients, ClientRole::Producer, |c| {
        c.report.cluster == target && !c.report.producer.as_ref().is_some_and(|p| p.draining.iter().any(|d| d == from))
    })
}

/// Clients of the route with `role` that are not yet where they should be.
fn pending_clients(clients: &[ClientView], role: ClientRole, done: impl Fn(&ClientView) -> bool) -> Vec<String> {
    clients.iter().filter(|c| c.report.role == role && !done(c)).map(|c| c.report.instance.clone()).collect()
}

/// The next status, the effects to write with it, and the action to take.
pub fn next(op: &Operation, spec: &FailoverSpec, obs: &FailoverObserved, settings: &FailoverSettings) -> Next {
    let mut st = op.status.clone();
    let now = obs.now_ms;
    if SwitchPhase::try_from(st.phase).is_err() {
        let phase = st.phase.as_str();
        return fail(st, spec, now, format!("phase {phase} is not a failover's"));
    }
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
                if let Some((_, status)) = effects.route_status.as_mut() {
                    status.sealed.retain(|c| *c != name);
                }
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
                let last = st.message.clone().unwrap_or_default();
                return fail(st, spec, now, format!("{target} did not converge within {}s ({last})", settings.build_timeout_ms / 1000));
            }
            let (Seen::Known(state), Seen::Known(topics)) = (&obs.target, &obs.source_topics) else {
                return wait(st, format!("building {target}: waiting for the reconciler's first pass"));
            };
            if let Some((why, false)) = &state.step_error {
                // The provider refused in a way retrying cannot mend (a host limit, a missing image).
                return fail(st, spec, now, format!("{target} cannot be built: {why}"));
            }
            if !state.converged || state.live_brokers < state.desired_brokers as usize {
                let provider = state.step_error.as_ref().map(|(why, _)| format!(" (last error: {why})")).unwrap_or_default();
                return wait(st, format!("building {target}: {} of {} brokers live{provider}", state.live_brokers, state.desired_brokers));
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
            st.enter(Phase::Verifying, now, Some(format!("verifying {target}: health and a canary record; clients warm their links to it")));
            // The binding names the target as `next`: producers build theirs (metadata, producer
            // IDs) now, so the switch does not wait for them.
            let warming = RouteStatus { warming: Some(target), ..moving_status(op, spec) };
            (st, OperationEffects { route_status: Some((spec.route.clone(), warming)), ..Default::default() }, None)
        }
        Phase::Verifying => {
            let Some(target) = st.target.clone() else { return fail(st, spec, now, "no target recorded".into()) };
            if now - since > settings.verify_timeout_ms {
                let last = st.message.clone().unwrap_or_default();
                return fail(st, spec, now, format!("{target} not verified within {}s: {last}", settings.verify_timeout_ms / 1000));
            }
            if was_sealed(spec, &target) {
                match &obs.seal {
                    Seen::Known(s) if s.opened() => {}
                    Seen::Known(s) => return wait(st, format!("{target} is being opened to the route's writes again (it was sealed when the route left it): {}", s.describe())),
                    Seen::Unknown(why) => return wait(st, format!("whether {target} takes the route's writes again is unknown: {why}")),
                }
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
            let from = spec.from.clone();
            let pending = producers_pending(clients, &target, &from);
            let switched = st.switched_at_ms.unwrap_or(since);
            let mut message = if pending.is_empty() {
                format!("every producer is on {target} with nothing left for {from}")
            } else if now - switched >= spec.deadline_ms as i64 {
                for p in &pending {
                    let named = format!("producer {p}");
                    if !st.stragglers.contains(&named) {
                        st.stragglers.push(named);
                    }
                }
                format!("producer(s) {} did not report {target} with nothing left for {from} within {}s; going on without them", pending.join(", "), spec.deadline_ms / 1000)
            } else {
                return wait(st, format!("{} producer(s) not yet on {target} or still delivering to {from}: {}", pending.len(), pending.join(", ")));
            };
            let Seen::Known(sharing) = &obs.sharing else { return wait(st, format!("{message}; waiting to read which routes write to {from}")) };
            let current = RouteStatus { cluster: target.clone(), switch: Some(SwitchState { from: from.clone(), sealed: false }), ..moving_status(op, spec) };
            if !sharing.is_empty() {
                // Sealing would refuse their producers too: consumers go on without the seal.
                message.push_str(&format!("; {from} is not sealed: route(s) {} also write to it", sharing.join(", ")));
                st.enter(Phase::DrainingConsumers, now, Some(message));
                let status = RouteStatus { switch: Some(SwitchState { from, sealed: true }), ..current };
                return (st, OperationEffects { route_status: Some((spec.route.clone(), status)), ..Default::default() }, None);
            }
            message.push_str(&format!("; sealing {from}: its topics refuse the route's writes from now on"));
            st.enter(Phase::Sealing, now, Some(message));
            (st, OperationEffects { route_status: Some((spec.route.clone(), sealing(current, &from))), ..Default::default() }, None)
        }
        Phase::Sealing => {
            let Some(target) = st.target.clone() else { return fail(st, spec, now, "no target recorded".into()) };
            let from = spec.from.clone();
            let verdict = match &obs.seal {
                Seen::Known(s) if s.sealed() => Some(format!("{from} refuses the route's writes on all {} partition(s); consumers drain it to its end", s.refusing)),
                Seen::Known(s) if s.covers_nothing() => Some(format!(
                    "no topic is declared on {from}, so nothing is sealed; consumers drain it anyway: a producer that missed the switch may still be acknowledged there"
                )),
                _ if now - since >= settings.seal_timeout_ms => Some(format!(
                    "{from} not seen sealed within {}s ({}); consumers drain it anyway: a producer that missed the switch may still be acknowledged there",
                    settings.seal_timeout_ms / 1000,
                    match &obs.seal {
                        Seen::Known(s) => s.describe(),
                        Seen::Unknown(why) => why.clone(),
                    }
                )),
                Seen::Known(s) => return wait(st, format!("sealing {from}: {}", s.describe())),
                Seen::Unknown(why) => return wait(st, format!("sealing {from}: its partitions cannot be probed now: {why}")),
            };
            st.enter(Phase::DrainingConsumers, now, verdict);
            let status = RouteStatus { cluster: target, switch: Some(SwitchState { from: from.clone(), sealed: true }), ..sealing(moving_status(op, spec), &from) };
            (st, OperationEffects { route_status: Some((spec.route.clone(), status)), ..Default::default() }, None)
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
            // No data left behind: a cluster is torn down only when no client of the route
            // still uses it and every consumer reported it drained.
            let still_there = still_using(clients, &from);
            // What the route sealed: the cluster it left (unless other routes write to it), and
            // before, less what is torn down now.
            let mut sealed = moving_status(op, spec).sealed;
            let sealed_from = op.status.history.iter().any(|h| h.phase == Phase::Sealing);
            if sealed_from && !sealed.contains(&from) {
                sealed.push(from.clone());
            }
            let status = if is_fallback(op) {
                let mut keep = spec.retain == fleet_api::route::Retain::Standby;
                if !keep && !still_there.is_empty() {
                    keep = true;
                    message.push_str(&format!("; {from} is kept as a standby, not torn down (retain: teardown), because {} still use it or have not drained it: release it once they are gone (fleetctl release-standby {})", still_there.join(", "), spec.route));
                } else if !keep {
                    effects.delete_clusters.push(from.clone());
                    message.push_str(&format!("; {from} is torn down (retain: teardown)"));
                } else {
                    message.push_str(&format!("; {from} is kept as a warm standby"));
                }
                if let Some(old) = &spec.replaces {
                    if still_using(clients, old).is_empty() {
                        effects.delete_clusters.push(old.clone());
                        message.push_str(&format!("; {old} is replaced by {target} and torn down"));
                    } else {
                        message.push_str(&format!("; {old} is replaced by {target} but kept: clients still use it"));
                    }
                }
                sealed.retain(|c| !effects.delete_clusters.contains(c));
                RouteStatus { phase: RouteState::Normal, cluster: target, standby: keep.then_some(from), operation: None, last_move: Some(last_move), sealed, ..Default::default() }
            } else {
                message.push_str(&format!("; {from} is its standby"));
                RouteStatus { phase: RouteState::FailedOver, cluster: target, standby: Some(from), operation: None, last_move: Some(last_move), sealed, ..Default::default() }
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
            let status = RouteStatus { cluster: target.clone(), switch: Some(SwitchState { from: spec.from.clone(), sealed: false }), ..moving_status(op, spec) };
            // Written only if no cancel came first (a cancel in Verifying wins over the switch).
            (st, OperationEffects { route_status: Some((spec.route.clone(), status)), unless_cancelled: true, ..Default::default() })
        }
        Err(e) => {
            st.message = Some(format!("canary through {target} failed: {e}; retrying"));
            (st, OperationEffects::default())
        }
    }
}
