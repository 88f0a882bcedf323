//! Automatic failover: each route's policy evaluated by the leader every few seconds against the
//! signals the fleet already has (the healthcheck's findings, the auditor's figures), with
//! `evaluate(policy, state, readings, context) -> (state, decision, events)` pure. A condition
//! fires once it has held, with its signal known, for its whole duration; a signal that cannot be
//! read is unknown, which interrupts the duration and never fires. A cool-down, holds and
//! operations under way suppress what would fire; every change of state is an event (journalled).

pub mod run;
pub mod signals;
#[cfg(test)]
mod tests;

use fleet_api::route::{ConditionState, FailoverPolicy, RouteState, TriggerState};

/// What the route looks like when it is evaluated.
#[derive(Clone, Debug, Default)]
pub struct Context {
    pub now_ms: i64,
    pub phase: RouteState,
    /// The cluster the route is on.
    pub cluster: String,
    pub hold: Option<String>,
    /// An operation moving the route.
    pub operation: Option<String>,
    /// Auto fallback: the standby's health (healthy, or why not / why unknown).
    pub standby_health: Option<Result<bool, String>>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    Nothing,
    /// Start a failover (the reason names the condition and its evidence).
    Failover(String),
    /// Recommend mode: what it would have done.
    Recommend(String),
    /// Fall back to the standby, healthy long enough.
    Fallback(String),
    /// Would have fired, but: (why, what).
    Suppressed(String, String),
}

