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
    #[schema(pattern = "^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")]
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

/// `POST /v1/operations/decommission`: brokers to empty and retire, as written.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DecommissionRequest {
    #[schema(pattern = "^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")]
    pub cluster: String,
    /// Broker IDs that leave. Exclusive with `count`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brokers: Option<Vec<i64>>,
    /// How many brokers leave, the highest IDs first (what lowering `spec.brokers` asks for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
    #[serde(flatten)]
    pub pace: PaceRequest,
}

/// `POST /v1/operations/rebalance`: spread replicas and leaders evenly over every broker.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RebalanceRequest {
    #[schema(pattern = "^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")]
    pub cluster: String,
    #[serde(flatten)]
    pub pace: PaceRequest,
}

/// How fast replicas move, as written.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaceRequest {
    /// Replication throttle per broker, e.g. `10MiB/s` (none: unthrottled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<String>,
    /// Moves in flight touching any one broker (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_moves_per_broker: Option<i64>,
    /// Moves in flight cluster-wide (default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_moves: Option<i64>,
    /// Stop once the plan is made (`ProposalReady`) until approved.
    #[serde(default)]
    pub hold: bool,
}

/// A checked decommission or rebalance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MoveSpec {
    /// Brokers that leave (empty for a rebalance).
    pub leaving: Vec<i32>,
    /// The cluster's broker count when the operation was asked for.
    pub from_brokers: u32,
    /// Bytes/s per broker for replication while moving; `None`: unthrottled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle_bytes: Option<u64>,
    pub max_moves_per_broker: u32,
    pub max_moves: u32,
    pub hold: bool,
}

/// `POST /v1/operations/failover`: move a route's producers (and then consumers) to another
/// cluster, a standby named with `to` or, by default, a fresh build of the route's cluster.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FailoverRequest {
    #[schema(pattern = "^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")]
    pub route: String,
    /// A standby cluster, declared and healthy. Exclusive with `build`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")]
    pub to: Option<String>,
    /// Build a fresh, immutable clone of the route's cluster (the default without `to`).
    #[serde(default)]
    pub build: bool,
    /// Brokers added to the clone (sized up for the traffic it takes over).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_up: Option<i64>,
    #[serde(flatten)]
    pub pace: SwitchRequest,
}

/// `POST /v1/operations/fallback`: the same machine back to the route's standby (the original
/// cluster), or with `rebuild` to a fresh build of it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FallbackRequest {
    #[schema(pattern = "^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")]
    pub route: String,
    /// Replace the original by a fresh build instead of returning to it.
    #[serde(default)]
    pub rebuild: bool,
    #[serde(flatten)]
    pub pace: SwitchRequest,
}

/// How long a switch waits for clients, and why it is made.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SwitchRequest {
    /// Seconds producers get to report the new cluster, then consumers to report the old one
    /// drained; stragglers are named and the operation goes on (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 3600)]
    pub deadline_secs: Option<i64>,
    /// Why (recorded with the move).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^[^\u0000-\u001f\u007f-\u009f]{0,200}$")]
    pub reason: Option<String>,
    /// Check the request (every guard rail) and answer the operation that would be made,
    /// without making it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

/// A fresh cluster a failover builds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuildSpec {
    /// The cluster cloned (version, zones, class, instance type, broker configs).
    pub source: String,
    pub brokers: u32,
}

/// A checked failover or fallback.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailoverSpec {
    pub route: String,
    /// The cluster the route leaves (where it was when asked).
    pub from: String,
    /// The cluster it goes to when named (a standby); `None` with `build`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildSpec>,
    pub deadline_ms: u64,
    pub reason: String,
    /// What the cluster left by a fallback becomes.
    pub retain: crate::route::Retain,
    /// A fallback with `rebuild`: the original it replaces (torn down afterwards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
    /// The route's status when asked: restored if the operation fails or is cancelled.
    pub prior: crate::route::RouteStatus,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum OperationSpec {
    ScaleUp(ScaleUpSpec),
    Decommission(MoveSpec),
    Rebalance(MoveSpec),
    Failover(FailoverSpec),
    Fallback(FailoverSpec),
    ConfigRollout(RolloutSpec),
}

