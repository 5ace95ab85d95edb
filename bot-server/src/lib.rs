//! # Crossroads server
//!
//! The thin layer around `bot-core`: the [`intake`] every transport hands work to,
//! the [`chat`] seam transports implement, the Slack transport (axum routes for the
//! Events API, interactivity and slash commands, Socket Mode, the Web API client),
//! the console, the demo, and health/readiness/metrics and the `/api/v1` routes.
//! The engine itself lives in [`bot_core`].
//!
//! ```no_run
//! # async fn run(bot: bot_core::Bot) -> Result<(), Box<dyn std::error::Error>> {
//! use bot_server::{serve, ServeConfig};
//! let config = ServeConfig::from_env("127.0.0.1:3000".parse()?, &bot_core::config::process_env)?;
//! serve(config, bot).await?;
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

pub mod chat;
pub mod config;
pub mod conn;
pub mod console;
pub mod demo;
pub mod errors;
pub mod intake;
mod markers;
pub mod metrics;
pub mod monitor;
pub mod rate_limit;
pub mod reload;
pub mod retry;
pub mod router;
pub mod routes;
pub mod server;
pub mod slack;
pub mod state;
pub mod supervise;
pub mod workers;

pub use chat::ReplySink;
pub use config::{ServeConfig, ServeConfigError};
pub use conn::HttpLimits;
pub use intake::{Accepted, Delivery, InFlight, Intake};
pub use metrics::Metrics;
pub use router::app;
pub use server::{serve, serve_socket_mode, ServeError, Server};
pub use slack::webapi::{WebApi, WebApiError};
pub use slack::Slack;
pub use state::AppState;
