//! The bound HTTP server: bind (port 0 allowed), report the address, serve until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bot_core::config::Secret;
use bot_core::Bot;
use tokio::net::TcpListener;

use crate::config::ServeConfig;
use crate::conn::{self, HttpLimits};
use crate::router::app;
use crate::slack::socket_mode::{SocketMode, SocketModeError, SocketStatus};
use crate::slack::webapi::WebApiError;
use crate::state::AppState;
use crate::workers::Workers;

/// After the drain, how long open HTTP connections get to finish.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// A server bound to its port, not yet serving.
pub struct Server {
    listener: TcpListener,
    state: AppState,
    limits: HttpLimits,
    socket_mode: Option<(Secret, usize)>,
}

impl Server {
    /// Binds `addr` (`127.0.0.1:0` picks a free port).
    pub async fn bind(addr: SocketAddr, state: AppState) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Self {
            listener,
            state,
            limits: HttpLimits::default(),
            socket_mode: None,
        })
    }

    /// Serves under these timeouts and connection cap (default [`HttpLimits::default`]).
    pub fn limits(mut self, limits: HttpLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Also takes Slack's work over Socket Mode while serving: `connections`
    /// websockets opened with the app-level token (`/readyz` answers 503 while none
    /// is open).
    pub fn socket_mode(mut self, app_token: Secret, connections: usize) -> Self {
        self.state.socket_mode = Some(SocketStatus::new());
        self.socket_mode = Some((app_token, connections));
        self
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The state shared with the routes.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then shuts down gracefully: `/readyz`
    /// answers 503 at once, Socket Mode connections close (Slack sends their work to
    /// other connections), and new Slack work is refused (503, so Slack delivers it
    /// elsewhere or later) while the HTTP side keeps answering; the work in flight
    /// is awaited up to [`AppState::drain_timeout`] (what is still running then is
    /// logged); then the listener closes.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let state = self.state.clone();
        let workers = Workers::start(&state);
        state.ready.store(true, Ordering::Relaxed);
        let sockets = match (self.socket_mode, &state.socket_mode) {
            (Some((token, connections)), Some(status)) => Some(SocketMode::start(
                state.slack.clone(),
                token,
                connections,
                status.clone(),
            )),
            _ => None,
        };
        let (close, closed) = tokio::sync::oneshot::channel::<()>();
        let mut serving = tokio::spawn(conn::serve(
            self.listener,
            app(self.state),
            self.limits,
            async move {
                let _ = closed.await;
            },
        ));
        tokio::select! {
            () = shutdown => {}
            ended = &mut serving => {
                if let Some(sockets) = sockets {
                    sockets.close().await;
                }
                return joined(ended);
            }
        }
        state.ready.store(false, Ordering::Relaxed);
        if let Some(sockets) = sockets {
            tracing::info!("shutting down: closing Socket Mode");
            sockets.close().await;
        }
        let intake = state.slack.intake();
        intake.stop_accepting();
        let running = intake.in_flight().len();
        if running > 0 {
            tracing::info!(
                running,
                drain_secs = state.drain_timeout.as_secs(),
                "shutting down: waiting for the work in flight"
            );
        }
        if !intake.drain(state.drain_timeout).await {
            for task in intake.in_flight() {
                tracing::warn!(
                    task = %task.what,
                    running_secs = task.running_for.as_secs(),
                    "shut down with this still running"
                );
            }
        }
        workers.stop(&intake.bot().store()).await;
        let _ = close.send(());
        match tokio::time::timeout(CLOSE_TIMEOUT, &mut serving).await {
            Ok(ended) => joined(ended),
            Err(_) => {
                tracing::warn!("HTTP connections still open after the drain; closing them");
                serving.abort();
                Ok(())
            }
        }
    }

    /// Serves until Ctrl-C or SIGTERM.
    pub async fn run(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }
}

/// The HTTP server task's result.
fn joined(ended: Result<std::io::Result<()>, tokio::task::JoinError>) -> std::io::Result<()> {
    ended.map_err(std::io::Error::other)?
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Why the server could not start, or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Nothing could be verified without the signing secret.
    #[error("SLACK_SIGNING_SECRET is not set; Slack requests could not be verified")]
    NoSigningSecret,
    /// The Web API client could not be built.
    #[error(transparent)]
    WebApi(#[from] WebApiError),
    /// The address could not be bound.
    #[error("cannot listen: {0}")]
    Bind(std::io::Error),
    /// Serving failed.
    #[error("the HTTP server stopped: {0}")]
    Serve(std::io::Error),
    /// Socket Mode could not start.
    #[error(transparent)]
    SocketMode(#[from] SocketModeError),
}

/// Serves the Slack HTTP endpoints for `bot` on `config.listen` until Ctrl-C/SIGTERM.
/// Refuses to start without `SLACK_SIGNING_SECRET` (nothing could be verified).
pub async fn serve(config: ServeConfig, bot: Bot) -> Result<(), ServeError> {
    if config.signing_secret.is_none() {
        return Err(ServeError::NoSigningSecret);
    }
    install_crypto_provider();
    let state = AppState::new(&config, bot)?;
    let learner = state.slack.clone();
    tokio::spawn(async move { learner.learn_bot_user().await });
    let server = Server::bind(config.listen, state)
        .await
        .map_err(ServeError::Bind)?
        .limits(config.http);
    tracing::info!(addr = %server.local_addr().map_err(ServeError::Bind)?, "serving Slack endpoints");
    server.run().await.map_err(ServeError::Serve)
}

/// Runs Socket Mode with `SLACK_APP_TOKEN` (`config.socket_connections`
/// connections) until Ctrl-C or SIGTERM, and serves `/healthz`, `/readyz` and
/// `/metrics` (plus the Slack HTTP routes) on `config.listen`. On shutdown: not ready
/// at once, Socket Mode closed, then the work in flight drained (up to
/// `config.drain_timeout`).
pub async fn serve_socket_mode(config: ServeConfig, bot: Bot) -> Result<(), ServeError> {
    install_crypto_provider();
    let app_token = config
        .app_token
        .clone()
        .ok_or(SocketModeError::NoAppToken)?;
    let state = AppState::new(&config, bot)?;
    state.slack.learn_bot_user().await;
    let server = Server::bind(config.listen, state)
        .await
        .map_err(ServeError::Bind)?
        .limits(config.http)
        .socket_mode(app_token, config.socket_connections);
    tracing::info!(
        addr = %server.local_addr().map_err(ServeError::Bind)?,
        connections = config.socket_connections,
        "serving health and metrics; opening Socket Mode"
    );
    server.run().await.map_err(ServeError::Serve)
}

/// Installs rustls' `ring` provider once (slack-morphism and reqwest both use ring;
/// installing explicitly avoids a panic if another crate ever enables aws-lc-rs).
pub(crate) fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
