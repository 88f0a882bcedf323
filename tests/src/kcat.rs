//! `kcat`, the independent client the tests check the project's claims with.
//! Messages go to partition 0 explicitly: unkeyed messages would otherwise land on a random one.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::wait_until;

/// Produces one message to partition 0 (acks=all), retrying until the topic exists and accepts it.
pub async fn produce(bootstrap: &str, topic: &str, message: &str) {
    wait_until(&format!("kcat to produce to {topic}"), Duration::from_secs(60), || async move {
        let mut child = tokio::process::Command::new("kcat")
            .kill_on_drop(true)
            .args(["-P", "-b", bootstrap, "-t", topic, "-p", "0", "-X", "acks=all", "-X", "message.timeout.ms=10000"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run kcat (run `make deps`): {e}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(format!("{message}\n").as_bytes()).await.map_err(|e| e.to_string())?;
        }
        let out = child.wait_with_output().await.map_err(|e| e.to_string())?;
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.success() && !err.contains("ERROR") {
            Ok(Some(()))
        } else {
            Err(format!("kcat produce: {err}"))
        }
    })
    .await
}

/// Consumes the first message of partition 0 of `topic` from the beginning.
pub async fn consume_one(bootstrap: &str, topic: &str) -> String {
    wait_until(&format!("kcat to consume from {topic}"), Duration::from_secs(60), || async move {
        let out = tokio::process::Command::new("kcat")
            .kill_on_drop(true)
            .args(["-C", "-b", bootstrap, "-t", topic, "-p", "0", "-o", "beginning", "-c", "1", "-e", "-q"])
            .output()
            .await
            .map_err(|e| format!("cannot run kcat: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !text.is_empty() {
            Ok(Some(text))
        } else {
            Err(format!("kcat consume: {}", String::from_utf8_lossy(&out.stderr)))
        }
    })
    .await
}

/// Cluster metadata as kcat sees it (`kcat -L -J`): brokers, topics, partitions and replicas.
pub async fn metadata(bootstrap: &str) -> Result<serde_json::Value, String> {
    let out = tokio::process::Command::new("kcat")
        .kill_on_drop(true)
        .args(["-L", "-J", "-b", bootstrap, "-m", "10"])
        .output()
        .await
        .map_err(|e| format!("cannot run kcat: {e}"))?;
    if !out.status.success() {
        return Err(format!("kcat -L: {}", String::from_utf8_lossy(&out.stderr)));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("kcat -L -J output: {e}"))
}

/// (partitions, smallest replica count) of `topic` per kcat, if it has the topic.
pub fn topic_shape(metadata: &serde_json::Value, topic: &str) -> Option<(usize, usize)> {
    let t = metadata["topics"].as_array()?.iter().find(|t| t["topic"] == topic)?;
    let partitions = t["partitions"].as_array()?;
    let rf = partitions.iter().filter_map(|p| p["replicas"].as_array().map(|r| r.len())).min()?;
    Some((partitions.len(), rf))
}

/// Every payload of `topic` on `servers`, read from the beginning of every partition.
pub async fn read_all(servers: &str, topic: &str) -> Vec<String> {
    let out = tokio::process::Command::new("kcat")
        .kill_on_drop(true)
        .args(["-C", "-b", servers, "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%s\n"])
        .output()
        .await
        .expect("run kcat");
    assert!(out.status.success(), "kcat -C {topic}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}
