//! # Crossroads core
//!
//! The engine of Crossroads, a ChatOps deploy bot for Slack: configuration,
//! grammar, alias resolution, actions, safety policy, Block Kit rendering, Slack
//! request verification and the backend traits with their real implementations.
//! It knows nothing about HTTP servers: hand it a [`Request`], get a [`Reply`].
#![warn(missing_docs)]

pub mod backends;
pub mod config;
pub mod grammar;
pub mod render;
pub mod reply;
pub mod resolve;
pub mod slack;
pub mod testing;

pub use config::Config;
pub use reply::{Button, ButtonStyle, Input, Invocation, Outcome, Part, Reply, Request, Target};
pub mod actions;
pub mod engine;
pub mod policy;

pub use actions::status::{EnvStatus, MemberStatus, PlatformStatus, PoolStatus};
pub use engine::{Bot, BotBuilder, NoProgress, Progress, UnknownEnv};
