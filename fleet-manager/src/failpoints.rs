//! Fault injection for the crash, retry and fencing tests, set through the environment:
//! - `FLEET_FAILPOINT_CRASH_AFTER_STEPS=N`: SIGKILL itself right after its N-th applied step,
//!   before anything of that reconcile is recorded.
//! - `FLEET_FAILPOINT_LOSE_LAUNCH_ANSWER=N`: the first N launches made a host, and then report a
//!   retryable error, as a call cut off after the provider acted would.
//! - `FLEET_FAILPOINT_STOP_BEFORE_RECORD=N`: SIGSTOP itself before recording its N-th reconcile
//!   that applied steps (a leader paused mid-pass, as by a long GC or a frozen VM).
//! - `FLEET_FAILPOINT_CRASH_AFTER_COMMIT=1`: SIGKILL itself right after a scale-up's ZooKeeper
//!   commit, before its status is recorded.
//! - `FLEET_FAILPOINT_CRASH_ENTERING=Phase[,Phase...]`: SIGKILL itself right after a failover or
//!   fallback has recorded entering one of these phases, before acting in it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

fn limit(var: &'static str, cell: &'static OnceLock<Option<usize>>) -> Option<usize> {
    *cell.get_or_init(|| std::env::var(var).ok().and_then(|v| v.parse().ok()))
}

pub fn crash_after_step() {
    static APPLIED: AtomicUsize = AtomicUsize::new(0);
    static LIMIT: OnceLock<Option<usize>> = OnceLock::new();
    if let Some(limit) = limit("FLEET_FAILPOINT_CRASH_AFTER_STEPS", &LIMIT) {
        if APPLIED.fetch_add(1, Ordering::SeqCst) + 1 >= limit {
            tracing::warn!(limit, "failpoint: crashing now");
            signal_self(libc::SIGKILL);
        }
    }
}

pub fn crash_after_commit() {
    static LIMIT: OnceLock<Option<usize>> = OnceLock::new();
    if limit("FLEET_FAILPOINT_CRASH_AFTER_COMMIT", &LIMIT).is_some_and(|n| n > 0) {
        tracing::warn!("failpoint: crashing right after the commit");
        signal_self(libc::SIGKILL);
    }
}

pub fn crash_on_entering(phase: &str) {
    static PHASES: OnceLock<Vec<String>> = OnceLock::new();
    let phases = PHASES.get_or_init(|| std::env::var("FLEET_FAILPOINT_CRASH_ENTERING").map(|v| v.split(',').map(|p| p.trim().to_string()).collect()).unwrap_or_default());
    if phases.iter().any(|p| p == phase) {
        tracing::warn!(phase, "failpoint: crashing on entering the phase");
        signal_self(libc::SIGKILL);
    }
}

/// Whether this launch's answer is to be lost.
pub fn lose_launch_answer() -> bool {
    static LOST: AtomicUsize = AtomicUsize::new(0);
    static LIMIT: OnceLock<Option<usize>> = OnceLock::new();
    match limit("FLEET_FAILPOINT_LOSE_LAUNCH_ANSWER", &LIMIT) {
        Some(limit) if LOST.fetch_add(1, Ordering::SeqCst) < limit => {
            tracing::warn!("failpoint: the launch answer is lost");
            true
        }
        _ => false,
    }
}

pub fn stop_before_record() {
    static RECORDS: AtomicUsize = AtomicUsize::new(0);
    static LIMIT: OnceLock<Option<usize>> = OnceLock::new();
    if let Some(limit) = limit("FLEET_FAILPOINT_STOP_BEFORE_RECORD", &LIMIT) {
        if RECORDS.fetch_add(1, Ordering::SeqCst) + 1 == limit {
            tracing::warn!("failpoint: stopping (SIGSTOP) before recording");
            signal_self(libc::SIGSTOP);
        }
    }
}

#[allow(unsafe_code)]
fn signal_self(signal: i32) {
    // SAFETY: kill(2) on our own PID has no memory effects.
    unsafe {
        libc::kill(libc::getpid(), signal);
    }
}
