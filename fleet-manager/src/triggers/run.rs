//! The leader's side: every few seconds, each route with a failover policy is observed (route
//! status, hold, operation under way, signals), evaluated, recorded (state and journal, fenced),
//! and the decision acted on through the same checks as `fleetctl failover` / `fallback`.

use std::collections::BTreeMap;

use fleet_api::operation::{FailoverRequest, FallbackRequest, SwitchRequest};
use fleet_api::route::{FailoverPolicy, RouteState};

use super::{evaluate, signals, Context, Decision};
use crate::controller::Reconciler;
use crate::metrics::{ConditionLabels, DecisionLabels};
use crate::operations::failover::request;
use crate::spec::{DeclaredSpec, Kind};
use crate::store::{now_ms, NewJournalEntry, StoreError};

/// A refused automatic operation is tried again this much later.
const REFUSED_RETRY_MS: i64 = 60_000;

fn short(reason: &str) -> String {
    let mut s: String = reason.chars().filter(|c| !c.is_control()).take(190).collect();
    if reason.chars().count() > 190 {
        s.push('…');
    }
    s
}

/// A route's trigger state unchanged but for its readings is written at most this often (a
/// thousand routes are not a thousand writes every few seconds).
const QUIET_WRITE_MS: i64 = 30_000;

/// Whether `next` says something `prev` did not (beyond fresher values).
fn worth_writing(prev: &fleet_api::route::TriggerState, next: &fleet_api::route::TriggerState, journalled: bool) -> bool {
    let shape = |s: &fleet_api::route::TriggerState| -> Vec<(String, Option<i64>, bool)> {
        s.conditions.iter().map(|c| (c.condition.clone(), c.holding_since_ms, c.unknown.is_some())).collect()
    };
    journalled
        || shape(prev) != shape(next)
        || prev.last_fired_ms != next.last_fired_ms
        || prev.last_recommended_ms != next.last_recommended_ms
        || prev.standby_healthy_since_ms != next.standby_healthy_since_ms
        || prev.last_decision != next.last_decision
        || prev.last_refusal != next.last_refusal
        || next.evaluated_ms - prev.evaluated_ms >= QUIET_WRITE_MS
}

