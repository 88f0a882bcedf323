//! Reading the fleet's broker-ID registry (`/<root>/clusters/<c>/broker-ids/<id>`): written by
//! `kafka-bootstrap` under its lock, read by the fleet manager and the healthcheck.

use std::collections::BTreeMap;

use zookeeper_client as zk;

use crate::paths::ClusterPaths;
use crate::znodes::{self, BrokerIdLease};

/// One registry entry as read, with its znode version for a conditional rewrite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryEntry {
    pub lease: BrokerIdLease,
    pub version: i32,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("zookeeper operation `{op}` on {path} failed: {source}")]
    Zk {
        op: &'static str,
        path: String,
        #[source]
        source: zk::Error,
    },
    #[error(transparent)]
    Decode(#[from] znodes::ZnodeDecodeError),
}

impl RegistryError {
    /// The ZooKeeper error behind it, if any (for retry decisions).
    pub fn zk_error(&self) -> Option<&zk::Error> {
        match self {
            RegistryError::Zk { source, .. } => Some(source),
            RegistryError::Decode(_) => None,
        }
    }
}

/// Reads the registry (pipelined: one multi-read for every entry). A registry that does not
/// exist yet is empty.
pub async fn read_registry(client: &zk::Client, paths: &ClusterPaths) -> Result<BTreeMap<i32, RegistryEntry>, RegistryError> {
    let dir = paths.broker_ids();
    let children = match client.list_children(&dir).await {
        Ok(c) => c,
        Err(zk::Error::NoNode) => return Ok(BTreeMap::new()),
        Err(source) => return Err(RegistryError::Zk { op: "list", path: dir, source }),
    };
    let ids: Vec<i32> = children.iter().filter_map(|c| c.parse().ok()).collect();
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut reader = client.new_multi_reader();
    for id in &ids {
        let path = paths.broker_id(*id);
        reader.add_get_data(&path).map_err(|source| RegistryError::Zk { op: "multi-read", path: path.clone(), source })?;
    }
    let results = reader.commit().await.map_err(|source| RegistryError::Zk { op: "multi-read", path: dir.clone(), source })?;
    let mut registry = BTreeMap::new();
    for (id, result) in ids.into_iter().zip(results) {
        if let zk::MultiReadResult::Data { data, stat } = result {
            let path = paths.broker_id(id);
            let lease: BrokerIdLease = znodes::decode(&path, "a broker-ID lease", &data)?;
            registry.insert(id, RegistryEntry { lease, version: stat.version });
        }
    }
    Ok(registry)
}