/// `POST /v1/operations/roll`: restart every broker of a cluster, one at a time, with no change.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RollRequest {
    #[schema(pattern = "^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")]
    pub cluster: String,
    /// Why (kept in the operation and the journal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// How a change of one broker config reaches the running brokers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum ConfigEffect {
    /// Set once for every broker through the Admin API (`--entity-default`), read back from each.
    ClusterWide,
    /// Set on each broker through the Admin API (`--entity-name <id>`), read back from each.
    PerBroker,
    /// Read by Kafka at start only (or removed from the brokers' boot file): a rolling restart.
    Restart,
}

impl ConfigEffect {
    pub fn describe(self) -> &'static str {
        match self {
            ConfigEffect::ClusterWide => "at once, cluster-wide (Admin API)",
            ConfigEffect::PerBroker => "at once, per broker (Admin API)",
            ConfigEffect::Restart => "rolling restart",
        }
    }
}

/// One broker config key changed (`None`: not set). Password values are never shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigChange {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    pub effect: ConfigEffect,
    /// What else decides the value (a key set in other units that this one takes over from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A change of a cluster's `brokerConfig` carried to its running brokers, or a restart alone.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutSpec {
    pub changes: Vec<ConfigChange>,
    /// Every broker is restarted, one at a time (a key needs it, or `fleetctl roll` asked).
    pub restart: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ConfigEffect {
    /// How a change of `key` to `to` reaches the running brokers (Kafka's dynamic update mode).
    pub fn of(key: &str, to: Option<&str>) -> Self {
        use fleet_common::kafka_config::{self, ConfigType, UpdateMode};
        if to.is_none() || kafka_config::key_type(key) == Some(ConfigType::Password) {
            // A removed key stays in the running brokers' boot files; a password is never sent
            // through the Admin API (Kafka would need its password encoder secret).
            return ConfigEffect::Restart;
        }
        match kafka_config::update_mode(key) {
            Some(UpdateMode::ClusterWide) => ConfigEffect::ClusterWide,
            Some(UpdateMode::PerBroker) => ConfigEffect::PerBroker,
            _ => ConfigEffect::Restart,
        }
    }
}

/// Kafka reads `x.ms` before `x.minutes` before `x.hours` (`log.retention.*`, `log.roll.*`): a
/// change of one while another is set says which value applied until now, and which applies next.
fn unit_siblings(key: &str, was: &BTreeMap<String, String>, now: &BTreeMap<String, String>) -> Option<String> {
    const UNITS: [&str; 3] = ["ms", "minutes", "hours"];
    let (stem, unit) = key.rsplit_once('.')?;
    let rank = UNITS.iter().position(|u| *u == unit)?;
    let set_in = |m: &BTreeMap<String, String>| UNITS.iter().enumerate().find_map(|(i, u)| m.get(&format!("{stem}.{u}")).map(|v| (i, format!("{stem}.{u}={v}"))));
    let before = set_in(was).filter(|(i, _)| *i != rank || !was.contains_key(key));
    let after = set_in(now);
    match (before, after) {
        (Some((_, b)), Some((_, a))) if a != b => Some(format!("{b} applied until now; {a} applies next (Kafka reads .ms, then .minutes, then .hours)")),
        (Some((_, b)), None) => Some(format!("{b} applied until now; Kafka's default applies next")),
        _ => None,
    }
}

