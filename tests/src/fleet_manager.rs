//! A `fleet-manager` process and `fleetctl` runs against it. Dropping the fixture stops the
//! fleet manager and every local broker host it launched (hosts outlive a fleet manager by
//! design, so the fixture has to end them).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process::ManagedProcess;
use crate::{free_port, kafka_libs, wait_until, workspace_bin, RunDir};

pub const WRITE_TOKEN: &str = "ops-write-secret-1";
pub const READ_TOKEN: &str = "dash-read-secret-1";
/// The `client` scope: route bindings and client reports only.
pub const CLIENT_TOKEN: &str = "app-client-secret-1";

#[derive(Clone, Debug)]
pub struct FleetManagerOptions {
    pub zookeeper: String,
    pub fleet_root: String,
    /// `None`: SQLite under the data folder.
    pub database: Option<String>,
    pub replace_grace_secs: u64,
    pub interval_secs: u64,
    pub session_timeout_ms: u64,
    pub extra_args: Vec<String>,
    pub extra_env: Vec<(String, String)>,
    /// Give it Kafka's jars, which enables the local host provider.
    pub local_hosts: bool,
    /// Listen here (default: a free port), e.g. one clients were pointed at before it started.
    pub port: Option<u16>,
    /// Local hosts (JVMs) running at once, at most.
    pub local_max_hosts: usize,
    /// Serve HTTPS with this certificate; `ca` is what fleetctl, the harness and hosts trust.
    pub tls: Option<TlsOptions>,
    /// Use this data folder (local hosts, local DNS) instead of one of its own: instances of one
    /// fleet share it, as they would share the machines their hosts run on.
    pub data_dir: Option<PathBuf>,
    /// The fleet's ZooKeeper identity (default: the harness's); `None` runs with
    /// `--insecure-zookeeper`.
    pub zk_identity_file: Option<PathBuf>,
}

#[derive(Clone, Debug)]
pub struct TlsOptions {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

impl FleetManagerOptions {
    pub fn new(zookeeper: &str) -> Self {
        Self {
            zookeeper: zookeeper.to_string(),
            fleet_root: format!("/{}", crate::unique("fleet")),
            database: None,
            replace_grace_secs: 20,
            interval_secs: 5,
            session_timeout_ms: 4000,
            extra_args: Vec::new(),
            extra_env: Vec::new(),
            local_hosts: true,
            port: None,
            local_max_hosts: 8,
            tls: None,
            data_dir: None,
            zk_identity_file: Some(crate::zk_identity_file()),
        }
    }
}

pub struct FleetManager {
    pub options: FleetManagerOptions,
    pub data_dir: PathBuf,
    pub port: u16,
    pub process: Option<ManagedProcess>,
    pub run: RunDir,
    starts: usize,
}

impl FleetManager {
    pub async fn start(options: FleetManagerOptions) -> Self {
        let run = RunDir::new("fleet-manager");
        let data_dir = options.data_dir.clone().unwrap_or_else(|| run.path.join("data"));
        let port = options.port.unwrap_or_else(free_port);
        let mut fm = Self { options, data_dir, port, process: None, run, starts: 0 };
        fm.spawn().await;
        fm
    }

