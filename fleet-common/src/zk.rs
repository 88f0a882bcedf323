//! ZooKeeper connection setup that survives what broke Netflix's clients.
//!
//! - Clients that cached private IPs could not follow a rolling restart of the ensemble: here the
//!   connect string handed to the client keeps the *host names*, and `zookeeper-client` resolves
//!   them again on every (re)connect attempt.
//! - A temporary DNS failure at session start killed all later communication: here every host is
//!   resolved before connecting, the last good addresses of each host are remembered for the life of
//!   the process, and they are appended to the connect string as fallback endpoints, so a DNS outage
//!   falls back to the addresses that worked last; connecting retries with backoff until a deadline.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use zookeeper_client as zk;

/// One `host:port` of a connect string, as the user wrote it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ZkEndpoint {
    pub host: String,
    pub port: u16,
}

/// A parsed ZooKeeper connect string: `host1:2181,host2:2181[/chroot]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZkAddress {
    pub endpoints: Vec<ZkEndpoint>,
    /// Without trailing slash; `None` for the root.
    pub chroot: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ZkConnectError {
    #[error("zookeeper address `{input}` is malformed: {reason} (expected host:port[,host:port...][/chroot], e.g. zk1:2181,zk2:2181)")]
    Malformed { input: String, reason: String },
    #[error("no address of the ZooKeeper ensemble `{address}` could be resolved, and none worked before")]
    Unresolvable { address: String },
    #[error("could not reach ZooKeeper at `{address}` within {waited:?}: {source}")]
    Unreachable {
        address: String,
        waited: Duration,
        #[source]
        source: zk::Error,
    },
}

impl ZkAddress {
    pub fn parse(input: &str) -> Result<Self, ZkConnectError> {
        let malformed = |reason: &str| ZkConnectError::Malformed { input: input.to_string(), reason: reason.to_string() };
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(malformed("it is empty"));
        }
        let (hosts_part, chroot) = match trimmed.find('/') {
            Some(i) => (&trimmed[..i], Some(&trimmed[i..])),
            None => (trimmed, None),
        };
        let chroot = match chroot {
            None | Some("/") => None,
            Some(c) => {
                crate::paths::validate_znode_path(c).map_err(|e| malformed(&e.to_string()))?;
                Some(c.to_string())
            }
        };
        let mut endpoints = Vec::new();
        for part in hosts_part.split(',') {
            let part = part.trim();
            if part.is_empty() {
                return Err(malformed("it has an empty host entry"));
            }
            let (host, port) = match part.rsplit_once(':') {
                Some((h, p)) => {
                    let port: u16 =
                        p.parse().map_err(|_| malformed(&format!("port `{p}` of `{part}` is not a number 1-65535")))?;
                    if port == 0 {
                        return Err(malformed(&format!("port 0 in `{part}`")));
                    }
                    (h, port)
                }
                None => (part, 2181),
            };
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let valid_host = !host.is_empty()
                && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
            if !valid_host {
                return Err(malformed(&format!("host `{host}` is not a host name or IP address")));
            }
            endpoints.push(ZkEndpoint { host: host.to_string(), port });
        }
        Ok(Self { endpoints, chroot })
    }

    /// The same ensemble with another chroot.
    pub fn with_chroot(&self, chroot: Option<&str>) -> Self {
        Self { endpoints: self.endpoints.clone(), chroot: chroot.map(str::to_string) }
    }

    /// The hosts part, as Kafka's `zookeeper.connect` wants it (before the chroot).
    pub fn hosts_string(&self) -> String {
        self.endpoints.iter().map(|e| format_host_port(&e.host, e.port)).collect::<Vec<_>>().join(",")
    }
}

impl std::fmt::Display for ZkAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.hosts_string(), self.chroot.as_deref().unwrap_or(""))
    }
}

fn format_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// How host names are turned into addresses; a seam so tests can make DNS fail on purpose.
pub trait Resolve: Send + Sync {
    fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<IpAddr>>;
}

/// The system resolver (`getaddrinfo`).
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<IpAddr>> {
        use std::net::ToSocketAddrs;
        Ok((host, port).to_socket_addrs()?.map(|a: SocketAddr| a.ip()).collect())
    }
}

