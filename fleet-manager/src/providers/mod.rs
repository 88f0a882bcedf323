//! Where broker hosts come from, chosen per cluster: [`local::LocalHosts`] (each host is a
//! `kafka-bootstrap` process on this machine) or [`ec2::Ec2Hosts`] (`RunInstances` with user-data
//! that runs `kafka-bootstrap`); and the DNS zone the brokers register in ([`dns`]: local routes
//! or Route53), whose stale records the reconciler removes.
//!
//! Launches are idempotent: each carries a token the planner minted and the reconciler persisted
//! before the call, and a provider asked twice with one token returns the host it already made.

pub mod dns;
pub mod ec2;
pub mod local;

pub use dns::{DnsZone, LocalDns, NoDns, Route53Dns};
pub use ec2::{Ec2Config, Ec2Hosts};
pub use local::{stop_local_host, LocalHosts, LocalHostsConfig};

use async_trait::async_trait;

use crate::plan::ObservedHost;
use crate::spec::ClusterSpec;

pub const TAG_CLUSTER: &str = "fleet:cluster";
pub const TAG_MANAGED_BY: &str = "fleet:managed-by";
/// The launch token a host was made for (what makes a retried launch find it).
pub const TAG_LAUNCH_TOKEN: &str = "fleet:launch-token";
/// What the host runs: broker (KRaft clusters also have controller or combined hosts).
pub const TAG_ROLE: &str = "fleet:role";

pub use fleet_api::wire::ErrorClass;

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("{call} failed: {message}")]
    Call { call: &'static str, message: String, class: ErrorClass },
    #[error("provider `{0}` is not configured on this fleet manager (see the `{0}` section of its config)")]
    NotConfigured(&'static str),
}

impl ProviderError {
    pub fn class(&self) -> ErrorClass {
        match self {
            ProviderError::Call { class, .. } => *class,
            ProviderError::NotConfigured(_) => ErrorClass::Terminal,
        }
    }
}

/// A local I/O failure: retryable (a full disk or a busy file can clear).
fn call_err(call: &'static str) -> impl Fn(std::io::Error) -> ProviderError {
    move |e| ProviderError::Call { call, message: e.to_string(), class: ErrorClass::Retryable }
}

/// One host to launch.
#[derive(Clone, Copy, Debug)]
pub struct LaunchRequest<'a> {
    pub cluster: &'a ClusterSpec,
    /// The cluster resource's UID (its identity: host tokens are bound to it).
    pub cluster_uid: &'a str,
    pub availability_zone: &'a str,
    pub instance_type: &'a str,
    /// Minted by the planner and persisted before the call: the same token never makes two hosts.
    pub token: &'a str,
    pub role: crate::plan::HostRole,
}

#[async_trait]
pub trait HostProvider: Send + Sync {
    /// Every host the provider knows for the cluster (terminated ones included while it lists them).
    async fn list(&self, cluster: &str) -> Result<Vec<ObservedHost>, ProviderError>;
    /// Launches one host, or finds the one already launched with this token; returns its ID.
    async fn launch(&self, request: LaunchRequest<'_>) -> Result<String, ProviderError>;
    async fn terminate(&self, cluster: &str, instance_id: &str) -> Result<(), ProviderError>;
    /// Restarts the host's broker: Kafka stops (SIGTERM: a controlled shutdown) and starts again
    /// with the cluster's properties as they are now, keeping its broker ID and its data. Asked
    /// again, it restarts again (a retry after a crash is harmless: the broker was down anyway).
    async fn restart(&self, cluster: &str, instance_id: &str) -> Result<(), ProviderError>;
}

/// The host providers this fleet manager has, by kind: one place maps a cluster's `provider` to
/// the one that serves it.
#[derive(Clone, Default)]
pub struct HostProviders {
    pub local: Option<std::sync::Arc<dyn HostProvider>>,
    pub ec2: Option<std::sync::Arc<dyn HostProvider>>,
}

impl HostProviders {
    pub fn get(&self, kind: crate::spec::ProviderKind) -> Option<&dyn HostProvider> {
        match kind {
            crate::spec::ProviderKind::Local => self.local.as_deref(),
            crate::spec::ProviderKind::Ec2 => self.ec2.as_deref(),
        }
    }
}

/// What a booting host needs to know to find the fleet (written into its cluster file).
#[derive(Clone, Debug)]
pub struct FleetCoordinates {
    pub zookeeper: String,
    pub fleet_root: String,
    pub fleet_api_url: String,
    /// The CA file hosts verify the API's certificate with (None: the system's roots).
    pub fleet_api_ca_file: Option<String>,
    /// The file holding the fleet's ZooKeeper identity, on the host (None: open znodes).
    pub zk_identity_file: Option<String>,
    /// The fleet manager runs with open znodes (`--insecure-zookeeper`): hosts are told to as well.
    pub insecure_zookeeper: bool,
    /// Issues each cluster's host token: all a host's bootstrap may do with it is read its own
    /// cluster's persisted properties. Hosts never get a configured read or write token.
    pub host_tokens: Option<std::sync::Arc<crate::credentials::HostTokens>>,
}

impl FleetCoordinates {
    /// The host token of `cluster` (resource UID `uid`).
    pub fn host_token(&self, cluster: &str, uid: &str) -> Option<String> {
        self.host_tokens.as_ref().map(|t| t.issue(cluster, uid))
    }
}
