//! Charts in Slack and the chart API, on the real server against the Slack stand-in
//! (`crossroads_sim::SlackStandIn`, which speaks Slack's wire format): a chart command
//! uploads its PNG with `files.getUploadURLExternal`, the upload and
//! `files.completeUploadExternal`, in that order, into the conversation;
//! `POST /api/v1/chart` posts or returns the PNG, refuses bad charts (400) and bad
//! tokens (401), and limits each token (429 with `Retry-After`), as `notify` now does.

use crate::common;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bot_core::adapters::store::memory::MemoryStore;
use bot_core::config::Secret;
use bot_core::ports::{AuditRecord, Store};
use bot_core::Bot;
use bot_server::rate_limit::Rate;
use bot_server::{AppState, ServeConfig, Server};
use common::{fixture, now_ts, signed, with, SECRET};
use crossroads_sim::slack::{SlackSetup, UPLOAD};
use crossroads_sim::{Scripted, SlackStandIn};
use serde_json::{json, Value};
use tokio::sync::oneshot;

const API_TOKEN: &str = "chart-api-token-for-tests";
const UPLOAD_FLOW: [&str; 3] = [
    "files.getUploadURLExternal",
    UPLOAD,
    "files.completeUploadExternal",
];

/// The shipped `commands.yaml` and `instances.yaml` with their defaults.
fn shipped() -> bot_core::Config {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let read = |f: &str| std::fs::read_to_string(root.join(f)).expect("shipped config");
    bot_core::load_strs_with_env(&read("commands.yaml"), &read("instances.yaml"), &|_| None)
        .expect("the shipped config loads")
}

/// A store holding a few days of staging deploys.
async fn history() -> Arc<dyn Store> {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let day = Duration::from_secs(86_400);
    let now = SystemTime::now();
    for (days_ago, outcome, secs) in [
        (3, "ok", 300),
        (2, "failed: the health gate timed out", 100),
        (1, "ok", 240),
        (1, "ok", 260),
    ] {
        store
            .append(AuditRecord {
                at: now - day * days_ago,
                user: "U0DEPLOYER".into(),
                command: "deploy".into(),
                target: "staging".into(),
                env: Some("staging".into()),
                args: String::new(),
                outcome: outcome.into(),
                duration: Some(Duration::from_secs(secs)),
                links: Vec::new(),
            })
            .await
            .expect("append");
    }
    store
}

struct App {
    addr: std::net::SocketAddr,
    slack: SlackStandIn,
    http: reqwest::Client,
    _stop: oneshot::Sender<()>,
}

async fn start(tweak: impl FnOnce(&mut ServeConfig)) -> App {
    let slack = SlackStandIn::start_with(SlackSetup::new().wait_timeout(Duration::from_secs(10)))
        .await
        .expect("Slack stand-in");
    let bot = Bot::builder(shipped()).store(history().await).build();
    let mut serve = ServeConfig::new(
        "127.0.0.1:0".parse().expect("addr"),
        Secret::new(SECRET),
        Secret::new(slack.bot_token()),
    );
    serve.api_url = slack.api_url();
    serve.bot_user_id = Some("UBOT".into());
    serve.api_token = Some(Secret::new(API_TOKEN));
    tweak(&mut serve);
    let state = AppState::new(&serve, bot).expect("state");
    let server = Server::bind(serve.listen, state).await.expect("bind");
    let addr = server.local_addr().expect("addr");
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(server.run_until(async move {
        let _ = rx.await;
    }));
    App {
        addr,
        slack,
        http: reqwest::Client::new(),
        _stop: tx,
    }
}

impl App {
    /// A DM (or a reply in a thread, with `thread_ts`) from U0DEMO in D0CHARTS.
    async fn say(&self, event_id: &str, text: &str, thread_ts: Option<&str>) -> u16 {
        let mut fields = vec![
            ("/event_id", event_id),
            ("/event/channel", "D0CHARTS"),
            ("/event/user", "U0DEMO"),
            ("/event/text", text),
        ];
        if let Some(ts) = thread_ts {
            fields.push(("/event/thread_ts", ts));
        }
        let body = with(fixture("events/message_im.json"), &fields).to_string();
        let mut req = self
            .http
            .post(format!("http://{}/slack/events", self.addr))
            .header("content-type", "application/json")
            .body(body.clone());
        for (k, v) in signed(&now_ts(), &body) {
            req = req.header(k, v);
        }
        req.send().await.expect("server answers").status().as_u16()
    }

