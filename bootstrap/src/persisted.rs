//! Layer 4: the broker's persisted properties, kept by the fleet manager.
//!
//! `GET <fleetApi.url>/v1/clusters/<cluster>/brokers/<id>/properties` answers
//! `{"properties": {"key": "value", ...}}`. A 404 is the fleet manager's word that there are none.
//! Its being down or slow is waited out with a deadline under `fleetApi.properties: required` (the
//! default): a broker never starts silently without its declared configuration; under `optional`
//! the absence is logged and the layer is empty. A body that is there but wrong is an error:
//! booting with half the operator's intent is worse.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::cluster_file::{FleetApiConfig, PropertiesPolicy};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersistedProperties {
    pub properties: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PersistedError {
    #[error("fleet manager at {url} answered {status}: the persisted properties could not be read")]
    Status { url: String, status: u16 },
    #[error("fleet manager at {url} sent a body that is not {{\"properties\": {{key: string}}}}: {message}")]
    Body { url: String, message: String },
    #[error("fleet manager at {url} did not answer within {waited_secs} s (last: {last}); not starting Kafka without its declared configuration (fleetApi.properties: required). Start the fleet manager, or set fleetApi.properties: optional to boot without it")]
    Unavailable { url: String, waited_secs: u64, last: String },
    #[error("cannot make an HTTP client for the fleet manager: {0}")]
    Client(String),
}

pub fn properties_url(api: &FleetApiConfig, cluster: &str, broker_id: i32) -> String {
    format!("{}/v1/clusters/{cluster}/brokers/{broker_id}/properties", api.url.trim_end_matches('/'))
}

/// One request's outcome.
enum Attempt {
    Got(BTreeMap<String, String>),
    /// 404: the fleet manager knows of no properties for this broker (an answer, not an outage).
    NotDeclared,
    /// Unreachable, timed out, cut off or a 5xx: worth asking again.
    Unavailable(String),
}

async fn attempt(client: &reqwest::Client, api: &FleetApiConfig, url: &str) -> Result<Attempt, PersistedError> {
    let mut request = client.get(url);
    if let Some(token) = &api.token {
        request = request.bearer_auth(token);
    }
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => return Ok(Attempt::Unavailable(format!("unreachable: {e}"))),
    };
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Ok(Attempt::NotDeclared);
    }
    if status.is_server_error() {
        return Ok(Attempt::Unavailable(format!("answered {status}")));
    }
    if !status.is_success() {
        return Err(PersistedError::Status { url: url.to_string(), status: status.as_u16() });
    }
    let bytes = match response.bytes().await {
        Ok(b) => b,
        Err(e) => return Ok(Attempt::Unavailable(format!("response cut off: {e}"))),
    };
    let body: PersistedProperties =
        serde_json::from_slice(&bytes).map_err(|e| PersistedError::Body { url: url.to_string(), message: e.to_string() })?;
    Ok(Attempt::Got(body.properties))
}

/// The persisted layer, per `fleetApi.properties`: `Required` asks until the fleet manager
/// answers or `fleetApi.waitMs` has passed, and then fails the boot (Kafka never starts without
/// its declared configuration); `Optional` asks once and boots without the layer on failure.
/// `Ok(None)`: the fleet manager has none for this broker, or (optional only) did not answer.
#[tracing::instrument(skip(api), fields(cluster, broker = broker_id))]
pub async fn fetch(
    api: &FleetApiConfig,
    cluster: &str,
    broker_id: i32,
) -> Result<Option<BTreeMap<String, String>>, PersistedError> {
    let url = properties_url(api, cluster, broker_id);
    let mut builder = reqwest::Client::builder().timeout(api.timeout);
    if let Some(pem) = &api.ca_pem {
        for cert in reqwest::Certificate::from_pem_bundle(pem).map_err(|e| PersistedError::Client(format!("fleetApi.caFile: {e}")))? {
            builder = builder.add_root_certificate(cert);
        }
    }
    let client = builder.build().map_err(|e| PersistedError::Client(e.to_string()))?;
    let started = std::time::Instant::now();
    let mut delay = std::time::Duration::from_millis(500);
    loop {
        match attempt(&client, api, &url).await? {
            Attempt::Got(properties) => return Ok(Some(properties)),
            Attempt::NotDeclared => {
                tracing::info!(url = %url, "fleet manager has no persisted properties for this broker");
                return Ok(None);
            }
            Attempt::Unavailable(reason) => match api.properties {
                PropertiesPolicy::Optional => {
                    tracing::warn!(url = %url, %reason, "fleet manager unreachable; booting without persisted properties (fleetApi.properties: optional)");
                    return Ok(None);
                }
                PropertiesPolicy::Required => {
                    let waited = started.elapsed();
                    let remaining = api.wait.saturating_sub(waited);
                    if remaining.is_zero() {
                        return Err(PersistedError::Unavailable { url, waited_secs: waited.as_secs(), last: reason });
                    }
                    let pause = delay.min(remaining);
                    tracing::warn!(url = %url, %reason, retry_in_ms = pause.as_millis() as u64, "fleet manager unreachable; Kafka waits for its persisted properties (fleetApi.properties: required)");
                    tokio::time::sleep(pause).await;
                    delay = (delay * 2).min(std::time::Duration::from_secs(10));
                }
            },
        }
    }
}
