//! What producers and consumers exchange with the fleet manager: a route's binding (the cluster
//! it points at, for clients to follow) and the reports clients send back (what each instance is
//! using, so a failover knows when every producer has moved).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::spec::PriorityClass;

/// Where a route's traffic goes now, and the step of a switch under way. A switch goes
/// `Warming` (the next cluster is verified; clients build their links to it) -> `Switching`
/// (the route points at `cluster`; producers finish what they hold for `previous`) -> `Sealed`
/// (`previous` takes none of the route's writes any more, or the producers' deadline passed:
/// consumers read it to its end, then move) -> `Steady`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum RoutePhase {
    /// Producers and consumers use `cluster`.
    #[default]
    Steady,
    /// `cluster` still takes the traffic; `next` is being verified for a switch.
    Warming,
    /// Producers write to `cluster` and drain their links to `previous`.
    Switching,
    /// `previous` is closed to the route's writes (or its producers' deadline passed).
    Sealed,
}

/// A cluster a client may connect to besides the bound one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterAddress {
    pub cluster: String,
    /// Empty when they cannot be listed now.
    pub bootstrap_servers: Vec<String>,
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
    /// `Warming`: the cluster a switch is about to go to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<ClusterAddress>,
    /// `Switching` and `Sealed`: the cluster the route left (consumers drain it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<ClusterAddress>,
    /// Clusters the route left and sealed, oldest first (the last few): a consumer that was
    /// reading one of them drains it and each one after it before it reads `cluster`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left: Vec<ClusterAddress>,
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
        let address = |field: &str, a: &Option<ClusterAddress>, wanted: bool| -> Result<(), String> {
            match a {
                // Servers may be unknown (the cluster a route left may be down): none is allowed.
                Some(a) if a.cluster.is_empty() || a.bootstrap_servers.iter().any(|s| !s.contains(':')) => {
                    Err(format!("{field}: {a:?} names no cluster, or servers that are not host:port"))
                }
                None if wanted => Err(format!("{field}: missing in phase {:?}", self.phase)),
                _ => Ok(()),
            }
        };
        address("next", &self.next, self.phase == RoutePhase::Warming)?;
        for a in &self.left {
            address("left", &Some(a.clone()), false)?;
        }
        address("previous", &self.previous, matches!(self.phase, RoutePhase::Switching | RoutePhase::Sealed))?;
        Ok(())
    }

    /// Keyed topics (order per key kept across a switch).
    pub fn keyed(&self, topic: &str) -> bool {
        self.topics.get(topic).is_some_and(|t| t.keyed)
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
    /// Records refused at `send` because the buffer was full and left with the caller
    /// (`FullBuffer::Return`): not sent, not dropped.
    pub returned: u64,
    /// Records re-sent to another cluster (refused or purged where they were first sent).
    pub resent: u64,
}

/// At most 16 cluster names (as `ProducerState::draining` is checked).
fn cluster_names() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(ObjectBuilder::new().schema_type(Type::String).pattern(Some("^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")))
        .max_items(Some(16))
        .build()
}

/// A producer's links: what it still delivers where.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ProducerState {
    /// Clusters it left whose links still hold records of its (delivering, or purged and being
    /// re-sent). A switch seals the cluster it leaves once no producer lists it here.
    #[schema(schema_with = cluster_names)]
    pub draining: Vec<String>,
    /// The cluster it has a link to ahead of a switch (`Warming`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")]
    pub warm: Option<String>,
}

/// A consumer's position.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ConsumerState {
    #[schema(pattern = r"^[^\u0000-\u001f\u007f-\u009f]{0,249}$")]
    pub group: String,
    /// Records between its position and the end of its partitions, summed.
    pub lag: u64,
    /// Its group has committed, on the cluster the route left, every partition of the route's
    /// topics up to the end offsets taken once that cluster was sealed (and re-checked).
    pub drained: bool,
    /// The cluster it drained, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")]
    pub drained_cluster: Option<String>,
    /// The cluster it is draining now, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")]
    pub draining: Option<String>,
}

/// `POST /v1/clients/reports`: one client instance's state, sent every few seconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientReport {
    /// Unique per process (host, pid and a random part).
    #[schema(pattern = r"^[^\u0000-\u001f\u007f-\u009f]{1,200}$")]
    pub instance: String,
    #[schema(pattern = "^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")]
    pub route: String,
    pub role: ClientRole,
    /// The binding generation it uses (0: none yet).
    #[schema(minimum = 0)]
    pub generation: i64,
    /// The cluster it uses (empty: none yet); one the route has been bound to.
    #[serde(default)]
    #[schema(pattern = "^([a-z]([a-z0-9-]{0,61}[a-z0-9])?)?$")]
    pub cluster: String,
    #[serde(default)]
    pub counters: ClientCounters,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<ConsumerState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub producer: Option<ProducerState>,
}

