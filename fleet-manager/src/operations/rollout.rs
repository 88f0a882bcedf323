//! ConfigRollout: a change of a cluster's `brokerConfig` carried to its running brokers, or a
//! restart alone (`fleetctl roll`), after Strimzi's rolling update rules:
//!
//! Pending -> [Configuring: keys Kafka updates dynamically are set (or their dynamic value
//! deleted) through the Admin API, then read back from every broker] -> [Rolling: one broker at
//! a time is stopped with a controlled shutdown and started again with the new properties; the
//! next only once every broker is registered, every partition's ISR is full and the healthcheck
//! finds nothing; the controller last] -> Succeeded.
//!
//! A broker counts as restarted once its `/brokers/ids` registration is newer than the one
//! recorded when the roll began (by this operation or otherwise, e.g. a host replaced): it booted
//! with the properties as they are now. So a crash or a change of leader resumes the roll where
//! it was, and a restart asked for twice does no harm.

pub mod driver;
pub mod live;

use std::collections::BTreeMap;

use fleet_api::operation::{ConfigEffect, Operation, OperationStatus, Phase, RollStatus, RolloutSpec};
use fleet_common::kafka_config::{self, ConfigType, UpdateMode};

use super::machine::{ActionResult, Step};
use super::Pause;
use crate::plan::Seen;
use crate::store::OperationEffects;

pub use driver::Rollout;

/// A dynamic write not read back this long after it was made is made again.
pub const CONFIGURE_RETRY_MS: i64 = 10_000;
/// Writes made before the read-back is given up (someone's per-broker override wins).
pub const CONFIGURE_ATTEMPTS: u32 = 5;
/// A broker still registered as before this long after its restart was asked for (the request
/// never reached it: a crash before the call) is asked again.
pub const RESTART_AGAIN_REGISTERED_MS: i64 = 90_000;
/// A broker still absent this long after its restart was asked for is asked once more (its
/// process may never have been started again: a crash between stop and start). Not sooner, and
/// not twice: a broker recovering its logs after an unclean stop registers only once done.
pub const RESTART_AGAIN_ABSENT_MS: i64 = 300_000;
/// Asks per broker before the roll gives up on it.
pub const RESTART_ATTEMPTS: u32 = 3;
/// A broker not back this long after its restart was first asked for fails the roll.
pub const BROKER_DEADLINE_MS: i64 = 900_000;
/// How long a restarted broker's host is not replaced while it is missing.
pub const RESTARTING_HOLD_MS: i64 = 300_000;

/// How a change of `key` to `to` reaches the running brokers.
pub fn effect_of(key: &str, to: Option<&str>) -> ConfigEffect {
    ConfigEffect::of(key, to)
}

/// The rollout that carries `was` -> `now` (effective `brokerConfig`s) to the brokers.
pub fn rollout_between(was: &BTreeMap<String, String>, now: &BTreeMap<String, String>) -> Option<RolloutSpec> {
    RolloutSpec::between(was, now)
}

/// Where a dynamic write goes: the cluster-wide default, or each broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Default,
    EachBroker,
}

/// One write through the Admin API: set (`Some`) or delete the key's dynamic value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminWrite {
    pub key: String,
    pub value: Option<String>,
    pub scope: Scope,
}

/// The Admin API writes of a rollout: every dynamic key set, and every removed key that Kafka
/// could hold dynamically deleted (so a dynamic value set before does not outlive the spec).
pub fn admin_writes(spec: &RolloutSpec) -> Vec<AdminWrite> {
    spec.changes
        .iter()
        .filter(|c| kafka_config::key_type(&c.key) != Some(ConfigType::Password))
        .filter_map(|c| {
            let scope = match kafka_config::update_mode(&c.key) {
                Some(UpdateMode::ClusterWide) => Scope::Default,
                Some(UpdateMode::PerBroker) => Scope::EachBroker,
                _ => return None,
            };
            Some(AdminWrite { key: c.key.clone(), value: c.to.clone(), scope })
        })
        .collect()
}

/// A live broker as the roll sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registered {
    /// The creation zxid of its `/brokers/ids/<id>` znode: new at every registration.
    pub czxid: i64,
    /// `host:port` for the Admin API.
    pub endpoint: Option<String>,
}

