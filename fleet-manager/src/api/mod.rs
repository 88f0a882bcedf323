//! The HTTP API (axum): specs CRUD, plan preview, status, journal, and the persisted broker
//! properties `kafka-bootstrap` fetches. Bearer tokens with `read` / `write` scopes. Every error is
//! JSON: `{"error": kind, "message", "field"?, "resource"?}`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::OpenApi;

mod clients;
mod contract;
mod failover;
use contract::Contract;
mod operations;

use crate::plan::Plan;
use crate::controller::{self, Reconciler};
use crate::credentials::constant_time_eq;
use crate::spec::{self, Declared, DeclaredSpec, FieldError, Kind};
use crate::store::{ApplyResult, JournalEntry, Store, StoreError, StoredResource};
pub use fleet_api::wire::{ApplyResponse, ClusterStatus, DeleteResponse, EffectiveSpec, ErrorBody, Health, ResourceView};

pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What a token may do. `write` includes `read`; `client` is for producers and consumers (read
/// route bindings, send reports) and nothing else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Read,
    Write,
    Client,
}

impl Scope {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "read" => Some(Self::Read),
            "write" => Some(Self::Write),
            "client" => Some(Self::Client),
            _ => None,
        }
    }
}

/// The routes a client token may report for (and so decide failovers of).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteScope {
    All,
    /// Route names, or prefixes ending in `*` (`orders-*`).
    Only(Vec<String>),
    /// No route (host tokens).
    None,
}

impl RouteScope {
    pub fn allows(&self, route: &str) -> bool {
        match self {
            RouteScope::All => true,
            RouteScope::None => false,
            RouteScope::Only(patterns) => patterns.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => route.starts_with(prefix),
                None => p == route,
            }),
        }
    }

    fn parse(list: &str) -> Result<Self, String> {
        let mut patterns = Vec::new();
        for p in list.split('|') {
            let ok = match p.strip_suffix('*') {
                Some("") => true,
                Some(prefix) => prefix.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                None => fleet_common::paths::validate_cluster_name(p).is_ok(),
            };
            if !ok {
                return Err(format!("`{}` is not a route name or a prefix ending in `*` (routes are listed as client=events|orders-*)", fleet_common::kafka_config::shown(p)));
            }
            patterns.push(p.to_string());
        }
        Ok(if patterns.iter().any(|p| p == "*") { RouteScope::All } else { RouteScope::Only(patterns) })
    }
}

/// A configured token: only the SHA-256 of its secret is kept, and a presented token is hashed
/// and compared with every one in constant time.
#[derive(Clone)]
pub struct ApiToken {
    pub name: String,
    pub digest: [u8; 32],
    pub scope: Scope,
    /// For client tokens: the routes it may report for (`client=events|orders-*`; all by default).
    pub routes: RouteScope,
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiToken").field("name", &self.name).field("scope", &self.scope).field("routes", &self.routes).finish_non_exhaustive()
    }
}

impl ApiToken {
    /// `NAME:SCOPE:SECRET`, or `NAME:SCOPE:sha256:HEX` (the secret's SHA-256, so that the file
    /// need not hold it); SCOPE `read`, `write` (implies read), `client` or `client=ROUTES`
    /// (`|`-separated names or `prefix-*`: the routes it may report for). Errors never echo a secret.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = text.splitn(3, ':');
        let (Some(name), Some(scope), Some(secret)) = (parts.next(), parts.next(), parts.next()) else {
            return Err("expected NAME:SCOPE:SECRET or NAME:SCOPE:sha256:HEX (scope read, write, client or client=ROUTES)".to_string());
        };
        let (scope_word, route_list) = match scope.split_once('=') {
            Some((w, list)) => (w, Some(list)),
            None => (scope, None),
        };
        let scope = Scope::parse(scope_word).ok_or_else(|| format!("token `{name}`: scope `{scope_word}` is not read, write or client"))?;
        let routes = match (scope, route_list) {
            (_, None) => RouteScope::All,
            (Scope::Client, Some(list)) => RouteScope::parse(list).map_err(|e| format!("token `{name}`: {e}"))?,
            (_, Some(_)) => return Err(format!("token `{name}`: only client tokens are limited to routes (client=ROUTES)")),
        };
        if name.is_empty() || name.chars().any(|c| c.is_control() || c == '|') {
            return Err("a token's name must not be empty nor hold control characters (NAME:SCOPE:SECRET)".to_string());
        }
        let digest = match secret.strip_prefix("sha256:") {
            Some(hex) => parse_digest(hex).ok_or_else(|| format!("token `{name}`: sha256: needs 64 hex digits (`sha256sum` of the secret)"))?,
            None if secret.len() < 8 => return Err(format!("token `{name}`: the secret must have 8 characters or more")),
            None => digest(secret),
        };
        Ok(Self { name: name.to_string(), digest, scope, routes })
    }

    /// Tokens from a file: one per line, `#` comments and blank lines ignored. Errors name the
    /// file and the line.
    pub fn load_file(path: &std::path::Path) -> Result<Vec<Self>, String> {
        fleet_common::config_file::check_private(path).map_err(|e| format!("token file {e}"))?;
        let text = std::fs::read_to_string(path).map_err(|e| format!("token file {}: {e}", path.display()))?;
        let mut tokens = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            tokens.push(Self::parse(line).map_err(|e| format!("token file {}, line {}: {e}", path.display(), n + 1))?);
        }
        Ok(tokens)
    }
}

fn digest(secret: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(secret.as_bytes()).into()
}

