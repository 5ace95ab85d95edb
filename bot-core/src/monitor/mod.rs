//! The monitor's pure parts: which targets the config names ([`targets`]), what one
//! probe makes of a target ([`judge`]), when probes add up to a confirmed change
//! ([`Tracker`]), which results the probe log keeps ([`Sampler`]), and what a change says to Slack, PagerDuty and webhooks ([`words`]).
//! Running it on an interval, once per platform, is the server's job.

mod judge;
mod sampler;
mod targets;
mod tracker;
pub mod words;

pub use judge::{judge, judge_check};
pub use sampler::{Sampler, SAMPLE};
pub use targets::{targets, Recipe, Target};
pub use tracker::{Change, ChangeKind, Tracker};
