//! The fleet manager's Prometheus metrics.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabels {
    pub step: String,
    pub ok: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterLabels {
    pub cluster: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub call: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub kind: String,
    pub phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    /// The route template that matched (`/v1/clusters/{name}`), or `unmatched`.
    pub route: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConditionLabels {
    pub route: String,
    pub condition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub route: String,
    pub decision: String,
}

pub struct Metrics {
    registry: Registry,
    /// Each failover condition: 1 holding, 0 not, -1 its signal unknown.
    pub trigger_conditions: Family<ConditionLabels, Gauge>,
    /// Trigger decisions: failover, fallback, recommend, suppressed.
    pub trigger_decisions: Family<DecisionLabels, Counter>,
    pub leader: Gauge,
    pub pass_seconds: Histogram,
    pub steps: Family<StepLabels, Counter>,
    pub live_brokers: Family<ClusterLabels, Gauge>,
    pub converged: Family<ClusterLabels, Gauge>,
    pub http_requests: Family<HttpLabels, Counter>,
    /// Reconciles of one cluster (the unit of scheduling), by cluster.
    pub reconciles: Family<ClusterLabels, Counter>,
    pub zookeeper_reads: Counter,
    pub provider_calls: Family<CallLabels, Counter>,
    /// Store writes refused because a newer leader has taken over (this instance was deposed).
    pub fenced_writes: Counter,
    /// Reconciles that ended in a panic (caught; the cluster backs off, the others go on).
    pub reconcile_panics: Counter,
    /// Operations entering a phase (a dashboard sees scale-ups start, succeed and fail).
    pub operation_phases: Family<PhaseLabels, Counter>,
    /// The last scale-up commit's ZooKeeper write, and the time until its new partitions were led.
    pub scale_up_commit_seconds: Histogram,
    pub scale_up_leaders_seconds: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("fleet_manager");
        let leader = Gauge::default();
        registry.register("leader", "1 while this instance is the reconciling leader", leader.clone());
        let pass_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register("reconcile_pass_seconds", "Duration of one cluster's reconcile (observe, plan, apply, record)", pass_seconds.clone());
        let steps = Family::<StepLabels, Counter>::default();
        registry.register("steps", "Plan steps applied, by step and outcome", steps.clone());
        let live_brokers = Family::<ClusterLabels, Gauge>::default();
        registry.register("live_brokers", "Brokers in /brokers/ids at the last pass (-1: unknown)", live_brokers.clone());
        let converged = Family::<ClusterLabels, Gauge>::default();
        registry.register("cluster_converged", "1 when the cluster matched its spec at the last pass", converged.clone());
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests served, by method and status", http_requests.clone());
        let reconciles = Family::<ClusterLabels, Counter>::default();
        registry.register("reconciles", "Reconciles of one cluster, by cluster", reconciles.clone());
        let zookeeper_reads = Counter::default();
        registry.register("zookeeper_reads", "ZooKeeper read requests made to observe clusters", zookeeper_reads.clone());
        let provider_calls = Family::<CallLabels, Counter>::default();
        registry.register("provider_calls", "Host provider and DNS calls, by call", provider_calls.clone());
        let fenced_writes = Counter::default();
        registry.register("fenced_writes", "Store writes refused because a newer leader took over", fenced_writes.clone());
        let reconcile_panics = Counter::default();
        registry.register("reconcile_panics", "Cluster reconciles that panicked (caught)", reconcile_panics.clone());
        let operation_phases = Family::<PhaseLabels, Counter>::default();
        registry.register("operation_phases", "Operations entering a phase, by kind and phase", operation_phases.clone());
        let scale_up_commit_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register("scale_up_commit_seconds", "A scale-up's ZooKeeper commit", scale_up_commit_seconds.clone());
        let scale_up_leaders_seconds = Histogram::new(exponential_buckets(0.01, 2.0, 16));
        registry.register("scale_up_leaders_seconds", "From a scale-up's commit until every new partition had a leader", scale_up_leaders_seconds.clone());
        let trigger_conditions = Family::<ConditionLabels, Gauge>::default();
        registry.register("trigger_condition", "A route's failover condition: 1 holding, 0 not, -1 signal unknown", trigger_conditions.clone());
        let trigger_decisions = Family::<DecisionLabels, Counter>::default();
        registry.register("trigger_decisions", "Automatic failover decisions by route: failover, fallback, recommend, suppressed", trigger_decisions.clone());
        Self {
            registry,
            trigger_conditions,
            trigger_decisions,
            leader,
            pass_seconds,
            steps,
            live_brokers,
            converged,
            http_requests,
            reconciles,
            zookeeper_reads,
            provider_calls,
            fenced_writes,
            reconcile_panics,
            operation_phases,
            scale_up_commit_seconds,
            scale_up_leaders_seconds,
        }
    }
}

impl Metrics {
    pub fn provider_call(&self, call: &str) {
        self.provider_calls.get_or_create(&CallLabels { call: call.to_string() }).inc();
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        out
    }
}
