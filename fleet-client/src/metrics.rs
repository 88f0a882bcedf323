//! Prometheus metrics of one client instance, labelled by route (the cluster and generation are
//! gauges, so a dashboard shows when each instance moved).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;

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

/// What one cluster's links reported on, written by their delivery threads with one atomic add
/// a record; `records` and `acknowledged` are summed from these when scraped.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct ClusterReports {
    pub acknowledged: AtomicU64,
    /// Reports other than an acknowledgement (failed, purged, refused).
    pub other: AtomicU64,
    /// Of `other`: records whose report was an error but that librdkafka says were persisted
    /// (counted acknowledged in `ClientCounters`, as before: not sent twice).
    pub persisted: AtomicU64,
}

/// A producer's reports by cluster.
#[derive(Clone, Debug, Default)]
pub(crate) struct Reports(Arc<Mutex<ReportsByCluster>>);

type ReportsByCluster = Vec<(ClusterLabels, Arc<ClusterReports>)>;

impl Reports {
    pub fn cluster(&self, labels: ClusterLabels) -> Arc<ClusterReports> {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, r)) = all.iter().find(|(l, _)| *l == labels) {
            return r.clone();
        }
        let r = Arc::new(ClusterReports::default());
        all.push((labels, r.clone()));
        r
    }

    /// Acknowledged records on every cluster, and those persisted despite an error report.
    pub fn acknowledged(&self) -> u64 {
        let all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.iter().map(|(_, r)| r.acknowledged.load(Ordering::Acquire) + r.persisted.load(Ordering::Acquire)).sum()
    }
}

impl Collector for Reports {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let all: Vec<(ClusterLabels, u64, u64)> = {
            let all = self.0.lock().unwrap_or_else(|p| p.into_inner());
            all.iter().map(|(l, r)| (l.clone(), r.acknowledged.load(Ordering::Relaxed), r.other.load(Ordering::Relaxed))).collect()
        };
        let counter = ConstCounter::new(0u64);
        let mut records = encoder.encode_descriptor("records", RECORDS_HELP, None, counter.metric_type())?;
        for (labels, acknowledged, other) in &all {
            ConstCounter::new(acknowledged + other).encode(records.encode_family(labels)?)?;
        }
        let mut acked = encoder.encode_descriptor("acknowledged", ACKNOWLEDGED_HELP, None, counter.metric_type())?;
        for (labels, acknowledged, _) in &all {
            ConstCounter::new(*acknowledged).encode(acked.encode_family(labels)?)?;
        }
        Ok(())
    }
}

// Ending in a period as `Registry::register` writes help text (a collector's is written as given).
const RECORDS_HELP: &str = "Records sent and reported on by the cluster (producers) or consumed (consumers), by cluster.";
const ACKNOWLEDGED_HELP: &str = "Records a cluster acknowledged.";

/// The instance's figures; [`ClientMetrics::encode`] gives the OpenMetrics text.
pub struct ClientMetrics {
    registry: Registry,
    pub(crate) labels: RouteLabels,
    /// Consumers' records by cluster (a producer's come from `reports`).
    pub(crate) records: Family<ClusterLabels, Counter>,
    pub(crate) reports: Reports,
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
            reports: Reports::default(),
            failed: Family::default(),
            dropped: Family::default(),
            possible_duplicates: Family::default(),
            buffered: Family::default(),
            generation: Family::default(),
            switches: Family::default(),
            registry: Registry::default(),
        };
        if role == "producer" {
            registry.register_collector(Box::new(m.reports.clone()));
        } else {
            registry.register("records", RECORDS_HELP.trim_end_matches('.'), m.records.clone());
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_producer_exports_its_reports_by_cluster() {
        let m = ClientMetrics::new("orders", "producer");
        let blue = m.reports.cluster(m.cluster("blue"));
        blue.acknowledged.fetch_add(3, Ordering::Relaxed);
        blue.other.fetch_add(2, Ordering::Relaxed);
        blue.persisted.fetch_add(1, Ordering::Relaxed);
        // The same cluster's counts, not a second set.
        m.reports.cluster(m.cluster("blue")).acknowledged.fetch_add(1, Ordering::Relaxed);
        m.reports.cluster(m.cluster("green")).acknowledged.fetch_add(10, Ordering::Relaxed);
        let text = m.encode();
        assert!(text.contains(r#"fleet_client_records_total{route="orders",role="producer",cluster="blue"} 6"#), "{text}");
        assert!(text.contains(r#"fleet_client_acknowledged_total{route="orders",role="producer",cluster="blue"} 4"#), "{text}");
        assert!(text.contains(r#"fleet_client_acknowledged_total{route="orders",role="producer",cluster="green"} 10"#), "{text}");
        assert_eq!(text.matches("# TYPE fleet_client_records counter").count(), 1, "{text}");
        // Persisted despite an error report counts as acknowledged for the caller.
        assert_eq!(m.reports.acknowledged(), 15);
    }

    #[test]
    fn a_consumer_exports_records_it_consumed() {
        let m = ClientMetrics::new("orders", "consumer");
        m.records.get_or_create(&m.cluster("blue")).inc_by(7);
        let text = m.encode();
        assert!(text.contains(r#"fleet_client_records_total{route="orders",role="consumer",cluster="blue"} 7"#), "{text}");
        assert!(!text.contains("fleet_client_acknowledged"), "{text}");
    }
}
