//! Operations over HTTP: start a scale-up (or preview its plan with `dryRun`), list and read
//! operations, approve a held one, cancel one that has not committed.

use std::collections::BTreeSet;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::{check_cluster_name, preview_client, Actor, ApiError, ApiResult, Shared};
use crate::controller::desired_from;
use crate::operations::{live, placement, scale_up};
use crate::spec::FieldError;
use crate::store::OperationCommand;
use fleet_api::operation::{Operation, OperationResponse, OperationSpec, PlacementPlan, ScaleUpRequest, ScaleUpSpec};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct DryRunQuery {
    #[serde(default)]
    dry_run: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct ListQuery {
    #[serde(default)]
    cluster: Option<String>,
    #[serde(default)]
    active: Option<bool>,
}

fn bad_query(e: axum::extract::rejection::QueryRejection) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad-request", e.body_text())
}

#[utoipa::path(post, path = "/v1/operations/scale-up", params(("dryRun" = Option<bool>, Query, description = "make the plan (for the brokers expected), write nothing")),
    request_body(content = ScaleUpRequest), responses((status = 200, body = OperationResponse), (status = 404, body = super::ErrorBody),
    (status = 409, body = super::ErrorBody), (status = 422, body = super::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn scale_up(
    State(state): State<Shared>,
    query: Result<Query<DryRunQuery>, axum::extract::rejection::QueryRejection>,
    actor: Option<axum::Extension<Actor>>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<OperationResponse> {
    let Query(query) = query.map_err(bad_query)?;
    let body = body.map_err(|e| ApiError::new(e.status(), "bad-request", e.body_text()))?;
    let mut de = serde_json::Deserializer::from_slice(&body);
    let req: ScaleUpRequest = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        ApiError::field(FieldError::new(if field == "." { "(body)".to_string() } else { field }, e.inner().to_string()))
    })?;
    check_cluster_name(&req.cluster).map_err(|_| ApiError::field(FieldError::new("cluster", format!("`{}` is not a cluster name", req.cluster))))?;
    let resources = state.store.list(None, Some(&req.cluster)).await?;
    let Some(desired) = desired_from(&resources).into_iter().find(|d| d.spec.name == req.cluster) else {
        let mut e = ApiError::new(StatusCode::NOT_FOUND, "not-found", format!("cluster: `{}` is not declared (fleetctl get clusters lists them)", req.cluster));
        e.body.field = Some("cluster".into());
        return Err(e);
    };
    if desired.deleting {
        let mut e = ApiError::new(StatusCode::CONFLICT, "conflict", format!("cluster: `{}` is being deleted", req.cluster));
        e.body.field = Some("cluster".into());
        return Err(e);
    }
    let topics: Vec<_> = desired.topics.iter().filter(|t| !t.deleting).map(|t| t.spec.clone()).collect();
    let spec = scale_up::resolve(&req, &desired.spec, &topics).map_err(ApiError::field)?;
    if query.dry_run.unwrap_or(false) {
        if let Some(running) = state.store.operations(Some(&req.cluster), true).await?.first() {
            let mut e = ApiError::new(StatusCode::CONFLICT, "conflict", format!("cluster: operation {} is still running on it", running.id));
            e.body.field = Some("cluster".into());
            return Err(e);
        }
        let (plan, plan_error) = match preview_plan(&state, &desired.spec, &spec).await {
            Ok(p) => (Some(p), None),
            Err(e) => (None, Some(e)),
        };
        return Ok(Json(OperationResponse { dry_run: true, operation: None, spec: Some(OperationSpec::ScaleUp(spec)), plan, plan_error }));
    }
    let actor = actor.map(|a| a.0 .0).unwrap_or_else(|| "api".into());
    let op = state.store.create_operation(&req.cluster, &OperationSpec::ScaleUp(spec), &actor).await.map_err(|e| {
        let mut e = ApiError::from(e);
        if e.status == StatusCode::CONFLICT {
            e.body.field = Some("cluster".into());
        }
        e
    })?;
    state.reconciler.wake.notify_one();
    Ok(Json(OperationResponse { dry_run: false, operation: Some(op), spec: None, plan: None, plan_error: None }))
}

/// The plan a scale-up would make now, for the brokers it expects to be added.
async fn preview_plan(state: &super::AppState, cluster: &crate::spec::ClusterSpec, spec: &ScaleUpSpec) -> Result<PlacementPlan, String> {
    let zk = preview_client(state).await.ok_or("ZooKeeper is not reachable: no plan")?;
    let kafka = state.reconciler.paths.cluster(&cluster.name).kafka();
    let mut live = live::live_brokers(&zk, &kafka).await?;
    let topics = live::topic_znodes(&zk, &kafka, &spec.topics).await?;
    let guards = live::guards(&zk, &kafka).await?;
    let before = live.len() as u32;
    let predicted = placement::predict_new_brokers(&live, &cluster.availability_zones, spec.brokers.saturating_sub(before));
    let new: BTreeSet<i32> = predicted.keys().copied().collect();
    live.extend(predicted);
    let mut plan = scale_up::make_plan(spec, before, &live, &new, &topics, &guards, &state.reconciler.settings.scale_up)?;
    plan.predicted = true;
    Ok(plan)
}

#[utoipa::path(get, path = "/v1/operations", params(("cluster" = Option<String>, Query), ("active" = Option<bool>, Query, description = "only those not ended")),
    responses((status = 200, body = [Operation])), security(("bearer" = [])))]
