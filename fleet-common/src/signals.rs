//! The signals that stop a long-running command. SIGHUP is among them: a terminal that closes
//! must stop what was started from it as Ctrl-C does, not leave it running headless (SIGHUP's
//! default action kills the process without running any cleanup).

use tokio::signal::unix::{signal, SignalKind};

/// Resolves with the signal's name at the first SIGINT, SIGTERM or SIGHUP. Installing the
/// handlers replaces the default actions for the life of the process, so call it early.
pub async fn stop_requested() -> &'static str {
    let mut term = signal(SignalKind::terminate()).ok();
    let mut hup = signal(SignalKind::hangup()).ok();
    let mut int = signal(SignalKind::interrupt()).ok();
    async fn next(s: &mut Option<tokio::signal::unix::Signal>) {
        match s {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending().await,
        }
    }
    tokio::select! {
        _ = next(&mut int) => "SIGINT",
        _ = next(&mut term) => "SIGTERM",
        _ = next(&mut hup) => "SIGHUP",
    }
}
