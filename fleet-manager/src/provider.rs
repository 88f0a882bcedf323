//! Where broker hosts come from, chosen per cluster: `local` (each host is a `kafka-bootstrap`
//! process on this machine, with its own port and data folder) or `ec2` (`RunInstances` with
//! user-data that runs `kafka-bootstrap`). And the DNS zone the brokers register in (local routes
//! or Route53), whose stale records the reconciler removes.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use async_trait::async_trait;
use base64::Engine;
use fleet_common::local::{self, LocalInstance, LocalInstanceState};

use crate::plan::{DnsRecordSet, HostState, ObservedHost};
use crate::spec::ClusterSpec;
use crate::store::now_ms;

pub const TAG_CLUSTER: &str = "fleet:cluster";
pub const TAG_MANAGED_BY: &str = "fleet:managed-by";

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("{call} failed: {message}")]
    Call { call: &'static str, message: String },
    #[error("provider `{0}` is not configured on this fleet manager (see the `{0}` section of its config)")]
    NotConfigured(&'static str),
}

fn call_err(call: &'static str) -> impl Fn(std::io::Error) -> ProviderError {
    move |e| ProviderError::Call { call, message: e.to_string() }
}

#[async_trait]
pub trait HostProvider: Send + Sync {
    /// Every host the provider knows for the cluster (terminated ones included while it lists them).
    async fn list(&self, cluster: &str) -> Result<Vec<ObservedHost>, ProviderError>;
    /// Launches one host; returns its instance ID.
    async fn launch(&self, cluster: &ClusterSpec, availability_zone: &str, instance_type: &str) -> Result<String, ProviderError>;
    async fn terminate(&self, cluster: &str, instance_id: &str) -> Result<(), ProviderError>;
}

/// What a booting host needs to know to find the fleet (written into its cluster file).
#[derive(Clone, Debug)]
pub struct FleetCoordinates {
    pub zookeeper: String,
    pub fleet_root: String,
    pub fleet_api_url: String,
    /// A read-scoped token the host's bootstrap uses to fetch its persisted properties.
    pub fleet_api_token: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Local hosts

#[derive(Clone, Debug)]
pub struct LocalHostsConfig {
    /// `<root>/hosts/<instance>` (instance.json + data), `<root>/dns`, `<root>/clusters/<c>.yaml`.
    pub root: PathBuf,
    pub bootstrap_bin: PathBuf,
    pub kafka_libs: PathBuf,
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

    fn write_cluster_file(&self, cluster: &str) -> Result<PathBuf, ProviderError> {
        let path = self.cluster_file(cluster);
        let api = match &self.fleet.fleet_api_token {
            Some(t) => format!("{{ url: \"{}\", timeoutMs: 2000, token: \"{t}\" }}", self.fleet.fleet_api_url),
            None => format!("{{ url: \"{}\", timeoutMs: 2000 }}", self.fleet.fleet_api_url),
        };
        let text = format!(
            "# Written by the fleet manager for the cluster's local hosts.\ncluster: {cluster}\nzookeeper: \"{}\"\nfleetRoot: \"{}\"\n\
             provider: {{ kind: local, root: \"{}\" }}\ndns: {{ kind: local, root: \"{}\" }}\nfleetApi: {api}\n",
            self.fleet.zookeeper,
            self.fleet.fleet_root,
            self.hosts_root().display(),
            self.dns_root().display(),
        );
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(call_err("write cluster file"))?;
        }
        local::write_atomically(&path, text.as_bytes()).map_err(call_err("write cluster file"))?;
        Ok(path)
    }

    fn pid_file(&self, instance_id: &str) -> PathBuf {
        local::instance_dir(&self.hosts_root(), instance_id).join("host.pid")
    }
}

#[async_trait]
impl HostProvider for LocalHosts {
    async fn list(&self, cluster: &str) -> Result<Vec<ObservedHost>, ProviderError> {
        Ok(self
            .read_all()?
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
            })
            .collect())
    }

    async fn launch(&self, cluster: &ClusterSpec, availability_zone: &str, _instance_type: &str) -> Result<String, ProviderError> {
        let prefix = format!("{}-", cluster.name);
        let all = self.read_all()?;
        let running = all.iter().filter(|i| i.state == LocalInstanceState::Running).count();
        if running >= self.config.max_hosts {
            return Err(ProviderError::Call {
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
        let instance = LocalInstance {
            instance_id: instance_id.clone(),
            availability_zone: availability_zone.to_string(),
            state: LocalInstanceState::Running,
            private_ip: "127.0.0.1".into(),
            cluster: Some(cluster.name.clone()),
            port: Some(port),
            launched_ms: Some(now_ms()),
        };
        // The record comes first: a crash after it leaves a host the next pass sees (and replaces
        // if its broker never shows), never an invisible process.
        local::write_instance(&self.hosts_root(), &instance).map_err(call_err("write local host"))?;
        let cluster_file = self.write_cluster_file(&cluster.name)?;
        let host_dir = local::instance_dir(&self.hosts_root(), &instance_id);
        let data_dir = host_dir.join("data");
        std::fs::create_dir_all(&data_dir).map_err(call_err("create data dir"))?;
        let log = std::fs::File::create(host_dir.join("host.log")).map_err(call_err("create host log"))?;
        let log2 = log.try_clone().map_err(call_err("create host log"))?;
        let mut cmd = std::process::Command::new(&self.config.bootstrap_bin);
        cmd.arg("run")
            .arg("--cluster-file")
            .arg(&cluster_file)
            .args(["--instance-id", &instance_id, "--port", &port.to_string()])
            .args(["--bind-host", "127.0.0.1", "--advertised-host", "127.0.0.1", "--mode", "child"])
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--kafka-libs")
            .arg(&self.config.kafka_libs)
            .env("KAFKA_HEAP_OPTS", &self.config.heap_opts)
            .env("KAFKA_JVM_OPTS", &self.config.jvm_opts)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        // Its own process group: a host outlives the fleet manager, as a machine would.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().map_err(|e| ProviderError::Call {
            call: "start kafka-bootstrap",
            message: format!("{}: {e}", self.config.bootstrap_bin.display()),
        })?;
        std::fs::write(self.pid_file(&instance_id), child.id().to_string()).map_err(call_err("write host.pid"))?;
        // Reap it when it exits, so no zombie lingers while the fleet manager runs.
        std::thread::spawn(move || {
            let mut child = child;
            let _ = child.wait();
        });
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

// ---------------------------------------------------------------------------------------------
// EC2

#[derive(Clone, Debug)]
pub struct Ec2Config {
    pub region: String,
    pub endpoint_url: Option<String>,
    pub image_id: String,
    pub subnet_ids: std::collections::BTreeMap<String, String>,
    pub security_group_ids: Vec<String>,
    pub iam_instance_profile: Option<String>,
    /// The Route53 zone brokers register in (goes into their cluster file).
    pub dns_zone: Option<String>,
}

pub struct Ec2Hosts {
    client: aws_sdk_ec2::Client,
    config: Ec2Config,
    fleet: FleetCoordinates,
}

impl Ec2Hosts {
    pub async fn new(config: Ec2Config, fleet: FleetCoordinates) -> Self {
        let mut loader =
            aws_config::defaults(aws_config::BehaviorVersion::latest()).region(aws_config::Region::new(config.region.clone()));
        if let Some(url) = &config.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        Self { client: aws_sdk_ec2::Client::new(&loader.load().await), config, fleet }
    }

    /// The user-data a host boots with: its cluster file, then `kafka-bootstrap run` as a service.
    pub fn user_data(&self, cluster: &str) -> String {
        let dns = match &self.config.dns_zone {
            Some(zone) => format!("{{ kind: route53, zone: \"{zone}\" }}"),
            None => "{ kind: none }".into(),
        };
        let token = self.fleet.fleet_api_token.as_deref().map(|t| format!(", token: \"{t}\"")).unwrap_or_default();
        format!(
            "#!/bin/bash\nset -euo pipefail\nmkdir -p /etc/kafka-fleet\ncat > /etc/kafka-fleet/cluster.yaml <<'EOF'\n\
             cluster: {cluster}\nzookeeper: \"{zk}\"\nfleetRoot: \"{root}\"\nprovider: {{ kind: ec2, region: {region} }}\n\
             dns: {dns}\nfleetApi: {{ url: \"{api}\", timeoutMs: 2000{token} }}\nEOF\n\
             INSTANCE_ID=$(curl -sf http://169.254.169.254/latest/meta-data/instance-id)\n\
             exec /opt/kafka-fleet/bin/kafka-bootstrap run --cluster-file /etc/kafka-fleet/cluster.yaml --instance-id \"$INSTANCE_ID\" \\\n  \
             --data-dir /var/lib/kafka --kafka-libs /opt/kafka/libs --mode exec\n",
            zk = self.fleet.zookeeper,
            root = self.fleet.fleet_root,
            region = self.config.region,
            api = self.fleet.fleet_api_url,
        )
    }
}

fn ec2_err<E>(call: &'static str) -> impl Fn(aws_sdk_ec2::error::SdkError<E>) -> ProviderError
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |e| ProviderError::Call { call, message: aws_sdk_ec2::error::DisplayErrorContext(e).to_string() }
}

#[async_trait]
impl HostProvider for Ec2Hosts {
    async fn list(&self, cluster: &str) -> Result<Vec<ObservedHost>, ProviderError> {
        use aws_sdk_ec2::types::{Filter, InstanceStateName as S};
        let filter = Filter::builder().name(format!("tag:{TAG_CLUSTER}")).values(cluster).build();
        let mut pages = self.client.describe_instances().filters(filter).into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(ec2_err("ec2:DescribeInstances"))?;
            for r in page.reservations() {
                for i in r.instances() {
                    let state = match i.state().and_then(|s| s.name()) {
                        Some(S::Pending) => HostState::Pending,
                        Some(S::Running) => HostState::Running,
                        Some(S::Stopping) => HostState::Stopping,
                        Some(S::Stopped) => HostState::Stopped,
                        Some(S::ShuttingDown) => HostState::Terminating,
                        _ => HostState::Terminated,
                    };
                    out.push(ObservedHost {
                        instance_id: i.instance_id().unwrap_or_default().to_string(),
                        availability_zone: i.placement().and_then(|p| p.availability_zone()).unwrap_or_default().to_string(),
                        state,
                        launched_ms: i.launch_time().map(|t| t.to_millis().unwrap_or(0)).unwrap_or(0),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
        Ok(out)
    }

    async fn launch(&self, cluster: &ClusterSpec, availability_zone: &str, instance_type: &str) -> Result<String, ProviderError> {
        use aws_sdk_ec2::types::{InstanceType, Placement, ResourceType, Tag, TagSpecification};
        let tags = TagSpecification::builder()
            .resource_type(ResourceType::Instance)
            .tags(Tag::builder().key(TAG_CLUSTER).value(&cluster.name).build())
            .tags(Tag::builder().key(TAG_MANAGED_BY).value("kafka-fleet").build())
            .tags(Tag::builder().key("Name").value(format!("{}-broker", cluster.name)).build())
            .build();
        let mut request = self
            .client
            .run_instances()
            .image_id(&self.config.image_id)
            .instance_type(InstanceType::from(instance_type))
            .min_count(1)
            .max_count(1)
            .placement(Placement::builder().availability_zone(availability_zone).build())
            .user_data(base64::engine::general_purpose::STANDARD.encode(self.user_data(&cluster.name)))
            .tag_specifications(tags)
            // Idempotent on retry of this very call.
            .client_token(uuid::Uuid::new_v4().to_string());
        if let Some(subnet) = self.config.subnet_ids.get(availability_zone) {
            request = request.subnet_id(subnet);
        }
        for sg in &self.config.security_group_ids {
            request = request.security_group_ids(sg);
        }
        if let Some(profile) = &self.config.iam_instance_profile {
            request = request.iam_instance_profile(aws_sdk_ec2::types::IamInstanceProfileSpecification::builder().name(profile).build());
        }
        let out = request.send().await.map_err(ec2_err("ec2:RunInstances"))?;
        out.instances()
            .first()
            .and_then(|i| i.instance_id())
            .map(str::to_string)
            .ok_or(ProviderError::Call { call: "ec2:RunInstances", message: "no instance in the answer".into() })
    }

    async fn terminate(&self, _cluster: &str, instance_id: &str) -> Result<(), ProviderError> {
        self.client
            .terminate_instances()
            .instance_ids(instance_id)
            .send()
            .await
            .map_err(ec2_err("ec2:TerminateInstances"))?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// DNS

#[async_trait]
pub trait DnsZone: Send + Sync {
    /// The cluster's per-broker record sets.
    async fn list(&self, cluster: &str) -> Result<Vec<DnsRecordSet>, ProviderError>;
    async fn delete(&self, record: &DnsRecordSet) -> Result<(), ProviderError>;
}

pub struct NoDns;

#[async_trait]
impl DnsZone for NoDns {
    async fn list(&self, _cluster: &str) -> Result<Vec<DnsRecordSet>, ProviderError> {
        Ok(Vec::new())
    }
    async fn delete(&self, _record: &DnsRecordSet) -> Result<(), ProviderError> {
        Ok(())
    }
}

/// Local routes: `<root>/<name>/<set>.json` (see `fleet_common::local`).
pub struct LocalDns {
    pub root: PathBuf,
}

#[async_trait]
impl DnsZone for LocalDns {
    async fn list(&self, cluster: &str) -> Result<Vec<DnsRecordSet>, ProviderError> {
        let suffix = format!(".{cluster}.local");
        let bootstrap = format!("{cluster}.local");
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(call_err("list local routes")(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let name = entry.map_err(call_err("list local routes"))?.file_name().to_string_lossy().into_owned();
            if name == bootstrap || (name.starts_with("broker-") && name.ends_with(&suffix)) {
                for set in local::read_record(&self.root, &name).map_err(call_err("read local route"))? {
                    out.push(DnsRecordSet { name: set.name, set_identifier: set.set_identifier });
                }
            }
        }
        out.sort_by(|a, b| (&a.name, &a.set_identifier).cmp(&(&b.name, &b.set_identifier)));
        Ok(out)
    }

    async fn delete(&self, record: &DnsRecordSet) -> Result<(), ProviderError> {
        let path = local::record_dir(&self.root, &record.name).join(format!("{}.json", record.set_identifier));
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(call_err("delete local route")(e)),
        }
    }
}

pub struct Route53Dns {
    client: aws_sdk_route53::Client,
    zone: String,
}

impl Route53Dns {
    pub async fn new(zone: &str, endpoint_url: Option<&str>) -> Self {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).region(aws_config::Region::new("us-east-1"));
        if let Some(url) = endpoint_url {
            loader = loader.endpoint_url(url);
        }
        Self { client: aws_sdk_route53::Client::new(&loader.load().await), zone: zone.to_string() }
    }

    async fn zone_id(&self) -> Result<String, ProviderError> {
        kafka_bootstrap::dns::route53_zone_id(&self.client, &self.zone)
            .await
            .map_err(|e| ProviderError::Call { call: "route53 zone", message: e.to_string() })
    }

    async fn sets(&self, cluster: &str) -> Result<(String, Vec<aws_sdk_route53::types::ResourceRecordSet>), ProviderError> {
        let zone_id = self.zone_id().await?;
        let bootstrap = format!("{cluster}.{}.", self.zone);
        let suffix = format!(".{cluster}.{}.", self.zone);
        let mut out = Vec::new();
        let mut start: Option<(String, aws_sdk_route53::types::RrType, Option<String>)> = None;
        loop {
            let mut req = self.client.list_resource_record_sets().hosted_zone_id(&zone_id);
            if let Some((name, ty, id)) = start.take() {
                req = req.start_record_name(name).start_record_type(ty).set_start_record_identifier(id);
            }
            let page = req.send().await.map_err(|e| ProviderError::Call {
                call: "route53:ListResourceRecordSets",
                message: aws_sdk_route53::error::DisplayErrorContext(e).to_string(),
            })?;
            for set in page.resource_record_sets() {
                let name = set.name();
                if name == bootstrap || (name.starts_with("broker-") && name.ends_with(&suffix)) {
                    out.push(set.clone());
                }
            }
            match (page.is_truncated(), page.next_record_name(), page.next_record_type()) {
                (true, Some(n), Some(t)) => start = Some((n.to_string(), t.clone(), page.next_record_identifier().map(str::to_string))),
                _ => break,
            }
        }
        Ok((zone_id, out))
    }
}

#[async_trait]
impl DnsZone for Route53Dns {
    async fn list(&self, cluster: &str) -> Result<Vec<DnsRecordSet>, ProviderError> {
        let (_, sets) = self.sets(cluster).await?;
        Ok(sets
            .iter()
            .filter_map(|s| {
                Some(DnsRecordSet { name: s.name().trim_end_matches('.').to_string(), set_identifier: s.set_identifier()?.to_string() })
            })
            .collect())
    }

    async fn delete(&self, record: &DnsRecordSet) -> Result<(), ProviderError> {
        use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch};
        let cluster = record
            .name
            .strip_suffix(&format!(".{}", self.zone))
            .map(|n| n.rsplit('.').next().unwrap_or(n).to_string())
            .unwrap_or_default();
        let (zone_id, sets) = self.sets(&cluster).await?;
        let wanted = format!("{}.", record.name);
        let Some(set) = sets.into_iter().find(|s| s.name() == wanted && s.set_identifier() == Some(&record.set_identifier)) else {
            return Ok(());
        };
        let invalid = |e: aws_sdk_route53::error::BuildError| ProviderError::Call { call: "route53:ChangeResourceRecordSets", message: e.to_string() };
        let change = Change::builder().action(ChangeAction::Delete).resource_record_set(set).build().map_err(invalid)?;
        let batch = ChangeBatch::builder().changes(change).build().map_err(invalid)?;
        self.client
            .change_resource_record_sets()
            .hosted_zone_id(zone_id)
            .change_batch(batch)
            .send()
            .await
            .map_err(|e| ProviderError::Call {
                call: "route53:ChangeResourceRecordSets",
                message: aws_sdk_route53::error::DisplayErrorContext(e).to_string(),
            })?;
        Ok(())
    }
}
