//! `/crossroads <text>`: acknowledged within the request, answered at `response_url`.

mod common;

use bot_core::Request;
use common::*;

fn command_body(text: &str, response_url: &str) -> String {
    serde_urlencoded::to_string([
        ("token", "t"),
        ("team_id", "T1"),
        ("team_domain", "t"),
        ("channel_id", "C77"),
        ("channel_name", "deploys"),
        ("user_id", "U1"),
        ("user_name", "someone"),
        ("command", "/crossroads"),
        ("text", text),
        ("response_url", response_url),
        ("trigger_id", "1.2.3"),
        ("api_app_id", "A1"),
    ])
    .expect("form")
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
