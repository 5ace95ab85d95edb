//! `/crossroads <text>`: acknowledged within the request, answered at
//! `response_url`, and run once even if the signed request is replayed.

use crate::common;

use bot_core::Request;
use common::*;

fn command_body(text: &str, response_url: &str) -> String {
    command_body_with(text, response_url, "1.2.3")
}

fn command_body_with(text: &str, response_url: &str, trigger_id: &str) -> String {
    slash_command(&[
        ("user_id", "U1"),
        ("text", text),
        ("response_url", response_url),
        ("trigger_id", trigger_id),
    ])
}

#[tokio::test]
async fn a_slash_command_is_acked_ephemerally_and_answered_in_channel() {
    let app = TestApp::start().await;
    let body = command_body("hello world", &app.slack.response_url("cmd"));
    let res = app
        .post(
            "/slack/commands",
            "application/x-www-form-urlencoded",
            signed(&now_ts(), &body),
            body,
        )
        .await;
    assert_eq!(res.status(), 200);
    let ack: serde_json::Value = res.json().await.expect("JSON ack");
    assert_eq!(ack["response_type"], "ephemeral");
    assert_eq!(ack["text"], "Working on `hello world`…");
    let calls = app.slack.wait_for("response/cmd", 1).await;
    app.settle().await;
    assert_eq!(app.slack.calls("response/cmd").len(), 1);
    let answer = &calls[0].body;
    assert_eq!(answer["response_type"], "in_channel");
    assert_eq!(answer["replace_original"], false);
    let expected = app.bot.handle(Request::text("U1", "hello world")).await;
    assert_eq!(answer["text"], expected.to_plain_text());
    assert!(app.slack.calls("chat.postMessage").is_empty());
}

#[tokio::test]
async fn a_replayed_slash_command_runs_once() {
    let app = TestApp::start().await;
    let body = command_body_with("build", &app.slack.response_url("once"), "77.88.99");
    let headers = signed(&now_ts(), &body);
    let first = app
        .post(
            "/slack/commands",
            "application/x-www-form-urlencoded",
            headers.clone(),
            body.clone(),
        )
        .await;
    assert_eq!(first.status(), 200);
    let replay = app
        .post(
            "/slack/commands",
            "application/x-www-form-urlencoded",
            headers,
            body,
        )
        .await;
    assert_eq!(replay.status(), 200);
    assert_eq!(replay.text().await.expect("body"), "", "no second ack");
    app.settle().await;
    assert_eq!(app.ci.started_count(), 1, "one build, not two");
    let answers = app.slack.calls("response/once");
    assert!(
        answers
            .iter()
            .filter(|c| c.body["text"]
                .as_str()
                .unwrap_or_default()
                .contains("succeeded"))
            .count()
            == 1,
        "{answers:?}"
    );
    // Another invocation of the same text (a new trigger_id) runs again.
    let again = command_body_with("build", &app.slack.response_url("twice"), "77.88.100");
    app.post(
        "/slack/commands",
        "application/x-www-form-urlencoded",
        signed(&now_ts(), &again),
        again,
    )
    .await;
    app.settle().await;
    assert_eq!(app.ci.started_count(), 2);
}

#[tokio::test]
async fn a_slash_command_that_is_not_utf8_is_refused_with_a_reason() {
    let app = TestApp::start().await;
    // `%FF%FE` decodes to bytes that are not UTF-8: Slack never sends that.
    let body = command_body("deploy staging", &app.slack.response_url("bad"))
        .replace("text=deploy+staging", "text=deploy+%FF%FE");
    assert!(body.contains("%FF%FE"), "{body}");
    let res = app
        .post(
            "/slack/commands",
            "application/x-www-form-urlencoded",
            signed(&now_ts(), &body),
            body,
        )
        .await;
    assert_eq!(res.status(), 400);
    let reason: serde_json::Value = res.json().await.expect("a JSON reason");
    assert_eq!(
        reason["error"], "form field `text` is not valid UTF-8",
        "{reason}"
    );
    app.settle().await;
    assert!(
        app.slack.all_calls().is_empty(),
        "nothing ran: {:?}",
        app.slack.all_calls()
    );
}