    async fn chart(&self, query: &str, auth: Option<&str>, body: &Value) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!("http://{}/api/v1/chart{query}", self.addr))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        req.send().await.expect("server answers")
    }

    async fn notify(&self) -> reqwest::Response {
        self.http
            .post(format!("http://{}/api/v1/notify", self.addr))
            .header("authorization", bearer())
            .header("content-type", "application/json")
            .body(r#"{"channel":"announcements","text":"hello"}"#)
            .send()
            .await
            .expect("server answers")
    }

    /// The methods of the upload flow's calls so far, in order.
    fn upload_calls(&self) -> Vec<String> {
        self.slack
            .all_calls()
            .into_iter()
            .map(|c| c.method)
            .filter(|m| UPLOAD_FLOW.contains(&m.as_str()))
            .collect()
    }
}

fn bearer() -> String {
    format!("Bearer {API_TOKEN}")
}

/// Size and number of distinct colours of a PNG.
fn decode(png: &[u8]) -> (u32, u32, usize) {
    let mut reader = png::Decoder::new(std::io::Cursor::new(png))
        .read_info()
        .expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("a size")];
    let info = reader.next_frame(&mut buf).expect("a frame");
    let colours: HashSet<&[u8]> = buf[..info.buffer_size()].chunks_exact(3).collect();
    (info.width, info.height, colours.len())
}

fn spec() -> Value {
    json!({
        "type": "line",
        "title": "Signups",
        "labels": ["mon", "tue", "wed", "thu", "fri"],
        "datasets": [
            {"label": "web", "data": [3, 5, 4, 8, 13]},
            {"label": "app", "data": [1, 2, null, 5, 6]}
        ]
    })
}

#[tokio::test]
async fn a_chart_command_in_a_dm_uploads_its_png_into_the_conversation() {
    let app = start(|_| {}).await;
    assert_eq!(
        app.say("Ev0CHART1", "chart deploys staging 7d", None).await,
        200
    );

    let complete = app.slack.wait_for("files.completeUploadExternal", 1).await;
    assert_eq!(app.upload_calls(), UPLOAD_FLOW, "the three calls, in order");
    let get_url = &app.slack.calls("files.getUploadURLExternal")[0];
    assert_eq!(
        get_url.header("authorization"),
        Some(format!("Bearer {}", app.slack.bot_token()).as_str())
    );
    let length: usize = get_url
        .arg("length")
        .expect("length")
        .parse()
        .expect("a number");

    let done = &complete[0];
    assert_eq!(done.arg("channel_id"), Some("D0CHARTS"));
    assert_eq!(done.arg("thread_ts"), None);
    let comment = done
        .arg("initial_comment")
        .expect("the summary beside the chart");
    assert!(
        comment.contains("Deploys on staging, last 7 days*: 4 (3 succeeded, 1 failed)"),
        "{comment}"
    );
    // The summary travels with the file: no separate message.
    assert!(app.slack.calls("chat.postMessage").is_empty());

    let uploads = app.slack.uploads();
    assert_eq!(uploads.len(), 1);
    let upload = &uploads[0];
    assert!(upload.completed);
    assert_eq!(upload.filename, "deploys-on-staging-last-7-days.png");
    assert_eq!(
        upload.title.as_deref(),
        Some("Deploys on staging, last 7 days")
    );
    let bytes = upload.bytes.as_deref().expect("bytes uploaded");
    assert_eq!(bytes.len(), length, "length announced = bytes sent");
    let (w, h, colours) = decode(bytes);
    assert_eq!((w, h), (800, 400));
    assert!(colours > 20, "{colours} colours: blank?");
}

#[tokio::test]
async fn a_chart_asked_for_in_a_thread_is_shared_in_that_thread() {
    let app = start(|_| {}).await;
    app.say("Ev0CHART2", "chart deploys", Some("1714056000.000100"))
        .await;
    let complete = app.slack.wait_for("files.completeUploadExternal", 1).await;
    assert_eq!(complete[0].arg("channel_id"), Some("D0CHARTS"));
    assert_eq!(complete[0].arg("thread_ts"), Some("1714056000.000100"));
}

#[tokio::test]
async fn when_slack_refuses_the_file_the_summary_comes_with_the_reason() {
    let app = start(|_| {}).await;
    app.slack.script(
        "files.completeUploadExternal",
        [Scripted::Error("not_in_channel")],
    );
    app.say("Ev0CHART3", "chart deploys staging", None).await;
    let posted = app.slack.wait_for("chat.postMessage", 1).await;
    let text = posted[0].arg("text").expect("text");
    assert!(text.contains("Deploys on staging"), "{text}");
    assert!(
        text.contains("I could not post the chart here: Slack said `not_in_channel`. Invite me"),
        "{text}"
    );
}

