//! A route's status: where its traffic is, the cluster kept for fallback, and how it last moved.
//! Written by failover and fallback operations (in the same write as their phase), never by users.

use serde::{Deserialize, Serialize};

/// The topic a failover's verification writes a canary record to and reads it back from. Declared
/// on every cluster a route moves to; never part of a route's binding.
pub const CANARY_TOPIC: &str = "fleet-canary";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum RouteState {
    /// On the cluster its spec was declared with, or back on it.
    #[default]
    Normal,
    FailingOver,
    /// On a failover cluster; the one it left is the standby.
    FailedOver,
    FallingBack,
}

impl RouteState {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteState::Normal => "Normal",
            RouteState::FailingOver => "FailingOver",
            RouteState::FailedOver => "FailedOver",
            RouteState::FallingBack => "FallingBack",
        }
    }
}

/// What a route does with the cluster a fallback leaves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Retain {
    /// Kept as a warm standby (out of traffic, ready for the next failover).
    #[default]
    Standby,
    /// Torn down once the route has left it.
    Teardown,
}

impl Retain {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "standby" => Some(Retain::Standby),
            "teardown" => Some(Retain::Teardown),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteMove {
    pub at_ms: i64,
    pub from: String,
    pub to: String,
    pub operation: String,
    pub reason: String,
}

/// Clients of the route on one cluster, from their reports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientTally {
    pub cluster: String,
    pub producers: u32,
    pub consumers: u32,
    /// Consumers that drained the cluster they left.
    pub drained: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteStatus {
    pub phase: RouteState,
    /// The cluster producers are bound to.
    pub cluster: String,
    /// Out of traffic, kept for fallback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standby: Option<String>,
    /// The failover or fallback under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_move: Option<RouteMove>,
    /// Registered clients per cluster (filled in when served).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<ClientTally>,
    /// The store revision of the last write of this status: a route's binding generation is the
    /// newest of its spec's revision and this.
    #[serde(default)]
    pub revision: i64,
    /// A failover or fallback is verifying this cluster: clients warm their links to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warming: Option<String>,
    /// The switch under way (producers moved to `cluster`), until consumers have drained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switch: Option<SwitchState>,
    /// Clusters this route left that refuse its writes until it comes back: each of their
    /// topics has `max.message.bytes=0`, so a producer that missed the switch is refused there
    /// (and re-sends to the route's cluster) instead of being acknowledged where nobody reads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sealed: Vec<String>,
}

/// A switch between clusters, as clients see it through the binding.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SwitchState {
    /// The cluster producers came from.
    pub from: String,
    /// Every producer drained its link to `from` (or the deadline passed) and `from` was sealed:
    /// consumers now read it to its end.
    pub sealed: bool,
}

/// The topic config that seals a cluster for a route: no batch fits, so every produce is
/// refused (`MESSAGE_TOO_LARGE`) while reads, replication and the log itself are untouched.
pub const SEAL_CONFIG: (&str, &str) = ("max.message.bytes", "0");

/// What an automatic trigger may look at: the healthcheck's findings on the route's cluster, and
/// the auditor's per-broker figures for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Signal {
    /// Healthcheck: partitions without a live leader.
    OfflinePartitions,
    /// Healthcheck: partitions with fewer in-sync replicas than `min.insync.replicas`.
    UnderMinIsrPartitions,
    /// Healthcheck: expected brokers not registered.
    MissingBrokers,
    /// Healthcheck: 1 without an active controller.
    NoController,
    /// Healthcheck: 1 when its verdict is unhealthy.
    Unhealthy,
    /// Auditor: the lowest produce availability over the cluster's brokers (0 to 1).
    ProduceAvailability,
    /// Auditor: the lowest consume availability over the cluster's brokers (0 to 1).
    ConsumeAvailability,
    /// Auditor: records lost, summed over the brokers' window.
    LostRecords,
    /// Auditor: the highest end-to-end latency p99 over the brokers, in ms.
    LatencyP99Ms,
}

