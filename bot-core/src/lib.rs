//! # Crossroads core
//!
//! The engine of Crossroads, a ChatOps deploy bot for Slack: configuration,
//! lexer, alias resolution, the action registry, safety policy, Block Kit rendering,
//! Slack request verification, and the ports (traits an embedder swaps) with their
//! real adapters. It knows nothing about HTTP servers: hand it a [`Request`], get a
//! [`Reply`].
//!
//! ## Quick start
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use bot_core::ports::{HttpSnapshot, Probe, ProbeError};
//!
//! /// Every instance answers healthy (a real bot probes over HTTP).
//! struct Healthy;
//!
//! #[async_trait::async_trait]
//! impl Probe for Healthy {
//!     async fn get(&self, _url: &str, _timeout: Duration) -> Result<HttpSnapshot, ProbeError> {
//!         Ok(HttpSnapshot {
//!             status: 200,
//!             body: r#"{"status":"ok","version":"1.4.2"}"#.into(),
//!             latency: Duration::from_millis(3),
//!         })
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), bot_core::config::ConfigErrors> {
//! let commands = r#"
//! commands:
//!   health:
//!     phrases: [health, check]
//!     action: health
//!     target: instance
//!     help: Run an instance's health recipe.
//! "#;
//! let instances = r#"
//! environments:
//!   master:
//!     aliases: [rh, prod]
//!     pools:
//!       api:
//!         switch: { type: memory, initial: blue }
//!         members:
//!           blue: { url: "http://127.0.0.1:18081" }
//!           green: { url: "http://127.0.0.1:18082" }
//! "#;
//! let config = bot_core::load_strs(commands, instances)?;
//! let bot = bot_core::Bot::builder(config).probe(Arc::new(Healthy)).build();
//! let reply = bot
//!     .handle(bot_core::Request::text("U012ABC", "health rh blue"))
//!     .await;
//! assert!(reply.to_plain_text().contains("*master api blue* is healthy"));
//! # Ok(())
//! # }
//! ```
//!
//! ## The house
//!
//! | floor | modules |
//! |---|---|
//! | entry | [`engine`] ([`Bot`]: text entry, buttons, the invocation pipeline) |
//! | actions | [`actions`] (the registry and one file per family), [`policy`] |
//! | ground | `context` (what actions stand on), [`rejection`], [`resolve`], [`lexer`], [`slack`], [`render`] |
//! | ports | [`ports`] (traits) and [`adapters`] (real implementations) |
//! | base | [`config`], [`reply`], [`text`], [`failure`] |
#![warn(missing_docs)]

pub mod actions;
pub mod adapters;
pub mod audit;
pub mod chart;
pub mod config;
mod context;
pub mod engine;
pub mod failure;
pub mod lexer;
pub mod markers;
pub mod monitor;
pub mod policy;
pub mod ports;
pub mod rejection;
pub mod render;
pub mod reply;
pub mod resolve;
pub mod runs;
pub mod schedule;
pub mod slack;
pub mod status_cache;
pub mod steps;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod text;

use std::path::Path;

pub use actions::status::{EnvStatus, MemberStatus, PlatformStatus, PoolStatus};
pub use config::Config;
pub use context::Clock;
pub use engine::{Bot, BotBuilder, Reach, UnknownEnv};
pub use ports::{NoProgress, Progress};
pub use rejection::Rejection;
pub use reply::{
    Button, ButtonStyle, Input, Invocation, Next, Outcome, Part, Reply, Request, Target,
};

/// Loads `commands.yaml` and `instances.yaml` from `dir`, interpolating `${VAR}` from
/// the process environment, and checks every `action:` against this crate's actions.
pub fn load_dir(dir: &Path) -> Result<Config, config::ConfigErrors> {
    config::load_dir(dir, &actions::names())
}

/// Like [`load_dir`] with a custom variable lookup.
pub fn load_dir_with_env(
    dir: &Path,
    env: config::EnvLookup<'_>,
) -> Result<Config, config::ConfigErrors> {
    config::load_dir_with_env(dir, env, &actions::names())
}

/// Loads both files from strings (errors name them `commands.yaml` and
/// `instances.yaml`), interpolating from the process environment.
pub fn load_strs(commands: &str, instances: &str) -> Result<Config, config::ConfigErrors> {
    load_strs_with_env(commands, instances, &config::process_env)
}

/// Like [`load_strs`] with a custom variable lookup.
pub fn load_strs_with_env(
    commands: &str,
    instances: &str,
    env: config::EnvLookup<'_>,
) -> Result<Config, config::ConfigErrors> {
    config::from_strs(
        config::COMMANDS_FILE,
        commands,
        config::INSTANCES_FILE,
        instances,
        env,
        &actions::names(),
    )
}
