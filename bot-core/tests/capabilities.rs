//! Integration tests of the library through its public API: one module per user-facing capability.
//! One test binary for them all: each file is compiled and linked once, not once
//! per file (`cargo test -p bot-core --test capabilities canary::` runs one module).

mod approval;
mod buttons;
mod canary;
mod canary_haproxy;
mod changes;
mod charts;
mod common;
mod config;
mod conformance;
mod deploy;
mod deploy_haproxy;
mod dora;
mod embedding;
mod freeze;
mod haproxy_switch;
mod http_switch;
mod jenkins;
mod locks;
mod permissions;
mod regions;
mod restart;
mod rollout;
mod schedule;
mod slack_payloads;
mod status;
mod toy;
mod traffic;
mod trust;
mod understanding;
mod watch;
mod whoami;
