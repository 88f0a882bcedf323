//! Operations over HTTP: start a scale-up (or preview its plan with `dryRun`), list and read
//! operations, approve a held one, cancel one that has not committed.

use std::collections::BTreeSet;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::{check_cluster_name, check_name_field, parse_json, preview_client, Actor, ApiError, ApiResult, Shared};
use crate::controller::desired_from;
use crate::operations::reassign::{self, moves};
use crate::operations::scale_up::{self, live, placement};
use crate::operations::live_brokers;
use crate::spec::FieldError;
use crate::store::OperationCommand;
use fleet_api::operation::{
    DecommissionRequest, MovePlan, MoveSpec, Operation, OperationResponse, OperationSpec, PaceRequest, PlacementPlan, RebalanceRequest, RollRequest,
    RolloutSpec, ScaleUpRequest, ScaleUpSpec,
};

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
    let req: ScaleUpRequest = parse_json(body)?;
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
    refuse_kraft(&desired.spec, "a scale-up")?;
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
        return Ok(Json(OperationResponse { dry_run: true, operation: None, spec: Some(OperationSpec::ScaleUp(spec)), plan, moves: None, plan_error }));
    }
    store_started(&state, &req.cluster, OperationSpec::ScaleUp(spec), actor).await
}

/// The declared cluster, or 404/409 naming `cluster`.
async fn declared_cluster(state: &super::AppState, cluster: &str) -> Result<crate::spec::ClusterSpec, ApiError> {
    check_cluster_name(cluster).map_err(|_| ApiError::field(FieldError::new("cluster", format!("`{cluster}` is not a cluster name"))))?;
    let resources = state.store.list(None, Some(cluster)).await?;
    let Some(desired) = desired_from(&resources).into_iter().find(|d| d.spec.name == cluster) else {
        let mut e = ApiError::new(StatusCode::NOT_FOUND, "not-found", format!("cluster: `{cluster}` is not declared (fleetctl get clusters lists them)"));
        e.body.field = Some("cluster".into());
        return Err(e);
    };
    if desired.deleting {
        let mut e = ApiError::new(StatusCode::CONFLICT, "conflict", format!("cluster: `{cluster}` is being deleted"));
        e.body.field = Some("cluster".into());
        return Err(e);
    }
    refuse_kraft(&desired.spec, "this operation")?;
    Ok(desired.spec)
}

fn refuse_kraft(spec: &crate::spec::ClusterSpec, what: &str) -> Result<(), ApiError> {
    if spec.is_kraft() {
        let mut e = ApiError::new(StatusCode::CONFLICT, "conflict", format!("cluster: {}", crate::operations::kraft_refusal(what, &spec.name, &spec.kafka_version)));
        e.body.field = Some("cluster".into());
        return Err(e);
    }
    Ok(())
}

async fn refuse_if_running(state: &super::AppState, cluster: &str) -> Result<(), ApiError> {
    if let Some(running) = state.store.operations(Some(cluster), true).await?.first() {
        let mut e = ApiError::new(StatusCode::CONFLICT, "conflict", format!("cluster: operation {} is still running on {cluster}; wait for it or cancel it (fleetctl cancel operation {})", running.id, running.id));
        e.body.field = Some("cluster".into());
        return Err(e);
    }
    Ok(())
}

#[utoipa::path(post, path = "/v1/operations/roll", params(("dryRun" = Option<bool>, Query, description = "check, write nothing")),
    request_body(content = RollRequest), responses((status = 200, body = OperationResponse), (status = 404, body = super::ErrorBody),
    (status = 409, body = super::ErrorBody), (status = 422, body = super::ErrorBody)), security(("bearer" = [])))]
/// A rolling restart with no change (`fleetctl roll`): every broker, one at a time, each once
/// the cluster is whole, in sync and healthy; the controller last.
pub(super) async fn roll(
    State(state): State<Shared>,
    query: Result<Query<DryRunQuery>, axum::extract::rejection::QueryRejection>,
    actor: Option<axum::Extension<Actor>>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<OperationResponse> {
    let Query(query) = query.map_err(bad_query)?;
    let req: RollRequest = parse_json(body)?;
    declared_cluster(&state, &req.cluster).await?;
    let stored = state.store.get(crate::spec::Kind::KafkaCluster, &req.cluster).await?;
    if let crate::spec::DeclaredSpec::KafkaCluster(c) = &stored.declared.spec {
        if c.is_immutable() {
            let mut e = ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("cluster: `{}` is immutable (built by a failover): it is replaced, not restarted; build another one (fleetctl failover ROUTE --build)", req.cluster),
            );
            e.body.field = Some("cluster".into());
            return Err(e);
        }
    }
    if let Some(reason) = &req.reason {
        if reason.chars().count() > 500 || fleet_common::kafka_config::control_character(reason).is_some() {
            return Err(ApiError::field(FieldError::new("reason", "give at most 500 printable characters")));
        }
    }
    refuse_if_running(&state, &req.cluster).await?;
    let spec = RolloutSpec { changes: Vec::new(), restart: true, reason: req.reason.clone() };
    if query.dry_run.unwrap_or(false) {
        return Ok(Json(OperationResponse { dry_run: true, operation: None, spec: Some(OperationSpec::ConfigRollout(spec)), plan: None, moves: None, plan_error: None }));
    }
    store_started(&state, &req.cluster, OperationSpec::ConfigRollout(spec), actor).await
}

