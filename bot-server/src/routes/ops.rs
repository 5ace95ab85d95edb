//! Operational routes: `/healthz`, `/readyz`, `/metrics`, and the JSON 404/405 answers.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::errors::error;
use crate::state::AppState;

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Response {
    axum::Json(serde_json::json!({ "ok": true })).into_response()
}

/// `GET /readyz`: 200 once the server is serving, 503 while starting or shutting
/// down, and in Socket Mode while no connection to Slack is open.
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.not_ready() {
        None => axum::Json(serde_json::json!({ "ok": true })).into_response(),
        Some(why) => error(StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

/// `GET /metrics`: Prometheus text exposition.
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.slack.metrics().render(),
    )
        .into_response()
}

/// Unknown path.
pub async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such route")
}

/// Known path, wrong method.
pub async fn method_not_allowed() -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this route",
    )
}

/// Counts every answer by route and status.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = match req
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
    {
        Some("/slack/events") => "/slack/events",
        Some("/slack/interactions") => "/slack/interactions",
        Some("/slack/commands") => "/slack/commands",
        Some("/healthz") => "/healthz",
        Some("/readyz") => "/readyz",
        Some("/metrics") => "/metrics",
        Some("/api/v1/status") => "/api/v1/status",
        Some("/api/v1/notify") => "/api/v1/notify",
        Some("/board") => "/board",
        Some("/api/v1/events") => "/api/v1/events",
        Some("/api/v1/stats") => "/api/v1/stats",
        _ => "other",
    };
    let res = next.run(req).await;
    state.slack.metrics().request(route, res.status().as_u16());
    res
}