impl RolloutSpec {
    /// The rollout that carries `was` -> `now` (effective `brokerConfig`s) to the brokers;
    /// `None` when nothing changed. Password values are never written into it.
    pub fn between(was: &BTreeMap<String, String>, now: &BTreeMap<String, String>) -> Option<Self> {
        use fleet_common::kafka_config::{self, ConfigType};
        let shown = |k: &str, v: Option<&String>| -> Option<String> {
            v.map(|v| if kafka_config::key_type(k) == Some(ConfigType::Password) { crate::spec::HIDDEN_VALUE.to_string() } else { v.clone() })
        };
        let keys: std::collections::BTreeSet<&String> = was.keys().chain(now.keys()).collect();
        let changes: Vec<ConfigChange> = keys
            .into_iter()
            .filter(|k| was.get(*k) != now.get(*k))
            .map(|k| ConfigChange {
                key: k.clone(),
                from: shown(k, was.get(k)),
                to: shown(k, now.get(k)),
                effect: ConfigEffect::of(k, now.get(k).map(String::as_str)),
                note: unit_siblings(k, was, now),
            })
            .collect();
        if changes.is_empty() {
            return None;
        }
        let restart = changes.iter().any(|c| c.effect == ConfigEffect::Restart);
        Some(Self { changes, restart, reason: None })
    }

    /// The keys set or removed through the Admin API (the dynamic ones, and dynamic defaults
    /// a removed key must not leave behind).
    pub fn dynamic(&self) -> impl Iterator<Item = &ConfigChange> {
        self.changes.iter().filter(|c| c.effect != ConfigEffect::Restart)
    }
}

/// A rolling restart's progress (the restarts are told apart by registration: a broker whose
/// `/brokers/ids` znode is newer than the one recorded when the roll began has restarted since,
/// by this operation or otherwise, and booted with the new properties).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RollStatus {
    /// Broker -> the czxid of its registration when the roll began.
    pub registrations: BTreeMap<i32, i64>,
    /// Brokers restarted, in order.
    pub restarted: Vec<i32>,
    /// The broker being restarted now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<i32>,
    /// When the current broker's restart was first asked for, and how many times it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
    /// Milliseconds from each restart's request until the broker was back and in sync.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub millis: BTreeMap<i32, u64>,
    /// The health finding that holds the next restart back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_by: Option<String>,
    /// Configuring: when the dynamic keys were last written, and how many times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configured_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub configure_attempts: u32,
    /// Partitions whose replication factor is at or below their `min.insync.replicas` (found
    /// when the roll began): acks=all writes to each fail while one of its brokers restarts, in
    /// whatever order the roll goes. At most 20 named.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unprotected: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unprotected_count: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl OperationSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            OperationSpec::ScaleUp(_) => "ScaleUp",
            OperationSpec::Decommission(_) => "Decommission",
            OperationSpec::Rebalance(_) => "Rebalance",
            OperationSpec::Failover(_) => "Failover",
            OperationSpec::Fallback(_) => "Fallback",
            OperationSpec::ConfigRollout(_) => "ConfigRollout",
        }
    }
    /// The route a failover or fallback moves.
    pub fn route(&self) -> Option<&str> {
        match self {
            OperationSpec::Failover(s) | OperationSpec::Fallback(s) => Some(&s.route),
            _ => None,
        }
    }
}

/// One partition's replicas before and after (preferred leader first).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartitionMove {
    pub topic: String,
    pub partition: u32,
    pub from: Vec<i32>,
    pub to: Vec<i32>,
    /// Bytes of the partition on its leader when planned (0 when unknown).
    #[serde(default)]
    pub bytes: u64,
}

/// The moves of a decommission or rebalance, in the order they run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MovePlan {
    pub moves: Vec<PartitionMove>,
    /// Moves per batch, in order: a batch starts when the previous one is done.
    pub batches: Vec<u32>,
    /// Broker -> rack, as registered.
    pub racks: BTreeMap<i32, String>,
    /// Replicas per broker before and after, and preferred leaders after.
    pub replicas_before: BTreeMap<i32, u32>,
    pub replicas_after: BTreeMap<i32, u32>,
    pub leaders_before: BTreeMap<i32, u32>,
    pub leaders_after: BTreeMap<i32, u32>,
    /// Partitions whose leader leaves, moved first by reordering and a preferred-leader election.
    pub leaders_to_move: u32,
}