/// Stores a new operation and wakes the leader; a conflict names the `cluster` field.
async fn store_started(state: &super::AppState, cluster: &str, spec: OperationSpec, actor: Option<axum::Extension<Actor>>) -> ApiResult<OperationResponse> {
    let actor = actor.map(|a| a.0 .0).unwrap_or_else(|| "api".into());
    let op = state.store.create_operation(cluster, &spec, &actor).await.map_err(|e| {
        let mut e = ApiError::from(e);
        if e.status == StatusCode::CONFLICT {
            e.body.field = Some("cluster".into());
        }
        e
    })?;
    state.reconciler.wake.notify_one();
    Ok(Json(OperationResponse { dry_run: false, operation: Some(op), spec: None, plan: None, moves: None, plan_error: None }))
}

/// Defaults: 5 moves per broker and 50 in flight (Cruise Control's per-broker default is 5).
pub const DEFAULT_MOVES_PER_BROKER: u32 = 5;
pub const DEFAULT_MAX_MOVES: u32 = 50;

/// The pace as checked: throttle rate and caps (fields named as in the request).
pub fn resolve_pace(pace: &PaceRequest) -> Result<(Option<u64>, u32, u32), FieldError> {
    let throttle = match &pace.throttle {
        None => None,
        Some(t) => Some(moves::parse_rate(t).map_err(|e| FieldError::new("throttle", e))?),
    };
    let cap = |field: &str, v: Option<i64>, default: u32, max: i64| -> Result<u32, FieldError> {
        match v {
            None => Ok(default),
            Some(n) if (1..=max).contains(&n) => Ok(n as u32),
            Some(n) => Err(FieldError::new(field, format!("{n} is out of range: give 1 to {max}"))),
        }
    };
    Ok((throttle, cap("maxMovesPerBroker", pace.max_moves_per_broker, DEFAULT_MOVES_PER_BROKER, 1000)?, cap("maxMoves", pace.max_moves, DEFAULT_MAX_MOVES, 10_000)?))
}

/// The brokers a decommission takes out: named, or the `count` highest live IDs.
pub fn resolve_leaving(req_brokers: Option<&[i64]>, count: Option<i64>, cluster: &str, live: &BTreeSet<i32>) -> Result<Vec<i32>, FieldError> {
    let listed = || live.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(", ");
    match (req_brokers, count) {
        (Some(_), Some(_)) => Err(FieldError::new("count", "give either brokers or a count, not both")),
        (None, None) => Err(FieldError::new("brokers", format!("name the brokers that leave (live: {})", listed()))),
        (Some([]), None) => Err(FieldError::new("brokers", "no broker named")),
        (Some(ids), None) => {
            let mut out = BTreeSet::new();
            for id in ids {
                let b = i32::try_from(*id).map_err(|_| FieldError::new("brokers", format!("{id} is not a broker ID")))?;
                if !live.contains(&b) {
                    return Err(FieldError::new("brokers", format!("broker {b} is not a broker of cluster {cluster} (its brokers: {})", listed())));
                }
                if !out.insert(b) {
                    return Err(FieldError::new("brokers", format!("broker {b} is named twice")));
                }
            }
            Ok(out.into_iter().collect())
        }
        (None, Some(n)) => {
            if n < 1 || n as usize >= live.len() {
                return Err(FieldError::new("count", format!("{n} of {} live brokers cannot leave: keep at least one", live.len())));
            }
            Ok(live.iter().rev().take(n as usize).rev().copied().collect())
        }
    }
}

/// Live brokers (-> rack) and every partition, for checking a move request and planning it.
struct ClusterNow {
    live: std::collections::BTreeMap<i32, String>,
    /// Broker IDs in the fleet's registry (a broker that is down keeps its ID there).
    registry: BTreeSet<i32>,
    partitions: reassign::Partitions,
    /// Bytes per partition (the most any replica holds), where the brokers told.
    sizes: std::collections::BTreeMap<(String, u32), u64>,
}