/// The fleet's ZooKeeper identity (digest scheme): every service that writes the fleet's znodes
/// (registry, locks, election) authenticates as it; everyone else may only read them.
#[derive(Clone, PartialEq, Eq)]
pub struct ZkIdentity {
    user: String,
    password: String,
}

impl std::fmt::Debug for ZkIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ZkIdentity({}:***)", self.user)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ZkIdentityError {
    #[error("cannot read the ZooKeeper identity file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{source_name}:{line}: {message}")]
    Malformed { source_name: String, line: usize, message: String },
    #[error("{source_name}: no identity in it: write one line USER:PASSWORD")]
    Empty { source_name: String },
    #[error("ZooKeeper identity file {0}")]
    NotPrivate(String),
}

impl ZkIdentity {
    /// One `USER:PASSWORD` line; blank lines and `#` comments are skipped. `source_name` (a file's
    /// path) names the place in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<Self, ZkIdentityError> {
        let mut found = None;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |message: String| ZkIdentityError::Malformed { source_name: source_name.to_string(), line: i + 1, message };
            if found.is_some() {
                return Err(bad("a second identity: the file holds exactly one USER:PASSWORD line".into()));
            }
            let Some((user, password)) = line.split_once(':') else {
                return Err(bad(format!("`{line}` has no password: write USER:PASSWORD")));
            };
            if user.is_empty() || !user.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                return Err(bad(format!("`{user}` is not a user name (letters, digits, - _ .)")));
            }
            if password.is_empty() {
                return Err(bad(format!("`{user}` has an empty password: write USER:PASSWORD")));
            }
            if password.len() < 12 {
                return Err(bad(format!("the password of `{user}` is {} characters: use at least 12", password.len())));
            }
            found = Some(Self { user: user.to_string(), password: password.to_string() });
        }
        found.ok_or_else(|| ZkIdentityError::Empty { source_name: source_name.to_string() })
    }

    /// Reads the file, refusing one its group or other users may read (it holds a password).
    pub fn load_file(path: &std::path::Path) -> Result<Self, ZkIdentityError> {
        crate::config_file::check_private(path).map_err(ZkIdentityError::NotPrivate)?;
        let text = std::fs::read_to_string(path).map_err(|source| ZkIdentityError::Read { path: path.display().to_string(), source })?;
        Self::parse(&text, &path.display().to_string())
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    /// The bytes of a digest `addauth`.
    pub fn auth(&self) -> Vec<u8> {
        format!("{}:{}", self.user, self.password).into_bytes()
    }
}

/// Who may change the fleet's own znodes (the broker-ID registry, its lock, the election).
/// Kafka's znodes are not these: they follow Kafka's `zookeeper.set.acl`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FleetAcl {
    /// No identity configured: open to every client (as before identities existed).
    Open,
    /// The creator's authenticated identity may do anything; everyone may read.
    Identity,
}

/// `auth` stands for the creating session's authenticated identities (ours: the digest).
static IDENTITY_ALL_WORLD_READ: [zk::Acl; 2] =
    [zk::Acl::new_const(zk::Permission::ALL, "auth", ""), zk::Acl::new_const(zk::Permission::READ, "world", "anyone")];

impl FleetAcl {
    pub fn acls(self) -> zk::Acls<'static> {
        match self {
            FleetAcl::Open => zk::Acls::anyone_all(),
            FleetAcl::Identity => zk::Acls::new(&IDENTITY_ALL_WORLD_READ),
        }
    }
}

/// Connects to ZooKeeper; remembers the last good addresses of every host it has resolved.
#[derive(Clone)]
pub struct ZkConnector {
    /// Authenticated as this on every session (re-sent when a session is re-established).
    identity: Option<ZkIdentity>,
    resolver: Arc<dyn Resolve>,
    last_good: Arc<Mutex<HashMap<String, Vec<IpAddr>>>>,
    pub session_timeout: Duration,
    pub connection_timeout: Duration,
    /// How long [`ZkConnector::connect`] keeps trying before giving up.
    pub connect_deadline: Duration,
}

impl Default for ZkConnector {
    fn default() -> Self {
        Self::new(Arc::new(SystemResolver))
    }
}