/// A change worth journalling: (action, message).
pub type Event = (&'static str, String);

/// One evaluation. `readings[i]` is condition `i`'s signal value, or why it is unknown.
pub fn evaluate(policy: &FailoverPolicy, prev: &TriggerState, readings: &[Result<f64, String>], ctx: &Context) -> (TriggerState, Decision, Vec<Event>) {
    let now = ctx.now_ms;
    let mut events = Vec::new();
    let mut next = TriggerState { last_fired_ms: prev.last_fired_ms, last_recommended_ms: prev.last_recommended_ms, evaluated_ms: now, ..TriggerState::default() };
    // Recommendations are rate-limited apart, so a trial in recommend mode never delays a real one.
    let last = if policy.recommend { prev.last_recommended_ms } else { prev.last_fired_ms };
    for (i, c) in policy.conditions.iter().enumerate() {
        let name = c.describe();
        // A condition changed in the spec starts afresh.
        let before = prev.conditions.get(i).filter(|p| p.condition == name).cloned().unwrap_or_default();
        let mut st = ConditionState { condition: name.clone(), ..ConditionState::default() };
        match readings.get(i).cloned().unwrap_or_else(|| Err("not read".into())) {
            Ok(v) => {
                st.value = Some(v);
                if before.unknown.is_some() {
                    events.push(("trigger-signal-known", format!("{}: {} readable again ({v})", ctx.cluster, c.signal.as_str())));
                }
                if c.holds(v) {
                    st.holding_since_ms = Some(before.holding_since_ms.unwrap_or(now));
                    if before.holding_since_ms.is_none() {
                        events.push(("trigger-condition-holding", format!("{}: {name} started holding ({} = {v})", ctx.cluster, c.signal.as_str())));
                    }
                } else if let Some(since) = before.holding_since_ms {
                    events.push(("trigger-condition-cleared", format!("{}: {name} cleared after {}s ({} = {v})", ctx.cluster, (now - since) / 1000, c.signal.as_str())));
                }
            }
            Err(why) => {
                st.unknown = Some(why.clone());
                if before.unknown.is_none() {
                    let held = before.holding_since_ms.map(|s| format!("; it had held {}s, which no longer counts", (now - s) / 1000)).unwrap_or_default();
                    events.push(("trigger-signal-unknown", format!("{}: {} unknown ({why}): {name} cannot fire{held}", ctx.cluster, c.signal.as_str())));
                }
            }
        }
        next.conditions.push(st);
    }
    let fired = policy.conditions.iter().zip(&next.conditions).find_map(|(c, st)| {
        let since = st.holding_since_ms?;
        (now - since >= c.for_ms as i64).then(|| format!("{} held {}s on {} (now {})", c.describe(), (now - since) / 1000, ctx.cluster, st.value.unwrap_or_default()))
    });
    let movable = matches!(ctx.phase, RouteState::Normal | RouteState::FailedOver) && policy.to.as_deref() != Some(ctx.cluster.as_str());
    let mut decision = match fired {
        Some(reason) if movable => {
            let suppressed = if let Some(h) = &ctx.hold {
                Some(format!("route held: {h}"))
            } else if let Some(op) = &ctx.operation {
                Some(format!("operation {op} is under way"))
            } else {
                last.filter(|t| now - t < policy.cool_down_ms as i64).map(|t| format!("cool-down: the last automatic move was {}s ago (cool-down {}s)", (now - t) / 1000, policy.cool_down_ms / 1000))
            };
            match suppressed {
                Some(why) => Decision::Suppressed(why, reason),
                None if policy.recommend => Decision::Recommend(reason),
                None => Decision::Failover(reason),
            }
        }
        Some(reason) => Decision::Suppressed(format!("route is {} on {}", ctx.phase.as_str(), ctx.cluster), reason),
        None => Decision::Nothing,
    };
    // Auto fallback: the standby healthy, continuously, for long enough.
    if let (Some(after), RouteState::FailedOver, Some(health)) = (policy.auto_fallback_after_ms, ctx.phase, &ctx.standby_health) {
        match health {
            Ok(true) => {
                let since = prev.standby_healthy_since_ms.unwrap_or(now);
                next.standby_healthy_since_ms = Some(since);
                if prev.standby_healthy_since_ms.is_none() {
                    events.push(("trigger-standby-healthy", "the standby is healthy; fallback once it stays so".to_string()));
                }
                if decision == Decision::Nothing && now - since >= after as i64 {
                    let reason = format!("the standby has been healthy for {}s", (now - since) / 1000);
                    decision = match (&ctx.hold, &ctx.operation) {
                        (Some(h), _) => Decision::Suppressed(format!("route held: {h}"), format!("fallback: {reason}")),
                        (_, Some(op)) => Decision::Suppressed(format!("operation {op} is under way"), format!("fallback: {reason}")),
                        _ if policy.recommend => Decision::Recommend(format!("fallback: {reason}")),
                        _ => Decision::Fallback(reason),
                    };
                }
            }
            Ok(false) | Err(_) => {
                if prev.standby_healthy_since_ms.is_some() {
                    let why = match health {
                        Err(e) => format!("unknown: {e}"),
                        _ => "unhealthy".into(),
                    };
                    events.push(("trigger-standby-unhealthy", format!("the standby is {why}: fallback waits")));
                }
            }
        }
    }
    let label = match &decision {
        Decision::Nothing => None,
        Decision::Failover(r) => Some(("trigger-fired", format!("automatic failover: {r}"))),
        Decision::Fallback(r) => Some(("trigger-fallback", format!("automatic fallback: {r}"))),
        Decision::Recommend(r) => Some(("trigger-recommended", format!("recommend mode, nothing done: would fail over ({r})"))),
        Decision::Suppressed(why, r) => Some(("trigger-suppressed", format!("suppressed ({why}): {r}"))),
    };
    if let Some((action, message)) = label {
        // Suppressions are journalled once per cause, not every evaluation.
        let key = match &decision {
            Decision::Suppressed(why, _) => format!("suppressed: {}", why.split(':').next().unwrap_or(why)),
            _ => action.to_string(),
        };
        match decision {
            Decision::Failover(_) | Decision::Fallback(_) => {
                next.last_fired_ms = Some(now);
                next.standby_healthy_since_ms = None;
            }
            Decision::Recommend(_) => next.last_recommended_ms = Some(now),
            _ => {}
        }
        if prev.last_decision.as_deref() != Some(key.as_str()) || !matches!(decision, Decision::Suppressed(..)) {
            events.push((action, message));
        }
        next.last_decision = Some(key);
    }
    (next, decision, events)
}
