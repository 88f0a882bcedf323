//! `kafka-bootstrap`: what a broker host runs before Kafka.
//!
//! 1. Read and validate the cluster file and the `KAFKA_CFG_*` environment (before any write).
//! 2. Ask the provider who this host is (availability zone, address).
//! 3. Take a broker ID under a ZooKeeper lock ([`broker_id`]).
//! 4. Layer the properties ([`properties`]), fetching the persisted ones from the fleet manager.
//! 5. Register the broker's DNS records ([`dns`]).
//! 6. KRaft (Kafka 4.x): form or find the controller quorum ([`quorum`]) and format the log
//!    directory once ([`kraft`]).
//! 7. Start Kafka ([`launch`]).

pub mod broker_id;
pub mod cluster_file;
pub mod dns;
pub mod kraft;
pub mod launch;
pub mod persisted;
pub mod properties;
pub mod provider;
pub mod quorum;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fleet_common::{FleetPaths, ZkConnector};

use crate::cluster_file::ClusterFile;
use crate::properties::{LayeredProperties, Source};
use crate::provider::{InfraProvider, InstanceInfo};

/// Everything a boot needs besides the cluster file.
#[derive(Clone, Debug)]
pub struct BootOptions {
    pub instance_id: String,
    pub data_dir: PathBuf,
    pub port: u16,
    pub bind_host: String,
    /// Defaults to the provider's private address of the host.
    pub advertised_host: Option<String>,
    pub zk_timeout: Duration,
    pub lock_timeout: Duration,
    /// Read and decide, but write nothing (no ID, no DNS, no files).
    pub dry_run: bool,
    /// What this host runs: a broker (the only role in ZooKeeper mode), a KRaft controller, or
    /// both in one process.
    pub role: NodeRole,
    /// A combined node's controller listener (a controller's is `port`).
    pub controller_port: Option<u16>,
    /// Kafka's storage tool, from the node's own jars (KRaft).
    pub storage: Option<kraft::StorageTool>,
    /// How long a KRaft node waits for the cluster's first controllers to form the quorum.
    pub quorum_timeout: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeRole {
    Broker,
    Controller,
    Combined,
}

impl NodeRole {
    pub fn process_roles(self) -> &'static str {
        match self {
            NodeRole::Broker => "broker",
            NodeRole::Controller => "controller",
            NodeRole::Combined => "broker,controller",
        }
    }
    pub fn is_controller(self) -> bool {
        self != NodeRole::Broker
    }
    /// As `--role` and the registry's leases name it.
    pub fn name(self) -> &'static str {
        match self {
            NodeRole::Broker => "broker",
            NodeRole::Controller => "controller",
            NodeRole::Combined => "combined",
        }
    }
    pub fn is_broker(self) -> bool {
        self != NodeRole::Controller
    }
}

