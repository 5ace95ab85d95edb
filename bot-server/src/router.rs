//! The router: every route of the server on one [`AppState`].

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

use crate::config::MAX_BODY_BYTES;
use crate::routes::{api, board, chart, ops};
use crate::slack::routes as slack;
use crate::state::AppState;

/// The router: Slack routes, `/healthz`, `/readyz`, `/metrics`, `/api/v1/*`. Merge it into
/// another axum app to embed Crossroads.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/slack/events", post(slack::events))
        .route("/slack/interactions", post(slack::interactions))
        .route("/slack/commands", post(slack::commands))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/api/v1/status", get(api::status))
        .route("/api/v1/notify", post(api::notify))
        .route("/board", get(board::page))
        .route("/api/v1/events", get(board::events))
        .route("/api/v1/stats", get(api::stats))
        .route("/api/v1/audit", get(api::audit))
        .route("/api/v1/dora", get(api::dora))
        .route("/api/v1/chart", post(chart::chart))
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ops::track,
        ))
        .with_state(state)
}
