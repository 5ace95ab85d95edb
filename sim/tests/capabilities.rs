//! Integration tests of the stand-ins speak the real services' wire formats: one module per service.
//! One test binary for them all: each file is compiled and linked once, not once
//! per file (`cargo test -p crossroads-sim --test capabilities slack::` runs one module).

mod compare;
mod github;
mod grafana;
mod jenkins;
mod pagerduty;
mod prometheus;
mod slack;
mod webhook;
mod wire;
