//! The infrastructure provider seam: who is this host, and which hosts still exist.
//! Two real implementations: EC2 (`DescribeInstances`) and local hosts (folders on this machine).

use std::collections::HashMap;
use std::path::PathBuf;

use async_trait::async_trait;
use aws_sdk_ec2::types::Filter;
use fleet_common::local::{self, LocalInstanceState};

use crate::cluster_file::ProviderConfig;

/// What the provider says of an instance it knows. An instance it does not know is *absent*
/// (not in the returned map), which is different from *unknown* (the call failed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstanceStatus {
    /// Pending, running, stopping or stopped: it may come back, so its broker ID stays its own.
    Alive,
    /// Shutting down or terminated: its broker ID may be reused.
    Terminated,
}

/// This host, as the provider sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceInfo {
    pub instance_id: String,
    pub availability_zone: String,
    pub private_ip: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("instance `{0}` is not known to the provider (is --instance-id right?)")]
    UnknownInstance(String),
    #[error("instance `{0}` is terminated; a terminated host cannot boot a broker")]
    Terminated(String),
    #[error("provider call {call} failed: {message}")]
    Call { call: &'static str, message: String },
}

#[async_trait]
pub trait InfraProvider: Send + Sync {
    /// The provider's view of this host.
    async fn whoami(&self, instance_id: &str) -> Result<InstanceInfo, ProviderError>;
    /// Statuses of the given instances; absent ones are left out of the map.
    async fn statuses(&self, instance_ids: &[String]) -> Result<HashMap<String, InstanceStatus>, ProviderError>;
}

pub async fn from_config(config: &ProviderConfig) -> Box<dyn InfraProvider> {
    match config {
        ProviderConfig::Local { root } => Box::new(LocalProvider { root: root.clone() }),
        ProviderConfig::Ec2 { region, endpoint_url } => {
            Box::new(Ec2Provider::new(region, endpoint_url.as_deref()).await)
        }
    }
}

/// Hosts are folders under `root` (see [`fleet_common::local`]).
pub struct LocalProvider {
    pub root: PathBuf,
}

#[async_trait]
impl InfraProvider for LocalProvider {
    async fn whoami(&self, instance_id: &str) -> Result<InstanceInfo, ProviderError> {
        let record = local::read_instance(&self.root, instance_id)
            .map_err(|e| ProviderError::Call { call: "read local instance", message: e.to_string() })?
            .ok_or_else(|| ProviderError::UnknownInstance(instance_id.to_string()))?;
        if record.state == LocalInstanceState::Terminated {
            return Err(ProviderError::Terminated(instance_id.to_string()));
        }
        Ok(InstanceInfo {
            instance_id: record.instance_id,
            availability_zone: record.availability_zone,
            private_ip: record.private_ip,
        })
    }

    async fn statuses(&self, instance_ids: &[String]) -> Result<HashMap<String, InstanceStatus>, ProviderError> {
        let mut out = HashMap::new();
        for id in instance_ids {
            let record = local::read_instance(&self.root, id)
                .map_err(|e| ProviderError::Call { call: "read local instance", message: e.to_string() })?;
            if let Some(record) = record {
                let status = match record.state {
                    LocalInstanceState::Running => InstanceStatus::Alive,
                    LocalInstanceState::Terminated => InstanceStatus::Terminated,
                };
                out.insert(id.clone(), status);
            }
        }
        Ok(out)
    }
}

/// EC2 through `aws-sdk-ec2`; `endpoint_url` points it at moto in tests.
pub struct Ec2Provider {
    client: aws_sdk_ec2::Client,
}

impl Ec2Provider {
    pub async fn new(region: &str, endpoint_url: Option<&str>) -> Self {
        let mut loader =
            aws_config::defaults(aws_config::BehaviorVersion::latest()).region(aws_config::Region::new(region.to_string()));
        if let Some(url) = endpoint_url {
            loader = loader.endpoint_url(url);
        }
        Self { client: aws_sdk_ec2::Client::new(&loader.load().await) }
    }

    async fn describe(&self, instance_ids: &[String]) -> Result<Vec<aws_sdk_ec2::types::Instance>, ProviderError> {
        let mut instances = Vec::new();
        // A filter (unlike InstanceIds) does not fail the whole call for one unknown ID.
        for chunk in instance_ids.chunks(200) {
            let filter = Filter::builder().name("instance-id").set_values(Some(chunk.to_vec())).build();
            let mut pages = self.client.describe_instances().filters(filter).into_paginator().send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| ProviderError::Call {
                    call: "ec2:DescribeInstances",
                    message: aws_sdk_ec2::error::DisplayErrorContext(e).to_string(),
                })?;
                for reservation in page.reservations() {
                    instances.extend(reservation.instances().iter().cloned());
                }
            }
        }
        Ok(instances)
    }
}

fn ec2_status(instance: &aws_sdk_ec2::types::Instance) -> InstanceStatus {
    use aws_sdk_ec2::types::InstanceStateName as S;
    match instance.state().and_then(|s| s.name()) {
        Some(S::ShuttingDown | S::Terminated) => InstanceStatus::Terminated,
        _ => InstanceStatus::Alive,
    }
}

#[async_trait]
impl InfraProvider for Ec2Provider {
    async fn whoami(&self, instance_id: &str) -> Result<InstanceInfo, ProviderError> {
        let found = self.describe(&[instance_id.to_string()]).await?;
        let instance = found.first().ok_or_else(|| ProviderError::UnknownInstance(instance_id.to_string()))?;
        if ec2_status(instance) == InstanceStatus::Terminated {
            return Err(ProviderError::Terminated(instance_id.to_string()));
        }
        Ok(InstanceInfo {
            instance_id: instance_id.to_string(),
            availability_zone: instance
                .placement()
                .and_then(|p| p.availability_zone())
                .unwrap_or_default()
                .to_string(),
            private_ip: instance.private_ip_address().unwrap_or("127.0.0.1").to_string(),
        })
    }

    async fn statuses(&self, instance_ids: &[String]) -> Result<HashMap<String, InstanceStatus>, ProviderError> {
        Ok(self
            .describe(instance_ids)
            .await?
            .iter()
            .filter_map(|i| Some((i.instance_id()?.to_string(), ec2_status(i))))
            .collect())
    }
}

/// On EC2 without `--instance-id`: ask the instance metadata service.
pub async fn instance_id_from_imds() -> Result<String, ProviderError> {
    let client = aws_config::imds::Client::builder().build();
    client
        .get("/latest/meta-data/instance-id")
        .await
        .map(String::from)
        .map_err(|e| ProviderError::Call { call: "imds instance-id", message: e.to_string() })
}
