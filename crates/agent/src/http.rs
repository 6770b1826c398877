//! The agent's HTTP endpoint: `/metrics` for Prometheus and `/healthz`. They expose this node's
//! disk and GC counters only, never the Docker socket or anything that changes the node; with
//! a metrics token, both require `Authorization: Bearer TOKEN`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use subtle::ConstantTimeEq;

use crate::Metrics;

#[derive(Clone)]
pub struct Shared {
    pub metrics: Arc<Metrics>,
    pub engine_up: Arc<AtomicBool>,
    pub token: Option<Arc<str>>,
}

pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(shared)
}

async fn metrics(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(denied) = check_token(&shared, &headers) {
        return denied;
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        shared.metrics.encode(),
    )
        .into_response()
}

async fn healthz(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(denied) = check_token(&shared, &headers) {
        return denied;
    }
    // The agent is healthy while it serves; an unreachable engine is reported, not fatal:
    // restarting the agent would not bring the engine back.
    let engine = if shared.engine_up.load(Ordering::Relaxed) {
        "up"
    } else {
        "unreachable"
    };
    (
        [(header::CONTENT_TYPE, "application/json")],
        format!("{{\"status\":\"ok\",\"engine\":\"{engine}\"}}\n"),
    )
        .into_response()
}

fn check_token(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let expected = shared.token.as_deref()?;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        None
    } else {
        Some(
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "a valid bearer token is required\n",
            )
                .into_response(),
        )
    }
}