pub(super) async fn list(State(state): State<Shared>, query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>) -> ApiResult<Vec<Operation>> {
    let Query(q) = query.map_err(bad_query)?;
    if let Some(c) = &q.cluster {
        check_cluster_name(c)?;
    }
    Ok(Json(state.store.operations(q.cluster.as_deref(), q.active.unwrap_or(false)).await?))
}

#[utoipa::path(get, path = "/v1/operations/{id}", params(("id" = String, Path)), responses((status = 200, body = Operation), (status = 404, body = super::ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn get(State(state): State<Shared>, Path(id): Path<String>) -> ApiResult<Operation> {
    Ok(Json(state.store.operation(&id).await?))
}

async fn command(state: &super::AppState, id: &str, command: OperationCommand, actor: Option<axum::Extension<Actor>>) -> ApiResult<Operation> {
    let op = state.store.operation(id).await?;
    let refuse = |why: String| {
        let mut e = ApiError::new(StatusCode::CONFLICT, "conflict", format!("operation {id}: {why}"));
        e.body.field = Some("phase".into());
        e
    };
    match command {
        OperationCommand::Cancel if !op.status.phase.cancellable() => {
            return Err(refuse(format!("it is {}: only an operation that has not committed can be cancelled", op.status.phase.as_str())));
        }
        OperationCommand::Approve if op.status.phase.is_terminal() => return Err(refuse(format!("it has ended ({})", op.status.phase.as_str()))),
        _ => {}
    }
    let actor = actor.map(|a| a.0 .0).unwrap_or_else(|| "api".into());
    let op = state.store.command_operation(id, command, &actor).await?;
    state.reconciler.wake.notify_one();
    Ok(Json(op))
}

#[utoipa::path(post, path = "/v1/operations/{id}/approve", params(("id" = String, Path)), responses((status = 200, body = Operation), (status = 409, body = super::ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn approve(State(state): State<Shared>, Path(id): Path<String>, actor: Option<axum::Extension<Actor>>) -> ApiResult<Operation> {
    command(&state, &id, OperationCommand::Approve, actor).await
}

#[utoipa::path(post, path = "/v1/operations/{id}/cancel", params(("id" = String, Path)), responses((status = 200, body = Operation), (status = 409, body = super::ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn cancel(State(state): State<Shared>, Path(id): Path<String>, actor: Option<axum::Extension<Actor>>) -> ApiResult<Operation> {
    command(&state, &id, OperationCommand::Cancel, actor).await
}
