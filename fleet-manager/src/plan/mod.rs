//! `plan_cluster(desired, observed, intent) -> (Plan, intent)`: pure, no I/O, so it can be printed
//! (`fleetctl plan`) and unit-tested. The controller observes, calls [`plan_cluster`], applies the
//! steps and records the returned intent. The types it works on are the API's ([`fleet_api::model`]).

use std::collections::{BTreeMap, BTreeSet};

pub use fleet_api::model::*;

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
    let sealed = sealed(desired);
    let desired = sealed.as_ref().unwrap_or(desired);
    let mut plan = Plan { cluster: desired.spec.name.clone(), ..Plan::default() };
    let mut next = ClusterIntent::default();
    if desired.deleting {
        plan_teardown(observed, &mut plan);
        if !plan.waiting.is_empty() {
            plan.wake_after(PROGRESS_POLL_MS);
        }
        return (plan, next);
    }

    // ---- hosts
    next.launch_seq = intent.launch_seq;
    let Some(hosts) = observed.hosts.known() else {
        plan.waiting.push(format!("hosts unknown: {}", unknown_reason(&observed.hosts)));
        plan.wake_after(PROGRESS_POLL_MS);
        return (plan, intent.clone());
    };
    let alive: Vec<&ObservedHost> = hosts.iter().filter(|h| h.state.is_alive()).collect();
    let now = settings.now_ms;
    // Liveness in the quorum, judged on the leader's clock (the freshest fetch it reports), not
    // this process's: a skewed clock or a slow observation must not make voters look dead. With
    // no leader nothing is judged (every voter looks silent then): no host is replaced.
    let quorum = observed.quorum.known().filter(|q| q.leader_id.is_some());
    let quorum_live = quorum.map(|q| q.live_ids(q.clock_ms().unwrap_or(now), QUORUM_FETCH_WINDOW_MS));
    // A voter change in flight (a replaced controller not yet a voter again): no other
    // controller is replaced until the set is whole.
    let voters_short = quorum.filter(|q| q.voters.len() < desired.spec.quorum_size() as usize).map(|q| {
        let why = format!("the quorum has {} of {} voters (a controller is joining)", q.voters.len(), desired.spec.quorum_size());
        (why, q.voters.iter().map(|v| v.node_id).collect::<BTreeSet<i32>>())
    });
    // A combined node is live as a broker (unfenced) or as a voter (fetching): a fenced broker
    // whose controller votes keeps its host, and its log.
    let combined_live: Option<BTreeSet<i32>> = quorum_live.as_ref().zip(observed.live_brokers.known()).map(|(q, b)| q | b);
    let controllers_leaving = if desired.spec.is_kraft() { leaving_controllers(desired, observed, hosts, quorum_live.as_ref()) } else { BTreeMap::new() };
    let roles: Vec<RoleHosts> = if !desired.spec.is_kraft() {
        vec![RoleHosts {
            role: HostRole::Broker,
            wanted: desired.spec.brokers as usize,
            live: observed.live_brokers.known(),
            live_source: "/brokers/ids",
            instance_type: host_type(desired, HostRole::Broker),
            max_replacements: None,
            replace_held: None,
            leaving: &desired.leaving,
            launch_held: None,
        }]
    } else if desired.spec.combined {
        vec![RoleHosts {
            role: HostRole::Combined,
            wanted: desired.spec.brokers as usize,
            live: combined_live.as_ref(),
            live_source: "the cluster's unfenced brokers and fetching voters",
            instance_type: host_type(desired, HostRole::Combined),
            max_replacements: Some(1),
            replace_held: voters_short.clone(),
            leaving: &desired.leaving,
            launch_held: None,
        }]
    } else {
        vec![
            // Controllers first: brokers cannot register before a quorum has a leader.
            RoleHosts {
                role: HostRole::Controller,
                wanted: desired.spec.controllers as usize,
                live: quorum_live.as_ref(),
                live_source: "the controller quorum",
                instance_type: host_type(desired, HostRole::Controller),
                max_replacements: Some(1),
                replace_held: voters_short.clone(),
                leaving: &controllers_leaving,
                launch_held: None,
            },
            // A broker cannot register while the quorum has no leader: none is replaced then
            // (while the controllers boot or form, a broker waiting for them is not missing).
            RoleHosts {
                role: HostRole::Broker,
                wanted: desired.spec.brokers as usize,
                live: quorum.and(observed.live_brokers.known()),
                live_source: "the cluster's unfenced brokers",
                instance_type: host_type(desired, HostRole::Broker),
                max_replacements: Some(1),
                replace_held: None,
                leaving: &desired.leaving,
                // Brokers boot once the quorum has elected a leader: a broker started during
                // the first elections records a passing leader in each of its controller
                // channels, and Kafka 4.4 was seen never to re-resolve its AlterPartition
                // channel after that leader answered NOT_CONTROLLER (the ISR never grew back).
                launch_held: quorum.is_none().then_some("the controller quorum has a leader"),
            },
        ]
    };
    let mut in_flight = 0;
    for r in &roles {
        in_flight += plan_role_hosts(desired, observed, intent, settings, hosts, r, &mut plan, &mut next);
    }
    // A retired broker's ID is released once its host is gone and it left /brokers/ids.
    if let (Some(registry), Some(live)) = (observed.registry.known(), observed.live_brokers.known()) {
        for (broker_id, instance_id) in registry {
            let retired = desired.leaving.get(broker_id) == Some(&true);
            if retired && !live.contains(broker_id) && !alive.iter().any(|h| &h.instance_id == instance_id) {
                plan.steps.push(Step::ReleaseBrokerId { broker_id: *broker_id });
            }
        }
    }
    if in_flight > 0 {
        plan.waiting.push(format!("{in_flight} launched host(s) not yet visible to the provider"));
    }
    // A controller that left: its node ID goes back once its host is gone (never while the
    // node may still run: a new node would take the ID beside it) and it is out of the voter
    // set, unless the controllers are short (a replacement reuses the ID then).
    if let (true, Some(q), Some(registry)) = (desired.spec.is_kraft() && !desired.spec.combined, quorum, observed.registry.known()) {
        let voters: BTreeSet<i32> = q.voters.iter().map(|v| v.node_id).collect();
        let held = held_controller_ids(registry, hosts).len();
        for (id, instance) in registry {
            let gone_controller = hosts.iter().any(|h| &h.instance_id == instance && h.role == HostRole::Controller && !h.state.is_alive());
            if gone_controller && !voters.contains(id) && held.max(voters.len()) >= desired.spec.controllers as usize {
                plan.steps.push(Step::ReleaseBrokerId { broker_id: *id });
            }
        }
    }
    if desired.spec.is_kraft() && !desired.spec.combined {
        plan_voters(desired, observed, hosts, &controllers_leaving, settings, &mut plan);
    }

    // ---- topics: acted on once every declared broker is live, so partitions spread over all.
    let wanted = desired.spec.brokers as usize;
    let live_count = observed.live_brokers.known().map(|l| l.len()).unwrap_or(0);
    let topics_known = observed.topics.known();
    // Topics already as declared have nothing to wait for (a broker out for its grace period
    // must not turn a settled cluster into a polled one).
    let topics_settled = topics_known.is_some_and(|known| {
        desired.topics.iter().all(|t| match known.get(&t.spec.name) {
            Some(o) => !t.deleting && !o.marked_for_deletion && o.partitions >= t.spec.partitions && declared_configs(&o.configs) == t.spec.configs,
            None => t.deleting,
        })
    });
    if live_count < wanted {
        if desired.topics.iter().any(|t| !t.deleting) && !topics_settled {
            plan.waiting.push(format!("{live_count} of {wanted} brokers live: topics wait"));
            plan.wake_after(PROGRESS_POLL_MS);
        }
        // A config change needs no spread: it goes on while a broker is out (a degraded cluster
        // that routes left is sealed through it, and a failover is exactly when one is out).
        if let (Some(topics), true) = (topics_known, live_count > 0) {
            for t in desired.topics.iter().filter(|t| !t.deleting) {
                if let Some(o) = topics.get(&t.spec.name).filter(|o| !o.marked_for_deletion) {
                    plan.steps.extend(alter_configs(t, o));
                }
            }
        }
    } else if let Some(topics) = topics_known {
        for t in &desired.topics {
            let name = &t.spec.name;
            match (topics.get(name), t.deleting) {
                (None, true) => plan.steps.push(Step::ForgetTopic { topic: name.clone() }),
                (Some(o), true) => {
                    if o.marked_for_deletion {
                        plan.wake_after(PROGRESS_POLL_MS);
                        plan.waiting.push(format!("topic {name} is being deleted by Kafka"));
                    } else {
                        plan.steps.push(Step::DeleteTopic { topic: name.clone() });
                    }
                }
                (Some(o), false) if o.marked_for_deletion => {
                    plan.wake_after(PROGRESS_POLL_MS);
                    plan.waiting.push(format!("topic {name} is being deleted by Kafka; it is created again afterwards"));
                }
                (None, false) => plan.steps.push(Step::CreateTopic {
                    topic: name.clone(),
                    partitions: t.spec.partitions,
                    replication_factor: t.spec.replication_factor,
                    configs: t.spec.configs.clone(),
                    assignment: placed_off_leaving(desired, observed, 0, t.spec.partitions, t.spec.replication_factor),
                }),
                (Some(o), false) => {
                    if o.partitions < t.spec.partitions {
                        let assignment = placed_off_leaving(desired, observed, o.partitions, t.spec.partitions - o.partitions, o.replication_factor.max(1));
                        plan.steps.push(Step::CreatePartitions { topic: name.clone(), from: o.partitions, to: t.spec.partitions, assignment });
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
                    plan.steps.extend(alter_configs(t, o));
                }
            }
        }
    } else {
        plan.waiting.push(format!("topics unknown: {}", unknown_reason(&observed.topics)));
        plan.wake_after(PROGRESS_POLL_MS);
    }

    // ---- DNS: records of broker IDs no host holds any more (scale-down, replaced-and-not-reused).
    if let (Some(records), Some(registry)) = (observed.dns.known(), observed.registry.known()) {
        // A node's records by its role: a broker's `broker-<id>`, a controller's
        // `controller-<id>`, a combined node's both.
        let held: BTreeSet<String> = registry
            .iter()
            .filter_map(|(id, instance)| Some((id, alive.iter().find(|h| &h.instance_id == instance)?.role)))
            .flat_map(|(id, role)| {
                let broker = (role != HostRole::Controller).then(|| format!("broker-{id}"));
                let controller = (role != HostRole::Broker).then(|| format!("controller-{id}"));
                broker.into_iter().chain(controller)
            })
            .collect();
        // While a host is being replaced or launched its ID is about to be (re)taken: leave
        // records alone until the hosts settle, so DNS does not flap.
        let settled = in_flight == 0 && !plan.steps.iter().any(|s| matches!(s, Step::LaunchHost { .. } | Step::TerminateHost { .. }));
        for r in records {
            let per_node = r.set_identifier.starts_with("broker-") || r.set_identifier.starts_with("controller-");
            if settled && per_node && !held.contains(&r.set_identifier) {
                plan.steps.push(Step::DeleteDnsRecord { name: r.name.clone(), set_identifier: r.set_identifier.clone(), values: r.values.clone() });
            }
        }
    }
    if in_flight > 0 {
        plan.wake_after(PROGRESS_POLL_MS);
    }
    (plan, next)
}

