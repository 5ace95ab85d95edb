//! The one-line JSON error answer every route gives: `{"error":"…"}`.

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