fn parse_digest(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

pub struct AppState {
    pub store: Store,
    pub reconciler: Arc<Reconciler>,
    pub tokens: Vec<ApiToken>,
    /// Per-cluster host tokens (`kafka-bootstrap` reading its cluster's broker properties).
    pub host_tokens: Arc<crate::credentials::HostTokens>,
    pub preview_zk: tokio::sync::Mutex<Option<zookeeper_client::Client>>,
    /// The store's revision, polled: long-polling binding watches wake on it, on every instance
    /// (a standby sees the leader's and other instances' writes this way).
    pub revisions: tokio::sync::watch::Receiver<i64>,
    /// Last bootstrap servers read per cluster: served when ZooKeeper cannot be read.
    pub servers: std::sync::Mutex<BTreeMap<String, Vec<String>>>,
    /// A KRaft cluster's vouched brokers and when they were read: DescribeCluster is a broker
    /// round trip, so bindings asked within [`KRAFT_SERVERS_TTL`] share one.
    pub kraft_servers: std::sync::Mutex<BTreeMap<String, (std::time::Instant, Vec<String>)>>,
    /// The hosts each cluster's provider last listed, and when (bindings check brokers against them).
    pub hosts: std::sync::Mutex<BTreeMap<String, (std::time::Instant, Vec<fleet_api::model::ObservedHost>)>>,
    pub limits: ApiLimits,
}

/// Bounds on what clients may make the API keep, and defaults of what it starts.
#[derive(Clone, Copy, Debug)]
pub struct ApiLimits {
    /// Live client instances per token (each reports every few seconds).
    pub max_client_instances: i64,
    /// The replication throttle (bytes/s per broker) of a decommission an apply starts.
    pub apply_decommission_throttle: Option<u64>,
    /// How long a client report counts after it was sent (a client that stops reporting has gone).
    pub report_ttl_ms: i64,
}

impl Default for ApiLimits {
    fn default() -> Self {
        Self { max_client_instances: 5000, apply_decommission_throttle: Some(50 << 20), report_ttl_ms: clients::REPORT_TTL_MS }
    }
}

impl AppState {
    /// The API's state, with the task that follows the store's revision (it ends with the state).
    pub fn new(store: Store, reconciler: Arc<Reconciler>, tokens: Vec<ApiToken>, host_tokens: Arc<crate::credentials::HostTokens>, limits: ApiLimits) -> Arc<Self> {
        let (tx, rx) = tokio::sync::watch::channel(0);
        let polled = store.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !tx.is_closed() {
                tick.tick().await;
                if let Ok(revision) = polled.revision().await {
                    tx.send_if_modified(|r| std::mem::replace(r, revision) != revision);
                }
            }
        });
        Arc::new(Self {
            store,
            reconciler,
            tokens,
            host_tokens,
            preview_zk: tokio::sync::Mutex::new(None),
            revisions: rx,
            servers: std::sync::Mutex::new(BTreeMap::new()),
            kraft_servers: std::sync::Mutex::new(BTreeMap::new()),
            hosts: std::sync::Mutex::new(BTreeMap::new()),
            limits,
        })
    }
}

type Shared = Arc<AppState>;


#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl ApiError {
    fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> Self {
        Self { status, body: ErrorBody { error: error.into(), message: message.into(), field: None, resource: None } }
    }
    fn field(e: FieldError) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: ErrorBody { error: "invalid".into(), message: e.to_string(), field: Some(e.field), resource: e.resource },
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { .. } => ApiError::new(StatusCode::NOT_FOUND, "not-found", e.to_string()),
            StoreError::Conflict { ref resource, .. } => {
                let mut err = ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string());
                err.body.resource = Some(resource.clone());
                err
            }
            // A document naming a cluster that is not declared: the cluster is what is missing.
            StoreError::Undeclared(f) => {
                let mut err = ApiError::new(StatusCode::NOT_FOUND, "not-found", f.message.clone());
                err.body.field = Some(f.field);
                err.body.resource = f.resource;
                err
            }
            StoreError::Invalid(f) => ApiError::field(f),
            StoreError::Unreadable { .. } => {
                tracing::error!(error = %e, "unreadable stored data");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "store-unreadable", e.to_string())
            }
            StoreError::Db(_) | StoreError::BadUrl(_) | StoreError::FileMode(_) | StoreError::Fenced { .. } | StoreError::CancelRequested { .. } => {
                tracing::error!(error = %e, "store error answering a request");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store-unavailable", e.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

#[derive(OpenApi)]
#[openapi(
    info(title = "kafka-fleet fleet manager", description = "Declarative control plane for a fleet of Kafka clusters."),
    paths(health, apply, plan_preview, plan_current, list_clusters, get_cluster, delete_cluster, list_topics, list_cluster_topics,
          get_topic, delete_topic, list_routes, get_route, delete_route, journal, broker_properties,
          operations::scale_up, operations::decommission, operations::rebalance, operations::roll, operations::list, operations::get, operations::approve, operations::cancel, failover::failover, failover::fallback, failover::hold, failover::release, failover::release_standby,
          clients::binding, clients::report, clients::list),
    components(schemas(ErrorBody, ApplyResult, ResourceView, JournalEntry, Plan, spec::ClusterSpec, spec::TopicSpec, ApplyResponse, Health,
          fleet_api::operation::Operation, fleet_api::operation::OperationResponse, fleet_api::operation::ScaleUpRequest,
          fleet_api::operation::DecommissionRequest, fleet_api::operation::RebalanceRequest, fleet_api::operation::RollRequest,
          fleet_api::operation::FailoverRequest, fleet_api::operation::FallbackRequest, fleet_api::route::RouteStatus,
          fleet_api::route::Hold, failover::HoldRequest, failover::ReleasedStandby, fleet_api::spec::SpecOverride,
          fleet_api::client::RouteBinding, fleet_api::client::ClientReport, fleet_api::client::ClientView)),
    modifiers(&BearerAuth, &Contract)
)]
pub struct ApiDoc;