/// The replication throttles an operation may have set (written before it sets them, so a crash
/// leaves a record of what to clear).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThrottleSet {
    /// Bytes/s, as `leader.`/`follower.replication.throttled.rate` on each broker listed.
    pub rate: u64,
    pub brokers: Vec<i32>,
    /// Topic -> entries `partition:broker` of `leader.replication.throttled.replicas` and
    /// `follower.replication.throttled.replicas`.
    pub topics: BTreeMap<String, TopicThrottle>,
    /// The rates each broker had before this operation set its own (an operator's throttle):
    /// recorded before the first write, put back when the operation lets go, never removed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub prior: BTreeMap<i32, PriorRates>,
}

/// A broker's throttle rates as found before an operation changed them (`None`: not set).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PriorRates {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follower: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicThrottle {
    pub leader: Vec<String>,
    pub follower: Vec<String>,
}

impl ThrottleSet {
    /// Nothing held (the priors are bookkeeping for what is held).
    pub fn is_empty(&self) -> bool {
        self.brokers.is_empty() && self.topics.is_empty()
    }

    /// The same throttles in Kafka (rate, brokers, replicas), whatever priors are recorded.
    pub fn holds_same(&self, other: &ThrottleSet) -> bool {
        self.rate == other.rate && self.brokers == other.brokers && self.topics == other.topics
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
    /// Leadership leaves the leaving brokers: replicas reordered, then a preferred-leader election.
    MovingLeaders,
    /// Replicas move batch by batch, each under replication throttles set before it starts.
    Moving,
    /// Moved partitions get their preferred leader.
    ElectingLeaders,
    /// Confirming from ZooKeeper that the leaving brokers hold nothing.
    Verifying,
    /// The leaving brokers' hosts are terminated, their DNS records removed, their IDs released.
    Retiring,
    /// Clearing every throttle the operation set, before it ends (cancelled or failed) or pauses.
    CleaningUp,
    /// Stepped aside for a failover or fallback of a route on its cluster (`pausedBy`): nothing
    /// of it runs; it plans again from what it observes once that has ended.
    Paused,
    /// A failover's fresh cluster is declared and being built.
    Building,
    /// The route's topics (and the canary topic) are declared on the cluster it goes to.
    Preparing,
    /// The route's binding points at the new cluster: waiting for every producer to report it
    /// and its link to the old cluster empty.
    SwitchingProducers,
    /// The old cluster's topics are closed to the route's writes (`max.message.bytes=0`): waiting
    /// until every broker of it refuses them.
    Sealing,
    /// Waiting for every consumer to report the old cluster drained.
    DrainingConsumers,
    /// Dynamic broker configs are written through the Admin API and read back from every broker.
    Configuring,
    /// Brokers restart one at a time (controlled shutdown), each once every partition is in sync.
    Rolling,
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
            Phase::MovingLeaders => "MovingLeaders",
            Phase::Moving => "Moving",
            Phase::ElectingLeaders => "ElectingLeaders",
            Phase::Verifying => "Verifying",
            Phase::Retiring => "Retiring",
            Phase::CleaningUp => "CleaningUp",
            Phase::Paused => "Paused",
            Phase::Building => "Building",
            Phase::Preparing => "Preparing",
            Phase::SwitchingProducers => "SwitchingProducers",
            Phase::Sealing => "Sealing",
            Phase::DrainingConsumers => "DrainingConsumers",
            Phase::Configuring => "Configuring",
            Phase::Rolling => "Rolling",
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
    /// Decommission and rebalance: the moves, the batch under way, what is throttled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moves: Option<MovePlan>,
    #[serde(default)]
    pub batch: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttled: Option<ThrottleSet>,
    /// When the last preferred-leader election was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elected_at_ms: Option<i64>,
    /// How a `CleaningUp` operation ends once its throttles are gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Phase>,
    /// A `Paused` operation's phase to go back to once it resumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_phase: Option<Phase>,
    /// Bytes moved and to move, and the expected time left (moves).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<Progress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_seconds: Option<u64>,
    /// Failover and fallback: the cluster the route goes to (a build's name is chosen, and
    /// recorded, before the cluster is declared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// When the route's binding was pointed at the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switched_at_ms: Option<i64>,
    /// Clients that had not moved (producers) or drained (consumers) by the deadline.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stragglers: Vec<String>,
    /// The canary's produce-and-consume round trip through the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_millis: Option<u64>,
    /// Decommission: when `Retiring` itself found no replica on the leaving brokers. Their hosts
    /// are terminated only from then on, so a replica placed there after `Verifying` looked
    /// (a topic another tool created) is never terminated with its host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retire_cleared_at_ms: Option<i64>,
    /// ConfigRollout: the rolling restart's progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roll: Option<RollStatus>,
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
            moves: None,
            batch: 0,
            throttled: None,
            elected_at_ms: None,
            outcome: None,
            resume_phase: None,
            bytes: None,
            eta_seconds: None,
            target: None,
            switched_at_ms: None,
            stragglers: Vec::new(),
            canary_millis: None,
            retire_cleared_at_ms: None,
            roll: None,
        }
    }

    /// Moves to `phase` (recorded in the history once).
    pub fn enter(&mut self, phase: Phase, at_ms: i64, message: Option<String>) {
        if self.phase != phase {
            self.history.push(PhaseChange { phase, at_ms, message: message.clone() });
            // A clearance holds only for the `Retiring` stretch that gave it (kept afterwards,
            // as a record of when the hosts were let go).
            if phase == Phase::Retiring {
                self.retire_cleared_at_ms = None;
            }
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
    /// The failover or fallback this maintenance operation steps aside for (set with it, in
    /// the same write; cleared when it resumes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused_by: Option<String>,
}

impl Operation {
    /// A new operation, `Pending` since `at_ms`, no command given yet.
    pub fn new(id: impl Into<String>, cluster: impl Into<String>, spec: OperationSpec, at_ms: i64, created_by: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            cluster: cluster.into(),
            spec,
            status: OperationStatus::new(at_ms),
            created_ms: at_ms,
            updated_ms: at_ms,
            created_by: created_by.into(),
            approved: false,
            cancel_requested: false,
            paused_by: None,
        }
    }

    /// A failover or fallback: it moves a route and is never held up by maintenance.
    pub fn is_emergency(&self) -> bool {
        self.spec.route().is_some()
    }

    /// Whether `cancel` applies now (see [`cancellable_phases`]).
    pub fn cancellable(&self) -> bool {
        cancellable_phases(&self.spec).contains(&self.status.phase)
    }
}

