//! A KRaft cluster's controller quorum, formed through the fleet's ZooKeeper (the fleet's own
//! coordination service, not Kafka's: KRaft clusters keep no state there).
//!
//! `<cluster>/kraft/candidates/<node-id>`: a controller that found no quorum yet, with its
//! endpoint and the directory ID it will format with. `<cluster>/kraft/formation`: the quorum's
//! first voters, created once (an atomic create: whoever loses reads the winner's), as soon as
//! there are as many candidates as the cluster's `controllers`; the lowest node IDs win.
//!
//! - A controller listed in the formation formats with `--initial-controllers` (the list, the
//!   same on every one of them), so the first quorum is whole from its first election.
//! - A controller not listed (one added later, or replacing a lost one) formats with
//!   `--no-initial-controllers`: it starts as an observer, and the fleet manager adds it as a
//!   voter once it has caught up (dynamic quorum, `kraft.version` 1).
//! - Brokers wait for the formation and bootstrap from its voters' endpoints.

use std::time::{Duration, Instant};

use fleet_common::paths::ClusterPaths;
use fleet_common::zk::{ensure_path, FleetAcl};
use serde::{Deserialize, Serialize};
use zookeeper_client as zk;

/// One controller of the quorum's first voters (or a candidate to be one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Voter {
    pub node_id: i32,
    pub host: String,
    pub port: u16,
    pub directory_id: String,
    /// The cluster ID the candidate boots (a candidate of an earlier cluster of the same name
    /// is not counted).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster_id: String,
}

/// The quorum's first voters, as formed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Formation {
    pub cluster_id: String,
    pub voters: Vec<Voter>,
}

impl Formation {
    /// `--initial-controllers`: `id@host:port:directory-id`, comma-separated (an IPv6 host
    /// in brackets).
    pub fn initial_controllers(&self) -> String {
        self.voters.iter().map(|v| format!("{}@{}:{}:{}", v.node_id, host_for_url(&v.host), v.port, v.directory_id)).collect::<Vec<_>>().join(",")
    }

    /// `controller.quorum.bootstrap.servers`.
    pub fn bootstrap_servers(&self) -> String {
        self.voters.iter().map(|v| format!("{}:{}", host_for_url(&v.host), v.port)).collect::<Vec<_>>().join(",")
    }

    pub fn voter(&self, node_id: i32) -> Option<&Voter> {
        self.voters.iter().find(|v| v.node_id == node_id)
    }
}

fn host_for_url(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// The first `size` candidates by node ID, once there are that many.
pub fn choose(cluster_id: &str, mut candidates: Vec<Voter>, size: usize) -> Option<Formation> {
    if candidates.len() < size || size == 0 {
        return None;
    }
    candidates.sort_by_key(|v| v.node_id);
    candidates.truncate(size);
    Some(Formation { cluster_id: cluster_id.to_string(), voters: candidates })
}

#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    #[error("zookeeper operation `{op}` on {path} failed: {source}")]
    Zk {
        op: &'static str,
        path: String,
        #[source]
        source: zk::Error,
    },
    #[error("{path} does not hold a quorum formation: {source}")]
    Decode {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "the quorum of cluster {cluster} was formed for cluster ID {formed}, and this host boots cluster ID {expected}: \
         Kafka is not started (the cluster file is stale, or the cluster was declared again: remove {path} only if no node of the old one is left)"
    )]
    OtherClusterId { cluster: String, formed: String, expected: String, path: String },
    #[error("no controller quorum of cluster {cluster} after {waited:?}: {waiting}")]
    Timeout { cluster: String, waited: Duration, waiting: String },
}

fn zk_err<'a>(op: &'static str, path: &'a str) -> impl FnOnce(zk::Error) -> QuorumError + 'a {
    move |source| QuorumError::Zk { op, path: path.to_string(), source }
}

/// ZooKeeper paths of a cluster's quorum formation.
pub fn formation_path(paths: &ClusterPaths) -> String {
    format!("{}/kraft/formation", paths.base())
}

pub fn candidates_path(paths: &ClusterPaths) -> String {
    format!("{}/kraft/candidates", paths.base())
}

/// `<cluster>/kraft/formatted/<node-id>`: the directory ID a controller formatted, written
/// once it has: a listed voter whose storage is later gone is then known not to be new.
pub fn formatted_path(paths: &ClusterPaths, node_id: i32) -> String {
    paths.kraft_formatted_node(node_id)
}