/// How long a controller may go without fetching from the quorum's leader and still count as
/// live (Kafka's own fetch timeout is 2 s; a voter listed with an old fetch is a dead one).
pub const QUORUM_FETCH_WINDOW_MS: i64 = 15_000;

/// One role's hosts in a cluster, and where its nodes are seen alive.
struct RoleHosts<'a> {
    role: HostRole,
    wanted: usize,
    /// Node IDs seen alive (`None`: unknown, so no host is replaced).
    live: Option<&'a BTreeSet<i32>>,
    /// Where they were looked for, for messages.
    live_source: &'static str,
    instance_type: String,
    /// Hosts replaced at most this many per pass (`None`: every one past its grace).
    max_replacements: Option<usize>,
    /// Why the hosts of these node IDs are not replaced now (the voters, while a voter change
    /// is in flight: replacing a non-voter, such as the joining node, never weakens the quorum).
    replace_held: Option<(String, BTreeSet<i32>)>,
    /// Node IDs on their way out (a decommission's brokers, controllers beyond the declared
    /// count): `true` retires the host now, without replacement; `false` leaves it alone.
    leaving: &'a BTreeMap<i32, bool>,
    /// What new hosts of this role wait for before they are launched (replacements do not).
    launch_held: Option<&'static str>,
}

/// Controllers beyond the declared count (`controllers: 5 -> 3`, or a voter set left with a
/// dead member next to a new node): among the node IDs held by running controller hosts and the
/// voters, silent voters leave first (removing one never weakens the quorum), then nodes outside
/// the voter set, then live voters, highest node ID first; never the quorum leader. `false`:
/// still a voter, removed from the set first ([`plan_voters`]); `true`: out of it, its host
/// retired (its node ID released once the host is gone).
fn leaving_controllers(desired: &DesiredCluster, observed: &ObservedCluster, hosts: &[ObservedHost], live: Option<&BTreeSet<i32>>) -> BTreeMap<i32, bool> {
    let (Some(q), Some(registry), Some(live)) = (observed.quorum.known(), observed.registry.known(), live) else { return BTreeMap::new() };
    let Some(leader) = q.leader_id else { return BTreeMap::new() };
    if desired.spec.combined {
        return BTreeMap::new();
    }
    let held = held_controller_ids(registry, hosts);
    let voters: BTreeSet<i32> = q.voters.iter().map(|v| v.node_id).collect();
    let members: BTreeSet<i32> = &held | &voters;
    let wanted = desired.spec.controllers as usize;
    if members.len() <= wanted {
        return BTreeMap::new();
    }
    let rank = |id: &i32| match (voters.contains(id), live.contains(id)) {
        (true, false) => 0,
        (false, _) => 1,
        (true, true) => 2,
    };
    let mut candidates: Vec<i32> = members.iter().copied().filter(|id| *id != leader).collect();
    candidates.sort_by_key(|id| (rank(id), std::cmp::Reverse(*id)));
    candidates.into_iter().take(members.len() - wanted).map(|id| (id, !voters.contains(&id))).collect()
}

/// Node IDs whose registry lease is held by a controller host that is still alive.
fn held_controller_ids(registry: &BTreeMap<i32, String>, hosts: &[ObservedHost]) -> BTreeSet<i32> {
    registry
        .iter()
        .filter(|(_, instance)| hosts.iter().any(|h| &h.instance_id == *instance && h.role == HostRole::Controller && h.state.is_alive()))
        .map(|(id, _)| *id)
        .collect()
}

