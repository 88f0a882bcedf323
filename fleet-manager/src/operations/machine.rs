//! The one operation machine every kind runs on (scale-up, decommission, rebalance, config
//! rollout, failover, fallback), Netflix's "state machine goal state driver":
//!
//! observe what the phase needs -> pure `next` -> record (status and effects, one fenced write)
//! -> at most one idempotent action -> pure `after` -> record.
//!
//! One error policy for all: an action that says `Retry` keeps the phase and is tried again
//! after a backoff that grows with each attempt (reset by progress); one that says `Refused`, or
//! a phase the kind does not know, ends the operation through the kind's own failure path (a
//! move clears its throttles first). A write refused because a cancel came first (the switch of
//! a failover) reloads the operation and goes on from there.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use fleet_api::operation::{Operation, OperationStatus, Phase};

use crate::store::{now_ms, OperationEffects, StoreError};

/// What an action came to.
#[derive(Clone, Debug, PartialEq)]
pub enum ActionResult {
    Done { millis: u64 },
    /// Nothing was done, and retrying will not help (a topic changed between plan and commit).
    Refused(String),
    /// Nothing was done (or it is not known to be); the operation tries again after a backoff.
    Retry(String),
}

/// One decision of a kind's pure `next` (or `after`): the status to record, the effects to
/// write with it, and at most one action to take once they are recorded.
#[derive(Clone, Debug)]
pub struct Step<A> {
    pub status: OperationStatus,
    pub effects: OperationEffects,
    pub action: Option<A>,
}

impl<A> Step<A> {
    pub fn to(status: OperationStatus) -> Self {
        Self { status, effects: OperationEffects::default(), action: None }
    }
    pub fn act(status: OperationStatus, action: A) -> Self {
        Self { status, effects: OperationEffects::default(), action: Some(action) }
    }
    pub fn with(status: OperationStatus, effects: OperationEffects) -> Self {
        Self { status, effects, action: None }
    }
}

/// Where a machine records what it decided, and how it paces retries: the one place an
/// operation's progress is written ([`super::Driver`] in the fleet manager).
#[async_trait]
pub trait Recorder: Send + Sync {
    /// Writes the operation's new status with its effects (and the journal entry of a phase
    /// change) in one fenced transaction.
    async fn record(&self, op: &Operation, status: &OperationStatus, effects: &OperationEffects) -> Result<(), StoreError>;
    /// The operation as stored now (after a write refused because a cancel came first).
    async fn reload(&self, id: &str) -> Result<Operation, StoreError>;
    fn backoff(&self) -> &Backoff;
    /// The longest one action may take before it counts as a retry.
    fn step_timeout(&self) -> Duration;
}

/// A kind of operation on the machine, over the context `C` its reads and actions use.
#[async_trait]
pub trait Machine<C: Sync + ?Sized>: Send + Sync {
    type Observed: Send + Sync;
    type Action: Send + Sync + std::fmt::Debug;

    /// The phases this kind runs through; an operation found in any other fails.
    fn phases(&self) -> &'static [Phase];
    /// Reads what the operation's phase needs, and only that.
    async fn observe(&self, cx: &C, op: &Operation) -> Self::Observed;
    /// Pure: the next status, its effects and the action to take, from the stored operation
    /// and what was observed.
    fn next(&self, op: &Operation, observed: &Self::Observed) -> Step<Self::Action>;
    /// What is recorded before `step`'s action runs, besides its status (a move records the
    /// throttles it is about to write, with what they replace). Default: the step as it is.
    async fn prepare(&self, _cx: &C, _op: &Operation, step: Step<Self::Action>) -> Step<Self::Action> {
        step
    }
    /// Carries out an action; idempotent (a crash after it and a retry do no harm).
    async fn act(&self, cx: &C, op: &Operation, action: &Self::Action) -> ActionResult;
    /// Pure: the status and effects once an action was carried out (or refused).
    fn after(&self, op: &Operation, action: &Self::Action, result: ActionResult, now_ms: i64) -> Step<Self::Action>;
    /// The kind's way to fail from `status` (a move clears its throttles first).
    fn fail(&self, status: OperationStatus, why: String, now_ms: i64) -> Step<Self::Action> {
        let mut st = status;
        st.enter(Phase::Failed, now_ms, Some(why));
        Step::to(st)
    }
    /// How soon to look again while in `phase`: what the phase waits for is slow or fast.
    fn poll(&self, phase: Phase) -> Duration;
}