impl ZkConnector {
    pub fn new(resolver: Arc<dyn Resolve>) -> Self {
        Self {
            identity: None,
            resolver,
            last_good: Arc::default(),
            session_timeout: Duration::from_secs(10),
            connection_timeout: Duration::from_secs(2),
            connect_deadline: Duration::from_secs(30),
        }
    }

    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.connect_deadline = deadline;
        self
    }

    pub fn with_session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = timeout;
        self
    }

    pub fn with_identity(mut self, identity: Option<ZkIdentity>) -> Self {
        self.identity = identity;
        self
    }

    /// The ACL the fleet's znodes are created with by clients of this connector.
    pub fn fleet_acl(&self) -> FleetAcl {
        if self.identity.is_some() {
            FleetAcl::Identity
        } else {
            FleetAcl::Open
        }
    }

    /// The connect string handed to the client: every host by name (re-resolved on each reconnect),
    /// then the last good addresses of hosts whose name does not resolve now (fallback).
    pub fn effective_connect_string(&self, address: &ZkAddress) -> Result<String, ZkConnectError> {
        let mut names = Vec::new();
        let mut fallbacks = Vec::new();
        let mut any_usable = false;
        let mut last_good = self.last_good.lock().unwrap_or_else(|p| p.into_inner());
        for endpoint in &address.endpoints {
            names.push(format_host_port(&endpoint.host, endpoint.port));
            match self.resolver.resolve(&endpoint.host, endpoint.port) {
                Ok(ips) if !ips.is_empty() => {
                    any_usable = true;
                    last_good.insert(endpoint.host.clone(), ips);
                }
                Ok(_) | Err(_) => {
                    if let Some(ips) = last_good.get(&endpoint.host) {
                        tracing::warn!(host = %endpoint.host, fallback = ?ips, "zookeeper host does not resolve; using its last good addresses");
                        any_usable = true;
                        fallbacks.extend(ips.iter().map(|ip| format_host_port(&ip.to_string(), endpoint.port)));
                    } else {
                        tracing::warn!(host = %endpoint.host, "zookeeper host does not resolve and has no last good address");
                    }
                }
            }
        }
        if !any_usable {
            return Err(ZkConnectError::Unresolvable { address: address.to_string() });
        }
        let mut all = names;
        all.extend(fallbacks);
        let mut s = all.join(",");
        if let Some(chroot) = &address.chroot {
            s.push_str(chroot);
        }
        Ok(s)
    }

    /// Connects, retrying with backoff (DNS and the ensemble both included) until the deadline.
    #[tracing::instrument(skip(self), fields(zookeeper = %address))]
    pub async fn connect(&self, address: &ZkAddress) -> Result<zk::Client, ZkConnectError> {
        let started = Instant::now();
        let deadline = started + self.connect_deadline;
        let attempt = || async {
            let connect_string = self.effective_connect_string(address).map_err(Attempt::Fatal)?;
            let remaining = deadline.saturating_duration_since(Instant::now());
            let mut connector = zk::Client::connector()
                .with_session_timeout(self.session_timeout)
                .with_connection_timeout(self.connection_timeout.min(remaining.max(Duration::from_millis(100))))
                // Fail after one pass over the endpoints; backon decides when to pass again.
                .with_fail_eagerly();
            if let Some(identity) = &self.identity {
                connector = connector.with_auth("digest", &identity.auth());
            }
            match tokio::time::timeout(remaining.max(Duration::from_millis(100)), connector.connect(&connect_string))
                .await
            {
                Ok(Ok(client)) => Ok(client),
                Ok(Err(e)) => Err(Attempt::Retry(e)),
                Err(_) => Err(Attempt::Retry(zk::Error::Timeout)),
            }
        };
        let result = attempt
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(100))
                    .with_max_delay(Duration::from_secs(2))
                    .with_total_delay(Some(self.connect_deadline))
                    .without_max_times(),
            )
            .when(|e| match e {
                Attempt::Fatal(ZkConnectError::Unresolvable { .. }) => Instant::now() < deadline,
                Attempt::Fatal(_) => false,
                Attempt::Retry(_) => Instant::now() < deadline,
            })
            .notify(|e, after| tracing::debug!(error = %e, retry_in = ?after, "zookeeper connect attempt failed"))
            .await;
        result.map_err(|e| match e {
            Attempt::Fatal(e) => e,
            Attempt::Retry(source) => {
                ZkConnectError::Unreachable { address: address.to_string(), waited: started.elapsed(), source }
            }
        })
    }
}

