//! One scan of a cluster (observe -> evaluate) and the loop that keeps a verdict per cluster:
//! a full re-read every interval, an early one when a watch on `/brokers/ids` or `/controller`
//! fires, and the last verdict kept, marked stale, when ZooKeeper cannot be read.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::RwLock;
use zookeeper_client as zk;

use crate::config::ClusterTarget;
use crate::findings::{evaluate, BrokerFigures, Finding, FindingKind, Severity, Thresholds};
use crate::metrics::Metrics;
use crate::findings::QuorumObservation;
use crate::observe::{observe, observe_kraft, ObserveError};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Healthy,
    Unhealthy,
    /// Could not tell: never "healthy" without a fresh, complete scan.
    Unknown,
}

/// What `/health` serves for one cluster.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub cluster: String,
    pub status: Status,
    /// True when the findings are from an earlier scan because the latest one failed.
    pub stale: bool,
    /// When the last complete scan finished (ms since the epoch).
    pub last_complete_scan_ms: Option<u64>,
    pub last_scan_duration_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scan_error: Option<String>,
    pub findings: Vec<Finding>,
    pub brokers: BTreeMap<i32, BrokerFigures>,
    pub expected_brokers: Vec<i32>,
    pub controller: Option<i32>,
    pub partitions: u64,
    /// Round trip of the scan's first ZooKeeper read.
    pub zookeeper_latency_ms: Option<f64>,
    /// The healthcheck's ZooKeeper session as last seen (e.g. SyncConnected, Disconnected).
    pub zookeeper_session: Option<String>,
    /// KRaft: the controller quorum as its leader described it (`controller` is its leader).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quorum: Option<serde_json::Value>,
}

impl Report {
    pub fn not_scanned(cluster: &str) -> Self {
        Self {
            cluster: cluster.to_string(),
            status: Status::Unknown,
            stale: true,
            last_complete_scan_ms: None,
            last_scan_duration_ms: None,
            scan_error: Some("no scan has completed yet".into()),
            findings: Vec::new(),
            brokers: BTreeMap::new(),
            expected_brokers: Vec::new(),
            controller: None,
            partitions: 0,
            zookeeper_latency_ms: None,
            zookeeper_session: None,
            quorum: None,
        }
    }

