//! Slack's way of answering, shared by the Web API and Socket Mode stand-ins: JSON with Slack's content type, `{"ok":false,…}` failures and the scripted-failure dialect.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::fault::Dialect;

/// Slack's way of failing, for scripted answers.
pub(super) const SLACK: Dialect = Dialect {
    status: |status| {
        let error = match status.as_u16() {
            500 => "internal_error",
            502..=504 => "service_unavailable",
            _ => "request_failed",
        };
        json_answer(StatusCode::OK, json!({"ok": false, "error": error}))
    },
    rate_limited: || json_answer(StatusCode::OK, json!({"ok": false, "error": "ratelimited"})),
    error: fail,
};

/// `body` as Slack sends JSON: `application/json; charset=utf-8`.
pub(super) fn json_answer(status: StatusCode, body: Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

/// HTTP 200 `{"ok":false,"error":…}`.
pub(super) fn fail(error: &str) -> Response {
    json_answer(StatusCode::OK, json!({"ok": false, "error": error}))
}
