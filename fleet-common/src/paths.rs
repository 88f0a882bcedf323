//! Where things live in ZooKeeper.
//!
//! The whole fleet hangs below one root (default `/kafka-fleet`). Each cluster owns a subtree:
//!
//! ```text
//! /kafka-fleet/clusters/<cluster>/broker-ids/<id>     persistent: which instance holds broker ID <id>
//! /kafka-fleet/clusters/<cluster>/locks/broker-id/    Curator-compatible lock for ID assignment
//! /kafka-fleet/clusters/<cluster>/kafka               the cluster's Kafka chroot (/brokers, /controller, ...)
//! ```
//!
//! Keeping Kafka's chroot inside the cluster's subtree means one cluster is one subtree: easy to
//! inspect, to back up, and (in tests) to isolate with a unique fleet root.

/// The fleet's root znode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetPaths {
    root: String,
}

pub const DEFAULT_FLEET_ROOT: &str = "/kafka-fleet";

impl FleetPaths {
    /// `root` must be an absolute znode path without a trailing slash (validated by callers that
    /// take it from users; see [`validate_znode_path`]).
    pub fn new(root: impl Into<String>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &str {
        &self.root
    }

    pub fn clusters(&self) -> String {
        format!("{}/clusters", self.root)
    }

    pub fn cluster(&self, cluster: &str) -> ClusterPaths {
        ClusterPaths { base: format!("{}/clusters/{}", self.root, cluster) }
    }
}

impl Default for FleetPaths {
    fn default() -> Self {
        Self::new(DEFAULT_FLEET_ROOT)
    }
}

/// One cluster's subtree in the fleet's namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterPaths {
    base: String,
}

impl ClusterPaths {
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Persistent registry: one child per assigned broker ID.
    pub fn broker_ids(&self) -> String {
        format!("{}/broker-ids", self.base)
    }

    pub fn broker_id(&self, id: i32) -> String {
        format!("{}/broker-ids/{}", self.base, id)
    }

    /// KRaft: one child per controller node, holding the metadata directory it formatted last
    /// (written by its boot, read by the fleet manager's voter repair).
    pub fn kraft_formatted(&self) -> String {
        format!("{}/kraft/formatted", self.base)
    }

    pub fn kraft_formatted_node(&self, node_id: i32) -> String {
        format!("{}/kraft/formatted/{node_id}", self.base)
    }

    /// Directory of the Curator-style lock that serialises ID assignment.
    pub fn broker_id_lock(&self) -> String {
        format!("{}/locks/broker-id", self.base)
    }

    /// The cluster's Kafka chroot, as used in `zookeeper.connect`.
    pub fn kafka_chroot(&self) -> String {
        format!("{}/kafka", self.base)
    }

    pub fn kafka(&self) -> KafkaPaths {
        KafkaPaths { chroot: self.kafka_chroot() }
    }
}

/// Kafka's own znodes (ZooKeeper mode), below a chroot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaPaths {
    chroot: String,
}

impl KafkaPaths {
    pub fn new(chroot: impl Into<String>) -> Self {
        Self { chroot: chroot.into() }
    }

    pub fn chroot(&self) -> &str {
        &self.chroot
    }

    pub fn broker_ids(&self) -> String {
        format!("{}/brokers/ids", self.chroot)
    }

    /// Ephemeral, alive while the broker's ZooKeeper session is.
    pub fn broker(&self, id: i32) -> String {
        format!("{}/brokers/ids/{}", self.chroot, id)
    }

    pub fn controller(&self) -> String {
        format!("{}/controller", self.chroot)
    }

    pub fn topics(&self) -> String {
        format!("{}/brokers/topics", self.chroot)
    }

    pub fn topic(&self, topic: &str) -> String {
        format!("{}/brokers/topics/{}", self.chroot, topic)
    }

    pub fn partition_state(&self, topic: &str, partition: i32) -> String {
        format!("{}/brokers/topics/{}/partitions/{}/state", self.chroot, topic, partition)
    }

    pub fn topic_config(&self, topic: &str) -> String {
        format!("{}/config/topics/{}", self.chroot, topic)
    }
}

/// Why a user-given znode path or name is not acceptable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathError {
    #[error("`{0}` must start with `/` (an absolute znode path such as /kafka-fleet)")]
    NotAbsolute(String),
    #[error("`{0}` must not end with `/` or contain empty segments")]
    EmptySegment(String),
    #[error("`{0}` contains `.` or `..` segments, which ZooKeeper rejects")]
    DotSegment(String),
}

pub fn validate_znode_path(path: &str) -> Result<(), PathError> {
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute(path.to_string()));
    }
    if path == "/" {
        return Ok(());
    }
    for segment in path[1..].split('/') {
        if segment.is_empty() {
            return Err(PathError::EmptySegment(path.to_string()));
        }
        if segment == "." || segment == ".." {
            return Err(PathError::DotSegment(path.to_string()));
        }
    }
    Ok(())
}

/// Cluster names become znode segments and DNS labels: lowercase letters, digits and `-`, 1-63
/// characters, starting with a letter.
pub fn validate_cluster_name(name: &str) -> Result<(), String> {
    let ok_chars = name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let starts = name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    if name.is_empty() || name.len() > 63 || !ok_chars || !starts || name.ends_with('-') {
        return Err(format!(
            "`{name}` is not a valid cluster name: use 1-63 lowercase letters, digits and `-`, starting with a letter \
             (it becomes a znode and a DNS label)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_subtree_layout() {
        let c = FleetPaths::new("/t1").cluster("blue");
        assert_eq!(c.broker_id(7), "/t1/clusters/blue/broker-ids/7");
        assert_eq!(c.broker_id_lock(), "/t1/clusters/blue/locks/broker-id");
        assert_eq!(c.kafka().broker(3), "/t1/clusters/blue/kafka/brokers/ids/3");
        assert_eq!(c.kafka().partition_state("t", 2), "/t1/clusters/blue/kafka/brokers/topics/t/partitions/2/state");
    }

    #[test]
    fn znode_path_validation() {
        assert!(validate_znode_path("/kafka-fleet").is_ok());
        assert_eq!(validate_znode_path("kafka"), Err(PathError::NotAbsolute("kafka".into())));
        assert!(validate_znode_path("/a//b").is_err());
        assert!(validate_znode_path("/a/").is_err());
        assert!(validate_znode_path("/a/../b").is_err());
    }

    #[test]
    fn cluster_names() {
        assert!(validate_cluster_name("blue-1").is_ok());
        for bad in ["", "Blue", "1blue", "blue_1", "blue-", &"a".repeat(64)] {
            assert!(validate_cluster_name(bad).is_err(), "{bad} accepted");
        }
    }
}
