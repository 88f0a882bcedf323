//! Failover and fallback over HTTP: the request is checked (every guard rail, in
//! [`crate::operations::failover::request`]) before anything is stored, and each refusal names the
//! field and what to do instead. Holds stop a route's automation.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use super::{parse_json, Actor, ApiError, ApiResult, AppState, Shared};
use crate::operations::failover::request::{self, Refusal};
use fleet_api::operation::{FailoverRequest, FallbackRequest, OperationResponse, OperationSpec};
use fleet_api::route::Hold;

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        let (status, code, e) = match r {
            Refusal::NotFound(e) => (StatusCode::NOT_FOUND, "not-found", e),
            Refusal::Conflict(e) => (StatusCode::CONFLICT, "conflict", e),
            Refusal::Invalid(e) => return ApiError::field(e),
            Refusal::Store(e) => return e.into(),
        };
        let mut err = ApiError::new(status, code, e.to_string());
        err.body.field = Some(e.field);
        err
    }
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
    let (from, spec) = request::failover(&state.store, state.reconciler.health.as_ref(), &req).await?;
    if req.pace.dry_run {
        return Ok(Json(OperationResponse { dry_run: true, operation: None, spec: Some(spec), plan: None, moves: None, plan_error: None }));
    }
    create(&state, actor, &from, spec).await
}

/// Moves a failed-over route back to its standby (the original cluster) once it is healthy, or
/// with `rebuild` to a fresh clone of it; the cluster left is kept or torn down per `retain`.
#[utoipa::path(post, path = "/v1/operations/fallback", request_body(content = FallbackRequest),
    responses((status = 200, body = OperationResponse), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody),
        (status = 422, body = super::ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn fallback(State(state): State<Shared>, actor: Option<axum::Extension<Actor>>, body: Result<Bytes, BytesRejection>) -> ApiResult<OperationResponse> {
    let req: FallbackRequest = parse_json(body)?;
    let (from, spec) = request::fallback(&state.store, &req).await?;
    if req.pace.dry_run {
        return Ok(Json(OperationResponse { dry_run: true, operation: None, spec: Some(spec), plan: None, moves: None, plan_error: None }));
    }
    create(&state, actor, &from, spec).await
}

/// `POST /v1/routes/{name}/hold`: why automation stops.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct HoldRequest {
    #[schema(pattern = r"^[^\u0000-\u001f\u007f-\u009f]{1,200}$")]
    reason: String,
    /// Replace the hold a route already has (refused otherwise: 409 naming it).
    #[serde(default)]
    overwrite: bool,
}

/// Stops automatic failover and fallback of a route until released (a runbook's maintenance).
#[utoipa::path(post, path = "/v1/routes/{name}/hold", params(("name" = String, Path)), request_body(content = HoldRequest),
    responses((status = 200, body = Hold), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody), (status = 422, body = super::ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn hold(State(state): State<Shared>, Path(name): Path<String>, actor: Option<axum::Extension<Actor>>, body: Result<Bytes, BytesRejection>) -> ApiResult<Hold> {
    let req: HoldRequest = parse_json(body)?;
    request::route(&state.store, &name).await?;
    if req.reason.is_empty() || req.reason.chars().count() > 200 || req.reason.chars().any(char::is_control) {
        return Err(ApiError::field(crate::spec::FieldError::new("reason", "say why in 1-200 printable characters")));
    }
    let hold = Hold { reason: req.reason, by: actor.map(|a| a.0 .0).unwrap_or_else(|| "api".into()), at_ms: crate::store::now_ms() };
    state.store.hold_route(&name, &hold, req.overwrite).await?;
    Ok(Json(hold))
}

/// Resumes a route's automation.
#[utoipa::path(delete, path = "/v1/routes/{name}/hold", params(("name" = String, Path)),
    responses((status = 200, body = bool, description = "whether it was held"), (status = 404, body = super::ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn release(State(state): State<Shared>, Path(name): Path<String>, actor: Option<axum::Extension<Actor>>) -> ApiResult<bool> {
    request::route(&state.store, &name).await?;
    let actor = actor.map(|a| a.0 .0).unwrap_or_else(|| "api".into());
    Ok(Json(state.store.release_route(&name, &actor).await?))
}

/// The answer to `POST /v1/routes/{name}/release-standby`.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleasedStandby {
    pub route: String,
    /// The cluster released (being torn down).
    pub cluster: String,
}

/// Drops a route's warm standby (what a failover or fallback left for a later fallback): the
/// cluster is torn down, once no client of the route still uses it or has not drained it.
#[utoipa::path(post, path = "/v1/routes/{name}/release-standby", params(("name" = String, Path)),
    responses((status = 200, body = ReleasedStandby), (status = 404, body = super::ErrorBody), (status = 409, body = super::ErrorBody),
        (status = 422, body = super::ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn release_standby(State(state): State<Shared>, Path(name): Path<String>, actor: Option<axum::Extension<Actor>>) -> ApiResult<ReleasedStandby> {
    let (_, status) = request::route(&state.store, &name).await?;
    let actor = actor.map(|a| a.0 .0).unwrap_or_else(|| "api".into());
    let in_use = match &status.standby {
        Some(standby) => crate::operations::failover::still_using(&state.store.client_reports(Some(&name)).await?, standby)
            .into_iter()
            // A consumer that never read the standby has nothing to drain there.
            .collect::<Vec<_>>(),
        None => Vec::new(),
    };
    let cluster = state.store.release_standby(&name, &actor, &in_use).await?;
    state.reconciler.wake.notify_one();
    Ok(Json(ReleasedStandby { route: name, cluster }))
}
