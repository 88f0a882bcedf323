//! Operations as resources (after Strimzi's `KafkaRebalance`): a request is stored, and the
//! leader advances its `status.phase` from what it observes until it ends in `Succeeded`,
//! `Failed` or `Cancelled`. Stored in the source of truth, so a restarted or new leader resumes it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::spec::PriorityClass;

/// `POST /v1/operations`: what the user asked for, as written (checked by the fleet manager).
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScaleUpRequest {
    pub cluster: String,
    /// The cluster's broker count afterwards (above today's).
    pub brokers: i64,
    /// `all` (default), or topic names. Exclusive with `class`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topics: Option<Vec<String>>,
    /// Only the topics of this priority class (low, medium, high).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// Partitions to add to each topic (default: keep partitions per broker as they were).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions_per_topic: Option<i64>,
    /// Let named keyed topics be scaled (their keys move to other partitions).
    #[serde(default)]
    pub allow_keyed: bool,
    /// Split a commit larger than ZooKeeper's jute.maxbuffer into several (no longer atomic).
    #[serde(default)]
    pub allow_split: bool,
    /// Stop once the plan is made (`ProposalReady`) until approved.
    #[serde(default)]
    pub hold: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", tag = "type", content = "value")]
pub enum TopicSelection {
    All,
    Names(Vec<String>),
    Class(PriorityClass),
}

/// A checked scale-up: what the operation will do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaleUpSpec {
    /// The cluster's brokers when the operation was asked for.
    pub from_brokers: u32,
    pub brokers: u32,
    pub selection: TopicSelection,
    /// The topics chosen when the operation was created.
    pub topics: Vec<String>,
    /// Declared topics left out, and why (keyed, another class, internal).
    pub skipped: Vec<SkippedTopic>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions_per_topic: Option<u32>,
    pub allow_keyed: bool,
    pub allow_split: bool,
    pub hold: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SkippedTopic {
    pub topic: String,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum OperationSpec {
    ScaleUp(ScaleUpSpec),
}

impl OperationSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            OperationSpec::ScaleUp(_) => "ScaleUp",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Phase {
    /// Stored; the cluster's broker count is raised first.
    Pending,
    /// The new brokers are booting.
    WaitingForBrokers,
    /// The plan is made and held for approval (`fleetctl approve operation`).
    ProposalReady,
    /// The plan is being written to ZooKeeper in one multi.
    Committing,
    /// Committed: waiting until every new partition has a leader.
    WaitingForLeaders,
    /// Writing the new partition counts into the topics' specs.
    RecordingSpecs,
    Succeeded,
    Failed,
    Cancelled,
}

impl Phase {
    pub fn is_terminal(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed | Phase::Cancelled)
    }
    /// Before anything was written to Kafka: cancelling leaves the topics as they were.
    pub fn cancellable(self) -> bool {
        matches!(self, Phase::Pending | Phase::WaitingForBrokers | Phase::ProposalReady)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::WaitingForBrokers => "WaitingForBrokers",
            Phase::ProposalReady => "ProposalReady",
            Phase::Committing => "Committing",
            Phase::WaitingForLeaders => "WaitingForLeaders",
            Phase::RecordingSpecs => "RecordingSpecs",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
            Phase::Cancelled => "Cancelled",
        }
    }
}

/// New partitions of one topic, placed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicPlacement {
    pub topic: String,
    /// The topic znode's version the plan was made from: the commit is refused if it moved.
    pub version: i32,
    pub from: u32,
    pub to: u32,
    pub replication_factor: u16,
    /// Partition -> replicas, preferred leader first.
    pub new_partitions: BTreeMap<u32, Vec<i32>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlacementPlan {
    pub topics: Vec<TopicPlacement>,
    /// The brokers new partitions go to (leaders always; followers too when there are at least
    /// as many as the replication factor).
    pub new_brokers: Vec<i32>,
    /// Broker -> rack, as registered.
    pub racks: BTreeMap<i32, String>,
    /// New partitions led by each broker, and replicas on each, over the whole batch.
    pub leaders_per_broker: BTreeMap<i32, u32>,
    pub replicas_per_broker: BTreeMap<i32, u32>,
    /// Bytes of the ZooKeeper multi(s).
    pub commit_bytes: usize,
    /// ZooKeeper multis the commit takes: 1 unless splitting was allowed and needed.
    pub commits: usize,
    /// Made for brokers that do not exist yet (a dry run before the scale-up): IDs and racks are
    /// what the fleet manager expects them to get.
    #[serde(default)]
    pub predicted: bool,
}

impl PlacementPlan {
    pub fn new_partition_count(&self) -> usize {
        self.topics.iter().map(|t| t.new_partitions.len()).sum()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhaseChange {
    pub phase: Phase,
    pub at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperationStatus {
    pub phase: Phase,
    /// Why it waits, what failed, or how it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Live brokers when the operation started acting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brokers_before: Option<Vec<i32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlacementPlan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed_at_ms: Option<i64>,
    /// How long the ZooKeeper commit took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_millis: Option<u64>,
    /// From the commit until every new partition had a leader in its ISR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaders_millis: Option<u64>,
    /// New partitions with a leader, of all new partitions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    pub history: Vec<PhaseChange>,
}

impl OperationStatus {
    pub fn new(at_ms: i64) -> Self {
        Self {
            phase: Phase::Pending,
            message: None,
            brokers_before: None,
            plan: None,
            committed_at_ms: None,
            commit_millis: None,
            leaders_millis: None,
            progress: None,
            history: vec![PhaseChange { phase: Phase::Pending, at_ms, message: None }],
        }
    }

    /// Moves to `phase` (recorded in the history once).
    pub fn enter(&mut self, phase: Phase, at_ms: i64, message: Option<String>) {
        if self.phase != phase {
            self.history.push(PhaseChange { phase, at_ms, message: message.clone() });
        }
        self.phase = phase;
        self.message = message;
    }

    pub fn since_ms(&self) -> i64 {
        self.history.last().map(|h| h.at_ms).unwrap_or(0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub done: u64,
    pub total: u64,
}

/// One operation as stored and served.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    pub id: String,
    pub cluster: String,
    pub spec: OperationSpec,
    pub status: OperationStatus,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub created_by: String,
    /// One-shot commands (Strimzi's annotations): acted on by the leader.
    #[serde(default)]
    pub approved: bool,
    #[serde(default)]
    pub cancel_requested: bool,
}

/// The answer to `POST /v1/operations`: the stored operation, or with `dryRun` the plan it would
/// make, nothing written.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperationResponse {
    pub dry_run: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<Operation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<OperationSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlacementPlan>,
    /// Why the dry run's plan could not be made (ZooKeeper unreachable, a topic refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_error: Option<String>,
}
