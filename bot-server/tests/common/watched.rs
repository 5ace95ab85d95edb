//! A watched platform for the monitor and board tests: simulated instances in two
//! environments, the real server on 127.0.0.1:0 with a `monitor:` section, and the
//! Slack, PagerDuty and webhook stand-ins it reports to.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bot_core::config::Secret;
use bot_core::ports::Store;
use bot_core::Bot;
use bot_server::{AppState, ServeConfig, Server};
use crossroads_sim::instance::SimInstance;
use crossroads_sim::{PagerDutyStandIn, WebhookStandIn};
use tokio::sync::oneshot;

use super::{StandIn, SECRET, TOKEN};

/// The shipped vocabulary.
pub const COMMANDS: &str = include_str!("../../../commands.yaml");
/// The announcement channel (alias `ops`).
pub const CHANNEL: &str = "C0OPS";
/// The PagerDuty routing key in the config.
pub const ROUTING_KEY: &str = "R0UTINGKEY00000000000000000000AB";

/// Timings of the watched platform.
#[derive(Clone)]
pub struct Timing {
    /// `monitor.every`.
    pub every: Duration,
    /// `monitor.confirm`.
    pub confirm: u32,
    /// `monitor.timeout`.
    pub timeout: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            every: Duration::from_millis(100),
            confirm: 3,
            timeout: Duration::from_millis(300),
        }
    }
}

/// `instances.yaml` for members at `urls` (`(env, member) → url`), with `extra`
/// appended (e.g. `checks:`).
pub fn instances_yaml(
    urls: &BTreeMap<(String, String), String>,
    t: &Timing,
    pagerduty: &str,
    webhook: &str,
    extra: &str,
) -> String {
    let mut envs = String::new();
    for env in ["master", "staging"] {
        envs.push_str(&format!(
            "  {env}:\n    pools:\n      api:\n        switch: {{ type: memory, initial: blue }}\n        members:\n"
        ));
        for member in ["blue", "green"] {
            if let Some(url) = urls.get(&(env.to_owned(), member.to_owned())) {
                envs.push_str(&format!("          {member}: {{ url: \"{url}\" }}\n"));
            }
        }
    }
    format!(
        "settings:\n  probe_timeout: {timeout}ms\n  lease: 1s\n\
         groups:\n  deployers: [U0DEPLOYER]\n\
         channels:\n  ops: {CHANNEL}\n\
         monitor:\n  every: {every}ms\n  confirm: {confirm}\n  channel: ops\n  timeout: {timeout}ms\n\
         \x20 pagerduty:\n    routing_key: {ROUTING_KEY}\n    url: {pagerduty}/v2/enqueue\n\
         \x20 webhooks: [\"{webhook}/crossroads\"]\n\
         environments:\n{envs}{extra}",
        timeout = t.timeout.as_millis(),
        every = t.every.as_millis(),
        confirm = t.confirm,
    )
}

/// A running watched platform.
pub struct Watched {
    pub addr: SocketAddr,
    pub bot: Bot,
    pub slack: StandIn,
    pub pagerduty: PagerDutyStandIn,
    pub webhook: WebhookStandIn,
    /// `(env, member)` → instance.
    pub instances: BTreeMap<(String, String), SimInstance>,
    pub timing: Timing,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Drop for Watched {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Watched {
    /// Four instances (master and staging, blue and green), all healthy.
    pub async fn start(timing: Timing) -> Self {
        Self::start_with(timing, "", None).await
    }

    /// Like [`Watched::start`] with `extra` YAML and the state in `store`.
    pub async fn start_with(timing: Timing, extra: &str, store: Option<Arc<dyn Store>>) -> Self {
        let mut instances = BTreeMap::new();
        for env in ["master", "staging"] {
            for member in ["blue", "green"] {
                let sim = SimInstance::start(&format!("{env}-{member}"), "1.0.0")
                    .await
                    .expect("start a simulated instance");
                instances.insert((env.to_owned(), member.to_owned()), sim);
            }
        }
        let slack = StandIn::start().await;
        let pagerduty = PagerDutyStandIn::start().await.expect("PagerDuty stand-in");
        let webhook = WebhookStandIn::start().await.expect("webhook stand-in");
        let urls = instances
            .iter()
            .map(|(k, v)| (k.clone(), v.url()))
            .collect();
        let yaml = instances_yaml(&urls, &timing, &pagerduty.url(), &webhook.url(), extra);
        let config = bot_core::load_strs_with_env(COMMANDS, &yaml, &|_| None)
            .unwrap_or_else(|e| panic!("the watched platform's config loads: {e}\n{yaml}"));
        let mut builder = Bot::builder(config);
        if let Some(store) = store {
            builder = builder.store(store);
        }
        let bot = builder.build();
        let (addr, shutdown, server) = serve(bot.clone(), &slack).await;
        Self {
            addr,
            bot,
            slack,
            pagerduty,
            webhook,
            instances,
            timing,
            shutdown: Some(shutdown),
            server: Some(server),
        }
    }

    /// The instance `member` of `env`.
    pub fn instance(&self, env: &str, member: &str) -> &SimInstance {
        &self.instances[&(env.to_owned(), member.to_owned())]
    }

    /// `http://addr{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops the server (as SIGTERM would) and waits for it.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

/// Serves `bot` on 127.0.0.1:0 talking to `slack`; returns the address, the
/// shutdown trigger and the server task.
pub async fn serve(
    bot: Bot,
    slack: &StandIn,
) -> (
    SocketAddr,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let mut config = ServeConfig::new(
        "127.0.0.1:0".parse().expect("addr"),
        Secret::new(SECRET),
        Secret::new(TOKEN),
    );
    config.api_url = slack.api_url();
    config.bot_user_id = Some(super::BOT_USER.into());
    config.progress_interval = Duration::from_millis(50);
    let state = AppState::new(&config, bot).expect("state");
    let server = Server::bind(config.listen, state).await.expect("bind");
    let addr = server.local_addr().expect("addr");
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(server.run_until(async move {
        let _ = rx.await;
    }));
    (addr, tx, server)
}