struct BearerAuth;
impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
    }
}

pub fn router(state: Shared) -> Router {
    let v1 = Router::new()
        .route("/apply", post(apply))
        .route("/plan", post(plan_preview).get(plan_current))
        .route("/clusters", get(list_clusters))
        .route("/clusters/{name}", get(get_cluster).delete(delete_cluster))
        .route("/clusters/{name}/topics", get(list_cluster_topics))
        .route("/clusters/{name}/topics/{topic}", get(get_topic).delete(delete_topic))
        .route("/clusters/{name}/brokers/{id}/properties", get(broker_properties))
        .route("/topics", get(list_topics))
        .route("/routes", get(list_routes))
        .route("/routes/{name}", get(get_route).delete(delete_route))
        .route("/routes/{name}/binding", get(clients::binding))
        .route("/routes/{name}/hold", post(failover::hold).delete(failover::release))
        .route("/routes/{name}/release-standby", post(failover::release_standby))
        .route("/clients", get(clients::list))
        .route("/clients/reports", post(clients::report))
        .route("/journal", get(journal))
        .route("/operations", get(operations::list))
        .route("/operations/scale-up", post(operations::scale_up))
        .route("/operations/decommission", post(operations::decommission))
        .route("/operations/rebalance", post(operations::rebalance))
        .route("/operations/roll", post(operations::roll))
        .route("/operations/failover", post(failover::failover))
        .route("/operations/fallback", post(failover::fallback))
        .route("/operations/{id}", get(operations::get))
        .route("/operations/{id}/approve", post(operations::approve))
        .route("/operations/{id}/cancel", post(operations::cancel))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not-found", "no such API path; see /openapi.json") })
        .layer(middleware::from_fn_with_state(state.clone(), authorize));
    Router::new()
        .route("/healthz", get(health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(|| async { Json(ApiDoc::openapi()) }))
        .nest("/v1", v1)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), count_requests))
        .with_state(state)
}

/// Counts requests by method, matched route and status. Labels come from closed sets (the known
/// methods, the router's own route templates), never from what a client sent: an unauthenticated
/// request must not be able to grow `/metrics`.
async fn count_requests(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let method = match *request.method() {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    };
    let route = request.extensions().get::<axum::extract::MatchedPath>().map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    state
        .reconciler
        .metrics
        .http_requests
        .get_or_create(&crate::metrics::HttpLabels { method: method.to_string(), route, status: response.status().as_u16().to_string() })
        .inc();
    response
}

/// What a request needs of its token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Needs {
    Read,
    Write,
    /// Reading a route's binding: any token.
    Binding,
    /// Sending a client report: client or write.
    Report,
}

fn needs(method: &Method, path: &str) -> Needs {
    // Nested under /v1: the prefix may or may not have been stripped.
    let path = path.strip_prefix("/v1").unwrap_or(path);
    let read = matches!(*method, Method::GET | Method::HEAD);
    if read && path.starts_with("/routes/") && path.ends_with("/binding") {
        Needs::Binding
    } else if path == "/clients/reports" && *method == Method::POST {
        Needs::Report
    } else if read || path.ends_with("/plan") {
        Needs::Read
    } else {
        Needs::Write
    }
}

fn allowed(scope: Scope, needs: Needs) -> Result<(), &'static str> {
    match (scope, needs) {
        (Scope::Write, _) | (_, Needs::Binding) | (Scope::Read, Needs::Read) | (Scope::Client, Needs::Report) => Ok(()),
        (Scope::Client, _) => Err("has the client scope: it may read route bindings and send client reports, nothing else"),
        (Scope::Read, Needs::Report) => Err("has the read scope; client reports need a client (or write) token"),
        (Scope::Read, Needs::Write) => Err("has the read scope only; this needs write"),
    }
}

/// Bearer auth: 401 without a known token, 403 when the token's scope does not cover the request.
async fn authorize(State(state): State<Shared>, headers: HeaderMap, mut request: Request, next: Next) -> Response {
    let needs = needs(request.method(), request.uri().path());
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let Some(presented) = presented else {
        let mut r = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "send Authorization: Bearer <token> (fleetctl: set FLEET_TOKEN)")
            .into_response();
        r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        return r;
    };
    if presented.starts_with(crate::credentials::HOST_TOKEN_PREFIX) {
        let unknown = || ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "the host token is not one this fleet manager issued for a cluster that exists").into_response();
        let Some(cluster) = crate::credentials::HostTokens::claimed_cluster(presented).map(str::to_string) else {
            return unknown();
        };
        // Bound to the cluster's identity: a token of a deleted cluster does not open a new one
        // of the same name.
        let uid = match state.store.get(Kind::KafkaCluster, &cluster).await {
            Ok(r) => r.uid,
            Err(StoreError::NotFound { .. }) => return unknown(),
            Err(e) => return ApiError::from(e).into_response(),
        };
        if !state.host_tokens.verify(presented, &cluster, &uid) {
            return unknown();
        }
        if !host_may(request.method(), request.uri().path(), &cluster) {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("a host token of cluster `{cluster}` may read that cluster's broker properties (GET /v1/clusters/{cluster}/brokers/<id>/properties), nothing else"),
            )
            .into_response();
        }
        request.extensions_mut().insert(Actor(format!("host:{cluster}")));
        request.extensions_mut().insert(Caller { token: format!("host:{cluster}"), scope: Scope::Read, routes: RouteScope::None, host: true });
        return next.run(request).await;
    }
    let presented_digest = digest(presented);
    // Every configured token is compared (no early exit on a match).
    let token = state.tokens.iter().fold(None, |found, t| if constant_time_eq(&t.digest, &presented_digest) { Some(t) } else { found });
    let Some(token) = token else {
        return ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "the bearer token is not known to this fleet manager").into_response();
    };
    if let Err(why) = allowed(token.scope, needs) {
        return ApiError::new(StatusCode::FORBIDDEN, "forbidden", format!("token `{}` {why}", token.name)).into_response();
    }
    request.extensions_mut().insert(Actor(format!("api:{}", token.name)));
    request.extensions_mut().insert(Caller { token: token.name.clone(), scope: token.scope, routes: token.routes.clone(), host: false });
    next.run(request).await
}

