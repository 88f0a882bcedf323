//! Service registration seam: the broker's own record and its share of the cluster's bootstrap
//! record; a KRaft controller's own record. Route53 (through `aws-sdk-route53`) or local routes
//! (files).
//!
//! Names, in zone `Z`: `broker-<id>.<cluster>.Z` (the broker) and `<cluster>.Z` (bootstrap), both
//! multivalue-answer records whose set identifier is `broker-<id>`: every broker UPSERTs only its
//! own set, so concurrent boots never overwrite each other and a re-run is idempotent.
//! Controllers serve no clients: only `controller-<id>.<cluster>.Z` (set `controller-<id>`), the
//! name `controller.quorum.bootstrap.servers` lists, so a replaced controller is found at its
//! new address.

use async_trait::async_trait;
use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType};
use fleet_common::local::{self, LocalRecordSet};

use crate::cluster_file::DnsConfig;

/// Which listener a record names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// The broker's own name and its share of the cluster's bootstrap name.
    Broker,
    /// A KRaft controller's own name only.
    Controller,
}

impl RecordKind {
    fn prefix(self) -> &'static str {
        match self {
            RecordKind::Broker => "broker",
            RecordKind::Controller => "controller",
        }
    }
}

/// What one node registers for one of its listeners.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerEndpoint {
    pub cluster: String,
    pub broker_id: i32,
    pub host: String,
    pub port: u16,
    pub kind: RecordKind,
}

impl BrokerEndpoint {
    pub fn set_identifier(&self) -> String {
        format!("{}-{}", self.kind.prefix(), self.broker_id)
    }

    /// The names this endpoint is registered under in `zone`: its own, then the cluster's
    /// bootstrap name (brokers only).
    pub fn names(&self, zone: &str) -> Vec<String> {
        let own = format!("{}.{}.{zone}", self.set_identifier(), self.cluster);
        match self.kind {
            RecordKind::Broker => vec![own, format!("{}.{zone}", self.cluster)],
            RecordKind::Controller => vec![own],
        }
    }
}

/// A controller's name in `zone` (`controller-<id>.<cluster>.<zone>`).
pub fn controller_name(zone: &str, cluster: &str, node_id: i32) -> String {
    format!("controller-{node_id}.{cluster}.{zone}")
}


#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("hosted zone `{0}` does not exist in Route53 (create it, or fix dns.zone)")]
    NoSuchZone(String),
    #[error("DNS call {call} failed: {message}")]
    Call { call: &'static str, message: String },
}

#[async_trait]
pub trait ServiceRegistry: Send + Sync {
    /// Returns the names it wrote.
    async fn register(&self, endpoint: &BrokerEndpoint) -> Result<Vec<String>, DnsError>;
    /// Where controller `node_id` of `cluster` (listening on `port`) is reached through this
    /// registry (`host:port`): its DNS name, which Kafka resolves itself, or the address local
    /// routes hold; `None` when the registry has nothing for it.
    async fn controller_address(&self, cluster: &str, node_id: i32, port: u16) -> Result<Option<String>, DnsError>;
}

pub async fn from_config(config: &DnsConfig) -> Box<dyn ServiceRegistry> {
    match config {
        DnsConfig::None => Box::new(NoRegistry),
        DnsConfig::Local { root } => Box::new(LocalRoutes { root: root.clone() }),
        DnsConfig::Route53 { zone, endpoint_url, ttl } => {
            let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
                // Route53 is global; the SDK still wants a region to sign with.
                .region(aws_config::Region::new("us-east-1"));
            if let Some(url) = endpoint_url {
                loader = loader.endpoint_url(url);
            }
            let client = aws_sdk_route53::Client::new(&loader.load().await);
            Box::new(Route53Registry { client, zone: zone.clone(), ttl: *ttl })
        }
    }
}

pub struct NoRegistry;

#[async_trait]
impl ServiceRegistry for NoRegistry {
    async fn register(&self, _endpoint: &BrokerEndpoint) -> Result<Vec<String>, DnsError> {
        Ok(Vec::new())
    }
    async fn controller_address(&self, _cluster: &str, _node_id: i32, _port: u16) -> Result<Option<String>, DnsError> {
        Ok(None)
    }
}

/// Local routes: `host:port` values, since local brokers share one IP and differ by port.
pub struct LocalRoutes {
    pub root: std::path::PathBuf,
}