/// One role's hosts: those whose node stays missing are replaced (in their zone), hosts beyond the
/// declared count that hold no ID terminated, launches cut off retried with their token, and new
/// ones launched up to the count in the least-populated zones. Returns the launches in flight.
#[allow(clippy::too_many_arguments)]
fn plan_role_hosts(
    desired: &DesiredCluster,
    observed: &ObservedCluster,
    intent: &ClusterIntent,
    settings: PlanSettings,
    hosts: &[ObservedHost],
    r: &RoleHosts,
    plan: &mut Plan,
    next: &mut ClusterIntent,
) -> usize {
    let alive: Vec<&ObservedHost> = hosts.iter().filter(|h| h.state.is_alive() && h.role == r.role).collect();
    let seen_ids: BTreeSet<&str> = hosts.iter().map(|h| h.instance_id.as_str()).collect();
    let seen_tokens: BTreeSet<&str> = hosts.iter().filter_map(|h| h.launch_token.as_deref()).collect();
    // Launches not yet visible still count, for a while, in the zone they were asked for.
    let in_flight: Vec<(&String, &LaunchIntent)> = intent
        .launches
        .iter()
        .filter(|(token, l)| {
            l.role == r.role
                && !seen_tokens.contains(token.as_str())
                && !l.instance_id.as_deref().is_some_and(|id| seen_ids.contains(id))
                && settings.now_ms - l.at_ms < settings.launch_visibility_ms
        })
        .collect();
    for (token, l) in &in_flight {
        next.launches.insert((*token).clone(), (*l).clone());
        plan.wake_after(l.at_ms + settings.launch_visibility_ms - settings.now_ms);
        if l.instance_id.is_none() {
            // Decided, but no answer was received (cut off, timed out, crashed): ask again with
            // the same token, which finds the host if the first call made one.
            plan.steps.push(Step::LaunchHost {
                availability_zone: l.availability_zone.clone(),
                instance_type: r.instance_type.clone(),
                reason: "launch retried with its token".into(),
                token: (*token).clone(),
                role: r.role,
            });
        }
    }
    let mut terminations: Vec<(String, String, String)> = Vec::new(); // (instance, az, reason)
    let mut retirements: Vec<(String, String)> = Vec::new(); // (instance, reason)

    // Replace hosts whose broker stays missing.
    let noun = r.role.noun();
    let source = r.live_source;
    // Capped roles replace one host at a time across passes too: while a replacement (or any
    // launch) of this role has not come up within its grace, no other host of it is taken.
    let settling = r.max_replacements.is_some()
        && (!in_flight.is_empty()
            || alive.iter().any(|h| {
                let holds_live_id = observed.registry.known().is_some_and(|reg| reg.iter().any(|(id, i)| i == &h.instance_id && r.live.is_some_and(|l| l.contains(id))));
                settings.now_ms - h.launched_ms < settings.replace_grace_ms && !holds_live_id
            }));
    match (observed.registry.known(), r.live) {
        (Some(registry), Some(live)) => {
            for (broker_id, instance_id) in registry {
                let Some(host) = alive.iter().find(|h| &h.instance_id == instance_id) else { continue };
                match r.leaving.get(broker_id) {
                    // Retired (by its operation, or out of the voter set): the host goes, no replacement.
                    Some(true) => {
                        let why = if r.role == HostRole::Controller { "left the voter set (fewer controllers declared)" } else { "retired (decommissioned)" };
                        retirements.push((host.instance_id.clone(), format!("{noun} {broker_id} {why}")));
                        continue;
                    }
                    // Its replicas are moving off: the host is left alone, missing or not.
                    Some(false) => continue,
                    None => {}
                }
                if live.contains(broker_id) {
                    continue;
                }
                let since = intent.missing_since.get(broker_id).copied().unwrap_or(settings.now_ms);
                let missing_ms = settings.now_ms - since;
                if let Some(op) = desired.restarting.get(broker_id) {
                    plan.waiting.push(format!("{noun} {broker_id} not in {source}: {op} restarts it; its host is not replaced meanwhile"));
                    // The grace counts from when the hold ends, not from before it.
                    next.missing_since.insert(*broker_id, settings.now_ms);
                    plan.wake_after(PROGRESS_POLL_MS);
                } else if let Some(why) = desired.frozen.as_ref().or(r.replace_held.as_ref().filter(|(_, ids)| ids.contains(broker_id)).map(|(why, _)| why)) {
                    plan.waiting.push(format!("{noun} {broker_id} not in {source}; its host is not replaced while {why}"));
                    next.missing_since.insert(*broker_id, since);
                    plan.wake_after(PROGRESS_POLL_MS);
                } else if missing_ms >= settings.replace_grace_ms && (settling || r.max_replacements.is_some_and(|m| terminations.len() >= m)) {
                    // One at a time: a verdict of "missing" from one controller is not trusted to
                    // take several hosts (and their logs) at once.
                    plan.waiting.push(format!("{noun} {broker_id} (host {instance_id}) missing from {source}: replaced after the one being replaced now comes up"));
                    next.missing_since.insert(*broker_id, since);
                    plan.wake_after(PROGRESS_POLL_MS);
                } else if missing_ms >= settings.replace_grace_ms {
                    terminations.push((
                        host.instance_id.clone(),
                        host.availability_zone.clone(),
                        format!("{noun} {broker_id} missing from {source} for {}s", missing_ms / 1000),
                    ));
                } else {
                    next.missing_since.insert(*broker_id, since);
                    plan.wake_after(since + settings.replace_grace_ms - settings.now_ms);
                    plan.waiting.push(format!(
                        "{noun} {broker_id} (host {instance_id}) not in {source} for {}s; the host is replaced after {}s",
                        missing_ms / 1000,
                        settings.replace_grace_ms / 1000
                    ));
                }
            }
        }
        _ => plan.waiting.push(format!("{noun} registrations unknown ({source}): host replacement paused")),
    }

    let wanted = r.wanted;
    let remaining = alive.len() - terminations.len() - retirements.len() + in_flight.len();
    if remaining > wanted {
        // More hosts than brokers declared: only after a crash between launch and bookkeeping,
        // or a manual launch. Terminate the newest that hold no broker ID; never one that does.
        let holders: BTreeSet<&String> = observed.registry.known().map(|r| r.values().collect()).unwrap_or_default();
        let mut spare: Vec<&&ObservedHost> = alive
            .iter()
            .filter(|h| !holders.contains(&h.instance_id) && !terminations.iter().any(|t| t.0 == h.instance_id) && !retirements.iter().any(|t| t.0 == h.instance_id))
            .collect();
        spare.sort_by_key(|h| std::cmp::Reverse(h.launched_ms));
        let extra = remaining - wanted;
        if observed.registry.known().is_some() {
            for h in spare.into_iter().take(extra) {
                // A host younger than the grace period may be about to take an ID; wait.
                if settings.now_ms - h.launched_ms < settings.replace_grace_ms {
                    plan.wake_after(h.launched_ms + settings.replace_grace_ms - settings.now_ms);
                    plan.waiting.push(format!("host {} is extra but young; terminated if it stays extra", h.instance_id));
                    continue;
                }
                plan.steps.push(Step::TerminateHost { instance_id: h.instance_id.clone(), reason: "more hosts than declared brokers".into() });
            }
        }
        plan.warnings.push(format!("{remaining} {noun} hosts for {wanted} declared"));
    }
    // Each replacement goes to the zone of the host it replaces (its rack).
    let mut per_az: BTreeMap<String, usize> = desired.spec.availability_zones.iter().map(|az| (az.clone(), 0)).collect();
    for h in &alive {
        if !terminations.iter().any(|t| t.0 == h.instance_id) && !retirements.iter().any(|t| t.0 == h.instance_id) {
            *per_az.entry(h.availability_zone.clone()).or_default() += 1;
        }
    }
    for (_, l) in &in_flight {
        if !l.availability_zone.is_empty() {
            *per_az.entry(l.availability_zone.clone()).or_default() += 1;
        }
    }
    let new_launch = |plan: &mut Plan, next: &mut ClusterIntent, az: String, reason: String| {
        next.launch_seq += 1;
        let token = launch_token(&desired.uid, &desired.spec.name, next.launch_seq);
        next.launches.insert(token.clone(), LaunchIntent { availability_zone: az.clone(), at_ms: settings.now_ms, instance_id: None, role: r.role });
        plan.steps.push(Step::LaunchHost { availability_zone: az, instance_type: r.instance_type.clone(), reason, token, role: r.role });
    };
    for (instance_id, reason) in &retirements {
        plan.steps.push(Step::TerminateHost { instance_id: instance_id.clone(), reason: reason.clone() });
    }
    for (instance_id, az, reason) in &terminations {
        plan.steps.push(Step::TerminateHost { instance_id: instance_id.clone(), reason: reason.clone() });
        new_launch(plan, next, az.clone(), format!("replaces {instance_id}"));
        *per_az.entry(az.clone()).or_default() += 1;
    }
    let count_after = remaining + terminations.len();
    if let Some(why) = r.launch_held.filter(|_| count_after < wanted) {
        plan.waiting.push(format!("{} {noun} host(s) launched once {why}", wanted - count_after));
        plan.wake_after(PROGRESS_POLL_MS);
        return in_flight.len();
    }
    for i in count_after..wanted.max(count_after) {
        // The least-populated declared zone, first in declaration order on ties.
        let Some(az) = desired.spec.availability_zones.iter().min_by_key(|az| per_az.get(*az).copied().unwrap_or(0)).cloned() else {
            break;
        };
        *per_az.entry(az.clone()).or_default() += 1;
        new_launch(plan, next, az, format!("{noun} {} of {wanted}", i + 1));
    }
    in_flight.len()
}

/// How far behind the quorum's high watermark a joining controller may be and count as caught up
/// (the leader writes a no-op record every 500 ms, so the watermark never stands still).
pub const VOTER_CATCH_UP_RECORDS: i64 = 1_000;