/// The directory ID this controller formatted before, if it did.
pub async fn formatted_before(client: &zk::Client, paths: &ClusterPaths, node_id: i32) -> Result<Option<String>, QuorumError> {
    let path = formatted_path(paths, node_id);
    match client.get_data(&path).await {
        Ok((data, _)) => Ok(Some(String::from_utf8_lossy(&data).into_owned())),
        Err(zk::Error::NoNode) => Ok(None),
        Err(e) => Err(zk_err("get", &path)(e)),
    }
}

/// Records the directory this controller formatted (kept as it is when already recorded).
pub async fn record_formatted(client: &zk::Client, paths: &ClusterPaths, node_id: i32, directory_id: &str, acl: FleetAcl) -> Result<(), QuorumError> {
    let dir = paths.kraft_formatted();
    ensure_path(client, &dir, acl).await.map_err(zk_err("mkdir", &dir))?;
    let path = formatted_path(paths, node_id);
    let options = zk::CreateMode::Persistent.with_acls(acl.acls());
    match client.create(&path, directory_id.as_bytes(), &options).await {
        Ok(_) => Ok(()),
        Err(zk::Error::NodeExists) => {
            // A new directory (the node joined again after losing its disk): the latest counts.
            client.set_data(&path, directory_id.as_bytes(), None).await.map(|_| ()).map_err(zk_err("set", &path))
        }
        Err(e) => Err(zk_err("create", &path)(e)),
    }
}

/// The formation, if the quorum has been formed.
pub async fn read_formation(client: &zk::Client, paths: &ClusterPaths) -> Result<Option<Formation>, QuorumError> {
    let path = formation_path(paths);
    match client.get_data(&path).await {
        Ok((data, _)) => serde_json::from_slice(&data).map(Some).map_err(|source| QuorumError::Decode { path, source }),
        Err(zk::Error::NoNode) => Ok(None),
        Err(e) => Err(zk_err("get", &path)(e)),
    }
}

fn check_cluster_id(formation: Formation, cluster: &str, cluster_id: &str, paths: &ClusterPaths) -> Result<Formation, QuorumError> {
    if formation.cluster_id != cluster_id {
        return Err(QuorumError::OtherClusterId {
            cluster: cluster.to_string(),
            formed: formation.cluster_id,
            expected: cluster_id.to_string(),
            path: formation_path(paths),
        });
    }
    Ok(formation)
}