    pub fn url(&self) -> String {
        let scheme = if self.options.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// An HTTP client for this fleet manager (trusting its CA when it serves HTTPS).
    pub fn http(&self) -> reqwest::Client {
        match &self.options.tls {
            Some(t) => crate::tls::client_trusting(&t.ca),
            None => reqwest::Client::new(),
        }
    }

    pub fn database_url(&self) -> String {
        self.options
            .database
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", self.data_dir.join("fleet.db").display()))
    }

    pub fn hosts_root(&self) -> PathBuf {
        self.data_dir.join("local/hosts")
    }

    pub fn dns_root(&self) -> PathBuf {
        self.data_dir.join("local/dns")
    }

    /// (Re)starts the process on the same port, data and database.
    pub async fn spawn(&mut self) {
        self.starts += 1;
        let mut cmd = Command::new(workspace_bin("fleet-manager"));
        cmd.args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--zookeeper", &self.options.zookeeper, "--fleet-root", &self.options.fleet_root])
            .args(["--zk-session-timeout-ms", &self.options.session_timeout_ms.to_string()])
            .arg("--token-file")
            .arg(self.token_file())
            .args(["--interval-secs", &self.options.interval_secs.to_string()])
            .args(["--replace-grace-secs", &self.options.replace_grace_secs.to_string()])
            .args(["--step-timeout-secs", "60", "--local-max-hosts", &self.options.local_max_hosts.to_string()])
            .args(["--identity", &format!("fm-{}-{}", self.port, self.starts)])
            .env("RUST_LOG", "info,sqlx=warn,rdkafka=warn")
            .env_remove("FLEET_MANAGER_TOKENS");
        if self.options.local_hosts {
            cmd.arg("--kafka-libs").arg(kafka_libs());
            cmd.arg("--kafka4-libs").arg(crate::kafka4_libs());
        }
        if let Some(db) = &self.options.database {
            cmd.args(["--database", db]);
        }
        match &self.options.zk_identity_file {
            Some(id) => cmd.arg("--zk-identity-file").arg(id),
            None => cmd.arg("--insecure-zookeeper"),
        };
        if let Some(t) = &self.options.tls {
            cmd.arg("--tls-cert").arg(&t.cert).arg("--tls-key").arg(&t.key).arg("--hosts-ca-file").arg(&t.ca);
        }
        cmd.args(&self.options.extra_args);
        for (k, v) in &self.options.extra_env {
            cmd.env(k, v);
        }
        std::fs::create_dir_all(&self.data_dir).expect("data dir");
        let log = self.run.path.join(format!("fleet-manager-{}.log", self.starts));
        let process = ManagedProcess::spawn("fleet-manager", cmd, &log).expect("spawn fleet-manager");
        self.process = Some(process);
        let url = format!("{}/healthz", self.url());
        let http = self.http();
        wait_until(&format!("fleet manager answering {url} (log {})", log.display()), Duration::from_secs(30), || {
            let http = http.clone();
            let url = url.clone();
            async move {
                match http.get(&url).send().await {
                    Ok(r) if r.status().is_success() => Ok(Some(())),
                    Ok(r) => Err(format!("status {}", r.status())),
                    Err(e) => Err(e.to_string()),
                }
            }
        })
        .await;
    }

    /// `kill -9` of the fleet manager (its hosts keep running).
    pub fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }

    pub fn log_tail(&self, lines: usize) -> String {
        self.process.as_ref().map(|p| p.log_tail(lines)).unwrap_or_default()
    }

    pub async fn health(&self) -> Option<serde_json::Value> {
        let r = self.http().get(format!("{}/healthz", self.url())).send().await.ok()?;
        r.json().await.ok()
    }

    /// An API call with a token; returns (status, JSON body).
    pub async fn call(&self, method: reqwest::Method, path: &str, token: Option<&str>, body: Option<(&str, String)>) -> (u16, serde_json::Value) {
        let mut req = self.http().request(method, format!("{}{path}", self.url()));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some((content_type, b)) = body {
            req = req.header("content-type", content_type).body(b);
        }
        let resp = req.send().await.expect("fleet manager reachable");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::GET, path, Some(READ_TOKEN), None).await
    }

    /// Runs `fleetctl` against this fleet manager with the write token.
    /// The tokens, in a file only its owner reads (the read token given as its SHA-256, as an
    /// operator who keeps secrets out of files would).
    fn token_file(&self) -> PathBuf {
        use sha2::Digest;
        let path = self.run.path.join("tokens");
        let read_digest = hex::encode(sha2::Sha256::digest(READ_TOKEN.as_bytes()));
        let text = format!("# name:scope:secret\nops:write:{WRITE_TOKEN}\ndash:read:sha256:{read_digest}\napp:client:{CLIENT_TOKEN}\n");
        std::fs::write(&path, text).expect("token file");
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod token file");
        path
    }

    pub async fn fleetctl(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = tokio::process::Command::new(workspace_bin("fleetctl"));
        cmd.kill_on_drop(true).args(args).env("FLEET_API", self.url()).env("FLEET_TOKEN", WRITE_TOKEN).env_remove("FLEET_CA_FILE");
        if let Some(t) = &self.options.tls {
            cmd.env("FLEET_CA_FILE", &t.ca);
        }
        cmd.output().await.expect("run fleetctl")
    }

