//! Prometheus exposition: counts by finding, per-broker gauges, scan duration histogram.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::findings::FindingKind;
use crate::scanner::{Report, Status};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClusterLabel {
    cluster: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FindingLabel {
    cluster: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BrokerLabel {
    cluster: String,
    broker: String,
}

pub struct Metrics {
    registry: Registry,
    findings: Family<FindingLabel, Gauge>,
    healthy: Family<ClusterLabel, Gauge>,
    stale: Family<ClusterLabel, Gauge>,
    partitions: Family<ClusterLabel, Gauge>,
    controller: Family<ClusterLabel, Gauge>,
    last_scan: Family<ClusterLabel, Gauge>,
    zk_latency: Family<ClusterLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    broker_up: Family<BrokerLabel, Gauge>,
    broker_leaders: Family<BrokerLabel, Gauge>,
    broker_preferred: Family<BrokerLabel, Gauge>,
    broker_urp: Family<BrokerLabel, Gauge>,
    scan_duration: Family<ClusterLabel, Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("kafka_health");
        let findings = Family::<FindingLabel, Gauge>::default();
        registry.register("findings", "Findings of the last scan, by kind", findings.clone());
        let healthy = Family::<ClusterLabel, Gauge>::default();
        registry.register("status", "1 healthy, 0 unhealthy, -1 could not tell", healthy.clone());
        let stale = Family::<ClusterLabel, Gauge>::default();
        registry.register("stale", "1 when the verdict is from an earlier scan because the latest failed", stale.clone());
        let partitions = Family::<ClusterLabel, Gauge>::default();
        registry.register("partitions", "Partitions seen in the last complete scan", partitions.clone());
        let controller = Family::<ClusterLabel, Gauge>::default();
        registry.register("controller_broker", "Broker id of the active controller, -1 when none", controller.clone());
        let last_scan = Family::<ClusterLabel, Gauge>::default();
        registry.register("last_complete_scan_timestamp_seconds", "When the last complete scan finished", last_scan.clone());
        let zk_latency = Family::<ClusterLabel, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register("zookeeper_latency_seconds", "Round trip of the last complete scan's first ZooKeeper read", zk_latency.clone());
        let broker_up = Family::<BrokerLabel, Gauge>::default();
        registry.register("broker_up", "1 when the broker is registered in /brokers/ids", broker_up.clone());
        let broker_leaders = Family::<BrokerLabel, Gauge>::default();
        registry.register("broker_leader_partitions", "Partitions the broker leads", broker_leaders.clone());
        let broker_preferred = Family::<BrokerLabel, Gauge>::default();
        registry.register("broker_preferred_partitions", "Partitions the broker is preferred leader for", broker_preferred.clone());
        let broker_urp = Family::<BrokerLabel, Gauge>::default();
        registry.register(
            "broker_out_of_sync_partitions",
            "Partitions where this broker is an assigned replica missing from the ISR",
            broker_urp.clone(),
        );
        let scan_duration =
            Family::<ClusterLabel, Histogram>::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 2.0, 16)));
        registry.register("scan_duration_seconds", "Time of one scan, failed ones included", scan_duration.clone());
        Self {
            registry,
            findings,
            healthy,
            stale,
            partitions,
            controller,
            last_scan,
            zk_latency,
            broker_up,
            broker_leaders,
            broker_preferred,
            broker_urp,
            scan_duration,
        }
    }

    pub fn record(&self, report: &Report, took: Duration) {
        let cluster = ClusterLabel { cluster: report.cluster.clone() };
        self.scan_duration.get_or_create(&cluster).observe(took.as_secs_f64());
        self.healthy.get_or_create(&cluster).set(match report.status {
            Status::Healthy => 1,
            Status::Unhealthy => 0,
            Status::Unknown => -1,
        });
        self.stale.get_or_create(&cluster).set(i64::from(report.stale));
        for kind in FindingKind::ALL {
            let n = report.findings.iter().filter(|f| f.kind == kind).count();
            self.findings.get_or_create(&FindingLabel { cluster: report.cluster.clone(), kind: kind.as_str().into() }).set(n as i64);
        }
        if report.stale {
            // Keep the last complete scan's figures; the stale and status gauges say why.
            return;
        }
        self.partitions.get_or_create(&cluster).set(report.partitions as i64);
        if let Some(ms) = report.zookeeper_latency_ms {
            self.zk_latency.get_or_create(&cluster).set(ms / 1000.0);
        }
        self.controller.get_or_create(&cluster).set(report.controller.map(i64::from).unwrap_or(-1));
        self.last_scan.get_or_create(&cluster).set(report.last_complete_scan_ms.map(|ms| (ms / 1000) as i64).unwrap_or(0));
        for (id, f) in &report.brokers {
            let label = BrokerLabel { cluster: report.cluster.clone(), broker: id.to_string() };
            self.broker_up.get_or_create(&label).set(i64::from(f.up));
            self.broker_leaders.get_or_create(&label).set(f.leader_partitions as i64);
            self.broker_preferred.get_or_create(&label).set(f.preferred_partitions as i64);
            self.broker_urp.get_or_create(&label).set(f.under_replicated_partitions as i64);
        }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        out
    }
}
