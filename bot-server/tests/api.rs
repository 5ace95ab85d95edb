//! `/api/v1/status` and `/api/v1/notify` on the real server, with a fake probe and
//! the Slack stand-in.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bot_core::config::{Config, Secret};
use bot_core::ports::{HttpSnapshot, Probe, ProbeError};
use bot_core::Bot;
use bot_server::{AppState, ServeConfig, Server};
use common::{Scripted, StandIn, SECRET, TOKEN};
use serde_json::{json, Value};
use tokio::sync::oneshot;

const API_TOKEN: &str = "api-token-for-tests";

/// Healthy everywhere except the instance whose URL mentions `green`, which refuses.
/// Counts the probes it answers.
struct GreenIsDown(Arc<std::sync::atomic::AtomicU64>);

#[async_trait]
impl Probe for GreenIsDown {
    async fn get(&self, url: &str, _timeout: Duration) -> Result<HttpSnapshot, ProbeError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if url.contains("green") {
            return Err(ProbeError::Refused);
        }
        Ok(HttpSnapshot {
            status: 200,
            body: r#"{"status":"ok","version":"1.4.2"}"#.into(),
            latency: Duration::from_millis(12),
        })
    }
}

/// The kit's config plus a protected `master` copy of `staging`, a channel alias,
/// versions read from `/version`, and a green URL with credentials in it.
fn config() -> Config {
    let mut config = common::config();
    for env in &mut config.environments {
        for pool in &mut env.pools {
            for m in &mut pool.members {
                m.health.version_pointer = Some("/version".into());
                m.url = format!("http://127.0.0.1:9/{}", m.name);
            }
            pool.members[1].url = "http://ops:hunter2@127.0.0.1:9/green?key=s3cret".into();
        }
    }
    let mut master = config.environments[0].clone();
    master.name = "master".into();
    master.aliases = vec!["master".into()];
    master.protected = true;
    config.environments.insert(0, master);
    config
        .channels
        .insert("announcements".into(), "C0ANNOUNCE".into());
    config
}

struct App {
    addr: std::net::SocketAddr,
    slack: StandIn,
    probes: Arc<std::sync::atomic::AtomicU64>,
    http: reqwest::Client,
    _shutdown: oneshot::Sender<()>,
}

async fn start(api_token: Option<&str>) -> App {
    let slack = StandIn::start().await;
    let probes = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let bot = Bot::builder(config())
        .probe(Arc::new(GreenIsDown(probes.clone())))
        .build();
    let mut serve = ServeConfig::new(
        "127.0.0.1:0".parse().expect("addr"),
        Secret::new(SECRET),
        Secret::new(TOKEN),
    );
    serve.api_url = slack.api_url();
    serve.bot_user_id = Some(common::BOT_USER.into());
    serve.api_token = api_token.map(Secret::new);
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
        probes,
        http: reqwest::Client::new(),
        _shutdown: tx,
    }
}

impl App {
    async fn get(&self, path: &str) -> (u16, Value) {
        self.get_as(path, None).await
    }

    async fn get_as(&self, path: &str, auth: Option<&str>) -> (u16, Value) {
        let mut req = self.http.get(format!("http://{}{path}", self.addr));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let res = req.send().await.expect("server answers");
        let status = res.status().as_u16();
        (status, res.json().await.expect("JSON answer"))
    }

    async fn notify(&self, auth: Option<&str>, body: &str) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("http://{}/api/v1/notify", self.addr))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let res = req.send().await.expect("server answers");
        let status = res.status().as_u16();
        (status, res.json().await.expect("JSON answer"))
    }
}

fn bearer() -> String {
    format!("Bearer {API_TOKEN}")
}

