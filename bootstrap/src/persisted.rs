//! Layer 4: the broker's persisted properties, kept by the fleet manager.
//!
//! `GET <fleetApi.url>/v1/clusters/<cluster>/brokers/<id>/properties` answers
//! `{"properties": {"key": "value", ...}}`. The fleet manager being down, slow or not knowing the
//! broker (404) must not stop a broker from booting: that absence is logged and the layer is empty.
//! A body that is there but wrong is an error: booting with half the operator's intent is worse.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::cluster_file::FleetApiConfig;

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
}

pub fn properties_url(api: &FleetApiConfig, cluster: &str, broker_id: i32) -> String {
    format!("{}/v1/clusters/{cluster}/brokers/{broker_id}/properties", api.url.trim_end_matches('/'))
}

/// `Ok(None)` when absent (unreachable, timed out, 404); the reason is logged here.
#[tracing::instrument(skip(api), fields(cluster, broker = broker_id))]
pub async fn fetch(
    api: &FleetApiConfig,
    cluster: &str,
    broker_id: i32,
) -> Result<Option<BTreeMap<String, String>>, PersistedError> {
    let url = properties_url(api, cluster, broker_id);
    let client = match reqwest::Client::builder().timeout(api.timeout).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "no HTTP client; skipping persisted properties");
            return Ok(None);
        }
    };
    let mut request = client.get(&url);
    if let Some(token) = &api.token {
        request = request.bearer_auth(token);
    }
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(url = %url, error = %e, "fleet manager unreachable; booting without persisted properties");
            return Ok(None);
        }
    };
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        tracing::info!(url = %url, "fleet manager has no persisted properties for this broker");
        return Ok(None);
    }
    if !status.is_success() {
        return Err(PersistedError::Status { url, status: status.as_u16() });
    }
    let bytes = match response.bytes().await {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(url = %url, error = %e, "fleet manager response cut off; booting without persisted properties");
            return Ok(None);
        }
    };
    let body: PersistedProperties =
        serde_json::from_slice(&bytes).map_err(|e| PersistedError::Body { url: url.clone(), message: e.to_string() })?;
    Ok(Some(body.properties))
}
