//! HTTP routes besides Slack's: health, readiness, metrics and the `/api/v1` contract.

pub mod api;
pub mod board;
pub mod chart;
pub mod ops;
