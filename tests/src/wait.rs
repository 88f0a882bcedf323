//! Waiting on a condition with a deadline (never sleep-and-hope).

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `check` until it returns `Some`, or panics with `what` and the last observation after
/// `deadline`.
pub async fn wait_until<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, String>>,
{
    match try_wait_until(deadline, &mut check).await {
        Ok(v) => v,
        Err(last) => panic!("timed out after {deadline:?} waiting for {what}; last observation: {last}"),
    }
}

/// Like [`wait_until`] but returns the last observation instead of panicking.
pub async fn try_wait_until<T, F, Fut>(deadline: Duration, check: &mut F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, String>>,
{
    let started = Instant::now();
    let mut last;
    let mut delay = Duration::from_millis(20);
    loop {
        match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => last = "condition not met".into(),
            Err(e) => last = e,
        }
        if started.elapsed() >= deadline {
            return Err(last);
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(250));
    }
}