    /// The instance IDs of local hosts the fleet manager launched, with their state.
    pub fn local_hosts(&self) -> Vec<fleet_common::local::LocalInstance> {
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(self.hosts_root()) else { return out };
        for e in entries.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if let Ok(Some(i)) = fleet_common::local::read_instance(&self.hosts_root(), &id) {
                out.push(i);
            }
        }
        out.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
        out
    }

    /// Bootstrap servers of the running local hosts' brokers (from their instance files).
    pub fn bootstrap_servers(&self) -> String {
        self.cluster_servers(None)
    }

    /// As [`Self::bootstrap_servers`], of one cluster's hosts.
    pub fn cluster_servers(&self, cluster: Option<&str>) -> String {
        self.local_hosts()
            .iter()
            .filter(|h| h.state == fleet_common::local::LocalInstanceState::Running)
            .filter(|h| cluster.is_none() || h.cluster.as_deref() == cluster)
            .filter_map(|h| h.port.map(|p| format!("127.0.0.1:{p}")))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `kill -9` of one cluster's local hosts (their bootstrap's process group and JVM).
    pub fn kill_cluster_hosts(&self, cluster: &str) {
        for h in self.local_hosts().iter().filter(|h| h.cluster.as_deref() == Some(cluster)) {
            for (file, group) in [("host.pid", true), ("data/kafka.pid", false)] {
                let Ok(text) = std::fs::read_to_string(self.hosts_root().join(&h.instance_id).join(file)) else { continue };
                let Ok(pid) = text.trim().parse::<i32>() else { continue };
                if pid > 1 && Path::new(&format!("/proc/{pid}")).exists() {
                    crate::process::signal_pid(if group { -pid } else { pid }, libc::SIGKILL);
                }
            }
        }
    }

    /// Writes `docs` to the run folder as `name` and runs `fleetctl apply -f` on it.
    pub async fn apply_yaml(&self, name: &str, docs: &str) -> std::process::Output {
        let path = self.run.path.join(name);
        std::fs::write(&path, docs).expect("write specs");
        self.fleetctl(&["apply", "-f", &path.display().to_string()]).await
    }

    /// `kill -9` of one local host (its bootstrap's process group and JVM): a broker lost.
    pub fn kill_host(&self, instance_id: &str) {
        for (file, group) in [("host.pid", true), ("data/kafka.pid", false)] {
            let Ok(text) = std::fs::read_to_string(self.hosts_root().join(instance_id).join(file)) else { continue };
            let Ok(pid) = text.trim().parse::<i32>() else { continue };
            if pid > 1 && Path::new(&format!("/proc/{pid}")).exists() {
                crate::process::signal_pid(if group { -pid } else { pid }, libc::SIGKILL);
            }
        }
    }

    /// Whether the fleet manager process is still running (a failpoint may have killed it).
    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(|p| p.is_running())
    }

    /// Stops every local host (its bootstrap's process group and JVM).
    pub fn stop_local_hosts(&self) {
        stop_hosts_under(&self.hosts_root());
    }
}

pub fn stop_hosts_under(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else { return };
    for e in entries.flatten() {
        for (file, group) in [("host.pid", true), ("data/kafka.pid", false)] {
            let Ok(text) = std::fs::read_to_string(e.path().join(file)) else { continue };
            let Ok(pid) = text.trim().parse::<i32>() else { continue };
            if pid > 1 && Path::new(&format!("/proc/{pid}")).exists() {
                crate::process::signal_pid(if group { -pid } else { pid }, libc::SIGKILL);
            }
        }
    }
}

impl Drop for FleetManager {
    fn drop(&mut self) {
        self.kill();
        self.stop_local_hosts();
    }
}

/// The bytes an operation's running batch copies (from its recorded plan), from its JSON view.
pub fn running_batch_bytes(op: &serde_json::Value) -> u64 {
    let status = &op["status"];
    let sizes: Vec<u64> = status["moves"]["batches"].as_array().map_or(vec![], |b| b.iter().filter_map(|n| n.as_u64()).collect());
    let n = status["batch"].as_u64().unwrap_or(0) as usize;
    let start: u64 = sizes.iter().take(n).sum();
    let len = sizes.get(n).copied().unwrap_or(0);
    let moves = status["moves"]["moves"].as_array().cloned().unwrap_or_default();
    moves.iter().skip(start as usize).take(len as usize).filter_map(|m| m["bytes"].as_u64()).sum()
}