impl Reconciler {
    /// Evaluates every route's policy once: each cluster's health and each auditor's figures are
    /// read once for all the routes that need them, concurrently; each route is then evaluated
    /// (pure) and what changed recorded. `Err` only for store writes (a fenced one among them).
    #[tracing::instrument(skip(self), fields(epoch))]
    pub async fn evaluate_triggers(&self, epoch: i64, http: &reqwest::Client) -> Result<(), StoreError> {
        let routes = match self.store.list(Some(Kind::Route), None).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "routes unreadable; triggers not evaluated");
                return Ok(());
            }
        };
        let policies: Vec<(String, crate::spec::DeclaredRouteSpec, FailoverPolicy)> = routes
            .into_iter()
            .filter_map(|r| match r.declared.spec {
                DeclaredSpec::Route(spec) => {
                    let policy = spec.failover.as_ref()?.resolve().map_err(|e| tracing::warn!(route = %r.declared.name, error = %e, "stored policy no longer valid; skipped")).ok()?;
                    Some((r.declared.name, spec, policy))
                }
                _ => None,
            })
            .collect();
        if policies.is_empty() {
            return Ok(());
        }
        let (statuses, holds, states, ops) = match tokio::try_join!(self.store.route_statuses(), self.store.holds(), self.store.trigger_states(), self.store.operations(None, true)) {
            Ok(all) => all,
            Err(e) => {
                tracing::warn!(error = %e, "route state unreadable; triggers not evaluated");
                return Ok(());
            }
        };
        let moving: BTreeMap<&str, &str> = ops.iter().filter_map(|o| o.spec.route().map(|r| (r, o.id.as_str()))).collect();
        // Where each route's traffic is (its status), and what the pass must read for all of them.
        let on: BTreeMap<String, String> = policies
            .iter()
            .map(|(route, spec, _)| (route.clone(), statuses.get(route).map(|s| s.cluster.clone()).filter(|c| !c.is_empty()).unwrap_or_else(|| spec.cluster.clone())))
            .collect();
        let mut clusters = std::collections::BTreeSet::new();
        let mut auditors = std::collections::BTreeSet::new();
        for (route, _, policy) in &policies {
            if signals::needs_health(policy) {
                clusters.insert(on[route].clone());
            }
            if let Some(a) = signals::auditor_of(policy) {
                auditors.insert(a.to_string());
            }
            // Auto fallback: the standby's health too.
            if let (Some(status), Some(_)) = (statuses.get(route), policy.auto_fallback_after_ms) {
                if let (Some(standby), RouteState::FailedOver) = (&status.standby, status.phase) {
                    clusters.insert(standby.clone());
                }
            }
        }
        let read = signals::read_all(&clusters, &auditors, self.health.as_ref(), http, self.settings.trigger_concurrency).await;
        for (route, _, policy) in policies {
            let cluster = on[&route].clone();
            let status = statuses.get(&route).cloned().unwrap_or_default();
            let phase = status.phase;
            let standby_health = match (&status.standby, phase, policy.auto_fallback_after_ms) {
                (Some(standby), RouteState::FailedOver, Some(_)) => Some(match read.verdicts.get(standby) {
                    Some(Ok(v)) => Ok(v.healthy),
                    Some(Err(e)) => Err(e.clone()),
                    None => Err("not read".into()),
                }),
                _ => None,
            };
            let now = now_ms();
            let ctx = Context {
                now_ms: now,
                phase,
                cluster: cluster.clone(),
                hold: holds.get(&route).map(|h| h.reason.clone()),
                operation: moving.get(route.as_str()).map(|s| s.to_string()),
                standby_health,
            };
            let readings = signals::readings_for(&policy, &cluster, &read, now);
            let prev = states.get(&route).cloned().unwrap_or_default();
            let (mut state, decision, mut events) = evaluate(&policy, &prev, &readings, &ctx);
            state.last_refusal = prev.last_refusal.clone();
            for (c, st) in policy.conditions.iter().zip(&state.conditions) {
                let v = if st.unknown.is_some() { -1 } else { i64::from(st.holding_since_ms.is_some()) };
                self.metrics.trigger_conditions.get_or_create(&ConditionLabels { route: route.clone(), condition: c.describe() }).set(v);
            }
            let kind = match &decision {
                Decision::Nothing => None,
                Decision::Failover(_) => Some("failover"),
                Decision::Fallback(_) => Some("fallback"),
                Decision::Recommend(_) => Some("recommend"),
                Decision::Suppressed(..) => Some("suppressed"),
            };
            if let Some(kind) = kind {
                self.metrics.trigger_decisions.get_or_create(&DecisionLabels { route: route.clone(), decision: kind.into() }).inc();
            }
            let actor = format!("trigger@{}", self.identity);
            let started = match &decision {
                Decision::Failover(reason) => {
                    let req = FailoverRequest {
                        route: route.clone(),
                        to: policy.to.clone(),
                        build: policy.to.is_none(),
                        size_up: None,
                        pace: SwitchRequest { deadline_secs: None, reason: Some(short(&format!("automatic: {reason}"))), dry_run: false },
                    };
                    Some(request::failover(&self.store, self.health.as_ref(), &req).await)
                }
                Decision::Fallback(reason) => {
                    let req = FallbackRequest { route: route.clone(), rebuild: false, pace: SwitchRequest { deadline_secs: None, reason: Some(short(&format!("automatic: {reason}"))), dry_run: false } };
                    Some(request::fallback(&self.store, &req).await)
                }
                _ => None,
            };
            let refused = match started {
                Some(Ok((from, spec))) => match self.store.create_operation(&from, &spec, &actor).await {
                    Ok(op) => {
                        tracing::info!(route, operation = %op.id, "automatic {} started", spec.kind());
                        events.push(("trigger-operation", format!("operation {} started", op.id)));
                        state.last_refusal = None;
                        self.wake.notify_one();
                        None
                    }
                    Err(e) => Some(e.to_string()),
                },
                Some(Err(e)) => Some(e.to_string()),
                None => None,
            };
            if let Some(why) = refused {
                // Nothing moved: tried again a minute later, not after the whole cool-down; the
                // same refusal is journalled once, not at every retry.
                if prev.last_refusal.as_deref() != Some(why.as_str()) {
                    events.push(("trigger-refused", format!("the operation was refused ({why}); tried again every minute while the condition holds")));
                }
                let retry_in = (policy.cool_down_ms as i64).min(REFUSED_RETRY_MS);
                state.last_fired_ms = Some(now - policy.cool_down_ms as i64 + retry_in);
                state.standby_healthy_since_ms = prev.standby_healthy_since_ms;
                state.last_refusal = Some(why);
            }
            let evidence: Vec<serde_json::Value> = policy
                .conditions
                .iter()
                .zip(&readings)
                .map(|(c, r)| match r {
                    Ok(v) => serde_json::json!({ "condition": c.describe(), "value": v }),
                    Err(e) => serde_json::json!({ "condition": c.describe(), "unknown": e }),
                })
                .collect();
            let journal: Vec<NewJournalEntry> = events
                .into_iter()
                .map(|(action, message)| NewJournalEntry {
                    actor: actor.clone(),
                    cluster: cluster.clone(),
                    action: action.into(),
                    detail: serde_json::json!({ "route": route, "evidence": evidence, "phase": phase.as_str() }),
                    outcome: if action == "trigger-refused" { "error" } else { "ok" },
                    message: format!("route {route}: {message}"),
                })
                .collect();
            for e in &journal {
                tracing::info!(route, action = %e.action, "{}", e.message);
            }
            if worth_writing(&prev, &state, !journal.is_empty()) {
                self.store.record_trigger(epoch, &route, &state, &journal).await?;
            }
        }
        Ok(())
    }
}
