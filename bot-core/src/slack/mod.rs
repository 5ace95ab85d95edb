//! Slack logic free of HTTP types: request signature verification and payload parsing.

pub mod payload;
pub mod verify;
