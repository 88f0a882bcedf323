//! What the fleet manager's HTTP API sends and receives, beyond the spec documents themselves:
//! shared by the server, `fleetctl` and the client library, so none of them reads untyped JSON.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::model::{DnsRecordSet, ObservedHost, ObservedTopic, Plan, Seen, Step};
use crate::spec::{ClusterSpec, Kind, RawDocument, TopicSpec};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApplyOutcome {
    Created,
    Configured,
    Unchanged,
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplyResult {
    pub kind: Kind,
    pub name: String,
    /// The cluster the resource belongs to (itself, for a cluster).
    pub cluster: String,
    pub outcome: ApplyOutcome,
    pub generation: i64,
    pub revision: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplyResponse {
    pub dry_run: bool,
    pub results: Vec<ApplyResult>,
    /// Per cluster, the revision the controller must have converged on for this apply to be done
    /// (`status.observedRevision >= revisions[cluster]`).
    pub revisions: BTreeMap<String, i64>,
    /// Operations the apply started (lowering a cluster's brokers starts a decommission).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<String>,
}

/// An entry of the append-only journal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JournalEntry {
    pub id: i64,
    pub at_ms: i64,
    /// Who: `reconciler@<instance>` or `api:<token name>`.
    pub actor: String,
    pub cluster: String,
    pub action: String,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    /// `ok`, `error` or `info`.
    pub outcome: String,
    pub message: String,
}

/// Every error the API returns.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A stable code: `invalid`, `conflict`, `not-found`, `unauthorized`, ...
    pub error: String,
    pub message: String,
    /// The field at fault (`spec.brokers`), when one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    pub status: String,
    pub leader: bool,
    pub identity: String,
    pub revision: i64,
}

/// Whether trying again can help: told from the provider's, Kafka's or ZooKeeper's error codes,
/// not from message text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ErrorClass {
    /// Throttling, capacity, time-outs, the service or the network: back off and retry.
    Retryable,
    /// The request itself is wrong (an image that does not exist, no permission): retrying the
    /// same request cannot succeed; it waits for the spec (or the fleet manager's config) to change.
    Terminal,
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepResult {
    pub step: Step,
    pub ok: bool,
    pub message: String,
    pub millis: u64,
    /// For a failed step: whether a retry can help.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_class: Option<ErrorClass>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BrokersStatus {
    pub desired: u32,
    #[schema(value_type = Object)]
    pub live: Seen<BTreeSet<i32>>,
    /// The fleet's broker-ID registry: ID -> instance holding it.
    #[schema(value_type = Object)]
    pub registry: Seen<BTreeMap<i32, String>>,
}

/// A cluster's status (`fleetctl describe`): what the controller last saw and concluded.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct ClusterStatus {
    /// `Converged`, `Progressing`, `Degraded`, `Deleting` or `Failed`.
    pub phase: String,
    pub converged: bool,
    /// The store revision the cluster last converged on.
    pub observed_revision: i64,
    pub desired_revision: i64,
    pub at_ms: i64,
    pub reconciled_by: String,
    /// Why the controller is not acting on the cluster (phase `Failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub brokers: BrokersStatus,
    /// Live hosts; absent while the provider could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Vec<ObservedHost>>,
    #[schema(value_type = Object)]
    pub topics: Seen<BTreeMap<String, ObservedTopic>>,
    #[schema(value_type = Object)]
    pub dns: Seen<Vec<DnsRecordSet>>,
    /// KRaft clusters: the controller quorum (absent in ZooKeeper mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub quorum: Option<Seen<crate::model::ObservedQuorum>>,
    /// KRaft clusters: the Kafka cluster ID (the one its storage is formatted with).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka_cluster_id: Option<String>,
    pub plan: Plan,
    pub last_steps: Vec<StepResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requeue_after_ms: Option<i64>,
}

/// The effective spec of a resource: defaults filled in from the priority class.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum EffectiveSpec {
    Cluster(ClusterSpec),
    Topic(TopicSpec),
}

/// A resource as the API shows it: the declared document, bookkeeping, and (for clusters) status.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceView {
    pub kind: Kind,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    pub generation: i64,
    pub revision: i64,
    pub uid: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub deleting: bool,
    /// The document as the user declared it.
    #[schema(value_type = Object)]
    pub document: RawDocument,
    /// Values operations set in place of the document's (the fleet works from these): write
    /// them into your document to catch up (`fleetctl get -o yaml` prints it that way).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<crate::spec::SpecOverride>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective: Option<EffectiveSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ClusterStatus>,
    /// Routes: where the traffic is, the standby, the last move and the clients per cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_status: Option<crate::route::RouteStatus>,
    /// Routes: automation stopped by an operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<crate::route::Hold>,
    /// Routes with a failover policy: each condition, its last value and how long it has held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggers: Option<crate::route::TriggerState>,
    /// A topic read on its own (`GET /v1/clusters/{c}/topics/{t}`): its partitions, leaders and
    /// in-sync replicas as Kafka's controller has them now (unknown, with why, when ZooKeeper
    /// could not be read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub partitions: Option<crate::model::Seen<Vec<PartitionView>>>,
}

/// One partition of a topic as Kafka's controller last wrote it (`describe topic`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartitionView {
    pub partition: u32,
    /// -1: no leader (offline).
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

/// The answer to a delete: the store revision of the change.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeleteResponse {
    pub revision: i64,
    /// Only checked (`?dryRun=true`): nothing was written.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}
