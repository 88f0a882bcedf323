//! Decommission and rebalance: a pure `next(operation, observed) -> (status, action)` that moves
//! replicas batch by batch under replication throttles, like `kafka-reassign-partitions` run by a
//! careful operator, but resumable and never leaving a throttle behind:
//!
//! `Pending` (plan) -> [`ProposalReady`] -> `MovingLeaders` (decommission: reorder so a staying
//! replica is preferred, then a preferred-leader election) -> `Moving` (per batch: throttles set,
//! then the reassignment; entries cleared as partitions finish, rates as brokers go idle) ->
//! `ElectingLeaders` -> `Verifying` (decommission: the leaving brokers hold nothing, or the rest
//! is planned again) -> `Retiring` (the broker count is lowered; the reconciler terminates the
//! hosts, removes DNS records, releases IDs) -> `Succeeded`. Cancel or failure: `CleaningUp`
//! (every throttle cleared) -> `Cancelled`/`Failed`.
//!
//! Every throttle is recorded in the status before it is written (the driver saves the union
//! first), so a crash at any point leaves a record of what to clear.

use std::collections::{BTreeMap, BTreeSet};

use fleet_api::operation::{MovePlan, MoveSpec, Operation, OperationStatus, Phase, Progress, ThrottleSet, TopicThrottle};

use super::machine::Step;
use crate::plan::Seen;
use crate::store::OperationEffects;
use moves::{Assignment, Move};

mod driver;
pub mod live;
pub mod moves;

pub use driver::Moves;

/// How long a decommission's or rebalance's waits may last.
#[derive(Clone, Copy, Debug)]
pub struct MoveSettings {
    /// One batch of reassignments (it is cancelled through Kafka after this, and the operation fails).
    pub batch_timeout_ms: i64,
    /// Leaving brokers stopping and releasing their IDs once retired.
    pub retire_timeout_ms: i64,
}

impl Default for MoveSettings {
    fn default() -> Self {
        Self { batch_timeout_ms: 60 * 60_000, retire_timeout_ms: 15 * 60_000 }
    }
}

/// A move's phases: the wire's phases a decommission or rebalance runs through, and no others.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MovePhase {
    Pending,
    ProposalReady,
    MovingLeaders,
    Moving,
    ElectingLeaders,
    Verifying,
    Retiring,
    CleaningUp,
    Paused,
    Succeeded,
    Failed,
    Cancelled,
}

impl MovePhase {
    pub const ALL: [Phase; 12] = [
        Phase::Pending,
        Phase::ProposalReady,
        Phase::MovingLeaders,
        Phase::Moving,
        Phase::ElectingLeaders,
        Phase::Verifying,
        Phase::Retiring,
        Phase::CleaningUp,
        Phase::Paused,
        Phase::Succeeded,
        Phase::Failed,
        Phase::Cancelled,
    ];
}

impl TryFrom<Phase> for MovePhase {
    type Error = Phase;
    fn try_from(p: Phase) -> Result<Self, Phase> {
        Ok(match p {
            Phase::Pending => Self::Pending,
            Phase::ProposalReady => Self::ProposalReady,
            Phase::MovingLeaders => Self::MovingLeaders,
            Phase::Moving => Self::Moving,
            Phase::ElectingLeaders => Self::ElectingLeaders,
            Phase::Verifying => Self::Verifying,
            Phase::Retiring => Self::Retiring,
            Phase::CleaningUp => Self::CleaningUp,
            Phase::Paused => Self::Paused,
            Phase::Succeeded => Self::Succeeded,
            Phase::Failed => Self::Failed,
            Phase::Cancelled => Self::Cancelled,
            other => return Err(other),
        })
    }
}

/// How long a preferred-leader election may take before the operation goes on without it (a
/// staying replica out of the ISR cannot lead; its leadership then moves with its replica).
pub const ELECTION_WAIT_MS: i64 = 30_000;

/// How many times `Verifying` may find replicas placed on the leaving brokers meanwhile and move
/// them before the operation gives up.
pub const MAX_SWEEPS: usize = 5;

/// One partition as the topic znode has it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionNow {
    pub replicas: Vec<i32>,
    /// Non-empty while Kafka's controller is reassigning it.
    pub adding: Vec<i32>,
    pub removing: Vec<i32>,
}

impl PartitionNow {
    pub fn in_flight(&self) -> bool {
        !self.adding.is_empty() || !self.removing.is_empty()
    }
}

pub type Partitions = BTreeMap<(String, u32), PartitionNow>;

