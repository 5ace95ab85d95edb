//! The Slack stand-in speaks Slack's wire format: Web API, uploads, response_url, faults, outage and Socket Mode.

use std::time::Duration;

use crossroads_sim::slack::{
    DisconnectReason, Envelope, Malformed, SlackSetup, SlackStandIn, RESPONSE_URL, UPLOAD,
};
use crossroads_sim::Scripted;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

/// POSTs JSON to a Web API method with the bot token; returns status and body.
async fn call(slack: &SlackStandIn, method: &str, body: Value) -> (u16, Value) {
    let resp = client()
        .post(format!("{}/{method}", slack.api_url()))
        .bearer_auth(slack.bot_token())
        .header("content-type", "application/json; charset=utf-8")
        .body(body.to_string())
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json answer"))
}

#[tokio::test]
async fn web_api_answers_like_slack() {
    let slack = SlackStandIn::start().await.expect("start");
    let c = client();

    let (status, v) = call(&slack, "auth.test", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(v["ok"], true);
    assert_eq!(v["user_id"], "UBOT");
    assert_eq!(v["bot_id"], "BBOT");

    // Missing and wrong tokens: HTTP 200 with ok:false.
    let v: Value = c
        .post(format!("{}/auth.test", slack.api_url()))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(v, json!({"ok": false, "error": "not_authed"}));
    let resp = c
        .post(format!("{}/chat.postMessage", slack.api_url()))
        .bearer_auth("xoxb-wrong")
        .json(&json!({"channel": "C1", "text": "hi"}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.expect("json")["error"],
        "invalid_auth"
    );

    // JSON post: unique increasing ts and the message echoed.
    let (_, first) = call(
        &slack,
        "chat.postMessage",
        json!({"channel": "C1", "text": "one"}),
    )
    .await;
    let (_, second) = call(
        &slack,
        "chat.postMessage",
        json!({"channel": "C1", "text": "two", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*two*"}}]}),
    )
    .await;
    assert_eq!(first["ok"], true);
    assert_eq!(first["channel"], "C1");
    let (ts1, ts2) = (
        first["ts"].as_str().expect("ts"),
        second["ts"].as_str().expect("ts"),
    );
    assert!(
        ts1.len() == 17 && ts1.as_bytes()[10] == b'.',
        "ts shape: {ts1}"
    );
    assert!(ts2 > ts1);
    assert_eq!(second["message"]["bot_id"], "BBOT");
    assert_eq!(second["message"]["blocks"][0]["type"], "section");

    // Form post: blocks arrive as JSON text and are recorded parsed.
    let blocks =
        json!([{"type": "section", "text": {"type": "mrkdwn", "text": "form"}}]).to_string();
    let v: Value = c
        .post(format!("{}/chat.postMessage", slack.api_url()))
        .form(&[
            ("token", slack.bot_token()),
            ("channel", "C2"),
            ("blocks", blocks.as_str()),
        ])
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(v["ok"], true, "{v}");
    let recorded = slack.calls("chat.postMessage");
    assert_eq!(recorded.len(), 4);
    let form_call = &recorded[3];
    assert_eq!(form_call.body["blocks"][0]["text"]["text"], "form");
    assert_eq!(
        form_call.header("Content-Type"),
        Some("application/x-www-form-urlencoded")
    );
    assert!(!form_call.raw.is_empty());

    // Missing arguments are Slack errors.
    let (_, v) = call(&slack, "chat.postMessage", json!({"channel": "C1"})).await;
    assert_eq!(v["error"], "no_text");

    // chat.update edits the stored message; an unknown ts is message_not_found.
    let (_, v) = call(
        &slack,
        "chat.update",
        json!({"channel": "C1", "ts": ts1, "text": "one, edited"}),
    )
    .await;
    assert_eq!(v["ok"], true);
    assert_eq!(v["ts"], ts1);
    assert_eq!(v["message"]["text"], "one, edited");
    let stored = slack.messages();
    assert_eq!(stored[0].message["text"], "one, edited");
    let (_, v) = call(
        &slack,
        "chat.update",
        json!({"channel": "C1", "ts": "1.2", "text": "x"}),
    )
    .await;
    assert_eq!(v["error"], "message_not_found");

    let (_, v) = call(
        &slack,
        "chat.postEphemeral",
        json!({"channel": "C1", "user": "U1", "text": "psst"}),
    )
    .await;
    assert_eq!(v["ok"], true);
    assert!(v["message_ts"].is_string());

    // Unknown methods, unless given an answer.
    let (_, v) = call(&slack, "conversations.open", json!({"users": "U1"})).await;
    assert_eq!(v["error"], "unknown_method");
    slack.set_answer("conversations.open", json!({"channel": {"id": "D1"}}));
    let (_, v) = call(&slack, "conversations.open", json!({"users": "U1"})).await;
    assert_eq!(v, json!({"ok": true, "channel": {"id": "D1"}}));
}

#[tokio::test]
async fn users_info_tells_time_zones() {
    let slack = SlackStandIn::start_with(SlackSetup::new().user_tz("U0PRAGUE", "Europe/Prague"))
        .await
        .expect("start");
    let c = client();
    let url = format!("{}/users.info", slack.api_url());

    // POST form, as Slack documents it.
    let v: Value = c
        .post(&url)
        .bearer_auth(slack.bot_token())
        .form(&[("user", "U0PRAGUE")])
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["user"]["id"], "U0PRAGUE");
    assert_eq!(v["user"]["tz"], "Europe/Prague");
    assert_eq!(v["user"]["tz_label"], "Central European Time");
    assert_eq!(v["user"]["tz_offset"], 3600);
    assert!(v["user"]["name"].is_string() && v["user"]["real_name"].is_string());

    // GET with a query string; a person not set up is in UTC (W… ids too).
    let v: Value = c
        .get(format!("{url}?user=W0ELSE"))
        .bearer_auth(slack.bot_token())
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["user"]["tz"], "UTC");
    assert_eq!(v["user"]["tz_offset"], 0);

    // Not a person's id, or none at all.
    let (_, v) = call(&slack, "users.info", json!({"user": "B0BOT"})).await;
    assert_eq!(v, json!({"ok": false, "error": "user_not_found"}));
    let (_, v) = call(&slack, "users.info", json!({})).await;
    assert_eq!(v["error"], "user_not_found");

    // Token checked like every method.
    let v: Value = c
        .post(&url)
        .form(&[("user", "U0PRAGUE")])
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(v["error"], "not_authed");

    // Recorded, and scriptable to fail.
    let calls = slack.calls("users.info");
    assert_eq!(calls.len(), 5);
    assert_eq!(calls[0].arg("user"), Some("U0PRAGUE"));
    assert_eq!(calls[1].arg("user"), Some("W0ELSE"));
    slack.script("users.info", [Scripted::Status(500)]);
    let resp = c
        .post(&url)
        .bearer_auth(slack.bot_token())
        .form(&[("user", "U0PRAGUE")])
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 500);
    assert_eq!(slack.wait_for("users.info", 6).await.len(), 6);
}

#[tokio::test]
async fn file_upload_flow() {
    let slack = SlackStandIn::start().await.expect("start");
    let c = client();

    // Step 1 as slack-morphism does it: GET with query parameters.
    let v: Value = c
        .get(format!(
            "{}/files.getUploadURLExternal?filename=build.log&length=11",
            slack.api_url()
        ))
        .bearer_auth(slack.bot_token())
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(v["ok"], true);
    let file_id = v["file_id"].as_str().expect("file id").to_owned();
    let upload_url = v["upload_url"].as_str().expect("url").to_owned();
    assert!(file_id.starts_with('F'));
    assert_eq!(upload_url, format!("{}/upload/{file_id}", slack.url()));

    // Completing before uploading: file_not_found.
    let (_, v) = call(
        &slack,
        "files.completeUploadExternal",
        json!({"files": [{"id": file_id}]}),
    )
    .await;
    assert_eq!(v, json!({"ok": false, "error": "file_not_found"}));

    // Step 2: raw bytes.
    let resp = c
        .post(&upload_url)
        .body("hello world")
        .send()
        .await
        .expect("upload");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.expect("text"), "OK - 11");

    // Step 3, form-encoded with `files` as JSON text.
    let files = json!([{"id": file_id, "title": "Build log"}]).to_string();
    let v: Value = c
        .post(format!("{}/files.completeUploadExternal", slack.api_url()))
        .bearer_auth(slack.bot_token())
        .form(&[
            ("files", files.as_str()),
            ("channel_id", "C9"),
            ("initial_comment", "here"),
            ("thread_ts", "1700000000.000100"),
        ])
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["files"][0]["id"], file_id.as_str());
    let up = &slack.uploads()[0];
    assert_eq!(up.bytes.as_deref(), Some(&b"hello world"[..]));
    assert!(up.completed);
    assert_eq!(up.channel_id.as_deref(), Some("C9"));
    assert_eq!(up.title.as_deref(), Some("Build log"));
    assert_eq!(up.thread_ts.as_deref(), Some("1700000000.000100"));

    // Multipart upload of a second file, completed with JSON.
    let (_, v) = call(
        &slack,
        "files.getUploadURLExternal",
        json!({"filename": "b.txt", "length": 3}),
    )
    .await;
    assert_eq!(v["ok"], true, "{v}");
    let url = v["upload_url"].as_str().expect("url");
    let body = "--B0\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.txt\"\r\nContent-Type: text/plain\r\n\r\nabc\r\n--B0--\r\n";
    let resp = c
        .post(url)
        .header("content-type", "multipart/form-data; boundary=B0")
        .body(body)
        .send()
        .await
        .expect("upload");
    assert_eq!(resp.text().await.expect("text"), "OK - 3");
    let id = v["file_id"].as_str().expect("id");
    let (_, v) = call(
        &slack,
        "files.completeUploadExternal",
        json!({"files": [{"id": id}], "channel_id": "C9"}),
    )
    .await;
    assert_eq!(v["ok"], true);
    assert_eq!(slack.calls(UPLOAD).len(), 2);
    assert_eq!(slack.uploads()[1].bytes.as_deref(), Some(&b"abc"[..]));
}

