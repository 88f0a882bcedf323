//! Local hosts: each broker host is a `kafka-bootstrap` process on this machine, in its own
//! process group, with its own port and data folder.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use async_trait::async_trait;
use fleet_common::cluster_file::{RawClusterFile, RawDns, RawFleetApi, RawProvider};
use fleet_common::local::{self, LocalInstance, LocalInstanceState};

use super::{call_err, FleetCoordinates, HostProvider, LaunchRequest, ProviderError};
use crate::plan::{HostRole, HostState, ObservedHost};
use crate::store::now_ms;


#[derive(Clone, Debug)]
pub struct LocalHostsConfig {
    /// `<root>/hosts/<instance>` (instance.json + data), `<root>/dns`, `<root>/clusters/<c>.yaml`.
    pub root: PathBuf,
    pub bootstrap_bin: PathBuf,
    /// Kafka 3.9's jars (ZooKeeper-mode clusters).
    pub kafka_libs: PathBuf,
    /// Kafka 4.x's jars (KRaft clusters); without them a 4.x cluster's launches fail, saying so.
    pub kafka4_libs: Option<PathBuf>,
    pub heap_opts: String,
    pub jvm_opts: String,
    /// Running local hosts allowed at once (each is a JVM): a declared fleet larger than this
    /// machine fails its launches with a clear error instead of exhausting it.
    pub max_hosts: usize,
}

pub struct LocalHosts {
    pub config: LocalHostsConfig,
    pub fleet: FleetCoordinates,
}

impl LocalHosts {
    pub fn hosts_root(&self) -> PathBuf {
        self.config.root.join("hosts")
    }
    pub fn dns_root(&self) -> PathBuf {
        self.config.root.join("dns")
    }

    fn read_all(&self) -> Result<Vec<LocalInstance>, ProviderError> {
        self.read_matching("")
    }

