//! Failover and fallback over HTTP: every guard rail is checked here, before anything is stored,
//! and each refusal names the field and what to do instead.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use super::{parse_json, Actor, ApiError, ApiResult, AppState, Shared};
use crate::spec::{DeclaredClusterSpec, DeclaredRouteSpec, DeclaredSpec, FieldError, Kind, MAX_BROKERS};
use crate::store::StoreError;
use fleet_api::operation::{BuildSpec, FailoverRequest, FailoverSpec, FallbackRequest, OperationResponse, OperationSpec, SwitchRequest};
use fleet_api::route::{RouteState, RouteStatus};

/// Producers get this long to move, then consumers to drain, unless told otherwise.
pub const DEFAULT_DEADLINE_SECS: i64 = 60;

fn refuse(status: StatusCode, field: &str, message: String) -> ApiError {
    let code = match status {
        StatusCode::NOT_FOUND => "not-found",
        StatusCode::CONFLICT => "conflict",
        _ => "invalid",
    };
    let mut e = ApiError::new(status, code, format!("{field}: {message}"));
    e.body.field = Some(field.into());
    e
}

/// The route, its spec and its status (a route never moved is `Normal` on its declared cluster).
async fn route(state: &AppState, name: &str) -> Result<(DeclaredRouteSpec, RouteStatus), ApiError> {
    fleet_common::paths::validate_cluster_name(name).map_err(|m| ApiError::field(FieldError::new("route", m.replace("cluster name", "route name"))))?;
    let r = match state.store.get(Kind::Route, name).await {
        Ok(r) => r,
        Err(StoreError::NotFound { .. }) => return Err(refuse(StatusCode::NOT_FOUND, "route", format!("`{name}` is not declared (fleetctl get routes lists them)"))),
        Err(e) => return Err(e.into()),
    };
    let DeclaredSpec::Route(spec) = r.declared.spec else { return Err(refuse(StatusCode::NOT_FOUND, "route", format!("`{name}` is not a route"))) };
    let status = state.store.route_statuses().await?.remove(name).unwrap_or_default();
    let status = RouteStatus { cluster: spec.cluster.clone(), clients: Vec::new(), ..status };
    Ok((spec, status))
}

async fn cluster(state: &AppState, field: &str, name: &str) -> Result<DeclaredClusterSpec, ApiError> {
    fleet_common::paths::validate_cluster_name(name).map_err(|m| ApiError::field(FieldError::new(field, m)))?;
    let r = match state.store.get(Kind::KafkaCluster, name).await {
        Ok(r) => r,
        Err(StoreError::NotFound { .. }) => return Err(refuse(StatusCode::NOT_FOUND, field, format!("cluster `{name}` is not declared (fleetctl get clusters lists them)"))),
        Err(e) => return Err(e.into()),
    };
    if r.deleting {
        return Err(refuse(StatusCode::CONFLICT, field, format!("cluster `{name}` is being deleted")));
    }
    match r.declared.spec {
        DeclaredSpec::KafkaCluster(s) => Ok(s),
        _ => Err(refuse(StatusCode::NOT_FOUND, field, format!("`{name}` is not a cluster"))),
    }
}

fn switch_settings(pace: &SwitchRequest, default_reason: &str) -> Result<(u64, String), ApiError> {
    let deadline = pace.deadline_secs.unwrap_or(DEFAULT_DEADLINE_SECS);
    if !(1..=3600).contains(&deadline) {
        return Err(ApiError::field(FieldError::new("deadlineSecs", format!("{deadline} is out of range: give 1 to 3600 seconds"))));
    }
    let reason = pace.reason.clone().unwrap_or_else(|| default_reason.to_string());
    if reason.chars().count() > 200 || reason.chars().any(char::is_control) {
        return Err(ApiError::field(FieldError::new("reason", "must be at most 200 printable characters")));
    }
    Ok((deadline as u64 * 1000, reason))
}

/// The highest replication factor among the cluster's topics: a target needs that many brokers.
async fn max_replication(state: &AppState, cluster: &str) -> Result<u32, ApiError> {
    let resources = state.store.list(None, Some(cluster)).await?;
    Ok(crate::controller::desired_from(&resources)
        .into_iter()
        .find(|d| d.spec.name == cluster)
        .map(|d| d.topics.iter().filter(|t| !t.deleting).map(|t| u32::from(t.spec.replication_factor)).max().unwrap_or(1))
        .unwrap_or(1))
}

async fn create(state: &AppState, actor: Option<axum::Extension<Actor>>, from: &str, spec: OperationSpec) -> ApiResult<OperationResponse> {
    let actor = actor.map(|a| a.0 .0).unwrap_or_else(|| "api".into());
    let op = state.store.create_operation(from, &spec, &actor).await.map_err(|e| {
        let mut e = ApiError::from(e);
        if e.status == StatusCode::CONFLICT {
            e.body.field = Some("route".into());
        }
        e
    })?;
    state.reconciler.wake.notify_one();
    Ok(Json(OperationResponse { dry_run: false, operation: Some(op), spec: None, plan: None, moves: None, plan_error: None }))
}