#[derive(Clone, Debug, Default)]
pub struct MoveObserved {
    pub now_ms: i64,
    /// Live broker -> rack.
    pub live: Seen<BTreeMap<i32, String>>,
    /// Every topic's partitions (when planning and verifying), else the plan's topics.
    pub partitions: Seen<Partitions>,
    /// `/admin/reassign_partitions`: the partitions it lists, `None` when absent.
    pub reassigning: Seen<Option<BTreeSet<(String, u32)>>>,
    /// `/admin/preferred_replica_election` exists (an election not yet taken up).
    pub electing: Seen<bool>,
    /// Partition -> current leader (-1: none), for the partitions the phase cares about.
    pub leaders: Seen<BTreeMap<(String, u32), i32>>,
    /// Leaving brokers still registered in `/brokers/ids` or holding an ID in the registry.
    pub still_there: Seen<BTreeSet<i32>>,
    /// Bytes per partition (on its leader), where known.
    pub sizes: BTreeMap<(String, u32), u64>,
    /// Bytes already copied to each new replica `(topic, partition, broker)`, where known.
    pub copied: BTreeMap<(String, u32, i32), u64>,
    pub pause: Seen<super::Pause>,
    /// The cluster is being deleted or gone.
    pub cluster_gone: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MoveAction {
    /// Make the throttles this operation holds exactly `want` (merged with others' values, and
    /// with the rates found before, which come back when it lets go).
    Throttle(ThrottleSet),
    /// Write `/admin/reassign_partitions` with these moves' targets.
    Reassign(Vec<Move>),
    /// Write `/admin/preferred_replica_election` for these partitions.
    Elect(Vec<(String, u32)>),
    /// Cancel these partitions' reassignments through Kafka's controller (AlterPartitionReassignments):
    /// their replicas go back to where they were.
    CancelReassignments(Vec<(String, u32)>),
}

fn key(m: &Move) -> (String, u32) {
    (m.topic.clone(), m.partition)
}

fn same_set(a: &[i32], b: &[i32]) -> bool {
    let (x, y): (BTreeSet<i32>, BTreeSet<i32>) = (a.iter().copied().collect(), b.iter().copied().collect());
    x == y && a.len() == b.len()
}

/// A move is done when the partition has exactly its target replicas, in order (a rebalance may
/// only reorder them, to move a preferred leader), and nothing in flight (or the topic is gone).
/// Kafka's controller writes the target list as given when a reassignment completes.
pub fn done(m: &Move, partitions: &Partitions) -> bool {
    partitions.get(&key(m)).is_none_or(|p| !p.in_flight() && p.replicas == m.to)
}

/// The plan for the operation from what is live: moves, batches and per-broker figures.
pub fn make_plan(
    spec: &MoveSpec,
    decommission: bool,
    live: &BTreeMap<i32, String>,
    partitions: &Partitions,
    sizes: &BTreeMap<(String, u32), u64>,
) -> Result<MovePlan, moves::MoveError> {
    let assignment: Assignment = partitions.iter().map(|(k, p)| (k.clone(), p.replicas.clone())).collect();
    let leaving: BTreeSet<i32> = spec.leaving.iter().copied().collect();
    let mut planned = if decommission { moves::plan_decommission(&assignment, live, &leaving)? } else { moves::plan_rebalance(&assignment, live) };
    for m in &mut planned {
        m.bytes = sizes.get(&key(m)).copied().unwrap_or(0);
    }
    let batches = moves::batches(&planned, spec.max_moves_per_broker as usize, spec.max_moves as usize);
    let mut after = assignment.clone();
    for m in &planned {
        after.insert(key(m), m.to.clone());
    }
    let brokers = || live.keys().copied();
    let (replicas_before, leaders_before) = moves::counts(&assignment, brokers());
    let (replicas_after, leaders_after) = moves::counts(&after, brokers());
    let leaders_to_move = planned.iter().filter(|m| m.from.first().is_some_and(|b| leaving.contains(b))).count() as u32;
    Ok(MovePlan {
        batches: batches.iter().map(|b| b.len() as u32).collect(),
        moves: batches.into_iter().flatten().collect(),
        racks: live.clone(),
        replicas_before,
        replicas_after,
        leaders_before,
        leaders_after,
        leaders_to_move,
    })
}

/// The throttles a set of moves needs: current replicas send (leader list), new ones receive
/// (follower list), and the rate on every broker they involve.
pub fn throttles_for<'a>(moving: impl Iterator<Item = &'a Move>, rate: u64) -> ThrottleSet {
    let moving: Vec<Move> = moving.cloned().collect();
    let mut set = ThrottleSet { rate, ..ThrottleSet::default() };
    let mut brokers = BTreeSet::new();
    for m in &moving {
        brokers.extend(moves::brokers_of(m));
    }
    for (topic, (leader, follower)) in moves::throttled_replicas(&moving) {
        let fmt = |e: &moves::Throttled| e.iter().map(|(p, b)| format!("{p}:{b}")).collect::<Vec<_>>();
        set.topics.insert(topic, TopicThrottle { leader: fmt(&leader), follower: fmt(&follower) });
    }
    set.brokers = brokers.into_iter().collect();
    set
}

