//! Scale-up as a state machine: `next(operation, observed) -> (status, action)`, pure.
//!
//! Pending -> (raise the cluster's brokers) -> WaitingForBrokers -> (plan) -> [ProposalReady ->
//! (approve)] -> Committing -> (one ZooKeeper multi) -> WaitingForLeaders -> RecordingSpecs ->
//! Succeeded. A restarted leader finds the phase in the store and goes on from what it observes:
//! a commit that already landed is recognised in the topic znodes and never made twice.

use std::collections::{BTreeMap, BTreeSet};

use fleet_api::operation::{Operation, OperationStatus, Phase, PlacementPlan, Progress, ScaleUpRequest, ScaleUpSpec, SkippedTopic, TopicPlacement, TopicSelection};

use placement::TopicShape;
use crate::plan::Seen;
use crate::spec::{ClusterSpec, FieldError, PriorityClass, TopicSpec, MAX_BROKERS};

/// A topic znode as read: its version, its JSON (kept whole when rewritten) and its assignment.
#[derive(Clone, Debug, PartialEq)]
pub struct TopicZnode {
    pub version: i32,
    pub data: serde_json::Value,
    pub partitions: BTreeMap<u32, Vec<i32>>,
    /// `adding_replicas` / `removing_replicas` not empty: a reassignment is under way.
    pub reassigning: bool,
    pub path: String,
    /// When the znode was last written (ZooKeeper's mtime, ms): a commit recognised after a
    /// crash is dated by it.
    pub modified_ms: i64,
}

impl TopicZnode {
    /// Decodes Kafka's topic znode (version 1-3).
    pub fn decode(path: &str, version: i32, modified_ms: i64, bytes: &[u8]) -> Result<Self, String> {
        let data: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| format!("{path}: not JSON: {e}"))?;
        let parts = data.get("partitions").and_then(|p| p.as_object()).ok_or_else(|| format!("{path}: no `partitions`"))?;
        let mut partitions = BTreeMap::new();
        for (k, v) in parts {
            let p: u32 = k.parse().map_err(|_| format!("{path}: partition `{k}` is not a number"))?;
            let replicas: Vec<i32> = serde_json::from_value(v.clone()).map_err(|e| format!("{path}: partition {k}: {e}"))?;
            partitions.insert(p, replicas);
        }
        let busy = |key: &str| data.get(key).and_then(|v| v.as_object()).is_some_and(|m| !m.is_empty());
        let reassigning = busy("adding_replicas") || busy("removing_replicas");
        Ok(Self { version, partitions, reassigning, path: path.to_string(), modified_ms, data })
    }

    /// The znode's new JSON: what was read (topic ID, existing partitions, adding / removing
    /// replicas) plus the new partitions, in Kafka's version 3 layout.
    pub fn with_partitions(&self, new: &BTreeMap<u32, Vec<i32>>) -> Vec<u8> {
        let mut data = self.data.clone();
        if let Some(obj) = data.as_object_mut() {
            if let Some(parts) = obj.get_mut("partitions").and_then(|p| p.as_object_mut()) {
                for (p, r) in new {
                    parts.insert(p.to_string(), serde_json::json!(r));
                }
            }
            obj.entry("adding_replicas").or_insert_with(|| serde_json::json!({}));
            obj.entry("removing_replicas").or_insert_with(|| serde_json::json!({}));
            obj.insert("version".into(), serde_json::json!(3));
        }
        serde_json::to_vec(&data).unwrap_or_default()
    }

    /// The same replication factor on every partition, or `None`.
    pub fn replication_factor(&self) -> Option<u16> {
        let counts: BTreeSet<usize> = self.partitions.values().map(Vec::len).collect();
        match counts.len() {
            1 => counts.into_iter().next().map(|c| c as u16),
            _ => None,
        }
    }

    /// Whether the planned new partitions are in the znode, with the planned replicas.
    pub fn has(&self, planned: &TopicPlacement) -> bool {
        planned.new_partitions.iter().all(|(p, r)| self.partitions.get(p) == Some(r))
    }
}