/// The voter set, repaired as Kafka's dynamic quorum allows (KIP-853): a controller host replaced
/// keeps its node ID and boots a new metadata directory, joining as an observer; the old
/// directory's voter is removed, then the new one added once it caught up. One change per pass
/// (the leader refuses a second while one is uncommitted), never the leader's own entry, and
/// nothing while the quorum is unknown or leaderless.
fn plan_voters(
    desired: &DesiredCluster,
    observed: &ObservedCluster,
    hosts: &[ObservedHost],
    leaving: &BTreeMap<i32, bool>,
    settings: PlanSettings,
    plan: &mut Plan,
) {
    let (Some(q), Some(registry)) = (observed.quorum.known(), observed.registry.known()) else { return };
    let Some(leader) = q.leader_id else {
        plan.waiting.push("the controller quorum has no leader".into());
        plan.wake_after(PROGRESS_POLL_MS);
        return;
    };
    // Node IDs held by running controller hosts: only those are added or repaired.
    let controller_host = |id: i32| {
        let instance = registry.get(&id)?;
        hosts.iter().find(|h| &h.instance_id == instance && h.role == HostRole::Controller && h.state == HostState::Running)
    };
    let clock = q.clock_ms().unwrap_or(settings.now_ms);
    // The leader keeps listing nodes that fetched a while ago (a removed voter's old directory,
    // a replaced broker's old incarnation) as observers: only fresh fetches count. A leader
    // elected after a voter died reports that voter with no fetch time at all (-1): silent.
    let fresh = |m: &QuorumMember| m.last_fetch_ms >= clock - QUORUM_FETCH_WINDOW_MS;
    // Before the first commit of a new leader the watermark is unknown (-1): nobody is caught up.
    let caught_up = |m: &QuorumMember| q.high_watermark >= 0 && q.high_watermark - m.log_end_offset <= VOTER_CATCH_UP_RECORDS;
    // The node's current directory, as its last boot recorded it: a voter on any other
    // directory of that node is gone with an old disk.
    let current = |id: i32| q.current_directories.get(&id).filter(|d| !d.is_empty());
    // A voter that stopped fetching weakens the quorum: said while it lasts (not converged).
    for v in q.voters.iter().filter(|v| v.node_id != leader && !fresh(v)) {
        let silent = if v.last_fetch_ms > 0 { format!("for {}s", (clock - v.last_fetch_ms) / 1000) } else { "since the leader was elected".to_string() };
        plan.waiting.push(format!("voter {} (directory {}) has not fetched from the leader {silent}", v.node_id, v.directory_id));
        plan.wake_after(PROGRESS_POLL_MS);
    }
    for v in &q.voters {
        // Replaced: the node records another directory as its current one, that directory
        // fetches, caught up, and this one does not.
        let Some(now_dir) = current(v.node_id) else { continue };
        let replaced = *now_dir != v.directory_id
            && !fresh(v)
            && q.observers.iter().any(|o| o.node_id == v.node_id && o.directory_id == *now_dir && fresh(o) && caught_up(o));
        if replaced && v.node_id != leader && controller_host(v.node_id).is_some() {
            plan.steps.push(Step::RemoveVoter {
                node_id: v.node_id,
                directory_id: v.directory_id.clone(),
                reason: format!("controller {} runs directory {now_dir} now; this one is gone with its old host", v.node_id),
            });
            plan.wake_after(PROGRESS_POLL_MS);
            return;
        }
    }
    let voters: BTreeSet<i32> = q.voters.iter().map(|v| v.node_id).collect();
    let wanted = desired.spec.controllers as usize;
    // Fewer controllers declared: one leaving voter out per pass, never below the declared
    // count, never the leader (it was not chosen to leave).
    if voters.len() > wanted {
        // A silent voter first, then the highest node ID (the newest controllers, as added).
        let mut out: Vec<&QuorumMember> = leaving.iter().filter(|(id, out)| !**out && **id != leader).filter_map(|(id, _)| q.voters.iter().find(|v| v.node_id == *id)).collect();
        out.sort_by_key(|v| (fresh(v), std::cmp::Reverse(v.node_id)));
        // The set left behind keeps a live majority, and a live voter leaves only a set whose
        // every member is live (shrinking never trades away the margin for one more loss).
        let safe = |v: &QuorumMember| {
            let rest: Vec<&QuorumMember> = q.voters.iter().filter(|r| r.node_id != v.node_id).collect();
            let live_rest = rest.iter().filter(|r| r.node_id == leader || fresh(r)).count();
            live_rest > rest.len() / 2 && (!fresh(v) || live_rest == rest.len())
        };
        if let Some(v) = out.first().filter(|v| !safe(v)) {
            plan.waiting.push(format!("voter {} leaves the set once the rest of the quorum is live (a voter is silent)", v.node_id));
            plan.wake_after(PROGRESS_POLL_MS);
            return;
        }
        if let Some(v) = out.first() {
            plan.steps.push(Step::RemoveVoter {
                node_id: v.node_id,
                directory_id: v.directory_id.clone(),
                reason: format!("{} voters for {wanted} declared controllers; its host is retired once it is out", voters.len()),
            });
            plan.wake_after(PROGRESS_POLL_MS);
            return;
        }
    }
    if voters.len() >= wanted {
        return;
    }
    let mut behind = Vec::new();
    for o in q.observers.iter().filter(|o| fresh(o) && !leaving.contains_key(&o.node_id)) {
        let Some(host) = controller_host(o.node_id) else { continue };
        // Only the node's current directory joins (never an old one the leader still lists).
        if voters.contains(&o.node_id) || current(o.node_id) != Some(&o.directory_id) {
            continue;
        }
        let Some(ip) = host.private_ip.clone().filter(|ip| !ip.is_empty()) else { continue };
        if !caught_up(o) {
            behind.push(format!("controller {} joins the voters once caught up (lag {} records)", o.node_id, (q.high_watermark - o.log_end_offset).max(0)));
            continue;
        }
        plan.steps.push(Step::AddVoter {
            node_id: o.node_id,
            directory_id: o.directory_id.clone(),
            host: ip,
            port: host.port.unwrap_or(9093),
            reason: format!("{} of {} voters; it caught up (lag {})", voters.len(), desired.spec.controllers, (q.high_watermark - o.log_end_offset).max(0)),
        });
        plan.wake_after(PROGRESS_POLL_MS);
        return;
    }
    if behind.is_empty() {
        behind.push(format!("{} of {} voters: waiting for a controller to join as an observer", voters.len(), desired.spec.controllers));
    }
    plan.waiting.extend(behind);
    plan.wake_after(PROGRESS_POLL_MS);
}

/// The step that makes `observed`'s declared configs `t`'s, if they differ.
fn alter_configs(t: &DesiredTopic, o: &ObservedTopic) -> Option<Step> {
    let observed_configs = declared_configs(&o.configs);
    if observed_configs == t.spec.configs {
        return None;
    }
    let keys: BTreeSet<&String> = observed_configs.keys().chain(t.spec.configs.keys()).collect();
    let changed: Vec<String> = keys.into_iter().filter(|k| observed_configs.get(*k) != t.spec.configs.get(*k)).cloned().collect();
    // Kafka's AlterConfigs replaces the whole set: the throttles a running decommission or
    // rebalance set are carried over, not wiped.
    let mut configs = t.spec.configs.clone();
    configs.extend(o.configs.iter().filter(|(k, _)| THROTTLE_CONFIGS.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())));
    Some(Step::AlterTopicConfigs { topic: t.spec.name.clone(), configs, changed })
}

/// A cluster routes have left and sealed: its topics (but the canary's and Kafka's internal
/// ones) desired with the seal, so it is applied like any declared config and taken away the
/// same way once a route comes back.
fn sealed(desired: &DesiredCluster) -> Option<DesiredCluster> {
    if desired.sealed_for.is_empty() || desired.deleting {
        return None;
    }
    let mut out = desired.clone();
    let (key, value) = fleet_api::route::SEAL_CONFIG;
    for t in out.topics.iter_mut().filter(|t| t.spec.name != fleet_api::route::CANARY_TOPIC && !t.spec.name.starts_with("__")) {
        t.spec.configs.insert(key.to_string(), value.to_string());
    }
    Some(out)
}

/// Topic configs that operations set while replicas move; never declared, never reconciled.
pub const THROTTLE_CONFIGS: [&str; 2] = ["leader.replication.throttled.replicas", "follower.replication.throttled.replicas"];

/// A topic's observed configs without the ones operations manage.
fn declared_configs(configs: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    configs.iter().filter(|(k, _)| !THROTTLE_CONFIGS.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// A launch token: the cluster resource's UID (never reused, unlike its name) and a counter.
/// EC2 takes up to 64 ASCII characters.
pub fn launch_token(uid: &str, cluster: &str, seq: u64) -> String {
    let base = if uid.is_empty() { cluster } else { uid };
    let token = format!("{base}-{seq}");
    if token.len() <= 64 {
        token
    } else {
        let keep = 64 - seq.to_string().len() - 1;
        format!("{}-{seq}", &base[..keep.min(base.len())])
    }
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
                plan.steps.push(Step::DeleteDnsRecord { name: r.name.clone(), set_identifier: r.set_identifier.clone(), values: r.values.clone() });
                blocked = true;
            }
        }
        None => {
            plan.waiting.push(format!("DNS unknown: {}", unknown_reason(&observed.dns)));
            blocked = true;
        }
    }
    if blocked {
        return;
    }
    // The ZooKeeper state goes last, once no broker can still be using it: a registered broker
    // means a host we cannot see is alive (its registry entry and chroot are in use).
    match (observed.live_brokers.known(), observed.zk_state.known()) {
        (Some(live), _) if !live.is_empty() => {
            let ids: Vec<String> = live.iter().map(|i| i.to_string()).collect();
            plan.waiting.push(format!("broker(s) {} still registered in /brokers/ids: ZooKeeper state kept until they leave", ids.join(", ")));
        }
        (Some(_), Some(true)) => plan.steps.push(Step::DeleteClusterState),
        (Some(_), Some(false)) => plan.steps.push(Step::ForgetCluster),
        (None, _) => plan.waiting.push(format!("broker registrations unknown: {}", unknown_reason(&observed.live_brokers))),
        (_, None) => plan.waiting.push(format!("ZooKeeper state unknown: {}", unknown_reason(&observed.zk_state))),
    }
}

fn unknown_reason<T>(seen: &Seen<T>) -> &str {
    match seen {
        Seen::Unknown(why) => why,
        Seen::Known(_) => "",
    }
}

/// The kind of host a launch asks for: an EC2 instance type, or `local` (a process on this
/// machine, whatever the spec's instance type says).
fn host_type(desired: &DesiredCluster, role: HostRole) -> String {
    match (desired.spec.provider, role) {
        (fleet_api::spec::ProviderKind::Local, _) => "local".into(),
        (fleet_api::spec::ProviderKind::Ec2, HostRole::Controller) => desired.spec.controller_instance_type.clone(),
        (fleet_api::spec::ProviderKind::Ec2, _) => desired.spec.instance_type.clone(),
    }
}

