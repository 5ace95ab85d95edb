//! Slack logic free of HTTP types: request signature verification, payload parsing
//! and Block Kit rendering.

pub mod blocks;
pub mod payload;
pub mod verify;