/// Everything in either set (what may be in ZooKeeper while going from one to the other).
pub fn union(a: &ThrottleSet, b: &ThrottleSet) -> ThrottleSet {
    let mut out = a.clone();
    out.rate = if b.is_empty() { a.rate } else { b.rate };
    let brokers: BTreeSet<i32> = a.brokers.iter().chain(b.brokers.iter()).copied().collect();
    out.brokers = brokers.into_iter().collect();
    for (t, tt) in &b.topics {
        let e = out.topics.entry(t.clone()).or_default();
        let merge = |x: &mut Vec<String>, y: &[String]| {
            let s: BTreeSet<String> = x.iter().chain(y.iter()).cloned().collect();
            *x = s.into_iter().collect();
        };
        merge(&mut e.leader, &tt.leader);
        merge(&mut e.follower, &tt.follower);
    }
    out
}

/// The batch `n` of the plan: its range in `plan.moves`.
fn batch_range(plan: &MovePlan, n: usize) -> std::ops::Range<usize> {
    let start: usize = plan.batches.iter().take(n).map(|b| *b as usize).sum();
    start..start + plan.batches.get(n).copied().unwrap_or(0) as usize
}

fn first_moving_phase(decommission: bool, plan: &MovePlan) -> Phase {
    if decommission && plan.leaders_to_move > 0 {
        Phase::MovingLeaders
    } else {
        Phase::Moving
    }
}

/// The order that makes a staying replica preferred while keeping the same replicas.
fn leader_reorder(m: &Move, leaving: &BTreeSet<i32>) -> Option<Vec<i32>> {
    let first = *m.from.first()?;
    if !leaving.contains(&first) || m.from.iter().all(|b| leaving.contains(b)) {
        return None;
    }
    let mut order: Vec<i32> = m.from.iter().copied().filter(|b| !leaving.contains(b)).collect();
    order.extend(m.from.iter().copied().filter(|b| leaving.contains(b)));
    Some(order)
}

/// Advances a decommission (`decommission`) or rebalance one step from what was observed.
pub fn next(op: &Operation, spec: &MoveSpec, decommission: bool, observed: &MoveObserved) -> (OperationStatus, Option<MoveAction>) {
    let step = next_step(op, spec, decommission, observed, &MoveSettings::default());
    (step.status, step.action)
}

/// [`next`] with its effects and the deadlines of `settings`.
pub fn next_step(op: &Operation, spec: &MoveSpec, decommission: bool, observed: &MoveObserved, settings: &MoveSettings) -> Step<MoveAction> {
    let (status, action, effects) = next_inner(op, spec, decommission, observed, settings);
    Step { status, action, effects }
}

