//! The controller loop, after kube-runtime: level-triggered (a periodic pass, and one as soon as
//! the store's revision moves), `observe -> plan -> apply`, one cluster per task. A pass works on a
//! snapshot and returns what it did ([`ClusterPass`]); [`Reconciler::record`] is the one place that
//! writes those results (intent, status, journal). Dropping a torn-down cluster or a deleted topic
//! from the store is itself a plan step (`ForgetCluster`, `ForgetTopic`), applied like the others.
//!
//! Only the leader reconciles: the fleet managers hold a Curator-style lock in ZooKeeper, and a
//! standby takes over when the leader's session ends.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use fleet_common::{FleetPaths, ZkAddress, ZkConnector};
use futures::StreamExt;
use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use serde::Serialize;
use tokio::sync::Notify;
use zookeeper_client as zk;

use crate::metrics::Metrics;
use crate::observe;
use crate::plan::{self, ClusterIntent, DesiredCluster, DesiredTopic, ObservedCluster, Plan, PlanSettings, Step};
use crate::provider::{DnsZone, HostProvider};
use crate::spec::{self, DeclaredSpec, Kind, ProviderKind};
use crate::store::{now_ms, NewJournalEntry, Store, StoreError};

#[derive(Clone, Debug)]
pub struct ReconcileSettings {
    pub interval: Duration,
    pub replace_grace: Duration,
    pub step_timeout: Duration,
    pub launch_visibility: Duration,
    /// Clusters reconciled at once.
    pub concurrency: usize,
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30),
            replace_grace: Duration::from_secs(90),
            step_timeout: Duration::from_secs(60),
            launch_visibility: Duration::from_secs(120),
            concurrency: 4,
        }
    }
}

pub struct Reconciler {
    pub store: Store,
    pub zk_address: ZkAddress,
    pub zk_connector: ZkConnector,
    pub paths: FleetPaths,
    pub local: Option<Arc<dyn HostProvider>>,
    pub ec2: Option<Arc<dyn HostProvider>>,
    pub dns: Arc<dyn DnsZone>,
    pub settings: ReconcileSettings,
    /// `host:pid`, recorded in the leader znode and the journal.
    pub identity: String,
    pub leader: AtomicBool,
    pub wake: Notify,
    pub metrics: Arc<Metrics>,
}

/// What one pass did to one cluster.
#[derive(Debug)]
pub struct ClusterPass {
    pub desired: DesiredCluster,
    pub observed: ObservedCluster,
    pub plan: Plan,
    pub intent: ClusterIntent,
    pub results: Vec<StepResult>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepResult {
    pub step: Step,
    pub ok: bool,
    pub message: String,
    pub millis: u64,
}

#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error("{0}")]
    Retryable(String),
    #[error("{0}")]
    Fatal(String),
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
                DesiredCluster { spec: spec::effective_cluster(&r.declared.name, s), deleting: r.deleting, topics: Vec::new(), revision: r.revision },
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

impl Reconciler {
    pub fn provider_for(&self, kind: ProviderKind) -> Option<&dyn HostProvider> {
        match kind {
            ProviderKind::Local => self.local.as_deref(),
            ProviderKind::Ec2 => self.ec2.as_deref(),
        }
    }

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
        for d in desired {
            let observed = observe::observe_cluster(&d, zk, &self.paths.cluster(&d.spec.name), self.provider_for(d.spec.provider), self.dns.as_ref()).await;
            let intent = self.load_intent(&d.spec.name).await;
            plans.push(plan::plan_cluster(&d, &observed, &intent, self.plan_settings()).0);
        }
        plans
    }