/// What a scale-up's next step depends on.
#[derive(Clone, Debug, Default)]
pub struct ScaleUpObserved {
    pub now_ms: i64,
    /// The cluster's declared broker count.
    pub declared_brokers: Seen<u32>,
    /// Live broker -> rack.
    pub live: Seen<BTreeMap<i32, String>>,
    /// The operation's topics as Kafka has them (absent ones left out).
    pub topics: Seen<BTreeMap<String, TopicZnode>>,
    pub guards: Seen<Guards>,
    /// New partition -> since when it has a leader in its ISR (ms), `None` while it has none
    /// (read while waiting for leaders).
    pub leaders: Seen<BTreeMap<(String, u32), Option<i64>>>,
}

/// Cluster-wide reasons to refuse a commit.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Guards {
    /// `/migration` exists: the cluster is moving to KRaft.
    pub migrating: bool,
    /// Topics in `/admin/reassign_partitions`.
    pub reassigning: BTreeSet<String>,
    /// Topics in `/admin/delete_topics`.
    pub deleting: BTreeSet<String>,
    /// `/controller` exists.
    pub controller: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Set the cluster's declared brokers (a store write).
    RaiseBrokers(u32),
    /// Write the plan's topics in one ZooKeeper multi (several only when splitting was allowed).
    Commit(PlacementPlan),
    /// Write the new partition counts into the topics' specs.
    RecordSpecs(BTreeMap<String, u32>),
}

#[derive(Clone, Debug, PartialEq)]
pub enum ActionResult {
    Done { millis: u64 },
    /// Nothing was done, and retrying will not help (a topic changed between plan and commit).
    Refused(String),
    /// Nothing was done; the next pass tries again.
    Retry(String),
}

#[derive(Clone, Copy, Debug)]
pub struct ScaleUpSettings {
    /// ZooKeeper refuses a request above `jute.maxbuffer` (1 MiB by default); stay under it.
    pub max_commit_bytes: usize,
    /// How long new brokers may take to register.
    pub brokers_timeout_ms: i64,
}

impl Default for ScaleUpSettings {
    fn default() -> Self {
        Self { max_commit_bytes: 1_000_000, brokers_timeout_ms: 20 * 60_000 }
    }
}

/// Checks a request against the stored cluster and its topics. Every error names the field.
pub fn resolve(req: &ScaleUpRequest, cluster: &ClusterSpec, topics: &[TopicSpec]) -> Result<ScaleUpSpec, FieldError> {
    if req.brokers <= i64::from(cluster.brokers) {
        return Err(FieldError::new(
            "brokers",
            format!("{} is not above cluster {}'s {} brokers: a scale-up needs more (use decommission to shrink)", req.brokers, cluster.name, cluster.brokers),
        ));
    }
    if req.brokers > MAX_BROKERS {
        return Err(FieldError::new("brokers", format!("{} is above the limit of {MAX_BROKERS}", req.brokers)));
    }
    let partitions_per_topic = match req.partitions_per_topic {
        None => None,
        Some(k) if (1..=i64::from(crate::spec::MAX_PARTITIONS as u32)).contains(&k) => Some(k as u32),
        Some(k) => return Err(FieldError::new("partitionsPerTopic", format!("{k} is out of range: add at least 1 partition per topic"))),
    };
    let by_name: BTreeMap<&str, &TopicSpec> = topics.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut chosen = Vec::new();
    let mut skipped = Vec::new();
    let selection = match (&req.topics, &req.class) {
        (Some(_), Some(_)) => return Err(FieldError::new("class", "give either topics or a class, not both")),
        (Some(names), None) if !(names.len() == 1 && names[0] == "all") => {
            if names.is_empty() {
                return Err(FieldError::new("topics", "no topic named: give names, or `all`"));
            }
            for name in names {
                let Some(t) = by_name.get(name.as_str()) else {
                    return Err(FieldError::new(
                        "topics",
                        format!("topic `{name}` is not declared on cluster {}: declare it (fleetctl apply) or leave it out", cluster.name),
                    ));
                };
                if t.keyed && !req.allow_keyed {
                    return Err(FieldError::new(
                        "topics",
                        format!("topic `{name}` is keyed: adding partitions moves its keys to other partitions; pass --allow-keyed if its consumers can take that"),
                    ));
                }
                if !chosen.contains(name) {
                    chosen.push(name.clone());
                }
            }
            TopicSelection::Names(chosen.clone())
        }
        (_, class) => {
            let class = match class {
                Some(c) => Some(PriorityClass::parse(c).ok_or_else(|| FieldError::new("class", format!("`{c}` is not a priority class: use low, medium or high")))?),
                None => None,
            };
            for t in topics {
                if t.keyed {
                    skipped.push(SkippedTopic { topic: t.name.clone(), reason: "keyed (name it with --allow-keyed to scale it)".into() });
                } else if class.is_some_and(|c| c != t.priority_class) {
                    skipped.push(SkippedTopic { topic: t.name.clone(), reason: format!("priority class {}", t.priority_class.as_str()) });
                } else {
                    chosen.push(t.name.clone());
                }
            }
            class.map_or(TopicSelection::All, TopicSelection::Class)
        }
    };
    chosen.sort();
    Ok(ScaleUpSpec {
        from_brokers: cluster.brokers,
        brokers: req.brokers as u32,
        selection,
        topics: chosen,
        skipped,
        partitions_per_topic,
        allow_keyed: req.allow_keyed,
        allow_split: req.allow_split,
        hold: req.hold,
    })
}

