//! `crossroads serve` as a child process, the way an operator runs it: a config
//! directory, a store URL, Slack pointed at a stand-in; killed with SIGKILL on demand
//! and started again on the same store.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_crossroads");
pub const SIGNING_SECRET: &str = "process-signing-secret";
pub const COMMANDS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../commands.yaml"));

/// A config directory holding the shipped vocabulary and `instances`.
pub fn config_dir(instances: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("commands.yaml"), COMMANDS).expect("commands.yaml");
    std::fs::write(dir.path().join("instances.yaml"), instances).expect("instances.yaml");
    dir
}

/// One running `crossroads serve`.
pub struct Served {
    child: Child,
    pub addr: SocketAddr,
    log: PathBuf,
    http: reqwest::Client,
}

/// How to start one.
#[derive(Clone)]
pub struct Serve {
    pub config_dir: PathBuf,
    pub database_url: String,
    pub slack_api: String,
    pub extra_env: Vec<(String, String)>,
}

impl Serve {
    /// `config_dir` with its state in a SQLite file under `state`, talking to Slack at
    /// `slack_api`.
    pub fn on_sqlite(config_dir: &Path, state: &Path, slack_api: String) -> Self {
        Serve {
            config_dir: config_dir.to_owned(),
            database_url: format!("sqlite://{}", state.join("state.db").display()),
            slack_api,
            extra_env: vec![],
        }
    }

    /// Starts it on a free port and waits until `/readyz` answers 200.
    pub async fn start(&self, log_dir: &Path) -> Served {
        let port = crossroads_sim::free_port().expect("port");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let log = log_dir.join(format!("serve-{port}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .arg("--config-dir")
            .arg(&self.config_dir)
            .arg("--listen")
            .arg(addr.to_string())
            .env("SLACK_SIGNING_SECRET", SIGNING_SECRET)
            .env("SLACK_BOT_TOKEN", "xoxb-sim-bot-token")
            .env("SLACK_API_URL", &self.slack_api)
            .env("CROSSROADS_DATABASE_URL", &self.database_url)
            .env("RUST_LOG", "info")
            .env_remove("CROSSROADS_API_TOKEN")
            .stdout(Stdio::null())
            .stderr(out);
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start crossroads serve");
        let served = Served {
            child,
            addr,
            log,
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client"),
        };
        served.wait_ready().await;
        served
    }
}

impl Served {
    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = self
                .http
                .get(format!("http://{}/readyz", self.addr))
                .send()
                .await
            {
                if r.status() == 200 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "crossroads serve never became ready:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no shutdown, no drain, nothing flushed.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// POSTs a signed Events API payload; the HTTP status.
    pub async fn event(&self, payload: &Value) -> u16 {
        self.signed("/slack/events", "application/json", payload.to_string())
            .await
    }

    /// POSTs a signed interaction payload, form-encoded; the HTTP status.
    pub async fn interaction(&self, payload: &Value) -> u16 {
        let body = interaction_form(payload);
        self.signed(
            "/slack/interactions",
            "application/x-www-form-urlencoded",
            body,
        )
        .await
    }

    async fn signed(&self, path: &str, content_type: &str, body: String) -> u16 {
        post_signed(&self.http, self.addr, path, content_type, body)
            .await
            .unwrap_or(0)
    }
}

/// POSTs `body` to `addr` signed as Slack signs it; the HTTP status, or `None` when
/// nothing answered.
pub async fn post_signed(
    http: &reqwest::Client,
    addr: SocketAddr,
    path: &str,
    content_type: &str,
    body: String,
) -> Option<u16> {
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        .to_string();
    let signature = bot_core::slack::verify::sign(SIGNING_SECRET, &ts, body.as_bytes());
    http.post(format!("http://{addr}{path}"))
        .header("content-type", content_type)
        .header("x-slack-request-timestamp", ts)
        .header("x-slack-signature", signature)
        .body(body)
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

/// An interaction payload as `/slack/interactions` takes it (form-encoded).
pub fn interaction_form(payload: &Value) -> String {
    serde_urlencoded::to_string([("payload", payload.to_string())]).expect("form")
}

/// The database URL with its host and port replaced by `via` (a proxy in between).
pub fn through(url: &str, via: SocketAddr) -> String {
    let mut u = url::Url::parse(url).expect("database URL");
    u.set_host(Some(&via.ip().to_string())).expect("host");
    u.set_port(Some(via.port())).expect("port");
    u.to_string()
}

/// The button of a message `body` whose label `label` accepts.
pub fn button(body: &Value, label: impl Fn(&str) -> bool) -> Value {
    body["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .find(|e| e["text"]["text"].as_str().is_some_and(&label))
        .unwrap_or_else(|| panic!("no such button in {body}"))
}

/// Slack's payload for `user` clicking `button` on the message at `channel`/`ts`.
pub fn click_on(
    slack: &crossroads_sim::SlackStandIn,
    user: &str,
    channel: &str,
    ts: &str,
    button: &Value,
) -> Value {
    slack.block_actions(
        user,
        channel,
        ts,
        button["action_id"].as_str().expect("action_id"),
        button["value"].as_str().expect("value"),
    )
}

impl Drop for Served {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Every text of a Slack message body (`text` and the blocks' texts), joined.
pub fn message_text(body: &Value) -> String {
    let mut parts = vec![body["text"].as_str().unwrap_or_default().to_owned()];
    for block in body["blocks"].as_array().into_iter().flatten() {
        if let Some(t) = block["text"]["text"].as_str() {
            parts.push(t.to_owned());
        }
        for e in block["elements"].as_array().into_iter().flatten() {
            if let Some(t) = e["text"].as_str().or(e["text"]["text"].as_str()) {
                parts.push(t.to_owned());
            }
        }
    }
    parts.join("\n")
}
