//! Test kit: a tiny config, a fake probe, a local stand-in for the Slack Web API
//! that records every call, request signing like Slack's, and the real server on
//! 127.0.0.1:0.
#![allow(dead_code)]

pub mod serve;
pub mod staging;
pub mod watched;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bot_core::config::{
    ActionKind, CommandSpec, Config, Environment, Instance, InstanceRef, JobSpec, Pool, Pos,
    Secret, SwitchSpec, TargetKind,
};
use bot_core::ports::store::ButtonSet;
use bot_core::ports::{
    BuildOutcome, BuildProgress, BuildRef, BuildResult, Ci, CiError, Commit, HttpSnapshot, Probe,
    ProbeError,
};
use bot_core::reply::ButtonAction;
use bot_core::{Bot, Invocation, Target};
use bot_server::{AppState, ServeConfig, Server, Slack};
use serde_json::Value;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

pub const SECRET: &str = "test-signing-secret";
pub const TOKEN: &str = "xoxb-test-token";
pub const BOT_USER: &str = "UBOT";
/// `ts` of the message holding the buttons in [`TestApp::click`] (the bot's message
/// clicked in `interactions/block_actions.json`).
pub const CLICKED_TS: &str = "1714056484.530719";

/// A button value for `build` in a freshly issued button set.
pub async fn build_button(bot: &Bot, set: &str) -> String {
    run_button(
        bot,
        set,
        Invocation {
            command: "build".into(),
            target: Target::None,
            args: vec![],
            params: vec![],
            confirmed: false,
            approval: None,
            pin: None,
        },
    )
    .await
}

/// Issues a one-button set on the server (as the bot does when it offers buttons)
/// and returns the button's opaque value.
async fn run_button(bot: &Bot, set: &str, inv: Invocation) -> String {
    bot.store()
        .issue_buttons(&ButtonSet {
            personal: false,
            id: set.into(),
            actions: vec![serde_json::to_value(ButtonAction::Run(inv)).expect("serialise action")],
            channel: None,
            issued_to: "U1".into(),
            expires: SystemTime::now() + Duration::from_secs(600),
        })
        .await
        .expect("issue buttons");
    format!("{set}.0")
}

// ------------------------------------------------------------------ config

fn command(name: &str, action: ActionKind, target: TargetKind, optional: bool) -> CommandSpec {
    CommandSpec {
        name: name.into(),
        phrases: vec![name.into()],
        action,
        target,
        target_optional: optional,
        takes_args: false,
        confirm: false,
        allowed: vec![],
        help: format!("{name} help"),
        examples: vec![name.into()],
        params: vec![],
        freeze_exempt: false,
        pos: Pos::default(),
    }
}

fn instance(name: &str, port: u16) -> Instance {
    Instance {
        name: name.into(),
        aliases: vec![],
        emoji: vec![],
        url: format!("http://127.0.0.1:{port}"),
        health: Default::default(),
        tasks: None,
        restart: None,
        pos: Pos::default(),
    }
}

/// One env `staging`, pool `api`, members blue/green; commands status, health,
/// help, and `build` (a CI job: a long action with progress, see [`FakeCi`]).
pub fn config() -> Config {
    Config {
        commands: vec![
            command(
                "status",
                ActionKind::Builtin("status".into()),
                TargetKind::Environment,
                true,
            ),
            command(
                "health",
                ActionKind::Builtin("health".into()),
                TargetKind::Instance,
                false,
            ),
            command(
                "help",
                ActionKind::Builtin("help".into()),
                TargetKind::Nothing,
                true,
            ),
            command(
                "build",
                ActionKind::Job(JobSpec {
                    job: "app/build".into(),
                    parameters: vec![],
                }),
                TargetKind::Nothing,
                true,
            ),
        ],
        environments: vec![Environment {
            name: "staging".into(),
            aliases: vec!["staging".into()],
            emoji: vec![],
            protected: false,
            allowed: vec![],
            pools: vec![Pool {
                name: "api".into(),
                aliases: vec!["api".into()],
                switch: SwitchSpec::Memory {
                    initial: "blue".into(),
                },
                deploy: None,
                members: vec![instance("blue", 9), instance("green", 9)],
                region: None,
                pos: Pos::default(),
            }],
            regions: Vec::new(),
            rollout: Default::default(),
            pos: Pos::default(),
        }],
        ..Config::default()
    }
}

