//! HTTP routes: Slack endpoints, health, readiness, metrics and the `/api/v1` contract.

pub mod api;
pub mod ops;
pub mod slack;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A one-line JSON error answer: `{"error":"…"}`.
pub fn error(status: StatusCode, reason: impl std::fmt::Display) -> Response {
    (
        status,
        axum::Json(serde_json::json!({ "error": reason.to_string() })),
    )
        .into_response()
}