#[async_trait]
impl ServiceRegistry for LocalRoutes {
    async fn register(&self, endpoint: &BrokerEndpoint) -> Result<Vec<String>, DnsError> {
        let names = endpoint.names("local");
        let value = format!("{}:{}", host_for_url(&endpoint.host), endpoint.port);
        for name in &names {
            let set = LocalRecordSet {
                name: name.clone(),
                set_identifier: endpoint.set_identifier(),
                values: vec![value.clone()],
            };
            local::upsert_record(&self.root, &set)
                .map_err(|e| DnsError::Call { call: "write local route", message: e.to_string() })?;
        }
        Ok(names)
    }

    /// Local hosts share one address and differ by port (a replaced one gets a new port): the
    /// route's value is the address, since nothing resolves `.local` names for Kafka.
    async fn controller_address(&self, cluster: &str, node_id: i32, _port: u16) -> Result<Option<String>, DnsError> {
        let name = controller_name("local", cluster, node_id);
        let sets = local::read_record(&self.root, &name).map_err(|e| DnsError::Call { call: "read local route", message: e.to_string() })?;
        Ok(sets.into_iter().flat_map(|s| s.values).next())
    }
}

fn host_for_url(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

pub struct Route53Registry {
    client: aws_sdk_route53::Client,
    zone: String,
    ttl: i64,
}

impl Route53Registry {
    async fn zone_id(&self) -> Result<String, DnsError> {
        route53_zone_id(&self.client, &self.zone).await
    }
}

/// The hosted zone ID of `zone` (e.g. `kafka.example.internal`), without the `/hostedzone/` prefix.
pub async fn route53_zone_id(client: &aws_sdk_route53::Client, zone: &str) -> Result<String, DnsError> {
    fleet_common::route53::zone_id(client, zone).await.map_err(|e| match e {
        fleet_common::route53::ZoneLookupError::NoSuchZone(z) => DnsError::NoSuchZone(z),
        fleet_common::route53::ZoneLookupError::Call(message) => DnsError::Call { call: "route53:ListHostedZonesByName", message },
    })
}

fn record_type(host: &str) -> RrType {
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => RrType::A,
        Ok(std::net::IpAddr::V6(_)) => RrType::Aaaa,
        Err(_) => RrType::Cname,
    }
}

#[async_trait]
impl ServiceRegistry for Route53Registry {
    async fn register(&self, endpoint: &BrokerEndpoint) -> Result<Vec<String>, DnsError> {
        let zone_id = self.zone_id().await?;
        let names = endpoint.names(&self.zone);
        let build = |name: &str| -> Result<Change, DnsError> {
            let invalid = |e: aws_sdk_route53::error::BuildError| DnsError::Call {
                call: "route53:ChangeResourceRecordSets",
                message: e.to_string(),
            };
            let set = ResourceRecordSet::builder()
                .name(name)
                .r#type(record_type(&endpoint.host))
                .set_identifier(endpoint.set_identifier())
                .multi_value_answer(true)
                .ttl(self.ttl)
                .resource_records(ResourceRecord::builder().value(&endpoint.host).build().map_err(invalid)?)
                .build()
                .map_err(invalid)?;
            Change::builder().action(ChangeAction::Upsert).resource_record_set(set).build().map_err(invalid)
        };
        let mut batch = ChangeBatch::builder().comment(format!("kafka-bootstrap: {} {} of {}", endpoint.kind.prefix(), endpoint.broker_id, endpoint.cluster));
        for name in &names {
            batch = batch.changes(build(name)?);
        }
        let batch = batch
            .build()
            .map_err(|e| DnsError::Call { call: "route53:ChangeResourceRecordSets", message: e.to_string() })?;
        self.client
            .change_resource_record_sets()
            .hosted_zone_id(&zone_id)
            .change_batch(batch)
            .send()
            .await
            .map_err(|e| DnsError::Call {
                call: "route53:ChangeResourceRecordSets",
                message: aws_sdk_route53::error::DisplayErrorContext(e).to_string(),
            })?;
        Ok(names)
    }

    async fn controller_address(&self, cluster: &str, node_id: i32, port: u16) -> Result<Option<String>, DnsError> {
        Ok(Some(format!("{}:{port}", controller_name(&self.zone, cluster, node_id))))
    }
}