    async fn load_intent(&self, cluster: &str) -> ClusterIntent {
        match self.store.intent(cluster).await {
            Ok(Some(v)) => serde_json::from_value(v).unwrap_or_default(),
            Ok(None) => ClusterIntent::default(),
            Err(e) => {
                tracing::warn!(cluster, error = %e, "intent unreadable; starting from none");
                ClusterIntent::default()
            }
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

    async fn lead_while_possible(&self, client: &zk::Client, shutdown: &mut tokio::sync::watch::Receiver<bool>) {
        let dir = format!("{}/fleet-manager/leader", self.paths.root().trim_end_matches('/'));
        if let Err(e) = fleet_common::zk::ensure_path(client, &dir).await {
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
            lock = client.lock(prefix, self.identity.as_bytes(), zk::Acls::anyone_all()) => lock,
            _ = shutdown.changed() => return,
        };
        let _lock = match lock {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "election interrupted; standing again");
                return;
            }
        };
        self.leader.store(true, Ordering::SeqCst);
        self.metrics.leader.set(1);
        tracing::info!(identity = %self.identity, "elected leader; reconciling");
        let _ = self
            .store
            .append_journal(&NewJournalEntry {
                actor: format!("reconciler@{}", self.identity),
                cluster: String::new(),
                action: "elected".into(),
                detail: serde_json::json!({}),
                outcome: "info",
                message: format!("{} became the leader", self.identity),
            })
            .await;
        let mut last_revision = -1;
        let mut next_pass = Instant::now();
        let mut reason = "elected";
        loop {
            if Instant::now() >= next_pass {
                let busy = self.pass(client, reason).await;
                next_pass = Instant::now() + if busy { Duration::from_secs(1) } else { self.settings.interval };
                reason = "periodic";
            }
            // Watch the store's revision (other instances' API writes) and the session.
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = self.wake.notified() => { reason = "spec changed"; next_pass = Instant::now(); }
                state = states.changed() => {
                    match state {
                        zk::SessionState::SyncConnected => {}
                        other => {
                            tracing::warn!(state = ?other, "ZooKeeper session not connected; stepping down");
                            return;
                        }
                    }
                }
                _ = shutdown.changed() => return,
            }
            match self.store.revision().await {
                Ok(r) if r != last_revision => {
                    if last_revision >= 0 {
                        reason = "spec changed";
                        next_pass = Instant::now();
                    }
                    last_revision = r;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "store revision unreadable"),
            }
        }
    }

    /// One pass over every cluster. Returns whether any cluster still has work (to come back soon).
    #[tracing::instrument(skip(self, client), fields(reason))]
    pub async fn pass(&self, client: &zk::Client, reason: &str) -> bool {
        let started = Instant::now();
        let desired = match desired_state(&self.store).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "store unreadable; pass skipped");
                return true;
            }
        };
        tracing::debug!(clusters = desired.len(), reason, "reconcile pass");
        let passes: Vec<ClusterPass> = futures::stream::iter(desired)
            .map(|d| self.reconcile_cluster(client, d))
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        let mut busy = false;
        for p in passes {
            busy |= !p.plan.converged() || !p.results.is_empty();
            self.record(p).await;
        }
        self.metrics.pass_seconds.observe(started.elapsed().as_secs_f64());
        busy
    }

    #[tracing::instrument(skip_all, fields(cluster = %desired.spec.name))]
    async fn reconcile_cluster(&self, client: &zk::Client, desired: DesiredCluster) -> ClusterPass {
        let paths = self.paths.cluster(&desired.spec.name);
        let provider = self.provider_for(desired.spec.provider);
        let observed = observe::observe_cluster(&desired, Some(client), &paths, provider, self.dns.as_ref()).await;
        let intent = self.load_intent(&desired.spec.name).await;
        let (plan, mut next_intent) = plan::plan_cluster(&desired, &observed, &intent, self.plan_settings());
        let mut results = Vec::new();
        // One admin client per cluster pass, made on the first Kafka step (a pass may create
        // dozens of topics).
        let admin = tokio::sync::OnceCell::new();
        for step in &plan.steps {
            // A leader that lost its session may already have a successor: stop acting at once
            // (the successor re-plans from what it observes).
            if client.state() != zk::SessionState::SyncConnected {
                tracing::warn!(step = step.name(), "ZooKeeper session not connected; remaining steps left to the next leader");
                break;
            }
            let started = Instant::now();
            let outcome = tokio::time::timeout(self.settings.step_timeout, self.apply_with_retries(client, &desired, &admin, step)).await;
            let (ok, message) = match outcome {
                Ok(Ok(msg)) => (true, msg),
                Ok(Err(e)) => (false, e.to_string()),
                Err(_) => (false, format!("timed out after {}s", self.settings.step_timeout.as_secs())),
            };
            if ok {
                if let Step::LaunchHost { .. } = step {
                    next_intent.launched.insert(message.clone(), now_ms());
                }
                crash_failpoint();
            } else {
                tracing::warn!(step = step.name(), error = %message, "step failed; the next pass retries");
            }
            self.metrics.steps.get_or_create(&crate::metrics::StepLabels { step: step.name().into(), ok: ok.to_string() }).inc();
            results.push(StepResult { step: step.clone(), ok, message, millis: started.elapsed().as_millis() as u64 });
            if !ok {
                // Later steps may depend on this one (e.g. launch after terminate): stop here.
                break;
            }
        }
        ClusterPass { desired, observed, plan, intent: next_intent, results }
    }

    async fn apply_with_retries(&self, client: &zk::Client, desired: &DesiredCluster, admin: &Admin, step: &Step) -> Result<String, StepError> {
        (|| self.apply_step(client, desired, admin, step))
            .retry(ExponentialBuilder::default().with_min_delay(Duration::from_millis(200)).with_max_times(3))
            .when(|e| matches!(e, StepError::Retryable(_)))
            .await
    }

    #[tracing::instrument(skip(self, client, desired), fields(cluster = %desired.spec.name, step = step.name()))]
    async fn apply_step(&self, client: &zk::Client, desired: &DesiredCluster, admin: &Admin, step: &Step) -> Result<String, StepError> {
        let cluster = desired.spec.name.as_str();
        let provider = || {
            self.provider_for(desired.spec.provider)
                .ok_or_else(|| StepError::Fatal(format!("provider {:?} is not configured", desired.spec.provider)))
        };
        match step {
            Step::LaunchHost { availability_zone, instance_type, .. } => {
                let id = provider()?
                    .launch(&desired.spec, availability_zone, instance_type)
                    .await
                    .map_err(|e| StepError::Retryable(e.to_string()))?;
                tracing::info!(instance = %id, az = %availability_zone, "launched broker host");
                Ok(id)
            }
            Step::TerminateHost { instance_id, .. } => {
                provider()?.terminate(cluster, instance_id).await.map_err(|e| StepError::Retryable(e.to_string()))?;
                tracing::info!(instance = %instance_id, "terminated broker host");
                Ok(format!("terminated {instance_id}"))
            }
            Step::DeleteDnsRecord { name, set_identifier } => {
                self.dns
                    .delete(&crate::plan::DnsRecordSet { name: name.clone(), set_identifier: set_identifier.clone() })
                    .await
                    .map_err(|e| StepError::Retryable(e.to_string()))?;
                Ok(format!("deleted {name} {set_identifier}"))
            }
            Step::ForgetCluster => {
                self.store.remove(Kind::KafkaCluster, cluster).await.map_err(|e| StepError::Retryable(e.to_string()))?;
                Ok("forgotten".into())
            }
            Step::ForgetTopic { topic } => {
                self.store.remove(Kind::Topic, &spec::topic_key(cluster, topic)).await.map_err(|e| StepError::Retryable(e.to_string()))?;
                Ok(format!("forgot {topic}"))
            }
            Step::CreateTopic { .. } | Step::CreatePartitions { .. } | Step::AlterTopicConfigs { .. } | Step::DeleteTopic { .. } => {
                let admin = admin
                    .get_or_try_init(|| async {
                        let servers = observe::bootstrap_servers(client, &self.paths.cluster(cluster)).await.map_err(StepError::Retryable)?;
                        if servers.is_empty() {
                            return Err(StepError::Retryable("no live broker to talk to".into()));
                        }
                        rdkafka::ClientConfig::new()
                            .set("bootstrap.servers", servers.join(","))
                            .set("socket.timeout.ms", "10000")
                            .create::<AdminClient<DefaultClientContext>>()
                            .map_err(|e| StepError::Fatal(format!("admin client: {e}")))
                    })
                    .await?;
                kafka_step(admin, step, self.settings.step_timeout).await
            }
        }
    }

    /// The one place a pass's results are written.
    async fn record(&self, p: ClusterPass) {
        let cluster = p.desired.spec.name.clone();
        let forgotten = p.results.iter().any(|r| r.ok && matches!(r.step, Step::ForgetCluster));
        for r in &p.results {
            let entry = NewJournalEntry {
                actor: format!("reconciler@{}", self.identity),
                cluster: cluster.clone(),
                action: r.step.name().into(),
                detail: serde_json::to_value(&r.step).unwrap_or_default(),
                outcome: if r.ok { "ok" } else { "error" },
                message: format!("{}: {}", r.step.describe(), r.message),
            };
            if let Err(e) = self.store.append_journal(&entry).await {
                tracing::error!(cluster = %cluster, error = %e, "journal write failed");
            }
        }
        if forgotten {
            return;
        }
        if let Err(e) = self.store.put_intent(&cluster, &serde_json::to_value(&p.intent).unwrap_or_default()).await {
            tracing::error!(cluster = %cluster, error = %e, "intent write failed");
        }
        let converged = p.plan.converged() && p.results.is_empty();
        let previous = self.store.status(&cluster).await.ok().flatten();
        let observed_revision = if converged {
            p.desired.revision
        } else {
            previous.as_ref().and_then(|s| s.get("observedRevision")).and_then(|v| v.as_i64()).unwrap_or(0)
        };
        let status = status_document(&p, converged, observed_revision, &self.identity);
        if let Err(e) = self.store.put_status(&cluster, &status).await {
            tracing::error!(cluster = %cluster, error = %e, "status write failed");
        }
        let live = p.observed.live_brokers.known().map(|l| l.len() as i64).unwrap_or(-1);
        self.metrics.live_brokers.get_or_create(&crate::metrics::ClusterLabels { cluster: cluster.clone() }).set(live);
        self.metrics.converged.get_or_create(&crate::metrics::ClusterLabels { cluster }).set(i64::from(converged));
    }
}

