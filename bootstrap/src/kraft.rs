//! KRaft storage (Kafka 4.x): a node's log directory is formatted once, by Kafka's own storage
//! tool, for one cluster ID and one node ID, and never again.
//!
//! - Unformatted: formatted with `kafka-storage format`, either as one of the quorum's first
//!   controllers (`--initial-controllers`, the same list on every one of them) or as a node that
//!   joins a quorum already running (`--no-initial-controllers`: brokers, and controllers added
//!   later, which the fleet manager promotes to voters once they have caught up).
//! - Formatted for this cluster and node: left as it is (its directory ID is the node's
//!   identity in the quorum; formatting again would make it a stranger).
//! - Formatted for another cluster, or another node: refused, naming both, before Kafka starts.
//!   Kafka itself would also refuse, later and less plainly, or (another node ID) take the data
//!   of a node it is not.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What `meta.properties` of a formatted log directory says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaProperties {
    pub cluster_id: String,
    pub node_id: Option<i32>,
    pub directory_id: Option<String>,
    pub version: Option<u32>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Storage {
    Unformatted,
    /// Formatted for this cluster and node: Kafka starts on it as it is.
    Formatted(MetaProperties),
}

/// How an unformatted directory joins the quorum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Formation {
    /// One of the quorum's first controllers: `id@host:port:directory-id`, comma-separated, the
    /// same on every one of them.
    InitialControllers(String),
    /// A broker, or a controller joining a running quorum.
    Join,
}

#[derive(Debug, thiserror::Error)]
pub enum KraftError {
    #[error(
        "{dir} is formatted for cluster {found}, and this host boots cluster {expected}: Kafka is not started. \
         The directory holds another cluster's data: move it away (or wipe it) if it is not needed, \
         or boot this host with that cluster's file"
    )]
    OtherCluster { dir: PathBuf, found: String, expected: String },
    #[error(
        "{dir} is formatted for node {found} of cluster {cluster}, and this host is node {expected}: Kafka is not started. \
         The directory belongs to another node (a registry entry was lost or the disk was moved): \
         move it away, or give the host back its ID"
    )]
    OtherNode { dir: PathBuf, cluster: String, found: i32, expected: i32 },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} has no cluster.id: it is not a Kafka meta.properties file (move it away)")]
    NoClusterId { path: PathBuf },
    #[error("{path} is not a KRaft node's (version {version:?}, node.id {node_id:?}): a ZooKeeper-mode broker's directory, or a damaged one. Kafka is not started: move it away (a 3.9 cluster moves to 4.x by a fresh build and a failover, not on its disks)")]
    NotKraft { path: PathBuf, version: Option<u32>, node_id: Option<i32> },
    #[error("could not run Kafka's storage tool ({java}): {source}")]
    Spawn {
        java: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Kafka's storage tool refused to format {dir} (exit {code}): {output}")]
    Format { dir: PathBuf, code: i32, output: String },
    #[error("`{0}` is not a Kafka cluster ID: 22 characters of URL-safe base64 (16 bytes), e.g. from `kafka-storage random-uuid`")]
    BadClusterId(String),
}

/// A Kafka UUID as its tools print it: 16 bytes in URL-safe base64 without padding.
pub fn is_kafka_uuid(id: &str) -> bool {
    id.len() == 22 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        // The last character carries 2 bits of data and 4 zero bits: only these 4 decode.
        && id.bytes().last().is_some_and(|b| b"AQgw".contains(&b))
}

/// Reads `<dir>/meta.properties`; `None` when the directory is not formatted.
pub fn read_meta(dir: &Path) -> Result<Option<MetaProperties>, KraftError> {
    let path = dir.join("meta.properties");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(KraftError::Read { path, source }),
    };
    let values: BTreeMap<String, String> = crate::properties::parse_properties(&text).into_iter().collect();
    let cluster_id = values.get("cluster.id").cloned().ok_or_else(|| KraftError::NoClusterId { path: path.clone() })?;
    let node_id = values.get("node.id").and_then(|v| v.parse().ok());
    let version = values.get("version").and_then(|v| v.parse().ok());
    if version != Some(1) || node_id.is_none() {
        return Err(KraftError::NotKraft { path, version, node_id });
    }
    Ok(Some(MetaProperties { cluster_id, node_id, directory_id: values.get("directory.id").cloned(), version }))
}

/// What a boot does with this log directory: start on it, format it, or refuse.
pub fn check(dir: &Path, cluster_id: &str, node_id: i32) -> Result<Storage, KraftError> {
    let Some(meta) = read_meta(dir)? else { return Ok(Storage::Unformatted) };
    if meta.cluster_id != cluster_id {
        return Err(KraftError::OtherCluster { dir: dir.to_path_buf(), found: meta.cluster_id, expected: cluster_id.to_string() });
    }
    if let Some(found) = meta.node_id.filter(|n| *n != node_id) {
        return Err(KraftError::OtherNode { dir: dir.to_path_buf(), cluster: meta.cluster_id, found, expected: node_id });
    }
    Ok(Storage::Formatted(meta))
}

/// Kafka's storage tool, run from the same jars as the node.
#[derive(Clone, Debug)]
pub struct StorageTool {
    pub java: PathBuf,
    pub libs: PathBuf,
}