fn next_inner(op: &Operation, spec: &MoveSpec, decommission: bool, observed: &MoveObserved, settings: &MoveSettings) -> (OperationStatus, Option<MoveAction>, OperationEffects) {
    let mut status = op.status.clone();
    let now = observed.now_ms;
    let none = OperationEffects::default;
    let wait = |mut s: OperationStatus, why: String| {
        s.message = Some(why);
        (s, None, OperationEffects::default())
    };
    let Ok(phase) = MovePhase::try_from(status.phase) else {
        let why = format!("phase {} is not a {}'s", status.phase.as_str(), if decommission { "decommission" } else { "rebalance" });
        let (s, a) = clean_up(status, Phase::Failed, why, now);
        return (s, a, none());
    };
    if observed.cluster_gone && !matches!(phase, MovePhase::Succeeded | MovePhase::Failed | MovePhase::Cancelled) {
        status.enter(Phase::Failed, now, Some(format!("cluster {} is being deleted or gone; moves stopped where they were", op.cluster)));
        return (status, None, none());
    }
    let owned = status.throttled.clone().unwrap_or_default();
    let leaving: BTreeSet<i32> = spec.leaving.iter().copied().collect();
    // Cancel: before anything moved, at once; while moving, the reassignments in flight are
    // cancelled through Kafka (below).
    if op.cancel_requested && matches!(phase, MovePhase::Pending | MovePhase::ProposalReady | MovePhase::MovingLeaders | MovePhase::ElectingLeaders | MovePhase::Verifying | MovePhase::Paused) {
        let (s, a) = clean_up(status, Phase::Cancelled, "cancelled".into(), now);
        return (s, a, none());
    }
    // A failover or fallback on the cluster comes first: step aside (after cancelling what is in
    // flight, in Moving) and clear every throttle; plan again once it has ended.
    let pause_by = match &observed.pause {
        Seen::Known(super::Pause::Requested { by }) => Some(by.clone()),
        _ => None,
    };
    if let Some(by) = &pause_by {
        if matches!(phase, MovePhase::Pending | MovePhase::ProposalReady | MovePhase::MovingLeaders | MovePhase::ElectingLeaders | MovePhase::Verifying) {
            status.resume_phase = Some(Phase::Pending);
            let (s, a) = clean_up(status, Phase::Paused, format!("paused for {by}"), now);
            return (s, a, none());
        }
    }
    match phase {
        MovePhase::Paused => {
            return match &observed.pause {
                Seen::Known(super::Pause::Requested { by }) => wait(status, format!("paused for {by}; it plans again once {by} has ended")),
                Seen::Known(pause) => {
                    let by = match pause {
                        super::Pause::Over { by } => Some(by.clone()),
                        _ => op.paused_by.clone(),
                    };
                    status.moves = None;
                    status.batch = 0;
                    status.resume_phase = None;
                    status.enter(Phase::Pending, now, Some(format!("resumed{}: planning again from what is live", by.as_deref().map(|b| format!(" after {b} ended")).unwrap_or_default())));
                    (status, None, OperationEffects { resume: by, ..OperationEffects::default() })
                }
                Seen::Unknown(why) => wait(status, format!("paused; whether it may resume is unknown: {why}")),
            };
        }
        MovePhase::Verifying => {
            // Decided below; a clean verification retires the brokers in the same write.
        }
        _ => {}
    }
    let (status, action) = next_phase(op, spec, decommission, observed, settings, status, owned, leaving, pause_by);
    let entering = status.phase == Phase::Retiring && op.status.phase != Phase::Retiring;
    let cleared = status.phase == Phase::Retiring && status.retire_cleared_at_ms.is_some() && op.status.retire_cleared_at_ms.is_none();
    let effects = if entering || cleared {
        // The broker count goes down with the phase, and is written again with the clearance:
        // a spec write moves the store's revision, so the reconciler retires the hosts at once.
        OperationEffects { lower_brokers: Some(spec.from_brokers.saturating_sub(spec.leaving.len() as u32)), ..OperationEffects::default() }
    } else {
        OperationEffects::default()
    };
    (status, action, effects)
}