/// Who is calling, as the handlers that scope answers by caller need it.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    /// The token's configured name (`host:<cluster>` for a host token).
    pub token: String,
    pub scope: Scope,
    pub routes: RouteScope,
    /// A broker host's token (it reads its own cluster's properties, secrets included).
    pub host: bool,
}

impl Caller {
    /// Whether this caller sees secrets (password-type broker configs): write tokens and the
    /// cluster's own hosts.
    pub fn sees_secrets(&self) -> bool {
        self.scope == Scope::Write || self.host
    }
}

/// A host token's one permission: GET its own cluster's broker properties.
fn host_may(method: &Method, path: &str, cluster: &str) -> bool {
    let path = path.strip_prefix("/v1").unwrap_or(path);
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    *method == Method::GET && matches!(parts.as_slice(), ["clusters", c, "brokers", id, "properties"] if *c == cluster && id.parse::<i32>().is_ok())
}

#[derive(Clone)]
struct Actor(String);


#[utoipa::path(get, path = "/healthz", responses((status = 200, body = Health)))]
async fn health(State(state): State<Shared>) -> Result<Json<Health>, ApiError> {
    let revision = state.store.revision().await?;
    Ok(Json(Health { status: "ok".into(), leader: state.reconciler.is_leader(), identity: state.reconciler.identity.clone(), revision }))
}

async fn metrics(State(state): State<Shared>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.reconciler.metrics.encode())
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ApplyQuery {
    #[serde(default)]
    dry_run: Option<bool>,
    /// Accept that a cluster's new priority class changes topics that inherit it.
    #[serde(default)]
    confirm_class_change: Option<bool>,
    /// Accept that a lower broker count retires brokers through a decommission.
    #[serde(default)]
    confirm_decommission: Option<bool>,
}


/// JSON Schema counts `292.0` as an integer: such numbers are read as integers.
fn integral_numbers(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15) {
                *v = serde_json::Value::from(f as i64);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(integral_numbers),
        serde_json::Value::Object(map) => map.values_mut().for_each(integral_numbers),
        _ => {}
    }
}

fn body_not_json(e: impl std::fmt::Display) -> ApiError {
    let mut err = ApiError::new(StatusCode::BAD_REQUEST, "bad-request", format!("the body is not JSON: {e}"));
    err.body.field = Some("(body)".into());
    err
}

/// A JSON body read field by field, so an error names the field.
fn parse_json<T: serde::de::DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    let body = body.map_err(|e| ApiError::new(e.status(), "bad-request", e.body_text()))?;
    let mut value: serde_json::Value = fleet_api::json::from_slice_strict(&body).map_err(body_not_json)?;
    integral_numbers(&mut value);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        ApiError::field(FieldError::new(if field == "." { "(body)".to_string() } else { field }, e.inner().to_string()))
    })
}

/// Parses a body: a JSON object `{"resources": [...]}`, a JSON array, one JSON document, or a
/// YAML stream (`Content-Type: application/yaml`).
fn parse_body(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Vec<Declared>, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            let mut err = ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too-large", format!("the body is larger than {MAX_BODY_BYTES} bytes: split the batch"));
            err.body.field = Some("(body)".into());
            err
        } else {
            ApiError::new(e.status(), "bad-request", e.body_text())
        }
    })?;
    let text = std::str::from_utf8(&body).map_err(|_| {
        let mut e = ApiError::new(StatusCode::BAD_REQUEST, "bad-request", "the body is not UTF-8");
        e.body.field = Some("(body)".into());
        e
    })?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
    let values: Vec<serde_json::Value> = if content_type.contains("yaml") {
        spec::parse_yaml_documents(text).map_err(|e| ApiError { status: StatusCode::BAD_REQUEST, ..ApiError::field(e) })?
    } else {
        let mut value: serde_json::Value = fleet_api::json::from_str_strict(text).map_err(body_not_json)?;
        integral_numbers(&mut value);
        match value {
            serde_json::Value::Array(items) => items,
            serde_json::Value::Object(mut map) if map.contains_key("resources") => {
                if map.len() != 1 {
                    let extra = map.keys().find(|k| *k != "resources").cloned().unwrap_or_default();
                    return Err(ApiError::field(FieldError::new(extra, "unknown field: the body has only `resources`")));
                }
                match map.remove("resources") {
                    Some(serde_json::Value::Array(items)) => items,
                    _ => return Err(ApiError::field(FieldError::new("resources", "must be a list of documents"))),
                }
            }
            other => vec![other],
        }
    };
    if values.is_empty() {
        return Err(ApiError::field(FieldError::new("resources", "no documents given")));
    }
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            spec::validate_value(v).map_err(|e| {
                let mut err = ApiError::field(e);
                if err.body.resource.is_none() {
                    err.body.resource = Some(format!("document {}", i + 1));
                }
                err
            })
        })
        .collect()
}

