//! `GET /health`, `GET /health/{cluster}`, `GET /metrics`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::metrics::Metrics;
use crate::scanner::{Reports, Status};

#[derive(Clone)]
pub struct AppState {
    pub reports: Reports,
    pub metrics: Arc<Metrics>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/health/{cluster}", get(cluster_health))
        .route("/metrics", get(metrics))
        .with_state(state)
}

fn code(status: Status) -> StatusCode {
    if status == Status::Healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// One cluster: its report. Several: the worst status and every report.
async fn health(State(state): State<AppState>) -> Response {
    let reports = state.reports.read().await;
    if reports.len() == 1 {
        if let Some(r) = reports.values().next() {
            return (code(r.status), Json(r)).into_response();
        }
    }
    let worst = reports.values().map(|r| r.status).max().unwrap_or(Status::Unknown);
    let body = serde_json::json!({ "status": worst, "clusters": &*reports });
    (code(worst), Json(body)).into_response()
}

async fn cluster_health(State(state): State<AppState>, Path(cluster): Path<String>) -> Response {
    match state.reports.read().await.get(&cluster) {
        Some(r) => (code(r.status), Json(r)).into_response(),
        None => {
            let body = serde_json::json!({ "error": format!("cluster `{cluster}` is not watched by this healthcheck") });
            (StatusCode::NOT_FOUND, Json(body)).into_response()
        }
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        state.metrics.encode(),
    )
        .into_response()
}
