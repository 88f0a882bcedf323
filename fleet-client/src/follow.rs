//! Following a route: a thread of its own (so the caller needs no runtime and nothing the caller
//! does waits on it) long-polls the fleet manager for the route's binding, keeps the last one on
//! disk, and sends the client's reports.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fleet_api::client::{ClientReport, RouteBinding};

use crate::config::ClientConfig;

/// Where a binding came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BindingSource {
    /// The cache on disk, at start.
    Cache,
    /// A change the long poll answered.
    Watch,
    /// A fetch asked for by the client ([`Follows::refresh_wanted`]): current, even when its
    /// generation is the one the client has.
    Fresh,
}

/// What a follower drives: the producer or the consumer.
pub(crate) trait Follows: Send + Sync + 'static {
    /// A binding with a new generation (from the cache at start, then from the fleet manager),
    /// or a fresh one asked for.
    fn on_binding(&self, binding: RouteBinding, source: BindingSource);
    /// The fleet manager could not give a usable binding (kept for `last_error`).
    fn on_error(&self, message: String);
    fn report(&self) -> ClientReport;
    /// Called every few milliseconds on the follower's thread.
    fn tick(&self) {}
    /// Notified when a report should go now rather than at the next interval.
    fn report_now(&self) -> Option<&tokio::sync::Notify> {
        None
    }
    /// Notified when the binding should be fetched afresh now.
    fn refresh_wanted(&self) -> Option<&tokio::sync::Notify> {
        None
    }
}

/// The last binding on local disk: written atomically, read at start, ignored (with a warning)
/// when it cannot be read or is for another route.
#[derive(Clone, Debug)]
pub struct BindingCache {
    path: PathBuf,
}

impl BindingCache {
    pub fn new(path: &Path) -> Self {
        Self { path: path.to_path_buf() }
    }

    pub fn load(&self, route: &str) -> Option<RouteBinding> {
        let text = match std::fs::read(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "binding cache unreadable; ignored");
                return None;
            }
        };
        match serde_json::from_slice::<RouteBinding>(&text).map_err(|e| e.to_string()).and_then(|b| b.check().map(|()| b)) {
            Ok(b) if b.route == route => Some(b),
            Ok(b) => {
                tracing::warn!(path = %self.path.display(), cached = %b.route, route, "binding cache is for another route; ignored");
                None
            }
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "binding cache is corrupt; ignored");
                None
            }
        }
    }

    pub fn store(&self, binding: &RouteBinding) -> std::io::Result<()> {
        let dir = self.path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        serde_json::to_writer(&mut tmp, binding)?;
        tmp.as_file().sync_all()?;
        tmp.persist(&self.path).map_err(|e| e.error)?;
        Ok(())
    }
}

pub(crate) struct Follower {
    stop: tokio::sync::watch::Sender<bool>,
    /// Closed when the thread ends (in a mutex: the producer is shared between threads).
    ended: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Follower {
    /// Stops the follower, waiting at most `timeout` for its thread (it may be in the middle of
    /// a switch); past that the thread is left to end by itself.
    pub(crate) fn stop(mut self, timeout: Duration) {
        self.stop.send_replace(true);
        let answer = self.ended.lock().unwrap_or_else(|p| p.into_inner()).recv_timeout(timeout);
        let ended = matches!(answer, Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected));
        if let Some(t) = self.thread.take() {
            if ended {
                let _ = t.join();
            }
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        // Not joined: dropping never waits on the network.
        self.thread.take();
    }
}

/// Starts following; returns at once (nothing here touches the network on the caller's thread).
pub(crate) fn spawn(config: ClientConfig, target: Arc<dyn Follows>, tick: Duration) -> std::io::Result<Follower> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (ended_tx, ended) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::Builder::new().name(format!("fleet-follow-{}", config.route)).spawn(move || {
        let _ended = ended_tx;
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(r) => r,
            Err(e) => {
                target.on_error(format!("cannot start the follower's runtime: {e}"));
                return;
            }
        };
        runtime.block_on(run(config, target, stopped, tick));
        // Its runtime is dropped here; `_ended` after it: the thread is done.
    })?;
    Ok(Follower { stop, ended: std::sync::Mutex::new(ended), thread: Some(thread) })
}

