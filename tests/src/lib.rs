//! The harness of the end-to-end scenarios: the real `crossroads` server on
//! 127.0.0.1:0 with its Web API pointed at a Slack stand-in, and requests into it
//! signed the way Slack signs them.
#![warn(missing_docs)]

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use bot_core::config::Secret;
use bot_core::{Bot, Config};
use bot_server::{AppState, ServeConfig, Server};
use crossroads_sim::slack::SlackStandIn;
use serde_json::Value;

/// The signing secret the server and the signed requests share.
pub const SIGNING_SECRET: &str = "e2e-signing-secret";

/// The shipped vocabulary.
pub const COMMANDS: &str = include_str!("../../commands.yaml");

/// The shipped vocabulary with `instances` (YAML), `${VAR}`s taken from `vars`.
pub fn config(instances: &str, vars: &[(&str, String)]) -> Config {
    let lookup = |name: &str| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    };
    bot_core::load_strs_with_env(COMMANDS, instances, &lookup)
        .unwrap_or_else(|e| panic!("the scenario's config must load: {e}"))
}

/// The server and the Slack it talks to.
pub struct Stack {
    /// The Slack stand-in: Web API, response URLs, recorded calls.
    pub slack: SlackStandIn,
    /// Where the server listens.
    pub addr: SocketAddr,
    http: reqwest::Client,
}

impl Stack {
    /// Starts the server for `config` with its Web API on a fresh Slack stand-in.
    pub async fn start(config: Config) -> Self {
        let slack = SlackStandIn::start().await.expect("Slack stand-in");
        let mut serve = ServeConfig::new(
            "127.0.0.1:0".parse().expect("address"),
            Secret::new(SIGNING_SECRET),
            Secret::new(slack.bot_token()),
        );
        serve.api_url = slack.api_url();
        serve.progress_interval = std::time::Duration::from_millis(50);
        let state = AppState::new(&serve, Bot::builder(config).build()).expect("state");
        let server = Server::bind(serve.listen, state).await.expect("bind");
        let addr = server.local_addr().expect("address");
        tokio::spawn(server.run_until(std::future::pending()));
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        Self { slack, addr, http }
    }

    /// POSTs `body` to `path` signed as Slack signs it, now.
    pub async fn signed_post(
        &self,
        path: &str,
        content_type: &str,
        body: String,
    ) -> reqwest::Response {
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs()
            .to_string();
        let signature = bot_core::slack::verify::sign(SIGNING_SECRET, &ts, body.as_bytes());
        self.http
            .post(format!("http://{}{path}", self.addr))
            .header("content-type", content_type)
            .header("x-slack-request-timestamp", ts)
            .header("x-slack-signature", signature)
            .body(body)
            .send()
            .await
            .expect("the server answers")
    }

    /// Delivers an Events API payload to `/slack/events`.
    pub async fn event(&self, payload: &Value) -> reqwest::Response {
        self.signed_post("/slack/events", "application/json", payload.to_string())
            .await
    }

    /// Delivers an interaction payload to `/slack/interactions`, form-encoded as
    /// Slack sends it.
    pub async fn interaction(&self, payload: &Value) -> reqwest::Response {
        let body = serde_urlencoded::to_string([("payload", payload.to_string())])
            .expect("form-encode the payload");
        self.signed_post(
            "/slack/interactions",
            "application/x-www-form-urlencoded",
            body,
        )
        .await
    }
}

/// Every text of a Slack message body (`text` and the blocks' texts), joined.
pub fn message_text(body: &Value) -> String {
    let mut parts = vec![body["text"].as_str().unwrap_or_default().to_owned()];
    if let Some(blocks) = body["blocks"].as_array() {
        for block in blocks {
            if let Some(t) = block["text"]["text"].as_str() {
                parts.push(t.to_owned());
            }
            if let Some(elements) = block["elements"].as_array() {
                for e in elements {
                    if let Some(t) = e["text"].as_str().or(e["text"]["text"].as_str()) {
                        parts.push(t.to_owned());
                    }
                }
            }
        }
    }
    parts.join("\n")
}
