//! A decommission or rebalance on the operation machine: what each phase reads (only that), and
//! its actions (throttles, reassignments, elections, cancels) in ZooKeeper and through Kafka.

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;
use fleet_api::operation::{MoveSpec, Operation, OperationStatus, Phase, ThrottleSet};

use super::super::machine::{ActionResult, Machine, Step};
use super::super::{live_brokers, seen, Driver};
use super::{live, MoveAction, MoveObserved, MovePhase, MoveSettings};
use crate::store::now_ms;

pub struct Moves {
    pub spec: MoveSpec,
    /// A decommission (brokers leave), or a rebalance.
    pub decommission: bool,
    pub settings: MoveSettings,
}

#[async_trait]
impl<'a> Machine<Driver<'a>> for Moves {
    type Observed = MoveObserved;
    type Action = MoveAction;

    fn phases(&self) -> &'static [Phase] {
        &MovePhase::ALL
    }

    async fn observe(&self, cx: &Driver<'a>, op: &Operation) -> MoveObserved {
        let cluster = cx.paths.cluster(&op.cluster);
        let kafka = cluster.kafka();
        let zk = cx.zk;
        let mut o = MoveObserved { now_ms: now_ms(), pause: cx.pause_of(op).await, ..MoveObserved::default() };
        o.cluster_gone = cx.declared_brokers(&op.cluster).await.is_none();
        let plan_topics: BTreeSet<String> = op.status.moves.iter().flat_map(|p| p.moves.iter().map(|m| m.topic.clone())).collect();
        let plan_keys: BTreeSet<(String, u32)> = op.status.moves.iter().flat_map(|p| p.moves.iter().map(|m| (m.topic.clone(), m.partition))).collect();
        match op.status.phase {
            Phase::Pending | Phase::Verifying => {
                o.live = seen(live_brokers(zk, &kafka).await);
                o.partitions = seen(live::partitions(zk, &kafka, None).await);
                o.reassigning = seen(live::reassigning(zk, &kafka).await);
                // A partition's size (the most any replica holds), a DescribeLogDirs per broker:
                // asked only when there is something to plan (always in `Pending`; in `Verifying`
                // only when replicas are still on the leaving brokers), not every poll.
                // Nor while someone else's reassignment runs (the phase waits for it to end).
                let leaving: BTreeSet<i32> = self.spec.leaving.iter().copied().collect();
                let someone_elses = !matches!(o.reassigning.known(), Some(None));
                let to_plan = !someone_elses
                    && (op.status.phase == Phase::Pending
                        || o.partitions.known().is_some_and(|ps| ps.values().any(|p| p.replicas.iter().chain(p.adding.iter()).any(|b| leaving.contains(b)))));
                if to_plan {
                    for per_broker in live::sizes(zk, &kafka, None).await.into_values() {
                        for (k, bytes) in per_broker {
                            let e = o.sizes.entry(k).or_default();
                            *e = (*e).max(bytes);
                        }
                    }
                }
            }
            Phase::MovingLeaders => {
                o.partitions = seen(live::partitions(zk, &kafka, Some(&plan_topics)).await);
                o.reassigning = seen(live::reassigning(zk, &kafka).await);
                o.leaders = seen(live::leaders(zk, &kafka, &plan_keys).await);
                o.electing = seen(live::electing(zk, &kafka).await);
            }
            Phase::Moving => {
                o.partitions = seen(live::partitions(zk, &kafka, Some(&plan_topics)).await);
                o.reassigning = seen(live::reassigning(zk, &kafka).await);
                // Bytes copied so far: the running batch's new replicas, on their brokers (a
                // DescribeLogDirs per receiving broker, at most every few seconds: the poll).
                if let Some(batch) = running_batch(op) {
                    let receiving: BTreeSet<i32> = batch.iter().flat_map(|m| super::moves::adding(m).collect::<Vec<_>>()).collect();
                    for (broker, per_broker) in live::sizes(zk, &kafka, Some(&receiving)).await {
                        for m in batch.iter().filter(|m| m.to.contains(&broker) && !m.from.contains(&broker)) {
                            if let Some(bytes) = per_broker.get(&(m.topic.clone(), m.partition)) {
                                o.copied.insert((m.topic.clone(), m.partition, broker), *bytes);
                            }
                        }
                    }
                }
            }
            Phase::ElectingLeaders => {
                o.leaders = seen(live::leaders(zk, &kafka, &plan_keys).await);
                o.electing = seen(live::electing(zk, &kafka).await);
            }
            Phase::Retiring => {
                o.still_there = seen(live::still_there(zk, &cluster, &self.spec.leaving).await);
                o.partitions = seen(live::partitions(zk, &kafka, None).await);
            }
            _ => {}
        }
        o
    }

    fn next(&self, op: &Operation, observed: &MoveObserved) -> Step<MoveAction> {
        super::next_step(op, &self.spec, self.decommission, observed, &self.settings)
    }

    /// Throttles are recorded before they are written, with the rates they replace (read now,
    /// from each broker the operation throttles for the first time): a crash after the write
    /// still knows what to clear and what to put back.
    async fn prepare(&self, cx: &Driver<'a>, op: &Operation, mut step: Step<MoveAction>) -> Step<MoveAction> {
        let Some(MoveAction::Throttle(want)) = &step.action else { return step };
        let owned = op.status.throttled.clone().unwrap_or_default();
        let mut want = want.clone();
        let mut prior = owned.prior.clone();
        let first_time: Vec<i32> = want.brokers.iter().copied().filter(|b| !owned.brokers.contains(b) && !prior.contains_key(b)).collect();
        if !first_time.is_empty() {
            let kafka = cx.paths.cluster(&op.cluster).kafka();
            match live::prior_rates(cx.zk, &kafka, &first_time).await {
                Ok(found) => prior.extend(found),
                Err(e) => {
                    // Unknown is not "none": nothing is written until they can be read.
                    step.status.message = Some(format!("reading the throttle rates brokers {first_time:?} have now: {e}; retrying"));
                    step.action = None;
                    return step;
                }
            }
        }
        want.prior = prior.clone();
        let mut union = super::union(&owned, &want);
        union.prior = prior;
        step.status.throttled = Some(union).filter(|t: &ThrottleSet| !t.is_empty() || !t.prior.is_empty());
        step.action = Some(MoveAction::Throttle(want));
        step
    }

    async fn act(&self, cx: &Driver<'a>, op: &Operation, action: &MoveAction) -> ActionResult {
        let kafka = cx.paths.cluster(&op.cluster).kafka();
        let owned = op.status.throttled.clone().unwrap_or_default();
        let r = match action {
            MoveAction::Throttle(want) => live::apply_throttles(cx.zk, cx.leader_znode, &kafka, &owned, want).await,
            MoveAction::Reassign(moves) => live::reassign(cx.zk, cx.leader_znode, &kafka, moves).await,
            MoveAction::Elect(keys) => live::elect(cx.zk, cx.leader_znode, &kafka, keys).await,
            MoveAction::CancelReassignments(keys) => live::cancel_reassignments(cx.zk, &kafka, keys).await,
        };
        match (&r, action) {
            (ActionResult::Done { millis }, MoveAction::Throttle(want)) => tracing::info!(millis, brokers = ?want.brokers, topics = want.topics.len(), "throttles set"),
            (ActionResult::Done { millis }, MoveAction::Reassign(moves)) => tracing::info!(millis, partitions = moves.len(), "reassignment written"),
            (ActionResult::Done { millis }, MoveAction::Elect(keys)) => tracing::info!(millis, partitions = keys.len(), "preferred-leader election asked for"),
            (ActionResult::Done { millis }, MoveAction::CancelReassignments(keys)) => tracing::info!(millis, partitions = keys.len(), "reassignments cancelled"),
            _ => {}
        }
        r
    }

    fn after(&self, op: &Operation, action: &MoveAction, result: ActionResult, now_ms: i64) -> Step<MoveAction> {
        let mut after: OperationStatus = op.status.clone();
        match result {
            ActionResult::Done { .. } => {
                if let MoveAction::Throttle(want) = action {
                    // What the operation holds now; the rates it replaced are kept until the
                    // last throttle is let go (and put back with it).
                    let prior = if want.is_empty() { Default::default() } else { want.prior.clone() };
                    after.throttled = Some(ThrottleSet { prior, ..want.clone() }).filter(|t| !t.is_empty());
                }
            }
            ActionResult::Retry(why) => after.message = Some(why),
            ActionResult::Refused(why) => {
                after.outcome = Some(Phase::Failed);
                after.enter(Phase::CleaningUp, now_ms, Some(why));
            }
        }
        Step::to(after)
    }

    fn fail(&self, status: OperationStatus, why: String, now_ms: i64) -> Step<MoveAction> {
        let mut st = status;
        st.outcome = Some(Phase::Failed);
        st.enter(Phase::CleaningUp, now_ms, Some(why));
        Step::to(st)
    }

    fn poll(&self, phase: Phase) -> Duration {
        match phase {
            // Copying takes seconds to hours; a byte-progress read per receiving broker each time.
            // `Pending` only waits when it cannot plan yet (someone else's reassignment, an
            // unknown), and each look asks every broker for its log dirs.
            Phase::Moving | Phase::Pending | Phase::Verifying => Duration::from_secs(2),
            Phase::Retiring | Phase::ProposalReady | Phase::Paused => Duration::from_secs(5),
            _ => Duration::from_millis(500),
        }
    }
}

/// The moves of the batch under way, when there is one.
fn running_batch(op: &Operation) -> Option<&[super::Move]> {
    let plan = op.status.moves.as_ref()?;
    let n = op.status.batch as usize;
    let start: usize = plan.batches.iter().take(n).map(|b| *b as usize).sum();
    let len = *plan.batches.get(n)? as usize;
    plan.moves.get(start..start + len)
}