impl Signal {
    pub const ALL: [Signal; 9] = [
        Signal::OfflinePartitions,
        Signal::UnderMinIsrPartitions,
        Signal::MissingBrokers,
        Signal::NoController,
        Signal::Unhealthy,
        Signal::ProduceAvailability,
        Signal::ConsumeAvailability,
        Signal::LostRecords,
        Signal::LatencyP99Ms,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::OfflinePartitions => "offlinePartitions",
            Signal::UnderMinIsrPartitions => "underMinIsrPartitions",
            Signal::MissingBrokers => "missingBrokers",
            Signal::NoController => "noController",
            Signal::Unhealthy => "unhealthy",
            Signal::ProduceAvailability => "produceAvailability",
            Signal::ConsumeAvailability => "consumeAvailability",
            Signal::LostRecords => "lostRecords",
            Signal::LatencyP99Ms => "latencyP99Ms",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
    pub fn from_auditor(self) -> bool {
        matches!(self, Signal::ProduceAvailability | Signal::ConsumeAvailability | Signal::LostRecords | Signal::LatencyP99Ms)
    }
    /// The values a threshold may take.
    pub fn range(self) -> (f64, f64) {
        match self {
            Signal::ProduceAvailability | Signal::ConsumeAvailability => (0.0, 1.0),
            Signal::NoController | Signal::Unhealthy => (0.0, 1.0),
            _ => (0.0, 1e12),
        }
    }
}

/// One condition: the signal above or below a threshold, for at least `for_ms`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    pub signal: Signal,
    /// `true`: fires above `threshold`; `false`: below.
    pub above: bool,
    pub threshold: f64,
    pub for_ms: u64,
}

impl Condition {
    pub fn holds(&self, value: f64) -> bool {
        if self.above {
            value > self.threshold
        } else {
            value < self.threshold
        }
    }
    pub fn describe(&self) -> String {
        format!("{} {} {} for {}s", self.signal.as_str(), if self.above { ">" } else { "<" }, self.threshold, self.for_ms / 1000)
    }
}

/// A route's failover policy, checked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailoverPolicy {
    /// Only journal and count what it would do.
    pub recommend: bool,
    /// A standby to fail over to; `None`: a fresh build.
    pub to: Option<String>,
    pub conditions: Vec<Condition>,
    /// At most one automatic failover per route in this window.
    pub cool_down_ms: u64,
    /// Fall back automatically once the standby has been healthy this long.
    pub auto_fallback_after_ms: Option<u64>,
    /// The auditor whose figures (`/api/figures`) the auditor signals come from.
    pub auditor: Option<String>,
}

/// The durations a policy takes: 1-6 digits (no leading zero) and a unit, `ms`, `s`, `m` or `h`.
pub const DURATION_PATTERN: &str = "^[1-9][0-9]{0,5}(ms|s|m|h)$";

/// `30s`, `5m`, `1h` in ms ([`DURATION_PATTERN`]); zero, negative and unitless refused.
pub fn parse_duration_ms(s: &str) -> Result<u64, String> {
    let digits = s.chars().take_while(char::is_ascii_digit).count();
    let (num, unit) = s.split_at(digits);
    if digits > 0 && num.chars().all(|c| c == '0') {
        return Err(format!("`{s}` is zero: give a duration above 0, e.g. 30s"));
    }
    if digits == 0 || digits > 6 || num.starts_with('0') {
        return Err(format!("`{s}` is not a duration: give 1-6 digits and a unit, e.g. 30s, 5m, 1h"));
    }
    let n: u64 = num.parse().map_err(|_| format!("`{s}` is not a duration: e.g. 30s"))?;
    match unit {
        "ms" => Ok(n),
        "s" => Ok(n * 1000),
        "m" => Ok(n * 60_000),
        "h" => Ok(n * 3_600_000),
        _ => Err(format!("`{s}`: the unit is ms, s, m or h, e.g. 30s")),
    }
}

/// A trigger's state for one route, kept by the leader (and shown by `describe route`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TriggerState {
    pub conditions: Vec<ConditionState>,
    /// When the last automatic failover or fallback was started (the cool-down runs from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_fired_ms: Option<i64>,
    /// Recommend mode: when it last said what it would do (recommendations cool down apart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_recommended_ms: Option<i64>,
    /// Since when the standby has been healthy (auto fallback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standby_healthy_since_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_decision: Option<String>,
    /// Why the last automatic operation was refused (journalled once, not at every retry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_refusal: Option<String>,
    pub evaluated_ms: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConditionState {
    pub condition: String,
    /// The last value read; `None` while unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Since when it has held (continuously, with the signal known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holding_since_ms: Option<i64>,
    /// Why the signal cannot be read, while it cannot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown: Option<String>,
}

/// `fleetctl hold ROUTE`: automation stopped for the route until released.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Hold {
    pub reason: String,
    pub by: String,
    pub at_ms: i64,
}