/// Bytes a multi's operation takes on the wire (header, path, data, version), roughly.
fn op_bytes(path: &str, data_len: usize) -> usize {
    24 + path.len() + data_len
}

/// The placement for the observed topics, with the refusals the issue names.
pub fn make_plan(
    spec: &ScaleUpSpec,
    brokers_before: u32,
    live: &BTreeMap<i32, String>,
    new_brokers: &BTreeSet<i32>,
    topics: &BTreeMap<String, TopicZnode>,
    guards: &Guards,
    settings: &ScaleUpSettings,
) -> Result<PlacementPlan, String> {
    if guards.migrating {
        return Err("the cluster is migrating to KRaft (/migration exists): partitions cannot be added through ZooKeeper".into());
    }
    let mut shapes = Vec::new();
    for name in &spec.topics {
        let Some(z) = topics.get(name) else {
            return Err(format!("topic {name} does not exist in Kafka (not created yet, or deleted)"));
        };
        if guards.deleting.contains(name) {
            return Err(format!("topic {name} is being deleted"));
        }
        if z.reassigning || guards.reassigning.contains(name) {
            return Err(format!("topic {name} has a partition reassignment in progress: wait for it to finish"));
        }
        let rf = z.replication_factor().ok_or_else(|| {
            format!("topic {name} has partitions with different replication factors: make them equal before adding partitions")
        })?;
        let partitions = z.partitions.len() as u32;
        if z.partitions.keys().copied().ne(0..partitions) {
            return Err(format!("topic {name}'s partitions are not numbered 0..{partitions}"));
        }
        shapes.push(TopicShape { name: name.clone(), partitions, replication_factor: rf });
    }
    let placed = placement::place(live, new_brokers, brokers_before, &shapes, spec.partitions_per_topic).map_err(|e| e.to_string())?;
    let mut plan = PlacementPlan {
        new_brokers: new_brokers.iter().copied().collect(),
        racks: live.iter().map(|(b, r)| (*b, r.clone())).collect(),
        commits: 1,
        ..PlacementPlan::default()
    };
    // The leader check, /controller, and one check per target broker.
    let mut bytes = op_bytes("/fleet/fleet-manager/leader/leader-0000000000", 0) + op_bytes("/controller", 0);
    bytes += new_brokers.len() * op_bytes("/brokers/ids/0000", 0);
    let mut sizes = Vec::new();
    for p in placed {
        let Some(z) = topics.get(&p.topic) else { continue };
        for r in p.new_partitions.values() {
            *plan.leaders_per_broker.entry(r[0]).or_default() += 1;
            for b in r {
                *plan.replicas_per_broker.entry(*b).or_default() += 1;
            }
        }
        let size = op_bytes(&z.path, z.with_partitions(&p.new_partitions).len());
        sizes.push(size);
        bytes += size;
        plan.topics.push(TopicPlacement {
            topic: p.topic,
            version: z.version,
            from: p.from,
            to: p.to,
            replication_factor: z.replication_factor().unwrap_or(0),
            new_partitions: p.new_partitions,
        });
    }
    plan.commit_bytes = bytes;
    if bytes > settings.max_commit_bytes {
        if !spec.allow_split {
            return Err(format!(
                "the commit would be {bytes} bytes, above ZooKeeper's limit of {} (jute.maxbuffer): select fewer topics, or allow splitting it (--allow-split; then it is no longer atomic)",
                settings.max_commit_bytes
            ));
        }
        plan.commits = split(&sizes, settings.max_commit_bytes).len();
    }
    Ok(plan)
}

