//! Slack logic free of HTTP types: request signature verification, payload parsing
//! (HTTP bodies and Socket Mode frames) and Block Kit rendering.

pub mod blocks;
pub mod payload;
pub mod socket;
pub mod verify;