#[tokio::test]
async fn status_lists_every_instance_with_the_down_one_and_the_active_members() {
    let app = start(Some(API_TOKEN)).await;
    let (code, body) = app.get_as("/api/v1/status", Some(&bearer())).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["total"], 4, "{body}");
    assert_eq!(body["healthy"], 2, "{body}");
    let envs = body["environments"].as_array().expect("environments");
    let names: Vec<&str> = envs.iter().filter_map(|e| e["name"].as_str()).collect();
    assert_eq!(names, ["master", "staging"]);
    assert_eq!(envs[0]["protected"], true);
    assert_eq!(envs[1]["protected"], false);

    let pool = &envs[0]["pools"][0];
    assert_eq!(pool["name"], "api");
    assert_eq!(pool["active"], "blue");
    assert_eq!(pool["switch_error"], Value::Null);
    let blue = &pool["members"][0];
    assert_eq!(blue["name"], "blue");
    assert_eq!(blue["active"], true);
    assert_eq!(blue["healthy"], true);
    assert_eq!(blue["down"], Value::Null);
    assert_eq!(blue["problem"], Value::Null);
    assert_eq!(blue["version"], "1.4.2");
    assert_eq!(blue["latency_ms"], 12.0);
    assert_eq!(blue["url"], "http://127.0.0.1:9/blue");

    let green = &pool["members"][1];
    assert_eq!(green["name"], "green");
    assert_eq!(green["active"], false);
    assert_eq!(green["healthy"], false);
    assert_eq!(green["down"], "connection refused");
    assert_eq!(green["problem"], "down: connection refused");
    assert_eq!(green["latency_ms"], Value::Null);
    assert_eq!(green["version"], Value::Null);
    let url = green["url"].as_str().expect("url");
    assert!(
        !url.contains("hunter2") && !url.contains("s3cret"),
        "credentials leak in {url}"
    );
    assert!(url.contains("127.0.0.1:9/green"), "{url}");

    // Without the token: the same status, without the addresses.
    let (code, anonymous) = app.get("/api/v1/status").await;
    assert_eq!(code, 200, "{anonymous}");
    assert_eq!(anonymous["healthy"], 2, "{anonymous}");
    assert!(
        !anonymous.to_string().contains("127.0.0.1"),
        "no URL without the API token: {anonymous}"
    );
}

#[tokio::test]
async fn a_status_flood_probes_each_instance_once_and_each_client_is_limited() {
    let app = start(None).await;
    let answers = futures::future::join_all((0..200).map(|_| app.get("/api/v1/status"))).await;
    let ok = answers.iter().filter(|(c, _)| *c == 200).count();
    let limited = answers.iter().filter(|(c, _)| *c == 429).count();
    assert_eq!(ok + limited, 200, "every request answered");
    assert_eq!(
        ok, 60,
        "the first 60 from this address (CROSSROADS_STATUS_RATE_LIMIT 60/min)"
    );
    assert_eq!(app.probes.load(std::sync::atomic::Ordering::SeqCst) % 4, 0);
    assert!(
        app.probes.load(std::sync::atomic::Ordering::SeqCst) <= 8,
        "one round (two at most) of 4 probes for 60 answers: {}",
        app.probes.load(std::sync::atomic::Ordering::SeqCst)
    );
}

#[tokio::test]
async fn status_can_be_limited_to_one_environment() {
    let app = start(None).await;
    let (code, body) = app.get("/api/v1/status?env=staging").await;
    assert_eq!(code, 200, "{body}");
    let envs = body["environments"].as_array().expect("environments");
    assert_eq!(envs.len(), 1, "{body}");
    assert_eq!(envs[0]["name"], "staging");
    assert_eq!(body["total"], 2);
    assert_eq!(body["healthy"], 1);

    let (code, body) = app.get("/api/v1/status?env=prod").await;
    assert_eq!(code, 404, "{body}");
    let reason = body["error"].as_str().expect("error reason");
    assert!(
        reason.contains("prod") && reason.contains("staging"),
        "{reason}"
    );
}

#[tokio::test]
async fn notify_without_the_right_token_is_refused_and_posts_nothing() {
    let app = start(Some(API_TOKEN)).await;
    let body = r#"{"channel":"announcements","text":"hi"}"#;

    let (code, answer) = app.notify(None, body).await;
    assert_eq!(code, 401, "{answer}");
    assert!(answer["error"].is_string());

    let (code, answer) = app.notify(Some("Bearer not-the-token"), body).await;
    assert_eq!(code, 401, "{answer}");
    assert!(!answer.to_string().contains(API_TOKEN));

    let (code, _) = app.notify(Some(API_TOKEN), body).await;
    assert_eq!(code, 401, "a token without the Bearer scheme");

    assert!(app.slack.calls("chat.postMessage").is_empty());
}