/// A controller's part: the formation, joining the candidates (as `me`) until there is one.
/// `directory_id` of `me` is used only if this controller ends up among the first voters.
pub async fn form(
    client: &zk::Client,
    paths: &ClusterPaths,
    cluster: &str,
    kraft: &crate::cluster_file::KraftConfig,
    me: &Voter,
    acl: FleetAcl,
    within: Duration,
) -> Result<Formation, QuorumError> {
    let (cluster_id, size) = (kraft.cluster_id.as_str(), kraft.controllers);
    let started = Instant::now();
    let mut logged = 0;
    let mut registered = false;
    loop {
        match form_step(client, paths, cluster_id, size, me, acl, &mut registered).await {
            Ok(Step::Formed(f)) => return check_cluster_id(f, cluster, cluster_id, paths),
            Ok(Step::Waiting(have)) => {
                if started.elapsed() >= within {
                    let ids: Vec<String> = have.iter().map(i32::to_string).collect();
                    return Err(QuorumError::Timeout {
                        cluster: cluster.to_string(),
                        waited: within,
                        waiting: format!("{} of {size} controllers are up (nodes {}): start the others", have.len(), ids.join(", ")),
                    });
                }
                let secs = started.elapsed().as_secs();
                if secs / 10 > logged {
                    logged = secs / 10;
                    tracing::info!(have = have.len(), want = size, "waiting for the cluster's first controllers to form the quorum");
                }
            }
            // ZooKeeper slow or reconnecting (a host booting under load): asked again, until
            // the deadline.
            Err(e @ QuorumError::Zk { .. }) if started.elapsed() < within => tracing::warn!(error = %e, "quorum formation: retrying"),
            Err(e) => return Err(e),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

enum Step {
    Formed(Formation),
    /// Node IDs of the candidates so far.
    Waiting(Vec<i32>),
}

/// One look at the formation: registers `me` as a candidate (once), and forms the quorum when
/// there are enough candidates.
async fn form_step(client: &zk::Client, paths: &ClusterPaths, cluster_id: &str, size: usize, me: &Voter, acl: FleetAcl, registered: &mut bool) -> Result<Step, QuorumError> {
    if let Some(f) = read_formation(client, paths).await? {
        return Ok(Step::Formed(f));
    }
    let dir = candidates_path(paths);
    let options = zk::CreateMode::Persistent.with_acls(acl.acls());
    if !*registered {
        ensure_path(client, &dir, acl).await.map_err(zk_err("mkdir", &dir))?;
        let mine = format!("{dir}/{}", me.node_id);
        let me = Voter { cluster_id: cluster_id.to_string(), ..me.clone() };
        let data = serde_json::to_vec(&me).unwrap_or_default();
        // Ephemeral: a host that dies before the quorum forms stops being a candidate with its
        // session, so the quorum is never formed around a voter that will not come.
        let ephemeral = zk::CreateMode::Ephemeral.with_acls(acl.acls());
        match client.create(&mine, &data, &ephemeral).await {
            Ok(_) => *registered = true,
            // An earlier boot of this node whose session has not expired yet: replaced by this
            // boot's (no formation lists either yet).
            Err(zk::Error::NodeExists) => {
                let _ = client.delete(&mine, None).await;
                return Ok(Step::Waiting(Vec::new()));
            }
            Err(e) => return Err(zk_err("create", &mine)(e)),
        }
    }
    let names = client.list_children(&dir).await.map_err(zk_err("list", &dir))?;
    let mut candidates = Vec::new();
    for name in &names {
        let path = format!("{dir}/{name}");
        match client.get_data(&path).await {
            Ok((data, _)) => candidates.extend(serde_json::from_slice::<Voter>(&data).ok().filter(|v| v.cluster_id == cluster_id)),
            Err(zk::Error::NoNode) => {}
            Err(e) => return Err(zk_err("get", &path)(e)),
        }
    }
    let have = candidates.iter().map(|c| c.node_id).collect();
    let Some(f) = choose(cluster_id, candidates, size) else { return Ok(Step::Waiting(have)) };
    let path = formation_path(paths);
    let data = serde_json::to_vec(&f).unwrap_or_default();
    match client.create(&path, &data, &options).await {
        Ok(_) => {
            tracing::info!(voters = %f.initial_controllers(), "controller quorum formed");
            Ok(Step::Formed(f))
        }
        // Another controller formed it first: its formation is the one.
        Err(zk::Error::NodeExists) => Ok(read_formation(client, paths).await?.map_or(Step::Waiting(have), Step::Formed)),
        Err(e) => Err(zk_err("create", &path)(e)),
    }
}

/// A broker's part: waits for the quorum's formation.
pub async fn wait_formation(client: &zk::Client, paths: &ClusterPaths, cluster: &str, cluster_id: &str, within: Duration) -> Result<Formation, QuorumError> {
    let started = Instant::now();
    loop {
        match read_formation(client, paths).await {
            Ok(Some(f)) => return check_cluster_id(f, cluster, cluster_id, paths),
            Ok(None) => {}
            Err(e @ QuorumError::Zk { .. }) if started.elapsed() < within => tracing::warn!(error = %e, "waiting for the quorum's formation: retrying"),
            Err(e) => return Err(e),
        }
        if started.elapsed() >= within {
            return Err(QuorumError::Timeout {
                cluster: cluster.to_string(),
                waited: within,
                waiting: "the cluster's first controllers have not formed the quorum yet: start them".into(),
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voter(id: i32) -> Voter {
        Voter { node_id: id, host: "10.0.0.1".into(), port: 9093, directory_id: format!("dir{id}"), cluster_id: "c".into() }
    }

    #[test]
    fn the_lowest_node_ids_form_the_quorum_once_there_are_enough() {
        assert_eq!(choose("c", vec![voter(4), voter(2)], 3), None);
        let f = choose("c", vec![voter(7), voter(2), voter(4), voter(3)], 3).expect("formed");
        assert_eq!(f.voters.iter().map(|v| v.node_id).collect::<Vec<_>>(), vec![2, 3, 4]);
        assert_eq!(f.initial_controllers(), "2@10.0.0.1:9093:dir2,3@10.0.0.1:9093:dir3,4@10.0.0.1:9093:dir4");
        assert_eq!(f.bootstrap_servers(), "10.0.0.1:9093,10.0.0.1:9093,10.0.0.1:9093");
        assert!(f.voter(3).is_some() && f.voter(7).is_none());
        let v6 = Formation { cluster_id: "c".into(), voters: vec![Voter { node_id: 1, host: "fd00::1".into(), port: 9093, directory_id: "d".into(), cluster_id: "c".into() }] };
        assert_eq!(v6.bootstrap_servers(), "[fd00::1]:9093");
        assert_eq!(v6.initial_controllers(), "1@[fd00::1]:9093:d");
    }
}