/// The phases a cancel is taken in, by kind: the store accepts a cancel only while the
/// operation's phase is one of them (a compare-and-set, so a cancel never races a switch). A
/// scale-up cancels before its commit; a move any time before it retires brokers (a reassignment
/// in flight is cancelled, throttles cleared); a failover or fallback until the route's binding
/// moves (after that, undoing it is a fallback).
pub fn cancellable_phases(spec: &OperationSpec) -> &'static [Phase] {
    match spec {
        OperationSpec::ScaleUp(_) => &[Phase::Pending, Phase::WaitingForBrokers, Phase::ProposalReady, Phase::Paused],
        OperationSpec::Decommission(_) | OperationSpec::Rebalance(_) => {
            &[Phase::Pending, Phase::ProposalReady, Phase::MovingLeaders, Phase::Moving, Phase::ElectingLeaders, Phase::Verifying, Phase::Paused]
        }
        OperationSpec::Failover(_) | OperationSpec::Fallback(_) => &[Phase::Pending, Phase::Building, Phase::Preparing, Phase::Verifying],
        // The broker restarting finishes; no other starts. Keys already set stay set.
        OperationSpec::ConfigRollout(_) => &[Phase::Pending, Phase::Configuring, Phase::Rolling, Phase::Paused],
    }
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
    /// The moves a decommission or rebalance would make (dry run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moves: Option<MovePlan>,
    /// Why the dry run's plan could not be made (ZooKeeper unreachable, a topic refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_error: Option<String>,
}
