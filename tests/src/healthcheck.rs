//! `kafka-healthcheck serve` as a process, with its HTTP answers.

use std::process::Command;
use std::time::Duration;

use crate::process::ManagedProcess;
use crate::{free_port, wait_until, workspace_bin, RunDir};

pub struct HealthcheckServer {
    pub port: u16,
    pub process: ManagedProcess,
    pub run: RunDir,
}

impl HealthcheckServer {
    /// Starts with `config` (YAML, without `listen`: the port is chosen here); waits for HTTP.
    pub async fn start(config: &str) -> Self {
        Self::start_on(config, free_port()).await
    }

    /// As [`Self::start`], on a given port (a restarted service clients already point at).
    pub async fn start_on(config: &str, port: u16) -> Self {
        let run = RunDir::new("healthcheck");
        let path = run.path.join("healthcheck.yaml");
        std::fs::write(&path, format!("listen: 127.0.0.1:{port}\n{config}")).expect("config");
        let mut cmd = Command::new(workspace_bin("kafka-healthcheck"));
        cmd.arg("serve").arg("--config").arg(&path).env("FLEET_LOG", "info,kafka_healthcheck=debug");
        let process = ManagedProcess::spawn("healthcheck", cmd, &run.path.join("healthcheck.log")).expect("spawn healthcheck");
        let server = Self { port, process, run };
        let url = server.url("/metrics");
        wait_until("healthcheck to serve HTTP", Duration::from_secs(30), || {
            let url = url.clone();
            async move { Ok(reqwest::get(&url).await.ok().filter(|r| r.status().is_success()).map(|_| ())) }
        })
        .await;
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `(HTTP status, JSON body)` of `GET path`.
    pub async fn get_json(&self, path: &str) -> Result<(u16, serde_json::Value), String> {
        let r = reqwest::get(self.url(path)).await.map_err(|e| e.to_string())?;
        let status = r.status().as_u16();
        let body = r.json().await.map_err(|e| e.to_string())?;
        Ok((status, body))
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(self.url("/metrics")).await.expect("metrics").text().await.expect("metrics text")
    }
}

/// The value of one sample in a Prometheus exposition, e.g.
/// `kafka_health_findings{cluster="c",kind="missing_broker"}`.
pub fn sample(exposition: &str, name_and_labels: &str) -> Option<f64> {
    exposition.lines().find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
}