#[utoipa::path(post, path = "/v1/apply", params(("dryRun" = Option<bool>, Query, description = "validate and report, write nothing"),
        ("confirmClassChange" = Option<bool>, Query, description = "accept that a cluster's new priority class changes the retention or min.insync.replicas of topics that inherit it"),
        ("confirmDecommission" = Option<bool>, Query, description = "accept that a lower brokers retires the highest brokers through a decommission (created with the spec, in one write)")),
    request_body(content = Object, description = "{resources: [documents]}, a list, one document, or YAML"),
    responses((status = 200, body = ApplyResponse), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
async fn apply(
    State(state): State<Shared>,
    query: Result<Query<ApplyQuery>, axum::extract::rejection::QueryRejection>,
    actor: Option<axum::Extension<Actor>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<ApplyResponse> {
    let Query(query) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad-request", e.body_text()))?;
    let batch = parse_body(&headers, body)?;
    let dry_run = query.dry_run.unwrap_or(false);
    let actor = actor.map(|a| a.0 .0).unwrap_or_else(|| "api".into());
    let options = crate::store::ApplyOptions {
        dry_run,
        confirm_class_change: query.confirm_class_change.unwrap_or(false),
        confirm_decommission: query.confirm_decommission.unwrap_or(false),
    };
    // A brokerConfig value Kafka would refuse is refused here, naming the key, before anything is
    // written (Kafka's own check, through a broker of the cluster; skipped when none answers).
    validate_broker_config(&state, &batch).await?;
    // Fewer brokers (confirmed): planned first; the decommission is created with the spec, in the
    // same write, and the count is held until it has retired the brokers.
    let decommissions = if options.confirm_decommission { operations::decommissions_for_apply(&state, &batch).await? } else { Vec::new() };
    let effects = crate::store::ApplyEffects { decommissions: if dry_run { Vec::new() } else { decommissions.clone() } };
    let (results, ids) = state.store.apply_with(&batch, &actor, options, effects).await?;
    let started = if dry_run {
        decommissions.iter().map(|(c, s)| format!("(dry run) decommission of {c}: brokers {:?} leave", s.leaving)).chain(ids).collect()
    } else {
        state.reconciler.wake.notify_one();
        ids
    };
    let mut revisions: BTreeMap<String, i64> = BTreeMap::new();
    for r in results.iter().filter(|r| r.kind != Kind::Route) {
        let e = revisions.entry(r.cluster.clone()).or_default();
        *e = (*e).max(r.revision);
    }
    Ok(Json(ApplyResponse { dry_run, results, revisions, operations: started }))
}

/// Asks Kafka to check (validate only) each dynamic brokerConfig value the batch changes.
async fn validate_broker_config(state: &AppState, batch: &[spec::Declared]) -> Result<(), ApiError> {
    for d in batch {
        let DeclaredSpec::KafkaCluster(new) = &d.spec else { continue };
        let Ok(stored) = state.store.get(Kind::KafkaCluster, &d.name).await else { continue };
        let DeclaredSpec::KafkaCluster(was) = &stored.declared.spec else { continue };
        let Some(rollout) = fleet_api::operation::RolloutSpec::between(&spec::effective_cluster(&d.name, was).broker_config, &spec::effective_cluster(&d.name, new).broker_config) else {
            continue;
        };
        let writes = crate::operations::rollout::admin_writes(&rollout);
        if writes.iter().all(|w| w.value.is_none()) {
            continue;
        }
        let Some(zk) = preview_client(state).await else { continue };
        let kafka = state.reconciler.paths.cluster(&d.name).kafka();
        let Ok(brokers) = crate::operations::rollout::live::registered(&zk, &kafka).await else { continue };
        match crate::operations::rollout::live::validate(&brokers, &writes).await {
            Ok(Some((key, why))) => {
                let mut e = ApiError::field(FieldError::new(format!("spec.brokerConfig.{key}"), format!("Kafka refuses it: {why}")));
                e.body.resource = Some(d.display());
                return Err(e);
            }
            Ok(None) => {}
            Err(why) => tracing::warn!(cluster = %d.name, error = %why, "brokerConfig not checked with Kafka; the rollout checks it"),
        }
    }
    Ok(())
}

async fn preview_client(state: &AppState) -> Option<zookeeper_client::Client> {
    let mut guard = state.preview_zk.lock().await;
    if let Some(c) = guard.as_ref() {
        if c.state() == zookeeper_client::SessionState::SyncConnected {
            return Some(c.clone());
        }
    }
    // A preview answers quickly with "unknown" observations rather than hang on a ZooKeeper outage.
    let connector = state.reconciler.zk_connector.clone().with_deadline(std::time::Duration::from_secs(2));
    match connector.connect(&state.reconciler.zk_address).await {
        Ok(c) => {
            *guard = Some(c.clone());
            Some(c)
        }
        Err(e) => {
            tracing::warn!(error = %e, "plan preview without ZooKeeper");
            None
        }
    }
}

#[utoipa::path(post, path = "/v1/plan", request_body(content = Object, description = "documents as for /v1/apply"),
    responses((status = 200, body = [Plan])), security(("bearer" = [])))]
