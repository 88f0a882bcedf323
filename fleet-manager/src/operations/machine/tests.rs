//! The machine's driver, once for every kind: a scripted kind over a recorder that keeps what
//! it was given, so the order of records and actions and the error policy can be checked.

use std::sync::Mutex;

use super::*;
use fleet_api::operation::{MoveSpec, OperationSpec};

/// Records every write (and can refuse the next one as "a cancel came first").
#[derive(Default)]
struct Log {
    writes: Mutex<Vec<(Phase, Option<String>, bool)>>,
    events: Mutex<Vec<String>>,
    cancel_next_write: Mutex<bool>,
    stored: Mutex<Option<Operation>>,
    backoff: Backoff,
}

#[async_trait]
impl Recorder for Log {
    async fn record(&self, op: &Operation, status: &OperationStatus, effects: &OperationEffects) -> Result<(), StoreError> {
        if std::mem::take(&mut *self.cancel_next_write.lock().expect("lock")) {
            let mut cancelled = op.clone();
            cancelled.cancel_requested = true;
            *self.stored.lock().expect("lock") = Some(cancelled);
            return Err(StoreError::CancelRequested { id: op.id.clone() });
        }
        self.writes.lock().expect("lock").push((status.phase, status.message.clone(), effects.writes_anything()));
        self.events.lock().expect("lock").push(format!("record {}", status.phase.as_str()));
        let mut stored = op.clone();
        stored.status = status.clone();
        *self.stored.lock().expect("lock") = Some(stored);
        Ok(())
    }
    async fn reload(&self, _id: &str) -> Result<Operation, StoreError> {
        Ok(self.stored.lock().expect("lock").clone().expect("stored"))
    }
    fn backoff(&self) -> &Backoff {
        &self.backoff
    }
    fn step_timeout(&self) -> Duration {
        Duration::from_secs(1)
    }
}

/// Pending -> (an action) -> Moving -> Succeeded; the action's result is scripted.
struct Scripted {
    result: Mutex<Vec<ActionResult>>,
}

#[async_trait]
impl Machine<Log> for Scripted {
    type Observed = ();
    type Action = &'static str;
    fn phases(&self) -> &'static [Phase] {
        &[Phase::Pending, Phase::Moving, Phase::Succeeded, Phase::Failed, Phase::Cancelled]
    }
    async fn observe(&self, _cx: &Log, _op: &Operation) {}
    fn next(&self, op: &Operation, _: &()) -> Step<&'static str> {
        let mut st = op.status.clone();
        if op.cancel_requested && st.phase == Phase::Pending {
            st.enter(Phase::Cancelled, 1, Some("cancelled".into()));
            return Step::to(st);
        }
        match st.phase {
            Phase::Pending => {
                st.message = Some("about to act".into());
                Step::act(st, "the action")
            }
            Phase::Moving => {
                st.enter(Phase::Succeeded, 3, None);
                Step::to(st)
            }
            _ => Step::to(st),
        }
    }
    async fn act(&self, cx: &Log, _op: &Operation, action: &&'static str) -> ActionResult {
        cx.events.lock().expect("lock").push(format!("act {action}"));
        self.result.lock().expect("lock").remove(0)
    }
    fn after(&self, op: &Operation, _: &&'static str, result: ActionResult, now: i64) -> Step<&'static str> {
        let mut st = op.status.clone();
        match result {
            ActionResult::Done { .. } => st.enter(Phase::Moving, now, None),
            ActionResult::Refused(why) => st.enter(Phase::Failed, now, Some(why)),
            ActionResult::Retry(_) => {}
        }
        Step::to(st)
    }
    fn poll(&self, _: Phase) -> Duration {
        Duration::from_millis(500)
    }
}

fn operation() -> Operation {
    let spec = MoveSpec { leaving: vec![], from_brokers: 3, throttle_bytes: None, max_moves_per_broker: 1, max_moves: 1, hold: false };
    Operation::new("op-1", "blue", OperationSpec::Rebalance(spec), 0, "test")
}

#[tokio::test]
async fn phases_that_follow_at_once_are_taken_in_one_pass_and_each_is_recorded_before_the_action() {
    let log = Log::default();
    let machine = Scripted { result: Mutex::new(vec![ActionResult::Done { millis: 1 }]) };
    let next = run(&log, &machine, operation()).await.expect("run");
    assert_eq!(next, None, "it ended");
    let events = log.events.lock().expect("lock").clone();
    assert_eq!(events, ["record Pending", "act the action", "record Moving", "record Succeeded"], "recorded before acting: {events:?}");
}

#[tokio::test]
async fn a_retry_keeps_the_phase_and_backs_off_longer_each_time_and_progress_resets_it() {
    let log = Log::default();
    let machine = Scripted { result: Mutex::new(vec![ActionResult::Retry("zk down".into()), ActionResult::Retry("zk down".into()), ActionResult::Done { millis: 1 }]) };
    let first = run(&log, &machine, operation()).await.expect("run").expect("again later");
    let op = log.reload("op-1").await.expect("stored");
    assert_eq!(op.status.phase, Phase::Pending);
    assert!(op.status.message.as_deref().is_some_and(|m| m.contains("attempt 1") && m.contains("zk down")), "{:?}", op.status.message);
    let second = run(&log, &machine, op).await.expect("run").expect("again later");
    assert!(second > first, "{second:?} after {first:?}");
    let op = log.reload("op-1").await.expect("stored");
    assert_eq!(run(&log, &machine, op).await.expect("run"), None);
    assert_eq!(log.backoff.failed("op-1").0, 1, "reset by progress");
}

#[tokio::test]
async fn a_refused_action_ends_it_through_the_kinds_failure() {
    let log = Log::default();
    let machine = Scripted { result: Mutex::new(vec![ActionResult::Refused("topic changed".into())]) };
    assert_eq!(run(&log, &machine, operation()).await.expect("run"), None);
    let op = log.reload("op-1").await.expect("stored");
    assert_eq!((op.status.phase, op.status.message.as_deref()), (Phase::Failed, Some("topic changed")));
}

#[tokio::test]
async fn a_phase_the_kind_does_not_know_fails_it() {
    let log = Log::default();
    let machine = Scripted { result: Mutex::new(vec![]) };
    let mut op = operation();
    op.status.enter(Phase::DrainingConsumers, 1, None);
    assert_eq!(run(&log, &machine, op).await.expect("run"), None);
    let op = log.reload("op-1").await.expect("stored");
    assert_eq!(op.status.phase, Phase::Failed);
    assert!(op.status.message.as_deref().is_some_and(|m| m.contains("DrainingConsumers")));
}

#[tokio::test]
async fn a_write_refused_because_a_cancel_came_first_reloads_and_the_cancel_wins() {
    let log = Log::default();
    *log.cancel_next_write.lock().expect("lock") = true;
    let machine = Scripted { result: Mutex::new(vec![ActionResult::Done { millis: 1 }]) };
    assert_eq!(run(&log, &machine, operation()).await.expect("run"), None);
    let events = log.events.lock().expect("lock").clone();
    assert!(!events.iter().any(|e| e.starts_with("act")), "nothing acted on after the cancel: {events:?}");
    assert_eq!(log.reload("op-1").await.expect("stored").status.phase, Phase::Cancelled);
}
