//! The healthcheck's verdict on a cluster, for a failover's guard rails and its `Verifying`
//! phase. A seam with two implementations chosen by configuration: the `kafka-healthcheck check`
//! command run against ZooKeeper (no service needed), or a running healthcheck service's
//! `/health/{cluster}`.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

/// What the healthcheck said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub healthy: bool,
    /// The findings, one line (empty when healthy).
    pub summary: String,
    /// Findings per kind (the healthcheck's names: `offline_partition`, `missing_broker`, ...).
    pub findings: std::collections::BTreeMap<String, u32>,
}

#[async_trait]
pub trait HealthJudge: Send + Sync {
    /// `Err` when the healthcheck could not tell (never "healthy" then).
    async fn judge(&self, cluster: &str) -> Result<Verdict, String>;
}

/// The JSON both forms answer (the healthcheck's `Report`), read loosely.
#[derive(Debug, Deserialize)]
struct Report {
    status: String,
    #[serde(default)]
    findings: Vec<Finding>,
    #[serde(default)]
    scan_error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Finding {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    message: String,
}

fn verdict(text: &[u8]) -> Result<Verdict, String> {
    let report: Report = serde_json::from_slice(text).map_err(|e| format!("healthcheck answer unreadable: {e}"))?;
    let summary = report
        .findings
        .iter()
        .filter(|f| f.severity != "info")
        .map(|f| f.message.as_str())
        .chain(report.scan_error.as_deref())
        .collect::<Vec<_>>()
        .join("; ");
    let mut findings = std::collections::BTreeMap::new();
    for f in &report.findings {
        *findings.entry(f.kind.clone()).or_insert(0u32) += 1;
    }
    match report.status.as_str() {
        "healthy" => Ok(Verdict { healthy: true, summary, findings }),
        "unhealthy" => Ok(Verdict { healthy: false, summary, findings }),
        other => Err(format!("healthcheck could not tell ({other}): {summary}")),
    }
}

/// Runs `kafka-healthcheck check` (exit 0 healthy, 1 unhealthy, 2 could not tell).
pub struct HealthcheckCommand {
    pub bin: PathBuf,
    pub zookeeper: String,
    pub fleet_root: String,
    pub timeout: Duration,
}

#[async_trait]
impl HealthJudge for HealthcheckCommand {
    async fn judge(&self, cluster: &str) -> Result<Verdict, String> {
        let run = tokio::process::Command::new(&self.bin)
            .args(["check", "--zookeeper", &self.zookeeper, "--cluster", cluster, "--fleet-root", &self.fleet_root, "-o", "json"])
            .arg("--timeout-ms")
            .arg(self.timeout.as_millis().to_string())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(self.timeout + Duration::from_secs(5), run)
            .await
            .map_err(|_| format!("{} did not answer within {}s", self.bin.display(), self.timeout.as_secs() + 5))?
            .map_err(|e| format!("cannot run {}: {e}", self.bin.display()))?;
        verdict(&out.stdout).map_err(|e| format!("{e} (exit {:?}: {})", out.status.code(), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Asks a running healthcheck service (`kafka-healthcheck serve`) that watches the fleet.
pub struct HealthcheckService {
    pub url: String,
    pub http: reqwest::Client,
}

#[async_trait]
impl HealthJudge for HealthcheckService {
    async fn judge(&self, cluster: &str) -> Result<Verdict, String> {
        let url = format!("{}/health/{cluster}", self.url.trim_end_matches('/'));
        let answer = self.http.get(&url).timeout(Duration::from_secs(10)).send().await.map_err(|e| format!("{url}: {e}"))?;
        if answer.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(format!("the healthcheck at {} does not watch cluster {cluster}", self.url));
        }
        let body = answer.bytes().await.map_err(|e| format!("{url}: {e}"))?;
        verdict(&body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_healthchecks_report() {
        let healthy = br#"{"cluster":"blue","status":"healthy","findings":[]}"#;
        assert_eq!(verdict(healthy), Ok(Verdict { healthy: true, summary: String::new(), findings: Default::default() }));
        let sick = br#"{"status":"unhealthy","findings":[{"severity":"critical","kind":"broker_missing","message":"broker 2 is not registered"}]}"#;
        assert_eq!(
            verdict(sick),
            Ok(Verdict { healthy: false, summary: "broker 2 is not registered".into(), findings: [("broker_missing".to_string(), 1)].into() })
        );
        assert!(verdict(br#"{"status":"unknown","scan_error":"timeout"}"#).is_err());
        assert!(verdict(b"garbage").is_err());
    }
}