#[tokio::test]
async fn response_url_takes_five_posts() {
    let slack = SlackStandIn::start().await.expect("start");
    let url = slack.response_url();
    let c = client();
    for i in 0..5 {
        let resp = c
            .post(&url)
            .json(&json!({"text": format!("update {i}"), "replace_original": true}))
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.json::<Value>().await.expect("json"),
            json!({"ok": true})
        );
    }
    let resp = c
        .post(&url)
        .json(&json!({"text": "sixth"}))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.json::<Value>().await.expect("json")["error"],
        "used_url"
    );
    let calls = slack.calls(RESPONSE_URL);
    assert_eq!(calls.len(), 6);
    assert_eq!(calls[0].body["replace_original"], true);

    let expired =
        SlackStandIn::start_with(SlackSetup::new().response_url_limits(5, Duration::ZERO))
            .await
            .expect("start");
    let resp = c
        .post(expired.response_url())
        .json(&json!({"text": "late"}))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.json::<Value>().await.expect("json")["error"],
        "expired_url"
    );
}

#[tokio::test]
async fn scripted_faults_come_first_then_the_default() {
    let slack = SlackStandIn::start().await.expect("start");
    slack.script(
        "chat.postMessage",
        [
            Scripted::Status(503),
            Scripted::RateLimited {
                retry_after_secs: 7,
            },
            Scripted::Error("channel_not_found"),
            Scripted::Drop,
            Scripted::Delay(Duration::from_millis(200)),
        ],
    );
    assert_eq!(slack.scripted_left("chat.postMessage"), 5);
    let c = client();
    let post = || {
        c.post(format!("{}/chat.postMessage", slack.api_url()))
            .bearer_auth(slack.bot_token())
            .json(&json!({"channel": "C1", "text": "hi"}))
            .send()
    };

    let resp = post().await.expect("503");
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.json::<Value>().await.expect("json")["ok"], false);

    let resp = post().await.expect("429");
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "7");
    assert_eq!(
        resp.json::<Value>().await.expect("json")["error"],
        "ratelimited"
    );

    let resp = post().await.expect("error");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.expect("json"),
        json!({"ok": false, "error": "channel_not_found"})
    );

    let err = post()
        .await
        .expect_err("dropped connection gives no answer");
    assert!(!err.is_status(), "{err}");

    let started = std::time::Instant::now();
    let resp = post().await.expect("delayed");
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(resp.json::<Value>().await.expect("json")["ok"], true);

    assert_eq!(post().await.expect("default").status(), 200);
    assert_eq!(slack.scripted_left("chat.postMessage"), 0);
    // Every attempt was recorded, the dropped one too.
    assert_eq!(slack.calls("chat.postMessage").len(), 6);
    // Other methods were untouched.
    assert_eq!(call(&slack, "auth.test", json!({})).await.1["ok"], true);
}

