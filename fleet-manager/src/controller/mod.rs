//! The controller, after kube-runtime: each cluster is reconciled on its own (observe -> pure
//! `plan_cluster` -> idempotent steps -> one recorder), one reconcile per cluster at a time, and
//! comes back when its plan says something can have changed (a grace period's end, a short poll
//! while brokers boot, the periodic resync), or at once when its spec changes. Failures back off
//! per cluster; terminal ones (a bad image ID) hold until the spec changes. See [`queue`].
//!
//! Only the leader reconciles: the fleet managers hold a Curator-style lock in ZooKeeper. The
//! leader's epoch is its election znode's creation zxid (monotonic across the ensemble's life);
//! it claims the store with it on election, and every store write of the reconciler checks it in
//! the same transaction, so a deposed leader that wakes up (a long pause, a partition) has its
//! writes refused. ZooKeeper multis check the leader's znode the same way.

pub mod queue;

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use fleet_common::{FleetPaths, ZkAddress, ZkConnector};
use futures::FutureExt;
use tokio::sync::Notify;
use zookeeper_client as zk;

use crate::execute::{Executor, LiveExecutor, StepError};
use crate::metrics::Metrics;
use crate::observe::{self, LiveObserver, Observer};
use crate::plan::{self, ClusterIntent, DesiredCluster, DesiredTopic, ObservedCluster, Plan, PlanSettings, Step};
use crate::providers::{DnsZone, ErrorClass, HostProviders};
use crate::spec::{self, DeclaredSpec};
use crate::store::{now_ms, JournalRetention, NewJournalEntry, PassRecord, Store, StoreError};
use queue::{BackoffPolicy, Queue, Requeue};

#[derive(Clone, Debug)]
pub struct ReconcileSettings {
    /// The periodic resync of a converged cluster.
    pub interval: Duration,
    pub replace_grace: Duration,
    pub step_timeout: Duration,
    pub launch_visibility: Duration,
    /// Clusters reconciled at once.
    pub concurrency: usize,
    pub backoff: BackoffPolicy,
    pub journal: JournalRetention,
    pub scale_up: crate::operations::scale_up::ScaleUpSettings,
    pub failover: crate::operations::failover::FailoverSettings,
    pub moves: crate::operations::reassign::MoveSettings,
    /// How often routes' failover policies are evaluated.
    pub trigger_interval: Duration,
    /// Health verdicts (and auditor reads) a trigger pass makes at once.
    pub trigger_concurrency: usize,
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30),
            replace_grace: Duration::from_secs(90),
            step_timeout: Duration::from_secs(60),
            launch_visibility: Duration::from_secs(120),
            concurrency: 4,
            backoff: BackoffPolicy::default(),
            journal: JournalRetention::default(),
            scale_up: Default::default(),
            failover: Default::default(),
            moves: Default::default(),
            trigger_interval: Duration::from_secs(5),
            trigger_concurrency: 32,
        }
    }
}

