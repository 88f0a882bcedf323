//! A failover or fallback request checked against the store and the healthcheck, for the API and
//! for automatic triggers alike: every guard rail here, each refusal naming its field.

use fleet_api::operation::{BuildSpec, FailoverRequest, FailoverSpec, FallbackRequest, OperationSpec, SwitchRequest};
use fleet_api::route::{RouteState, RouteStatus};

use crate::observe::health::HealthJudge;
use crate::spec::{DeclaredClusterSpec, DeclaredRouteSpec, DeclaredSpec, FieldError, Kind, MAX_BROKERS};
use crate::store::{Store, StoreError};

/// Producers get this long to move, then consumers to drain, unless told otherwise.
pub const DEFAULT_DEADLINE_SECS: i64 = 60;

/// Why a request is refused (the API answers 404, 409 and 422 for the first three).
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("{0}")]
    NotFound(FieldError),
    #[error("{0}")]
    Conflict(FieldError),
    #[error("{0}")]
    Invalid(FieldError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: &str, message: impl Into<String>) -> Refusal {
    Refusal::Invalid(FieldError::new(field, message))
}

/// The route, its spec and its status (a route never moved is `Normal` on its declared cluster).
pub async fn route(store: &Store, name: &str) -> Result<(DeclaredRouteSpec, RouteStatus), Refusal> {
    fleet_common::paths::validate_cluster_name(name).map_err(|m| invalid("route", m.replace("cluster name", "route name")))?;
    let r = match store.get(Kind::Route, name).await {
        Ok(r) => r,
        Err(StoreError::NotFound { .. }) => return Err(Refusal::NotFound(FieldError::new("route", format!("`{name}` is not declared (fleetctl get routes lists them)")))),
        Err(e) => return Err(e.into()),
    };
    let DeclaredSpec::Route(spec) = r.declared.spec else { return Err(Refusal::NotFound(FieldError::new("route", format!("`{name}` is not a route")))) };
    let status = store.route_status_of(name).await?.unwrap_or_default();
    // Where the traffic is now: the status's cluster, or (never moved) the spec's.
    let cluster = if status.cluster.is_empty() { spec.cluster.clone() } else { status.cluster.clone() };
    let status = RouteStatus { cluster, clients: Vec::new(), ..status };
    Ok((spec, status))
}

async fn cluster(store: &Store, field: &str, name: &str) -> Result<DeclaredClusterSpec, Refusal> {
    fleet_common::paths::validate_cluster_name(name).map_err(|m| invalid(field, m))?;
    let r = match store.get(Kind::KafkaCluster, name).await {
        Ok(r) => r,
        Err(StoreError::NotFound { .. }) => return Err(Refusal::NotFound(FieldError::new(field, format!("cluster `{name}` is not declared (fleetctl get clusters lists them)")))),
        Err(e) => return Err(e.into()),
    };
    if r.deleting {
        return Err(Refusal::Conflict(FieldError::new(field, format!("cluster `{name}` is being deleted"))));
    }
    match r.declared.spec {
        DeclaredSpec::KafkaCluster(s) if s.is_kraft() => Err(Refusal::Conflict(FieldError::new(field, crate::operations::kraft_refusal("a failover or fallback", name, &s.kafka_version)))),
        DeclaredSpec::KafkaCluster(s) => Ok(s),
        _ => Err(Refusal::NotFound(FieldError::new(field, format!("`{name}` is not a cluster")))),
    }
}

fn switch_settings(pace: &SwitchRequest, default_reason: &str) -> Result<(u64, String), Refusal> {
    let deadline = pace.deadline_secs.unwrap_or(DEFAULT_DEADLINE_SECS);
    if !(1..=3600).contains(&deadline) {
        return Err(invalid("deadlineSecs", format!("{deadline} is out of range: give 1 to 3600 seconds")));
    }
    let reason = pace.reason.clone().unwrap_or_else(|| default_reason.to_string());
    if reason.chars().count() > 200 || reason.chars().any(char::is_control) {
        return Err(invalid("reason", "must be at most 200 printable characters"));
    }
    Ok((deadline as u64 * 1000, reason))
}

/// A target under maintenance (a scale-up, decommission or rebalance running on it) is no place
/// to send a route's traffic: refused with the operation named.
async fn refuse_maintained(store: &Store, field: &str, cluster: &str) -> Result<(), Refusal> {
    let busy = store.operations(Some(cluster), true).await?;
    if let Some(op) = busy.iter().find(|o| !o.is_emergency()) {
        return Err(Refusal::Conflict(FieldError::new(
            field,
            format!(
                "cluster `{cluster}` is under maintenance: {} ({}, {}); wait for it or cancel it (fleetctl cancel operation {}), or build a fresh cluster (--build)",
                op.id,
                op.spec.kind(),
                op.status.phase.as_str(),
                op.id
            ),
        )));
    }
    Ok(())
}