/// Retries per operation, for the backoff: kept by the leader across passes, reset by progress.
#[derive(Debug, Default)]
pub struct Backoff {
    attempts: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    /// Records one more failed attempt; the delay before the next.
    pub fn failed(&self, id: &str) -> (u32, Duration) {
        let mut all = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
        let n = all.entry(id.to_string()).or_default();
        *n += 1;
        (*n, Self::delay(*n))
    }
    pub fn reset(&self, id: &str) {
        self.attempts.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }
    /// 1 s, 2 s, 4 s, ... up to a minute.
    pub fn delay(attempt: u32) -> Duration {
        Duration::from_millis((1000u64 << attempt.saturating_sub(1).min(6)).min(60_000))
    }
}

/// Records `status` with `effects` and makes it `op`'s; `false` when a cancel came first (the
/// write refused, `op` reloaded as stored).
async fn record_unless_cancelled<C: Recorder + Sync>(cx: &C, op: &mut Operation, status: OperationStatus, effects: &OperationEffects) -> Result<bool, StoreError> {
    match cx.record(op, &status, effects).await {
        Err(StoreError::CancelRequested { .. }) => {
            *op = cx.reload(&op.id).await?;
            Ok(false)
        }
        Err(e) => Err(e),
        Ok(()) => {
            op.status = status;
            Ok(true)
        }
    }
}

/// Steps one pass may take on one operation (phases that follow at once are taken together).
const STEPS_PER_PASS: usize = 8;

/// Runs `op` on `machine` as far as it goes now, recording through `cx`. `Some(delay)` until it
/// has ended: when to look again. `Err` only for store writes (a fenced one among them).
pub async fn run<C: Recorder + Sync, M: Machine<C>>(cx: &C, machine: &M, mut op: Operation) -> Result<Option<Duration>, StoreError> {
    for _ in 0..STEPS_PER_PASS {
        if op.status.phase.is_terminal() {
            cx.backoff().reset(&op.id);
            return Ok(None);
        }
        let step = if machine.phases().contains(&op.status.phase) {
            let observed = machine.observe(cx, &op).await;
            machine.next(&op, &observed)
        } else {
            let why = format!("phase {} is not one of a {}'s; the operation cannot go on", op.status.phase.as_str(), op.spec.kind());
            machine.fail(op.status.clone(), why, now_ms())
        };
        let phase_before = op.status.phase;
        if step.action.is_none() {
            if step.status != op.status || step.effects.writes_anything() {
                if !record_unless_cancelled(cx, &mut op, step.status, &step.effects).await? {
                    continue;
                }
            }
            if op.status.phase != phase_before {
                cx.backoff().reset(&op.id);
                continue;
            }
            return Ok((!op.status.phase.is_terminal()).then(|| machine.poll(op.status.phase)));
        }
        let step = machine.prepare(cx, &op, step).await;
        let Some(action) = step.action else {
            // Preparing found it cannot act yet (what it must record first is unknown).
            if step.status != op.status {
                cx.record(&op, &step.status, &OperationEffects::default()).await?;
            }
            let (_, delay) = cx.backoff().failed(&op.id);
            return Ok(Some(delay));
        };
        // The phase the action belongs to, and what it is about to change, are recorded first:
        // a crash after the action resumes there and recognises what was done.
        if step.status != op.status || step.effects.writes_anything() {
            if !record_unless_cancelled(cx, &mut op, step.status, &step.effects).await? {
                continue;
            }
        }
        let timeout = cx.step_timeout();
        let result = match tokio::time::timeout(timeout, machine.act(cx, &op, &action)).await {
            Ok(r) => r,
            Err(_) => ActionResult::Retry(format!("{action:?} did not finish within {}s", timeout.as_secs())),
        };
        if let ActionResult::Retry(why) = &result {
            let (attempt, delay) = cx.backoff().failed(&op.id);
            tracing::warn!(error = %why, attempt, delay_ms = delay.as_millis() as u64, "operation step not taken; retried");
            let mut st = op.status.clone();
            st.message = Some(format!("retrying (attempt {attempt}, next in {}s): {why}", delay.as_secs()));
            if st != op.status {
                cx.record(&op, &st, &OperationEffects::default()).await?;
            }
            return Ok(Some(delay));
        }
        cx.backoff().reset(&op.id);
        let after = machine.after(&op, &action, result, now_ms());
        // A cancel that came first decides what happens, not this action's outcome.
        if !record_unless_cancelled(cx, &mut op, after.status, &after.effects).await? {
            continue;
        }
    }
    Ok((!op.status.phase.is_terminal()).then(|| machine.poll(op.status.phase)))
}

#[cfg(test)]
mod tests;