#[tokio::test]
async fn waits_see_calls_made_later() {
    let slack = SlackStandIn::start().await.expect("start");
    let url = slack.api_url();
    let token = slack.bot_token().to_owned();
    tokio::spawn(async move {
        for text in ["a", "b", "deploy done"] {
            let _ = client()
                .post(format!("{url}/chat.postMessage"))
                .bearer_auth(&token)
                .json(&json!({"channel": "C1", "text": text}))
                .send()
                .await;
        }
    });
    let done = slack
        .wait_for_one("chat.postMessage", |c| c.arg("text") == Some("deploy done"))
        .await;
    assert_eq!(done.arg("channel"), Some("C1"));
    assert_eq!(slack.wait_for("chat.postMessage", 3).await.len(), 3);
}

#[tokio::test]
#[should_panic(expected = "timed out after 200ms waiting for 1 call(s) to chat.update")]
async fn waits_are_bounded_and_say_what_they_saw() {
    let slack =
        SlackStandIn::start_with(SlackSetup::new().wait_timeout(Duration::from_millis(200)))
            .await
            .expect("start");
    let _ = call(&slack, "auth.test", json!({})).await;
    slack.wait_for("chat.update", 1).await;
}

#[tokio::test]
async fn unreachable_and_back_on_the_same_port() {
    let slack = SlackStandIn::start().await.expect("start");
    let addr = slack.addr();
    let (_, v) = call(&slack, "auth.test", json!({})).await;
    assert_eq!(v["ok"], true);
    let mut ws = connect(&slack).await;
    assert_eq!(next_json(&mut ws).await["type"], "hello");

    slack.stop_listening().await;
    assert!(!slack.is_listening());
    let err = client()
        .post(format!("{}/auth.test", slack.api_url()))
        .send()
        .await
        .expect_err("nobody listens");
    assert!(err.is_connect() || err.is_request(), "{err}");
    // The websocket was cut too.
    assert!(matches!(next_frame(&mut ws).await, None | Some(Err(_))));
    slack.wait_for_open_connections(0).await;

    slack.listen_again().await.expect("listen again");
    assert_eq!(slack.addr(), addr);
    let (_, v) = call(&slack, "auth.test", json!({})).await;
    assert_eq!(v["ok"], true);
}