/// The status a cluster shows (`fleetctl describe`): desired vs observed, and the last plan.
pub fn status_document(p: &ClusterPass, converged: bool, observed_revision: i64, identity: &str) -> serde_json::Value {
    let failures: Vec<&StepResult> = p.results.iter().filter(|r| !r.ok).collect();
    let phase = if p.desired.deleting {
        "Deleting"
    } else if converged {
        "Converged"
    } else if !failures.is_empty() {
        "Degraded"
    } else {
        "Progressing"
    };
    let hosts = p.observed.hosts.known().map(|h| h.iter().filter(|h| h.state.is_alive()).cloned().collect::<Vec<_>>());
    serde_json::json!({
        "phase": phase,
        "converged": converged,
        "observedRevision": observed_revision,
        "desiredRevision": p.desired.revision,
        "atMs": p.observed.at_ms,
        "reconciledBy": identity,
        "brokers": {
            "desired": p.desired.spec.brokers,
            "live": p.observed.live_brokers,
            "registry": p.observed.registry,
        },
        "hosts": hosts,
        "topics": p.observed.topics,
        "dns": p.observed.dns,
        "plan": p.plan,
        "lastSteps": p.results,
    })
}

/// Kafka's admin client for one cluster pass, created lazily.
type Admin = tokio::sync::OnceCell<AdminClient<DefaultClientContext>>;