async fn plan_preview(State(state): State<Shared>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> ApiResult<Vec<Plan>> {
    let batch = parse_body(&headers, body)?;
    // Validate as apply would, then plan the stored state with the batch laid over it.
    state.store.apply(&batch, "plan", true).await?;
    validate_broker_config(&state, &batch).await?;
    let mut all = state.store.list(None, None).await?;
    let clusters: Vec<String> = batch
        .iter()
        .map(|d| match &d.spec {
            DeclaredSpec::KafkaCluster(_) => d.name.clone(),
            DeclaredSpec::Topic(t) => t.cluster.clone(),
            DeclaredSpec::Route(r) => r.cluster.clone(),
        })
        .collect();
    // What a changed brokerConfig would do to the running brokers, per key.
    let mut config_changes: BTreeMap<String, Vec<fleet_api::operation::ConfigChange>> = BTreeMap::new();
    for d in &batch {
        let DeclaredSpec::KafkaCluster(new) = &d.spec else { continue };
        let Some(DeclaredSpec::KafkaCluster(was)) = all.iter().find(|r| r.kind() == Kind::KafkaCluster && r.key() == d.key()).map(|r| &r.declared.spec) else { continue };
        if let Some(r) = fleet_api::operation::RolloutSpec::between(&spec::effective_cluster(&d.name, was).broker_config, &spec::effective_cluster(&d.name, new).broker_config) {
            config_changes.insert(d.name.clone(), r.changes);
        }
    }
    for d in batch {
        all.retain(|r| !(r.kind() == d.kind() && r.key() == d.key()));
        all.push(StoredResource {
            user: d.clone(),
            overrides: Default::default(),
            cluster: String::new(),
            generation: 0,
            revision: i64::MAX,
            uid: String::new(),
            created_ms: 0,
            updated_ms: 0,
            deleting: false,
            declared: d,
        });
    }
    let desired: Vec<_> = controller::desired_from(&all).into_iter().filter(|d| clusters.contains(&d.spec.name)).collect();
    let zk = preview_client(&state).await;
    let mut plans = state.reconciler.preview(zk.as_ref(), desired).await;
    for p in plans.iter_mut() {
        if let Some(changes) = config_changes.remove(&p.cluster) {
            p.config_changes = changes;
        }
    }
    Ok(Json(plans))
}

#[utoipa::path(get, path = "/v1/plan", responses((status = 200, body = [Plan])), security(("bearer" = [])))]
async fn plan_current(State(state): State<Shared>) -> ApiResult<Vec<Plan>> {
    let desired = controller::desired_state(&state.store).await?;
    let zk = preview_client(&state).await;
    Ok(Json(state.reconciler.preview(zk.as_ref(), desired).await))
}


async fn view(state: &AppState, r: StoredResource, clusters: &BTreeMap<String, spec::ClusterSpec>, with_status: bool) -> ResourceView {
    let effective = match &r.declared.spec {
        DeclaredSpec::KafkaCluster(s) => Some(EffectiveSpec::Cluster(spec::effective_cluster(&r.declared.name, s))),
        DeclaredSpec::Topic(t) => spec::effective_topic(&r.declared.name, t, clusters.get(&t.cluster)).ok().map(EffectiveSpec::Topic),
        DeclaredSpec::Route(_) => None,
    };
    let status = if with_status && r.kind() == Kind::KafkaCluster {
        match state.store.status(&r.declared.name).await {
            Ok(Some(v)) => serde_json::from_value::<ClusterStatus>(v)
                .map_err(|e| tracing::warn!(cluster = %r.declared.name, error = %e, "stored status unreadable"))
                .ok(),
            _ => None,
        }
    } else {
        None
    };
    let (route_status, hold, triggers) = match &r.declared.spec {
        DeclaredSpec::Route(spec) => {
            let (stored, hold, triggers) = state
                .store
                .route_extras(&r.declared.name)
                .await
                .map_err(|e| tracing::warn!(route = %r.declared.name, error = %e, "route status unreadable"))
                .unwrap_or_default();
            (Some(route_status(state, &r.declared.name, spec, stored.unwrap_or_default()).await), hold, triggers)
        }
        _ => (None, None, None),
    };
    ResourceView {
        route_status,
        hold,
        triggers,
        kind: r.kind(),
        name: r.declared.name.clone(),
        cluster: (r.kind() != Kind::KafkaCluster).then(|| r.cluster.clone()),
        generation: r.generation,
        revision: r.revision,
        uid: r.uid.clone(),
        created_ms: r.created_ms,
        updated_ms: r.updated_ms,
        deleting: r.deleting,
        document: r.user.to_document(),
        overrides: r.overrides.values().cloned().collect(),
        effective,
        status,
        partitions: None,
    }
}

/// A route's status as served: the stored one (or `Normal` on its cluster) with its clients
/// counted per cluster.
async fn route_status(state: &AppState, name: &str, spec: &spec::DeclaredRouteSpec, stored: fleet_api::route::RouteStatus) -> fleet_api::route::RouteStatus {
    // Where the traffic is: the status's cluster (a route never moved has none: its spec's).
    let cluster = if stored.cluster.is_empty() { spec.cluster.clone() } else { stored.cluster.clone() };
    let mut status = fleet_api::route::RouteStatus { cluster, ..stored };
    let mut tallies: BTreeMap<String, fleet_api::route::ClientTally> = BTreeMap::new();
    for c in state.store.client_reports(Some(name)).await.unwrap_or_default() {
        let t = tallies.entry(c.report.cluster.clone()).or_insert_with(|| fleet_api::route::ClientTally { cluster: c.report.cluster.clone(), ..Default::default() });
        match c.report.role {
            fleet_api::client::ClientRole::Producer => t.producers += 1,
            fleet_api::client::ClientRole::Consumer => {
                t.consumers += 1;
                t.drained += u32::from(c.report.consumer.as_ref().is_some_and(|s| s.drained));
            }
        }
    }
    status.clients = tallies.into_values().collect();
    status
}

async fn cluster_specs(store: &Store) -> Result<BTreeMap<String, spec::ClusterSpec>, StoreError> {
    Ok(store
        .list(Some(Kind::KafkaCluster), None)
        .await?
        .into_iter()
        .filter_map(|r| match &r.declared.spec {
            DeclaredSpec::KafkaCluster(s) => Some((r.declared.name.clone(), spec::effective_cluster(&r.declared.name, s))),
            _ => None,
        })
        .collect())
}

async fn list_views(state: &AppState, kind: Kind, cluster: Option<&str>, with_status: bool) -> Result<Vec<ResourceView>, ApiError> {
    let clusters = cluster_specs(&state.store).await?;
    let mut out = Vec::new();
    for r in state.store.list(Some(kind), cluster).await? {
        out.push(view(state, r, &clusters, with_status).await);
    }
    Ok(out)
}

fn check_cluster_name(name: &str) -> Result<(), ApiError> {
    check_name_field(name, "name")
}

/// A cluster name given in `field` (a path segment or a query parameter, named as the caller sent it).
fn check_name_field(name: &str, field: &str) -> Result<(), ApiError> {
    fleet_common::paths::validate_cluster_name(name).map_err(|m| ApiError::field(FieldError::new(field, fleet_common::kafka_config::shown(&m))))
}

/// Password-type broker configs (`sasl.jaas.config`, `ssl.keystore.password`, ...) shown as
/// [`spec::HIDDEN_VALUE`] to callers that may not write: a read token is a dashboard's.
fn redact_secrets(view: &mut ResourceView, caller: Option<&Caller>) {
    if caller.is_some_and(Caller::sees_secrets) {
        return;
    }
    let secret = |k: &str| fleet_common::kafka_config::key_type(k) == Some(fleet_common::kafka_config::ConfigType::Password);
    if let Some(config) = view.document.spec.get_mut("brokerConfig").and_then(|c| c.as_object_mut()) {
        for (k, v) in config.iter_mut() {
            if secret(k) {
                *v = serde_json::Value::String(spec::HIDDEN_VALUE.into());
            }
        }
    }
    if let Some(EffectiveSpec::Cluster(c)) = view.effective.as_mut() {
        for (k, v) in c.broker_config.iter_mut() {
            if secret(k) {
                *v = spec::HIDDEN_VALUE.into();
            }
        }
    }
}

#[utoipa::path(get, path = "/v1/clusters", responses((status = 200, body = [ResourceView])), security(("bearer" = [])))]
async fn list_clusters(State(state): State<Shared>, caller: Option<axum::Extension<Caller>>) -> ApiResult<Vec<ResourceView>> {
    let mut views = list_views(&state, Kind::KafkaCluster, None, true).await?;
    views.iter_mut().for_each(|v| redact_secrets(v, caller.as_deref()));
    Ok(Json(views))
}

#[utoipa::path(get, path = "/v1/clusters/{name}", params(("name" = String, Path)), responses((status = 200, body = ResourceView), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
async fn get_cluster(State(state): State<Shared>, Path(name): Path<String>, caller: Option<axum::Extension<Caller>>) -> ApiResult<ResourceView> {
    check_cluster_name(&name)?;
    let r = state.store.get(Kind::KafkaCluster, &name).await?;
    let clusters = cluster_specs(&state.store).await?;
    let mut view = view(&state, r, &clusters, true).await;
    redact_secrets(&mut view, caller.as_deref());
    Ok(Json(view))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    #[serde(default)]
    generation: Option<i64>,
    /// Make every check a delete makes, and write nothing.
    #[serde(default, rename = "dryRun")]
    dry_run: Option<bool>,
}


async fn do_delete(
    state: &AppState,
    kind: Kind,
    key: &str,
    actor: Option<axum::Extension<Actor>>,
    query: Result<Query<DeleteQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<DeleteResponse>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad-request", e.body_text()))?;
    let actor = actor.map(|a| a.0 .0).unwrap_or_else(|| "api".into());
    let dry_run = query.dry_run.unwrap_or(false);
    let revision = state.store.delete_checked(kind, key, &actor, query.generation, dry_run).await?;
    if !dry_run {
        state.reconciler.wake.notify_one();
    }
    Ok(Json(DeleteResponse { revision, dry_run }))
}

#[utoipa::path(delete, path = "/v1/clusters/{name}", params(("name" = String, Path), ("generation" = Option<i64>, Query), ("dryRun" = Option<bool>, Query)),
    responses((status = 200), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)), security(("bearer" = [])))]