impl ClientReport {
    /// Checks what serde cannot, field by field: every string a client sends ends up in tables
    /// and logs, so each is bounded and free of control characters.
    pub fn check(&self) -> Result<(), (String, String)> {
        let text = |field: &str, v: &str, max: usize| -> Result<(), (String, String)> {
            if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
                return Err((field.to_string(), format!("must be 1-{max} printable characters")));
            }
            Ok(())
        };
        let cluster_name = |field: &str, v: &str| -> Result<(), (String, String)> {
            fleet_common::paths::validate_cluster_name(v).map_err(|m| (field.to_string(), fleet_common::kafka_config::shown(&m)))
        };
        text("instance", &self.instance, 200)?;
        cluster_name("route", &self.route).map_err(|(f, m)| (f, m.replace("cluster name", "route name")))?;
        if self.generation < 0 {
            return Err(("generation".into(), format!("{} is negative: send 0 before the first binding", self.generation)));
        }
        if !self.cluster.is_empty() {
            cluster_name("cluster", &self.cluster)?;
        }
        let c = &self.counters;
        let counters = [
            ("sent", c.sent),
            ("acknowledged", c.acknowledged),
            ("failed", c.failed),
            ("dropped", c.dropped),
            ("buffered", c.buffered),
            ("possibleDuplicates", c.possible_duplicates),
            ("consumed", c.consumed),
            ("returned", c.returned),
            ("resent", c.resent),
        ];
        if let Some((name, _)) = counters.iter().find(|(_, v)| *v > i64::MAX as u64) {
            return Err((format!("counters.{name}"), format!("is above {}", i64::MAX)));
        }
        if let Some(state) = &self.consumer {
            if state.lag > i64::MAX as u64 {
                return Err(("consumer.lag".into(), format!("is above {}", i64::MAX)));
            }
            // Kafka's group IDs may hold any character; these are shown on terminals.
            if !state.group.is_empty() {
                text("consumer.group", &state.group, 249)?;
            }
            if let Some(d) = &state.drained_cluster {
                cluster_name("consumer.drainedCluster", d)?;
            }
            if let Some(d) = &state.draining {
                cluster_name("consumer.draining", d)?;
            }
        }
        if let Some(state) = &self.producer {
            if state.draining.len() > 16 {
                return Err(("producer.draining".into(), format!("{} clusters: at most 16", state.draining.len())));
            }
            for d in &state.draining {
                cluster_name("producer.draining", d)?;
            }
            if let Some(w) = &state.warm {
                cluster_name("producer.warm", w)?;
            }
        }
        Ok(())
    }

    /// The clusters a report names (its cluster, the one a consumer drained), for checking them
    /// against the clusters its route has been bound to.
    pub fn named_clusters(&self) -> Vec<(&'static str, &str)> {
        let mut out = Vec::new();
        if !self.cluster.is_empty() {
            out.push(("cluster", self.cluster.as_str()));
        }
        if let Some(d) = self.consumer.as_ref().and_then(|c| c.drained_cluster.as_deref()) {
            out.push(("consumer.drainedCluster", d));
        }
        if let Some(d) = self.consumer.as_ref().and_then(|c| c.draining.as_deref()) {
            out.push(("consumer.draining", d));
        }
        for d in self.producer.iter().flat_map(|p| p.draining.iter()) {
            out.push(("producer.draining", d.as_str()));
        }
        out
    }
}

/// The header a client instance sends its credential in: the fleet manager gives one with the
/// instance's first report, and later reports for that instance must carry it.
pub const INSTANCE_CREDENTIAL_HEADER: &str = "x-fleet-instance-credential";

/// A stored report, as `GET /v1/clients` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientView {
    pub report: ClientReport,
    pub reported_ms: i64,
    /// Dropped from the list after this time unless the client reports again.
    pub expires_ms: i64,
    /// The instance's credential, answered to its first report only: send it with every later
    /// report (header `X-Fleet-Instance-Credential`), or they are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
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
            next: None,
            previous: None,
            left: Vec::new(),
        };
        assert!(b.check().err().is_some_and(|e| e.contains("bootstrapServers")));
    }
}