#[allow(clippy::too_many_arguments)]
fn next_phase(
    op: &Operation,
    spec: &MoveSpec,
    decommission: bool,
    observed: &MoveObserved,
    settings: &MoveSettings,
    mut status: OperationStatus,
    owned: ThrottleSet,
    leaving: BTreeSet<i32>,
    pause_by: Option<String>,
) -> (OperationStatus, Option<MoveAction>) {
    let now = observed.now_ms;
    let wait = |mut s: OperationStatus, why: String| {
        s.message = Some(why);
        (s, None)
    };
    match status.phase {
        Phase::Pending => {
            let (Some(live), Some(partitions), Some(reassigning)) = (observed.live.known(), observed.partitions.known(), observed.reassigning.known()) else {
                return wait(status, unknown("brokers, topics or reassignments", observed));
            };
            if let Some(busy) = reassignment_elsewhere(reassigning.as_ref(), partitions) {
                return wait(status, format!("{busy}: waiting for it to finish before planning"));
            }
            let plan = match make_plan(spec, decommission, live, partitions, &observed.sizes) {
                Ok(p) => p,
                Err(e) => {
                    status.enter(Phase::Failed, now, Some(format!("{e}; nothing was moved")));
                    return (status, None);
                }
            };
            let total = plan.moves.len() as u64;
            let bytes: u64 = plan.moves.iter().map(|m| m.bytes).sum();
            if total == 0 && !decommission {
                status.enter(Phase::Succeeded, now, Some("already balanced: nothing to move".into()));
                return (status, None);
            }
            status.progress = Some(Progress { done: 0, total });
            status.bytes = Some(Progress { done: 0, total: bytes });
            status.brokers_before = Some(live.keys().copied().collect());
            let phase = if spec.hold { Phase::ProposalReady } else { first_moving_phase(decommission, &plan) };
            let message = format!("{total} partition moves in {} batches ({} MiB)", plan.batches.len(), bytes >> 20);
            status.moves = Some(plan);
            status.batch = 0;
            status.enter(phase, now, Some(message));
            (status, None)
        }
        Phase::ProposalReady => {
            if !op.approved {
                return wait(status, format!("held: approve it (fleetctl approve operation {}) or cancel it", op.id));
            }
            let phase = status.moves.as_ref().map(|p| first_moving_phase(decommission, p)).unwrap_or(Phase::Moving);
            status.enter(phase, now, Some("approved".into()));
            (status, None)
        }
        Phase::MovingLeaders => {
            let Some(plan) = status.moves.clone() else { return fail(status, "no plan recorded", now) };
            let (Some(partitions), Some(reassigning), Some(leaders), Some(electing)) =
                (observed.partitions.known(), observed.reassigning.known(), observed.leaders.known(), observed.electing.known())
            else {
                return wait(status, unknown("topics, reassignments or leaders", observed));
            };
            let reorders: Vec<Move> = plan
                .moves
                .iter()
                .filter_map(|m| {
                    let order = leader_reorder(m, &leaving)?;
                    let now = partitions.get(&key(m))?;
                    // Already reordered, or already moved: nothing to do.
                    (now.replicas != order && !same_set(&now.replicas, &m.to)).then(|| Move { to: order, ..m.clone() })
                })
                .collect();
            if !reorders.is_empty() {
                if reassigning.is_some() || reorders.iter().any(|m| partitions.get(&key(m)).is_some_and(PartitionNow::in_flight)) {
                    return wait(status, "waiting for the reordering of replicas to be taken up".into());
                }
                status.message = Some(format!("reordering {} partitions so a staying replica is preferred", reorders.len()));
                return (status, Some(MoveAction::Reassign(reorders)));
            }
            let led: Vec<(String, u32)> = plan
                .moves
                .iter()
                .filter(|m| leader_reorder(m, &leaving).is_some() && leaders.get(&key(m)).is_some_and(|l| leaving.contains(l)))
                .map(key)
                .collect();
            match election(&status, led.len(), *electing, now) {
                Election::Over => {
                    let note = if led.is_empty() {
                        "leadership is off the leaving brokers".to_string()
                    } else {
                        format!("{} partitions kept their leader on a leaving broker (no staying replica in sync); it moves with the replica", led.len())
                    };
                    status.elected_at_ms = None;
                    status.enter(Phase::Moving, now, Some(note));
                    (status, None)
                }
                Election::Ask => {
                    status.elected_at_ms = Some(now);
                    status.message = Some(format!("electing staying leaders for {} partitions", led.len()));
                    (status, Some(MoveAction::Elect(led)))
                }
                Election::Wait(why) => wait(status, why.unwrap_or_else(|| format!("{} partitions still led by a leaving broker", led.len()))),
            }
        }
        Phase::Moving => {
            let Some(plan) = status.moves.clone() else { return fail(status, "no plan recorded", now) };
            let batch = status.batch as usize;
            if batch >= plan.batches.len() {
                if !owned.is_empty() {
                    status.message = Some("every batch done: final sweep of the throttles".into());
                    return (status, Some(MoveAction::Throttle(ThrottleSet::default())));
                }
                status.enter(Phase::ElectingLeaders, now, Some(format!("{} partitions moved", plan.moves.len())));
                return (status, None);
            }
            let (Some(partitions), Some(reassigning)) = (observed.partitions.known(), observed.reassigning.known()) else {
                return wait(status, unknown("topics or reassignments", observed));
            };
            let range = batch_range(&plan, batch);
            let this = &plan.moves[range.clone()];
            let finished: Vec<bool> = this.iter().map(|m| done(m, partitions)).collect();
            let ours_listed = reassigning.as_ref().is_some_and(|r| this.iter().any(|m| r.contains(&key(m))));
            record_progress(&mut status, &plan, range.start, this, &finished, observed);
            let in_flight: Vec<(String, u32)> = this.iter().filter(|m| partitions.get(&key(m)).is_some_and(PartitionNow::in_flight)).map(key).collect();
            let running = ours_listed || !in_flight.is_empty();
            let batch_started = status.history.iter().rev().find(|h| h.phase == Phase::Moving).map(|h| h.at_ms).unwrap_or(now);
            let overdue = now - batch_started > settings.batch_timeout_ms && running;
            if op.cancel_requested || pause_by.is_some() || overdue {
                // Kafka's controller keeps a ZooKeeper-submitted batch in /admin/reassign_partitions
                // until it completes, and drops a partition from it when the Admin API cancels it.
                if !in_flight.is_empty() {
                    status.message = Some(format!("stopping: cancelling the reassignment of {} partitions in flight (replicas go back)", in_flight.len()));
                    return (status, Some(MoveAction::CancelReassignments(in_flight)));
                }
                if ours_listed {
                    // Written, not taken up yet: it will be in a moment, and is cancelled then.
                    return wait(status, "stopping: waiting for the batch to be taken up, to cancel it".into());
                }
                let moved = status.progress.map(|p| p.done).unwrap_or(0);
                let kept = format!("{moved} of {} partitions moved (they stay moved)", plan.moves.len());
                return match (&pause_by, op.cancel_requested) {
                    (_, true) => clean_up(status, Phase::Cancelled, format!("cancelled with {kept}"), now),
                    (Some(by), false) => {
                        status.resume_phase = Some(Phase::Pending);
                        clean_up(status, Phase::Paused, format!("paused for {by} with {kept}"), now)
                    }
                    (None, false) => clean_up(status, Phase::Failed, format!("batch {} did not finish within {} min: cancelled, with {kept}", batch + 1, settings.batch_timeout_ms / 60_000), now),
                };
            }
            if finished.iter().all(|d| *d) && !ours_listed {
                status.batch += 1;
                status.message = Some(format!("batch {} of {} done", batch + 1, plan.batches.len()));
                return (status, None);
            }
            let moving = this.iter().zip(&finished).filter(|(_, d)| !**d).map(|(m, _)| m);
            let want = match spec.throttle_bytes {
                Some(rate) => throttles_for(moving.clone(), rate),
                None => ThrottleSet::default(),
            };
            // Throttles first: set before the batch starts, trimmed as partitions finish.
            if !want.holds_same(&owned) && !(want.is_empty() && owned.is_empty()) {
                return (status, Some(MoveAction::Throttle(want)));
            }
            let pending: Vec<Move> = moving
                .filter(|m| !partitions.get(&key(m)).is_some_and(PartitionNow::in_flight) && !reassigning.as_ref().is_some_and(|r| r.contains(&key(m))))
                .cloned()
                .collect();
            if !pending.is_empty() {
                if reassigning.is_some() {
                    return wait(status, "waiting for /admin/reassign_partitions to be taken up before writing the batch".into());
                }
                if let Some(busy) = reassignment_elsewhere(None, &partitions.iter().filter(|(k, _)| !this.iter().any(|m| &key(m) == *k)).map(|(k, v)| (k.clone(), v.clone())).collect()) {
                    return wait(status, format!("{busy}: waiting"));
                }
                status.message = Some(format!("batch {} of {}: moving {} partitions", batch + 1, plan.batches.len(), pending.len()));
                return (status, Some(MoveAction::Reassign(pending)));
            }
            let left = finished.iter().filter(|d| !**d).count();
            wait(status, format!("batch {} of {}: {left} of {} partitions moving", batch + 1, plan.batches.len(), this.len()))
        }
        Phase::ElectingLeaders => {
            let Some(plan) = status.moves.clone() else { return fail(status, "no plan recorded", now) };
            let (Some(leaders), Some(electing)) = (observed.leaders.known(), observed.electing.known()) else {
                return wait(status, unknown("leaders", observed));
            };
            let off: Vec<(String, u32)> =
                plan.moves.iter().filter(|m| leaders.get(&key(m)).is_some_and(|l| m.to.first() != Some(l))).map(key).collect();
            match election(&status, off.len(), *electing, now) {
                Election::Over => {
                    let note = if off.is_empty() {
                        "every moved partition is led by its preferred replica".to_string()
                    } else {
                        format!("{} partitions not led by their preferred replica (Kafka's auto leader rebalance will retry)", off.len())
                    };
                    status.elected_at_ms = None;
                    let phase = if decommission { Phase::Verifying } else { Phase::Succeeded };
                    status.enter(phase, now, Some(note));
                    (status, None)
                }
                Election::Ask => {
                    status.elected_at_ms = Some(now);
                    status.message = Some(format!("electing preferred leaders for {} partitions", off.len()));
                    (status, Some(MoveAction::Elect(off)))
                }
                Election::Wait(why) => wait(status, why.unwrap_or_else(|| format!("{} partitions not yet led by their preferred replica", off.len()))),
            }
        }
        Phase::Verifying => {
            let (Some(live), Some(partitions), Some(reassigning)) = (observed.live.known(), observed.partitions.known(), observed.reassigning.known()) else {
                return wait(status, unknown("brokers or topics", observed));
            };
            let held: Vec<String> = partitions
                .iter()
                .filter(|(_, p)| p.replicas.iter().chain(p.adding.iter()).any(|b| leaving.contains(b)))
                .map(|((t, p), _)| format!("{t}-{p}"))
                .collect();
            if held.is_empty() {
                status.enter(Phase::Retiring, now, Some(format!("brokers {} hold no replica; retiring them", list(&spec.leaving))));
                return (status, None);
            }
            if let Some(busy) = reassignment_elsewhere(reassigning.as_ref(), partitions) {
                return wait(status, format!("{busy}: waiting before moving the rest"));
            }
            // Something keeps placing replicas there (a tool that covers every live broker):
            // stop rather than chase it.
            let sweeps = status.history.iter().filter(|h| h.phase == Phase::Verifying).count();
            if sweeps > MAX_SWEEPS {
                let why = format!(
                    "{} keep appearing on brokers {} after {MAX_SWEEPS} sweeps: something places replicas on every live broker; stop it, then decommission again",
                    held.join(", "),
                    list(&spec.leaving)
                );
                return clean_up(status, Phase::Failed, why, now);
            }
            // Replicas placed there meanwhile (a topic created during the move): plan them too.
            let plan = match make_plan(spec, true, live, partitions, &observed.sizes) {
                Ok(p) => p,
                Err(e) => return clean_up(status, Phase::Failed, format!("{} still held on leaving brokers and cannot move: {e}", held.join(", ")), now),
            };
            let total = plan.moves.len() as u64;
            status.progress = Some(Progress { done: 0, total });
            status.moves = Some(plan);
            status.batch = 0;
            status.enter(Phase::Moving, now, Some(format!("{} partitions appeared on the leaving brokers meanwhile: moving them", held.len())));
            (status, None)
        }
        Phase::Retiring => {
            let Some(there) = observed.still_there.known() else {
                return wait(status, unknown("broker registrations", observed));
            };
            // Something placed a replica on a leaving broker that still runs (a topic created by
            // another tool): its host is not terminated; move it off first. Until this phase has
            // seen the partitions itself, no host is cleared to go (an unknown is not "none").
            let Some(partitions) = observed.partitions.known() else {
                return wait(status, unknown("partitions on the leaving brokers", observed));
            };
            let held: Vec<String> = partitions
                .iter()
                .filter(|(_, p)| p.replicas.iter().chain(p.adding.iter()).any(|b| leaving.contains(b) && there.contains(b)))
                .map(|((t, p), _)| format!("{t}-{p}"))
                .collect();
            if !held.is_empty() {
                status.enter(Phase::Verifying, now, Some(format!("{} appeared on brokers being retired ({}): moving them off before any host goes", held.len(), held.join(", "))));
                return (status, None);
            }
            if !there.is_empty() && status.retire_cleared_at_ms.is_none() {
                status.retire_cleared_at_ms = Some(now);
                status.message = Some(format!("brokers {} checked again: no replica left; their hosts may go", list(&spec.leaving)));
                return (status, None);
            }
            if there.is_empty() {
                let catch_up = format!(
                    "; your document: brokers: {} on the cluster",
                    spec.from_brokers.saturating_sub(spec.leaving.len() as u32)
                );
                status.enter(Phase::Succeeded, now, Some(format!("brokers {} retired{}", list(&spec.leaving), if decommission { catch_up } else { String::new() })));
                return (status, None);
            }
            // Counted from the clearance: until then no host was allowed to stop.
            if now - status.retire_cleared_at_ms.unwrap_or(now) > settings.retire_timeout_ms {
                return (
                    {
                        let mut s = status;
                        s.enter(
                            Phase::Failed,
                            now,
                            Some(format!(
                                "brokers {} still registered {} min after being retired: their hosts did not stop (check them; the broker count is already lowered)",
                                list(&there.iter().copied().collect::<Vec<_>>()),
                                settings.retire_timeout_ms / 60_000
                            )),
                        );
                        s
                    },
                    None,
                );
            }
            wait(status, format!("waiting for brokers {} to stop and release their IDs", list(&there.iter().copied().collect::<Vec<_>>())))
        }
        Phase::CleaningUp => {
            if !owned.is_empty() {
                return (status, Some(MoveAction::Throttle(ThrottleSet { prior: owned.prior.clone(), ..ThrottleSet::default() })));
            }
            let outcome = status.outcome.unwrap_or(Phase::Failed);
            let message = status.message.clone();
            let note = |m: Option<String>, tail: &str| m.map(|m| format!("{m}; {tail}"));
            if outcome == Phase::Paused {
                status.outcome = None;
                status.throttled = None;
                status.enter(Phase::Paused, now, note(message, "every throttle cleared; it plans again once the failover or fallback has ended"));
            } else {
                status.throttled = None;
                status.enter(outcome, now, note(message, "every throttle cleared"));
            }
            (status, None)
        }
        _ => (status, None),
    }
}

