//! What the fleet manager knows of a cluster and decides for it: desired, observed (`Seen`:
//! unknown is not empty), intent, plan and steps. Produced by the planner, stored, and returned by
//! the API (`/v1/plan`, a cluster's status), so the CLI and clients read the same types.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::spec::{ClusterSpec, TopicSpec};

/// What was last seen of something: `Unknown` (the source could not be read) is not `Known(empty)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", tag = "state", content = "value")]
pub enum Seen<T> {
    Unknown(String),
    Known(T),
}

impl<T> Default for Seen<T> {
    fn default() -> Self {
        Seen::Unknown("not observed".into())
    }
}

impl<T> Seen<T> {
    pub fn known(&self) -> Option<&T> {
        match self {
            Seen::Known(t) => Some(t),
            Seen::Unknown(_) => None,
        }
    }

    /// Why it is unknown (`None` when known).
    pub fn reason(&self) -> Option<&str> {
        match self {
            Seen::Known(_) => None,
            Seen::Unknown(why) => Some(why),
        }
    }
}

/// Desired state of one cluster: its spec and topics, or that it is being deleted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredCluster {
    pub spec: ClusterSpec,
    pub deleting: bool,
    pub topics: Vec<DesiredTopic>,
    /// The newest store revision among the cluster and its topics.
    pub revision: i64,
    /// The cluster resource's unique ID: launch tokens start with it, so a cluster declared again
    /// under the same name never matches an old cluster's launches.
    #[serde(default)]
    pub uid: String,
    /// Brokers an operation moves replicas off: their hosts are neither replaced nor terminated
    /// while it runs; `true` once they retire (hosts terminated, DNS records removed, IDs released).
    #[serde(default)]
    pub leaving: BTreeMap<i32, bool>,
    /// Why hosts are not replaced now (a failover drains the cluster: a replacement broker would
    /// move leaders under its consumers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frozen: Option<String>,
    /// The routes that left this cluster and sealed it: its topics (the canary's and Kafka's
    /// internal ones aside) refuse writes, by `max.message.bytes=0`, until one comes back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sealed_for: Vec<String>,
    /// Brokers a rolling restart has just stopped, and which operation: missing, their hosts are
    /// not replaced (for a bounded while) since they are on their way back.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub restarting: BTreeMap<i32, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredTopic {
    pub spec: TopicSpec,
    pub deleting: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HostState {
    Pending,
    Running,
    Stopping,
    Stopped,
    Terminating,
    Terminated,
}

impl HostState {
    /// Counts toward the cluster's size (it is, or may come back as, a broker host).
    pub fn is_alive(self) -> bool {
        matches!(self, HostState::Pending | HostState::Running | HostState::Stopping | HostState::Stopped)
    }
}

/// What a host runs: ZooKeeper-mode clusters have brokers only; a KRaft cluster has
/// controllers too, or nodes that are both (combined mode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HostRole {
    #[default]
    Broker,
    Controller,
    Combined,
}