/// What a boot did, for logs and `--output json`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BootReport {
    pub cluster: String,
    pub instance_id: String,
    pub availability_zone: String,
    /// The node's ID (a broker's `broker.id`; a KRaft node's `node.id`).
    pub broker_id: i32,
    pub role: NodeRole,
    pub how: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_instance_id: Option<String>,
    pub advertised_listener: String,
    pub persisted_properties: bool,
    pub dns_names: Vec<String>,
    pub properties_file: Option<PathBuf>,
    /// KRaft: the cluster ID and this node's directory ID, as its log directory holds them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kraft: Option<KraftReport>,
    pub dry_run: bool,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct KraftReport {
    pub cluster_id: String,
    pub directory_id: Option<String>,
    /// `kept` (formatted before), `initial` (one of the quorum's first voters), `joined`.
    pub storage: &'static str,
    pub quorum_bootstrap_servers: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error(transparent)]
    ClusterFile(#[from] cluster_file::ClusterFileError),
    #[error(transparent)]
    Property(#[from] properties::PropertyError),
    #[error(transparent)]
    Provider(#[from] provider::ProviderError),
    #[error(transparent)]
    Zk(#[from] fleet_common::ZkConnectError),
    #[error(transparent)]
    Assign(#[from] broker_id::AssignError),
    #[error(transparent)]
    Persisted(#[from] persisted::PersistedError),
    #[error("fleet manager's persisted property {0}")]
    PersistedProperty(properties::PropertyError),
    #[error(transparent)]
    Dns(#[from] dns::DnsError),
    #[error(transparent)]
    Kraft(#[from] kraft::KraftError),
    #[error(transparent)]
    Quorum(#[from] quorum::QuorumError),
    #[error("--role {0:?}: this cluster runs Kafka 3.9 in ZooKeeper mode, where every host is a broker (a controller role needs a KRaft cluster: `kraft` in the cluster file)")]
    RoleWithoutKraft(NodeRole),
    #[error("--role combined needs --controller-port (the controller's listener; --port is the broker's)")]
    NoControllerPort,
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Layers 1-3, validated before anything is written anywhere.
pub fn early_properties(
    file: &ClusterFile,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<LayeredProperties, BootError> {
    let mut props = LayeredProperties::with_defaults();
    props.apply(file.properties.iter().map(|(k, v)| (k.as_str(), v.as_str(), Source::ClusterFile)))?;
    props.apply_env(env)?;
    Ok(props)
}

/// Steps 2-5. Returns the report and, unless dry-running, the properties written to disk.
#[tracing::instrument(skip_all, fields(cluster = %file.cluster, instance = %opts.instance_id, broker))]
pub async fn prepare(
    file: &ClusterFile,
    mut props: LayeredProperties,
    opts: &BootOptions,
    provider: &dyn InfraProvider,
    registry: &dyn dns::ServiceRegistry,
) -> Result<(BootReport, LayeredProperties), BootError> {
    let me: InstanceInfo = provider.whoami(&opts.instance_id).await?;
    let log_dir = opts.data_dir.join("kafka-logs");
    if let Some(k) = &file.kraft {
        // Another cluster's storage is refused before an ID is taken in this one's registry.
        if let Some(meta) = kraft::read_meta(&log_dir)?.filter(|m| m.cluster_id != k.cluster_id) {
            return Err(kraft::KraftError::OtherCluster { dir: log_dir, found: meta.cluster_id, expected: k.cluster_id.clone() }.into());
        }
    }
    let paths = FleetPaths::new(&file.fleet_root).cluster(&file.cluster);
    let connector = ZkConnector::default().with_deadline(opts.zk_timeout).with_identity(file.zk_identity.clone());
    let zk = connector.connect(&file.zookeeper).await?;

    let kafka_live = match &file.kraft {
        Some(_) => kraft_live_node_ids(&zk, &paths, &file.cluster, registry).await?,
        None => Some(BTreeSet::new()),
    };
    let assignment = if opts.dry_run {
        broker_id::plan(&zk, &paths, &opts.instance_id, provider, file.broker_id_base, opts.role.name(), kafka_live.as_ref()).await?.assignment()
    } else {
        broker_id::assign(&zk, &paths, &opts.instance_id, provider, file.broker_id_base, opts.lock_timeout, connector.fleet_acl(), opts.role.name(), kafka_live.as_ref()).await?
    };
    let broker_id = assignment.broker_id;
    tracing::Span::current().record("broker", broker_id);

    let persisted = match &file.fleet_api {
        Some(api) => persisted::fetch(api, &file.cluster, broker_id).await?,
        None => None,
    };
    if let Some(p) = &persisted {
        props
            .apply(p.iter().map(|(k, v)| (k.as_str(), v.as_str(), Source::Persisted)))
            .map_err(BootError::PersistedProperty)?;
    }

    let advertised_host = opts.advertised_host.clone().unwrap_or_else(|| me.private_ip.clone());
    let mut advertised_listener = format!("PLAINTEXT://{}:{}", host_for_url(&advertised_host), opts.port);
    // KRaft: the quorum (formed or found) and how this node's storage joins it.
    let mut kraft_plan = None;
    let mut kraft_formation = None;
    match &file.kraft {
        None => {
            if opts.role != NodeRole::Broker {
                return Err(BootError::RoleWithoutKraft(opts.role));
            }
            props.set_derived("broker.id", broker_id.to_string());
            props.set_derived("listeners", format!("PLAINTEXT://{}:{}", host_for_url(&opts.bind_host), opts.port));
            props.set_derived("advertised.listeners", advertised_listener.clone());
            props.set_derived("zookeeper.connect", format!("{}{}", file.zookeeper.hosts_string(), paths.kafka_chroot()));
        }
        Some(k) => {
            // A directory formatted for another node is refused before the quorum is touched.
            let storage = kraft::check(&log_dir, &k.cluster_id, broker_id)?;
            let controller_port = match opts.role {
                NodeRole::Broker => None,
                NodeRole::Controller => Some(opts.port),
                NodeRole::Combined => Some(opts.controller_port.ok_or(BootError::NoControllerPort)?),
            };
            let (formation, how) = if opts.dry_run {
                (None, "dry run: quorum not asked")
            } else if let Some(port) = controller_port {
                let directory_id = match (&storage, &opts.storage) {
                    (kraft::Storage::Formatted(meta), _) if meta.directory_id.is_some() => meta.directory_id.clone().unwrap_or_default(),
                    (_, Some(tool)) => off_runtime(tool.clone(), |t| t.random_uuid()).await?,
                    (_, None) => String::new(),
                };
                let me = quorum::Voter { node_id: broker_id, host: advertised_host.clone(), port, directory_id, cluster_id: k.cluster_id.clone() };
                let f = quorum::form(&zk, &paths, &file.cluster, k, &me, connector.fleet_acl(), opts.quorum_timeout).await?;
                let how = if f.voter(broker_id).is_some() { "initial" } else { "joined" };
                (Some(f), how)
            } else {
                let f = quorum::wait_formation(&zk, &paths, &file.cluster, &k.cluster_id, opts.quorum_timeout).await?;
                (Some(f), "joined")
            };
            let how = if matches!(storage, kraft::Storage::Formatted(_)) { "kept" } else { how };
            // ZooKeeper's settings mean nothing to a KRaft node.
            props.remove_where(|k| k.starts_with("zookeeper.") || k == "controlled.shutdown.max.retries");
            props.set_derived("node.id", broker_id.to_string());
            props.set_derived("process.roles", opts.role.process_roles());
            props.set_derived("controller.listener.names", "CONTROLLER");
            let bind = host_for_url(&opts.bind_host);
            let adv = host_for_url(&advertised_host);
            let (mut listeners, mut advertised) = (Vec::new(), Vec::new());
            if opts.role.is_broker() {
                listeners.push(format!("PLAINTEXT://{bind}:{}", opts.port));
                advertised.push(format!("PLAINTEXT://{adv}:{}", opts.port));
                props.set_derived("inter.broker.listener.name", "PLAINTEXT");
            }
            if let Some(port) = controller_port {
                listeners.push(format!("CONTROLLER://{bind}:{port}"));
                advertised.push(format!("CONTROLLER://{adv}:{port}"));
            }
            advertised_listener = advertised.join(",");
            props.set_derived("listeners", listeners.join(","));
            props.set_derived("advertised.listeners", advertised_listener.clone());
            // The operator's map (e.g. SSL listeners) with the two listeners this node needs.
            let mut map: Vec<String> = props.get("listener.security.protocol.map").map(|m| m.split(',').map(|e| e.trim().to_string()).filter(|e| !e.is_empty()).collect()).unwrap_or_default();
            for (name, entry) in [("CONTROLLER:", "CONTROLLER:PLAINTEXT"), ("PLAINTEXT:", "PLAINTEXT:PLAINTEXT")] {
                if !map.iter().any(|e| e.starts_with(name)) {
                    map.push(entry.to_string());
                }
            }
            props.set_derived("listener.security.protocol.map", map.join(","));
            // The formation's addresses until the registry's names are known (after this
            // node has registered its own, below).
            let servers = formation.as_ref().map(quorum::Formation::bootstrap_servers).unwrap_or_default();
            props.set_derived("controller.quorum.bootstrap.servers", servers.clone());
            // A listed voter formats with the first list only if it never formatted before: one
            // that lost its disk (or a host that took over its ID) must not come back under the
            // old directory ID with an empty log; it joins with a new one instead.
            let formatted_before = match (&storage, &formation) {
                (kraft::Storage::Unformatted, Some(f)) if f.voter(broker_id).is_some() => quorum::formatted_before(&zk, &paths, broker_id).await?,
                _ => None,
            };
            if let Some(previous) = &formatted_before {
                tracing::warn!(node = broker_id, previous_directory = %previous, "this node formatted its storage before and it is gone: it joins the quorum with a new directory (an observer until promoted)");
            }
            let kind = match &formation {
                Some(f) if f.voter(broker_id).is_some() && formatted_before.is_none() => kraft::Formation::InitialControllers(f.initial_controllers()),
                _ => kraft::Formation::Join,
            };
            let how = if formatted_before.is_some() { "joined" } else { how };
            kraft_plan = Some((k.cluster_id.clone(), kind, KraftReport { cluster_id: k.cluster_id.clone(), directory_id: None, storage: how, quorum_bootstrap_servers: servers }));
            kraft_formation = formation.map(|f| (f, controller_port));
        }
    }
    if !me.availability_zone.is_empty() && opts.role.is_broker() {
        props.set_derived("broker.rack", me.availability_zone.clone());
    }
    props.set_derived("log.dirs", log_dir.display().to_string());

    let mut report = BootReport {
        cluster: file.cluster.clone(),
        instance_id: opts.instance_id.clone(),
        availability_zone: me.availability_zone.clone(),
        broker_id,
        role: opts.role,
        how: assignment.how,
        previous_instance_id: assignment.previous_instance_id,
        advertised_listener,
        persisted_properties: persisted.is_some(),
        dns_names: Vec::new(),
        properties_file: None,
        kraft: kraft_plan.as_ref().map(|(_, _, r)| r.clone()),
        dry_run: opts.dry_run,
    };
    if opts.dry_run {
        return Ok((report, props));
    }

    // Controllers serve no clients: only brokers are in the cluster's bootstrap name; a
    // controller has a name of its own, which the quorum's bootstrap servers list.
    let endpoint = |kind, port| dns::BrokerEndpoint { cluster: file.cluster.clone(), broker_id, host: advertised_host.clone(), port, kind };
    if opts.role.is_broker() {
        report.dns_names = registry.register(&endpoint(dns::RecordKind::Broker, opts.port)).await?;
    }
    if let Some((formation, controller_port)) = &kraft_formation {
        if let Some(port) = controller_port {
            report.dns_names.extend(registry.register(&endpoint(dns::RecordKind::Controller, *port)).await?);
        }
        let servers = quorum_bootstrap_servers(&controller_endpoints(&zk, &paths, &file.cluster, formation, registry).await?);
        props.set_derived("controller.quorum.bootstrap.servers", servers.clone());
        if let Some((_, _, kraft_report)) = &mut kraft_plan {
            kraft_report.quorum_bootstrap_servers = servers;
        }
    }

    let properties_file = write_files(&opts.data_dir, &props)?;
    if let (Some((cluster_id, kind, mut kraft_report)), Some(tool)) = (kraft_plan, &opts.storage) {
        let (dir, file) = (log_dir.clone(), properties_file.clone());
        let meta = off_runtime(tool.clone(), move |t| t.ensure_formatted(&dir, &file, &cluster_id, broker_id, &kind)).await?;
        if let (true, Some(dir)) = (opts.role.is_controller(), &meta.directory_id) {
            // Without this record a later loss of the disk could not be told from a first boot:
            // asked again while ZooKeeper reconnects, and the boot fails if it cannot be kept.
            let mut attempt = 0;
            loop {
                match quorum::record_formatted(&zk, &paths, broker_id, dir, connector.fleet_acl()).await {
                    Ok(()) => break,
                    Err(e) if attempt < 10 => {
                        tracing::warn!(error = %e, "recording the formatted directory: retrying");
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        kraft_report.directory_id = meta.directory_id;
        report.kraft = Some(kraft_report);
    }
    report.properties_file = Some(properties_file);
    Ok((report, props))
}

/// How recently a node must have fetched from the quorum's leader to count as alive (the
/// fleet manager's window: Kafka's own fetch timeout is 2 s).
pub const LIVE_FETCH_WINDOW_MS: i64 = 15_000;

/// One controller of a KRaft cluster, as a node can reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerEndpoint {
    pub node_id: i32,
    /// By its name in the service registry, or the address local routes hold.
    pub registered: Option<String>,
    /// Where the quorum's formation recorded it (first voters only).
    pub recorded: Option<String>,
}

impl ControllerEndpoint {
    /// Every address worth trying, the registered one first.
    pub fn addresses(&self) -> Vec<String> {
        let mut out: Vec<String> = self.registered.iter().chain(&self.recorded).cloned().collect();
        out.dedup();
        out
    }
}

/// The quorum's first voters, then every other node the ID registry leases to a controller
/// (one added by a resize, or holding a first voter's place under another ID), each with its
/// registered and recorded addresses.
pub async fn controller_endpoints(
    zk: &zookeeper_client::Client,
    paths: &fleet_common::paths::ClusterPaths,
    cluster: &str,
    formation: &quorum::Formation,
    registry: &dyn dns::ServiceRegistry,
) -> Result<Vec<ControllerEndpoint>, BootError> {
    let leased = broker_id::read_registry(zk, paths).await?;
    let controller_ids = leased.iter().filter(|(_, e)| matches!(e.lease.role.as_deref(), Some("controller" | "combined"))).map(|(id, _)| *id);
    let mut ids: Vec<i32> = formation.voters.iter().map(|v| v.node_id).collect();
    for id in controller_ids {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    // Every controller listens on the same port where names are used (EC2: 9093).
    let port = formation.voters.first().map_or(9093, |v| v.port);
    let mut out = Vec::new();
    for id in ids {
        let voter = formation.voter(id);
        let port = voter.map_or(port, |v| v.port);
        out.push(ControllerEndpoint {
            node_id: id,
            registered: registry.controller_address(cluster, id, port).await?,
            recorded: voter.map(|v| format!("{}:{}", host_for_url(&v.host), v.port)),
        });
    }
    Ok(out)
}

/// `controller.quorum.bootstrap.servers`: each controller by its registered name or address,
/// else where the formation recorded it. Kafka resolves a name each time it connects, so a
/// name listed before its record exists costs nothing, and a node started after a controller
/// was replaced finds it at its new address.
pub fn quorum_bootstrap_servers(endpoints: &[ControllerEndpoint]) -> String {
    let mut listed: Vec<String> = Vec::new();
    for address in endpoints.iter().filter_map(|e| e.registered.clone().or_else(|| e.recorded.clone())) {
        if !listed.contains(&address) {
            listed.push(address);
        }
    }
    listed.join(",")
}

/// Node IDs of a KRaft cluster that its quorum's leader saw fetching in the last
/// [`LIVE_FETCH_WINDOW_MS`] (voters and observers: brokers fetch the metadata log too), asked
/// through the controllers in turn. KRaft nodes write nothing under `/brokers/ids`, so this is
/// what keeps an ID whose instance the provider wrongly calls gone from being handed out twice.
/// Known and empty before the quorum is formed; `None` (unknown: nothing is reused) when no
/// controller answers with a leader that reports fetch times.
pub async fn kraft_live_node_ids(
    zk: &zookeeper_client::Client,
    paths: &fleet_common::paths::ClusterPaths,
    cluster: &str,
    registry: &dyn dns::ServiceRegistry,
) -> Result<Option<BTreeSet<i32>>, BootError> {
    let Some(formation) = quorum::read_formation(zk, paths).await? else { return Ok(Some(BTreeSet::new())) };
    let mut tried = Vec::new();
    for endpoint in controller_endpoints(zk, paths, cluster, &formation, registry).await? {
        for address in endpoint.addresses() {
            match fleet_common::kafka_wire::describe_quorum(&address, Duration::from_secs(3)).await {
                Ok(q) if q.leader_id >= 0 && q.clock_ms().is_some() => {
                    let fresh = |r: &&fleet_common::kafka_wire::QuorumReplica| r.node_id == q.leader_id || q.age_ms(r.last_fetch_ms).is_some_and(|age| age <= LIVE_FETCH_WINDOW_MS);
                    return Ok(Some(q.voters.iter().chain(&q.observers).filter(fresh).map(|r| r.node_id).collect()));
                }
                Ok(_) => tried.push(format!("{address}: no leader with fetch times yet")),
                Err(e) => tried.push(format!("{address}: {e}")),
            }
        }
    }
    tracing::warn!(asked = %tried.join("; "), "the controller quorum could not tell which nodes are alive: no node ID is reused this time");
    Ok(None)
}

/// Runs Kafka's storage tool (a JVM, seconds) off the async runtime, whose single thread keeps
/// the ZooKeeper session alive meanwhile.
async fn off_runtime<T: Send + 'static>(tool: kraft::StorageTool, run: impl FnOnce(&kraft::StorageTool) -> Result<T, kraft::KraftError> + Send + 'static) -> Result<T, BootError> {
    match tokio::task::spawn_blocking(move || run(&tool)).await {
        Ok(result) => result.map_err(BootError::from),
        Err(e) => Err(kraft::KraftError::Spawn { java: "java".into(), source: std::io::Error::other(e.to_string()) }.into()),
    }
}

fn host_for_url(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// `server.properties` and `log4j.properties` in the data folder.
pub fn write_files(data_dir: &Path, props: &LayeredProperties) -> Result<PathBuf, BootError> {
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BootError::Write { path, source }
    };
    std::fs::create_dir_all(data_dir.join("kafka-logs")).map_err(write_err(data_dir))?;
    let properties_file = data_dir.join("server.properties");
    fleet_common::local::write_atomically(&properties_file, props.render().as_bytes())
        .map_err(write_err(&properties_file))?;
    let log4j = data_dir.join("log4j.properties");
    fleet_common::local::write_atomically(&log4j, launch::LOG4J_PROPERTIES.as_bytes()).map_err(write_err(&log4j))?;
    Ok(properties_file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(id: i32, registered: Option<&str>, recorded: Option<&str>) -> ControllerEndpoint {
        ControllerEndpoint { node_id: id, registered: registered.map(str::to_string), recorded: recorded.map(str::to_string) }
    }

    #[test]
    fn the_quorum_is_listed_by_name_then_by_recorded_address() {
        let endpoints = [
            // A first voter by its name (Route53), one with no record yet (its recorded address),
            // one whose local route points at its replacement's new port.
            endpoint(1, Some("controller-1.k4.kafka.internal:9093"), Some("10.0.0.1:9093")),
            endpoint(2, None, Some("10.0.0.2:9093")),
            endpoint(3, Some("127.0.0.1:40117"), Some("127.0.0.1:39001")),
            // A controller added by a resize: no recorded address, listed by name.
            endpoint(7, Some("controller-7.k4.kafka.internal:9093"), None),
            // Neither: not listed.
            endpoint(8, None, None),
        ];
        assert_eq!(
            quorum_bootstrap_servers(&endpoints),
            "controller-1.k4.kafka.internal:9093,10.0.0.2:9093,127.0.0.1:40117,controller-7.k4.kafka.internal:9093"
        );
        // Liveness is asked by name first, then where the formation recorded it.
        assert_eq!(endpoints[0].addresses(), ["controller-1.k4.kafka.internal:9093", "10.0.0.1:9093"]);
        assert_eq!(endpoint(4, Some("a:1"), Some("a:1")).addresses(), ["a:1"]);
        assert!(endpoints[4].addresses().is_empty());
    }
}
