//! The local environment's stand-ins for EC2 and Route53, shared by `kafka-bootstrap` (which reads
//! them) and whoever launches local broker hosts (the fleet manager, the test harness).
//!
//! - Local hosts: `<root>/<instance-id>/instance.json`; the folder is the host's disk.
//! - Local routes (DNS): `<root>/<record name>/<set identifier>.json`, written atomically.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocalInstanceState {
    Running,
    Terminated,
}

/// What the local provider knows of one host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalInstance {
    pub instance_id: String,
    pub availability_zone: String,
    pub state: LocalInstanceState,
    pub private_ip: String,
    /// The cluster the host was launched for (the fleet manager's tag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The broker port this host was given (local hosts share one IP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launched_ms: Option<i64>,
    /// The launch token it was made for: a launch retried with the same token finds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_token: Option<String>,
    /// KRaft: `broker` (absent), `controller` or `combined`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// A combined node's controller listener (`port` is its broker listener).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_port: Option<u16>,
    /// Runs Kafka 4.x in KRaft mode (its jars are 4.x's).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub kraft: bool,
}

pub const INSTANCE_FILE: &str = "instance.json";

pub fn instance_dir(root: &Path, instance_id: &str) -> PathBuf {
    root.join(instance_id)
}

/// `Ok(None)` when the provider has never heard of the instance (absent, not unknown).
pub fn read_instance(root: &Path, instance_id: &str) -> std::io::Result<Option<LocalInstance>> {
    let path = instance_dir(root, instance_id).join(INSTANCE_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

pub fn write_instance(root: &Path, instance: &LocalInstance) -> std::io::Result<()> {
    let dir = instance_dir(root, &instance.instance_id);
    std::fs::create_dir_all(&dir)?;
    write_atomically(&dir.join(INSTANCE_FILE), &serde_json::to_vec_pretty(instance)?)
}

/// One value set of a local DNS record. A name may hold several sets, one per writer (like
/// Route53's multivalue records with a set identifier), so brokers never overwrite each other.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalRecordSet {
    pub name: String,
    pub set_identifier: String,
    /// `host:port` values.
    pub values: Vec<String>,
}

pub fn record_dir(root: &Path, name: &str) -> PathBuf {
    root.join(name)
}

/// Every value set of `name` (empty when the name is absent), sorted by set identifier.
pub fn read_record(root: &Path, name: &str) -> std::io::Result<Vec<LocalRecordSet>> {
    let dir = record_dir(root, name);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut sets = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let bytes = std::fs::read(&path)?;
        let set: LocalRecordSet = serde_json::from_slice(&bytes)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", path.display())))?;
        sets.push(set);
    }
    sets.sort_by(|a, b| a.set_identifier.cmp(&b.set_identifier));
    Ok(sets)
}

/// Creates or replaces one value set (UPSERT).
pub fn upsert_record(root: &Path, set: &LocalRecordSet) -> std::io::Result<()> {
    let dir = record_dir(root, &set.name);
    std::fs::create_dir_all(&dir)?;
    write_atomically(&dir.join(format!("{}.json", set.set_identifier)), &serde_json::to_vec_pretty(set)?)
}

/// As [`write_atomically`], readable by the owner only (0600 from creation, never wider): for
/// files that hold a credential, such as a cluster file with its host token.
pub fn write_private_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    file.write_all(bytes)?;
    drop(file);
    std::fs::rename(&tmp, path)
}

/// Write-then-rename, so readers never see half a file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