#[derive(Debug, thiserror::Error)]
enum Attempt {
    #[error(transparent)]
    Fatal(ZkConnectError),
    #[error(transparent)]
    Retry(zk::Error),
}

/// Creates every missing ancestor and the node itself (persistent, with `acl`); no error if present.
pub async fn ensure_path(client: &zk::Client, path: &str, acl: FleetAcl) -> Result<(), zk::Error> {
    let options = zk::CreateMode::Persistent.with_acls(acl.acls());
    match client.mkdir(path, &options).await {
        Ok(()) | Err(zk::Error::NodeExists) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_files_are_checked_line_by_line() {
        let ok = ZkIdentity::parse("# the fleet's identity\n\nfleet:correct-horse-battery\n", "id").expect("valid");
        assert_eq!(ok.user(), "fleet");
        assert_eq!(ok.auth(), b"fleet:correct-horse-battery");
        assert!(!format!("{ok:?}").contains("horse"), "the password is never printed");
        for (text, expected) in [
            ("fleet\n", "id:1: `fleet` has no password"),
            ("# c\nfleet:\n", "id:2: `fleet` has an empty password"),
            ("fleet:short\n", "id:1: the password of `fleet` is 5 characters"),
            ("fl eet:correct-horse-battery\n", "id:1: `fl eet` is not a user name"),
            ("a:correct-horse-battery\nb:correct-horse-battery\n", "id:2: a second identity"),
            ("# only a comment\n", "id: no identity in it"),
        ] {
            let e = ZkIdentity::parse(text, "id").expect_err(text).to_string();
            assert!(e.starts_with(expected), "{text:?}: {e}");
        }
    }

    #[test]
    fn parses_multi_host_with_chroot() {
        let a = ZkAddress::parse("zk1:2181, zk2:2182,10.0.0.3/kafka/blue").expect("valid");
        assert_eq!(a.endpoints.len(), 3);
        assert_eq!(a.endpoints[2], ZkEndpoint { host: "10.0.0.3".into(), port: 2181 });
        assert_eq!(a.chroot.as_deref(), Some("/kafka/blue"));
        assert_eq!(a.to_string(), "zk1:2181,zk2:2182,10.0.0.3:2181/kafka/blue");
    }

    #[test]
    fn rejects_malformed_addresses_naming_the_part() {
        for (input, needle) in [
            ("", "empty"),
            ("zk1:notaport", "notaport"),
            ("zk1:2181,,zk2:2181", "empty host"),
            ("zk1:99999", "99999"),
            ("zk 1:2181", "zk 1"),
            ("zk1:2181/a//b", "empty segments"),
        ] {
            let err = ZkAddress::parse(input).expect_err(input).to_string();
            assert!(err.contains(needle), "{input}: {err}");
        }
    }

    struct FlakyResolver {
        fail: std::sync::atomic::AtomicBool,
    }

    impl Resolve for FlakyResolver {
        fn resolve(&self, host: &str, _port: u16) -> std::io::Result<Vec<IpAddr>> {
            if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
                Err(std::io::Error::other(format!("dns down for {host}")))
            } else {
                Ok(vec!["10.1.2.3".parse().expect("ip")])
            }
        }
    }

    #[test]
    fn dns_failure_falls_back_to_last_good_addresses() {
        let resolver = Arc::new(FlakyResolver { fail: false.into() });
        let connector = ZkConnector::new(resolver.clone());
        let address = ZkAddress::parse("zk.internal:2181/chroot").expect("valid");
        // First resolution works: only the name is used, so reconnects re-resolve it.
        assert_eq!(connector.effective_connect_string(&address).expect("resolves"), "zk.internal:2181/chroot");
        resolver.fail.store(true, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(
            connector.effective_connect_string(&address).expect("falls back"),
            "zk.internal:2181,10.1.2.3:2181/chroot"
        );
        // A process that never resolved the name has nothing to fall back to.
        let fresh = ZkConnector::new(resolver);
        assert!(matches!(fresh.effective_connect_string(&address), Err(ZkConnectError::Unresolvable { .. })));
    }
}
