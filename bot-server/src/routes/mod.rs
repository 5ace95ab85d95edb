//! HTTP routes besides Slack's: health, readiness, metrics and the `/api/v1` contract,
//! and the one-line JSON error answer every route uses.

pub mod api;
pub mod ops;

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