// ------------------------------------------------------------ Socket Mode

async fn open_url(slack: &SlackStandIn) -> String {
    let v: Value = client()
        .post(format!("{}/apps.connections.open", slack.api_url()))
        .bearer_auth(slack.app_token())
        .send()
        .await
        .expect("open")
        .json()
        .await
        .expect("json");
    assert_eq!(v["ok"], true, "{v}");
    v["url"].as_str().expect("url").to_owned()
}

async fn connect(slack: &SlackStandIn) -> Ws {
    let url = open_url(slack).await;
    let (ws, _) = connect_async(url.as_str()).await.expect("websocket");
    ws
}

async fn next_frame(ws: &mut Ws) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
    tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("a frame within 5 s")
}

async fn next_json(ws: &mut Ws) -> Value {
    match next_frame(ws).await {
        Some(Ok(Message::Text(t))) => serde_json::from_str(t.as_str()).expect("json frame"),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

#[tokio::test]
async fn connections_open_wants_the_app_token() {
    let slack = SlackStandIn::start().await.expect("start");
    let v: Value = client()
        .post(format!("{}/apps.connections.open", slack.api_url()))
        .bearer_auth(slack.bot_token())
        .send()
        .await
        .expect("open")
        .json()
        .await
        .expect("json");
    assert_eq!(v, json!({"ok": false, "error": "not_allowed_token_type"}));

    let url = open_url(&slack).await;
    let prefix = format!("ws://{}/link?ticket=", slack.addr());
    assert!(url.starts_with(&prefix), "{url}");
    let (_ws, _) = connect_async(url.as_str()).await.expect("first connect");
    // A ticket opens one connection.
    assert!(connect_async(url.as_str()).await.is_err());
}

#[tokio::test]
async fn socket_mode_hello_envelopes_and_acks() {
    let slack = SlackStandIn::start().await.expect("start");
    let mut ws = connect(&slack).await;

    let hello = next_json(&mut ws).await;
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["num_connections"], 1);
    assert_eq!(hello["connection_info"]["app_id"], "A0SIM");
    assert!(hello["debug_info"]["host"].is_string());
    assert_eq!(slack.open_connections(), 1);

    // events_api
    let event = slack.message_event("D1", "U1", "deploy api");
    let id = slack.send(Envelope::events_api(event)).expect("send");
    let got = next_json(&mut ws).await;
    assert_eq!(got["type"], "events_api");
    assert_eq!(got["envelope_id"], id.as_str());
    assert_eq!(got["accepts_response_payload"], false);
    assert_eq!(got["retry_attempt"], 0);
    assert_eq!(got["retry_reason"], "");
    assert_eq!(got["payload"]["type"], "event_callback");
    assert_eq!(got["payload"]["event"]["channel_type"], "im");
    assert_eq!(got["payload"]["event"]["text"], "deploy api");
    ws.send(Message::text(json!({"envelope_id": id}).to_string()))
        .await
        .expect("ack");
    let ack = slack.wait_for_ack(&id).await;
    assert_eq!(ack.payload, None);
    assert_eq!(ack.connection, 1);
    assert!(ack.delay.is_some());

    // A retry of the same envelope.
    let retry = slack.resend(&id, "timeout").expect("resend");
    assert_eq!(retry.retry_attempt, 1);
    let got = next_json(&mut ws).await;
    assert_eq!(got["envelope_id"], id.as_str());
    assert_eq!(got["retry_attempt"], 1);
    assert_eq!(got["retry_reason"], "timeout");

    // slash_commands, acknowledged with a response payload.
    let cmd = slack.slash_command("/deploy", "api prod", "U1", "C1");
    assert!(cmd["response_url"]
        .as_str()
        .is_some_and(|u| u.starts_with(&slack.url())));
    let id = slack.send(Envelope::slash_commands(cmd)).expect("send");
    let got = next_json(&mut ws).await;
    assert_eq!(got["type"], "slash_commands");
    assert_eq!(got["accepts_response_payload"], true);
    assert_eq!(got["payload"]["command"], "/deploy");
    assert!(got.get("retry_attempt").is_none());
    ws.send(Message::text(
        json!({"envelope_id": id, "payload": {"text": "On it"}}).to_string(),
    ))
    .await
    .expect("ack");
    assert_eq!(
        slack.wait_for_ack(&id).await.payload,
        Some(json!({"text": "On it"}))
    );

    // interactive (block_actions) on a message the bot posted.
    let (_, posted) = call(
        &slack,
        "chat.postMessage",
        json!({"channel": "C1", "text": "go?", "blocks": [{"type": "actions", "block_id": "b1", "elements": [{"type": "button", "action_id": "go", "value": "yes"}]}]}),
    )
    .await;
    let ts = posted["ts"].as_str().expect("ts");
    let click = slack.block_actions("U1", "C1", ts, "go", "yes");
    let id = slack.send(Envelope::interactive(click)).expect("send");
    let got = next_json(&mut ws).await;
    assert_eq!(got["type"], "interactive");
    assert_eq!(got["payload"]["type"], "block_actions");
    assert_eq!(got["payload"]["actions"][0]["block_id"], "b1");
    assert_eq!(got["payload"]["container"]["message_ts"], ts);
    assert_eq!(got["payload"]["message"]["text"], "go?");

    // Something that is not an ack is kept apart.
    ws.send(Message::text("{\"hello\":1}")).await.expect("send");
    ws.send(Message::text(json!({"envelope_id": id}).to_string()))
        .await
        .expect("ack");
    slack.wait_for_ack(&id).await;
    assert_eq!(slack.client_frames().len(), 1);
    assert_eq!(slack.acks().len(), 3);
}

#[tokio::test]
async fn refresh_requested_and_reconnect_order() {
    let slack = SlackStandIn::start().await.expect("start");
    let mut old = connect(&slack).await;
    let _ = next_json(&mut old).await; // hello

    slack
        .disconnect(DisconnectReason::RefreshRequested, None)
        .expect("disconnect");
    let d = next_json(&mut old).await;
    assert_eq!(d["type"], "disconnect");
    assert_eq!(d["reason"], "refresh_requested");
    assert!(d["debug_info"]["host"].is_string());

    // A well-behaved client opens the new connection, then drops the old one.
    let mut new = connect(&slack).await;
    let hello = next_json(&mut new).await;
    assert_eq!(hello["num_connections"], 2);
    assert_eq!(slack.open_connections(), 2);
    old.close(None).await.expect("close");
    let conns = slack.wait_for_open_connections(1).await;
    assert_eq!(conns.len(), 2);
    let closed = conns[0].closed_at.expect("old one closed");
    assert!(conns[1].opened_at < closed);
    assert!(conns[1].closed_at.is_none());

    // Other reasons, to one connection.
    slack
        .disconnect(DisconnectReason::LinkDisabled, Some(conns[1].id))
        .expect("disconnect");
    assert_eq!(next_json(&mut new).await["reason"], "link_disabled");
    slack
        .disconnect(DisconnectReason::Warning, None)
        .expect("disconnect");
    assert_eq!(next_json(&mut new).await["reason"], "warning");
    assert!(slack
        .disconnect(DisconnectReason::Warning, Some(99))
        .is_err());

    // The stand-in can close the connection itself.
    slack.close_connection(conns[1].id).expect("close");
    assert!(matches!(
        next_frame(&mut new).await,
        Some(Ok(Message::Close(_)))
    ));
    slack.wait_for_open_connections(0).await;
    assert!(slack.send(Envelope::events_api(json!({}))).is_err());
}

#[tokio::test]
async fn malformed_frames_and_pings() {
    let slack = SlackStandIn::start().await.expect("start");
    let mut ws = connect(&slack).await;
    let _ = next_json(&mut ws).await;

    slack.send_malformed(Malformed::NotJson).expect("send");
    match next_frame(&mut ws).await {
        Some(Ok(Message::Text(t))) => assert!(serde_json::from_str::<Value>(t.as_str()).is_err()),
        other => panic!("{other:?}"),
    }
    slack.send_malformed(Malformed::NoType).expect("send");
    assert!(next_json(&mut ws).await.get("type").is_none());
    slack.send_malformed(Malformed::Binary).expect("send");
    assert!(matches!(
        next_frame(&mut ws).await,
        Some(Ok(Message::Binary(_)))
    ));

    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .expect("ping");
    match next_frame(&mut ws).await {
        Some(Ok(Message::Pong(p))) => assert_eq!(&p[..], b"are you there"),
        other => panic!("expected a pong, got {other:?}"),
    }

    // Cutting the connection: no close frame, the stream just ends.
    let id = slack.connections()[0].id;
    slack.cut_connection(id).expect("cut");
    assert!(matches!(next_frame(&mut ws).await, None | Some(Err(_))));
}

#[tokio::test]
async fn link_handshake_can_be_scripted_to_fail() {
    let slack = SlackStandIn::start().await.expect("start");
    slack.script(crossroads_sim::slack::LINK, [Scripted::Status(503)]);
    let url = open_url(&slack).await;
    assert!(connect_async(url.as_str()).await.is_err());
    let mut ws = connect(&slack).await;
    assert_eq!(next_json(&mut ws).await["type"], "hello");
}
