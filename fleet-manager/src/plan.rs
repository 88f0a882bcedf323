//! `diff(desired, observed) -> Plan`: pure, no I/O, so it can be printed (`fleetctl plan`) and
//! unit-tested. The reconciler observes, calls [`plan_cluster`], applies the steps and stores the
//! returned intent.

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

impl<T> Seen<T> {
    pub fn known(&self) -> Option<&T> {
        match self {
            Seen::Known(t) => Some(t),
            Seen::Unknown(_) => None,
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObservedHost {
    pub instance_id: String,
    pub availability_zone: String,
    pub state: HostState,
    pub launched_ms: i64,
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
    /// Hosts launched and not yet seen by the provider (ID -> launch time), so a slow
    /// `Describe` does not cause a second launch.
    #[serde(default)]
    pub launched: BTreeMap<String, i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase", tag = "action")]
pub enum Step {
    LaunchHost {
        availability_zone: String,
        instance_type: String,
        reason: String,
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
    },
    CreatePartitions {
        topic: String,
        from: u32,
        to: u32,
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
    },
    /// Every host and record is gone: drop the cluster from the store.
    ForgetCluster,
    /// The topic is gone from Kafka: drop it from the store.
    ForgetTopic {
        topic: String,
    },
}

impl Step {
    pub fn describe(&self) -> String {
        match self {
            Step::LaunchHost { availability_zone, instance_type, reason } => {
                format!("launch a {instance_type} broker host in {availability_zone} ({reason})")
            }
            Step::TerminateHost { instance_id, reason } => format!("terminate host {instance_id} ({reason})"),
            Step::CreateTopic { topic, partitions, replication_factor, .. } => {
                format!("create topic {topic} ({partitions} partitions, replication {replication_factor})")
            }
            Step::CreatePartitions { topic, from, to } => format!("add partitions to {topic}: {from} -> {to}"),
            Step::AlterTopicConfigs { topic, changed, .. } => format!("set configs of {topic}: {}", changed.join(", ")),
            Step::DeleteTopic { topic } => format!("delete topic {topic}"),
            Step::DeleteDnsRecord { name, set_identifier } => format!("delete DNS record {name} ({set_identifier})"),
            Step::ForgetCluster => "forget the cluster (teardown done)".into(),
            Step::ForgetTopic { topic } => format!("forget topic {topic} (deleted)"),
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
            Step::ForgetCluster => "forget-cluster",
            Step::ForgetTopic { .. } => "forget-topic",
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
}

impl Plan {
    /// Nothing to do and nothing waited for.
    pub fn converged(&self) -> bool {
        self.steps.is_empty() && self.waiting.is_empty()
    }
}

#[derive(Clone, Copy, Debug)]
pub struct PlanSettings {
    pub now_ms: i64,
    /// How long a broker may be missing while its host is alive before the host is replaced.
    pub replace_grace_ms: i64,
    /// How long a launched host may stay invisible to the provider before it is launched again.
    pub launch_visibility_ms: i64,
}

/// The pure heart of the reconciler.
pub fn plan_cluster(
    desired: &DesiredCluster,
    observed: &ObservedCluster,
    intent: &ClusterIntent,
    settings: PlanSettings,
) -> (Plan, ClusterIntent) {
    let mut plan = Plan { cluster: desired.spec.name.clone(), ..Plan::default() };
    let mut next = ClusterIntent::default();
    if desired.deleting {
        plan_teardown(observed, &mut plan);
        return (plan, next);
    }

    // ---- hosts
    let Some(hosts) = observed.hosts.known() else {
        plan.waiting.push(format!("hosts unknown: {}", unknown_reason(&observed.hosts)));
        return (plan, intent.clone());
    };
    let alive: Vec<&ObservedHost> = hosts.iter().filter(|h| h.state.is_alive()).collect();
    let seen_ids: BTreeSet<&str> = hosts.iter().map(|h| h.instance_id.as_str()).collect();
    // Launches not yet visible still count, for a while.
    let in_flight: Vec<(&String, &i64)> = intent
        .launched
        .iter()
        .filter(|(id, at)| !seen_ids.contains(id.as_str()) && settings.now_ms - **at < settings.launch_visibility_ms)
        .collect();
    for (id, at) in &in_flight {
        next.launched.insert((*id).clone(), **at);
    }
    let mut terminations: Vec<(String, String, String)> = Vec::new(); // (instance, az, reason)

    // Replace hosts whose broker stays missing.
    match (observed.registry.known(), observed.live_brokers.known()) {
        (Some(registry), Some(live)) => {
            for (broker_id, instance_id) in registry {
                let Some(host) = alive.iter().find(|h| &h.instance_id == instance_id) else { continue };
                if live.contains(broker_id) {
                    continue;
                }
                let since = intent.missing_since.get(broker_id).copied().unwrap_or(settings.now_ms);
                let missing_ms = settings.now_ms - since;
                if missing_ms >= settings.replace_grace_ms {
                    terminations.push((
                        host.instance_id.clone(),
                        host.availability_zone.clone(),
                        format!("broker {broker_id} missing from /brokers/ids for {}s", missing_ms / 1000),
                    ));
                } else {
                    next.missing_since.insert(*broker_id, since);
                    plan.waiting.push(format!(
                        "broker {broker_id} (host {instance_id}) not in /brokers/ids for {}s; the host is replaced after {}s",
                        missing_ms / 1000,
                        settings.replace_grace_ms / 1000
                    ));
                }
            }
        }
        _ => plan.waiting.push("broker registrations unknown: host replacement paused".into()),
    }

    let wanted = desired.spec.brokers as usize;
    let remaining = alive.len() - terminations.len() + in_flight.len();
    if remaining > wanted {
        // More hosts than brokers declared: only after a crash between launch and bookkeeping,
        // or a manual launch. Terminate the newest that hold no broker ID; never one that does.
        let holders: BTreeSet<&String> = observed.registry.known().map(|r| r.values().collect()).unwrap_or_default();
        let mut spare: Vec<&&ObservedHost> = alive
            .iter()
            .filter(|h| !holders.contains(&h.instance_id) && !terminations.iter().any(|t| t.0 == h.instance_id))
            .collect();
        spare.sort_by_key(|h| std::cmp::Reverse(h.launched_ms));
        let extra = remaining - wanted;
        if observed.registry.known().is_some() {
            for h in spare.into_iter().take(extra) {
                // A host younger than the grace period may be about to take an ID; wait.
                if settings.now_ms - h.launched_ms < settings.replace_grace_ms {
                    plan.waiting.push(format!("host {} is extra but young; terminated if it stays extra", h.instance_id));
                    continue;
                }
                plan.steps.push(Step::TerminateHost { instance_id: h.instance_id.clone(), reason: "more hosts than declared brokers".into() });
            }
        }
        plan.warnings.push(format!("{remaining} hosts for {wanted} declared brokers"));
    }
    // Each replacement goes to the zone of the host it replaces (its rack).
    let mut per_az: BTreeMap<String, usize> = desired.spec.availability_zones.iter().map(|az| (az.clone(), 0)).collect();
    for h in &alive {
        if !terminations.iter().any(|t| t.0 == h.instance_id) {
            *per_az.entry(h.availability_zone.clone()).or_default() += 1;
        }
    }
    for (instance_id, az, reason) in &terminations {
        plan.steps.push(Step::TerminateHost { instance_id: instance_id.clone(), reason: reason.clone() });
        plan.steps.push(Step::LaunchHost {
            availability_zone: az.clone(),
            instance_type: desired.spec.instance_type.clone(),
            reason: format!("replaces {instance_id}"),
        });
        *per_az.entry(az.clone()).or_default() += 1;
    }
    let count_after = remaining + terminations.len();
    for i in count_after..wanted.max(count_after) {
        // The least-populated declared zone, first in declaration order on ties.
        let Some(az) = desired.spec.availability_zones.iter().min_by_key(|az| per_az.get(*az).copied().unwrap_or(0)).cloned() else {
            break;
        };
        *per_az.entry(az.clone()).or_default() += 1;
        plan.steps.push(Step::LaunchHost {
            availability_zone: az,
            instance_type: desired.spec.instance_type.clone(),
            reason: format!("broker {} of {wanted}", i + 1),
        });
    }
    if !in_flight.is_empty() {
        plan.waiting.push(format!("{} launched host(s) not yet visible to the provider", in_flight.len()));
    }

    // ---- topics: acted on once every declared broker is live, so partitions spread over all.
    let live_count = observed.live_brokers.known().map(|l| l.len()).unwrap_or(0);
    let topics_known = observed.topics.known();
    if live_count < wanted {
        if desired.topics.iter().any(|t| !t.deleting) {
            plan.waiting.push(format!("{live_count} of {wanted} brokers live: topics wait"));
        }
    } else if let Some(topics) = topics_known {
        for t in &desired.topics {
            let name = &t.spec.name;
            match (topics.get(name), t.deleting) {
                (None, true) => plan.steps.push(Step::ForgetTopic { topic: name.clone() }),
                (Some(o), true) => {
                    if o.marked_for_deletion {
                        plan.waiting.push(format!("topic {name} is being deleted by Kafka"));
                    } else {
                        plan.steps.push(Step::DeleteTopic { topic: name.clone() });
                    }
                }
                (Some(o), false) if o.marked_for_deletion => {
                    plan.waiting.push(format!("topic {name} is being deleted by Kafka; it is created again afterwards"));
                }
                (None, false) => plan.steps.push(Step::CreateTopic {
                    topic: name.clone(),
                    partitions: t.spec.partitions,
                    replication_factor: t.spec.replication_factor,
                    configs: t.spec.configs.clone(),
                }),
                (Some(o), false) => {
                    if o.partitions < t.spec.partitions {
                        plan.steps.push(Step::CreatePartitions { topic: name.clone(), from: o.partitions, to: t.spec.partitions });
                    } else if o.partitions > t.spec.partitions {
                        plan.warnings.push(format!(
                            "topic {name} has {} partitions, {} declared: Kafka cannot remove partitions",
                            o.partitions, t.spec.partitions
                        ));
                    }
                    if o.replication_factor != t.spec.replication_factor {
                        plan.warnings.push(format!(
                            "topic {name} has replication {}, {} declared: reassignment is not automated",
                            o.replication_factor, t.spec.replication_factor
                        ));
                    }
                    if o.configs != t.spec.configs {
                        let keys: BTreeSet<&String> = o.configs.keys().chain(t.spec.configs.keys()).collect();
                        let changed: Vec<String> =
                            keys.into_iter().filter(|k| o.configs.get(*k) != t.spec.configs.get(*k)).cloned().collect();
                        plan.steps.push(Step::AlterTopicConfigs { topic: name.clone(), configs: t.spec.configs.clone(), changed });
                    }
                }
            }
        }
    } else {
        plan.waiting.push(format!("topics unknown: {}", unknown_reason(&observed.topics)));
    }

    // ---- DNS: records of broker IDs no host holds any more (scale-down, replaced-and-not-reused).
    if let (Some(records), Some(registry)) = (observed.dns.known(), observed.registry.known()) {
        let held: BTreeSet<String> = registry
            .iter()
            .filter(|(_, instance)| alive.iter().any(|h| &&h.instance_id == instance))
            .map(|(id, _)| format!("broker-{id}"))
            .collect();
        // While a host is being replaced or launched its ID is about to be (re)taken: leave
        // records alone until the hosts settle, so DNS does not flap.
        let settled = in_flight.is_empty() && !plan.steps.iter().any(|s| matches!(s, Step::LaunchHost { .. } | Step::TerminateHost { .. }));
        for r in records {
            if settled && r.set_identifier.starts_with("broker-") && !held.contains(&r.set_identifier) {
                plan.steps.push(Step::DeleteDnsRecord { name: r.name.clone(), set_identifier: r.set_identifier.clone() });
            }
        }
    }
    (plan, next)
}

fn plan_teardown(observed: &ObservedCluster, plan: &mut Plan) {
    let mut blocked = false;
    match observed.hosts.known() {
        Some(hosts) => {
            for h in hosts.iter().filter(|h| h.state.is_alive()) {
                plan.steps.push(Step::TerminateHost { instance_id: h.instance_id.clone(), reason: "cluster deleted".into() });
                blocked = true;
            }
            if hosts.iter().any(|h| h.state == HostState::Terminating) {
                plan.waiting.push("hosts are terminating".into());
                blocked = true;
            }
        }
        None => {
            plan.waiting.push(format!("hosts unknown: {}", unknown_reason(&observed.hosts)));
            blocked = true;
        }
    }
    match observed.dns.known() {
        Some(records) => {
            for r in records {
                plan.steps.push(Step::DeleteDnsRecord { name: r.name.clone(), set_identifier: r.set_identifier.clone() });
                blocked = true;
            }
        }
        None => {
            plan.waiting.push(format!("DNS unknown: {}", unknown_reason(&observed.dns)));
            blocked = true;
        }
    }
    if !blocked {
        plan.steps.push(Step::ForgetCluster);
    }
}

fn unknown_reason<T>(seen: &Seen<T>) -> &str {
    match seen {
        Seen::Unknown(why) => why,
        Seen::Known(_) => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{PriorityClass, ProviderKind};

    fn cluster(brokers: u32) -> DesiredCluster {
        DesiredCluster {
            spec: ClusterSpec {
                name: "blue".into(),
                kafka_version: "3.9".into(),
                brokers,
                instance_type: "r5.xlarge".into(),
                availability_zones: vec!["a".into(), "b".into(), "c".into()],
                priority_class: PriorityClass::Medium,
                broker_config: BTreeMap::new(),
                provider: ProviderKind::Local,
            },
            deleting: false,
            topics: vec![DesiredTopic {
                spec: TopicSpec {
                    cluster: "blue".into(),
                    name: "orders".into(),
                    partitions: 6,
                    replication_factor: 2,
                    priority_class: PriorityClass::Medium,
                    configs: [("retention.ms".to_string(), "14400000".to_string())].into(),
                },
                deleting: false,
            }],
            revision: 1,
        }
    }

    fn host(id: &str, az: &str) -> ObservedHost {
        ObservedHost { instance_id: id.into(), availability_zone: az.into(), state: HostState::Running, launched_ms: 0 }
    }

    fn settings(now_ms: i64) -> PlanSettings {
        PlanSettings { now_ms, replace_grace_ms: 60_000, launch_visibility_ms: 120_000 }
    }

    fn observed(hosts: Vec<ObservedHost>, live: &[i32]) -> ObservedCluster {
        let registry: BTreeMap<i32, String> = hosts.iter().enumerate().map(|(i, h)| (i as i32 + 1, h.instance_id.clone())).collect();
        ObservedCluster {
            at_ms: 0,
            hosts: Seen::Known(hosts),
            live_brokers: Seen::Known(live.iter().copied().collect()),
            registry: Seen::Known(registry),
            topics: Seen::Known(BTreeMap::new()),
            dns: Seen::Known(Vec::new()),
        }
    }

    fn launch_zones(plan: &Plan) -> Vec<&str> {
        plan.steps
            .iter()
            .filter_map(|s| match s {
                Step::LaunchHost { availability_zone, .. } => Some(availability_zone.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn empty_cluster_launches_one_host_per_zone() {
        let (plan, _) = plan_cluster(&cluster(3), &observed(vec![], &[]), &ClusterIntent::default(), settings(0));
        let zones = launch_zones(&plan);
        assert_eq!(zones, ["a", "b", "c"]);
        assert!(plan.waiting.iter().any(|w| w.contains("topics wait")));
    }

    #[test]
    fn converged_cluster_plans_nothing_and_creates_missing_topics() {
        let hosts = vec![host("h1", "a"), host("h2", "b"), host("h3", "c")];
        let (plan, _) = plan_cluster(&cluster(3), &observed(hosts.clone(), &[1, 2, 3]), &ClusterIntent::default(), settings(0));
        assert!(matches!(&plan.steps[..], [Step::CreateTopic { topic, partitions: 6, .. }] if topic == "orders"));
        let mut o = observed(hosts, &[1, 2, 3]);
        o.topics = Seen::Known(
            [(
                "orders".to_string(),
                ObservedTopic {
                    partitions: 6,
                    replication_factor: 2,
                    configs: [("retention.ms".to_string(), "14400000".to_string())].into(),
                    marked_for_deletion: false,
                },
            )]
            .into(),
        );
        let (plan, _) = plan_cluster(&cluster(3), &o, &ClusterIntent::default(), settings(0));
        assert!(plan.converged(), "{plan:?}");
    }

    #[test]
    fn missing_broker_is_replaced_only_after_the_grace_period() {
        let hosts = vec![host("h1", "a"), host("h2", "b"), host("h3", "c")];
        let o = observed(hosts, &[1, 3]);
        let (plan, intent) = plan_cluster(&cluster(3), &o, &ClusterIntent::default(), settings(1_000));
        assert!(plan.steps.iter().all(|s| !matches!(s, Step::TerminateHost { .. })));
        assert_eq!(intent.missing_since.get(&2), Some(&1_000));
        let (plan, intent) = plan_cluster(&cluster(3), &o, &intent, settings(61_000));
        assert!(matches!(&plan.steps[..2], [Step::TerminateHost { instance_id, .. }, Step::LaunchHost { availability_zone, .. }] if instance_id == "h2" && availability_zone == "b"));
        assert!(intent.missing_since.is_empty());
        assert_eq!(plan.steps.iter().filter(|s| matches!(s, Step::LaunchHost { .. })).count(), 1);
    }

    #[test]
    fn unknown_hosts_launch_nothing() {
        let mut o = observed(vec![], &[]);
        o.hosts = Seen::Unknown("provider timed out".into());
        let (plan, _) = plan_cluster(&cluster(3), &o, &ClusterIntent::default(), settings(0));
        assert!(plan.steps.is_empty());
        assert!(plan.waiting[0].contains("provider timed out"));
    }

    #[test]
    fn launched_but_invisible_hosts_are_not_launched_twice() {
        let intent = ClusterIntent { launched: [("h9".to_string(), 0)].into(), ..Default::default() };
        let (plan, next) = plan_cluster(&cluster(1), &observed(vec![], &[]), &intent, settings(10_000));
        assert!(plan.steps.iter().all(|s| !matches!(s, Step::LaunchHost { .. })));
        assert!(next.launched.contains_key("h9"));
        let (plan, _) = plan_cluster(&cluster(1), &observed(vec![], &[]), &intent, settings(500_000));
        assert_eq!(plan.steps.iter().filter(|s| matches!(s, Step::LaunchHost { .. })).count(), 1);
    }

    #[test]
    fn scale_up_adds_hosts_to_the_emptiest_zones() {
        let hosts = vec![host("h1", "a"), host("h2", "b"), host("h3", "c")];
        let (plan, _) = plan_cluster(&cluster(5), &observed(hosts, &[1, 2, 3]), &ClusterIntent::default(), settings(0));
        let zones = launch_zones(&plan);
        assert_eq!(zones, ["a", "b"]);
    }

    #[test]
    fn teardown_terminates_then_forgets() {
        let mut d = cluster(3);
        d.deleting = true;
        let (plan, _) = plan_cluster(&d, &observed(vec![host("h1", "a")], &[1]), &ClusterIntent::default(), settings(0));
        assert!(matches!(&plan.steps[..], [Step::TerminateHost { .. }]));
        let (plan, _) = plan_cluster(&d, &observed(vec![], &[]), &ClusterIntent::default(), settings(0));
        assert_eq!(plan.steps, [Step::ForgetCluster]);
    }
}
