//! # Crossroads server
//!
//! The thin layer around `bot-core`: the console adapter, the demo, and the Slack side: axum routes for the Events API, interactivity
//! and slash commands (signature-verified), a Slack Web API client, Socket Mode,
//! health/readiness/metrics. The engine itself lives in [`bot_core`].
//!
//! ```no_run
//! # async fn run(bot: bot_core::Bot) -> anyhow::Result<()> {
//! use bot_server::{serve, ServeConfig};
//! let config = ServeConfig::from_env("127.0.0.1:3000".parse()?, &bot_core::config::process_env)?;
//! serve(config, bot).await
//! # }
//! ```
#![warn(missing_docs)]

pub mod config;
pub mod console;
pub mod demo;
pub mod dispatch;
pub mod metrics;
pub mod reload;
pub mod routes;
pub mod server;
pub mod socket_mode;
pub mod webapi;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use bot_core::config::Secret;
use bot_core::Bot;

pub use config::{ServeConfig, ServeConfigError};
pub use dispatch::{Accepted, Dispatcher, InFlight};
pub use metrics::Metrics;
pub use server::{serve, Server};
pub use socket_mode::serve_socket_mode;
pub use webapi::{WebApi, WebApiError};

/// Shared state of the HTTP routes; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Runs requests and delivers replies.
    pub dispatcher: Dispatcher,
    /// `SLACK_SIGNING_SECRET`; Slack routes answer 503 without it.
    pub signing_secret: Option<Secret>,
    /// Whether `/readyz` answers 200.
    pub ready: Arc<AtomicBool>,
    /// On shutdown, how long to wait for work in flight.
    pub drain_timeout: std::time::Duration,
    /// `CROSSROADS_API_TOKEN`; `POST /api/v1/notify` answers 503 without it.
    pub api_token: Option<Secret>,
}

impl AppState {
    /// State for `bot` with the secrets, Web API URL and limits of `config`.
    pub fn new(config: &ServeConfig, bot: Bot) -> Result<Self, WebApiError> {
        let metrics = Metrics::new();
        let web = WebApi::new(
            config.api_base(),
            config.bot_token.clone(),
            metrics.clone(),
            config.api_timeout,
            config.max_attempts,
        )?;
        let dispatcher = Dispatcher::new(bot, web, metrics, config.max_in_flight)
            .with_progress_interval(config.progress_interval);
        if let Some(id) = &config.bot_user_id {
            dispatcher.set_bot_user(id.clone());
        }
        Ok(Self {
            dispatcher,
            signing_secret: config.signing_secret.clone(),
            ready: Arc::new(AtomicBool::new(false)),
            drain_timeout: config.drain_timeout,
            api_token: config.api_token.clone(),
        })
    }
}

/// The router: Slack routes, `/healthz`, `/readyz`, `/metrics`, `/api/v1/*`. Merge it into
/// another axum app to embed Crossroads.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/slack/events", post(routes::slack::events))
        .route("/slack/interactions", post(routes::slack::interactions))
        .route("/slack/commands", post(routes::slack::commands))
        .route("/healthz", get(routes::ops::healthz))
        .route("/readyz", get(routes::ops::readyz))
        .route("/metrics", get(routes::ops::metrics))
        .route("/api/v1/status", get(routes::api::status))
        .route("/api/v1/notify", post(routes::api::notify))
        .fallback(routes::ops::not_found)
        .method_not_allowed_fallback(routes::ops::method_not_allowed)
        .layer(DefaultBodyLimit::max(config::MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            routes::ops::track,
        ))
        .with_state(state)
}