/// Moves a route's producers, then its consumers, to a healthy standby (`to`) or to a fresh,
/// immutable clone of its cluster (`build`, the default).
#[utoipa::path(post, path = "/v1/operations/failover", request_body(content = FailoverRequest),
    responses((status = 200, body = OperationResponse), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody),
        (status = 422, body = super::ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn failover(State(state): State<Shared>, actor: Option<axum::Extension<Actor>>, body: Result<Bytes, BytesRejection>) -> ApiResult<OperationResponse> {
    let req: FailoverRequest = parse_json(body)?;
    let (_, status) = route(&state, &req.route).await?;
    let (deadline_ms, reason) = switch_settings(&req.pace, "failover asked for")?;
    if req.to.is_some() && req.build {
        return Err(ApiError::field(FieldError::new("build", "give either `to` (a standby) or `build`, not both")));
    }
    if req.to.is_some() && req.size_up.is_some() {
        return Err(ApiError::field(FieldError::new("sizeUp", "only a build is sized up: drop `to`, or scale the standby up first")));
    }
    let from = status.cluster.clone();
    if status.phase != RouteState::Normal && status.phase != RouteState::FailedOver {
        return Err(refuse(StatusCode::CONFLICT, "route", format!("route `{}` is {} (operation {}): wait for it to end (fleetctl get operations) or cancel it", req.route, status.phase.as_str(), status.operation.as_deref().unwrap_or("-"))));
    }
    let source = cluster(&state, "route", &from).await?;
    let (to, build) = match &req.to {
        Some(to) => {
            if *to == from {
                return Err(ApiError::field(FieldError::new("to", format!("route `{}` is already on `{to}`: name another cluster, or build one (--build)", req.route))));
            }
            let target = cluster(&state, "to", to).await?;
            let needed = max_replication(&state, &from).await?;
            if (target.brokers.max(0) as u32) < needed {
                return Err(ApiError::field(FieldError::new(
                    "to",
                    format!("`{to}` has {} broker(s), fewer than the replication factor {needed} of the route's topics: scale it up, or build one", target.brokers),
                )));
            }
            match state.reconciler.health.judge(to).await {
                Ok(v) if v.healthy => {}
                Ok(v) => return Err(ApiError::field(FieldError::new("to", format!("`{to}` is unhealthy ({}): fail over to a healthy cluster, or build one (--build)", v.summary)))),
                Err(e) => return Err(ApiError::field(FieldError::new("to", format!("the health of `{to}` cannot be told ({e}): never failed over to blindly; retry, or build one (--build)")))),
            }
            (Some(to.clone()), None)
        }
        None => {
            let size_up = req.size_up.unwrap_or(0);
            let brokers = source.brokers + size_up;
            if size_up < 0 || brokers > MAX_BROKERS {
                return Err(ApiError::field(FieldError::new("sizeUp", format!("{size_up} is out of range: give 0 to {}", MAX_BROKERS - source.brokers))));
            }
            (None, Some(BuildSpec { source: from.clone(), brokers: brokers as u32 }))
        }
    };
    let retain = route_retain(&state, &req.route).await?;
    let spec = FailoverSpec { route: req.route.clone(), from: from.clone(), to, build, deadline_ms, reason, retain, replaces: None, prior: status };
    create(&state, actor, &from, OperationSpec::Failover(spec)).await
}

async fn route_retain(state: &AppState, name: &str) -> Result<fleet_api::route::Retain, ApiError> {
    let (spec, _) = route(state, name).await?;
    Ok(spec.retain())
}

/// Moves a failed-over route back to its standby (the original cluster) once it is healthy, or
/// with `rebuild` to a fresh clone of it; the cluster left is kept or torn down per `retain`.
#[utoipa::path(post, path = "/v1/operations/fallback", request_body(content = FallbackRequest),
    responses((status = 200, body = OperationResponse), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody),
        (status = 422, body = super::ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn fallback(State(state): State<Shared>, actor: Option<axum::Extension<Actor>>, body: Result<Bytes, BytesRejection>) -> ApiResult<OperationResponse> {
    let req: FallbackRequest = parse_json(body)?;
    let (route_spec, status) = route(&state, &req.route).await?;
    let (deadline_ms, reason) = switch_settings(&req.pace, "fallback asked for")?;
    if status.phase != RouteState::Normal && status.phase != RouteState::FailedOver {
        return Err(refuse(StatusCode::CONFLICT, "route", format!("route `{}` is {} (operation {}): wait for it to end (fleetctl get operations) or cancel it", req.route, status.phase.as_str(), status.operation.as_deref().unwrap_or("-"))));
    }
    let Some(standby) = status.standby.clone() else {
        return Err(refuse(
            StatusCode::CONFLICT,
            "route",
            format!("route `{}` has no standby to fall back to (it never failed over, or its standby was torn down): fail over instead", req.route),
        ));
    };
    let from = status.cluster.clone();
    cluster(&state, "route", &from).await?;
    let original = cluster(&state, "route", &standby).await?;
    let (to, build, replaces) = if req.rebuild {
        (None, Some(BuildSpec { source: standby.clone(), brokers: original.brokers.max(1) as u32 }), Some(standby.clone()))
    } else {
        (Some(standby.clone()), None, None)
    };
    let spec = FailoverSpec { route: req.route.clone(), from: from.clone(), to, build, deadline_ms, reason, retain: route_spec.retain(), replaces, prior: status };
    create(&state, actor, &from, OperationSpec::Fallback(spec)).await
}