async fn cluster_now(state: &super::AppState, cluster: &str) -> Result<ClusterNow, ApiError> {
    let unavailable = |why: String| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "zookeeper-unavailable", format!("cannot read cluster {cluster} from ZooKeeper: {why}; nothing was written"));
    let zk = preview_client(state).await.ok_or_else(|| unavailable("not reachable".into()))?;
    let kafka = state.reconciler.paths.cluster(cluster).kafka();
    let live = live_brokers(&zk, &kafka).await.map_err(unavailable)?;
    let registry = fleet_common::registry::read_registry(&zk, &state.reconciler.paths.cluster(cluster)).await.map_err(|e| unavailable(e.to_string()))?.into_keys().collect();
    let partitions = reassign::live::partitions(&zk, &kafka, None).await.map_err(unavailable)?;
    let mut sizes = std::collections::BTreeMap::new();
    for per_broker in reassign::live::sizes(&zk, &kafka, None).await.into_values() {
        for (k, bytes) in per_broker {
            let e = sizes.entry(k).or_insert(0u64);
            *e = (*e).max(bytes);
        }
    }
    Ok(ClusterNow { live, registry, partitions, sizes })
}

/// Checks and stores a decommission or rebalance (or, with `dryRun`, only plans it).
async fn start_moves(
    state: &super::AppState,
    cluster: &str,
    spec: MoveSpec,
    decommission: bool,
    dry_run: bool,
    now: &ClusterNow,
    actor: Option<axum::Extension<Actor>>,
) -> ApiResult<OperationResponse> {
    // The plan is made now too, so what cannot be done (a replication factor that no longer
    // fits) is refused before anything is stored.
    let plan: MovePlan = reassign::make_plan(&spec, decommission, &now.live, &now.partitions, &now.sizes)
        .map_err(|e| ApiError::field(FieldError::new("brokers", e.to_string())))?;
    let op_spec = if decommission { OperationSpec::Decommission(spec) } else { OperationSpec::Rebalance(spec) };
    refuse_if_running(state, cluster).await?;
    if dry_run {
        return Ok(Json(OperationResponse { dry_run: true, operation: None, spec: Some(op_spec), plan: None, moves: Some(plan), plan_error: None }));
    }
    let actor = actor.map(|a| a.0 .0).unwrap_or_else(|| "api".into());
    let op = state.store.create_operation(cluster, &op_spec, &actor).await.map_err(|e| {
        let mut e = ApiError::from(e);
        if e.status == StatusCode::CONFLICT {
            e.body.field = Some("cluster".into());
        }
        e
    })?;
    state.reconciler.wake.notify_one();
    Ok(Json(OperationResponse { dry_run: false, operation: Some(op), spec: None, plan: None, moves: None, plan_error: None }))
}

