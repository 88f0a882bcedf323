//! Service registration seam: the broker's own record and its share of the cluster's bootstrap
//! record. Route53 (through `aws-sdk-route53`) or local routes (files).
//!
//! Names, in zone `Z`: `broker-<id>.<cluster>.Z` (the broker) and `<cluster>.Z` (bootstrap). Both
//! are multivalue-answer records whose set identifier is `broker-<id>`: every broker UPSERTs only
//! its own set, so concurrent boots never overwrite each other and a re-run is idempotent.

use async_trait::async_trait;
use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType};
use fleet_common::local::{self, LocalRecordSet};

use crate::cluster_file::DnsConfig;

/// What one broker registers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerEndpoint {
    pub cluster: String,
    pub broker_id: i32,
    pub host: String,
    pub port: u16,
}

impl BrokerEndpoint {
    pub fn set_identifier(&self) -> String {
        format!("broker-{}", self.broker_id)
    }
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
}

/// Local routes: `host:port` values, since local brokers share one IP and differ by port.
pub struct LocalRoutes {
    pub root: std::path::PathBuf,
}

pub fn local_names(cluster: &str, broker_id: i32) -> (String, String) {
    (format!("broker-{broker_id}.{cluster}.local"), format!("{cluster}.local"))
}

#[async_trait]
impl ServiceRegistry for LocalRoutes {
    async fn register(&self, endpoint: &BrokerEndpoint) -> Result<Vec<String>, DnsError> {
        let (broker_name, bootstrap_name) = local_names(&endpoint.cluster, endpoint.broker_id);
        let value = format!("{}:{}", endpoint.host, endpoint.port);
        for name in [&broker_name, &bootstrap_name] {
            let set = LocalRecordSet {
                name: name.clone(),
                set_identifier: endpoint.set_identifier(),
                values: vec![value.clone()],
            };
            local::upsert_record(&self.root, &set)
                .map_err(|e| DnsError::Call { call: "write local route", message: e.to_string() })?;
        }
        Ok(vec![broker_name, bootstrap_name])
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

pub fn route53_names(zone: &str, cluster: &str, broker_id: i32) -> (String, String) {
    (format!("broker-{broker_id}.{cluster}.{zone}"), format!("{cluster}.{zone}"))
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
        let (broker_name, bootstrap_name) = route53_names(&self.zone, &endpoint.cluster, endpoint.broker_id);
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
        let batch = ChangeBatch::builder()
            .comment(format!("kafka-bootstrap: broker {} of {}", endpoint.broker_id, endpoint.cluster))
            .changes(build(&broker_name)?)
            .changes(build(&bootstrap_name)?)
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
        Ok(vec![broker_name, bootstrap_name])
    }
}