/// Where a preferred-leader election stands for `pending` partitions not yet led as wanted.
enum Election {
    /// Nothing pending, or the election was asked for long enough ago: go on.
    Over,
    /// Ask for it (once per phase).
    Ask,
    /// Asked; Kafka has not taken it up (`Some` why) or not finished.
    Wait(Option<String>),
}

fn election(status: &OperationStatus, pending: usize, electing: bool, now: i64) -> Election {
    let asked = status.elected_at_ms;
    if pending == 0 || asked.is_some_and(|t| now - t >= ELECTION_WAIT_MS) {
        Election::Over
    } else if electing {
        Election::Wait(Some("waiting for the preferred-leader election to be taken up".into()))
    } else if asked.is_none() {
        Election::Ask
    } else {
        Election::Wait(None)
    }
}

/// What the operation's counters read: moves done, bytes copied, time left at the current pace.
fn record_progress(status: &mut OperationStatus, plan: &MovePlan, before: usize, this: &[Move], finished: &[bool], observed: &MoveObserved) {
    let done = before + finished.iter().filter(|d| **d).count();
    status.progress = Some(Progress { done: done as u64, total: plan.moves.len() as u64 });
    let total: u64 = plan.moves.iter().map(|m| m.bytes).sum();
    let copied_before: u64 = plan.moves[..before].iter().map(|m| m.bytes).sum();
    let copied_now: u64 = this
        .iter()
        .zip(finished)
        .map(|(m, d)| {
            if *d {
                m.bytes
            } else {
                let new: Vec<i32> = moves::adding(m).collect();
                let got: u64 = new.iter().map(|b| observed.copied.get(&(m.topic.clone(), m.partition, *b)).copied().unwrap_or(0)).sum();
                (got / new.len().max(1) as u64).min(m.bytes)
            }
        })
        .sum();
    let bytes_done = copied_before + copied_now;
    status.bytes = Some(Progress { done: bytes_done, total });
    let started = status.history.iter().rev().find(|h| h.phase == Phase::Moving).map(|h| h.at_ms).unwrap_or(observed.now_ms);
    let elapsed_s = ((observed.now_ms - started) / 1000).max(1) as u64;
    status.eta_seconds = (bytes_done > 0 && total > bytes_done).then(|| (total - bytes_done) * elapsed_s / bytes_done);
}

