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
use crate::store::{ReportOutcome, StoredResource};
use fleet_api::client::{acks_for, ClientReport, ClientView, ClusterAddress, RouteBinding, RoutePhase, TopicBinding};

/// The longest a watch may wait: below common proxy and load-balancer idle timeouts.
pub const MAX_WAIT_MS: u64 = 60_000;
/// A client that stops reporting is listed this long after its last report (the default of
/// `--client-report-ttl-secs`).
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

fn check_route_name(name: &str, field: &str) -> Result<(), ApiError> {
    fleet_common::paths::validate_cluster_name(name)
        .map_err(|m| ApiError::field(FieldError::new(field, fleet_common::kafka_config::shown(&m.replace("cluster name", "route name")))))
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
    check_route_name(&name, "name")?;
    let wait = query.wait_ms.unwrap_or(0);
    if wait > MAX_WAIT_MS {
        return Err(ApiError::field(FieldError::new("waitMs", format!("{wait} is above {MAX_WAIT_MS}: wait at most a minute and ask again"))));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_millis(wait);
    let mut revisions = state.revisions.clone();
    loop {
        revisions.borrow_and_update();
        let route = state.store.get(Kind::Route, &name).await?;
        let status = state.store.route_status_of(&name).await?;
        if query.after != Some(binding_generation(&route, status.as_ref())) || tokio::time::Instant::now() >= deadline {
            return Ok(Json(bind(&state, &route, status.as_ref()).await?));
        }
        tokio::select! {
            changed = revisions.changed() => if changed.is_err() { tokio::time::sleep_until(deadline).await },
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// The generation a route's binding has: it changes whenever the route's spec or its status
/// (where its traffic is) is written.
pub(super) fn binding_generation(route: &StoredResource, status: Option<&fleet_api::route::RouteStatus>) -> i64 {
    route.revision.max(status.map_or(0, |s| s.revision))
}

/// The cluster a route's traffic goes to: where its status says it is (a failover moved it),
/// else (never moved) the cluster its spec names.
pub(super) fn bound_cluster(spec: &spec::DeclaredRouteSpec, status: Option<&fleet_api::route::RouteStatus>) -> String {
    status.map(|s| s.cluster.clone()).filter(|c| !c.is_empty()).unwrap_or_else(|| spec.cluster.clone())
}

async fn bind(state: &Shared, route: &StoredResource, status: Option<&fleet_api::route::RouteStatus>) -> Result<RouteBinding, ApiError> {
    let DeclaredSpec::Route(r) = &route.declared.spec else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not-found", "not a route"));
    };
    let bound = bound_cluster(r, status);
    let resources = state.store.list(None, Some(&bound)).await?;
    let cluster = resources.iter().find_map(|c| match &c.declared.spec {
        DeclaredSpec::KafkaCluster(s) if c.declared.name == bound => Some(spec::effective_cluster(&bound, s)),
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
    let bootstrap_servers = servers(state, &bound, cluster.as_ref()).await?;
    let (phase, next, previous) = match status {
        Some(fleet_api::route::RouteStatus { switch: Some(sw), .. }) => {
            let phase = if sw.sealed { RoutePhase::Sealed } else { RoutePhase::Switching };
            (phase, None, Some(address(state, &sw.from).await))
        }
        Some(fleet_api::route::RouteStatus { warming: Some(next), .. }) if *next != bound => (RoutePhase::Warming, Some(address(state, next).await), None),
        _ => (RoutePhase::Steady, None, None),
    };
    /// How many of the clusters a route left are named to consumers.
    const LEFT: usize = 4;
    let mut left = Vec::new();
    if let Some(st) = status {
        for c in st.sealed.iter().rev().take(LEFT).rev().filter(|c| **c != bound) {
            left.push(address(state, c).await);
        }
    }
    Ok(RouteBinding {
        route: route.declared.name.clone(),
        cluster: bound,
        bootstrap_servers,
        generation: binding_generation(route, status),
        phase,
        topics,
        next,
        previous,
        left,
    })
}

/// Another cluster of a switch, as clients are told of it: its servers, or none when they
/// cannot be listed now (the cluster left may be down; the switch goes on without it).
async fn address(state: &Shared, cluster: &str) -> ClusterAddress {
    let spec = state.store.get(Kind::KafkaCluster, cluster).await.ok().and_then(|c| match &c.declared.spec {
        DeclaredSpec::KafkaCluster(s) => Some(spec::effective_cluster(cluster, s)),
        _ => None,
    });
    let bootstrap_servers = servers(state, cluster, spec.as_ref()).await.unwrap_or_default();
    ClusterAddress { cluster: cluster.to_string(), bootstrap_servers }
}

/// How long the hosts a provider listed are reused for bindings (a long poll answers many).
const HOSTS_TTL: Duration = Duration::from_secs(5);

/// The cluster's hosts as its provider lists them, cached for [`HOSTS_TTL`].
async fn provider_hosts(state: &Shared, cluster: &str, spec: Option<&spec::ClusterSpec>) -> Result<Vec<fleet_api::model::ObservedHost>, String> {
    {
        let cache = state.hosts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, hosts)) = cache.get(cluster) {
            if at.elapsed() < HOSTS_TTL {
                return Ok(hosts.clone());
            }
        }
    }
    let spec = spec.ok_or_else(|| format!("cluster `{cluster}` is not declared"))?;
    let provider = state.reconciler.hosts.get(spec.provider).ok_or_else(|| format!("provider {:?} is not configured on this fleet manager", spec.provider))?;
    state.reconciler.metrics.provider_call("hosts:list");
    let hosts = provider.list(cluster).await.map_err(|e| e.to_string())?;
    state.hosts.lock().unwrap_or_else(|p| p.into_inner()).insert(cluster.to_string(), (std::time::Instant::now(), hosts.clone()));
    Ok(hosts)
}

/// How long a KRaft cluster's vouched brokers are served without asking again.
const KRAFT_SERVERS_TTL: std::time::Duration = std::time::Duration::from_secs(2);

/// The cluster's brokers that the fleet vouches for (its registry, its hosts and Kafka's
/// registrations agree), or the last ones served when they cannot be read now.
async fn servers(state: &Shared, cluster: &str, spec: Option<&spec::ClusterSpec>) -> Result<Vec<String>, ApiError> {
    let kraft = spec.is_some_and(|s| s.is_kraft());
    if kraft {
        let fresh = state.kraft_servers.lock().unwrap_or_else(|p| p.into_inner()).get(cluster).filter(|(at, _)| at.elapsed() < KRAFT_SERVERS_TTL).map(|(_, s)| s.clone());
        if let Some(list) = fresh {
            return Ok(list);
        }
    }
    let read = match (preview_client(state).await, provider_hosts(state, cluster, spec).await) {
        // No ZooKeeper registrations: Kafka's own (DescribeCluster), unfenced brokers only.
        (Some(zk), Ok(hosts)) if kraft => {
            let read = crate::observe::vouched_kraft_servers(&zk, &state.reconciler.paths.cluster(cluster), &hosts).await;
            if let Ok((list, _)) = &read {
                if !list.is_empty() {
                    state.kraft_servers.lock().unwrap_or_else(|p| p.into_inner()).insert(cluster.to_string(), (std::time::Instant::now(), list.clone()));
                }
            }
            read
        }
        // The fleet's registry unreadable: the provider's running broker hosts (what the fleet
        // launched), as before Kafka's own view was asked.
        (None, Ok(hosts)) if kraft => {
            Ok((crate::observe::host_endpoints(&hosts, &[fleet_api::model::HostRole::Broker, fleet_api::model::HostRole::Combined]), Vec::new()))
        }
        (Some(zk), Ok(hosts)) => crate::observe::vouched_bootstrap_servers(&zk, &state.reconciler.paths.cluster(cluster), &hosts).await,
        (None, _) => Err("ZooKeeper unreachable".to_string()),
        (_, Err(e)) => Err(format!("its hosts cannot be listed: {e}")),
    };
    let read = read.map(|(servers, refused)| {
        for why in &refused {
            tracing::warn!(cluster, refused = %why, "a broker registration is not served to clients");
        }
        servers
    });
    let mut cache = state.servers.lock().unwrap_or_else(|p| p.into_inner());
    match read {
        Ok(list) if !list.is_empty() => {
            cache.insert(cluster.to_string(), list.clone());
            Ok(list)
        }
        outcome => {
            let why = match outcome {
                Err(e) => e,
                Ok(_) => "no broker the fleet vouches for is registered".into(),
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

/// Stores a client instance's report; it is listed for 30 seconds unless renewed. A report is
/// taken only for a route the token may report for, naming clusters that route has been bound
/// to, and for an instance this token (with its credential) reported first.
#[utoipa::path(post, path = "/v1/clients/reports", request_body(content = ClientReport),
    params(("X-Fleet-Instance-Credential" = Option<String>, Header, description = "the credential the instance's first report was answered with")),
    responses((status = 200, body = ClientView), (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody),
        (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody), (status = 422, body = super::ErrorBody),
        (status = 429, body = super::ErrorBody, description = "the token has its maximum of live instances")),
    security(("bearer" = [])))]
pub(super) async fn report(
    State(state): State<Shared>,
    caller: Option<axum::Extension<super::Caller>>,
    headers: axum::http::HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<ClientView> {
    let report: ClientReport = super::parse_json(body)?;
    report.check().map_err(|(field, message)| ApiError::field(FieldError::new(field, message)))?;
    let Some(axum::Extension(caller)) = caller else {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "send Authorization: Bearer <token>"));
    };
    if !caller.routes.allows(&report.route) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", format!("token `{}` may not report for route `{}` (its routes are set in the token file: client=ROUTES)", caller.token, report.route)));
    }
    let route = state.store.get(Kind::Route, &report.route).await?;
    let DeclaredSpec::Route(spec) = &route.declared.spec else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not-found", "not a route"));
    };
    let (status, _, _) = state.store.route_extras(&report.route).await?;
    let bound = bound_clusters(&spec.cluster, status.as_ref());
    for (field, cluster) in report.named_clusters() {
        if !bound.iter().any(|b| b == cluster) {
            return Err(ApiError::field(FieldError::new(
                field,
                format!("`{cluster}` is not a cluster route `{}` has been bound to ({})", report.route, bound.join(", ")),
            )));
        }
    }
    let credential = headers.get(fleet_api::client::INSTANCE_CREDENTIAL_HEADER).and_then(|v| v.to_str().ok());
    match state.store.put_client_report(&report, state.limits.report_ttl_ms, &caller.token, credential, state.limits.max_client_instances).await? {
        ReportOutcome::Stored(view) => Ok(Json(view)),
        ReportOutcome::Forbidden(why) => Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", why)),
        ReportOutcome::TooMany(why) => Err(ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too-many-instances", why)),
    }
}

/// The clusters a route has been bound to: its home cluster, the one in use, its standby and
/// both ends of its last move.
fn bound_clusters(home: &str, status: Option<&fleet_api::route::RouteStatus>) -> Vec<String> {
    let mut out = vec![home.to_string()];
    if let Some(s) = status {
        let last = s.last_move.as_ref();
        for c in [Some(&s.cluster), s.standby.as_ref(), last.map(|m| &m.from), last.map(|m| &m.to)].into_iter().flatten() {
            if !c.is_empty() && !out.contains(c) {
                out.push(c.clone());
            }
        }
    }
    out
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
        check_route_name(r, "route")?;
    }
    Ok(Json(state.store.client_reports(query.route.as_deref()).await?))
}