/// Runs `work` unless the follower stops first (`None` then).
async fn or_stop<T>(stopped: &tokio::sync::watch::Receiver<bool>, work: impl std::future::Future<Output = T>) -> Option<T> {
    let mut stopped = stopped.clone();
    tokio::select! {
        _ = stopped.wait_for(|s| *s) => None,
        out = work => Some(out),
    }
}

async fn run(config: ClientConfig, target: Arc<dyn Follows>, stopped: tokio::sync::watch::Receiver<bool>, tick: Duration) {
    let cache = config.cache_path.as_deref().map(BindingCache::new);
    let mut generation = None;
    if let Some(b) = cache.as_ref().and_then(|c| c.load(&config.route)) {
        tracing::info!(route = %b.route, cluster = %b.cluster, generation = b.generation, "starting from the cached binding");
        generation = Some(b.generation);
        target.on_binding(b, BindingSource::Cache);
    }
    let mut builder = reqwest::Client::builder().connect_timeout(Duration::from_secs(2));
    // Checked when the client was built; read again here so the config stays plain data.
    for cert in config.ca_certificates().unwrap_or_default() {
        builder = builder.add_root_certificate(cert);
    }
    let http = match builder.build() {
        Ok(h) => h,
        Err(e) => {
            target.on_error(format!("cannot build an HTTP client: {e}"));
            return;
        }
    };
    let watch = async {
        let mut next = 0usize;
        let mut backoff = Duration::from_millis(200);
        let mut fresh = false;
        loop {
            let url = config.fleet_managers[next % config.fleet_managers.len()].trim_end_matches('/').to_string();
            // A long poll for a change, cut short when the client wants the binding now.
            let after = if fresh { None } else { generation };
            let poll = async {
                match target.refresh_wanted() {
                    Some(n) if after.is_some() => {
                        tokio::select! {
                            answer = fetch(&http, &url, &config, after) => Some(answer),
                            _ = n.notified() => None,
                        }
                    }
                    _ => Some(fetch(&http, &url, &config, after).await),
                }
            };
            let Some(answer) = or_stop(&stopped, poll).await else { break };
            let Some(answer) = answer else {
                fresh = true;
                continue;
            };
            let was_fresh = std::mem::take(&mut fresh);
            match answer {
                Ok(b) => {
                    backoff = Duration::from_millis(200);
                    if was_fresh && Some(b.generation) == generation {
                        target.on_binding(b, BindingSource::Fresh);
                    } else if Some(b.generation) != generation {
                        tracing::info!(route = %b.route, cluster = %b.cluster, generation = b.generation, "route binding");
                        generation = Some(b.generation);
                        if let Some(c) = &cache {
                            if let Err(e) = c.store(&b) {
                                tracing::warn!(error = %e, "could not write the binding cache");
                            }
                        }
                        target.on_binding(b, if was_fresh { BindingSource::Fresh } else { BindingSource::Watch });
                    }
                    continue;
                }
                Err(Fetch::Unreachable(e)) => {
                    tracing::debug!(url, error = %e, "fleet manager unreachable; trying the next");
                    target.on_error(format!("fleet manager {url} unreachable: {e}"));
                    // Still wanted: the next answer is taken as fresh.
                    fresh = was_fresh;
                    next += 1;
                }
                Err(Fetch::Refused(e)) => {
                    tracing::error!(url, error = %e, "binding refused; the cache is left as it was");
                    target.on_error(e);
                    if or_stop(&stopped, tokio::time::sleep(Duration::from_secs(5))).await.is_none() {
                        break;
                    }
                    continue;
                }
            }
            if or_stop(&stopped, tokio::time::sleep(backoff)).await.is_none() {
                break;
            }
            // Unreachable: retried within a second, so a restarted fleet manager's first change
            // still reaches clients within about a second.
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    };
    let report = async {
        let mut next = 0usize;
        // Given with this instance's first report; later ones must carry it. A report refused
        // for it lapses after the report TTL, and the instance is then claimed afresh.
        let mut credential: Option<String> = None;
        let wait = || async {
            match target.report_now() {
                // Soon, not at once: a burst of changes makes one report.
                Some(n) => tokio::select! {
                    _ = tokio::time::sleep(config.report_interval) => {}
                    _ = async { n.notified().await; tokio::time::sleep(Duration::from_millis(20)).await } => {}
                },
                None => tokio::time::sleep(config.report_interval).await,
            }
        };
        while or_stop(&stopped, wait()).await.is_some() {
            let url = config.fleet_managers[next % config.fleet_managers.len()].trim_end_matches('/').to_string();
            let mut req = http.post(format!("{url}/v1/clients/reports")).timeout(Duration::from_secs(3)).json(&target.report());
            if let Some(t) = &config.token {
                req = req.bearer_auth(t);
            }
            if let Some(c) = &credential {
                req = req.header(fleet_api::client::INSTANCE_CREDENTIAL_HEADER, c);
            }
            match or_stop(&stopped, req.send()).await {
                None => break,
                Some(Ok(r)) if r.status().is_success() => {
                    if let Ok(view) = r.json::<fleet_api::client::ClientView>().await {
                        if view.credential.is_some() {
                            credential = view.credential;
                        }
                    }
                }
                Some(Ok(r)) => tracing::warn!(url, status = %r.status(), body = %r.text().await.unwrap_or_default(), "client report refused"),
                Some(Err(_)) => next += 1,
            }
        }
    };
    let ticks = async {
        loop {
            target.tick();
            if or_stop(&stopped, tokio::time::sleep(tick)).await.is_none() {
                break;
            }
        }
    };
    tokio::join!(watch, report, ticks);
}

enum Fetch {
    /// Nothing answered (or a 5xx): try another instance.
    Unreachable(String),
    /// An answer that cannot be used: wrong route, token, or a malformed binding.
    Refused(String),
}

/// An error with its causes: reqwest's own message hides why (refused, certificate not trusted).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

async fn fetch(http: &reqwest::Client, url: &str, config: &ClientConfig, after: Option<i64>) -> Result<RouteBinding, Fetch> {
    let wait = config.watch_wait.as_millis();
    let path = match after {
        Some(g) => format!("{url}/v1/routes/{}/binding?after={g}&waitMs={wait}", config.route),
        None => format!("{url}/v1/routes/{}/binding", config.route),
    };
    let mut req = http.get(&path).timeout(config.watch_wait + Duration::from_secs(5));
    if let Some(t) = &config.token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.map_err(|e| Fetch::Unreachable(error_chain(&e)))?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| Fetch::Unreachable(e.to_string()))?;
    let message = || {
        serde_json::from_slice::<fleet_api::wire::ErrorBody>(&body).map(|e| e.message).unwrap_or_else(|_| String::from_utf8_lossy(&body).chars().take(200).collect())
    };
    match status.as_u16() {
        200 => {}
        404 => return Err(Fetch::Refused(format!("route `{}`: the fleet manager at {url} does not know it ({})", config.route, message()))),
        401 | 403 => return Err(Fetch::Refused(format!("token: the fleet manager at {url} refused it ({status}: {}); use a token with the client scope", message()))),
        s if s >= 500 => return Err(Fetch::Unreachable(format!("{status}: {}", message()))),
        _ => return Err(Fetch::Refused(format!("binding of `{}` from {url}: {status}: {}", config.route, message()))),
    }
    let binding: RouteBinding = serde_json::from_slice(&body).map_err(|e| Fetch::Refused(format!("malformed binding from {url}: {e}")))?;
    binding.check().map_err(|e| Fetch::Refused(format!("malformed binding from {url}: {e}")))?;
    if binding.route != config.route {
        return Err(Fetch::Refused(format!("malformed binding from {url}: it is for route `{}`, not `{}`", binding.route, config.route)));
    }
    Ok(binding)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(route: &str) -> RouteBinding {
        RouteBinding {
            route: route.into(),
            cluster: "blue".into(),
            bootstrap_servers: vec!["127.0.0.1:9092".into()],
            generation: 7,
            phase: fleet_api::client::RoutePhase::Steady,
            topics: Default::default(),
            next: None,
            previous: None,
            left: Vec::new(),
        }
    }

    #[test]
    fn the_cache_round_trips_and_ignores_what_it_cannot_use() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = BindingCache::new(&dir.path().join("sub/orders.json"));
        assert_eq!(cache.load("orders"), None);
        cache.store(&binding("orders")).expect("store");
        assert_eq!(cache.load("orders"), Some(binding("orders")));
        assert_eq!(cache.load("payments"), None, "another route's binding");
        std::fs::write(dir.path().join("sub/orders.json"), b"{\"route\": \"orders\", trunc").expect("write");
        assert_eq!(cache.load("orders"), None, "corrupt");
    }
}
