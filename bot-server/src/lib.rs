//! # Crossroads server
//!
//! The thin layer around `bot-core`: Slack routes, the Slack Web API client,
//! Socket Mode, the console adapter, the demo and the `crossroads` CLI.

pub mod console;
pub mod demo;
