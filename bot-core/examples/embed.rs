//! Embedding Crossroads: build a `Bot` from the shipped config with your own
//! health probe (here: canned answers instead of HTTP) and handle messages.
//!
//! Run with `cargo run -p bot-core --example embed`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bot_core::adapters::memory_switch::MemorySwitch;
use bot_core::ports::{HttpSnapshot, Probe, ProbeError};
use bot_core::{Bot, Request};

/// A probe that knows the answer without asking: every `green` instance is
/// degraded, everything else healthy. Swap in your own service discovery here.
struct CannedProbe;

#[async_trait]
impl Probe for CannedProbe {
    async fn get(&self, url: &str, _timeout: Duration) -> Result<HttpSnapshot, ProbeError> {
        // The shipped config puts green instances on even ports 18082, 18086.
        let degraded = url.contains(":18082") || url.contains(":18086");
        Ok(HttpSnapshot {
            status: if degraded { 503 } else { 200 },
            body: format!(
                r#"{{"status":"{}","version":"1.4.2"}}"#,
                if degraded { "degraded" } else { "ok" }
            ),
            latency: Duration::from_millis(3),
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = bot_core::load_strs_with_env(
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../commands.yaml")),
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../instances.yaml")),
        &|_| None, // no environment variables: every ${VAR:-default} takes its default
    )?;
    let bot = Bot::builder(config)
        .probe(Arc::new(CannedProbe))
        // Keep traffic-switch state in memory instead of calling the configured switch.
        .switch_all(Arc::new(MemorySwitch::new()))
        .build();

    for text in ["health rh blue", "status staging", "health"] {
        let reply = bot.handle(Request::text("U0DEMO", text)).await;
        println!("> {text}\n{}\n", reply.to_plain_text());
    }
    Ok(())
}