/// What a ConfigRollout observed.
#[derive(Clone, Debug, Default)]
pub struct RolloutObserved {
    pub now_ms: i64,
    pub cluster_gone: bool,
    pub pause: Seen<Pause>,
    pub brokers: Seen<BTreeMap<i32, Registered>>,
    /// The cluster's declared broker count.
    pub declared: Seen<u32>,
    pub controller: Seen<Option<i32>>,
    /// Partitions whose ISR lacks a replica (`topic-p`), when the phase needed them.
    pub lagging: Seen<Vec<String>>,
    /// Configuring: what some broker does not report as wanted yet.
    pub read_back: Seen<Vec<String>>,
    /// Registered brokers that do not answer Kafka's ApiVersions: a broker killed stays
    /// registered until its ZooKeeper session expires, and must not count as up meanwhile.
    pub unreachable: Seen<Vec<i32>>,
    /// Partitions whose replication factor is at or below their min ISR (`topic-p (RF r, min ISR
    /// m)`), read when the roll begins.
    pub unprotected: Seen<Vec<String>>,
    /// The healthcheck's findings (`None`: healthy), read only when a restart could start.
    pub health: Seen<Option<String>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RolloutAction {
    /// Every Admin API write of the spec.
    Configure,
    /// Restart this broker's host (controlled shutdown, then start with the new properties).
    Restart { broker: i32 },
    /// The restarted broker is back and in sync: a preferred-leader election for the partitions
    /// it is the preferred leader of, so it takes its share of traffic again before the next.
    RestoreLeaders { broker: i32 },
}

fn listed<T: std::fmt::Display>(items: &[T], max: usize) -> String {
    let mut s = items.iter().take(max).map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
    if items.len() > max {
        s.push_str(&format!(" and {} more", items.len() - max));
    }
    s
}

fn set_message(st: &mut OperationStatus, m: impl Into<String>) {
    st.message = Some(m.into());
}

/// Pure: the next step of a ConfigRollout.
pub fn next(spec: &RolloutSpec, op: &Operation, o: &RolloutObserved) -> Step<RolloutAction> {
    let mut st = op.status.clone();
    let now = o.now_ms;
    if o.cluster_gone {
        st.enter(Phase::Failed, now, Some("the cluster is being deleted or is gone".into()));
        return Step::to(st);
    }
    if op.cancel_requested {
        let roll = st.roll.clone().unwrap_or_default();
        // The broker restarting finishes first (back, in sync, leading again): stopping now
        // would leave it down, or leaderless, unwatched.
        if let (Some(c), Seen::Known(brokers)) = (roll.current, &o.brokers) {
            let back = brokers.get(&c).is_some_and(|r| roll.registrations.get(&c).is_some_and(|was| r.czxid != *was));
            let waited = now - roll.requested_ms.unwrap_or(now);
            if waited < BROKER_DEADLINE_MS {
                if !back {
                    set_message(&mut st, format!("cancel asked: waiting for broker {c} to come back, then no other restarts"));
                    return Step::to(st);
                }
                match &o.lagging {
                    Seen::Known(l) if l.is_empty() => {
                        set_message(&mut st, format!("cancel asked: broker {c} is back and in sync; its preferred leaderships go back to it, then no other restarts"));
                        return Step::act(st, RolloutAction::RestoreLeaders { broker: c });
                    }
                    _ => {
                        set_message(&mut st, format!("cancel asked: broker {c} is back; waiting for its partitions to catch up, then no other restarts"));
                        return Step::to(st);
                    }
                }
            }
        }
        if let Some(r) = st.roll.as_mut() {
            r.current = None;
            r.requested_ms = None;
        }
        let roll = st.roll.clone().unwrap_or_default();
        let why = format!(
            "cancelled after {} of {} brokers restarted; keys already set stay set, and brokers not restarted keep their boot-time values of static keys until they restart",
            roll.restarted.len(),
            roll.registrations.len()
        );
        st.enter(Phase::Cancelled, now, Some(why));
        return Step::to(st);
    }
    match st.phase {
        Phase::Pending => {
            if !admin_writes(spec).is_empty() {
                st.roll.get_or_insert_with(RollStatus::default);
                st.enter(Phase::Configuring, now, Some("setting dynamic keys through the Admin API".into()));
            } else if spec.restart {
                st.enter(Phase::Rolling, now, Some("restarting brokers one at a time".into()));
            } else {
                st.enter(Phase::Succeeded, now, Some("nothing to change on the brokers".into()));
            }
            Step::to(st)
        }
        Phase::Configuring => configuring(spec, st, o),
        Phase::Rolling => rolling(op, st, o),
        other => {
            st.enter(Phase::Failed, now, Some(format!("phase {} is not one of a ConfigRollout's", other.as_str())));
            Step::to(st)
        }
    }
}

fn configuring(spec: &RolloutSpec, mut st: OperationStatus, o: &RolloutObserved) -> Step<RolloutAction> {
    let now = o.now_ms;
    let roll = st.roll.get_or_insert_with(RollStatus::default).clone();
    match &o.read_back {
        Seen::Known(lag) if lag.is_empty() && roll.configured_at_ms.is_some() => {
            let n = admin_writes(spec).len();
            if spec.restart {
                st.enter(Phase::Rolling, now, Some(format!("{n} dynamic keys read back from every broker; restarting brokers one at a time for the rest")));
            } else {
                st.enter(Phase::Succeeded, now, Some(format!("{n} keys set without a restart, read back from every broker")));
            }
            Step::to(st)
        }
        Seen::Known(lag) => {
            let due = roll.configured_at_ms.is_none_or(|at| now - at >= CONFIGURE_RETRY_MS);
            if !due {
                set_message(&mut st, format!("waiting for the brokers to report the new values: {}", listed(lag, 3)));
                return Step::to(st);
            }
            if roll.configure_attempts >= CONFIGURE_ATTEMPTS {
                let why = format!(
                    "after {} writes, brokers still report other values: {} (a per-broker value set by hand wins over the cluster-wide one: kafka-configs --entity-type brokers --entity-name ID --delete-config KEY)",
                    roll.configure_attempts,
                    listed(lag, 5)
                );
                st.enter(Phase::Failed, now, Some(why));
                return Step::to(st);
            }
            set_message(&mut st, format!("setting {} keys through the Admin API", admin_writes(spec).len()));
            Step::act(st, RolloutAction::Configure)
        }
        Seen::Unknown(why) => {
            set_message(&mut st, format!("cannot read the brokers' configs back: {why}"));
            Step::to(st)
        }
    }
}

fn rolling(op: &Operation, mut st: OperationStatus, o: &RolloutObserved) -> Step<RolloutAction> {
    let now = o.now_ms;
    let Seen::Known(brokers) = &o.brokers else {
        set_message(&mut st, format!("broker registrations unknown: {}", o.brokers.reason().unwrap_or("")));
        return Step::to(st);
    };
    let mut effects = OperationEffects::default();
    let mut roll = st.roll.clone().unwrap_or_default();
    if roll.registrations.is_empty() {
        // What counts as "before" is taken with every broker there, or a missing one would never
        // be restarted (nor an empty listing taken for a finished roll).
        match &o.declared {
            Seen::Known(n) if brokers.len() >= *n as usize && !brokers.is_empty() => {
                roll.registrations = brokers.iter().map(|(id, r)| (*id, r.czxid)).collect();
                if let Some(u) = o.unprotected.known() {
                    roll.unprotected_count = u.len() as u32;
                    roll.unprotected = u.iter().take(20).cloned().collect();
                }
            }
            Seen::Known(n) => {
                set_message(&mut st, format!("waiting for every broker to register before the roll begins ({} of {n})", brokers.len()));
                return Step::to(st);
            }
            Seen::Unknown(why) => {
                set_message(&mut st, format!("the cluster's broker count is unknown: {why}"));
                return Step::to(st);
            }
        }
    }
    let pause_by = match &o.pause {
        Seen::Known(Pause::Requested { by }) => Some(by.clone()),
        Seen::Known(Pause::Over { by }) => {
            effects.resume = Some(by.clone());
            None
        }
        _ => None,
    };
    let restarted_since = |b: i32| brokers.get(&b).is_some_and(|r| roll.registrations.get(&b).is_some_and(|was| r.czxid != *was));

    if let Some(c) = roll.current {
        let waited = now - roll.requested_ms.unwrap_or(now);
        if restarted_since(c) {
            match &o.lagging {
                Seen::Known(l) if l.is_empty() => {
                    set_message(&mut st, format!("broker {c} is back and in sync after {}s; its preferred leaderships go back to it", waited / 1000));
                    st.roll = Some(roll);
                    let mut step = Step::act(st, RolloutAction::RestoreLeaders { broker: c });
                    step.effects = effects;
                    return step;
                }
                Seen::Known(l) => {
                    // Replicas on a broker that is gone or not answering cannot catch up: that
                    // is what the roll waits for, and says so.
                    let missing: Vec<i32> = roll.registrations.keys().copied().filter(|b| !brokers.contains_key(b) && *b != c).collect();
                    let silent: Vec<i32> = o.unreachable.known().cloned().unwrap_or_default().into_iter().filter(|b| *b != c).collect();
                    let why = if !missing.is_empty() {
                        Some(format!("broker {} not registered", listed(&missing, 5)))
                    } else if !silent.is_empty() {
                        Some(format!("broker {} registered but not answering", listed(&silent, 5)))
                    } else {
                        None
                    };
                    let waiting = format!("broker {c} is back; waiting for {} partitions to catch up ({})", l.len(), listed(l, 3));
                    match &why {
                        Some(why) => set_message(&mut st, format!("paused: {why}; {waiting}")),
                        None => set_message(&mut st, waiting),
                    }
                    roll.paused_by = why;
                    st.roll = Some(roll);
                    return Step::with(st, effects);
                }
                Seen::Unknown(why) => {
                    set_message(&mut st, format!("broker {c} is back; partition states unknown: {why}"));
                    st.roll = Some(roll);
                    return Step::with(st, effects);
                }
            }
        } else {
            let registered = brokers.contains_key(&c);
            let asks_spent = registered && roll.attempts >= RESTART_ATTEMPTS && waited >= RESTART_AGAIN_REGISTERED_MS * i64::from(roll.attempts);
            if waited >= BROKER_DEADLINE_MS || asks_spent {
                let why = format!(
                    "broker {c} has not come back {}s after its restart was asked for ({} times): see its host's log (local hosts: hosts/<instance>/host.log);                      a value Kafka cannot start with is fixed by applying brokerConfig again once this has ended",
                    waited / 1000,
                    roll.attempts
                );
                st.roll = Some(roll);
                st.enter(Phase::Failed, now, Some(why));
                return Step::with(st, effects);
            }
            // Asked again only when the first ask cannot have been carried out: the broker is
            // still registered as before, or absent long after (and once only).
            let again = if registered { waited >= RESTART_AGAIN_REGISTERED_MS * i64::from(roll.attempts.max(1)) } else { waited >= RESTART_AGAIN_ABSENT_MS && roll.attempts < 2 };
            if again && pause_by.is_none() {
                roll.attempts += 1;
                set_message(
                    &mut st,
                    format!("broker {c} {} {}s after its restart was asked for; asking again", if registered { "still registered as before" } else { "not back" }, waited / 1000),
                );
                st.roll = Some(roll);
                let mut step = Step::act(st, RolloutAction::Restart { broker: c });
                step.effects = effects;
                return step;
            }
            // No running count of seconds here: the status is written only when it changes
            // (`describe operation` shows when the restart was asked for).
            set_message(&mut st, format!("broker {c} restarting"));
            st.roll = Some(roll);
            return Step::with(st, effects);
        }
    }

    // Brokers that restarted on their own (a host replaced) booted with the new properties too.
    let pending: Vec<i32> = roll.registrations.keys().copied().filter(|b| !roll.restarted.contains(b)).collect();
    for b in &pending {
        if restarted_since(*b) {
            roll.restarted.push(*b);
        }
    }
    let remaining: Vec<i32> = roll.registrations.keys().copied().filter(|b| !roll.restarted.contains(b)).collect();
    if remaining.is_empty() {
        let total: u64 = roll.millis.values().sum();
        let timed = roll.millis.len().max(1) as f64;
        let why = format!("{} brokers restarted one at a time ({:.1}s each on average)", roll.restarted.len(), total as f64 / timed / 1000.0);
        roll.paused_by = None;
        st.roll = Some(roll);
        st.enter(Phase::Succeeded, now, Some(why));
        return Step::with(st, effects);
    }

    // The next restart waits until the cluster is whole and healthy.
    let missing: Vec<i32> = roll.registrations.keys().copied().filter(|b| !brokers.contains_key(b)).collect();
    let hold = if let Some(by) = &pause_by {
        Some(format!("operation {by} moves a route off this cluster"))
    } else if !missing.is_empty() {
        Some(format!("broker {} not registered", listed(&missing, 5)))
    } else if let Some(n) = o.declared.known().filter(|n| brokers.len() < **n as usize) {
        Some(format!("{} of {n} brokers registered", brokers.len()))
    } else if let Some(down) = o.unreachable.known().filter(|d| !d.is_empty()) {
        Some(format!("broker {} registered but not answering (its JVM may be down until its ZooKeeper session expires)", listed(down, 5)))
    } else if let Seen::Unknown(why) = &o.unreachable {
        Some(format!("whether every broker answers is unknown: {why}"))
    } else {
        match (&o.lagging, &o.health) {
            (Seen::Unknown(why), _) => Some(format!("partition states unknown: {why}")),
            (Seen::Known(l), _) if !l.is_empty() => Some(format!("{} partitions under-replicated ({})", l.len(), listed(l, 3))),
            (_, Seen::Unknown(why)) => Some(format!("the healthcheck could not tell: {why}")),
            (_, Seen::Known(Some(findings))) => Some(format!("the healthcheck finds: {findings}")),
            _ => None,
        }
    };
    if let Some(reason) = hold {
        set_message(&mut st, format!("paused: {reason}; {} of {} brokers restarted", roll.restarted.len(), roll.registrations.len()));
        roll.paused_by = Some(reason);
        st.roll = Some(roll);
        return Step::with(st, effects);
    }
    let controller = o.controller.known().copied().flatten();
    let Some(b) = remaining.iter().copied().find(|b| Some(*b) != controller).or_else(|| remaining.first().copied()) else {
        return Step::with(st, effects);
    };
    roll.current = Some(b);
    roll.requested_ms = Some(now);
    roll.attempts = 1;
    roll.paused_by = None;
    let is_controller = if Some(b) == controller { ", the controller, last" } else { "" };
    set_message(&mut st, format!("restarting broker {b}{is_controller} ({} of {})", roll.restarted.len() + 1, roll.registrations.len()));
    st.roll = Some(roll);
    let _ = op;
    let mut step = Step::act(st, RolloutAction::Restart { broker: b });
    step.effects = effects;
    step
}

/// Pure: the status once an action was carried out.
pub fn after(op: &Operation, action: &RolloutAction, result: ActionResult, now: i64) -> Step<RolloutAction> {
    let mut st = op.status.clone();
    match (action, result) {
        (RolloutAction::Configure, ActionResult::Done { .. }) => {
            let roll = st.roll.get_or_insert_with(RollStatus::default);
            roll.configured_at_ms = Some(now);
            roll.configure_attempts += 1;
            set_message(&mut st, "set through the Admin API; reading the values back from every broker");
        }
        (RolloutAction::Restart { broker }, ActionResult::Done { .. }) => {
            set_message(&mut st, format!("broker {broker} stopped (controlled shutdown) and starting again"));
        }
        (RolloutAction::RestoreLeaders { broker }, ActionResult::Done { .. }) => {
            let roll = st.roll.get_or_insert_with(RollStatus::default);
            if roll.current == Some(*broker) {
                let took = now - roll.requested_ms.unwrap_or(now);
                roll.restarted.push(*broker);
                roll.millis.insert(*broker, took.max(0) as u64);
                roll.current = None;
                roll.requested_ms = None;
                roll.attempts = 0;
            }
            set_message(&mut st, format!("broker {broker} restarted and leading again"));
        }
        (_, ActionResult::Refused(why)) => st.enter(Phase::Failed, now, Some(why)),
        (_, ActionResult::Retry(why)) => set_message(&mut st, why),
    }
    Step::to(st)
}

/// Brokers a rolling restart has stopped and is waiting for (their hosts are not replaced for
/// [`RESTARTING_HOLD_MS`] after the restart was asked for).
pub fn restarting(ops: &[Operation], cluster: &str, now_ms: i64) -> BTreeMap<i32, String> {
    ops.iter()
        .filter(|o| o.cluster == cluster && o.status.phase == Phase::Rolling)
        .filter_map(|o| {
            let roll = o.status.roll.as_ref()?;
            let b = roll.current?;
            (now_ms - roll.requested_ms.unwrap_or(0) < RESTARTING_HOLD_MS).then(|| (b, o.id.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests;