impl HostRole {
    pub fn is_broker(&self) -> bool {
        *self == HostRole::Broker
    }
    /// What messages call one.
    pub fn noun(self) -> &'static str {
        match self {
            HostRole::Broker => "broker",
            HostRole::Controller => "controller",
            HostRole::Combined => "node",
        }
    }
    /// As `kafka-bootstrap --role` and tags spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            HostRole::Broker => "broker",
            HostRole::Controller => "controller",
            HostRole::Combined => "combined",
        }
    }
    pub fn parse(s: &str) -> Option<HostRole> {
        match s {
            "broker" => Some(HostRole::Broker),
            "controller" => Some(HostRole::Controller),
            "combined" => Some(HostRole::Combined),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObservedHost {
    pub instance_id: String,
    pub availability_zone: String,
    pub state: HostState,
    pub launched_ms: i64,
    /// The launch token the host was made for (a tag on EC2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_token: Option<String>,
    /// Its private address, as the provider knows it: a broker must advertise this host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_ip: Option<String>,
    /// The broker port the provider gave it (local hosts share one address); a controller's
    /// controller listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "HostRole::is_broker")]
    pub role: HostRole,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObservedTopic {
    pub partitions: u32,
    /// The smallest replica count over its partitions.
    pub replication_factor: u16,
    pub configs: BTreeMap<String, String>,
    /// Kafka is deleting it (`/admin/delete_topics/<t>`).
    pub marked_for_deletion: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DnsRecordSet {
    pub name: String,
    pub set_identifier: String,
    /// The values it held when observed: a delete removes the set only while it still holds
    /// them (a replacement that took the node ID over may have written its own since).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// Observed state of one cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObservedCluster {
    pub at_ms: i64,
    #[schema(value_type = Object)]
    pub hosts: Seen<Vec<ObservedHost>>,
    /// Broker IDs registered in `/brokers/ids` (live brokers).
    #[schema(value_type = Object)]
    pub live_brokers: Seen<BTreeSet<i32>>,
    /// The fleet's broker-ID registry: ID -> instance holding it.
    #[schema(value_type = Object)]
    pub registry: Seen<BTreeMap<i32, String>>,
    #[schema(value_type = Object)]
    pub topics: Seen<BTreeMap<String, ObservedTopic>>,
    /// The cluster's DNS record sets (per broker).
    #[schema(value_type = Object)]
    pub dns: Seen<Vec<DnsRecordSet>>,
    /// Whether the cluster's ZooKeeper subtree (`/<root>/clusters/<c>`: ID registry, Kafka chroot)
    /// exists.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub zk_state: Seen<bool>,
    /// KRaft: the controller quorum as its leader describes it (`Unknown` in ZooKeeper mode).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub quorum: Seen<ObservedQuorum>,
}

/// A KRaft controller quorum (DescribeQuorum).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObservedQuorum {
    pub leader_id: Option<i32>,
    pub leader_epoch: i32,
    pub high_watermark: i64,
    pub voters: Vec<QuorumMember>,
    pub observers: Vec<QuorumMember>,
    /// Each controller node's current metadata directory, as its boot recorded it in the fleet's
    /// ZooKeeper (`<cluster>/kraft/formatted/<id>`, rewritten when a node formats a new one):
    /// what tells a replaced voter's old directory from the live one.
    #[serde(default)]
    pub current_directories: BTreeMap<i32, String>,
}

impl ObservedQuorum {
    /// The leader's clock as of this description: the freshest fetch time it reports (its own
    /// entry carries its current time). `None` when no member has fetched.
    pub fn clock_ms(&self) -> Option<i64> {
        self.voters.iter().chain(&self.observers).map(|m| m.last_fetch_ms).filter(|t| *t > 0).max()
    }
    /// Nodes that took part lately: the leader, and every voter or observer (brokers observe
    /// too) that fetched from it within `window_ms` of `now_ms`. A dead voter stays listed as a
    /// voter, so listing alone proves nothing.
    pub fn live_ids(&self, now_ms: i64, window_ms: i64) -> BTreeSet<i32> {
        let mut out: BTreeSet<i32> = self.leader_id.into_iter().collect();
        for m in self.voters.iter().chain(&self.observers) {
            if m.last_fetch_ms >= now_ms - window_ms {
                out.insert(m.node_id);
            }
        }
        out
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuorumMember {
    pub node_id: i32,
    /// Its metadata log directory's ID (base64url): a voter is a node ID and a directory.
    pub directory_id: String,
    pub log_end_offset: i64,
    /// When it last fetched from the leader (ms since the epoch; -1 unknown).
    pub last_fetch_ms: i64,
}


impl ObservedCluster {
    pub fn unknown(at_ms: i64, why: &str) -> Self {
        Self {
            at_ms,
            hosts: Seen::Unknown(why.into()),
            live_brokers: Seen::Unknown(why.into()),
            registry: Seen::Unknown(why.into()),
            topics: Seen::Unknown(why.into()),
            dns: Seen::Unknown(why.into()),
            zk_state: Seen::Unknown(why.into()),
            quorum: Seen::Unknown(why.into()),
        }
    }
}

/// What the planner decided earlier and must remember across passes and restarts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterIntent {
    /// Broker ID -> since when it is missing from `/brokers/ids` while its host is alive (ms).
    #[serde(default)]
    pub missing_since: BTreeMap<i32, i64>,
    /// Launches decided and not yet seen by the provider, by launch token. Persisted before the
    /// provider is called, so a launch cut off mid-call is retried with the same token (and finds
    /// its host) instead of making a second one; the zone is kept so in-flight launches count
    /// where they will land.
    #[serde(default)]
    pub launches: BTreeMap<String, LaunchIntent>,
    /// Launch tokens minted so far (a token is never used for two launches).
    #[serde(default)]
    pub launch_seq: u64,
    /// Written by versions before launch tokens (instance ID -> launch time); read once and
    /// folded into `launches`.
    #[serde(default, skip_serializing)]
    pub launched: BTreeMap<String, i64>,
}

impl ClusterIntent {
    /// Folds what older versions wrote into today's shape.
    pub fn upgraded(mut self) -> Self {
        for (instance_id, at_ms) in std::mem::take(&mut self.launched) {
            self.launches.insert(
                format!("legacy-{instance_id}"),
                LaunchIntent { availability_zone: String::new(), at_ms, instance_id: Some(instance_id), role: HostRole::Broker },
            );
        }
        self
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LaunchIntent {
    pub availability_zone: String,
    /// When the launch was decided.
    pub at_ms: i64,
    /// The host the provider answered with; `None` while no answer was received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    #[serde(default, skip_serializing_if = "HostRole::is_broker")]
    pub role: HostRole,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase", tag = "action")]
pub enum Step {
    LaunchHost {
        availability_zone: String,
        instance_type: String,
        reason: String,
        /// Idempotency token: asking again with it never makes a second host.
        token: String,
        #[serde(default, skip_serializing_if = "HostRole::is_broker")]
        role: HostRole,
    },
    TerminateHost {
        instance_id: String,
        reason: String,
    },
    CreateTopic {
        topic: String,
        partitions: u32,
        replication_factor: u16,
        configs: BTreeMap<String, String>,
        /// Explicit replicas per partition (preferred leader first), placed off brokers that are
        /// leaving (a decommission under way); `None`: Kafka places them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        assignment: Option<Vec<Vec<i32>>>,
    },
    CreatePartitions {
        topic: String,
        from: u32,
        to: u32,
        /// Explicit replicas of each new partition, as for `CreateTopic`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        assignment: Option<Vec<Vec<i32>>>,
    },
    AlterTopicConfigs {
        topic: String,
        /// The full set the topic should carry (Kafka's AlterConfigs replaces the set).
        configs: BTreeMap<String, String>,
        changed: Vec<String>,
    },
    DeleteTopic {
        topic: String,
    },
    DeleteDnsRecord {
        name: String,
        set_identifier: String,
        /// As observed: the set is left alone if it holds other values by the time the step runs.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        values: Vec<String>,
    },
    /// Every host is gone and no broker is registered: remove the cluster's ZooKeeper subtree
    /// (ID registry and Kafka chroot), so a cluster declared later under the name starts empty.
    DeleteClusterState,
    /// Every host, record and znode is gone: drop the cluster from the store.
    ForgetCluster,
    /// The topic is gone from Kafka: drop it from the store.
    ForgetTopic {
        topic: String,
    },
    /// A decommissioned broker's host is gone: its ID leaves the registry.
    ReleaseBrokerId {
        broker_id: i32,
    },
    /// KRaft: a voter whose node now runs another metadata directory (its host was replaced and
    /// the new one joined as an observer) leaves the voter set (RemoveRaftVoter).
    RemoveVoter {
        node_id: i32,
        directory_id: String,
        reason: String,
    },
    /// KRaft: a controller that joined as an observer and caught up becomes a voter
    /// (AddRaftVoter), reached at its controller listener.
    AddVoter {
        node_id: i32,
        directory_id: String,
        host: String,
        port: u16,
        reason: String,
    },
}

impl Step {
    pub fn describe(&self) -> String {
        match self {
            Step::LaunchHost { availability_zone, instance_type, reason, role, .. } => {
                format!("launch a {instance_type} {} host in {availability_zone} ({reason})", role.as_str())
            }
            Step::TerminateHost { instance_id, reason } => format!("terminate host {instance_id} ({reason})"),
            Step::CreateTopic { topic, partitions, replication_factor, .. } => {
                format!("create topic {topic} ({partitions} partitions, replication {replication_factor})")
            }
            Step::CreatePartitions { topic, from, to, .. } => format!("add partitions to {topic}: {from} -> {to}"),
            Step::AlterTopicConfigs { topic, changed, .. } => format!("set configs of {topic}: {}", changed.join(", ")),
            Step::DeleteTopic { topic } => format!("delete topic {topic}"),
            Step::DeleteDnsRecord { name, set_identifier, .. } => format!("delete DNS record {name} ({set_identifier})"),
            Step::DeleteClusterState => "delete the cluster's ZooKeeper state (ID registry, Kafka chroot)".into(),
            Step::ForgetCluster => "forget the cluster (teardown done)".into(),
            Step::ForgetTopic { topic } => format!("forget topic {topic} (deleted)"),
            Step::ReleaseBrokerId { broker_id } => format!("release node ID {broker_id} (its host retired)"),
            Step::RemoveVoter { node_id, directory_id, reason } => format!("remove voter {node_id} (directory {directory_id}) from the controller quorum ({reason})"),
            Step::AddVoter { node_id, directory_id, reason, .. } => format!("add controller {node_id} (directory {directory_id}) to the quorum's voters ({reason})"),
        }
    }
    pub fn name(&self) -> &'static str {
        match self {
            Step::LaunchHost { .. } => "launch-host",
            Step::TerminateHost { .. } => "terminate-host",
            Step::CreateTopic { .. } => "create-topic",
            Step::CreatePartitions { .. } => "create-partitions",
            Step::AlterTopicConfigs { .. } => "alter-topic-configs",
            Step::DeleteTopic { .. } => "delete-topic",
            Step::DeleteDnsRecord { .. } => "delete-dns-record",
            Step::DeleteClusterState => "delete-cluster-state",
            Step::ForgetCluster => "forget-cluster",
            Step::ForgetTopic { .. } => "forget-topic",
            Step::ReleaseBrokerId { .. } => "release-broker-id",
            Step::RemoveVoter { .. } => "remove-voter",
            Step::AddVoter { .. } => "add-voter",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub cluster: String,
    pub steps: Vec<Step>,
    /// Why some of the desired state cannot be acted on yet (e.g. brokers still booting).
    pub waiting: Vec<String>,
    /// Drift the planner will not fix by itself.
    pub warnings: Vec<String>,
    /// When something waited for can next have changed (ms from now): the end of a grace period,
    /// or a short poll while brokers boot. `None`: nothing time-bound (the periodic resync).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requeue_after_ms: Option<i64>,
    /// `brokerConfig` keys the previewed documents change, and how each reaches the running
    /// brokers (a ConfigRollout carries them once applied).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_changes: Vec<crate::operation::ConfigChange>,
}

impl Plan {
    /// Nothing to do and nothing waited for.
    pub fn converged(&self) -> bool {
        self.steps.is_empty() && self.waiting.is_empty() && self.config_changes.is_empty()
    }

    /// Look again after `ms` at the latest (the earliest of all such hints wins).
    pub fn wake_after(&mut self, ms: i64) {
        let ms = ms.max(0);
        self.requeue_after_ms = Some(self.requeue_after_ms.map_or(ms, |m| m.min(ms)));
    }
}

/// How soon to look again while waiting on progress that has no deadline (brokers booting,
/// hosts becoming visible, Kafka deleting a topic).
pub const PROGRESS_POLL_MS: i64 = 2_000;