/// Every instance answers healthy, instantly.
pub struct FakeProbe;

#[async_trait]
impl Probe for FakeProbe {
    async fn get(&self, _url: &str, _timeout: Duration) -> Result<HttpSnapshot, ProbeError> {
        Ok(HttpSnapshot {
            status: 200,
            body: r#"{"status":"ok","version":"1.2.3"}"#.into(),
            latency: Duration::from_millis(3),
        })
    }
}

/// A CI whose every build reports `steps` progress changes (1 %, 2 %, …) a
/// millisecond apart, then waits until the gate is open, then succeeds.
pub struct FakeCi {
    pub steps: u8,
    gate: watch::Sender<bool>,
    started: watch::Sender<u32>,
}

impl FakeCi {
    pub fn new(steps: u8) -> Self {
        Self {
            steps,
            gate: watch::Sender::new(true),
            started: watch::Sender::new(0),
        }
    }

    /// Builds wait at the end until [`FakeCi::release`].
    pub fn hold(&self) {
        self.gate.send_replace(false);
    }

    /// Lets held builds finish.
    pub fn release(&self) {
        self.gate.send_replace(true);
    }

    /// How many builds have started so far.
    pub fn started_count(&self) -> u32 {
        *self.started.borrow()
    }

    /// Waits (bounded) until `n` builds have started.
    pub async fn wait_started(&self, n: u32) {
        let mut rx = self.started.subscribe();
        tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|s| *s >= n))
            .await
            .expect("a build started within 10s")
            .expect("the CI is alive");
    }
}