    /// The report after a failed scan: earlier findings kept, the failure added, marked stale.
    pub fn failed(previous: Option<&Report>, cluster: &str, error: &str) -> Self {
        let mut r = previous.cloned().unwrap_or_else(|| Report::not_scanned(cluster));
        r.status = Status::Unknown;
        r.stale = true;
        r.scan_error = Some(error.to_string());
        r.findings.retain(|f| f.kind != FindingKind::ZookeeperUnreachable);
        r.findings.insert(
            0,
            Finding {
                kind: FindingKind::ZookeeperUnreachable,
                severity: Severity::Critical,
                message: format!("could not read the cluster from ZooKeeper: {error}"),
                broker: None,
                topic: None,
                partition: None,
                evidence: serde_json::json!({ "error": error }),
            },
        );
        r
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// One complete scan.
#[tracing::instrument(skip_all, fields(cluster = %target.name))]
pub async fn scan(client: &zk::Client, target: &ClusterTarget, th: &Thresholds) -> Result<Report, ObserveError> {
    let started = Instant::now();
    let obs = match (&target.bootstrap, &target.fleet) {
        (Some(bootstrap), Some(cluster)) => observe_kraft(client, cluster, bootstrap, th.voter_fetch_timeout.min(Duration::from_secs(5))).await?,
        _ => observe(client, &target.kafka, target.fleet.as_ref()).await?,
    };
    let eval = evaluate(&obs, &target.expectations, th);
    // Informational findings (partitions being moved on purpose) leave the cluster healthy.
    let status = if eval.findings.iter().all(|f| f.severity == Severity::Info) { Status::Healthy } else { Status::Unhealthy };
    Ok(Report {
        cluster: target.name.clone(),
        status,
        stale: false,
        last_complete_scan_ms: Some(now_ms()),
        last_scan_duration_ms: Some(started.elapsed().as_millis() as u64),
        scan_error: None,
        findings: eval.findings,
        brokers: eval.brokers,
        expected_brokers: eval.expected_brokers,
        controller: obs.controller,
        partitions: eval.partitions,
        zookeeper_latency_ms: Some(obs.zookeeper_latency.as_secs_f64() * 1000.0),
        zookeeper_session: Some(format!("{:?}", client.state())),
        quorum: obs.quorum.as_ref().map(quorum_json),
    })
}

/// The quorum as `/health` shows it: each replica's lag and the age of its last fetch and
/// catch-up on the leader's clock.
fn quorum_json(q: &QuorumObservation) -> serde_json::Value {
    let q = match q {
        QuorumObservation::Unanswered(e) => return serde_json::json!({ "error": e }),
        QuorumObservation::Known(q) => q,
    };
    let age = |ms: i64| q.age_ms(ms);
    let replica = |r: &fleet_common::kafka_wire::QuorumReplica| {
        serde_json::json!({
            "nodeId": r.node_id, "directoryId": r.directory_id, "logEndOffset": r.log_end_offset, "lag": q.lag(r),
            "lastFetchAgeMs": age(r.last_fetch_ms), "lastCaughtUpAgeMs": age(r.last_caught_up_ms),
        })
    };
    serde_json::json!({
        "leaderId": q.leader_id, "leaderEpoch": q.leader_epoch, "highWatermark": q.high_watermark,
        "voters": q.voters.iter().map(replica).collect::<Vec<_>>(),
        "observers": q.observers.iter().map(replica).collect::<Vec<_>>(),
    })
}

pub type Reports = Arc<RwLock<BTreeMap<String, Report>>>;

/// Keeps `reports[target.name]` current until the process ends.
pub async fn run_cluster(
    target: ClusterTarget,
    th: Thresholds,
    interval: Duration,
    zk_timeout: Duration,
    reports: Reports,
    metrics: Arc<Metrics>,
) {
    let connector = fleet_common::ZkConnector::default().with_deadline(zk_timeout).with_session_timeout(zk_timeout.max(Duration::from_secs(4)));
    let mut client: Option<zk::Client> = None;
    loop {
        let started = Instant::now();
        if client.as_ref().is_some_and(|c| c.state().is_terminated()) {
            client = None;
        }
        if client.is_none() {
            match connector.connect(&target.zookeeper).await {
                Ok(c) => client = Some(c),
                Err(e) => tracing::warn!(cluster = %target.name, error = %e, "cannot connect to zookeeper"),
            }
        }
        let outcome = match &client {
            None => Err("ZooKeeper unreachable".to_string()),
            Some(c) => match tokio::time::timeout(zk_timeout, scan(c, &target, &th)).await {
                Ok(Ok(report)) => Ok(report),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("scan took longer than {} ms", zk_timeout.as_millis())),
            },
        };
        let report = match outcome {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(cluster = %target.name, error = %e, "scan failed; keeping the last verdict, marked stale");
                let previous = reports.read().await.get(&target.name).cloned();
                let mut r = Report::failed(previous.as_ref(), &target.name, &e);
                r.zookeeper_session = Some(client.as_ref().map(|c| format!("{:?}", c.state())).unwrap_or_else(|| "NotConnected".into()));
                r
            }
        };
        metrics.record(&report, started.elapsed());
        reports.write().await.insert(target.name.clone(), report);

        // Wait for the next full scan, or earlier for a change of brokers or controller.
        let tick = tokio::time::sleep(interval);
        match &client {
            Some(c) if c.state() == zk::SessionState::SyncConnected => {
                let ids = c.get_and_watch_children(&target.kafka.broker_ids());
                let controller = c.check_and_watch_stat(&target.kafka.controller());
                let (ids, controller) = tokio::join!(ids, controller);
                let ids_changed = async {
                    match ids {
                        Ok((_, _, w)) => {
                            w.changed().await;
                        }
                        Err(_) => std::future::pending().await,
                    }
                };
                let controller_changed = async {
                    match controller {
                        Ok((_, w)) => {
                            w.changed().await;
                        }
                        Err(_) => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = tick => {}
                    _ = ids_changed => tracing::debug!(cluster = %target.name, "brokers changed"),
                    _ = controller_changed => tracing::debug!(cluster = %target.name, "controller changed"),
                }
            }
            _ => tick.await,
        }
    }
}