/// The highest replication factor among the cluster's topics: a target needs that many brokers.
async fn max_replication(store: &Store, cluster: &str) -> Result<u32, Refusal> {
    let resources = store.list(None, Some(cluster)).await?;
    let spec = resources.iter().find_map(|r| match &r.declared.spec {
        DeclaredSpec::KafkaCluster(c) if r.declared.name == cluster => Some(crate::spec::effective_cluster(cluster, c)),
        _ => None,
    });
    Ok(resources
        .iter()
        .filter(|r| !r.deleting)
        .filter_map(|r| match &r.declared.spec {
            DeclaredSpec::Topic(t) => crate::spec::effective_topic(&r.declared.name, t, spec.as_ref()).ok().map(|t| u32::from(t.replication_factor)),
            _ => None,
        })
        .max()
        .unwrap_or(1))
}

fn refuse_moving(route: &str, status: &RouteStatus) -> Result<(), Refusal> {
    if status.phase != RouteState::Normal && status.phase != RouteState::FailedOver {
        return Err(Refusal::Conflict(FieldError::new(
            "route",
            format!(
                "route `{route}` is {} (operation {}): wait for it to end (fleetctl get operations) or cancel it",
                status.phase.as_str(),
                status.operation.as_deref().unwrap_or("-")
            ),
        )));
    }
    Ok(())
}

/// A checked failover: the cluster it runs on (the one the route leaves) and its spec.
pub async fn failover(store: &Store, health: &dyn HealthJudge, req: &FailoverRequest) -> Result<(String, OperationSpec), Refusal> {
    let (route_spec, status) = route(store, &req.route).await?;
    let (deadline_ms, reason) = switch_settings(&req.pace, "failover asked for")?;
    if req.to.is_some() && req.build {
        return Err(invalid("build", "give either `to` (a standby) or `build`, not both"));
    }
    if req.to.is_some() && req.size_up.is_some() {
        return Err(invalid("sizeUp", "only a build is sized up: drop `to`, or scale the standby up first"));
    }
    let from = status.cluster.clone();
    refuse_moving(&req.route, &status)?;
    let source = cluster(store, "route", &from).await?;
    let (to, build) = match &req.to {
        Some(to) => {
            if *to == from {
                return Err(invalid("to", format!("route `{}` is already on `{to}`: name another cluster, or build one (--build)", req.route)));
            }
            let target = cluster(store, "to", to).await?;
            refuse_maintained(store, "to", to).await?;
            let needed = max_replication(store, &from).await?;
            if (target.brokers.max(0) as u32) < needed {
                return Err(invalid(
                    "to",
                    format!("`{to}` has {} broker(s), fewer than the replication factor {needed} of the route's topics: scale it up, or build one", target.brokers),
                ));
            }
            match health.judge(to).await {
                Ok(v) if v.healthy => {}
                Ok(v) => return Err(invalid("to", format!("`{to}` is unhealthy ({}): fail over to a healthy cluster, or build one (--build)", v.summary))),
                Err(e) => return Err(invalid("to", format!("the health of `{to}` cannot be told ({e}): never failed over to blindly; retry, or build one (--build)"))),
            }
            (Some(to.clone()), None)
        }
        None => {
            let size_up = req.size_up.unwrap_or(0);
            let brokers = source.brokers + size_up;
            if size_up < 0 || brokers > MAX_BROKERS {
                return Err(invalid("sizeUp", format!("{size_up} is out of range: give 0 to {}", MAX_BROKERS - source.brokers)));
            }
            (None, Some(BuildSpec { source: from.clone(), brokers: brokers as u32 }))
        }
    };
    let spec = FailoverSpec { route: req.route.clone(), from: from.clone(), to, build, deadline_ms, reason, retain: route_spec.retain(), replaces: None, prior: status };
    Ok((from, OperationSpec::Failover(spec)))
}

/// A checked fallback: back to the route's standby (or, with `rebuild`, a fresh build of it).
pub async fn fallback(store: &Store, req: &FallbackRequest) -> Result<(String, OperationSpec), Refusal> {
    let (route_spec, status) = route(store, &req.route).await?;
    let (deadline_ms, reason) = switch_settings(&req.pace, "fallback asked for")?;
    refuse_moving(&req.route, &status)?;
    let Some(standby) = status.standby.clone() else {
        return Err(Refusal::Conflict(FieldError::new(
            "route",
            format!("route `{}` has no standby to fall back to (it never failed over, or its standby was torn down): fail over instead", req.route),
        )));
    };
    let from = status.cluster.clone();
    cluster(store, "route", &from).await?;
    let original = cluster(store, "route", &standby).await?;
    if !req.rebuild {
        refuse_maintained(store, "route", &standby).await?;
    }
    let (to, build, replaces) = if req.rebuild {
        (None, Some(BuildSpec { source: standby.clone(), brokers: original.brokers.max(1) as u32 }), Some(standby.clone()))
    } else {
        (Some(standby.clone()), None, None)
    };
    let spec = FailoverSpec { route: req.route.clone(), from: from.clone(), to, build, deadline_ms, reason, retain: route_spec.retain(), replaces, prior: status };
    Ok((from, OperationSpec::Fallback(spec)))
}
