//! The leader's side of a decommission or rebalance: observe what the phase needs, ask
//! [`super::next`], record, act, record again.

use std::collections::BTreeSet;

use fleet_api::operation::{MoveSpec, Operation, OperationStatus, Phase, ThrottleSet};

use super::super::scale_up::ActionResult;
use super::super::{live_brokers, seen, Driver};
use super::{live, MoveAction, MoveObserved};
use crate::store::{now_ms, OperationEffects, StoreError};

impl Driver<'_> {
    /// Advances a decommission (`decommission`) or rebalance; returns the phase it is left in.
    pub(in crate::operations) async fn drive_moves(&self, mut op: Operation, spec: MoveSpec, decommission: bool) -> Result<Phase, StoreError> {
        if self.declared_brokers(&op.cluster).await.is_none() {
            let mut status = op.status.clone();
            status.enter(Phase::Failed, now_ms(), Some(format!("cluster {} is being deleted or gone; moves stopped where they were", op.cluster)));
            self.save(&op, &status, &OperationEffects::default()).await?;
            return Ok(Phase::Failed);
        }
        let kafka = self.paths.cluster(&op.cluster).kafka();
        for _ in 0..8 {
            let observed = self.observe_moves(&op, &spec).await;
            let (mut status, action) = super::next(&op, &spec, decommission, &observed);
            let Some(action) = action else {
                if self.settle(&mut op, status).await? {
                    continue;
                }
                return Ok(op.status.phase);
            };
            let owned = op.status.throttled.clone().unwrap_or_default();
            let mut effects = OperationEffects::default();
            match &action {
                // Recorded before it is written: a crash after the write still knows to clear it.
                MoveAction::Throttle(want) => status.throttled = Some(super::union(&owned, want)).filter(|t| !t.is_empty()),
                MoveAction::Retire(n) => effects.lower_brokers = Some(*n),
                MoveAction::Reassign(_) | MoveAction::Elect(_) => {}
            }
            if status != op.status {
                self.save(&op, &status, &effects).await?;
                op.status = status.clone();
            }
            let result = match &action {
                MoveAction::Throttle(want) => live::apply_throttles(self.zk, self.leader_znode, &kafka, &owned, want).await,
                MoveAction::Reassign(moves) => live::reassign(self.zk, self.leader_znode, &kafka, moves).await,
                MoveAction::Elect(keys) => live::elect(self.zk, self.leader_znode, &kafka, keys).await,
                MoveAction::Retire(_) => ActionResult::Done { millis: 0 },
            };
            let mut after: OperationStatus = op.status.clone();
            match result {
                ActionResult::Done { millis } => {
                    match &action {
                        MoveAction::Throttle(want) => {
                            tracing::info!(millis, brokers = ?want.brokers, topics = want.topics.len(), "throttles set");
                            after.throttled = Some(want.clone()).filter(|t: &ThrottleSet| !t.is_empty());
                        }
                        MoveAction::Reassign(moves) => tracing::info!(millis, partitions = moves.len(), "reassignment written"),
                        MoveAction::Elect(keys) => tracing::info!(millis, partitions = keys.len(), "preferred-leader election asked for"),
                        MoveAction::Retire(n) => tracing::info!(brokers = n, "declared brokers lowered"),
                    }
                    if after != op.status {
                        self.save(&op, &after, &OperationEffects::default()).await?;
                        op.status = after;
                    }
                }
                ActionResult::Retry(why) => {
                    tracing::warn!(error = %why, "operation step not taken; retried");
                    after.message = Some(why);
                    if after != op.status {
                        self.save(&op, &after, &OperationEffects::default()).await?;
                    }
                    return Ok(after.phase);
                }
                ActionResult::Refused(why) => {
                    after.outcome = Some(Phase::Failed);
                    after.enter(Phase::CleaningUp, now_ms(), Some(why));
                    self.save(&op, &after, &OperationEffects::default()).await?;
                    op.status = after;
                }
            }
        }
        Ok(op.status.phase)
    }

    /// Reads what the operation's phase depends on, and only that.
    async fn observe_moves(&self, op: &Operation, spec: &MoveSpec) -> MoveObserved {
        let cluster = self.paths.cluster(&op.cluster);
        let kafka = cluster.kafka();
        let zk = self.zk;
        let mut o = MoveObserved { now_ms: now_ms(), ..MoveObserved::default() };
        let plan_topics: BTreeSet<String> = op.status.moves.iter().flat_map(|p| p.moves.iter().map(|m| m.topic.clone())).collect();
        let plan_keys: BTreeSet<(String, u32)> = op.status.moves.iter().flat_map(|p| p.moves.iter().map(|m| (m.topic.clone(), m.partition))).collect();
        match op.status.phase {
            Phase::Pending | Phase::Verifying => {
                o.live = seen(live_brokers(zk, &kafka).await);
                o.partitions = seen(live::partitions(zk, &kafka, None).await);
                o.reassigning = seen(live::reassigning(zk, &kafka).await);
                // A partition's size: the most any replica holds.
                for per_broker in live::sizes(zk, &kafka, None).await.into_values() {
                    for (k, bytes) in per_broker {
                        let e = o.sizes.entry(k).or_default();
                        *e = (*e).max(bytes);
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
                // Bytes copied so far: the new replicas of the running batch, on their brokers.
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
            Phase::Retiring => o.still_there = seen(live::still_there(zk, &cluster, &spec.leaving).await),
            _ => {}
        }
        o
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
