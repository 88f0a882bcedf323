//! Scale-up as a state machine: `next(operation, observed) -> (status, action)`, pure.
//!
//! Pending -> (raise the cluster's brokers) -> WaitingForBrokers -> (plan) -> [ProposalReady ->
//! (approve)] -> Committing -> (one ZooKeeper multi) -> WaitingForLeaders -> RecordingSpecs ->
//! Succeeded. A restarted leader finds the phase in the store and goes on from what it observes:
//! a commit that already landed is recognised in the topic znodes and never made twice.

use std::collections::{BTreeMap, BTreeSet};

use fleet_api::operation::{Operation, OperationStatus, Phase, PlacementPlan, Progress, ScaleUpRequest, ScaleUpSpec, SkippedTopic, TopicPlacement, TopicSelection};

use super::machine::Step;
use crate::store::OperationEffects;

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
    /// The cluster's declared (effective) broker count.
    pub declared_brokers: Seen<u32>,
    /// The brokers the cluster had when the operation started acting: its registry's IDs whose
    /// hosts run (a broker briefly out of `/brokers/ids` is still one of them), read at Pending.
    pub before: Seen<BTreeSet<i32>>,
    /// Live broker -> rack.
    pub live: Seen<BTreeMap<i32, String>>,
    /// The fleet's broker-ID registry (id -> instance), while waiting for brokers.
    pub registry: Seen<BTreeMap<i32, String>>,
    /// The operation's topics as Kafka has them (absent ones left out).
    pub topics: Seen<BTreeMap<String, TopicZnode>>,
    pub guards: Seen<Guards>,
    /// New partition -> since when it has a leader in its ISR (ms), `None` while it has none
    /// (read while waiting for leaders).
    pub leaders: Seen<BTreeMap<(String, u32), Option<i64>>>,
    pub pause: Seen<super::Pause>,
    /// The cluster is being deleted or gone.
    pub cluster_gone: bool,
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

/// A scale-up's one action; raising the broker count and recording partitions are effects
/// written with the phase.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Write the plan's topics in one ZooKeeper multi (several only when splitting was allowed).
    Commit(PlacementPlan),
}

pub use super::machine::ActionResult;

/// A scale-up's phases: the wire's phases a scale-up runs through, and no others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleUpPhase {
    Pending,
    WaitingForBrokers,
    ProposalReady,
    Committing,
    WaitingForLeaders,
    RecordingSpecs,
    Paused,
    Succeeded,
    Failed,
    Cancelled,
}

impl ScaleUpPhase {
    pub const ALL: [Phase; 10] = [
        Phase::Pending,
        Phase::WaitingForBrokers,
        Phase::ProposalReady,
        Phase::Committing,
        Phase::WaitingForLeaders,
        Phase::RecordingSpecs,
        Phase::Paused,
        Phase::Succeeded,
        Phase::Failed,
        Phase::Cancelled,
    ];
}

impl TryFrom<Phase> for ScaleUpPhase {
    type Error = Phase;
    fn try_from(p: Phase) -> Result<Self, Phase> {
        Ok(match p {
            Phase::Pending => Self::Pending,
            Phase::WaitingForBrokers => Self::WaitingForBrokers,
            Phase::ProposalReady => Self::ProposalReady,
            Phase::Committing => Self::Committing,
            Phase::WaitingForLeaders => Self::WaitingForLeaders,
            Phase::RecordingSpecs => Self::RecordingSpecs,
            Phase::Paused => Self::Paused,
            Phase::Succeeded => Self::Succeeded,
            Phase::Failed => Self::Failed,
            Phase::Cancelled => Self::Cancelled,
            other => return Err(other),
        })
    }
}

#[derive(Clone, Copy, Debug)]
pub struct ScaleUpSettings {
    /// ZooKeeper refuses a request above `jute.maxbuffer` (1 MiB by default); stay under it.
    pub max_commit_bytes: usize,
    /// How long new brokers may take to register.
    pub brokers_timeout_ms: i64,
    /// How long a commit may keep failing (ZooKeeper unreachable) before the operation fails.
    pub commit_timeout_ms: i64,
    /// How long the new partitions may take to get leaders before the operation fails.
    pub leaders_timeout_ms: i64,
}

