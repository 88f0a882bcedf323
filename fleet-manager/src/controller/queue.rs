//! The work queue of the controller, after kube-runtime's scheduler: one entry per key (a
//! cluster), each due at its own time; a key is reconciled by one task at a time; a trigger for a
//! key that is running marks it dirty, so it runs again as soon as it finishes; failures back off
//! per key. Pure (time is passed in), so its policy is unit-tested.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::providers::ErrorClass;

/// What a reconcile of one key asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requeue {
    /// Done for now: look again after this long.
    After(Duration),
    /// It failed: back off (retryable) or hold until something changes (terminal).
    Failed(ErrorClass),
    /// The key no longer exists.
    Gone,
}

#[derive(Clone, Copy, Debug)]
pub struct BackoffPolicy {
    pub first: Duration,
    pub max: Duration,
    /// How long a terminally failed key waits when nothing changes (a spec change retries at once).
    pub terminal_hold: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        Self { first: Duration::from_secs(1), max: Duration::from_secs(300), terminal_hold: Duration::from_secs(600) }
    }
}

impl BackoffPolicy {
    /// 1 s, 2 s, 4 s ... capped.
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(20));
        self.first.saturating_mul(factor).min(self.max)
    }
}

#[derive(Debug, Default)]
pub struct Queue {
    due: BTreeMap<String, Instant>,
    running: BTreeSet<String>,
    dirty: BTreeSet<String>,
    failures: BTreeMap<String, u32>,
    policy: BackoffPolicy,
}

impl Queue {
    pub fn new(policy: BackoffPolicy) -> Self {
        Self { policy, ..Self::default() }
    }

    /// Asks for `key` to be reconciled at `at` or earlier.
    pub fn trigger(&mut self, key: &str, at: Instant) {
        if self.running.contains(key) {
            self.dirty.insert(key.to_string());
            return;
        }
        let entry = self.due.entry(key.to_string()).or_insert(at);
        if at < *entry {
            *entry = at;
        }
    }

    /// Keys due by `now`, at most `limit`, marked running.
    pub fn take_due(&mut self, now: Instant, limit: usize) -> Vec<String> {
        let mut ready: Vec<(Instant, String)> =
            self.due.iter().filter(|(k, at)| **at <= now && !self.running.contains(*k)).map(|(k, at)| (*at, k.clone())).collect();
        ready.sort();
        ready.truncate(limit);
        for (_, k) in &ready {
            self.due.remove(k);
            self.running.insert(k.clone());
        }
        ready.into_iter().map(|(_, k)| k).collect()
    }

    /// When the next key falls due (none: nothing scheduled).
    pub fn next_due(&self) -> Option<Instant> {
        self.due.iter().filter(|(k, _)| !self.running.contains(*k)).map(|(_, at)| *at).min()
    }

    pub fn running(&self) -> usize {
        self.running.len()
    }

    pub fn failures(&self, key: &str) -> u32 {
        self.failures.get(key).copied().unwrap_or(0)
    }

    /// Records how a reconcile of `key` ended and when it runs next.
    pub fn finish(&mut self, key: &str, outcome: Requeue, now: Instant) {
        self.running.remove(key);
        let dirty = self.dirty.remove(key);
        let at = match outcome {
            Requeue::Gone => {
                self.failures.remove(key);
                if dirty {
                    // Declared again meanwhile.
                    self.due.insert(key.to_string(), now);
                }
                return;
            }
            Requeue::After(d) => {
                self.failures.remove(key);
                if dirty {
                    now
                } else {
                    now + d
                }
            }
            Requeue::Failed(class) => {
                let n = self.failures.entry(key.to_string()).or_insert(0);
                *n += 1;
                let wait = match class {
                    ErrorClass::Retryable => self.policy.delay(*n),
                    ErrorClass::Terminal => self.policy.terminal_hold,
                };
                // A change of the spec may be the fix: retry it at once, but never sooner than
                // the first backoff step (a crash loop stays paced).
                if dirty {
                    now + self.policy.first
                } else {
                    now + wait
                }
            }
        };
        self.due.insert(key.to_string(), at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_reconcile_per_key_and_a_trigger_while_running_reruns_it() {
        let t0 = Instant::now();
        let mut q = Queue::new(BackoffPolicy::default());
        q.trigger("a", t0);
        q.trigger("b", t0 + Duration::from_secs(5));
        assert_eq!(q.take_due(t0, 10), ["a"]);
        q.trigger("a", t0);
        assert!(q.take_due(t0, 10).is_empty(), "a is running");
        q.finish("a", Requeue::After(Duration::from_secs(30)), t0);
        assert_eq!(q.take_due(t0, 10), ["a"], "dirty: runs again at once");
        q.finish("a", Requeue::After(Duration::from_secs(30)), t0);
        assert_eq!(q.next_due(), Some(t0 + Duration::from_secs(5)));
    }

    #[test]
    fn a_waiting_key_does_not_hold_up_the_others() {
        let t0 = Instant::now();
        let mut q = Queue::new(BackoffPolicy::default());
        for k in ["a", "b", "c"] {
            q.trigger(k, t0);
        }
        let keys = q.take_due(t0, 10);
        q.finish(&keys[0], Requeue::After(Duration::from_secs(90)), t0); // waiting out a grace period
        q.finish(&keys[1], Requeue::After(Duration::from_secs(30)), t0);
        q.finish(&keys[2], Requeue::After(Duration::from_secs(30)), t0);
        assert!(q.take_due(t0 + Duration::from_secs(29), 10).is_empty());
        assert_eq!(q.take_due(t0 + Duration::from_secs(30), 10).len(), 2);
    }

    #[test]
    fn failures_back_off_per_key_and_terminal_ones_hold() {
        let t0 = Instant::now();
        let policy = BackoffPolicy::default();
        let mut q = Queue::new(policy);
        q.trigger("a", t0);
        for n in 1..=3u32 {
            let now = q.next_due().expect("due");
            assert_eq!(q.take_due(now, 1), ["a"]);
            q.finish("a", Requeue::Failed(ErrorClass::Retryable), now);
            assert_eq!(q.next_due(), Some(now + policy.delay(n)));
        }
        assert_eq!(policy.delay(3), Duration::from_secs(4));
        assert_eq!(policy.delay(40), policy.max);
        let now = q.next_due().expect("due");
        q.take_due(now, 1);
        q.finish("a", Requeue::Failed(ErrorClass::Terminal), now);
        assert_eq!(q.next_due(), Some(now + policy.terminal_hold));
        // A spec change brings it back at once.
        q.trigger("a", now);
        assert_eq!(q.next_due(), Some(now));
        q.take_due(now, 1);
        q.finish("a", Requeue::After(Duration::from_secs(30)), now);
        assert_eq!(q.failures("a"), 0);
    }
}