async fn kafka_step(admin: &AdminClient<DefaultClientContext>, step: &Step, timeout: Duration) -> Result<String, StepError> {
    let options = AdminOptions::new().operation_timeout(Some(timeout.min(Duration::from_secs(30))));
    let kafka_err = |e: rdkafka::error::KafkaError| StepError::Retryable(e.to_string());
    match step {
        Step::CreateTopic { topic, partitions, replication_factor, configs } => {
            let mut new = NewTopic::new(topic, *partitions as i32, TopicReplication::Fixed(i32::from(*replication_factor)));
            for (k, v) in configs {
                new = new.set(k, v);
            }
            let results = admin.create_topics([&new], &options).await.map_err(kafka_err)?;
            for r in results {
                match r {
                    Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                    Err((t, code)) => return Err(classify(format!("create topic {t}: {code}"), code)),
                }
            }
            Ok(format!("created {topic}"))
        }
        Step::CreatePartitions { topic, to, .. } => {
            let new = NewPartitions::new(topic, *to as usize);
            let results = admin.create_partitions([&new], &options).await.map_err(kafka_err)?;
            for r in results {
                if let Err((t, code)) = r {
                    return Err(classify(format!("create partitions of {t}: {code}"), code));
                }
            }
            Ok(format!("{topic} now has {to} partitions"))
        }
        Step::AlterTopicConfigs { topic, configs, .. } => {
            let mut alter = AlterConfig::new(ResourceSpecifier::Topic(topic));
            for (k, v) in configs {
                alter = alter.set(k, v);
            }
            let results = admin.alter_configs([&alter], &options).await.map_err(kafka_err)?;
            for r in results {
                if let Err((_, code)) = r {
                    return Err(classify(format!("alter configs of {topic}: {code}"), code));
                }
            }
            Ok(format!("configs of {topic} set"))
        }
        Step::DeleteTopic { topic } => {
            let results = admin.delete_topics(&[topic.as_str()], &options).await.map_err(kafka_err)?;
            for r in results {
                match r {
                    Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
                    Err((t, code)) => return Err(classify(format!("delete topic {t}: {code}"), code)),
                }
            }
            Ok(format!("deleted {topic}"))
        }
        _ => Err(StepError::Fatal("not a Kafka step".into())),
    }
}

