//! `kafka-bootstrap`: what a broker host runs before Kafka.
//!
//! 1. Read and validate the cluster file and the `KAFKA_CFG_*` environment (before any write).
//! 2. Ask the provider who this host is (availability zone, address).
//! 3. Take a broker ID under a ZooKeeper lock ([`broker_id`]).
//! 4. Layer the properties ([`properties`]), fetching the persisted ones from the fleet manager.
//! 5. Register the broker's DNS records ([`dns`]).
//! 6. Start Kafka ([`launch`]).

pub mod broker_id;
pub mod cluster_file;
pub mod dns;
pub mod kraft;
pub mod launch;
pub mod persisted;
pub mod properties;
pub mod provider;

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
}

/// What a boot did, for logs and `--output json`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BootReport {
    pub cluster: String,
    pub instance_id: String,
    pub availability_zone: String,
    pub broker_id: i32,
    pub how: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_instance_id: Option<String>,
    pub advertised_listener: String,
    pub persisted_properties: bool,
    pub dns_names: Vec<String>,
    pub properties_file: Option<PathBuf>,
    pub dry_run: bool,
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
    let paths = FleetPaths::new(&file.fleet_root).cluster(&file.cluster);
    let connector = ZkConnector::default().with_deadline(opts.zk_timeout).with_identity(file.zk_identity.clone());
    let zk = connector.connect(&file.zookeeper).await?;

    let assignment = if opts.dry_run {
        broker_id::plan(&zk, &paths, &opts.instance_id, provider, file.broker_id_base).await?.assignment()
    } else {
        broker_id::assign(&zk, &paths, &opts.instance_id, provider, file.broker_id_base, opts.lock_timeout, connector.fleet_acl()).await?
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
    let advertised_listener = format!("PLAINTEXT://{}:{}", host_for_url(&advertised_host), opts.port);
    props.set_derived("broker.id", broker_id.to_string());
    props.set_derived("listeners", format!("PLAINTEXT://{}:{}", host_for_url(&opts.bind_host), opts.port));
    props.set_derived("advertised.listeners", advertised_listener.clone());
    props.set_derived(
        "zookeeper.connect",
        format!("{}{}", file.zookeeper.hosts_string(), paths.kafka_chroot()),
    );
    if !me.availability_zone.is_empty() {
        props.set_derived("broker.rack", me.availability_zone.clone());
    }
    props.set_derived("log.dirs", opts.data_dir.join("kafka-logs").display().to_string());

    let mut report = BootReport {
        cluster: file.cluster.clone(),
        instance_id: opts.instance_id.clone(),
        availability_zone: me.availability_zone.clone(),
        broker_id,
        how: assignment.how,
        previous_instance_id: assignment.previous_instance_id,
        advertised_listener,
        persisted_properties: persisted.is_some(),
        dns_names: Vec::new(),
        properties_file: None,
        dry_run: opts.dry_run,
    };
    if opts.dry_run {
        return Ok((report, props));
    }

    let endpoint = dns::BrokerEndpoint {
        cluster: file.cluster.clone(),
        broker_id,
        host: advertised_host,
        port: opts.port,
    };
    report.dns_names = registry.register(&endpoint).await?;

    let properties_file = write_files(&opts.data_dir, &props)?;
    report.properties_file = Some(properties_file);
    Ok((report, props))
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