#[tokio::test]
async fn the_chart_api_posts_the_png_to_a_channel_alias() {
    let app = start(|_| {}).await;
    let mut body = spec();
    body["channel"] = "announcements".into();
    let res = app.chart("", Some(&bearer()), &body).await;
    assert_eq!(res.status().as_u16(), 200);
    let answer: Value = res.json().await.expect("JSON");
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(answer["channel"], "C0ANNOUNCE");
    assert_eq!(app.upload_calls(), UPLOAD_FLOW);
    let complete = &app.slack.calls("files.completeUploadExternal")[0];
    assert_eq!(complete.arg("channel_id"), Some("C0ANNOUNCE"));
    let upload = &app.slack.uploads()[0];
    assert_eq!(answer["file_id"], upload.file_id.as_str());
    assert_eq!(upload.filename, "signups.png");
    let (w, h, colours) = decode(upload.bytes.as_deref().expect("bytes"));
    assert_eq!((w, h), (800, 400));
    assert!(colours > 10);
}

#[tokio::test]
async fn the_chart_api_returns_the_png_with_format_png() {
    let app = start(|_| {}).await;
    let mut body = spec();
    body["width"] = 640.into();
    body["height"] = 300.into();
    let res = app.chart("?format=png", Some(&bearer()), &body).await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        res.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("image/png")
    );
    let png = res.bytes().await.expect("body");
    let (w, h, colours) = decode(&png);
    assert_eq!((w, h), (640, 300));
    assert!(colours > 10);
    assert!(app.slack.all_calls().is_empty(), "nothing posted");
}

#[tokio::test]
async fn the_chart_api_refuses_a_bad_chart_with_the_reason() {
    let app = start(|_| {}).await;
    let cases = [
        (
            json!({"type": "pie", "labels": ["a"], "datasets": [{"label": "x", "data": [1]}], "channel": "C1"}),
            "`type` must be `line` or `bar`, got `pie`",
        ),
        (
            json!({"type": "bar", "labels": ["a", "b"], "datasets": [{"label": "x", "data": [1]}], "channel": "C1"}),
            "dataset 1 (`x`) has 1 values for 2 labels",
        ),
        (
            json!({"type": "bar", "labels": ["a"], "datasets": [{"label": "x", "data": ["many"]}], "channel": "C1"}),
            "not a chart description",
        ),
        (
            json!({"type": "bar", "labels": ["a"], "datasets": [{"label": "x", "data": [1]}]}),
            "give `channel`",
        ),
        (
            json!({"type": "bar", "labels": ["a"], "datasets": [{"label": "x", "data": [1]}], "channel": "nowhere"}),
            "unknown channel `nowhere`",
        ),
    ];
    for (body, reason) in cases {
        let res = app.chart("", Some(&bearer()), &body).await;
        assert_eq!(res.status().as_u16(), 400, "{body}");
        let answer: Value = res.json().await.expect("JSON");
        let got = answer["error"].as_str().expect("a reason");
        assert!(got.contains(reason), "{body}: {got}");
    }
    let res = app.chart("?format=svg", Some(&bearer()), &spec()).await;
    assert_eq!(res.status().as_u16(), 400);
    assert!(app.slack.all_calls().is_empty(), "nothing reached Slack");
}

#[tokio::test]
async fn the_chart_api_wants_the_token() {
    let app = start(|_| {}).await;
    for auth in [None, Some("Bearer not-the-token"), Some("Basic abc")] {
        let res = app.chart("?format=png", auth, &spec()).await;
        assert_eq!(res.status().as_u16(), 401, "{auth:?}");
        let answer: Value = res.json().await.expect("JSON");
        assert!(answer["error"].is_string());
        assert!(!answer.to_string().contains(API_TOKEN));
    }
}

#[tokio::test]
async fn each_token_is_rate_limited_on_chart_and_notify() {
    let app = start(|c| {
        c.api_rate = Some(Rate {
            requests: 2,
            per: Duration::from_secs(60),
        })
    })
    .await;
    for _ in 0..2 {
        let res = app.chart("?format=png", Some(&bearer()), &spec()).await;
        assert_eq!(res.status().as_u16(), 200);
    }
    let res = app.chart("?format=png", Some(&bearer()), &spec()).await;
    assert_eq!(res.status().as_u16(), 429);
    let retry: u64 = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=30).contains(&retry), "{retry}");
    let answer: Value = res.json().await.expect("JSON");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("2/min")),
        "{answer}"
    );

    // notify has its own allowance of the same size.
    for _ in 0..2 {
        assert_eq!(app.notify().await.status().as_u16(), 200);
    }
    let res = app.notify().await;
    assert_eq!(res.status().as_u16(), 429);
    assert!(res.headers().get("retry-after").is_some());
    assert_eq!(app.slack.calls("chat.postMessage").len(), 2);
}
