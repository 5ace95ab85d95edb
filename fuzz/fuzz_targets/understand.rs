//! Fuzzes text understanding on the shipped config: lexer, resolver, the engine's pipeline and reply rendering, with instant in-memory backends.
#![no_main]

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bot_core::adapters::jenkins::NoCi;
use bot_core::adapters::memory_switch::MemorySwitch;
use bot_core::config::HttpRequestSpec;
use bot_core::ports::{HttpAction, HttpSnapshot, Probe, ProbeError};
use bot_core::{Bot, Config, Request};
use libfuzzer_sys::fuzz_target;

const COMMANDS: &str = include_str!("../../commands.yaml");
const INSTANCES: &str = include_str!("../../instances.yaml");
/// A fresh bot (empty audit log and locks) every this many inputs.
const INPUTS_PER_BOT: u32 = 500;

/// Every instance healthy, at once.
struct Healthy;

#[async_trait]
impl Probe for Healthy {
    async fn get(&self, _url: &str, _timeout: Duration) -> Result<HttpSnapshot, ProbeError> {
        Ok(HttpSnapshot {
            status: 200,
            body: r#"{"status":"ok","version":"1.0.0"}"#.into(),
            latency: Duration::from_millis(1),
        })
    }
}

#[async_trait]
impl HttpAction for Healthy {
    async fn send(
        &self,
        _req: &HttpRequestSpec,
        _timeout: Duration,
    ) -> Result<HttpSnapshot, ProbeError> {
        self.get("", Duration::ZERO).await
    }
}

struct State {
    runtime: tokio::runtime::Runtime,
    config: Config,
    bot: Bot,
    used: u32,
}

fn bot(config: &Config) -> Bot {
    Bot::builder(config.clone())
        .probe(Arc::new(Healthy))
        .http_action(Arc::new(Healthy))
        .ci(Arc::new(NoCi))
        .switch_all(Arc::new(MemorySwitch::new()))
        .build()
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

fuzz_target!(|data: &[u8]| {
    let Some((&who, text)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    // A deployer (who may run everything) or someone in no group.
    let user = if who % 2 == 0 { "U0DEMO" } else { "U0FUZZ" };
    STATE.with(|cell| {
        let mut cell = cell.borrow_mut();
        let state = cell.get_or_insert_with(|| {
            let config = bot_core::load_strs_with_env(COMMANDS, INSTANCES, &|_| None)
                .unwrap_or_else(|e| panic!("the shipped config loads: {e}"));
            State {
                runtime: tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .start_paused(true)
                    .build()
                    .unwrap_or_else(|e| panic!("runtime: {e}")),
                bot: bot(&config),
                config,
                used: 0,
            }
        });
        state.used += 1;
        if state.used > INPUTS_PER_BOT {
            state.bot = bot(&state.config);
            state.used = 1;
        }
        let reply = state
            .runtime
            .block_on(state.bot.handle(Request::text(user, text)));
        let _ = (reply.to_plain_text(), reply.to_console_text(), reply.blocks());
    });
});
