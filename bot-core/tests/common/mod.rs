//! Shared helpers for the integration tests: the shipped config with overrides,
//! a recording probe, a bot with in-memory switch state.
#![allow(dead_code)]

pub mod haproxy;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bot_core::adapters::memory_switch::MemorySwitch;
use bot_core::ports::{HttpSnapshot, Probe, ProbeError};
use bot_core::{Bot, Config, Reply, Request};

pub const COMMANDS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../commands.yaml"));
pub const INSTANCES: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../instances.yaml"));

/// The variables naming each shipped instance's URL, in config order.
pub const INSTANCE_URL_VARS: [&str; 8] = [
    "MASTER_API_BLUE_URL",
    "MASTER_API_GREEN_URL",
    "MASTER_CRON_PURPLE_URL",
    "MASTER_CRON_YELLOW_URL",
    "STAGING_API_BLUE_URL",
    "STAGING_API_GREEN_URL",
    "STAGING_CRON_PURPLE_URL",
    "STAGING_CRON_YELLOW_URL",
];

/// The shipped commands with `instances` (YAML text), `${VAR}`s taken from `vars`.
pub fn load(instances: &str, vars: &[(&str, String)]) -> Config {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let lookup = move |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    bot_core::load_strs_with_env(COMMANDS, instances, &lookup)
        .unwrap_or_else(|e| panic!("test config must load: {e}"))
}

/// The repository's config with `${VAR}`s taken from `vars` (defaults otherwise).
pub fn shipped(vars: &[(&str, String)]) -> Config {
    load(INSTANCES, vars)
}

/// Answers every GET with a healthy JSON body and remembers the URLs asked.
#[derive(Default)]
pub struct RecordingProbe {
    pub urls: Mutex<Vec<String>>,
}

impl RecordingProbe {
    pub fn urls(&self) -> Vec<String> {
        self.urls.lock().map(|u| u.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl Probe for RecordingProbe {
    async fn get(&self, url: &str, _timeout: Duration) -> Result<HttpSnapshot, ProbeError> {
        if let Ok(mut u) = self.urls.lock() {
            u.push(url.to_owned());
        }
        Ok(HttpSnapshot {
            status: 200,
            body: r#"{"status":"ok","version":"1.0.0"}"#.into(),
            latency: Duration::from_millis(2),
        })
    }
}

/// The shipped config with a recording probe and traffic state in memory
/// (first member of each pool active).
pub fn recording_bot() -> (Bot, Arc<RecordingProbe>, Arc<MemorySwitch>) {
    let probe = Arc::new(RecordingProbe::default());
    let switch = Arc::new(MemorySwitch::new());
    let bot = Bot::builder(shipped(&[]))
        .probe(probe.clone())
        .switch_all(switch.clone())
        .build();
    (bot, probe, switch)
}

/// Sends a message as `user`.
pub async fn say(bot: &Bot, user: &str, text: &str) -> Reply {
    bot.handle(Request::text(user, text)).await
}

/// Clicks the button of `reply` whose label contains `label`.
pub async fn click(bot: &Bot, user: &str, reply: &Reply, label: &str) -> Reply {
    let value = reply
        .all_buttons()
        .find(|b| b.label.contains(label))
        .unwrap_or_else(|| panic!("no button labelled {label:?} in {}", reply.to_plain_text()))
        .value
        .clone();
    bot.handle(Request::button(user, value)).await
}

/// Labels of every button of a reply.
pub fn labels(reply: &Reply) -> Vec<String> {
    reply.all_buttons().map(|b| b.label.clone()).collect()
}