    /// Instances whose ID starts with `prefix` (hosts this provider launched are named
    /// `<cluster>-NNNN`, so a cluster's listing skips every other cluster's files).
    fn read_matching(&self, prefix: &str) -> Result<Vec<LocalInstance>, ProviderError> {
        let root = self.hosts_root();
        let entries = match std::fs::read_dir(&root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(call_err("list local hosts")(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(call_err("list local hosts"))?;
            let id = entry.file_name().to_string_lossy().into_owned();
            if !id.starts_with(prefix) {
                continue;
            }
            if let Some(instance) = local::read_instance(&root, &id).map_err(call_err("read local host"))? {
                out.push(instance);
            }
        }
        out.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
        Ok(out)
    }

    fn cluster_file(&self, cluster: &str) -> PathBuf {
        self.config.root.join("clusters").join(format!("{cluster}.yaml"))
    }

    fn write_cluster_file(&self, spec: &crate::spec::ClusterSpec, uid: &str) -> Result<PathBuf, ProviderError> {
        let cluster = spec.name.as_str();
        let path = self.cluster_file(cluster);
        let kraft = if spec.is_kraft() {
            let cluster_id = fleet_api::spec::kafka_cluster_id(uid).ok_or_else(|| ProviderError::Call {
                call: "write cluster file",
                message: format!("cluster {cluster}'s UID `{uid}` is not a UUID: no Kafka cluster ID can be made of it"),
                class: super::ErrorClass::Terminal,
            })?;
            Some(fleet_common::cluster_file::RawKraft { cluster_id, controllers: i64::from(spec.quorum_size()) })
        } else {
            None
        };
        let file = RawClusterFile {
            cluster: cluster.to_string(),
            zookeeper: self.fleet.zookeeper.clone(),
            fleet_root: Some(self.fleet.fleet_root.clone()),
            broker_id_base: None,
            provider: RawProvider::Local { root: self.hosts_root() },
            dns: Some(RawDns::Local { root: self.dns_root() }),
            fleet_api: Some(RawFleetApi { url: self.fleet.fleet_api_url.clone(), timeout_ms: Some(2000), token: self.fleet.host_token(cluster, uid), token_secret: None, properties: None, wait_ms: None, ca_file: self.fleet.fleet_api_ca_file.clone() }),
            zookeeper_identity_file: self.fleet.zk_identity_file.clone(),
            zookeeper_identity_secret: None,
            insecure_zookeeper: self.fleet.zk_identity_file.is_none() && self.fleet.insecure_zookeeper,
            properties: Default::default(),
            kraft,
        };
        let text = file.to_yaml().map_err(|message| ProviderError::Call { call: "write cluster file", message, class: super::ErrorClass::Terminal })?;
        let text = format!("# Written by the fleet manager for the cluster's local hosts.\n{text}");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(call_err("write cluster file"))?;
        }
        // It holds the cluster's host token: owner-only, as the issue of a credential should be.
        local::write_private_atomically(&path, text.as_bytes()).map_err(call_err("write cluster file"))?;
        Ok(path)
    }

    fn pid_file(&self, instance_id: &str) -> PathBuf {
        local::instance_dir(&self.hosts_root(), instance_id).join("host.pid")
    }

    /// Starts the host's `kafka-bootstrap` (and so its broker), logging to `host.log` (appended
    /// to on a restart, truncated on a launch).
    fn spawn(&self, cluster: &str, instance: &LocalInstance, fresh: bool) -> Result<(), ProviderError> {
        let instance_id = &instance.instance_id;
        let port = instance.port.ok_or_else(|| ProviderError::Call {
            call: "start kafka-bootstrap",
            message: format!("local host {instance_id} has no port recorded"),
            class: super::ErrorClass::Terminal,
        })?;
        let cluster_file = self.cluster_file(cluster);
        let host_dir = local::instance_dir(&self.hosts_root(), instance_id);
        let data_dir = host_dir.join("data");
        std::fs::create_dir_all(&data_dir).map_err(call_err("create data dir"))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(!fresh)
            .truncate(fresh)
            .open(host_dir.join("host.log"))
            .map_err(call_err("create host log"))?;
        let log2 = log.try_clone().map_err(call_err("create host log"))?;
        let role = instance.role.as_deref().unwrap_or("broker");
        let libs = match instance.kraft {
            false => &self.config.kafka_libs,
            true => self.config.kafka4_libs.as_ref().ok_or_else(|| ProviderError::Call {
                call: "start kafka-bootstrap",
                message: "a Kafka 4.x (KRaft) host needs Kafka 4.x's jars: start the fleet manager with --kafka4-libs DIR (make jars fills dev/.cache/lib-4.4)".into(),
                class: super::ErrorClass::Terminal,
            })?,
        };
        let mut cmd = std::process::Command::new(&self.config.bootstrap_bin);
        cmd.arg("run")
            .arg("--cluster-file")
            .arg(&cluster_file)
            .args(["--instance-id", instance_id, "--port", &port.to_string()])
            .args(["--bind-host", "127.0.0.1", "--advertised-host", "127.0.0.1", "--mode", "child"])
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--kafka-libs")
            .arg(libs)
            .args(["--role", role])
            .env("KAFKA_HEAP_OPTS", &self.config.heap_opts)
            .env("KAFKA_JVM_OPTS", &self.config.jvm_opts)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        if let Some(port) = instance.controller_port {
            cmd.args(["--controller-port", &port.to_string()]);
        }
        // Its own process group: a host outlives the fleet manager, as a machine would.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().map_err(|e| ProviderError::Call {
            class: super::ErrorClass::Terminal,
            call: "start kafka-bootstrap",
            message: format!("{}: {e}", self.config.bootstrap_bin.display()),
        })?;
        std::fs::write(self.pid_file(instance_id), child.id().to_string()).map_err(call_err("write host.pid"))?;
        // Reap it when it exits, so no zombie lingers while the fleet manager runs.
        std::thread::spawn(move || {
            let mut child = child;
            let _ = child.wait();
        });
        Ok(())
    }
}

#[async_trait]
impl HostProvider for LocalHosts {
    async fn list(&self, cluster: &str) -> Result<Vec<ObservedHost>, ProviderError> {
        Ok(self
            .read_matching(&format!("{cluster}-"))?
            .into_iter()
            .filter(|i| i.cluster.as_deref() == Some(cluster))
            .map(|i| ObservedHost {
                state: match i.state {
                    LocalInstanceState::Running => HostState::Running,
                    LocalInstanceState::Terminated => HostState::Terminated,
                },
                instance_id: i.instance_id,
                availability_zone: i.availability_zone,
                launched_ms: i.launched_ms.unwrap_or(0),
                launch_token: i.launch_token,
                private_ip: Some(i.private_ip),
                port: i.port,
                role: i.role.as_deref().and_then(HostRole::parse).unwrap_or_default(),
            })
            .collect())
    }

