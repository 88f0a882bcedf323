//! `/metrics` (Prometheus), `/api/figures` (JSON, per broker), and the live dashboard at `/`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::heartbeat::{ClusterFigures, Heartbeat};

const DASHBOARD: &str = include_str!("dashboard.html");

#[derive(Clone)]
pub struct AppState {
    pub heartbeats: Arc<Vec<Arc<Heartbeat>>>,
    pub routes: Arc<Vec<Arc<crate::routes::RouteAudit>>>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(|| async { Html(DASHBOARD) }))
        .route("/api/figures", get(figures))
        .route("/api/history", get(history))
        .route("/api/routes", get(routes))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn figures(State(state): State<AppState>) -> Json<Vec<ClusterFigures>> {
    Json(state.heartbeats.iter().map(|h| h.figures()).collect())
}

async fn routes(State(state): State<AppState>) -> Json<Vec<crate::routes::RouteFigures>> {
    Json(state.routes.iter().map(|r| r.figures()).collect())
}

/// cluster -> the last minutes of per-broker figures, one point per interval.
async fn history(State(state): State<AppState>) -> Json<std::collections::BTreeMap<String, Vec<crate::heartbeat::HistoryPoint>>> {
    Json(state.heartbeats.iter().map(|h| (h.spec().cluster.clone(), h.history())).collect())
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BrokerLabel {
    cluster: String,
    instance: String,
    broker: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
    instance: String,
    cluster: String,
}

type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

/// Built at scrape time from the current figures: a handful of brokers per cluster, so a fresh
/// registry per scrape is cheaper than keeping two copies of the state in step.
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut registry = Registry::with_prefix("kafka_auditor");
    let mut family = |name: &str, help: &str| {
        let f = Family::<BrokerLabel, FloatGauge>::default();
        registry.register(name, help, f.clone());
        f
    };
    let produce = family("produce_availability", "Heartbeats acknowledged / sent, over the window");
    let consume = family("consume_availability", "Heartbeats consumed back / acknowledged, over the window");
    let p50 = family("latency_p50_seconds", "End-to-end heartbeat latency, 50th percentile");
    let p99 = family("latency_p99_seconds", "End-to-end heartbeat latency, 99th percentile");
    let p999 = family("latency_p999_seconds", "End-to-end heartbeat latency, 99.9th percentile");
    let lost = family("records_lost", "Heartbeats never consumed (sequence gaps)");
    let dup = family("records_duplicated", "Heartbeats consumed twice");
    let ooo = family("records_out_of_order", "Heartbeats consumed out of order");
    for c in state.heartbeats.iter().map(|h| h.figures()) {
        for b in &c.brokers {
            let l = BrokerLabel { cluster: c.cluster.clone(), instance: c.instance.clone(), broker: b.broker.to_string() };
            produce.get_or_create(&l).set(b.produce_availability);
            consume.get_or_create(&l).set(b.consume_availability);
            p50.get_or_create(&l).set(b.latency_ms_p50 / 1000.0);
            p99.get_or_create(&l).set(b.latency_ms_p99 / 1000.0);
            p999.get_or_create(&l).set(b.latency_ms_p999 / 1000.0);
            lost.get_or_create(&l).set(b.records_lost as f64);
            dup.get_or_create(&l).set(b.records_duplicated as f64);
            ooo.get_or_create(&l).set(b.records_out_of_order as f64);
        }
    }
    let route_family = |registry: &mut Registry, name: &str, help: &str| {
        let f = Family::<RouteLabel, FloatGauge>::default();
        registry.register(name, help, f.clone());
        f
    };
    let route_sent = route_family(&mut registry, "route_sent", "Route records sent through the client library");
    let route_acked = route_family(&mut registry, "route_acknowledged", "Route records acknowledged, by the cluster that acknowledged them");
    let route_lost = route_family(&mut registry, "route_lost", "Route records acknowledged and never read back");
    let route_dup = route_family(&mut registry, "route_duplicated", "Route records read back more than once");
    let route_p99 = route_family(&mut registry, "route_latency_p99_seconds", "Route records, send to read back, 99th percentile");
    for f in state.routes.iter().map(|r| r.figures()) {
        let l = RouteLabel { route: f.route.clone(), instance: f.instance.clone(), cluster: f.cluster.clone() };
        route_sent.get_or_create(&l).set(f.sent as f64);
        route_lost.get_or_create(&l).set(f.lost as f64);
        route_dup.get_or_create(&l).set(f.duplicated as f64);
        route_p99.get_or_create(&l).set(f.latency_ms_p99 / 1000.0);
        for (cluster, n) in &f.acknowledged_by_cluster {
            route_acked.get_or_create(&RouteLabel { cluster: cluster.clone(), ..l.clone() }).set(*n as f64);
        }
    }
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
        tracing::error!(error = %e, "encoding metrics failed");
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], out)
}