pub struct Reconciler {
    pub store: Store,
    pub zk_address: ZkAddress,
    pub zk_connector: ZkConnector,
    pub paths: FleetPaths,
    pub hosts: HostProviders,
    pub dns: Arc<dyn DnsZone>,
    pub settings: ReconcileSettings,
    /// `host:pid`, recorded in the leader znode and the journal.
    pub identity: String,
    pub leader: AtomicBool,
    pub wake: Notify,
    pub metrics: Arc<Metrics>,
    /// The healthcheck's verdict on a cluster (failover guard rails and verification).
    pub health: Arc<dyn observe::health::HealthJudge>,
    /// Retries of each operation's actions (the operation machine's backoff).
    pub op_backoff: crate::operations::Backoff,
    /// Clusters an operation's write concerns besides its own (a seal taken off the cluster a
    /// fallback goes back to): reconciled at once rather than at their next interval.
    pub touched: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

/// The queue key that drives a cluster's operations (the cluster's own name reconciles it).
const OPS_KEY: &str = "ops/";

/// What one reconcile did to one cluster.
#[derive(Debug)]
pub struct ClusterPass {
    pub desired: DesiredCluster,
    pub observed: ObservedCluster,
    pub plan: Plan,
    pub intent: ClusterIntent,
    pub results: Vec<StepResult>,
}

pub use fleet_api::wire::{BrokersStatus, ClusterStatus, StepResult};

/// The leader's fencing token and election znode, while it leads.
#[derive(Clone, Debug)]
pub struct Leadership {
    pub epoch: i64,
    pub znode: String,
}

/// The desired state of every cluster, from the store (deleting ones included).
pub async fn desired_state(store: &Store) -> Result<Vec<DesiredCluster>, StoreError> {
    Ok(desired_from(&store.list(None, None).await?))
}

/// The desired state that a set of stored resources declares.
pub fn desired_from(all: &[crate::store::StoredResource]) -> Vec<DesiredCluster> {
    let mut clusters: BTreeMap<String, DesiredCluster> = BTreeMap::new();
    for r in all {
        if let DeclaredSpec::KafkaCluster(s) = &r.declared.spec {
            clusters.insert(
                r.declared.name.clone(),
                DesiredCluster {
                    spec: spec::effective_cluster(&r.declared.name, s),
                    deleting: r.deleting,
                    topics: Vec::new(),
                    revision: r.revision,
                    uid: r.uid.clone(),
                    leaving: BTreeMap::new(),
                    frozen: None,
                    sealed_for: Vec::new(),
                    restarting: Default::default(),
                },
            );
        }
    }
    for r in all {
        if let DeclaredSpec::Topic(t) = &r.declared.spec {
            let Some(c) = clusters.get_mut(&t.cluster) else { continue };
            c.revision = c.revision.max(r.revision);
            match spec::effective_topic(&r.declared.name, t, Some(&c.spec)) {
                Ok(spec) => c.topics.push(DesiredTopic { spec, deleting: r.deleting || c.deleting }),
                Err(e) => tracing::warn!(cluster = %t.cluster, topic = %r.declared.name, error = %e, "stored topic no longer valid; skipped"),
            }
        }
    }
    clusters.into_values().collect()
}

/// The routes that sealed `cluster` when they left it, unless a route is on it now (its writes
/// must go through): the reconciler then desires the seal on its topics.
pub fn sealed_for(cluster: &str, routes: &[crate::store::StoredResource], statuses: &BTreeMap<String, fleet_api::route::RouteStatus>) -> Vec<String> {
    let mut sealed = Vec::new();
    for r in routes {
        let DeclaredSpec::Route(spec) = &r.declared.spec else { continue };
        let status = statuses.get(&r.declared.name);
        let bound = status.map(|s| s.cluster.as_str()).filter(|c| !c.is_empty()).unwrap_or(spec.cluster.as_str());
        if bound == cluster {
            return Vec::new();
        }
        if status.is_some_and(|s| s.sealed.iter().any(|c| c == cluster)) {
            sealed.push(r.declared.name.clone());
        }
    }
    sealed
}

/// [`sealed_for`] from the store.
pub async fn seals(store: &Store, cluster: &str) -> Result<Vec<String>, StoreError> {
    let routes = store.list(Some(spec::Kind::Route), None).await?;
    let statuses = store.route_statuses().await?;
    Ok(sealed_for(cluster, &routes, &statuses))
}

/// What a reconcile of one cluster came to.
enum Outcome {
    Requeue(Requeue),
    /// A newer leader has taken over: stop leading.
    Deposed,
}

impl Reconciler {
    fn plan_settings(&self) -> PlanSettings {
        PlanSettings {
            now_ms: now_ms(),
            replace_grace_ms: self.settings.replace_grace.as_millis() as i64,
            launch_visibility_ms: self.settings.launch_visibility.as_millis() as i64,
        }
    }

    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::SeqCst)
    }

    /// Plans every cluster against a fresh observation without applying anything (`fleetctl plan`).
    pub async fn preview(&self, zk: Option<&zk::Client>, desired: Vec<DesiredCluster>) -> Vec<Plan> {
        let mut plans = Vec::new();
        for mut d in desired {
            if let Ok(ops) = self.store.operations(Some(&d.spec.name), true).await {
                d.leaving = crate::operations::leaving_brokers(&ops);
                d.frozen = crate::operations::frozen_by(&ops, &d.spec.name);
                d.restarting = crate::operations::restarting_brokers(&ops, &d.spec.name, crate::store::now_ms());
            }
            if let Ok(routes) = seals(&self.store, &d.spec.name).await {
                d.sealed_for = routes;
            }
            let observed =
                observe::observe_cluster(&d, zk, &self.paths.cluster(&d.spec.name), self.hosts.get(d.spec.provider), self.dns.as_ref(), None).await;
            match self.load_intent(&d.spec.name).await {
                Ok(intent) => plans.push(plan::plan_cluster(&d, &observed, &intent, self.plan_settings()).0),
                Err((_, why)) => plans.push(Plan { cluster: d.spec.name.clone(), waiting: vec![why], ..Plan::default() }),
            }
        }
        plans
    }

    /// The cluster's intent. Unreadable is not "none": the cluster is not acted on until it is
    /// fixed (acting on a default intent could launch hosts twice).
    async fn load_intent(&self, cluster: &str) -> Result<ClusterIntent, (ErrorClass, String)> {
        match self.store.intent(cluster).await {
            Ok(Some(v)) => serde_json::from_value::<ClusterIntent>(v)
                .map(ClusterIntent::upgraded)
                .map_err(|e| (ErrorClass::Terminal, format!("stored intent of {cluster} is unreadable ({e}); not acting on the cluster"))),
            Ok(None) => Ok(ClusterIntent::default()),
            Err(e) => Err((ErrorClass::Retryable, format!("intent of {cluster} unreadable: {e}"))),
        }
    }

    /// Runs forever: elects, reconciles while leader, steps down when the session ends.
    pub async fn run(self: Arc<Self>, shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut shutdown = shutdown;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let client = match self.zk_connector.connect(&self.zk_address).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "ZooKeeper unreachable; not reconciling, retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(2)) => continue,
                        _ = shutdown.changed() => return,
                    }
                }
            };
            self.lead_while_possible(&client, &mut shutdown).await;
            self.leader.store(false, Ordering::SeqCst);
            self.metrics.leader.set(0);
            if *shutdown.borrow() {
                return;
            }
        }
    }

    async fn lead_while_possible(self: &Arc<Self>, client: &zk::Client, shutdown: &mut tokio::sync::watch::Receiver<bool>) {
        let dir = format!("{}/fleet-manager/leader", self.paths.root().trim_end_matches('/'));
        let acl = self.zk_connector.fleet_acl();
        if let Err(e) = fleet_common::zk::ensure_path(client, &dir, acl).await {
            tracing::error!(error = %e, path = %dir, "cannot create the election path");
            tokio::time::sleep(Duration::from_secs(2)).await;
            return;
        }
        let prefix = match zk::LockPrefix::new_curator(&dir, "leader-") {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "bad election path");
                return;
            }
        };
        let mut states = client.state_watcher();
        tracing::info!(identity = %self.identity, "standing for election");
        let lock = tokio::select! {
            lock = client.lock(prefix, self.identity.as_bytes(), acl.acls()) => lock,
            _ = shutdown.changed() => return,
        };
        let lock = match lock {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "election interrupted; standing again");
                return;
            }
        };
        // The epoch: the election znode's creation zxid, larger for every later leader.
        let epoch = match client.check_stat(lock.lock_path()).await {
            Ok(Some(stat)) => stat.czxid,
            other => {
                tracing::warn!(result = ?other.map(|s| s.is_some()), "own election znode unreadable; standing again");
                return;
            }
        };
        if let Err(e) = self.store.claim_leadership(epoch).await {
            tracing::warn!(error = %e, epoch, "could not claim the store; standing again");
            tokio::time::sleep(Duration::from_secs(1)).await;
            return;
        }
        let leadership = Leadership { epoch, znode: lock.lock_path().to_string() };
        self.leader.store(true, Ordering::SeqCst);
        self.metrics.leader.set(1);
        tracing::info!(identity = %self.identity, epoch, "elected leader; reconciling");
        let _ = self
            .store
            .append_journal_fenced(
                epoch,
                &NewJournalEntry {
                    actor: format!("reconciler@{}", self.identity),
                    cluster: String::new(),
                    action: "elected".into(),
                    detail: serde_json::json!({ "epoch": epoch }),
                    outcome: "info",
                    message: format!("{} became the leader (epoch {epoch})", self.identity),
                },
            )
            .await;

        let mut queue = Queue::new(self.settings.backoff);
        let mut last_revision = match self.store.revision().await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "store unreadable; standing again");
                return;
            }
        };
        match (self.store.cluster_names().await, self.store.clusters_with_active_operations().await) {
            (Ok(names), Ok(busy)) => {
                let now = Instant::now();
                for n in names {
                    queue.trigger(&n, now);
                }
                // A new leader resumes every unfinished operation.
                for c in busy {
                    queue.trigger(&format!("{OPS_KEY}{c}"), now);
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "store unreadable; standing again");
                return;
            }
        }
        // Each reconcile is a task of its own: polled only from this loop, one that holds a store
        // connection would freeze whenever the loop awaits the store itself (the revision poll),
        // and four of them exhaust the pool for the API too.
        let mut running: tokio::task::JoinSet<(String, Outcome)> = tokio::task::JoinSet::new();
        let mut next_prune = Instant::now();
        let mut poll = tokio::time::interval(Duration::from_millis(500));
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut triggers = tokio::time::interval(self.settings.trigger_interval);
        triggers.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let http = reqwest::Client::new();
        // Trigger passes run on a task of their own: awaited in this loop they would starve the
        // reconciles it polls, and wait forever on a store write one of those holds.
        let (trigger_done, mut trigger_results) = tokio::sync::mpsc::channel::<Result<(), StoreError>>(1);
        let mut trigger_pass: Option<tokio::task::JoinHandle<()>> = None;
        loop {
            let now = Instant::now();
            let free = self.settings.concurrency.max(1).saturating_sub(queue.running());
            for key in queue.take_due(now, free) {
                tracing::debug!(cluster = %key, "reconciling");
                let (me, client, leadership) = (self.clone(), client.clone(), leadership.clone());
                running.spawn(async move {
                    let outcome = AssertUnwindSafe(me.reconcile_live(&client, &leadership, &key)).catch_unwind().await;
                    let outcome = outcome.unwrap_or_else(|_| {
                        me.metrics.reconcile_panics.inc();
                        tracing::error!(cluster = %key, "reconcile panicked; the cluster backs off, the others go on");
                        Outcome::Requeue(Requeue::Failed(ErrorClass::Retryable))
                    });
                    (key, outcome)
                });
            }
            if now >= next_prune {
                next_prune = now + Duration::from_secs(600);
                if let Err(e) = self.store.prune_client_reports().await {
                    tracing::warn!(error = %e, "pruning expired client reports failed");
                }
                match self.store.prune_journal(self.settings.journal).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(dropped = n, "journal pruned"),
                    Err(e) => tracing::warn!(error = %e, "journal pruning failed"),
                }
            }
            let sleep_until = queue.next_due().map(tokio::time::Instant::from_std).unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                Some(joined) = running.join_next(), if !running.is_empty() => {
                    // Panics are caught inside the task; a join error is only an abort (none here).
                    let Ok((key, outcome)) = joined else { continue };
                    match outcome {
                        Outcome::Requeue(r) => {
                            tracing::debug!(cluster = %key, requeue = ?r, "reconciled");
                            queue.finish(&key, r, Instant::now());
                            let touched = std::mem::take(&mut *self.touched.lock().unwrap_or_else(|p| p.into_inner()));
                            for c in touched {
                                queue.trigger(&c, Instant::now());
                            }
                        }
                        Outcome::Deposed => {
                            tracing::warn!(epoch, "a newer leader took over: stepping down");
                            break;
                        }
                    }
                }
                _ = tokio::time::sleep_until(sleep_until) => {}
                _ = poll.tick() => {
                    // The store's revision moves when any instance's API writes (standbys too).
                    self.trigger_changed(&mut queue, &mut last_revision).await;
                }
                _ = self.wake.notified() => self.trigger_changed(&mut queue, &mut last_revision).await,
                _ = triggers.tick() => {
                    if trigger_pass.as_ref().is_none_or(|t| t.is_finished()) {
                        let (me, http, done) = (self.clone(), http.clone(), trigger_done.clone());
                        trigger_pass = Some(tokio::spawn(async move {
                            let _ = done.send(me.evaluate_triggers(epoch, &http).await).await;
                        }));
                    }
                }
                Some(result) = trigger_results.recv() => match result {
                    Ok(()) => {}
                    Err(StoreError::Fenced { epoch }) => {
                        self.metrics.fenced_writes.inc();
                        tracing::warn!(epoch, "trigger state refused: a newer leader took over; stepping down");
                        break;
                    }
                    Err(e) => tracing::warn!(error = %e, "recording a trigger evaluation failed"),
                },
                state = states.changed() => {
                    if !matches!(state, zk::SessionState::SyncConnected) {
                        tracing::warn!(state = ?state, "ZooKeeper session not connected; stepping down");
                        break;
                    }
                }
                _ = shutdown.changed() => break,
            }
        }
        if let Some(t) = trigger_pass.take() {
            t.abort();
        }
        // Reconciles in flight are let finish rather than dropped mid-step: each stops before its
        // next step (the session check) and records what it did, which the store refuses if a
        // newer leader has claimed it. Bounded, so a hung call cannot hold the step-down.
        self.leader.store(false, Ordering::SeqCst);
        let drain = async {
            while let Some(joined) = running.join_next().await {
                if let Ok((key, Outcome::Deposed)) = joined {
                    tracing::info!(cluster = %key, "in-flight reconcile fenced while stepping down");
                }
            }
        };
        if tokio::time::timeout(self.settings.step_timeout, drain).await.is_err() {
            tracing::warn!("in-flight reconciles did not finish while stepping down; abandoned");
            running.abort_all();
        }
    }

    async fn trigger_changed(&self, queue: &mut Queue, last_revision: &mut i64) {
        let revision = match self.store.revision().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "store revision unreadable");
                return;
            }
        };
        if revision == *last_revision {
            return;
        }
        match self.store.clusters_changed_since(*last_revision).await {
            Ok(clusters) => {
                let now = Instant::now();
                for c in clusters {
                    tracing::debug!(cluster = %c, "spec changed");
                    queue.trigger(&c, now);
                    queue.trigger(&format!("{OPS_KEY}{c}"), now);
                }
                *last_revision = revision;
            }
            Err(e) => tracing::warn!(error = %e, "changed clusters unreadable"),
        }
    }

    async fn reconcile_live(&self, client: &zk::Client, leadership: &Leadership, key: &str) -> Outcome {
        if let Some(cluster) = key.strip_prefix(OPS_KEY) {
            return self.drive_operations(client, leadership, cluster).await;
        }
        let cluster = key;
        let observer = LiveObserver {
            zk: Some(client),
            paths: &self.paths,
            hosts: &self.hosts,
            dns: self.dns.as_ref(),
            metrics: &self.metrics,
        };
        let executor = LiveExecutor {
            zk: client,
            leader_znode: &leadership.znode,
            paths: &self.paths,
            hosts: &self.hosts,
            dns: self.dns.as_ref(),
            metrics: &self.metrics,
            step_timeout: self.settings.step_timeout,
            admin: Default::default(),
        };
        let session_ok = || client.state() == zk::SessionState::SyncConnected;
        match self.reconcile_with(&observer, &executor, leadership.epoch, &session_ok, cluster).await {
            Ok(r) => Outcome::Requeue(r),
            Err(StoreError::Fenced { epoch }) => {
                self.metrics.fenced_writes.inc();
                tracing::warn!(cluster, epoch, "store write refused: deposed");
                Outcome::Deposed
            }
            Err(e) => {
                tracing::error!(cluster, error = %e, "recording failed; backing off");
                Outcome::Requeue(Requeue::Failed(ErrorClass::Retryable))
            }
        }
    }

    /// A cluster's operations, on their own key: each phase reads what it needs at the pace it
    /// needs, and the cluster's full observation (provider and DNS listings) runs on its own
    /// schedule (an operation's effects on specs trigger it through the store's revision).
    async fn drive_operations(&self, client: &zk::Client, leadership: &Leadership, cluster: &str) -> Outcome {
        let driver = crate::operations::Driver {
            store: &self.store,
            zk: client,
            leader_znode: &leadership.znode,
            paths: &self.paths,
            epoch: leadership.epoch,
            identity: &self.identity,
            settings: self.settings.scale_up,
            failover: self.settings.failover,
            moves: self.settings.moves,
            metrics: &self.metrics,
            health: self.health.as_ref(),
            hosts: &self.hosts,
            backoff: &self.op_backoff,
            step_timeout: self.settings.step_timeout,
            touched: &self.touched,
        };
        match driver.drive(cluster).await {
            Ok(Some(poll)) => Outcome::Requeue(Requeue::After(poll)),
            Ok(None) => Outcome::Requeue(Requeue::Gone),
            Err(StoreError::Fenced { epoch }) => {
                self.metrics.fenced_writes.inc();
                tracing::warn!(cluster, epoch, "operation write refused: deposed");
                Outcome::Deposed
            }
            Err(e) => {
                tracing::error!(cluster, error = %e, "recording an operation failed");
                Outcome::Requeue(Requeue::Failed(ErrorClass::Retryable))
            }
        }
    }

    /// One cluster's reconcile through the given seams: load the desired state, observe, plan,
    /// persist launch tokens, apply, record. `Err` only for store writes (a fenced one among them).
    #[tracing::instrument(skip(self, observer, executor, session_ok), fields(epoch))]
    pub async fn reconcile_with(
        &self,
        observer: &dyn Observer,
        executor: &dyn Executor,
        epoch: i64,
        session_ok: &(dyn Fn() -> bool + Sync),
        cluster: &str,
    ) -> Result<Requeue, StoreError> {
        let started = Instant::now();
        self.metrics.reconciles.get_or_create(&crate::metrics::ClusterLabels { cluster: cluster.to_string() }).inc();
        let resources = match self.store.list(None, Some(cluster)).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(cluster, error = %e, "store unreadable");
                return Ok(Requeue::Failed(ErrorClass::Retryable));
            }
        };
        let Some(mut desired) = desired_from(&resources).into_iter().find(|d| d.spec.name == cluster) else {
            return Ok(Requeue::Gone);
        };
        // Brokers a decommission is emptying are left alone; unreadable operations stop the pass.
        match self.store.operations(Some(cluster), true).await {
            Ok(ops) => {
                desired.leaving = crate::operations::leaving_brokers(&ops);
                desired.frozen = crate::operations::frozen_by(&ops, cluster);
                desired.restarting = crate::operations::restarting_brokers(&ops, cluster, crate::store::now_ms());
            }
            Err(e) => {
                tracing::error!(cluster, error = %e, "operations unreadable");
                return Ok(Requeue::Failed(ErrorClass::Retryable));
            }
        }
        // Unknown is not "unsealed": a pass that cannot read the routes changes nothing.
        match seals(&self.store, cluster).await {
            Ok(routes) => desired.sealed_for = routes,
            Err(e) => {
                tracing::error!(cluster, error = %e, "routes unreadable");
                return Ok(Requeue::Failed(ErrorClass::Retryable));
            }
        }
        let intent = match self.load_intent(cluster).await {
            Ok(i) => i,
            Err((class, why)) => {
                tracing::error!(cluster, error = %why, "not acting on the cluster");
                let status = ClusterStatus { phase: "Failed".into(), message: Some(why), reconciled_by: self.identity.clone(), at_ms: now_ms(), ..ClusterStatus::default() };
                let status = serde_json::to_value(status).unwrap_or_default();
                self.store.record(epoch, &PassRecord { cluster: cluster.to_string(), status: Some(status), ..PassRecord::default() }).await?;
                return Ok(Requeue::Failed(class));
            }
        };
        let observed = observer.observe(&desired).await;
        let (plan, mut next_intent) = plan::plan_cluster(&desired, &observed, &intent, self.plan_settings());
        // Launch tokens are persisted before any provider call, so a launch cut off mid-call is
        // retried with its token and never makes a second host.
        if plan.steps.iter().any(|s| matches!(s, Step::LaunchHost { .. })) && next_intent != intent {
            self.store.put_intent_fenced(epoch, cluster, &serde_json::to_value(&next_intent).unwrap_or_default()).await?;
        }
        let mut results = Vec::new();
        let mut failure = None;
        for step in &plan.steps {
            // A leader that lost its session may already have a successor: stop acting at once
            // (the successor re-plans from what it observes; the fence refuses what is late).
            if !session_ok() {
                tracing::warn!(step = step.name(), "ZooKeeper session not connected; remaining steps left to the next leader");
                break;
            }
            let started = Instant::now();
            let attempt = || executor.apply(&desired, step);
            let retried = attempt
                .retry(ExponentialBuilder::default().with_min_delay(Duration::from_millis(200)).with_max_times(3))
                .when(|e: &StepError| e.class() == ErrorClass::Retryable);
            let outcome = tokio::time::timeout(self.settings.step_timeout, retried).await;
            let (ok, message, class) = match outcome {
                Ok(Ok(msg)) => (true, msg, None),
                Ok(Err(e)) => (false, e.to_string(), Some(e.class())),
                Err(_) => (false, format!("timed out after {}s", self.settings.step_timeout.as_secs()), Some(ErrorClass::Retryable)),
            };
            if ok {
                if let Step::LaunchHost { token, .. } = step {
                    if let Some(l) = next_intent.launches.get_mut(token) {
                        l.instance_id = Some(message.clone());
                    }
                }
                crate::failpoints::crash_after_step();
            } else {
                tracing::warn!(cluster, step = step.name(), error = %message, class = ?class, "step failed");
            }
            self.metrics.steps.get_or_create(&crate::metrics::StepLabels { step: step.name().into(), ok: ok.to_string() }).inc();
            results.push(StepResult { step: step.clone(), ok, message, millis: started.elapsed().as_millis() as u64, error_class: class });
            if let Some(class) = class {
                // Later steps may depend on this one (e.g. launch after terminate): stop here.
                failure = Some(class);
                break;
            }
        }
        let applied = !results.is_empty();
        if applied {
            crate::failpoints::stop_before_record();
        }
        let requeue_hint = plan.requeue_after_ms;
        self.record(epoch, ClusterPass { desired, observed, plan, intent: next_intent, results }).await?;
        self.metrics.pass_seconds.observe(started.elapsed().as_secs_f64());
        Ok(match failure {
            Some(class) => Requeue::Failed(class),
            // Look again soon to see the steps' effect.
            None if applied => Requeue::After(Duration::from_secs(1)),
            None => {
                let hint = requeue_hint.map(|ms| Duration::from_millis(ms.max(100) as u64));
                Requeue::After(hint.map_or(self.settings.interval, |h| h.min(self.settings.interval)))
            }
        })
    }

    /// The one place a reconcile's results are written: journal, intent and status (or the
    /// removal of what teardown finished) in one fenced transaction.
    async fn record(&self, epoch: i64, p: ClusterPass) -> Result<(), StoreError> {
        let cluster = p.desired.spec.name.clone();
        let mut record = PassRecord { cluster: cluster.clone(), ..PassRecord::default() };
        for r in &p.results {
            record.journal.push(NewJournalEntry {
                actor: format!("reconciler@{}", self.identity),
                cluster: cluster.clone(),
                action: r.step.name().into(),
                detail: serde_json::to_value(&r.step).unwrap_or_default(),
                outcome: if r.ok { "ok" } else { "error" },
                message: format!("{}: {}", r.step.describe(), r.message),
            });
            if r.ok {
                match &r.step {
                    Step::ForgetCluster => record.forget_cluster = true,
                    Step::ForgetTopic { topic } => record.forget_topics.push(topic.clone()),
                    _ => {}
                }
            }
        }
        let converged = p.plan.converged() && p.results.is_empty();
        if !record.forget_cluster {
            let previous = self.store.status(&cluster).await.ok().flatten();
            let observed_revision = if converged {
                p.desired.revision
            } else {
                previous.as_ref().and_then(|s| s.get("observedRevision")).and_then(|v| v.as_i64()).unwrap_or(0)
            };
            record.intent = Some(serde_json::to_value(&p.intent).unwrap_or_default());
            record.status = Some(serde_json::to_value(status_document(&p, converged, observed_revision, &self.identity)).unwrap_or_default());
        }
        self.store.record(epoch, &record).await?;
        let live = p.observed.live_brokers.known().map(|l| l.len() as i64).unwrap_or(-1);
        self.metrics.live_brokers.get_or_create(&crate::metrics::ClusterLabels { cluster: cluster.clone() }).set(live);
        self.metrics.converged.get_or_create(&crate::metrics::ClusterLabels { cluster }).set(i64::from(converged));
        Ok(())
    }
}

