//! Integration tests of the server as users and Slack drive it: one module per user-facing capability.
//! One test binary for them all: each file is compiled and linked once, not once
//! per file (`cargo test -p bot-server --test capabilities canary::` runs one module).

mod api;
mod approval_crash;
mod audit;
mod board;
mod canary;
mod chaos;
mod charts;
mod cli;
mod common;
mod console_pty;
mod cutoff;
mod demo;
mod demo_board;
mod deploy_queue;
mod deploys_shown;
mod dora;
mod durability;
mod exactly_once;
mod freeze_paths;
mod monitor;
mod ops;
mod reload;
mod replicas;
mod resilience;
mod scheduled_deploys;
mod slack_commands;
mod slack_events;
mod slack_interactions;
mod slack_progress;
mod slack_shutdown;
mod slack_socket_mode;
mod slack_verification;
mod slack_webapi;
mod slow_clients;
mod stats;
mod store_down;
mod takeover;
mod trust;
mod wiring;