impl StorageTool {
    pub fn command(&self, properties_file: &Path, cluster_id: &str, formation: &Formation) -> Command {
        let mut cmd = Command::new(&self.java);
        cmd.args(["-Xmx256m", "-cp"])
            .arg(format!("{}/*", self.libs.display()))
            .arg("kafka.tools.StorageTool")
            .arg("format")
            .arg("--config")
            .arg(properties_file)
            .args(["--cluster-id", cluster_id]);
        match formation {
            Formation::InitialControllers(list) => cmd.args(["--initial-controllers", list]),
            Formation::Join => cmd.arg("--no-initial-controllers"),
        };
        cmd
    }

    /// A fresh Kafka UUID from the tool (`random-uuid`: never a reserved one, never starting
    /// with `-`), e.g. a controller's directory ID.
    pub fn random_uuid(&self) -> Result<String, KraftError> {
        let out = Command::new(&self.java)
            .args(["-Xmx64m", "-cp"])
            .arg(format!("{}/*", self.libs.display()))
            .args(["kafka.tools.StorageTool", "random-uuid"])
            .output()
            .map_err(|source| KraftError::Spawn { java: self.java.clone(), source })?;
        let text = String::from_utf8_lossy(&out.stdout);
        match text.lines().map(str::trim).rfind(|l| is_kafka_uuid(l)) {
            Some(id) if out.status.success() => Ok(id.to_string()),
            _ => Err(KraftError::Format {
                dir: self.libs.clone(),
                code: out.status.code().unwrap_or(-1),
                output: format!("`kafka-storage random-uuid` gave no UUID: {}{}", text.trim(), String::from_utf8_lossy(&out.stderr).trim()),
            }),
        }
    }

    /// Formats `dir` unless it is formatted for this cluster and node already; refuses one
    /// formatted for another. Returns what the directory holds afterwards.
    pub fn ensure_formatted(&self, dir: &Path, properties_file: &Path, cluster_id: &str, node_id: i32, formation: &Formation) -> Result<MetaProperties, KraftError> {
        if !is_kafka_uuid(cluster_id) {
            return Err(KraftError::BadClusterId(cluster_id.to_string()));
        }
        if let Storage::Formatted(meta) = check(dir, cluster_id, node_id)? {
            tracing::info!(dir = %dir.display(), cluster_id, node_id, directory_id = ?meta.directory_id, "log directory already formatted for this node: kept");
            return Ok(meta);
        }
        let out = self
            .command(properties_file, cluster_id, formation)
            .output()
            .map_err(|source| KraftError::Spawn { java: self.java.clone(), source })?;
        if !out.status.success() {
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            let output = text.lines().filter(|l| !l.starts_with("log4j:") && !l.trim().is_empty()).collect::<Vec<_>>().join(" / ");
            return Err(KraftError::Format { dir: dir.to_path_buf(), code: out.status.code().unwrap_or(-1), output });
        }
        let meta = read_meta(dir)?.ok_or_else(|| KraftError::Format {
            dir: dir.to_path_buf(),
            code: 0,
            output: "the tool succeeded but wrote no meta.properties there (is log.dirs this directory?)".into(),
        })?;
        tracing::info!(dir = %dir.display(), cluster_id, node_id, directory_id = ?meta.directory_id, "log directory formatted");
        Ok(meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_uuids_are_recognised() {
        assert!(is_kafka_uuid("eQvrPUjrRymCAlRuff_Z7g"));
        assert!(is_kafka_uuid("MvDxzVmcRsaTz33bUuRU6A"));
        assert!(!is_kafka_uuid("eQvrPUjrRymCAlRuff_Z7"), "21 characters");
        assert!(!is_kafka_uuid("eQvrPUjrRymCAlRuff_Z7h"), "last character carries padding bits");
        assert!(!is_kafka_uuid("eQvrPUjrRymCAlRuff/Z7g"), "not URL-safe");
    }

    #[test]
    fn a_directory_formatted_elsewhere_is_refused_naming_both() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(check(dir.path(), "eQvrPUjrRymCAlRuff_Z7g", 1).expect("unformatted"), Storage::Unformatted);
        std::fs::write(dir.path().join("meta.properties"), "#\nnode.id=4\ndirectory.id=MvDxzVmcRsaTz33bUuRU6A\nversion=1\ncluster.id=07R5amHmR32VDA6jHkGbTA\n").expect("write");
        let e = check(dir.path(), "eQvrPUjrRymCAlRuff_Z7g", 4).expect_err("other cluster");
        let text = e.to_string();
        assert!(text.contains("07R5amHmR32VDA6jHkGbTA") && text.contains("eQvrPUjrRymCAlRuff_Z7g"), "{text}");
        let e = check(dir.path(), "07R5amHmR32VDA6jHkGbTA", 5).expect_err("other node");
        assert!(matches!(e, KraftError::OtherNode { found: 4, expected: 5, .. }), "{e}");
        let Storage::Formatted(meta) = check(dir.path(), "07R5amHmR32VDA6jHkGbTA", 4).expect("ours") else { panic!("not formatted") };
        assert_eq!(meta.directory_id.as_deref(), Some("MvDxzVmcRsaTz33bUuRU6A"));
        std::fs::write(dir.path().join("meta.properties"), "version=1\n").expect("write");
        assert!(matches!(check(dir.path(), "07R5amHmR32VDA6jHkGbTA", 4), Err(KraftError::NoClusterId { .. })));
        // A ZooKeeper-mode broker's directory with the same cluster ID: not taken for a node's.
        std::fs::write(dir.path().join("meta.properties"), "version=0\nbroker.id=4\ncluster.id=07R5amHmR32VDA6jHkGbTA\n").expect("write");
        assert!(matches!(check(dir.path(), "07R5amHmR32VDA6jHkGbTA", 4), Err(KraftError::NotKraft { .. })));
    }
}