/// The status a cluster shows (`fleetctl describe`): desired vs observed, and the last plan.
pub fn status_document(p: &ClusterPass, converged: bool, observed_revision: i64, identity: &str) -> ClusterStatus {
    let failed = p.results.iter().any(|r| !r.ok);
    let phase = if p.desired.deleting {
        "Deleting"
    } else if converged {
        "Converged"
    } else if failed {
        "Degraded"
    } else {
        "Progressing"
    };
    ClusterStatus {
        phase: phase.into(),
        converged,
        observed_revision,
        desired_revision: p.desired.revision,
        at_ms: p.observed.at_ms,
        reconciled_by: identity.to_string(),
        message: None,
        brokers: BrokersStatus { desired: p.desired.spec.brokers, live: p.observed.live_brokers.clone(), registry: p.observed.registry.clone() },
        hosts: p.observed.hosts.known().map(|h| h.iter().filter(|h| h.state.is_alive()).cloned().collect()),
        topics: p.observed.topics.clone(),
        dns: p.observed.dns.clone(),
        quorum: p.desired.spec.is_kraft().then(|| p.observed.quorum.clone()),
        kafka_cluster_id: if p.desired.spec.is_kraft() { crate::spec::kafka_cluster_id(&p.desired.uid) } else { None },
        plan: p.plan.clone(),
        last_steps: p.results.clone(),
        requeue_after_ms: p.plan.requeue_after_ms,
    }
}

#[cfg(test)]
pub(crate) mod tests;
