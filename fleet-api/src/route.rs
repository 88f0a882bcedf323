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
}