async fn delete_cluster(
    State(state): State<Shared>,
    Path(name): Path<String>,
    actor: Option<axum::Extension<Actor>>,
    query: Result<Query<DeleteQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<DeleteResponse>, ApiError> {
    check_cluster_name(&name)?;
    do_delete(&state, Kind::KafkaCluster, &name, actor, query).await
}

#[utoipa::path(get, path = "/v1/topics", responses((status = 200, body = [ResourceView])), security(("bearer" = [])))]
async fn list_topics(State(state): State<Shared>) -> ApiResult<Vec<ResourceView>> {
    Ok(Json(list_views(&state, Kind::Topic, None, false).await?))
}

#[utoipa::path(get, path = "/v1/clusters/{name}/topics", params(("name" = String, Path)), responses((status = 200, body = [ResourceView])), security(("bearer" = [])))]
async fn list_cluster_topics(State(state): State<Shared>, Path(name): Path<String>) -> ApiResult<Vec<ResourceView>> {
    check_cluster_name(&name)?;
    state.store.get(Kind::KafkaCluster, &name).await?;
    Ok(Json(list_views(&state, Kind::Topic, Some(&name), false).await?))
}

#[utoipa::path(get, path = "/v1/clusters/{name}/topics/{topic}", params(("name" = String, Path), ("topic" = String, Path)),
    responses((status = 200, body = ResourceView), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
async fn get_topic(State(state): State<Shared>, Path((name, topic)): Path<(String, String)>) -> ApiResult<ResourceView> {
    check_cluster_name(&name)?;
    let r = state.store.get(Kind::Topic, &spec::topic_key(&name, &topic)).await?;
    let clusters = cluster_specs(&state.store).await?;
    let mut v = view(&state, r, &clusters, false).await;
    // Read live, as `kafka-topics --describe` would: leaders and ISR are Kafka's, not the store's.
    let kafka = state.reconciler.paths.cluster(&name).kafka();
    v.partitions = Some(match preview_client(&state).await {
        Some(zk) => match crate::operations::reassign::live::topic_partitions(&zk, &kafka, &topic).await {
            Ok(p) => fleet_api::model::Seen::Known(p),
            Err(e) => fleet_api::model::Seen::Unknown(e),
        },
        None => fleet_api::model::Seen::Unknown("ZooKeeper cannot be reached".into()),
    });
    Ok(Json(v))
}

#[utoipa::path(delete, path = "/v1/clusters/{name}/topics/{topic}", params(("name" = String, Path), ("topic" = String, Path), ("generation" = Option<i64>, Query), ("dryRun" = Option<bool>, Query)),
    responses((status = 200), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
async fn delete_topic(
    State(state): State<Shared>,
    Path((name, topic)): Path<(String, String)>,
    actor: Option<axum::Extension<Actor>>,
    query: Result<Query<DeleteQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<DeleteResponse>, ApiError> {
    check_cluster_name(&name)?;
    do_delete(&state, Kind::Topic, &spec::topic_key(&name, &topic), actor, query).await
}

#[utoipa::path(get, path = "/v1/routes", responses((status = 200, body = [ResourceView])), security(("bearer" = [])))]
async fn list_routes(State(state): State<Shared>) -> ApiResult<Vec<ResourceView>> {
    Ok(Json(list_views(&state, Kind::Route, None, false).await?))
}

#[utoipa::path(get, path = "/v1/routes/{name}", params(("name" = String, Path)), responses((status = 200, body = ResourceView), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
async fn get_route(State(state): State<Shared>, Path(name): Path<String>) -> ApiResult<ResourceView> {
    let r = state.store.get(Kind::Route, &name).await?;
    let clusters = cluster_specs(&state.store).await?;
    Ok(Json(view(&state, r, &clusters, false).await))
}

#[utoipa::path(delete, path = "/v1/routes/{name}", params(("name" = String, Path), ("generation" = Option<i64>, Query), ("dryRun" = Option<bool>, Query)), responses((status = 200), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
async fn delete_route(
    State(state): State<Shared>,
    Path(name): Path<String>,
    actor: Option<axum::Extension<Actor>>,
    query: Result<Query<DeleteQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<DeleteResponse>, ApiError> {
    do_delete(&state, Kind::Route, &name, actor, query).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JournalQuery {
    #[serde(default)]
    cluster: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    before: Option<i64>,
}

#[utoipa::path(get, path = "/v1/journal", params(("cluster" = Option<String>, Query), ("limit" = Option<i64>, Query), ("before" = Option<i64>, Query)),
    responses((status = 200, body = [JournalEntry])), security(("bearer" = [])))]
async fn journal(State(state): State<Shared>, query: Result<Query<JournalQuery>, axum::extract::rejection::QueryRejection>) -> ApiResult<Vec<JournalEntry>> {
    let Query(q) = query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad-request", e.body_text()))?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError { status: StatusCode::BAD_REQUEST, ..ApiError::field(FieldError::new("limit", format!("{limit} is out of range: use 1..=1000"))) });
    }
    if let Some(c) = &q.cluster {
        check_name_field(c, "cluster")?;
    }
    Ok(Json(state.store.journal(q.cluster.as_deref(), limit, q.before).await?))
}

#[derive(Serialize)]
struct PropertiesBody {
    properties: BTreeMap<String, String>,
}

/// What `kafka-bootstrap` fetches as its top layer: the cluster's declared broker config.
#[utoipa::path(get, path = "/v1/clusters/{name}/brokers/{id}/properties", params(("name" = String, Path), ("id" = i32, Path)),
    responses((status = 200, description = "{properties: {key: value}}"), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
async fn broker_properties(
    State(state): State<Shared>,
    Path((name, id)): Path<(String, String)>,
    caller: Option<axum::Extension<Caller>>,
) -> Result<Json<PropertiesBody>, ApiError> {
    check_cluster_name(&name)?;
    let id: i32 = id.parse().map_err(|_| ApiError::field(FieldError::new("id", format!("`{id}` is not a broker ID (an integer >= 0)"))))?;
    if id < 0 {
        return Err(ApiError::field(FieldError::new("id", "broker IDs are >= 0")));
    }
    let r = state.store.get(Kind::KafkaCluster, &name).await?;
    let DeclaredSpec::KafkaCluster(s) = &r.declared.spec else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not-found", "not a cluster"));
    };
    let mut properties = spec::effective_cluster(&name, s).broker_config;
    if !caller.as_deref().is_some_and(Caller::sees_secrets) {
        for (k, v) in properties.iter_mut() {
            if fleet_common::kafka_config::key_type(k) == Some(fleet_common::kafka_config::ConfigType::Password) {
                *v = spec::HIDDEN_VALUE.into();
            }
        }
    }
    Ok(Json(PropertiesBody { properties }))
}

#[cfg(test)]
mod tests;
