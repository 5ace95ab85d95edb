//! The state the HTTP routes share: the Slack transport (and through it the intake
//! and the bot), secrets, readiness and the shutdown drain.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::FromRef;
use bot_core::config::Secret;
use bot_core::Bot;

use crate::config::ServeConfig;
use crate::intake::Intake;
use crate::rate_limit::ApiRateLimit;
use crate::slack::routes::SlackHttp;
use crate::slack::socket_mode::SocketStatus;
use crate::slack::webapi::{WebApi, WebApiError};
use crate::slack::Slack;

/// Shared state of the HTTP routes; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The Slack transport (and through it the intake and the bot).
    pub slack: Slack,
    /// `SLACK_SIGNING_SECRET`; Slack routes answer 503 without it.
    pub signing_secret: Option<Secret>,
    /// Whether the server is serving (not starting, not shutting down).
    pub ready: Arc<AtomicBool>,
    /// Whether the state store answered its last ping.
    pub store_ok: Arc<AtomicBool>,
    /// In Socket Mode, its open connections: `/readyz` answers 503 while there are none.
    pub socket_mode: Option<SocketStatus>,
    /// On shutdown, how long to wait for work in flight.
    pub drain_timeout: std::time::Duration,
    /// `CROSSROADS_API_TOKEN`; `POST /api/v1/notify` answers 503 without it.
    pub api_token: Option<Secret>,
    /// Per-token limit of `POST /api/v1/chart` and `/api/v1/notify`; `None`: none.
    pub api_limit: Option<Arc<ApiRateLimit>>,
    /// `GET /api/v1/status` per client address.
    pub status_limit: Option<Arc<ApiRateLimit>>,
    /// The status board's live picture (`GET /board`, `GET /api/v1/events`).
    pub board: crate::monitor::board::Board,
    /// Event streams open now, and how many may be.
    pub streams: Arc<std::sync::atomic::AtomicUsize>,
    /// `CROSSROADS_MAX_STREAMS`.
    pub max_streams: usize,
    /// When this replica started (`GET /api/v1/stats`).
    pub started: std::time::SystemTime,
    /// The outbox transport the monitor's announcements go to: `slack` (the
    /// default), or `console` for a demo without Slack.
    pub announce_via: String,
}

impl AppState {
    /// State for `bot` with the secrets, Web API URL and limits of `config`.
    pub fn new(config: &ServeConfig, bot: Bot) -> Result<Self, WebApiError> {
        let metrics = config.metrics.clone().unwrap_or_default();
        let web = WebApi::new(
            config.api_base(),
            config.bot_token.clone(),
            metrics.clone(),
            config.api_timeout,
            config.max_attempts.min(4),
        )?;
        let intake =
            Intake::new(bot, metrics, config.max_in_flight).with_admit_wait(config.admit_wait);
        let slack = Slack::new(intake, web)
            .with_teams(config.teams.clone())
            .with_chat_rate(config.chat_rate)
            .with_progress_interval(config.progress_interval)
            .with_delivery_attempts(config.max_attempts);
        if let Some(id) = &config.bot_user_id {
            slack.set_bot_user(id.clone());
        }
        Ok(Self {
            slack,
            signing_secret: config.signing_secret.clone(),
            ready: Arc::new(AtomicBool::new(false)),
            store_ok: Arc::new(AtomicBool::new(true)),
            socket_mode: None,
            drain_timeout: config.drain_timeout,
            api_token: config.api_token.clone(),
            api_limit: config.api_rate.map(|r| Arc::new(ApiRateLimit::new(r))),
            status_limit: config.status_rate.map(|r| Arc::new(ApiRateLimit::new(r))),
            board: crate::monitor::board::Board::new(),
            streams: Arc::default(),
            max_streams: config.max_streams,
            started: std::time::SystemTime::now(),
            announce_via: crate::slack::courier::TRANSPORT.to_owned(),
        })
    }
}

impl AppState {
    /// Why `/readyz` answers 503 now, if it does: starting or shutting down, the
    /// state store not answering, or in Socket Mode no connection open.
    pub fn not_ready(&self) -> Option<&'static str> {
        if !self.ready.load(Ordering::Relaxed) {
            return Some("not ready: starting or shutting down");
        }
        if !self.store_ok.load(Ordering::Relaxed) {
            return Some("not ready: the state store is unavailable");
        }
        match &self.socket_mode {
            Some(sockets) if sockets.open() == 0 => {
                Some("not ready: no Socket Mode connection is open")
            }
            _ => None,
        }
    }
}

impl FromRef<AppState> for SlackHttp {
    fn from_ref(state: &AppState) -> SlackHttp {
        SlackHttp {
            slack: state.slack.clone(),
            signing_secret: state.signing_secret.clone(),
        }
    }
}
