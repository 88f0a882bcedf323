//! What the fleet's services truly share: how to reach ZooKeeper, and typed access to the znodes
//! that Kafka writes and to the ones the fleet keeps for itself.

pub mod config_file;
pub mod local;
pub mod paths;
pub mod zk;
pub mod znodes;

pub use paths::{ClusterPaths, FleetPaths, KafkaPaths};
pub use zk::{ZkAddress, ZkConnectError, ZkConnector, ZkEndpoint};
