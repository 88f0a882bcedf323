//! What producers and consumers exchange with the fleet manager: a route's binding (the cluster
//! it points at, for clients to follow) and the reports clients send back (what each instance is
//! using, so a failover knows when every producer has moved).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::spec::PriorityClass;

/// Where a route's traffic goes now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum RoutePhase {
    /// Producers and consumers use `cluster`.
    Steady,
}

/// How a topic of the bound cluster is written: the client picks `acks` from it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TopicBinding {
    pub priority_class: PriorityClass,
    /// `all` for the high class, `1` otherwise.
    pub acks: String,
    pub keyed: bool,
}

/// `GET /v1/routes/{name}/binding`: what a client of the route connects to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteBinding {
    pub route: String,
    pub cluster: String,
    /// `host:port` of the cluster's live brokers.
    #[schema(min_items = 1)]
    pub bootstrap_servers: Vec<String>,
    /// Changes whenever the route is pointed elsewhere; clients switch when it does.
    pub generation: i64,
    pub phase: RoutePhase,
    #[serde(default)]
    pub topics: BTreeMap<String, TopicBinding>,
}

impl RouteBinding {
    /// Checks what serde cannot: a binding a client would act on must name a cluster and servers.
    pub fn check(&self) -> Result<(), String> {
        if self.route.is_empty() {
            return Err("route: empty".into());
        }
        if self.cluster.is_empty() {
            return Err("cluster: empty".into());
        }
        if self.bootstrap_servers.is_empty() || self.bootstrap_servers.iter().any(|s| !s.contains(':')) {
            return Err(format!("bootstrapServers: {:?} is not a list of host:port", self.bootstrap_servers));
        }
        if self.generation < 1 {
            return Err(format!("generation: {} is not >= 1", self.generation));
        }
        Ok(())
    }
}

/// `acks` for a priority class: the seed design's high class loses nothing.
pub fn acks_for(class: PriorityClass) -> &'static str {
    match class {
        PriorityClass::High => "all",
        PriorityClass::Medium | PriorityClass::Low => "1",
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ClientRole {
    Producer,
    Consumer,
}

/// A producer's counters since the instance started.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ClientCounters {
    /// Records accepted by `send`.
    pub sent: u64,
    /// Records a cluster acknowledged.
    pub acknowledged: u64,
    /// Records that failed for good (returned to the caller as failed).
    pub failed: u64,
    /// Records refused because the buffer was full.
    pub dropped: u64,
    /// Records accepted and not yet acknowledged or failed.
    pub buffered: u64,
    /// Records re-sent after a switch whose first copy's fate was unknown.
    pub possible_duplicates: u64,
    /// Records a consumer handed to its caller.
    pub consumed: u64,
}

/// A consumer's position.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ConsumerState {
    pub group: String,
    /// Records between its position and the end of its partitions, summed.
    pub lag: u64,
    /// It read the previous cluster to the end offsets taken at the switch and committed.
    pub drained: bool,
    /// The cluster it drained, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drained_cluster: Option<String>,
}

/// `POST /v1/clients/reports`: one client instance's state, sent every few seconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientReport {
    /// Unique per process (host, pid and a random part).
    #[schema(pattern = r"^[^\u0000-\u001f\u007f-\u009f]{1,200}$")]
    pub instance: String,
    #[schema(pattern = r"^[^\u0000-\u001f\u007f-\u009f]{1,200}$")]
    pub route: String,
    pub role: ClientRole,
    /// The binding generation it uses (0: none yet).
    #[schema(minimum = 0)]
    pub generation: i64,
    /// The cluster it uses (empty: none yet).
    #[serde(default)]
    pub cluster: String,
    #[serde(default)]
    pub counters: ClientCounters,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<ConsumerState>,
}

impl ClientReport {
    pub fn check(&self) -> Result<(), (String, String)> {
        let text = |field: &str, v: &str| -> Result<(), (String, String)> {
            if v.is_empty() || v.chars().count() > 200 || v.chars().any(char::is_control) {
                return Err((field.to_string(), "must be 1-200 printable characters".into()));
            }
            Ok(())
        };
        text("instance", &self.instance)?;
        text("route", &self.route)?;
        if self.generation < 0 {
            return Err(("generation".into(), format!("{} is negative: send 0 before the first binding", self.generation)));
        }
        let c = &self.counters;
        let counters = [("sent", c.sent), ("acknowledged", c.acknowledged), ("failed", c.failed), ("dropped", c.dropped), ("buffered", c.buffered), ("possibleDuplicates", c.possible_duplicates), ("consumed", c.consumed)];
        if let Some((name, _)) = counters.iter().find(|(_, v)| *v > i64::MAX as u64) {
            return Err((format!("counters.{name}"), format!("is above {}", i64::MAX)));
        }
        if self.consumer.as_ref().is_some_and(|s| s.lag > i64::MAX as u64) {
            return Err(("consumer.lag".into(), format!("is above {}", i64::MAX)));
        }
        Ok(())
    }
}

/// A stored report, as `GET /v1/clients` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientView {
    pub report: ClientReport,
    pub reported_ms: i64,
    /// Dropped from the list after this time unless the client reports again.
    pub expires_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_with_a_negative_counter_or_an_unknown_field_is_refused() {
        let bad = serde_json::json!({"instance": "i", "route": "r", "role": "producer", "generation": 1, "counters": {"sent": -1}});
        assert!(serde_json::from_value::<ClientReport>(bad).is_err());
        let extra = serde_json::json!({"instance": "i", "route": "r", "role": "producer", "generation": 1, "colour": "red"});
        assert!(serde_json::from_value::<ClientReport>(extra).err().is_some_and(|e| e.to_string().contains("colour")));
    }

    #[test]
    fn a_binding_without_servers_is_not_acted_on() {
        let b = RouteBinding {
            route: "r".into(),
            cluster: "c".into(),
            bootstrap_servers: vec![],
            generation: 1,
            phase: RoutePhase::Steady,
            topics: BTreeMap::new(),
        };
        assert!(b.check().err().is_some_and(|e| e.contains("bootstrapServers")));
    }
}
