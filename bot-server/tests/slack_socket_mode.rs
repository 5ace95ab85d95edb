//! Socket Mode on the wire: the server opens real websockets to the Slack stand-in
//! (`apps.connections.open`, `hello`), acknowledges envelopes within Slack's 3 s once
//! they are accepted, answers DMs, clicks and slash commands, answers a redelivered
//! envelope once, replaces a connection Slack asks it to drop before dropping it,
//! survives frames that are not Slack's, and is not ready while no socket is open.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use bot_core::config::Secret;
use bot_core::Bot;
use bot_server::slack::ack::{BUSY_TEXT, UNAVAILABLE_TEXT};
use bot_server::{AppState, ServeConfig, Server, Slack};
use common::{block_text, button_values, config, health_button, FakeCi, FakeProbe};
use crossroads_sim::slack::{DisconnectReason, Envelope, Malformed, SlackStandIn, RESPONSE_URL};
use crossroads_sim::Scripted;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The real server in Socket Mode against the Slack stand-in.
struct SocketApp {
    slack: SlackStandIn,
    bot: Bot,
    ci: Arc<FakeCi>,
    transport: Slack,
    addr: std::net::SocketAddr,
    http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl Drop for SocketApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl SocketApp {
    async fn start() -> Self {
        Self::start_with(1, |_| {}, |_| {}).await
    }

    /// One socket, with state in `store` instead of memory.
    async fn start_on(store: Option<Arc<dyn bot_core::ports::Store>>) -> Self {
        Self::start_full(1, |_| {}, |_| {}, store).await
    }

    /// `connections` sockets; `before` runs on the stand-in before the server starts.
    async fn start_with(
        connections: usize,
        tweak: impl FnOnce(&mut ServeConfig),
        before: impl FnOnce(&SlackStandIn),
    ) -> Self {
        Self::start_full(connections, tweak, before, None).await
    }

    async fn start_full(
        connections: usize,
        tweak: impl FnOnce(&mut ServeConfig),
        before: impl FnOnce(&SlackStandIn),
        store: Option<Arc<dyn bot_core::ports::Store>>,
    ) -> Self {
        let slack = SlackStandIn::start().await.expect("Slack stand-in");
        before(&slack);
        let ci = Arc::new(FakeCi::new(5));
        let mut builder = Bot::builder(config())
            .probe(Arc::new(FakeProbe))
            .ci(ci.clone());
        if let Some(store) = store {
            builder = builder.store(store);
        }
        let bot = builder.build();
        let mut config = ServeConfig::new(
            "127.0.0.1:0".parse().expect("addr"),
            Secret::new("unused-signing-secret"),
            Secret::new(slack.bot_token()),
        );
        config.api_url = slack.api_url();
        config.bot_user_id = Some(slack.setup().bot_user_id.clone());
        config.app_token = Some(Secret::new(slack.app_token()));
        config.socket_connections = connections;
        tweak(&mut config);
        let state = AppState::new(&config, bot.clone()).expect("state");
        let transport = state.slack.clone();
        let server = Server::bind(config.listen, state)
            .await
            .expect("bind")
            .socket_mode(
                config.app_token.clone().expect("app token"),
                config.socket_connections,
            );
        let addr = server.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(server.run_until(async move {
            let _ = rx.await;
        }));
        Self {
            slack,
            bot,
            ci,
            transport,
            addr,
            http: reqwest::Client::new(),
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    async fn readyz(&self) -> u16 {
        self.http
            .get(format!("http://{}/readyz", self.addr))
            .send()
            .await
            .expect("the HTTP side answers")
            .status()
            .as_u16()
    }

    /// Polls `/readyz` (bounded) until it answers `status`.
    async fn wait_readyz(&self, status: u16) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if self.readyz().await == status {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "/readyz did not answer {status} within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends a DM event envelope; returns its envelope id and the event's `event_id`.
    fn dm(&self, channel: &str, text: &str) -> (String, String) {
        let payload = self.slack.message_event(channel, "U1", text);
        let event_id = payload["event_id"].as_str().expect("event_id").to_owned();
        let id = self
            .slack
            .send(Envelope::events_api(payload))
            .expect("a connection is open");
        (id, event_id)
    }

    async fn settle(&self) {
        assert!(
            self.transport.intake().drain(Duration::from_secs(10)).await,
            "background work did not finish within 10s"
        );
    }

    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let ended = tokio::time::timeout(Duration::from_secs(15), server)
                .await
                .expect("the server stops");
            ended.expect("server task").expect("server result");
        }
    }
}

/// Posts to `channel` so far.
fn posts_to(slack: &SlackStandIn, channel: &str) -> Vec<Value> {
    slack
        .calls("chat.postMessage")
        .into_iter()
        .filter(|c| c.arg("channel") == Some(channel))
        .map(|c| c.body)
        .collect()
}

/// Waits (bounded) until `envelope_id` has been acknowledged `n` times.
async fn wait_acks(slack: &SlackStandIn, envelope_id: &str, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let acks: Vec<_> = slack
            .acks()
            .into_iter()
            .filter(|a| a.envelope_id == envelope_id)
            .collect();
        if acks.len() >= n {
            assert!(
                acks.iter()
                    .all(|a| a.delay.is_some_and(|d| d < Duration::from_secs(3))),
                "{acks:?}"
            );
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{envelope_id} acknowledged {} time(s), not {n}",
            acks.len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_dm_is_acknowledged_within_three_seconds_and_answered() {
    let app = SocketApp::start().await;
    app.slack.wait_for_open_connections(1).await;
    let open = app.slack.wait_for("apps.connections.open", 1).await;
    assert_eq!(
        open[0].header("authorization"),
        Some(format!("Bearer {}", app.slack.app_token()).as_str()),
        "the connection is opened with the app-level token"
    );

    let (id, _) = app.dm("D1", "hello");
    let ack = app.slack.wait_for_ack(&id).await;
    let delay = ack.delay.expect("acked on the connection it came on");
    assert!(delay < Duration::from_secs(3), "acked after {delay:?}");
    assert_eq!(
        ack.payload, None,
        "events are acknowledged without a payload"
    );

    let answer = app
        .slack
        .wait_for_one("chat.postMessage", |c| c.arg("channel") == Some("D1"))
        .await;
    let expected = app.bot.handle(bot_core::Request::text("U1", "hello")).await;
    assert_eq!(answer.arg("text"), Some(expected.to_plain_text().as_str()));
    app.stop().await;
}

#[tokio::test]
async fn a_redelivered_envelope_is_acknowledged_again_and_answered_once() {
    let app = SocketApp::start().await;
    app.slack.wait_for_open_connections(1).await;
    let (id, _) = app.dm("D2", "hello");
    app.slack.wait_for_ack(&id).await;
    let retry = app.slack.resend(&id, "timeout").expect("resend");
    assert_eq!(retry.retry_attempt, 1);
    wait_acks(&app.slack, &id, 2).await;
    app.slack.wait_for("chat.postMessage", 1).await;
    app.settle().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(posts_to(&app.slack, "D2").len(), 1, "answered once");
    app.stop().await;
}

#[tokio::test]
async fn a_click_edits_the_clicked_message_and_a_slash_command_is_answered() {
    let app = SocketApp::start().await;
    app.slack.wait_for_open_connections(1).await;

    // `health` without a target: one button per instance.
    let (id, _) = app.dm("D3", "health");
    app.slack.wait_for_ack(&id).await;
    let asked = app
        .slack
        .wait_for_one("chat.postMessage", |c| c.arg("channel") == Some("D3"))
        .await;
    let posted = app
        .slack
        .messages()
        .into_iter()
        .find(|m| m.channel == "D3")
        .expect("the question is stored");
    assert_eq!(
        button_values(&asked.body).len(),
        2,
        "{}",
        block_text(&asked.body)
    );
    // Button values are opaque; the label names the instance.
    let button = asked.body["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .find(|e| {
            e["text"]["text"]
                .as_str()
                .is_some_and(|t| t.contains("blue"))
        })
        .expect("a button for blue");
    let (Some(action_id), Some(blue)) = (button["action_id"].as_str(), button["value"].as_str())
    else {
        panic!("the button has an action_id and a value: {button}");
    };
    let click = app
        .slack
        .block_actions("U1", "D3", &posted.ts, action_id, blue);
    let id = app.slack.send(Envelope::interactive(click)).expect("send");
    let ack = app.slack.wait_for_ack(&id).await;
    assert!(ack.delay.is_some_and(|d| d < Duration::from_secs(3)));
    let edit = app
        .slack
        .wait_for_one("chat.update", |c| c.arg("ts") == Some(posted.ts.as_str()))
        .await;
    assert!(
        block_text(&edit.body).contains("staging api blue"),
        "{}",
        block_text(&edit.body)
    );

    let command = app.slack.slash_command("/crossroads", "hello", "U1", "C1");
    let response_url = command["response_url"]
        .as_str()
        .expect("response_url")
        .to_owned();
    let id = app
        .slack
        .send(Envelope::slash_commands(command))
        .expect("send");
    let ack = app.slack.wait_for_ack(&id).await;
    let payload = ack.payload.expect("the immediate answer rides on the ack");
    assert_eq!(payload["text"], "Working on `hello`…");
    assert_eq!(payload["response_type"], "ephemeral");
    let answer = app
        .slack
        .wait_for_one(RESPONSE_URL, |c| response_url.ends_with(&c.path))
        .await;
    assert_eq!(answer.body["response_type"], "in_channel");
    app.stop().await;
}

#[tokio::test]
async fn a_disconnect_opens_the_new_connection_before_closing_the_old_one() {
    for reason in [
        DisconnectReason::RefreshRequested,
        DisconnectReason::Warning,
    ] {
        let app = SocketApp::start().await;
        let first = app.slack.wait_for_open_connections(1).await;
        app.slack
            .disconnect(reason, Some(first[0].id))
            .expect("disconnect");
        let all = app.slack.wait_for_connections_opened(2).await;
        let after = app.slack.wait_for_open_connections(1).await;
        let old = after.iter().find(|c| c.id == all[0].id).expect("old");
        let new = after.iter().find(|c| c.id == all[1].id).expect("new");
        let closed = old.closed_at.expect("the old connection was closed");
        assert!(
            new.opened_at < closed,
            "{reason:?}: the new connection opened before the old one closed"
        );
        assert!(new.closed_at.is_none());
        assert_eq!(app.readyz().await, 200, "ready throughout");

        let (id, _) = app.dm("D4", "hello");
        assert_eq!(app.slack.wait_for_ack(&id).await.connection, new.id);
        app.slack
            .wait_for_one("chat.postMessage", |c| c.arg("channel") == Some("D4"))
            .await;
        app.stop().await;
    }
}

#[tokio::test]
async fn frames_that_are_not_slacks_are_skipped_and_the_connection_lives_on() {
    let app = SocketApp::start().await;
    app.slack.wait_for_open_connections(1).await;
    for kind in [Malformed::NotJson, Malformed::NoType, Malformed::Binary] {
        app.slack.send_malformed(kind).expect("send");
    }
    app.slack
        .send_text(r#"{"type":"events_api","payload":{}}"#, None)
        .expect("send");
    // An envelope whose payload is unreadable is still acknowledged (or Slack would
    // deliver it again), and nothing runs.
    let id = app
        .slack
        .send(Envelope::slash_commands(
            serde_json::json!({"text": "no user"}),
        ))
        .expect("send");
    app.slack.wait_for_ack(&id).await;

    let (id, _) = app.dm("D5", "hello");
    app.slack.wait_for_ack(&id).await;
    app.slack
        .wait_for_one("chat.postMessage", |c| c.arg("channel") == Some("D5"))
        .await;
    assert_eq!(app.slack.connections().len(), 1, "never reconnected");
    assert_eq!(app.slack.open_connections(), 1);
    assert!(app.slack.calls(RESPONSE_URL).is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_frame_over_a_mebibyte_closes_the_connection_and_a_new_one_takes_over() {
    let app = SocketApp::start().await;
    let first = app.slack.wait_for_open_connections(1).await[0].id;
    // Slack's envelopes are a few kilobytes: 2 MiB is not Slack, and is not read whole.
    let huge = format!(
        r#"{{"type":"events_api","envelope_id":"huge","payload":{{"pad":"{}"}}}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    app.slack.send_text(&huge, Some(first)).expect("send");
    let all = app.slack.wait_for_connections_opened(2).await;
    assert!(
        all.iter().any(|c| c.id == first && c.closed_at.is_some()),
        "the connection that carried it was closed: {all:?}"
    );
    app.slack.wait_for_open_connections(1).await;
    let (id, _) = app.dm("D6", "hello");
    app.slack.wait_for_ack(&id).await;
    app.slack
        .wait_for_one("chat.postMessage", |c| c.arg("channel") == Some("D6"))
        .await;
    assert!(
        app.slack.acks().iter().all(|a| a.envelope_id != "huge"),
        "never acknowledged"
    );
    app.stop().await;
}

#[tokio::test]
async fn not_ready_while_no_socket_is_open() {
    // Slack refuses the first two websocket handshakes.
    let app = SocketApp::start_with(
        1,
        |_| {},
        |slack| {
            slack.script(
                crossroads_sim::slack::LINK,
                [Scripted::Status(503), Scripted::Status(503)],
            )
        },
    )
    .await;
    assert_eq!(app.readyz().await, 503, "no socket yet");
    app.slack.wait_for_open_connections(1).await;
    app.wait_readyz(200).await;

    // Slack goes away: the socket is cut, the bot is not ready until it is back.
    app.slack.stop_listening().await;
    app.wait_readyz(503).await;
    let body: Value = app
        .http
        .get(format!("http://{}/readyz", app.addr))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        body["error"],
        "not ready: no Socket Mode connection is open"
    );
    app.slack.listen_again().await.expect("listen again");
    app.slack.wait_for_open_connections(1).await;
    app.wait_readyz(200).await;
    let (id, _) = app.dm("D6", "hello");
    app.slack.wait_for_ack(&id).await;
    app.stop().await;
}

#[tokio::test]
async fn several_connections_share_the_work_and_answer_each_event_once() {
    let app = SocketApp::start_with(3, |_| {}, |_| {}).await;
    app.slack.wait_for_open_connections(3).await;
    // The stand-in sends this envelope on every open connection: three deliveries.
    let (id, _) = app.dm("D7", "hello");
    wait_acks(&app.slack, &id, 3).await;
    app.settle().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(posts_to(&app.slack, "D7").len(), 1);
    // One connection lost: the others carry on, and it is replaced.
    let before = app.slack.connections();
    app.slack.cut_connection(before[0].id).expect("cut");
    app.slack.wait_for_connections_opened(4).await;
    app.slack.wait_for_open_connections(3).await;
    assert_eq!(app.readyz().await, 200);
    app.stop().await;
}

#[tokio::test]
async fn work_beyond_capacity_waits_in_the_inbox_and_is_answered_once_room_frees() {
    let app = SocketApp::start_with(1, |c| c.max_in_flight = 1, |_| {}).await;
    app.slack.wait_for_open_connections(1).await;
    app.ci.hold();
    let (id, _) = app.dm("D1", "build");
    app.slack.wait_for_ack(&id).await;
    app.ci.wait_started(1).await;

    // With no room, every kind of work is still acknowledged at once and taken.
    let (id, _) = app.dm("D9", "status");
    app.slack.wait_for_ack(&id).await;
    let mut mention = app.slack.message_event("C5", "U2", "<@UBOT> status");
    mention["event"]["type"] = "app_mention".into();
    let id = app.slack.send(Envelope::events_api(mention)).expect("send");
    app.slack.wait_for_ack(&id).await;
    let command = app.slack.slash_command("/crossroads", "status", "U1", "C1");
    let command_url = command["response_url"].as_str().expect("url").to_owned();
    let id = app
        .slack
        .send(Envelope::slash_commands(command))
        .expect("send");
    let ack = app.slack.wait_for_ack(&id).await;
    let payload = ack.payload.expect("an immediate answer");
    assert_eq!(payload["text"], "Working on `status`…", "not refused");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        posts_to(&app.slack, "D9").is_empty(),
        "nothing is answered while the work waits"
    );

    // Room frees: each waiting piece of work is done and answered, once.
    app.ci.release();
    let dm = app
        .slack
        .wait_for_one("chat.postMessage", |c| c.arg("channel") == Some("D9"))
        .await;
    assert!(block_text(&dm.body).contains("staging"), "{}", dm.body);
    app.slack
        .wait_for_one(RESPONSE_URL, |c| command_url.ends_with(&c.path))
        .await;
    // The mention: answered in its thread.
    app.slack
        .wait_for_one("chat.postMessage", |c| c.arg("channel") == Some("C5"))
        .await;
    app.settle().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(posts_to(&app.slack, "D9").len(), 1, "answered once");
    assert!(
        app.slack
            .calls("chat.postMessage")
            .iter()
            .all(|c| c.arg("text") != Some(BUSY_TEXT)),
        "nobody was told to try again"
    );
    app.stop().await;
}

/// Socket Mode cannot ask Slack to deliver again later: with the state store lost,
/// whoever wrote is told plainly to try again, and nothing runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_store_lost_work_is_answered_with_try_again_and_nothing_runs() {
    let Some(db) = crossroads_sim::postgres::fresh_database("socket_store_down").await else {
        return;
    };
    let store = bot_core::adapters::store::connect(&db.url, true)
        .await
        .expect("a fresh PostgreSQL store");
    let app = SocketApp::start_on(Some(store)).await;
    app.slack.wait_for_open_connections(1).await;
    // Issued while the store answers: a button to click later.
    let value = health_button(&app.bot, "set-lost", "blue").await;
    drop(db); // DROP DATABASE … WITH (FORCE): every connection is cut.

    // A DM: answered in the DM.
    let (id, _) = app.dm("D9", "build");
    app.slack.wait_for_ack(&id).await;
    // A channel mention: answered ephemerally, in its thread.
    let mut mention = app.slack.message_event("C5", "U2", "<@UBOT> build");
    mention["event"]["type"] = "app_mention".into();
    let mention_ts = mention["event"]["ts"].as_str().expect("ts").to_owned();
    let id = app.slack.send(Envelope::events_api(mention)).expect("send");
    app.slack.wait_for_ack(&id).await;
    // A click: told ephemerally; the message and its buttons stay.
    let click = app
        .slack
        .block_actions("U1", "D9", "1700000000.000001", "crossroads-0", &value);
    let click_url = click["response_url"].as_str().expect("url").to_owned();
    let id = app.slack.send(Envelope::interactive(click)).expect("send");
    app.slack.wait_for_ack(&id).await;
    // A slash command: the immediate answer says so.
    let command = app.slack.slash_command("/crossroads", "build", "U1", "C1");
    let id = app
        .slack
        .send(Envelope::slash_commands(command))
        .expect("send");
    let ack = app.slack.wait_for_ack(&id).await;
    let payload = ack.payload.expect("an immediate answer");
    assert_eq!(payload["text"], UNAVAILABLE_TEXT);
    assert_eq!(payload["response_type"], "ephemeral");

    let dm = app
        .slack
        .wait_for_one("chat.postMessage", |c| c.arg("channel") == Some("D9"))
        .await;
    assert_eq!(dm.arg("text"), Some(UNAVAILABLE_TEXT));
    let ephemeral = app.slack.wait_for("chat.postEphemeral", 1).await;
    assert_eq!(ephemeral[0].arg("channel"), Some("C5"));
    assert_eq!(ephemeral[0].arg("user"), Some("U2"));
    assert_eq!(ephemeral[0].arg("thread_ts"), Some(mention_ts.as_str()));
    assert_eq!(ephemeral[0].arg("text"), Some(UNAVAILABLE_TEXT));
    let clicked = app
        .slack
        .wait_for_one(RESPONSE_URL, |c| click_url.ends_with(&c.path))
        .await;
    assert_eq!(clicked.body["response_type"], "ephemeral");
    assert_eq!(clicked.body["replace_original"], false);
    assert_eq!(clicked.arg("text"), Some(UNAVAILABLE_TEXT));
    assert!(
        app.slack.calls("chat.update").is_empty(),
        "the message stays"
    );
    assert_eq!(app.ci.started_count(), 0, "nothing ran");
    app.stop().await;
}

/// `crossroads serve --socket-mode`, configured only by its environment, against the
/// stand-in over plain http: two connections, a DM answered, `/readyz` ready.
#[tokio::test]
async fn the_binary_serves_socket_mode_from_its_environment() {
    let slack = SlackStandIn::start().await.expect("Slack stand-in");
    let port = crossroads_sim::free_port().expect("a free port");
    let state = tempfile::tempdir().expect("a temporary directory");
    let database = format!("sqlite://{}", state.path().join("state.db").display());
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_crossroads"))
        .args(["serve", "--socket-mode", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .env("SLACK_API_URL", slack.api_url())
        .env("SLACK_BOT_TOKEN", slack.bot_token())
        .env("SLACK_APP_TOKEN", slack.app_token())
        .env("CROSSROADS_SOCKET_CONNECTIONS", "2")
        .env("CROSSROADS_DATABASE_URL", &database)
        .env_remove("SLACK_SIGNING_SECRET")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start crossroads serve --socket-mode");
    slack.wait_for_open_connections(2).await;
    let payload = slack.message_event("D8", "U0DEMO", "help");
    let id = slack.send(Envelope::events_api(payload)).expect("send");
    wait_acks(&slack, &id, 2).await;
    let answer = slack
        .wait_for_one("chat.postMessage", |c| c.arg("channel") == Some("D8"))
        .await;
    assert!(
        answer.arg("text").is_some_and(|t| t.contains("deploy")),
        "{:?}",
        answer.body
    );
    let ready = reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
        .await
        .expect("/readyz answers");
    assert_eq!(ready.status(), 200);
    let _ = child.kill().await;
}