#[utoipa::path(post, path = "/v1/operations/decommission", params(("dryRun" = Option<bool>, Query, description = "plan the moves, write nothing")),
    request_body(content = DecommissionRequest), responses((status = 200, body = OperationResponse), (status = 404, body = super::ErrorBody),
    (status = 409, body = super::ErrorBody), (status = 422, body = super::ErrorBody), (status = 503, body = super::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn decommission(
    State(state): State<Shared>,
    query: Result<Query<DryRunQuery>, axum::extract::rejection::QueryRejection>,
    actor: Option<axum::Extension<Actor>>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<OperationResponse> {
    let Query(query) = query.map_err(bad_query)?;
    let req: DecommissionRequest = parse_json(body)?;
    let leaving = |ids: &BTreeSet<i32>| {
        let leaving = resolve_leaving(req.brokers.as_deref(), req.count, &req.cluster, ids)?;
        if leaving.len() >= ids.len() {
            return Err(FieldError::new("brokers", format!("every broker of cluster {} would leave: keep at least one (delete the cluster to remove it all)", req.cluster)));
        }
        Ok(Some(leaving))
    };
    moves_request(&state, &req.cluster, &req.pace, leaving, query.dry_run.unwrap_or(false), actor).await
}

#[utoipa::path(post, path = "/v1/operations/rebalance", params(("dryRun" = Option<bool>, Query, description = "plan the moves, write nothing")),
    request_body(content = RebalanceRequest), responses((status = 200, body = OperationResponse), (status = 404, body = super::ErrorBody),
    (status = 409, body = super::ErrorBody), (status = 422, body = super::ErrorBody), (status = 503, body = super::ErrorBody)), security(("bearer" = [])))]
pub(super) async fn rebalance(
    State(state): State<Shared>,
    query: Result<Query<DryRunQuery>, axum::extract::rejection::QueryRejection>,
    actor: Option<axum::Extension<Actor>>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<OperationResponse> {
    let Query(query) = query.map_err(bad_query)?;
    let req: RebalanceRequest = parse_json(body)?;
    moves_request(&state, &req.cluster, &req.pace, |_| Ok(None), query.dry_run.unwrap_or(false), actor).await
}

/// A decommission (`leaving` names brokers) or a rebalance (`None`): checked field by field
/// against the declared cluster and ZooKeeper, planned, then stored (or only shown, dry run).
async fn moves_request(
    state: &super::AppState,
    cluster: &str,
    pace: &PaceRequest,
    leaving: impl FnOnce(&BTreeSet<i32>) -> Result<Option<Vec<i32>>, FieldError>,
    dry_run: bool,
    actor: Option<axum::Extension<Actor>>,
) -> ApiResult<OperationResponse> {
    let declared = declared_cluster(state, cluster).await?;
    let (throttle, per_broker, max_moves) = resolve_pace(pace).map_err(ApiError::field)?;
    let now = cluster_now(state, cluster).await?;
    // A broker that is down (registered in the fleet's registry, not live) may leave too.
    let ids: BTreeSet<i32> = now.live.keys().chain(now.registry.iter()).copied().collect();
    let leaving = leaving(&ids).map_err(ApiError::field)?;
    let decommission = leaving.is_some();
    let spec = MoveSpec {
        leaving: leaving.unwrap_or_default(),
        from_brokers: declared.brokers,
        throttle_bytes: throttle,
        max_moves_per_broker: per_broker,
        max_moves,
        hold: pace.hold,
    };
    start_moves(state, cluster, spec, decommission, dry_run, &now, actor).await
}

/// Lowering `spec.brokers` in an apply (confirmed): the decommissions to start with the spec, of
/// the highest brokers, at the fleet manager's default throttle; planned now so that what cannot
/// be done is refused, naming the field, before anything is written.
pub(super) async fn decommissions_for_apply(state: &super::AppState, batch: &[crate::spec::Declared]) -> Result<Vec<(String, MoveSpec)>, ApiError> {
    let mut out = Vec::new();
    for d in batch.iter() {
        let crate::spec::DeclaredSpec::KafkaCluster(new) = &d.spec else { continue };
        let Ok(stored) = state.store.get(crate::spec::Kind::KafkaCluster, &d.name).await else { continue };
        let (crate::spec::DeclaredSpec::KafkaCluster(was), crate::spec::DeclaredSpec::KafkaCluster(user)) = (&stored.declared.spec, &stored.user.spec) else { continue };
        // `was` is what the cluster has (overrides included). Confirmed, the applied count is
        // made true even when the document did not change (a scale-up raised the count since).
        let _ = user;
        if new.brokers >= was.brokers || stored.deleting {
            continue;
        }
        let field = |msg: String| ApiError::field(FieldError::new("spec.brokers", msg).on(format!("KafkaCluster/{}", d.name)));
        if was.is_kraft() {
            return Err(field(format!(
                "{} -> {}: {}",
                was.brokers,
                new.brokers,
                crate::operations::kraft_refusal("lowering brokers (a decommission)", &d.name, &was.kafka_version)
            )));
        }
        refuse_if_running(state, &d.name).await?;
        let now = cluster_now(state, &d.name).await?;
        let ids: BTreeSet<i32> = now.live.keys().chain(now.registry.iter()).copied().collect();
        let count = was.brokers - new.brokers;
        let leaving = resolve_leaving(None, Some(count), &d.name, &ids).map_err(|e| field(format!("{} -> {}: {}", was.brokers, new.brokers, e.message)))?;
        let spec = MoveSpec {
            leaving,
            from_brokers: was.brokers.max(0) as u32,
            throttle_bytes: state.limits.apply_decommission_throttle,
            max_moves_per_broker: DEFAULT_MOVES_PER_BROKER,
            max_moves: DEFAULT_MAX_MOVES,
            hold: false,
        };
        reassign::make_plan(&spec, true, &now.live, &now.partitions, &Default::default()).map_err(|e| field(e.to_string()))?;
        out.push((d.name.clone(), spec));
    }
    Ok(out)
}

/// The plan a scale-up would make now, for the brokers it expects to be added.
async fn preview_plan(state: &super::AppState, cluster: &crate::spec::ClusterSpec, spec: &ScaleUpSpec) -> Result<PlacementPlan, String> {
    let zk = preview_client(state).await.ok_or("ZooKeeper is not reachable: no plan")?;
    let kafka = state.reconciler.paths.cluster(&cluster.name).kafka();
    let mut live = live_brokers(&zk, &kafka).await?;
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
        check_name_field(c, "cluster")?;
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
        OperationCommand::Cancel if !op.cancellable() => {
            let why = match op.spec {
                OperationSpec::ScaleUp(_) => "only a scale-up that has not committed can be cancelled",
                OperationSpec::Failover(_) | OperationSpec::Fallback(_) => {
                    "the route has been switched (or it has ended): undo it with fleetctl fallback, or fail over again"
                }
                OperationSpec::ConfigRollout(_) => "it has ended",
                _ => "its brokers are being retired (or it has ended)",
            };
            return Err(refuse(format!("it is {}: {why}", op.status.phase.as_str())));
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
