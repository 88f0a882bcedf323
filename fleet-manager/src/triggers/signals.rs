//! Reading a policy's signals: the healthcheck's verdict on the route's cluster (through the
//! fleet manager's `HealthJudge`: `kafka-healthcheck check`, or a healthcheck service with
//! `--healthcheck-url`) and the auditor's `/api/figures`. Whatever cannot be read is `Err(why)`:
//! unknown, never zero.

use std::time::Duration;

use fleet_api::route::{FailoverPolicy, Signal};

use crate::observe::health::{HealthJudge, Verdict};

/// Auditor figures older than this are stale (unknown).
pub const STALE_AFTER_MS: i64 = 30_000;

fn health_value(signal: Signal, v: &Verdict) -> f64 {
    let count = |kind: &str| f64::from(v.findings.get(kind).copied().unwrap_or(0));
    match signal {
        Signal::OfflinePartitions => count("offline_partition"),
        Signal::UnderMinIsrPartitions => count("under_min_isr_partition"),
        Signal::MissingBrokers => count("missing_broker"),
        Signal::NoController => f64::from(u8::from(count("no_controller") > 0.0)),
        _ => f64::from(u8::from(!v.healthy)),
    }
}

/// The auditor's value of `signal` for `cluster`, from its `/api/figures` answer.
pub fn auditor_value(signal: Signal, cluster: &str, figures: &serde_json::Value, now_ms: i64) -> Result<f64, String> {
    let entry = figures
        .as_array()
        .and_then(|all| all.iter().find(|f| f["cluster"] == cluster))
        .ok_or_else(|| format!("the auditor does not audit cluster {cluster}"))?;
    let updated = entry["updated_ms"].as_i64().unwrap_or(0);
    if now_ms - updated > STALE_AFTER_MS {
        return Err(format!("the auditor's figures for {cluster} are {}s old", (now_ms - updated) / 1000));
    }
    let brokers = entry["brokers"].as_array().filter(|b| !b.is_empty()).ok_or_else(|| format!("the auditor has no broker figures for {cluster} yet"))?;
    let field = |name: &'static str| brokers.iter().filter_map(move |b| b[name].as_f64());
    Ok(match signal {
        Signal::ProduceAvailability => field("produce_availability").fold(1.0, f64::min),
        Signal::ConsumeAvailability => field("consume_availability").fold(1.0, f64::min),
        Signal::LostRecords => field("records_lost").sum(),
        _ => field("latency_ms_p99").fold(0.0, f64::max),
    })
}

/// What one trigger pass read, shared by every route that needs it: one verdict per cluster and
/// one figures answer per auditor, whatever the number of routes.
#[derive(Debug, Default)]
pub struct Readings {
    pub verdicts: std::collections::BTreeMap<String, Result<Verdict, String>>,
    pub figures: std::collections::BTreeMap<String, Result<serde_json::Value, String>>,
}

/// Whether a policy needs the healthcheck's verdict on its route's cluster.
pub fn needs_health(policy: &FailoverPolicy) -> bool {
    policy.conditions.iter().any(|c| !c.signal.from_auditor())
}

/// The auditor a policy reads, when it reads one.
pub fn auditor_of(policy: &FailoverPolicy) -> Option<&str> {
    policy.conditions.iter().any(|c| c.signal.from_auditor()).then_some(policy.auditor.as_deref()).flatten()
}

/// Reads each cluster's verdict and each auditor's figures once, `concurrency` at a time.
pub async fn read_all(clusters: &std::collections::BTreeSet<String>, auditors: &std::collections::BTreeSet<String>, health: &dyn HealthJudge, http: &reqwest::Client, concurrency: usize) -> Readings {
    use futures::StreamExt;
    let verdicts = futures::stream::iter(clusters.iter().cloned())
        .map(|c| async move {
            let v = health.judge(&c).await.map_err(|e| format!("healthcheck: {e}"));
            (c, v)
        })
        .buffer_unordered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect();
    let figures = futures::stream::iter(auditors.iter().cloned())
        .map(|url| async move {
            let f = fetch_figures(http, &url).await;
            (url, f)
        })
        .buffer_unordered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect();
    Readings { verdicts, figures }
}

/// One reading per condition of the policy, from what the pass read.
pub fn readings_for(policy: &FailoverPolicy, cluster: &str, read: &Readings, now_ms: i64) -> Vec<Result<f64, String>> {
    let verdict = needs_health(policy).then(|| read.verdicts.get(cluster).cloned().unwrap_or_else(|| Err("not read".into())));
    let figures = match (&policy.auditor, policy.conditions.iter().any(|c| c.signal.from_auditor())) {
        (Some(url), true) => Some(read.figures.get(url).cloned().unwrap_or_else(|| Err("not read".into()))),
        (None, true) => Some(Err("no auditor address in the policy".to_string())),
        _ => None,
    };
    readings_from(policy, cluster, verdict, figures, now_ms)
}

/// One reading per condition of the policy (read now, for this policy alone).
pub async fn read(policy: &FailoverPolicy, cluster: &str, health: &dyn HealthJudge, http: &reqwest::Client, now_ms: i64) -> Vec<Result<f64, String>> {
    let verdict = if needs_health(policy) { Some(health.judge(cluster).await.map_err(|e| format!("healthcheck: {e}"))) } else { None };
    let figures = match (&policy.auditor, policy.conditions.iter().any(|c| c.signal.from_auditor())) {
        (Some(url), true) => Some(fetch_figures(http, url).await),
        (None, true) => Some(Err("no auditor address in the policy".to_string())),
        _ => None,
    };
    readings_from(policy, cluster, verdict, figures, now_ms)
}

fn readings_from(policy: &FailoverPolicy, cluster: &str, verdict: Option<Result<Verdict, String>>, figures: Option<Result<serde_json::Value, String>>, now_ms: i64) -> Vec<Result<f64, String>> {
    policy
        .conditions
        .iter()
        .map(|c| {
            if c.signal.from_auditor() {
                match &figures {
                    Some(Ok(f)) => auditor_value(c.signal, cluster, f, now_ms),
                    Some(Err(e)) => Err(e.clone()),
                    None => Err("not read".into()),
                }
            } else {
                match &verdict {
                    Some(Ok(v)) => Ok(health_value(c.signal, v)),
                    Some(Err(e)) => Err(e.clone()),
                    None => Err("not read".into()),
                }
            }
        })
        .collect()
}

async fn fetch_figures(http: &reqwest::Client, url: &str) -> Result<serde_json::Value, String> {
    let url = format!("{}/api/figures", url.trim_end_matches('/'));
    let answer = http.get(&url).timeout(Duration::from_secs(3)).send().await.map_err(|e| format!("auditor {url}: {e}"))?;
    if !answer.status().is_success() {
        return Err(format!("auditor {url}: status {}", answer.status()));
    }
    answer.json().await.map_err(|e| format!("auditor {url}: {e}"))
}