    async fn launch(&self, request: LaunchRequest<'_>) -> Result<String, ProviderError> {
        let LaunchRequest { cluster, cluster_uid, availability_zone, token, role, .. } = request;
        if cluster.is_kraft() && self.config.kafka4_libs.is_none() {
            return Err(ProviderError::Call {
                class: super::ErrorClass::Terminal,
                call: "launch local host",
                message: format!(
                    "cluster {} runs Kafka {} (KRaft): start the fleet manager with --kafka4-libs DIR (make jars fills dev/.cache/lib-4.4)",
                    cluster.name, cluster.kafka_version
                ),
            });
        }
        let prefix = format!("{}-", cluster.name);
        let all = self.read_all()?;
        // A retried launch: the host made for this token is the answer.
        if let Some(existing) = all.iter().find(|i| i.launch_token.as_deref() == Some(token)) {
            return Ok(existing.instance_id.clone());
        }
        let running = all.iter().filter(|i| i.state == LocalInstanceState::Running).count();
        if running >= self.config.max_hosts {
            // Retrying cannot mend it: a person raises the limit or frees hosts (a failover's
            // build fails at once on it rather than waiting for its deadline).
            return Err(ProviderError::Call {
                class: super::ErrorClass::Terminal,
                call: "launch local host",
                message: format!(
                    "{running} local hosts are running, the limit (--local-max-hosts) is {}: raise it if this machine can take more JVMs",
                    self.config.max_hosts
                ),
            });
        }
        let next = all
            .iter()
            .filter_map(|i| i.instance_id.strip_prefix(&prefix).and_then(|n| n.parse::<u32>().ok()))
            .max()
            .unwrap_or(0)
            + 1;
        let instance_id = format!("{}{next:04}", prefix);
        let port = free_port().map_err(call_err("pick a broker port"))?;
        let controller_port = match role {
            HostRole::Combined => Some(free_port().map_err(call_err("pick a controller port"))?),
            _ => None,
        };
        let instance = LocalInstance {
            instance_id: instance_id.clone(),
            availability_zone: availability_zone.to_string(),
            state: LocalInstanceState::Running,
            private_ip: "127.0.0.1".into(),
            cluster: Some(cluster.name.clone()),
            port: Some(port),
            launched_ms: Some(now_ms()),
            launch_token: Some(token.to_string()),
            role: (!role.is_broker()).then(|| role.as_str().to_string()),
            controller_port,
            kraft: cluster.is_kraft(),
        };
        // The record comes first: a crash after it leaves a host the next pass sees (and replaces
        // if its broker never shows), never an invisible process.
        local::write_instance(&self.hosts_root(), &instance).map_err(call_err("write local host"))?;
        self.write_cluster_file(cluster, cluster_uid)?;
        self.spawn(&cluster.name, &instance, true)?;
        Ok(instance_id)
    }

    async fn terminate(&self, _cluster: &str, instance_id: &str) -> Result<(), ProviderError> {
        let root = self.hosts_root();
        let Some(mut instance) = local::read_instance(&root, instance_id).map_err(call_err("read local host"))? else {
            return Ok(());
        };
        stop_local_host(&local::instance_dir(&root, instance_id));
        instance.state = LocalInstanceState::Terminated;
        local::write_instance(&root, &instance).map_err(call_err("write local host"))?;
        Ok(())
    }

    async fn restart(&self, cluster: &str, instance_id: &str) -> Result<(), ProviderError> {
        let root = self.hosts_root();
        let instance = match local::read_instance(&root, instance_id).map_err(call_err("read local host"))? {
            Some(i) if i.state == LocalInstanceState::Running => i,
            _ => {
                return Err(ProviderError::Call {
                    call: "restart local host",
                    message: format!("host {instance_id} is not running (terminated or unknown; its replacement boots with the new properties)"),
                    class: super::ErrorClass::Retryable,
                })
            }
        };
        let host_dir = local::instance_dir(&root, instance_id);
        stop_local_host(&host_dir);
        // Kafka's controlled shutdown moves leadership away first; bootstrap kills it after its
        // own grace (30 s). Waited for here so the new broker never starts beside the old one.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(45);
        while running_pids(&host_dir).next().is_some() {
            if std::time::Instant::now() > deadline {
                return Err(ProviderError::Call {
                    call: "restart local host",
                    message: format!("host {instance_id} did not stop within 45 s of SIGTERM"),
                    class: super::ErrorClass::Retryable,
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        self.spawn(cluster, &instance, false)
    }
}

/// The host's bootstrap and Kafka processes still alive (a zombie counts as gone).
fn running_pids(host_dir: &Path) -> impl Iterator<Item = i32> + '_ {
    ["host.pid", "data/kafka.pid"].into_iter().filter_map(move |file| {
        let pid = std::fs::read_to_string(host_dir.join(file)).ok()?.trim().parse::<i32>().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The state follows the command's closing parenthesis: `Z` is a zombie, `X` dead.
        let state = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
        (pid > 1 && state != 'Z' && state != 'X').then_some(pid)
    })
}

/// Signals a local host's process group (bootstrap and its JVM) to stop.
pub fn stop_local_host(host_dir: &Path) {
    for (file, group) in [("host.pid", true), ("data/kafka.pid", false)] {
        let Ok(text) = std::fs::read_to_string(host_dir.join(file)) else { continue };
        let Ok(pid) = text.trim().parse::<i32>() else { continue };
        if pid <= 1 || !Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        signal(if group { -pid } else { pid }, libc::SIGTERM);
    }
}

#[allow(unsafe_code)]
fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) has no memory effects; a stale PID is checked above and harmless here.
    unsafe {
        libc::kill(pid, sig);
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

