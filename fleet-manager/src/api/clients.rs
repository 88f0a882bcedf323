//! What producers and consumers use: a route's binding (long-poll watch included) and client
//! reports. Served by every instance, standbys included: bindings come from the store and the
//! cluster's broker registrations, both readable without leadership.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::{preview_client, ApiError, ApiResult, Shared};
use crate::spec::{self, DeclaredSpec, FieldError, Kind};
use crate::store::StoredResource;
use fleet_api::client::{acks_for, ClientReport, ClientView, RouteBinding, RoutePhase, TopicBinding};

/// The longest a watch may wait: below common proxy and load-balancer idle timeouts.
pub const MAX_WAIT_MS: u64 = 60_000;
/// A client that stops reporting is listed this long after its last report.
pub const REPORT_TTL_MS: i64 = 30_000;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct BindingQuery {
    /// The generation the caller has: the answer waits until it differs (or `waitMs` passes).
    #[serde(default)]
    after: Option<i64>,
    #[serde(default)]
    wait_ms: Option<u64>,
}

fn bad_query(e: QueryRejection) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad-request", e.body_text())
}

fn check_route_name(name: &str) -> Result<(), ApiError> {
    fleet_common::paths::validate_cluster_name(name).map_err(|m| ApiError::field(FieldError::new("name", m.replace("cluster name", "route name"))))
}

/// A route's binding. With `after`, a long poll: answers as soon as the route's generation differs
/// from `after`, or with the unchanged binding once `waitMs` has passed.
#[utoipa::path(get, path = "/v1/routes/{name}/binding",
    params(("name" = String, Path, pattern = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"),
        ("after" = Option<i64>, Query, description = "the generation the caller has: wait until it changes"),
        ("waitMs" = Option<u64>, Query, maximum = 60000, description = "how long to wait for a change (default 0)")),
    responses((status = 200, body = RouteBinding), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody),
        (status = 404, body = super::ErrorBody), (status = 422, body = super::ErrorBody),
        (status = 503, body = super::ErrorBody, description = "the cluster's brokers cannot be read and none were seen before")),
    security(("bearer" = [])))]
pub(super) async fn binding(State(state): State<Shared>, Path(name): Path<String>, query: Result<Query<BindingQuery>, QueryRejection>) -> ApiResult<RouteBinding> {
    let Query(query) = query.map_err(bad_query)?;
    check_route_name(&name)?;
    let wait = query.wait_ms.unwrap_or(0);
    if wait > MAX_WAIT_MS {
        return Err(ApiError::field(FieldError::new("waitMs", format!("{wait} is above {MAX_WAIT_MS}: wait at most a minute and ask again"))));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_millis(wait);
    let mut revisions = state.revisions.clone();
    loop {
        revisions.borrow_and_update();
        let route = state.store.get(Kind::Route, &name).await?;
        if query.after != Some(route.revision) || tokio::time::Instant::now() >= deadline {
            return Ok(Json(bind(&state, &route).await?));
        }
        tokio::select! {
            changed = revisions.changed() => if changed.is_err() { tokio::time::sleep_until(deadline).await },
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

async fn bind(state: &Shared, route: &StoredResource) -> Result<RouteBinding, ApiError> {
    let DeclaredSpec::Route(r) = &route.declared.spec else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not-found", "not a route"));
    };
    let resources = state.store.list(None, Some(&r.cluster)).await?;
    let cluster = resources.iter().find_map(|c| match &c.declared.spec {
        DeclaredSpec::KafkaCluster(s) if c.declared.name == r.cluster => Some(spec::effective_cluster(&r.cluster, s)),
        _ => None,
    });
    let mut topics = BTreeMap::new();
    for t in &resources {
        if let DeclaredSpec::Topic(d) = &t.declared.spec {
            if t.declared.name == fleet_api::route::CANARY_TOPIC {
                continue;
            }
            if let Ok(t) = spec::effective_topic(&t.declared.name, d, cluster.as_ref()) {
                topics.insert(t.name.clone(), TopicBinding { priority_class: t.priority_class, acks: acks_for(t.priority_class).into(), keyed: t.keyed });
            }
        }
    }
    let bootstrap_servers = servers(state, &r.cluster).await?;
    Ok(RouteBinding {
        route: route.declared.name.clone(),
        cluster: r.cluster.clone(),
        bootstrap_servers,
        generation: route.revision,
        phase: RoutePhase::Steady,
        topics,
    })
}

/// The cluster's live brokers from ZooKeeper, or the last ones read when it cannot be reached.
async fn servers(state: &Shared, cluster: &str) -> Result<Vec<String>, ApiError> {
    let read = match preview_client(state).await {
        Some(zk) => crate::observe::bootstrap_servers(&zk, &state.reconciler.paths.cluster(cluster)).await,
        None => Err("ZooKeeper unreachable".to_string()),
    };
    let mut cache = state.servers.lock().unwrap_or_else(|p| p.into_inner());
    match read {
        Ok(list) if !list.is_empty() => {
            cache.insert(cluster.to_string(), list.clone());
            Ok(list)
        }
        outcome => {
            let why = match outcome {
                Err(e) => e,
                Ok(_) => "no broker is registered".into(),
            };
            match cache.get(cluster) {
                Some(last) => {
                    tracing::warn!(cluster, error = %why, "serving the last bootstrap servers seen");
                    Ok(last.clone())
                }
                None => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", format!("cluster `{cluster}`: its brokers cannot be listed ({why}); try again"))),
            }
        }
    }
}

/// Stores a client instance's report; it is listed for 30 seconds unless renewed.
#[utoipa::path(post, path = "/v1/clients/reports", request_body(content = ClientReport),
    responses((status = 200, body = ClientView), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody),
        (status = 403, body = super::ErrorBody), (status = 422, body = super::ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn report(State(state): State<Shared>, body: Result<Bytes, BytesRejection>) -> ApiResult<ClientView> {
    let report: ClientReport = super::parse_json(body)?;
    report.check().map_err(|(field, message)| ApiError::field(FieldError::new(field, message)))?;
    Ok(Json(state.store.put_client_report(&report, REPORT_TTL_MS).await?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    #[serde(default)]
    route: Option<String>,
}

/// Client instances that reported in the last 30 seconds.
#[utoipa::path(get, path = "/v1/clients", params(("route" = Option<String>, Query, pattern = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")),
    responses((status = 200, body = [ClientView]), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody),
        (status = 403, body = super::ErrorBody), (status = 422, body = super::ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn list(State(state): State<Shared>, query: Result<Query<ListQuery>, QueryRejection>) -> ApiResult<Vec<ClientView>> {
    let Query(query) = query.map_err(bad_query)?;
    if let Some(r) = &query.route {
        check_route_name(r)?;
    }
    Ok(Json(state.store.client_reports(query.route.as_deref()).await?))
}