/// Ends through `CleaningUp`, so every throttle set is cleared first (also after a crash).
fn clean_up(mut status: OperationStatus, outcome: Phase, why: String, now: i64) -> (OperationStatus, Option<MoveAction>) {
    status.outcome = Some(outcome);
    status.enter(Phase::CleaningUp, now, Some(why));
    (status, None)
}

fn fail(status: OperationStatus, why: &str, now: i64) -> (OperationStatus, Option<MoveAction>) {
    clean_up(status, Phase::Failed, why.to_string(), now)
}

/// A reassignment this operation did not start (Kafka runs one set at a time).
fn reassignment_elsewhere(znode: Option<&BTreeSet<(String, u32)>>, partitions: &Partitions) -> Option<String> {
    if let Some(listed) = znode {
        return Some(format!("/admin/reassign_partitions lists {} partitions", listed.len()));
    }
    partitions.iter().find(|(_, p)| p.in_flight()).map(|((t, p), _)| format!("partition {t}-{p} is being reassigned"))
}

fn unknown(what: &str, observed: &MoveObserved) -> String {
    let reasons: Vec<&str> = [
        observed.live.reason(),
        observed.partitions.reason(),
        observed.reassigning.reason(),
        observed.electing.reason(),
        observed.leaders.reason(),
        observed.still_there.reason(),
    ]
    .into_iter()
    .flatten()
    .filter(|r| *r != "not observed")
    .collect();
    format!("{what} unknown: {}", reasons.join("; "))
}

fn list(ids: &[i32]) -> String {
    ids.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests;