impl Default for ScaleUpSettings {
    fn default() -> Self {
        Self { max_commit_bytes: 1_000_000, brokers_timeout_ms: 20 * 60_000, commit_timeout_ms: 10 * 60_000, leaders_timeout_ms: 10 * 60_000 }
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

fn wait(mut st: OperationStatus, why: impl Into<String>) -> Step<Action> {
    st.message = Some(why.into());
    Step::to(st)
}

/// The next status, its effects and the action to take, from the stored operation and what was
/// observed.
pub fn next(op: &Operation, spec: &ScaleUpSpec, obs: &ScaleUpObserved, settings: &ScaleUpSettings) -> Step<Action> {
    let mut st = op.status.clone();
    let now = obs.now_ms;
    let Ok(phase) = ScaleUpPhase::try_from(st.phase) else {
        st.enter(Phase::Failed, now, Some(format!("phase {} is not a scale-up's; nothing more is done", st.phase.as_str())));
        return Step::to(st);
    };
    use ScaleUpPhase as P;
    let before_commit = matches!(phase, P::Pending | P::WaitingForBrokers | P::ProposalReady | P::Paused);
    if op.cancel_requested && before_commit {
        st.enter(Phase::Cancelled, now, Some("cancelled before anything was committed; brokers it added stay (decommission them to take them out)".into()));
        return Step::to(st);
    }
    // A failover or fallback on the cluster comes first: before the commit, step aside.
    if let Seen::Known(super::Pause::Requested { by }) = &obs.pause {
        if matches!(phase, P::Pending | P::WaitingForBrokers | P::ProposalReady) {
            st.resume_phase = Some(if phase == P::Pending { Phase::Pending } else { Phase::WaitingForBrokers });
            st.enter(Phase::Paused, now, Some(format!("paused for {by}: nothing was committed; it plans again once {by} has ended")));
            return Step::to(st);
        }
    }
    match phase {
        P::Pending => {
            let (Seen::Known(before), Seen::Known(declared)) = (&obs.before, &obs.declared_brokers) else {
                return wait(st, "waiting to read the cluster's registry and spec");
            };
            st.brokers_before = Some(before.iter().copied().collect());
            let mut effects = OperationEffects::default();
            if *declared < spec.brokers {
                effects.raise_brokers = Some(spec.brokers);
            }
            st.enter(Phase::WaitingForBrokers, now, Some(format!("declared {} brokers (from {}); waiting for them to be live", spec.brokers, spec.from_brokers)));
            Step::with(st, effects)
        }
        P::WaitingForBrokers => {
            let before: BTreeSet<i32> = st.brokers_before.clone().unwrap_or_default().into_iter().collect();
            let (Seen::Known(live), Seen::Known(topics), Seen::Known(guards)) = (&obs.live, &obs.topics, &obs.guards) else {
                return wait(st, "waiting to read brokers and topics from ZooKeeper");
            };
            let new: BTreeSet<i32> = live.keys().filter(|b| !before.contains(b)).copied().collect();
            let needed = (spec.brokers as usize).saturating_sub(before.len());
            if live.len() < spec.brokers as usize || new.len() < needed {
                let registry = obs.registry.known().cloned().unwrap_or_default();
                let unregistered: Vec<String> = registry.iter().filter(|(id, _)| !before.contains(id) && !live.contains_key(id)).map(|(id, i)| format!("broker {id} (host {i})")).collect();
                let missing = if unregistered.is_empty() {
                    format!("{} new broker(s) have no ID yet (their hosts have not booted)", needed.saturating_sub(new.len()))
                } else {
                    format!("{} not registered in /brokers/ids", unregistered.join(", "))
                };
                if now - st.since_ms() > settings.brokers_timeout_ms {
                    st.enter(Phase::Failed, now, Some(format!("only {} of {} brokers live after {} min: {missing}; nothing was committed", live.len(), spec.brokers, settings.brokers_timeout_ms / 60_000)));
                    return Step::to(st);
                }
                let new_ids = if new.is_empty() { "none yet".to_string() } else { new.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(", ") };
                return wait(st, format!("{} of {} brokers live (new: {new_ids}); waiting for: {missing}", live.len(), spec.brokers));
            }
            match make_plan(spec, spec.from_brokers.max(before.len() as u32), live, &new, topics, guards, settings) {
                Ok(plan) => {
                    let summary = format!("{} new partitions over {} topics on brokers {:?}", plan.new_partition_count(), plan.topics.len(), plan.new_brokers);
                    st.plan = Some(plan);
                    if spec.hold && !op.approved {
                        st.enter(Phase::ProposalReady, now, Some(format!("{summary}; approve to commit (fleetctl approve operation {})", op.id)));
                    } else {
                        st.enter(Phase::Committing, now, Some(summary));
                    }
                }
                Err(why) => st.enter(Phase::Failed, now, Some(format!("{why}; nothing was committed"))),
            }
            Step::to(st)
        }
        P::ProposalReady => {
            if op.approved {
                st.enter(Phase::Committing, now, Some("approved".into()));
                return Step::to(st);
            }
            wait(st, format!("held: approve it (fleetctl approve operation {}) or cancel it", op.id))
        }
        P::Committing => {
            let Some(plan) = st.plan.clone() else {
                st.enter(Phase::Failed, now, Some("no plan recorded; nothing was committed".into()));
                return Step::to(st);
            };
            let Seen::Known(topics) = &obs.topics else {
                if now - st.since_ms() > settings.commit_timeout_ms {
                    st.enter(Phase::Failed, now, Some(format!("the topics could not be read for {} min; nothing was committed", settings.commit_timeout_ms / 60_000)));
                    return Step::to(st);
                }
                return wait(st, "waiting to read the topics from ZooKeeper");
            };
            // A commit that landed before a crash is in the znodes: never make it twice.
            let landed = plan.topics.iter().filter(|t| topics.get(&t.topic).is_some_and(|z| z.has(t))).count();
            if landed == plan.topics.len() {
                let written = plan.topics.iter().filter_map(|t| topics.get(&t.topic)).map(|z| z.modified_ms).max();
                let at = st.committed_at_ms.or(written).unwrap_or(now);
                st.committed_at_ms = Some(at);
                st.enter(Phase::WaitingForLeaders, now, Some("committed".into()));
                return Step::to(st);
            }
            if landed > 0 && plan.commits <= 1 {
                st.enter(Phase::Failed, now, Some("part of the plan is in ZooKeeper and part is not, which one multi cannot do: inspect the topics".into()));
                return Step::to(st);
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
                        return Step::to(st);
                    }
                    None => {
                        st.enter(Phase::Failed, now, Some(format!("topic {} is gone; nothing was committed", t.topic)));
                        return Step::to(st);
                    }
                }
            }
            if now - st.since_ms() > settings.commit_timeout_ms {
                st.enter(Phase::Failed, now, Some(format!("the commit did not go through within {} min ({}); nothing was committed", settings.commit_timeout_ms / 60_000, st.message.clone().unwrap_or_default())));
                return Step::to(st);
            }
            Step::act(st, Action::Commit(plan))
        }
        P::WaitingForLeaders => {
            let Some(plan) = &st.plan else {
                st.enter(Phase::RecordingSpecs, now, None);
                return Step::to(st);
            };
            let Seen::Known(leaders) = &obs.leaders else {
                return wait(st, "waiting to read partition states");
            };
            let total = plan.new_partition_count() as u64;
            let keys: Vec<(String, u32)> = plan.topics.iter().flat_map(|t| t.new_partitions.keys().map(move |p| (t.topic.clone(), *p))).collect();
            let led: Vec<i64> = keys.iter().filter_map(|k| leaders.get(k).copied().flatten()).collect();
            let done = led.len() as u64;
            st.progress = Some(Progress { done, total });
            if done == total {
                // Dated by when the last partition got its leader, not by when this was seen.
                let at = st.committed_at_ms.unwrap_or(now);
                let last = led.iter().copied().max().unwrap_or(now);
                st.leaders_millis = Some((last - at).max(0) as u64);
                st.enter(Phase::RecordingSpecs, now, Some(format!("{total} new partitions have a leader")));
                return Step::to(st);
            }
            if now - st.since_ms() > settings.leaders_timeout_ms {
                let leaderless: Vec<String> = keys.iter().filter(|k| leaders.get(*k).copied().flatten().is_none()).take(10).map(|(t, p)| format!("{t}-{p}")).collect();
                st.enter(Phase::Failed, now, Some(format!("committed, but {} of {total} new partitions had no leader after {} min (e.g. {}): check the new brokers", total - done, settings.leaders_timeout_ms / 60_000, leaderless.join(", "))));
                return Step::to(st);
            }
            wait(st, format!("{done} of {total} new partitions have a leader"))
        }
        P::RecordingSpecs => {
            let counts: BTreeMap<String, u32> = st.plan.as_ref().map(|p| p.topics.iter().map(|t| (t.topic.clone(), t.to)).collect()).unwrap_or_default();
            let leaders = st.leaders_millis.map(|m| format!("; all leaders {m} ms after the commit")).unwrap_or_default();
            let catch_up = format!(
                "; your documents: brokers: {} on the cluster{}",
                spec.brokers,
                if counts.is_empty() { String::new() } else { format!(", partitions on {} topic(s) (fleetctl get topics -o yaml shows them)", counts.len()) }
            );
            st.enter(Phase::Succeeded, now, Some(format!("{} topics scaled{leaders}{catch_up}", counts.len())));
            Step::with(st, OperationEffects { topic_partitions: counts, ..OperationEffects::default() })
        }
        P::Paused => match &obs.pause {
            Seen::Known(super::Pause::Requested { by }) => wait(st, format!("paused for {by}; it plans again once {by} has ended")),
            Seen::Known(pause) => {
                let by = match pause {
                    super::Pause::Over { by } => Some(by.clone()),
                    _ => op.paused_by.clone(),
                };
                let back = st.resume_phase.take().unwrap_or(Phase::WaitingForBrokers);
                st.enter(back, now, Some(format!("resumed{}: planning again from what is live", by.as_deref().map(|b| format!(" after {b} ended")).unwrap_or_default())));
                Step::with(st, OperationEffects { resume: by, ..OperationEffects::default() })
            }
            Seen::Unknown(why) => wait(st, format!("paused; whether it may resume is unknown: {why}")),
        },
        P::Succeeded | P::Failed | P::Cancelled => Step::to(st),
    }
}

/// The status after the commit was carried out (or refused).
pub fn after(op: &Operation, action: &Action, result: ActionResult, now_ms: i64) -> Step<Action> {
    let mut st = op.status.clone();
    match (action, result) {
        (Action::Commit(plan), ActionResult::Done { millis }) => {
            st.committed_at_ms = Some(now_ms);
            st.commit_millis = Some(millis);
            st.progress = Some(Progress { done: 0, total: plan.new_partition_count() as u64 });
            let how = if plan.commits > 1 { format!("in {} ZooKeeper multis (split: not atomic)", plan.commits) } else { "in one ZooKeeper multi".into() };
            st.enter(Phase::WaitingForLeaders, now_ms, Some(format!("committed {} new partitions {how} in {millis} ms", plan.new_partition_count())));
        }
        (_, ActionResult::Refused(why)) => st.enter(Phase::Failed, now_ms, Some(why)),
        (_, ActionResult::Retry(why)) => st.message = Some(format!("retrying: {why}")),
    }
    Step::to(st)
}

#[cfg(test)]
mod tests;

mod driver;
pub mod live;
pub mod placement;

pub use driver::ScaleUp;
