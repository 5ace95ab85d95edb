//! # Crossroads server
//!
//! The thin layer around `bot-core`: the [`intake`] every transport hands work to,
//! the [`chat`] seam transports implement, the Slack transport (axum routes for the
//! Events API, interactivity and slash commands, Socket Mode, the Web API client),
//! the console, the demo, and health/readiness/metrics and the `/api/v1` routes.
//! The engine itself lives in [`bot_core`].
//!
//! ```no_run
//! # async fn run(bot: bot_core::Bot) -> anyhow::Result<()> {
//! use bot_server::{serve, ServeConfig};
//! let config = ServeConfig::from_env("127.0.0.1:3000".parse()?, &bot_core::config::process_env)?;
//! serve(config, bot).await?;
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

pub mod chat;
pub mod config;
pub mod console;
pub mod demo;
pub mod intake;
pub mod metrics;
pub mod reload;
pub mod routes;
pub mod server;
pub mod slack;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use bot_core::config::Secret;
use bot_core::Bot;

pub use chat::ReplySink;
pub use config::{ServeConfig, ServeConfigError};
pub use intake::{Accepted, Delivery, InFlight, Intake};
pub use metrics::Metrics;
pub use server::{serve, ServeError, Server};
pub use slack::socket_mode::serve_socket_mode;
pub use slack::webapi::{WebApi, WebApiError};
pub use slack::Slack;

/// Shared state of the HTTP routes; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The Slack transport (and through it the intake and the bot).
    pub slack: Slack,
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
        let intake = Intake::new(bot, metrics, config.max_in_flight);
        let slack = Slack::new(intake, web).with_progress_interval(config.progress_interval);
        if let Some(id) = &config.bot_user_id {
            slack.set_bot_user(id.clone());
        }
        Ok(Self {
            slack,
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
        .route("/slack/events", post(slack::routes::events))
        .route("/slack/interactions", post(slack::routes::interactions))
        .route("/slack/commands", post(slack::routes::commands))
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
