//! The building blocks long actions are made of, shared by the commands in
//! [`crate::actions`] and by the monitor: judging health, following a build, sending a
//! templated request, moving a pool's traffic, watching it after a switch, listing
//! the commits a deploy ships, a canary's Prometheus readings, the approval card and
//! vote, and the words that ask a deploy to wait in line.

pub mod analysis;
pub mod approval;
pub mod build;
pub mod changes;
pub mod health;
pub mod moves;
pub mod queue_words;
pub mod request;
pub mod watch;