#[async_trait]
impl Ci for FakeCi {
    async fn run_job(
        &self,
        _job: &str,
        _params: &[(String, String)],
        progress: &(dyn Fn(BuildProgress) + Send + Sync),
    ) -> Result<BuildOutcome, CiError> {
        self.started.send_modify(|n| *n += 1);
        let url = "http://127.0.0.1:9/job/app/build/7/".to_owned();
        for percent in 1..=self.steps {
            progress(BuildProgress::Building {
                number: 7,
                url: url.clone(),
                percent: Some(percent),
            });
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let mut gate = self.gate.subscribe();
        let _ = gate.wait_for(|open| *open).await;
        Ok(BuildOutcome {
            number: 7,
            url: url.clone(),
            console_url: format!("{url}console"),
            result: BuildResult::Success,
            duration: Duration::from_secs(1),
        })
    }

    /// Builds in one go: nothing to record before following.
    async fn trigger(
        &self,
        _job: &str,
        _params: &[(String, String)],
    ) -> Result<Option<BuildRef>, CiError> {
        Ok(None)
    }

    async fn reattach(
        &self,
        _job: &str,
        _at: &BuildRef,
        _progress: &(dyn Fn(BuildProgress) + Send + Sync),
    ) -> Result<BuildOutcome, CiError> {
        Err(CiError::CannotReattach)
    }

    async fn changes(&self, _job: &str, _url: &str) -> Result<Option<Vec<Commit>>, CiError> {
        Ok(None)
    }
}

pub fn bot() -> Bot {
    bot_with(Arc::new(FakeCi::new(50)))
}

pub fn bot_with(ci: Arc<FakeCi>) -> Bot {
    Bot::builder(config())
        .probe(Arc::new(FakeProbe))
        .ci(ci)
        .build()
}

/// A button value for `health staging api <member>` in a freshly issued button set.
pub async fn health_button(bot: &Bot, set: &str, member: &str) -> String {
    run_button(
        bot,
        set,
        Invocation {
            command: "health".into(),
            target: Target::Instance(InstanceRef {
                env: "staging".into(),
                pool: "api".into(),
                member: member.into(),
                region: None,
            }),
            args: vec![],
            params: vec![],
            confirmed: false,
            approval: None,
            pin: None,
        },
    )
    .await
}

// ---------------------------------------------------------------- fixtures

/// The text of a file under `bot-core/fixtures/` (Slack's payloads, real-shaped).
pub fn fixture_text(path: &str) -> String {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../bot-core/fixtures")
        .join(path);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// A JSON fixture under `bot-core/fixtures/`, parsed.
pub fn fixture(path: &str) -> Value {
    serde_json::from_str(&fixture_text(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `body` with the string at each JSON pointer set (added if absent).
pub fn with(mut body: Value, fields: &[(&str, &str)]) -> Value {
    for (at, value) in fields {
        let (parent, key) = at.rsplit_once('/').expect("a JSON pointer");
        body.pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .unwrap_or_else(|| panic!("no object at {parent:?}"))
            .insert(key.to_owned(), Value::from(*value));
    }
    body
}

// --------------------------------------------------------------- stand-in

/// One call the stand-in received.
#[derive(Debug, Clone)]
pub struct Call {
    /// `chat.postMessage`, … or `response/<id>` for response_url posts.
    pub method: String,
    pub body: Value,
    pub authorization: Option<String>,
    pub at: std::time::Instant,
}

/// A scripted answer for the next call of a method.
#[derive(Debug, Clone)]
pub enum Scripted {
    /// HTTP 429 with `Retry-After: 1`.
    RateLimited,
    /// HTTP 429 with `Retry-After` of this many seconds.
    RateLimitedFor(u64),
    Error(&'static str),
    /// This HTTP status, with a Slack-like body.
    Status(u16),
}

#[derive(Default)]
struct StandInState {
    calls: Vec<Call>,
    script: HashMap<String, VecDeque<Scripted>>,
    next_ts: u64,
}

/// A local stand-in for the Slack Web API and response_urls.
#[derive(Clone)]
pub struct StandIn {
    pub addr: SocketAddr,
    state: Arc<Mutex<StandInState>>,
}

async fn api(
    State(state): State<Arc<Mutex<StandInState>>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    record(&state, method, headers, body)
}

async fn respond(
    State(state): State<Arc<Mutex<StandInState>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    record(&state, format!("response/{id}"), headers, body)
}

fn record(
    state: &Arc<Mutex<StandInState>>,
    method: String,
    headers: HeaderMap,
    body: String,
) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    let mut s = state.lock().expect("stand-in lock");
    s.calls.push(Call {
        method: method.clone(),
        body: body.clone(),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        at: std::time::Instant::now(),
    });
    match s.script.get_mut(&method).and_then(VecDeque::pop_front) {
        Some(Scripted::RateLimited) => return rate_limited(1),
        Some(Scripted::RateLimitedFor(secs)) => return rate_limited(secs),
        Some(Scripted::Error(code)) => {
            return axum::Json(serde_json::json!({"ok": false, "error": code})).into_response()
        }
        Some(Scripted::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (
                status,
                axum::Json(serde_json::json!({"ok": false, "error": "service_unavailable"})),
            )
                .into_response();
        }
        None => {}
    }
    if method.starts_with("response/") {
        return "ok".into_response();
    }
    if method == "auth.test" {
        return axum::Json(serde_json::json!({"ok": true, "user_id": BOT_USER, "team": "T", "team_id": "T1", "url": "http://127.0.0.1/"}))
            .into_response();
    }
    s.next_ts += 1;
    let ts = format!("1700000000.{:06}", s.next_ts);
    let channel = body.get("channel").cloned().unwrap_or(Value::Null);
    axum::Json(serde_json::json!({"ok": true, "channel": channel, "ts": ts})).into_response()
}

fn rate_limited(secs: u64) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [("retry-after", secs.to_string())],
        axum::Json(serde_json::json!({"ok": false, "error": "ratelimited"})),
    )
        .into_response()
}

impl StandIn {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(StandInState::default()));
        let app = Router::new()
            .route("/api/{method}", post(api))
            .route("/response/{id}", post(respond))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind stand-in");
        let addr = listener.local_addr().expect("stand-in addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, state }
    }

    pub fn api_url(&self) -> String {
        format!("http://{}/api/", self.addr)
    }

    pub fn response_url(&self, id: &str) -> String {
        format!("http://{}/response/{id}", self.addr)
    }

    /// The next call(s) of `method` get these answers.
    pub fn script(&self, method: &str, answers: &[Scripted]) {
        self.state
            .lock()
            .expect("stand-in lock")
            .script
            .entry(method.into())
            .or_default()
            .extend(answers.iter().cloned());
    }

    /// Every call so far of `method`.
    pub fn calls(&self, method: &str) -> Vec<Call> {
        self.state
            .lock()
            .expect("stand-in lock")
            .calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    /// Every call so far except `auth.test`.
    pub fn all_calls(&self) -> Vec<Call> {
        self.state
            .lock()
            .expect("stand-in lock")
            .calls
            .iter()
            .filter(|c| c.method != "auth.test")
            .cloned()
            .collect()
    }

    /// Polls (bounded) until a call of `method` matches `pred`; returns it.
    pub async fn wait_for_one(&self, method: &str, pred: impl Fn(&Call) -> bool) -> Call {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(call) = self.calls(method).into_iter().find(|c| pred(c)) {
                return call;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "waited 10s for a matching call of {method}; got {:?}",
                self.calls(method)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Polls (bounded) until `method` has at least `n` calls; returns them.
    pub async fn wait_for(&self, method: &str, n: usize) -> Vec<Call> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let calls = self.calls(method);
            if calls.len() >= n {
                return calls;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "waited 10s for {n} call(s) of {method}; got {calls:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

// ----------------------------------------------------------------- signing

pub fn now_ts() -> String {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
        .to_string()
}

/// Headers exactly as Slack signs a request with `SECRET` at `ts`.
pub fn signed(ts: &str, body: &str) -> Vec<(&'static str, String)> {
    vec![
        ("x-slack-request-timestamp", ts.to_owned()),
        (
            "x-slack-signature",
            bot_core::slack::verify::sign(SECRET, ts, body.as_bytes()),
        ),
    ]
}

// ------------------------------------------------------------------ server

/// The real server on 127.0.0.1:0 talking to a stand-in.
pub struct TestApp {
    pub addr: SocketAddr,
    pub slack: StandIn,
    pub bot: Bot,
    pub ci: Arc<FakeCi>,
    pub dispatcher: Slack,
    pub http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl TestApp {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut ServeConfig)) -> Self {
        Self::start_on(None, tweak).await
    }

    /// Like [`TestApp::start_with`], keeping state in `store` instead of memory.
    pub async fn start_on(
        store: Option<Arc<dyn bot_core::ports::Store>>,
        tweak: impl FnOnce(&mut ServeConfig),
    ) -> Self {
        let slack = StandIn::start().await;
        let ci = Arc::new(FakeCi::new(50));
        let mut builder = Bot::builder(config())
            .probe(Arc::new(FakeProbe))
            .ci(ci.clone());
        if let Some(store) = store {
            builder = builder.store(store);
        }
        let bot = builder.build();
        let mut config = ServeConfig::new(
            "127.0.0.1:0".parse().expect("addr"),
            Secret::new(SECRET),
            Secret::new(TOKEN),
        );
        config.api_url = slack.api_url();
        config.bot_user_id = Some(BOT_USER.into());
        tweak(&mut config);
        let state = AppState::new(&config, bot.clone()).expect("state");
        let dispatcher = state.slack.clone();
        let server = Server::bind(config.listen, state).await.expect("bind");
        let addr = server.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(server.run_until(async move {
            let _ = rx.await;
        }));
        Self {
            addr,
            slack,
            bot,
            ci,
            dispatcher,
            http: reqwest::Client::new(),
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    /// Signals shutdown (like SIGTERM); the server then drains and stops.
    pub fn begin_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// The server task (`run_until`), to await its end.
    pub fn server(&mut self) -> JoinHandle<std::io::Result<()>> {
        self.server.take().expect("server task taken once")
    }

    /// `GET path`: status code.
    pub async fn get_status(&self, path: &str) -> u16 {
        self.http
            .get(self.url(path))
            .send()
            .await
            .expect("server answers")
            .status()
            .as_u16()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// POSTs `body` with `headers`.
    pub async fn post(
        &self,
        path: &str,
        content_type: &str,
        headers: Vec<(&'static str, String)>,
        body: String,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send().await.expect("server answers")
    }

    /// POSTs an Events API body signed like Slack.
    pub async fn event(&self, body: &str) -> reqwest::Response {
        self.post(
            "/slack/events",
            "application/json",
            signed(&now_ts(), body),
            body.to_owned(),
        )
        .await
    }

    /// POSTs a `block_actions` click on the bot's message `CLICKED_TS` in D1, signed like Slack.
    pub async fn click(&self, user: &str, value: &str, response_url: &str) -> reqwest::Response {
        self.click_in(user, value, response_url, false).await
    }

    /// POSTs a click on an ephemeral message (which `chat.update` cannot edit).
    pub async fn click_ephemeral(
        &self,
        user: &str,
        value: &str,
        response_url: &str,
    ) -> reqwest::Response {
        self.click_in(user, value, response_url, true).await
    }

    async fn click_in(
        &self,
        user: &str,
        value: &str,
        response_url: &str,
        ephemeral: bool,
    ) -> reqwest::Response {
        let clicked = if ephemeral {
            "interactions/block_actions_ephemeral.json"
        } else {
            "interactions/block_actions.json"
        };
        let payload = with(
            fixture(clicked),
            &[
                ("/user/id", user),
                ("/channel/id", "D1"),
                ("/container/channel_id", "D1"),
                ("/response_url", response_url),
                ("/actions/0/value", value),
                ("/trigger_id", &next_trigger_id()),
            ],
        )
        .to_string();
        let body = serde_urlencoded::to_string([("payload", payload)]).expect("form");
        self.post(
            "/slack/interactions",
            "application/x-www-form-urlencoded",
            signed(&now_ts(), &body),
            body,
        )
        .await
    }

    /// Waits until all background work has finished.
    pub async fn settle(&self) {
        assert!(
            self.dispatcher
                .intake()
                .drain(Duration::from_secs(10))
                .await,
            "background work did not finish within 10s"
        );
        // And the courier delivered every answer the work left in the outbox.
        let store = self.bot.store();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let left = store
                .undelivered(bot_server::slack::courier::TRANSPORT)
                .await
                .expect("outbox");
            if left == 0 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{left} answer(s) still undelivered after 10s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Status and `error` of a JSON error answer, checking it is one line with no secret.
pub async fn json_error(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    let text = res.text().await.expect("body");
    assert!(!text.contains('\n'), "one line: {text}");
    assert!(!text.contains(SECRET), "no secret: {text}");
    let v: serde_json::Value = serde_json::from_str(&text).expect("JSON error body");
    (status, v["error"].as_str().expect("error field").to_owned())
}

/// A fresh `trigger_id`, as Slack gives every interaction.
pub fn next_trigger_id() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{n}.47445629121.test")
}

/// A DM event body: Slack's `message.im` delivery from `user` in D1 saying `text`.
pub fn dm(event_id: &str, user: &str, text: &str) -> String {
    with(
        fixture("events/message_im.json"),
        &[
            ("/event_id", event_id),
            ("/event/channel", "D1"),
            ("/event/user", user),
            ("/event/text", text),
        ],
    )
    .to_string()
}

/// A slash command body as Slack posts it (`commands/slash_command.txt`), with
/// `fields` replaced.
pub fn slash_command(fields: &[(&str, &str)]) -> String {
    let mut form: Vec<(String, String)> =
        serde_urlencoded::from_str(fixture_text("commands/slash_command.txt").trim_end())
            .expect("the fixture is a form");
    for (name, value) in fields {
        let field = form
            .iter_mut()
            .find(|(k, _)| k == name)
            .unwrap_or_else(|| panic!("a slash command has no field {name:?}"));
        field.1 = (*value).to_owned();
    }
    serde_urlencoded::to_string(form).expect("form")
}

/// Text of the blocks of a posted message (every string value, joined).
pub fn block_text(body: &Value) -> String {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Object(o) => o.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&body["blocks"], &mut out);
    out.join("\n")
}

/// The `value`s of every button in a posted message.
pub fn button_values(body: &Value) -> Vec<String> {
    body["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e["value"].as_str().map(str::to_owned))
        .collect()
}