fn classify(message: String, code: RDKafkaErrorCode) -> StepError {
    match code {
        RDKafkaErrorCode::InvalidConfig
        | RDKafkaErrorCode::InvalidPartitions
        | RDKafkaErrorCode::InvalidReplicationFactor
        | RDKafkaErrorCode::PolicyViolation
        | RDKafkaErrorCode::TopicAuthorizationFailed => StepError::Fatal(message),
        _ => StepError::Retryable(message),
    }
}

/// Fault injection for crash tests: `FLEET_FAILPOINT_CRASH_AFTER_STEPS=N` makes the process die
/// abruptly (SIGKILL to itself, as `kill -9` would) right after its N-th applied step, before
/// anything of that pass is recorded.
fn crash_failpoint() {
    use std::sync::atomic::AtomicUsize;
    static APPLIED: AtomicUsize = AtomicUsize::new(0);
    static LIMIT: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    let limit = LIMIT.get_or_init(|| std::env::var("FLEET_FAILPOINT_CRASH_AFTER_STEPS").ok().and_then(|v| v.parse().ok()));
    if let Some(limit) = limit {
        if APPLIED.fetch_add(1, Ordering::SeqCst) + 1 >= *limit {
            tracing::warn!(limit, "failpoint: crashing now");
            kill_self();
        }
    }
}

#[allow(unsafe_code)]
fn kill_self() {
    // SAFETY: kill(2) on our own PID; the process ends here.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
}
