//! Prometheus metrics of one client instance, labelled by route (the cluster and generation are
//! gauges, so a dashboard shows when each instance moved).

use std::sync::atomic::{AtomicI64, AtomicU64};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RouteLabels {
    pub route: String,
    pub role: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ClusterLabels {
    pub route: String,
    pub role: String,
    pub cluster: String,
}

/// The instance's figures; [`ClientMetrics::encode`] gives the OpenMetrics text.
pub struct ClientMetrics {
    registry: Registry,
    pub(crate) labels: RouteLabels,
    pub(crate) records: Family<ClusterLabels, Counter>,
    pub(crate) acknowledged: Family<ClusterLabels, Counter>,
    pub(crate) failed: Family<RouteLabels, Counter>,
    pub(crate) dropped: Family<RouteLabels, Counter>,
    pub(crate) possible_duplicates: Family<RouteLabels, Counter>,
    pub(crate) buffered: Family<RouteLabels, Gauge<i64, AtomicI64>>,
    pub(crate) generation: Family<RouteLabels, Gauge<i64, AtomicI64>>,
    pub(crate) switches: Family<RouteLabels, Counter<u64, AtomicU64>>,
}

impl ClientMetrics {
    pub(crate) fn new(route: &str, role: &str) -> Self {
        let mut registry = Registry::with_prefix("fleet_client");
        let m = Self {
            labels: RouteLabels { route: route.into(), role: role.into() },
            records: Family::default(),
            acknowledged: Family::default(),
            failed: Family::default(),
            dropped: Family::default(),
            possible_duplicates: Family::default(),
            buffered: Family::default(),
            generation: Family::default(),
            switches: Family::default(),
            registry: Registry::default(),
        };
        registry.register("records", "Records sent and reported on by the cluster (producers) or consumed (consumers), by cluster", m.records.clone());
        registry.register("acknowledged", "Records a cluster acknowledged", m.acknowledged.clone());
        registry.register("failed", "Records that failed for good", m.failed.clone());
        registry.register("dropped", "Records refused because the buffer was full", m.dropped.clone());
        registry.register("possible_duplicates", "Records re-sent after a switch whose first copy's fate was unknown", m.possible_duplicates.clone());
        registry.register("buffered", "Records accepted and not yet acknowledged or failed", m.buffered.clone());
        registry.register("binding_generation", "The route binding generation in use", m.generation.clone());
        registry.register("switches", "Cluster switches", m.switches.clone());
        Self { registry, ..m }
    }

    pub(crate) fn cluster(&self, cluster: &str) -> ClusterLabels {
        ClusterLabels { route: self.labels.route.clone(), role: self.labels.role.clone(), cluster: cluster.into() }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
