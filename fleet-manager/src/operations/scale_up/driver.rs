//! A scale-up on the operation machine: what each phase reads, and its one action (the commit).

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;
use fleet_api::operation::{Operation, Phase, ScaleUpSpec};

use super::super::machine::{ActionResult, Machine, Step};
use super::super::{live_brokers, seen, Driver};
use super::{live, Action, ScaleUpObserved, ScaleUpPhase, ScaleUpSettings};
use crate::plan::Seen;
use crate::store::now_ms;

pub struct ScaleUp {
    pub spec: ScaleUpSpec,
    pub settings: ScaleUpSettings,
}

/// The brokers a cluster has before a scale-up acts: the fleet's registry entries whose hosts
/// run (as the reconciler last recorded them), with the live registrations, so a broker that is
/// briefly out of `/brokers/ids` is never taken for a new one.
async fn brokers_before(cx: &Driver<'_>, cluster: &str, live: &Seen<std::collections::BTreeMap<i32, String>>) -> Seen<BTreeSet<i32>> {
    let Seen::Known(live) = live else { return Seen::Unknown("live brokers unknown".into()) };
    let status = match cx.store.status(cluster).await {
        Ok(Some(v)) => serde_json::from_value::<fleet_api::wire::ClusterStatus>(v).map_err(|e| e.to_string()),
        Ok(None) => Err(format!("{cluster} not reconciled yet")),
        Err(e) => Err(e.to_string()),
    };
    let status = match status {
        Ok(s) => s,
        Err(e) => return Seen::Unknown(e),
    };
    let (Seen::Known(registry), Some(hosts)) = (&status.brokers.registry, &status.hosts) else {
        return Seen::Unknown(format!("{cluster}'s registry or hosts not recorded yet"));
    };
    let running: BTreeSet<&str> = hosts.iter().map(|h| h.instance_id.as_str()).collect();
    let mut before: BTreeSet<i32> = registry.iter().filter(|(_, i)| running.contains(i.as_str())).map(|(id, _)| *id).collect();
    before.extend(live.keys().copied());
    Seen::Known(before)
}

#[async_trait]
impl<'a> Machine<Driver<'a>> for ScaleUp {
    type Observed = ScaleUpObserved;
    type Action = Action;

    fn phases(&self) -> &'static [Phase] {
        &ScaleUpPhase::ALL
    }

    async fn observe(&self, cx: &Driver<'a>, op: &Operation) -> ScaleUpObserved {
        let kafka = cx.paths.cluster(&op.cluster).kafka();
        let phase = op.status.phase;
        let mut o = ScaleUpObserved { now_ms: now_ms(), pause: cx.pause_of(op).await, ..Default::default() };
        match cx.declared_brokers(&op.cluster).await {
            Some(d) => o.declared_brokers = d,
            None => o.cluster_gone = true,
        }
        let waiting = matches!(phase, Phase::Pending | Phase::WaitingForBrokers);
        if waiting {
            o.live = seen(live_brokers(cx.zk, &kafka).await);
        }
        if phase == Phase::Pending {
            o.before = brokers_before(cx, &op.cluster, &o.live).await;
        }
        if phase == Phase::WaitingForBrokers {
            o.registry = seen(
                fleet_common::registry::read_registry(cx.zk, &cx.paths.cluster(&op.cluster))
                    .await
                    .map(|r| r.into_iter().map(|(id, e)| (id, e.lease.instance_id)).collect())
                    .map_err(|e| e.to_string()),
            );
            o.guards = seen(live::guards(cx.zk, &kafka).await);
        }
        if matches!(phase, Phase::WaitingForBrokers | Phase::Committing) {
            o.topics = seen(live::topic_znodes(cx.zk, &kafka, &self.spec.topics).await);
        }
        if let (Some(plan), Phase::WaitingForLeaders) = (&op.status.plan, phase) {
            o.leaders = seen(live::leaders(cx.zk, &kafka, plan).await);
        }
        o
    }

    fn next(&self, op: &Operation, observed: &ScaleUpObserved) -> Step<Action> {
        // A cluster being deleted ends its scale-up where it is.
        if observed.cluster_gone {
            let mut st = op.status.clone();
            let done = if matches!(st.phase, Phase::Pending | Phase::WaitingForBrokers | Phase::ProposalReady | Phase::Paused) { "nothing was committed" } else { "it ended where it was" };
            st.enter(Phase::Failed, observed.now_ms, Some(format!("cluster {} is being deleted or gone; {done}", op.cluster)));
            return Step::to(st);
        }
        super::next(op, &self.spec, observed, &self.settings)
    }

    async fn act(&self, cx: &Driver<'a>, op: &Operation, action: &Action) -> ActionResult {
        let Action::Commit(plan) = action;
        let kafka = cx.paths.cluster(&op.cluster).kafka();
        let r = live::commit(cx.zk, cx.leader_znode, &kafka, plan, self.settings.max_commit_bytes).await;
        match &r {
            ActionResult::Done { millis } => tracing::info!(millis, partitions = plan.new_partition_count(), "scale-up committed"),
            other => tracing::warn!(result = ?other, "scale-up commit not made"),
        }
        r
    }

    fn after(&self, op: &Operation, action: &Action, result: ActionResult, now_ms: i64) -> Step<Action> {
        super::after(op, action, result, now_ms)
    }

    fn poll(&self, phase: Phase) -> Duration {
        match phase {
            // Hosts take a while to boot (minutes on EC2), a person to approve.
            Phase::WaitingForBrokers | Phase::ProposalReady | Phase::Paused => Duration::from_secs(5),
            _ => Duration::from_millis(500),
        }
    }
}