/// Replicas for `count` new partitions (numbered from `first`) on the live brokers that are not
/// leaving, when a decommission is under way: Kafka would otherwise place some on the brokers
/// about to go, and their hosts would be terminated with those replicas. Round-robin with the
/// starting broker moving one per partition, as Kafka's own placement without racks. `None`
/// when nothing leaves (Kafka places them) or too few brokers stay for the replication factor.
fn placed_off_leaving(desired: &DesiredCluster, observed: &ObservedCluster, first: u32, count: u32, rf: u16) -> Option<Vec<Vec<i32>>> {
    if desired.leaving.is_empty() {
        return None;
    }
    let staying: Vec<i32> = observed.live_brokers.known()?.iter().copied().filter(|b| !desired.leaving.contains_key(b)).collect();
    if staying.len() < usize::from(rf) || staying.is_empty() {
        return None;
    }
    Some(
        (0..count)
            .map(|i| {
                let start = (first + i) as usize % staying.len();
                (0..usize::from(rf)).map(|r| staying[(start + r) % staying.len()]).collect()
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{ClusterSpec, PriorityClass, ProviderKind, TopicSpec};

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
                controllers: 0,
                controller_instance_type: String::new(),
                combined: false,
            },
            deleting: false,
            leaving: BTreeMap::new(),
            frozen: None,
            sealed_for: Vec::new(),
            restarting: Default::default(),
            topics: vec![DesiredTopic {
                spec: TopicSpec {
                    cluster: "blue".into(),
                    name: "orders".into(),
                    partitions: 6,
                    replication_factor: 2,
                    priority_class: PriorityClass::Medium,
                    configs: [("retention.ms".to_string(), "14400000".to_string())].into(),
                    keyed: false,
                },
                deleting: false,
            }],
            revision: 1,
            uid: "uid-blue".into(),
        }
    }

    fn host(id: &str, az: &str) -> ObservedHost {
        ObservedHost { instance_id: id.into(), availability_zone: az.into(), state: HostState::Running, launched_ms: 0, launch_token: None, private_ip: None, port: None, role: Default::default() }
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
            zk_state: Seen::Known(false),
            quorum: Seen::Unknown("ZooKeeper mode".into()),
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

    /// Controller hosts c0-c2 then broker hosts b0-b2 over zones a-c ([`observed`] numbers
    /// them 1-6 in the registry).
    fn controllers_then_brokers() -> Vec<ObservedHost> {
        ["a", "b", "c"]
            .iter()
            .enumerate()
            .map(|(i, az)| ObservedHost { role: HostRole::Controller, ..host(&format!("c{i}"), az) })
            .chain(["a", "b", "c"].iter().enumerate().map(|(i, az)| host(&format!("b{i}"), az)))
            .collect()
    }

    fn kraft_cluster(brokers: u32) -> DesiredCluster {
        let mut c = cluster(brokers);
        c.spec.kafka_version = "4.4".into();
        c.spec.controllers = 3;
        c.spec.controller_instance_type = "m5.large".into();
        c
    }

    fn launches(plan: &Plan) -> Vec<(HostRole, &str)> {
        plan.steps
            .iter()
            .filter_map(|s| match s {
                Step::LaunchHost { availability_zone, role, .. } => Some((*role, availability_zone.as_str())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_kraft_cluster_launches_its_controllers_first_then_its_brokers_over_the_zones() {
        let (plan, next) = plan_cluster(&kraft_cluster(3), &observed(vec![], &[]), &ClusterIntent::default(), settings(0));
        use HostRole::{Broker, Controller};
        assert_eq!(launches(&plan), [(Controller, "a"), (Controller, "b"), (Controller, "c")], "brokers wait for a quorum leader");
        assert!(plan.waiting.iter().any(|w| w.contains("3 broker host(s) launched once the controller quorum has a leader")), "{:?}", plan.waiting);
        assert_eq!(next.launches.values().filter(|l| l.role == Controller).count(), 3, "each launch remembers its role");
        // No answer yet: each launch retried with its own token as the same kind of host, no new one.
        let (plan, again) = plan_cluster(&kraft_cluster(3), &observed(vec![], &[]), &next, settings(1_000));
        let retried: BTreeSet<(String, HostRole)> = plan
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::LaunchHost { token, role, .. } => Some((token.clone(), *role)),
                _ => None,
            })
            .collect();
        assert_eq!(retried, next.launches.iter().map(|(t, l)| (t.clone(), l.role)).collect(), "{plan:?}");
        assert_eq!(again.launch_seq, next.launch_seq);
        // Three controllers up, a leader elected: only the brokers are missing.
        let mut hosts: Vec<ObservedHost> = ["a", "b", "c"].iter().enumerate().map(|(i, az)| ObservedHost { role: Controller, ..host(&format!("c{i}"), az) }).collect();
        let mut led = observed(hosts.clone(), &[]);
        led.quorum = Seen::Known(ObservedQuorum { leader_id: Some(1), ..Default::default() });
        let (plan, _) = plan_cluster(&kraft_cluster(3), &led, &ClusterIntent::default(), settings(0));
        assert_eq!(launches(&plan), [(Broker, "a"), (Broker, "b"), (Broker, "c")]);
        hosts.extend(["a", "b", "c"].iter().enumerate().map(|(i, az)| host(&format!("b{i}"), az)));
        let (plan, _) = plan_cluster(&kraft_cluster(3), &observed(hosts, &[4, 5, 6]), &ClusterIntent::default(), settings(0));
        assert!(launches(&plan).is_empty(), "{plan:?}");
    }

    #[test]
    fn a_controller_gone_from_the_quorum_is_replaced_in_its_zone_after_the_grace() {
        let desired = kraft_cluster(3);
        let hosts = controllers_then_brokers();
        // Registry: controllers 1-3, brokers 4-6 (the helper numbers hosts in order).
        let mut o = observed(hosts, &[4, 5, 6]);
        let now = 1_000_000;
        let member = |id: i32, fetched: i64| QuorumMember { node_id: id, directory_id: format!("dir{id}"), log_end_offset: 10, last_fetch_ms: fetched };
        // Voter 2 last fetched long ago: dead, though still listed as a voter.
        o.quorum = Seen::Known(ObservedQuorum { leader_id: Some(1), leader_epoch: 3, high_watermark: 10, voters: vec![member(1, now), member(2, now - 60_000), member(3, now - 500)], observers: vec![], ..Default::default() });
        let at = |ms: i64| PlanSettings { now_ms: ms, ..settings(0) };
        let (plan, next) = plan_cluster(&desired, &o, &ClusterIntent::default(), at(now));
        assert!(launches(&plan).is_empty(), "within the grace: {plan:?}");
        assert!(plan.waiting.iter().any(|w| w.contains("controller 2") && w.contains("controller quorum")), "{:?}", plan.waiting);
        let (plan, _) = plan_cluster(&desired, &o, &next, at(now + settings(0).replace_grace_ms));
        assert!(plan.steps.iter().any(|s| matches!(s, Step::TerminateHost { instance_id, .. } if instance_id == "c1")), "{plan:?}");
        assert_eq!(launches(&plan), [(HostRole::Controller, "b")], "a controller replaces it, in its zone");
        // A broker missing while the quorum has no leader is waited for, not replaced.
        let mut leaderless = o.clone();
        leaderless.live_brokers = Seen::Known([4, 5].into());
        leaderless.quorum = Seen::Known(ObservedQuorum { leader_id: None, ..Default::default() });
        let (plan, _) = plan_cluster(&desired, &leaderless, &next, at(now + 10 * settings(0).replace_grace_ms));
        assert!(!plan.steps.iter().any(|s| matches!(s, Step::TerminateHost { instance_id, .. } if instance_id == "b2")), "{plan:?}");
        // The quorum unknown: no controller is replaced on a guess.
        o.quorum = Seen::Unknown("no node answered".into());
        let (plan, _) = plan_cluster(&desired, &o, &next, at(now + 10 * settings(0).replace_grace_ms));
        assert!(launches(&plan).is_empty() && !plan.steps.iter().any(|s| matches!(s, Step::TerminateHost { .. })), "{plan:?}");
    }

    #[test]
    fn a_nodes_records_are_kept_by_its_role_and_the_rest_removed() {
        let hosts = controllers_then_brokers();
        // Registry: controllers 1-3, brokers 4-6.
        let mut o = observed(hosts, &[4, 5, 6]);
        let member = |id: i32| QuorumMember { node_id: id, directory_id: format!("dir{id}"), log_end_offset: 10, last_fetch_ms: 0 };
        o.quorum = Seen::Known(ObservedQuorum { leader_id: Some(1), voters: vec![member(1), member(2), member(3)], ..Default::default() });
        let record = |name: &str, set: &str| DnsRecordSet { name: format!("{name}.blue.local"), set_identifier: set.into(), values: vec!["127.0.0.1:9092".into()] };
        o.dns = Seen::Known(vec![
            record("controller-1", "controller-1"),
            record("broker-4", "broker-4"),
            DnsRecordSet { name: "blue.local".into(), set_identifier: "broker-4".into(), values: vec![] },
            // Node 4 is a broker, 1 a controller, 9 held by nobody (a controller retired by a resize).
            record("controller-4", "controller-4"),
            record("broker-1", "broker-1"),
            record("controller-9", "controller-9"),
        ]);
        let (plan, _) = plan_cluster(&kraft_cluster(3), &o, &ClusterIntent::default(), settings(0));
        let deleted: BTreeSet<String> = plan
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::DeleteDnsRecord { name, .. } => Some(name.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(deleted, ["broker-1.blue.local", "controller-4.blue.local", "controller-9.blue.local"].map(String::from).into(), "{plan:?}");
    }

    #[test]
    fn kraft_hosts_are_replaced_one_at_a_time_across_passes() {
        let desired = kraft_cluster(3);
        let now = 1_000_000;
        let at = PlanSettings { now_ms: now, ..settings(0) };
        let mut hosts: Vec<ObservedHost> = ["a", "b", "c"]
            .iter()
            .enumerate()
            .map(|(i, az)| ObservedHost { role: HostRole::Controller, ..host(&format!("c{i}"), az) })
            .chain(["a", "b", "c"].iter().enumerate().map(|(i, az)| host(&format!("b{i}"), az)))
            .collect();
        let mut o = observed(hosts.clone(), &[4]);
        let member = |id: i32| QuorumMember { node_id: id, directory_id: format!("d{id}"), log_end_offset: 10, last_fetch_ms: now };
        o.quorum = Seen::Known(ObservedQuorum { leader_id: Some(1), leader_epoch: 1, high_watermark: 10, voters: vec![member(1), member(2), member(3)], ..Default::default() });
        // Brokers 5 and 6 fenced for long past the grace: one host goes this pass.
        let intent = ClusterIntent { missing_since: [(5, 0), (6, 0)].into(), ..Default::default() };
        let (plan, next) = plan_cluster(&desired, &o, &intent, at);
        let terminated: Vec<&String> = plan.steps.iter().filter_map(|s| match s { Step::TerminateHost { instance_id, .. } => Some(instance_id), _ => None }).collect();
        assert_eq!(terminated.len(), 1, "{plan:?}");
        // The next pass: that host gone, its replacement up but not yet registered. The other
        // missing broker waits for it rather than going too.
        let gone = terminated[0].clone();
        hosts.iter_mut().filter(|h| h.instance_id == gone).for_each(|h| h.state = HostState::Terminated);
        hosts.push(ObservedHost { launched_ms: now, launch_token: next.launches.keys().next().cloned(), ..host("b9", "b") });
        let mut o2 = o.clone();
        o2.hosts = Seen::Known(hosts);
        let (plan, _) = plan_cluster(&desired, &o2, &next, PlanSettings { now_ms: now + 2_000, ..at });
        assert!(!plan.steps.iter().any(|s| matches!(s, Step::TerminateHost { .. })), "{plan:?}");
        assert!(plan.waiting.iter().any(|w| w.contains("replaced after")), "{:?}", plan.waiting);
    }

    #[test]
    fn controllers_resized_in_place_one_voter_at_a_time() {
        let now = 1_000_000;
        let at = PlanSettings { now_ms: now, ..settings(0) };
        let controllers = |n: usize| -> Vec<ObservedHost> {
            (0..n)
                .map(|i| ObservedHost { role: HostRole::Controller, private_ip: Some(format!("10.0.0.{i}")), port: Some(9090 + i as u16), ..host(&format!("c{i}"), ["a", "b", "c"][i % 3]) })
                .collect()
        };
        let brokers = || ["a", "b", "c"].iter().enumerate().map(|(i, az)| host(&format!("b{i}"), az)).collect::<Vec<_>>();
        let member = |id: i32| QuorumMember { node_id: id, directory_id: format!("d{id}"), log_end_offset: 500, last_fetch_ms: now - 100 };
        let voter_steps = |plan: &Plan| plan.steps.iter().filter(|s| matches!(s, Step::RemoveVoter { .. } | Step::AddVoter { .. })).cloned().collect::<Vec<_>>();
        let terminated = |plan: &Plan| plan.steps.iter().filter_map(|s| match s { Step::TerminateHost { instance_id, .. } => Some(instance_id.clone()), _ => None }).collect::<Vec<_>>();

        // 3 -> 5: two controller hosts launched; once up (IDs 7, 8, observers), added one per pass.
        let mut five = kraft_cluster(3);
        five.spec.controllers = 5;
        let mut o = observed([controllers(3), brokers()].concat(), &[4, 5, 6]);
        let quorum = ObservedQuorum { leader_id: Some(1), leader_epoch: 1, high_watermark: 500, voters: vec![member(1), member(2), member(3)], ..Default::default() };
        o.quorum = Seen::Known(quorum.clone());
        let (plan, _) = plan_cluster(&five, &o, &ClusterIntent::default(), at);
        assert_eq!(launches(&plan).iter().filter(|(r, _)| *r == HostRole::Controller).count(), 2, "{plan:?}");
        let mut hosts = [controllers(3), brokers()].concat();
        hosts.extend(controllers(5).into_iter().skip(3));
        let mut o5 = observed(hosts, &[4, 5, 6]);
        let Seen::Known(mut registry) = o5.registry.clone() else { panic!("registry") };
        registry.insert(7, "c3".into());
        registry.insert(8, "c4".into());
        o5.registry = Seen::Known(registry);
        let mut growing = quorum.clone();
        growing.observers = vec![member(7), member(8)];
        growing.current_directories = (1..=8).map(|id| (id, format!("d{id}"))).collect();
        o5.quorum = Seen::Known(growing.clone());
        let (plan, _) = plan_cluster(&five, &o5, &ClusterIntent::default(), at);
        assert!(matches!(&voter_steps(&plan)[..], [Step::AddVoter { node_id: 7, .. }]), "{plan:?}");
        growing.voters.push(member(7));
        growing.observers.retain(|m| m.node_id != 7);
        o5.quorum = Seen::Known(growing.clone());
        let (plan, _) = plan_cluster(&five, &o5, &ClusterIntent::default(), at);
        assert!(matches!(&voter_steps(&plan)[..], [Step::AddVoter { node_id: 8, .. }]), "{plan:?}");
        growing.voters.push(member(8));
        growing.observers.clear();
        o5.quorum = Seen::Known(growing.clone());
        let (plan, _) = plan_cluster(&five, &o5, &ClusterIntent::default(), at);
        assert!(voter_steps(&plan).is_empty() && terminated(&plan).is_empty(), "whole at 5: {plan:?}");

        // 5 -> 3 with controller 8 leading: the highest IDs but the leader's leave, one voter per
        // pass; a host is retired (and its ID released) only once its node is out of the set.
        let three = kraft_cluster(3);
        let mut led_by_8 = growing.clone();
        led_by_8.leader_id = Some(8);
        o5.quorum = Seen::Known(led_by_8.clone());
        let (plan, _) = plan_cluster(&three, &o5, &ClusterIntent::default(), at);
        assert!(matches!(&voter_steps(&plan)[..], [Step::RemoveVoter { node_id: 7, .. }]), "{plan:?}");
        assert!(terminated(&plan).is_empty() && launches(&plan).is_empty(), "no host goes while its node votes: {plan:?}");
        // 7 out (still running, an observer now), the leader moved to 1: 7 is retired, 8 leaves the set next.
        let mut shrinking = led_by_8.clone();
        shrinking.leader_id = Some(1);
        shrinking.voters.retain(|v| v.node_id != 7);
        shrinking.observers = vec![member(7)];
        o5.quorum = Seen::Known(shrinking.clone());
        let (plan, _) = plan_cluster(&three, &o5, &ClusterIntent::default(), at);
        assert!(matches!(&voter_steps(&plan)[..], [Step::RemoveVoter { node_id: 8, .. }]), "{plan:?}");
        assert_eq!(terminated(&plan), ["c3"], "{plan:?}");
        assert!(launches(&plan).is_empty(), "not replaced: {plan:?}");
        assert!(!plan.steps.iter().any(|s| matches!(s, Step::ReleaseBrokerId { .. })), "no ID released while its host may still run: {plan:?}");
        // Its host gone: node ID 7 is released (it is out of the voter set).
        let mut gone = o5.clone();
        let Seen::Known(mut h) = gone.hosts.clone() else { panic!("hosts") };
        h.iter_mut().filter(|h| h.instance_id == "c3").for_each(|h| h.state = HostState::Terminated);
        gone.hosts = Seen::Known(h);
        let (plan, _) = plan_cluster(&three, &gone, &ClusterIntent::default(), at);
        assert!(plan.steps.contains(&Step::ReleaseBrokerId { broker_id: 7 }) && launches(&plan).is_empty(), "{plan:?}");
        // Never below the declared count: with 3 voters left, the extra host is retired, no voter removed.
        shrinking.voters.retain(|v| v.node_id != 8);
        shrinking.observers = vec![member(7), member(8)];
        o5.quorum = Seen::Known(shrinking);
        let (plan, _) = plan_cluster(&three, &o5, &ClusterIntent::default(), at);
        assert!(voter_steps(&plan).is_empty(), "{plan:?}");
        assert_eq!(terminated(&plan).into_iter().collect::<BTreeSet<_>>(), ["c3".to_string(), "c4".to_string()].into(), "{plan:?}");

        // 5 -> 3 with voter 2 silent (its host up, not fetching): the silent voter leaves first,
        // whatever its ID; a live voter leaves next, once the rest of the set is live.
        let mut silent = growing.clone();
        silent.voters[1].last_fetch_ms = now - 120_000;
        o5.quorum = Seen::Known(silent.clone());
        let (plan, _) = plan_cluster(&three, &o5, &ClusterIntent::default(), at);
        assert!(matches!(&voter_steps(&plan)[..], [Step::RemoveVoter { node_id: 2, .. }]), "{plan:?}");
        // Two silent voters: both leave before any live one, the higher node ID first.
        silent.voters[2].last_fetch_ms = now - 120_000;
        o5.quorum = Seen::Known(silent);
        let (plan, _) = plan_cluster(&three, &o5, &ClusterIntent::default(), at);
        assert!(matches!(&voter_steps(&plan)[..], [Step::RemoveVoter { node_id: 3, .. }]), "the higher silent voter first: {plan:?}");
    }

    #[test]
    fn a_replaced_controllers_old_directory_leaves_the_voters_and_its_new_one_joins_once_caught_up() {
        let desired = kraft_cluster(3);
        let now = 1_000_000;
        let at = PlanSettings { now_ms: now, ..settings(0) };
        let hosts: Vec<ObservedHost> = ["a", "b", "c"]
            .iter()
            .enumerate()
            .map(|(i, az)| ObservedHost { role: HostRole::Controller, private_ip: Some(format!("10.0.0.{i}")), port: Some(9090 + i as u16), ..host(&format!("c{i}"), az) })
            .chain(["a", "b", "c"].iter().enumerate().map(|(i, az)| host(&format!("b{i}"), az)))
            .collect();
        let member = |id: i32, dir: &str, leo: i64| QuorumMember { node_id: id, directory_id: dir.into(), log_end_offset: leo, last_fetch_ms: now - 100 };
        let silent = |id: i32, dir: &str, leo: i64| QuorumMember { last_fetch_ms: now - 60_000, ..member(id, dir, leo) };
        let mut o = observed(hosts, &[4, 5, 6]);
        // Controller 2's host was replaced: its node ID runs directory "new2" as an observer.
        let quorum = ObservedQuorum {
            leader_id: Some(1),
            leader_epoch: 5,
            high_watermark: 5_000,
            voters: vec![member(1, "d1", 5_000), silent(2, "old2", 3_000), member(3, "d3", 5_000)],
            observers: vec![member(2, "new2", 4_990), member(4, "b4", 5_000)],
            current_directories: [(1, "d1".to_string()), (2, "new2".to_string()), (3, "d3".to_string())].into(),
        };
        o.quorum = Seen::Known(quorum.clone());
        let voter_steps = |plan: &Plan| plan.steps.iter().filter(|s| matches!(s, Step::RemoveVoter { .. } | Step::AddVoter { .. })).cloned().collect::<Vec<_>>();
        let (plan, _) = plan_cluster(&desired, &o, &ClusterIntent::default(), at);
        assert!(matches!(&voter_steps(&plan)[..], [Step::RemoveVoter { node_id: 2, directory_id, .. }] if directory_id == "old2"), "{plan:?}");
        // A leader elected after the voter died reports it with no fetch time at all: silent.
        let mut reelected = quorum.clone();
        reelected.voters[1].last_fetch_ms = -1;
        o.quorum = Seen::Known(reelected);
        let (plan, _) = plan_cluster(&desired, &o, &ClusterIntent::default(), at);
        assert!(matches!(&voter_steps(&plan)[..], [Step::RemoveVoter { node_id: 2, directory_id, .. }] if directory_id == "old2"), "{plan:?}");
        // No record of the node's current directory: nothing is removed on a guess.
        let mut unrecorded = quorum.clone();
        unrecorded.current_directories.clear();
        o.quorum = Seen::Known(unrecorded);
        let (plan, _) = plan_cluster(&desired, &o, &ClusterIntent::default(), at);
        assert!(voter_steps(&plan).is_empty(), "{plan:?}");
        // A voter still fetching is never removed for a stale observer entry of its node ID (the
        // leader lists an old directory as an observer for a while after it left the voters).
        let mut healthy = quorum.clone();
        healthy.voters[1] = member(2, "new2", 5_000);
        healthy.observers = vec![QuorumMember { last_fetch_ms: now - 300_000, ..member(2, "old2", 3_000) }];
        o.quorum = Seen::Known(healthy.clone());
        let (plan, _) = plan_cluster(&desired, &o, &ClusterIntent::default(), at);
        assert!(voter_steps(&plan).is_empty(), "{plan:?}");
        // Just added (no fetch time yet), with the removed directory listed as a fresh observer
        // at its old log end: left alone (this flapped remove/add before).
        healthy.voters[1] = QuorumMember { last_fetch_ms: -1, ..member(2, "new2", 5_000) };
        healthy.observers = vec![member(2, "old2", 3_000)];
        o.quorum = Seen::Known(healthy);
        let (plan, _) = plan_cluster(&desired, &o, &ClusterIntent::default(), at);
        assert!(voter_steps(&plan).is_empty(), "{plan:?}");
        // Removed: the new directory, caught up, is added at its controller listener, even with
        // the old directory still listed (stale) among the observers, ahead of it.
        let mut removed = quorum.clone();
        removed.voters.retain(|v| v.node_id != 2);
        removed.observers.insert(0, QuorumMember { last_fetch_ms: now - 300_000, ..member(2, "old2", 3_000) });
        o.quorum = Seen::Known(removed.clone());
        let (plan, _) = plan_cluster(&desired, &o, &ClusterIntent::default(), at);
        assert!(
            matches!(&voter_steps(&plan)[..], [Step::AddVoter { node_id: 2, directory_id, host, port: 9091, .. }] if directory_id == "new2" && host == "10.0.0.1"),
            "{plan:?}"
        );
        // An old directory of the node, fresh-looking and caught up, is never the one added.
        let mut old_listed = removed.clone();
        old_listed.observers[0] = member(2, "old2", 5_000);
        old_listed.observers[1].last_fetch_ms = now - 300_000;
        o.quorum = Seen::Known(old_listed);
        let (plan, _) = plan_cluster(&desired, &o, &ClusterIntent::default(), at);
        assert!(voter_steps(&plan).is_empty(), "{plan:?}");
        // Still far behind: waited for, not added. A broker observer is never added.
        removed.observers[1].log_end_offset = 100;
        o.quorum = Seen::Known(removed);
        let (plan, _) = plan_cluster(&desired, &o, &ClusterIntent::default(), at);
        assert!(voter_steps(&plan).is_empty() && plan.waiting.iter().any(|w| w.contains("controller 2") && w.contains("lag")), "{plan:?}");
        // The leader's own entry is never removed, even silent with its node on another
        // directory; nothing is changed without a leader.
        let mut odd = quorum.clone();
        odd.voters[0] = silent(1, "d1", 5_000);
        odd.observers.push(member(1, "other1", 5_000));
        odd.current_directories.insert(1, "other1".into());
        odd.voters.retain(|v| v.node_id != 2);
        odd.observers.retain(|m| m.node_id != 2);
        o.quorum = Seen::Known(odd);
        let (plan, _) = plan_cluster(&desired, &o, &ClusterIntent::default(), at);
        assert!(!voter_steps(&plan).iter().any(|s| matches!(s, Step::RemoveVoter { node_id: 1, .. })), "{plan:?}");
        o.quorum = Seen::Known(ObservedQuorum { leader_id: None, ..quorum });
        let (plan, _) = plan_cluster(&desired, &o, &ClusterIntent::default(), at);
        assert!(voter_steps(&plan).is_empty(), "{plan:?}");
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
    fn a_degraded_cluster_routes_left_is_still_sealed() {
        // A failover away from a cluster with a broker out: its hosts are frozen and topics wait
        // for the spread, but the seal is only a config change and must not wait with them.
        let mut desired = cluster(3);
        desired.frozen = Some("routes failed over from it".into());
        desired.sealed_for = vec!["events".into()];
        let mut o = observed(vec![host("h1", "a"), host("h2", "b"), host("h3", "c")], &[1, 3]);
        o.topics = Seen::Known(
            [(
                "orders".to_string(),
                ObservedTopic { partitions: 6, replication_factor: 2, configs: [("retention.ms".to_string(), "14400000".to_string())].into(), marked_for_deletion: false },
            )]
            .into(),
        );
        let (plan, _) = plan_cluster(&desired, &o, &ClusterIntent::default(), settings(0));
        let (key, value) = fleet_api::route::SEAL_CONFIG;
        assert!(
            plan.steps.iter().any(|s| matches!(s, Step::AlterTopicConfigs { topic, configs, .. } if topic == "orders" && configs.get(key).map(String::as_str) == Some(value))),
            "{plan:?}"
        );
        assert!(plan.steps.iter().all(|s| !matches!(s, Step::CreateTopic { .. } | Step::CreatePartitions { .. })), "{plan:?}");
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
        let launch = LaunchIntent { availability_zone: "a".into(), at_ms: 0, instance_id: Some("h9".into()), role: Default::default() };
        let intent = ClusterIntent { launches: [("t1".to_string(), launch)].into(), ..Default::default() };
        let (plan, next) = plan_cluster(&cluster(1), &observed(vec![], &[]), &intent, settings(10_000));
        assert!(plan.steps.iter().all(|s| !matches!(s, Step::LaunchHost { .. })));
        assert!(next.launches.contains_key("t1"));
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

    #[test]
    fn in_flight_launches_count_in_their_zone() {
        // One host in b; a launch into a is in flight (answered, not yet visible): the third
        // broker goes to c, not to a again.
        let launch = LaunchIntent { availability_zone: "a".into(), at_ms: 0, instance_id: Some("h9".into()), role: Default::default() };
        let intent = ClusterIntent { launches: [("t1".to_string(), launch)].into(), launch_seq: 1, ..Default::default() };
        let (plan, next) = plan_cluster(&cluster(3), &observed(vec![host("h2", "b")], &[]), &intent, settings(1_000));
        assert_eq!(launch_zones(&plan), ["c"]);
        assert_eq!(next.launches.len(), 2);
        assert!(next.launches.values().any(|l| l.availability_zone == "c" && l.instance_id.is_none()));
    }

    #[test]
    fn unanswered_launch_is_retried_with_its_own_token() {
        let launch = LaunchIntent { availability_zone: "b".into(), at_ms: 0, instance_id: None, role: Default::default() };
        let intent = ClusterIntent { launches: [("uid-blue-7".to_string(), launch)].into(), launch_seq: 7, ..Default::default() };
        let (plan, next) = plan_cluster(&cluster(1), &observed(vec![], &[]), &intent, settings(1_000));
        assert!(matches!(&plan.steps[..], [Step::LaunchHost { token, availability_zone, .. }] if token == "uid-blue-7" && availability_zone == "b"), "{plan:?}");
        assert_eq!(next.launch_seq, 7, "no new token minted");
        // Once the provider lists a host carrying that token, the launch is done.
        let mut seen = host("h1", "b");
        seen.launch_token = Some("uid-blue-7".into());
        let (plan, next) = plan_cluster(&cluster(1), &observed(vec![seen], &[]), &intent, settings(2_000));
        assert!(plan.steps.iter().all(|s| !matches!(s, Step::LaunchHost { .. })), "{plan:?}");
        assert!(next.launches.is_empty());
    }

    #[test]
    fn new_launch_tokens_are_unique_and_start_with_the_uid() {
        let (plan, next) = plan_cluster(&cluster(3), &observed(vec![], &[]), &ClusterIntent::default(), settings(0));
        let tokens: BTreeSet<&str> = plan.steps.iter().filter_map(|s| match s { Step::LaunchHost { token, .. } => Some(token.as_str()), _ => None }).collect();
        assert_eq!(tokens.len(), 3);
        assert!(tokens.iter().all(|t| t.starts_with("uid-blue-")));
        assert_eq!(next.launch_seq, 3);
        assert!(launch_token(&"x".repeat(80), "blue", 12).len() <= 64);
    }

    #[test]
    fn waiting_out_a_grace_period_requeues_at_its_end() {
        let hosts = vec![host("h1", "a"), host("h2", "b"), host("h3", "c")];
        let mut o = observed(hosts, &[1, 3]);
        o.topics = Seen::Known([("orders".to_string(), ObservedTopic { partitions: 6, replication_factor: 2, configs: [("retention.ms".to_string(), "14400000".to_string())].into(), marked_for_deletion: false })].into());
        let intent = ClusterIntent { missing_since: [(2, 1_000)].into(), ..Default::default() };
        let (plan, _) = plan_cluster(&cluster(3), &o, &intent, settings(31_000));
        assert!(plan.steps.is_empty());
        assert_eq!(plan.requeue_after_ms, Some(30_000), "grace 60 s, 30 s gone");
    }

    #[test]
    fn teardown_removes_zookeeper_state_only_once_no_broker_is_registered() {
        let mut d = cluster(3);
        d.deleting = true;
        let mut o = observed(vec![], &[2]);
        o.zk_state = Seen::Known(true);
        let (plan, _) = plan_cluster(&d, &o, &ClusterIntent::default(), settings(0));
        assert!(plan.steps.is_empty() && plan.waiting[0].contains("still registered"), "{plan:?}");
        let mut o = observed(vec![], &[]);
        o.zk_state = Seen::Known(true);
        let (plan, _) = plan_cluster(&d, &o, &ClusterIntent::default(), settings(0));
        assert_eq!(plan.steps, [Step::DeleteClusterState]);
        o.zk_state = Seen::Unknown("zk down".into());
        let (plan, _) = plan_cluster(&d, &o, &ClusterIntent::default(), settings(0));
        assert!(plan.steps.is_empty(), "unknown is not absent");
    }

    #[test]
    fn leaving_brokers_are_left_alone_then_retired_without_replacement() {
        let hosts = vec![host("h1", "a"), host("h2", "b"), host("h3", "c"), host("h4", "a")];
        // Broker 4 is missing while its replicas move off: not replaced, even past the grace period.
        let mut d = cluster(4);
        d.leaving = [(4, false)].into();
        let o = observed(hosts.clone(), &[1, 2, 3]);
        let (plan, _) = plan_cluster(&d, &o, &ClusterIntent::default(), settings(1_000_000));
        assert!(plan.steps.iter().all(|s| !matches!(s, Step::TerminateHost { .. } | Step::LaunchHost { .. })), "{:?}", plan.steps);
        // Retiring (the count lowered to 3): its host goes, nothing is launched in its place.
        let mut d = cluster(3);
        d.leaving = [(4, true)].into();
        let o = observed(hosts.clone(), &[1, 2, 3, 4]);
        let (plan, _) = plan_cluster(&d, &o, &ClusterIntent::default(), settings(0));
        assert!(matches!(&plan.steps[..], [Step::TerminateHost { instance_id, .. }, ..] if instance_id == "h4"), "{:?}", plan.steps);
        assert!(!plan.steps.iter().any(|s| matches!(s, Step::LaunchHost { .. } | Step::ReleaseBrokerId { .. })), "{:?}", plan.steps);
        // Its host gone and the broker out of /brokers/ids: its ID is released.
        let mut o = observed(hosts, &[1, 2, 3]);
        if let Seen::Known(h) = &mut o.hosts {
            h[3].state = HostState::Terminated;
        }
        let (plan, _) = plan_cluster(&d, &o, &ClusterIntent::default(), settings(0));
        assert!(plan.steps.contains(&Step::ReleaseBrokerId { broker_id: 4 }), "{:?}", plan.steps);
        assert!(!plan.steps.iter().any(|s| matches!(s, Step::LaunchHost { .. })));
    }

    #[test]
    fn throttles_set_by_an_operation_are_neither_a_config_drift_nor_wiped() {
        let d = cluster(3);
        let mut o = observed(vec![host("h1", "a"), host("h2", "b"), host("h3", "c")], &[1, 2, 3]);
        let mut configs = d.topics[0].spec.configs.clone();
        configs.insert("leader.replication.throttled.replicas".into(), "0:1".into());
        o.topics = Seen::Known([("orders".to_string(), ObservedTopic { partitions: 6, replication_factor: 2, configs: configs.clone(), marked_for_deletion: false })].into());
        let (plan, _) = plan_cluster(&d, &o, &ClusterIntent::default(), settings(0));
        assert!(plan.steps.is_empty(), "not a drift: {:?}", plan.steps);
        // A real change keeps the throttle in the full set written.
        let mut d2 = d.clone();
        d2.topics[0].spec.configs.insert("retention.ms".into(), "1000".into());
        let (plan, _) = plan_cluster(&d2, &o, &ClusterIntent::default(), settings(0));
        assert!(matches!(&plan.steps[..], [Step::AlterTopicConfigs { configs, changed, .. }]
            if configs.get("leader.replication.throttled.replicas").map(String::as_str) == Some("0:1") && changed == &["retention.ms".to_string()]), "{:?}", plan.steps);
    }
}