#[tokio::test]
async fn notify_is_disabled_without_a_configured_token() {
    let app = start(None).await;
    let (code, answer) = app
        .notify(Some("Bearer anything"), r#"{"channel":"C1","text":"hi"}"#)
        .await;
    assert_eq!(code, 503);
    assert_eq!(
        answer["error"],
        "notify is disabled: CROSSROADS_API_TOKEN is not set"
    );
    assert!(app.slack.calls("chat.postMessage").is_empty());
}

#[tokio::test]
async fn notify_rejects_bad_bodies_with_a_reason() {
    let app = start(Some(API_TOKEN)).await;
    let auth = bearer();
    for (body, needle) in [
        ("{not json", "not a valid notify request"),
        (r#"{"text":"no channel"}"#, "channel"),
        (r#"{"channel":"C1"}"#, "`text` or `blocks`"),
        (r#"{"channel":"C1","text":"  "}"#, "`text` or `blocks`"),
        (r#"{"channel":"C1","blocks":{"a":1}}"#, "array"),
        (
            r#"{"channel":"release-train","text":"hi"}"#,
            "announcements",
        ),
    ] {
        let (code, answer) = app.notify(Some(&auth), body).await;
        assert_eq!(code, 400, "{body} → {answer}");
        let reason = answer["error"].as_str().expect("reason");
        assert!(reason.contains(needle), "{body} → {reason}");
    }
    assert!(app.slack.calls("chat.postMessage").is_empty());

    let huge = json!({"channel": "C1", "text": "x".repeat(1024 * 1024 + 1)}).to_string();
    let (code, answer) = app.notify(Some(&auth), &huge).await;
    assert_eq!(code, 413, "{answer}");
}

#[tokio::test]
async fn notify_posts_once_to_the_resolved_channel() {
    let app = start(Some(API_TOKEN)).await;
    let blocks =
        json!([{"type": "section", "text": {"type": "mrkdwn", "text": "*v1.4.2* is out"}}]);
    let body = json!({"channel": "announcements", "text": "v1.4.2 is out", "blocks": blocks});
    let (code, answer) = app.notify(Some(&bearer()), &body.to_string()).await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["ok"], true);
    assert_eq!(answer["channel"], "C0ANNOUNCE");
    assert!(
        answer["ts"].as_str().is_some_and(|ts| !ts.is_empty()),
        "{answer}"
    );

    let calls = app.slack.calls("chat.postMessage");
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].body["channel"], "C0ANNOUNCE");
    assert_eq!(calls[0].body["text"], "v1.4.2 is out");
    assert_eq!(calls[0].body["blocks"], blocks);
    assert_eq!(
        calls[0].authorization.as_deref(),
        Some(format!("Bearer {TOKEN}").as_str()),
        "posted with the bot token, not the API token"
    );

    let (code, answer) = app
        .notify(
            Some(&bearer()),
            r##"{"channel":"#deploys","text":"hello"}"##,
        )
        .await;
    assert_eq!(code, 200, "{answer}");
    let calls = app.slack.calls("chat.postMessage");
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].body["channel"], "#deploys");
    assert_eq!(calls[1].body.get("blocks"), None);
}

#[tokio::test]
async fn notify_reports_a_slack_refusal_as_bad_gateway() {
    let app = start(Some(API_TOKEN)).await;
    app.slack
        .script("chat.postMessage", &[Scripted::Error("channel_not_found")]);
    let (code, answer) = app
        .notify(Some(&bearer()), r#"{"channel":"C0GONE","text":"hi"}"#)
        .await;
    assert_eq!(code, 502, "{answer}");
    assert_eq!(answer["error"], "slack: channel_not_found");
    assert_eq!(app.slack.calls("chat.postMessage").len(), 1);
}

#[tokio::test]
async fn api_requests_are_counted_in_metrics() {
    let app = start(Some(API_TOKEN)).await;
    let _ = app.get("/api/v1/status").await;
    let _ = app.notify(None, r#"{"channel":"C1","text":"hi"}"#).await;
    let metrics = app
        .http
        .get(format!("http://{}/metrics", app.addr))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("/api/v1/status") && l.contains("200")),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("/api/v1/notify") && l.contains("401")),
        "{metrics}"
    );
}