/// Consecutive groups of topics whose commit fits under `max` bytes each.
pub fn split(sizes: &[usize], max: usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut total = 1024;
    for (i, s) in sizes.iter().enumerate() {
        if total + s > max && i > start {
            out.push(start..i);
            start = i;
            total = 1024;
        }
        total += s;
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    out
}

/// The next status and the action to take, from the stored operation and what was observed.
pub fn next(op: &Operation, spec: &ScaleUpSpec, obs: &ScaleUpObserved, settings: &ScaleUpSettings) -> (OperationStatus, Option<Action>) {
    let mut st = op.status.clone();
    let now = obs.now_ms;
    if op.cancel_requested && st.phase.cancellable() {
        st.enter(Phase::Cancelled, now, Some("cancelled before anything was committed; the cluster keeps its broker count".into()));
        return (st, None);
    }
    match st.phase {
        Phase::Pending => {
            let (Seen::Known(live), Seen::Known(declared)) = (&obs.live, &obs.declared_brokers) else {
                st.message = Some("waiting to read the live brokers and the cluster's spec".into());
                return (st, None);
            };
            st.brokers_before = Some(live.keys().copied().collect());
            if *declared < spec.brokers {
                return (st, Some(Action::RaiseBrokers(spec.brokers)));
            }
            st.enter(Phase::WaitingForBrokers, now, Some(format!("waiting for {} live brokers", spec.brokers)));
            (st, None)
        }
        Phase::WaitingForBrokers => {
            let before: BTreeSet<i32> = st.brokers_before.clone().unwrap_or_default().into_iter().collect();
            let (Seen::Known(live), Seen::Known(topics), Seen::Known(guards)) = (&obs.live, &obs.topics, &obs.guards) else {
                st.message = Some("waiting to read brokers and topics from ZooKeeper".into());
                return (st, None);
            };
            let new: BTreeSet<i32> = live.keys().filter(|b| !before.contains(b)).copied().collect();
            let needed = (spec.brokers as usize).saturating_sub(before.len());
            if live.len() < spec.brokers as usize || new.len() < needed {
                if now - st.since_ms() > settings.brokers_timeout_ms {
                    st.enter(Phase::Failed, now, Some(format!("only {} of {} brokers live after {} min; nothing was committed", live.len(), spec.brokers, settings.brokers_timeout_ms / 60_000)));
                } else {
                    st.message = Some(format!("{} of {} brokers live (new: {:?})", live.len(), spec.brokers, new));
                }
                return (st, None);
            }
            match make_plan(spec, before.len() as u32, live, &new, topics, guards, settings) {
                Ok(plan) => {
                    let summary = format!("{} new partitions over {} topics on brokers {:?}", plan.new_partition_count(), plan.topics.len(), plan.new_brokers);
                    st.plan = Some(plan);
                    if spec.hold && !op.approved {
                        st.enter(Phase::ProposalReady, now, Some(format!("{summary}; approve to commit")));
                    } else {
                        st.enter(Phase::Committing, now, Some(summary));
                    }
                }
                Err(why) => st.enter(Phase::Failed, now, Some(format!("{why}; nothing was committed"))),
            }
            (st, None)
        }
        Phase::ProposalReady => {
            if op.approved {
                st.enter(Phase::Committing, now, Some("approved".into()));
            }
            (st, None)
        }
        Phase::Committing => {
            let Some(plan) = st.plan.clone() else {
                st.enter(Phase::Failed, now, Some("no plan recorded; nothing was committed".into()));
                return (st, None);
            };
            let Seen::Known(topics) = &obs.topics else {
                st.message = Some("waiting to read the topics from ZooKeeper".into());
                return (st, None);
            };
            // A commit that landed before a crash is in the znodes: never make it twice.
            let landed = plan.topics.iter().filter(|t| topics.get(&t.topic).is_some_and(|z| z.has(t))).count();
            if landed == plan.topics.len() {
                let written = plan.topics.iter().filter_map(|t| topics.get(&t.topic)).map(|z| z.modified_ms).max();
                let at = st.committed_at_ms.or(written).unwrap_or(now);
                st.committed_at_ms = Some(at);
                st.enter(Phase::WaitingForLeaders, now, Some("committed".into()));
                return (st, None);
            }
            if landed > 0 && plan.commits <= 1 {
                st.enter(Phase::Failed, now, Some("part of the plan is in ZooKeeper and part is not, which one multi cannot do: inspect the topics".into()));
                return (st, None);
            }
            for t in &plan.topics {
                match topics.get(&t.topic) {
                    Some(z) if z.has(t) => {}
                    Some(z) if z.version == t.version => {}
                    Some(z) => {
                        st.enter(
                            Phase::Failed,
                            now,
                            Some(format!(
                                "topic {} changed since the plan was made (znode version {} -> {}); nothing was committed: start a new scale-up",
                                t.topic, t.version, z.version
                            )),
                        );
                        return (st, None);
                    }
                    None => {
                        st.enter(Phase::Failed, now, Some(format!("topic {} is gone; nothing was committed", t.topic)));
                        return (st, None);
                    }
                }
            }
            (st, Some(Action::Commit(plan)))
        }
        Phase::WaitingForLeaders => {
            let Some(plan) = &st.plan else {
                st.enter(Phase::RecordingSpecs, now, None);
                return (st, None);
            };
            let Seen::Known(leaders) = &obs.leaders else {
                st.message = Some("waiting to read partition states".into());
                return (st, None);
            };
            let total = plan.new_partition_count() as u64;
            let led: Vec<i64> = plan
                .topics
                .iter()
                .flat_map(|t| t.new_partitions.keys().map(move |p| (t.topic.clone(), *p)))
                .filter_map(|k| leaders.get(&k).copied().flatten())
                .collect();
            let done = led.len() as u64;
            st.progress = Some(Progress { done, total });
            if done == total {
                // Dated by when the last partition got its leader, not by when this was seen.
                let at = st.committed_at_ms.unwrap_or(now);
                let last = led.iter().copied().max().unwrap_or(now);
                st.leaders_millis = Some((last - at).max(0) as u64);
                st.enter(Phase::RecordingSpecs, now, Some(format!("{total} new partitions have a leader")));
            } else {
                st.message = Some(format!("{done} of {total} new partitions have a leader"));
            }
            (st, None)
        }
        Phase::RecordingSpecs => {
            let counts = st.plan.as_ref().map(|p| p.topics.iter().map(|t| (t.topic.clone(), t.to)).collect()).unwrap_or_default();
            (st, Some(Action::RecordSpecs(counts)))
        }
        Phase::Succeeded | Phase::Failed | Phase::Cancelled => (st, None),
        // Phases of decommission and rebalance: never a scale-up's.
        Phase::MovingLeaders | Phase::Moving | Phase::ElectingLeaders | Phase::Verifying | Phase::Retiring | Phase::CleaningUp | Phase::Building | Phase::Preparing | Phase::SwitchingProducers | Phase::DrainingConsumers => {
            st.enter(Phase::Failed, now, Some(format!("phase {} is not a scale-up's", st.phase.as_str())));
            (st, None)
        }
    }
}

/// The status after an action was carried out.
pub fn after(mut st: OperationStatus, action: &Action, result: ActionResult, now_ms: i64) -> OperationStatus {
    match (action, result) {
        (Action::RaiseBrokers(n), ActionResult::Done { .. }) => {
            st.enter(Phase::WaitingForBrokers, now_ms, Some(format!("declared {n} brokers; waiting for them to be live")));
        }
        (Action::Commit(plan), ActionResult::Done { millis }) => {
            st.committed_at_ms = Some(now_ms);
            st.commit_millis = Some(millis);
            st.progress = Some(Progress { done: 0, total: plan.new_partition_count() as u64 });
            let how = if plan.commits > 1 { format!("in {} ZooKeeper multis (split: not atomic)", plan.commits) } else { "in one ZooKeeper multi".into() };
            st.enter(Phase::WaitingForLeaders, now_ms, Some(format!("committed {} new partitions {how} in {millis} ms", plan.new_partition_count())));
        }
        (Action::RecordSpecs(counts), ActionResult::Done { .. }) => {
            let leaders = st.leaders_millis.map(|m| format!("; all leaders {m} ms after the commit")).unwrap_or_default();
            st.enter(Phase::Succeeded, now_ms, Some(format!("{} topics scaled{leaders}", counts.len())));
        }
        (_, ActionResult::Refused(why)) => st.enter(Phase::Failed, now_ms, Some(why)),
        (_, ActionResult::Retry(why)) => st.message = Some(format!("retrying: {why}")),
    }
    st
}

#[cfg(test)]
mod tests;

pub mod live;
pub mod placement;
