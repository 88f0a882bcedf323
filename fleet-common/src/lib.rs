//! What the fleet's services truly share: how to reach ZooKeeper, typed access to the znodes that
//! Kafka writes and to the ones the fleet keeps for itself (the broker-ID registry among them), the
//! cluster file hosts boot from, Kafka's broker-config catalog, and Route53 zone look-ups.

pub mod cluster_file;
pub mod config_file;
#[cfg(feature = "https")]
pub mod https;
#[cfg(feature = "https")]
pub mod serve;
pub mod kafka_config;
#[cfg(feature = "kafka-wire")]
pub mod kafka_wire;
pub mod local;
pub mod paths;
#[cfg(feature = "signals")]
pub mod signals;
#[cfg(feature = "zk")]
pub mod registry;
#[cfg(feature = "route53")]
pub mod route53;
#[cfg(feature = "zk")]
pub mod zk;
pub mod znodes;

pub use paths::{ClusterPaths, FleetPaths, KafkaPaths};
#[cfg(feature = "zk")]
pub use zk::{FleetAcl, ZkAddress, ZkConnectError, ZkConnector, ZkEndpoint, ZkIdentity};
