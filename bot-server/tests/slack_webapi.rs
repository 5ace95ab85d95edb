//! The Web API client: 429 `Retry-After` honoured, Slack errors counted by method
//! and code, the bot token sent as a bearer and never logged.

use crate::common;

use std::time::Duration;

use common::*;

async fn metrics(app: &TestApp) -> String {
    app.http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

#[tokio::test]
async fn a_rate_limited_post_is_retried_after_retry_after_and_arrives_once() {
    let app = TestApp::start().await;
    app.slack
        .script("chat.postMessage", &[Scripted::RateLimited]);
    app.event(&dm("Ev600", "U1", "hello")).await;
    let calls = app.slack.wait_for("chat.postMessage", 2).await;
    app.settle().await;
    let calls_after = app.slack.calls("chat.postMessage");
    assert_eq!(
        calls_after.len(),
        2,
        "one 429, one success: {calls_after:?}"
    );
    assert_eq!(calls[0].body, calls[1].body, "the same message, retried");
    let waited = calls[1].at - calls[0].at;
    assert!(
        waited >= Duration::from_millis(950),
        "waited only {waited:?} despite Retry-After: 1"
    );
    let m = metrics(&app).await;
    assert!(
        m.contains(r#"crossroads_slack_api_failures_total{method="chat.postMessage",error="ratelimited"} 1"#),
        "{m}"
    );
    assert!(
        m.contains(r#"crossroads_slack_api_calls_total{method="chat.postMessage"} 2"#),
        "{m}"
    );
}

#[tokio::test]
async fn rate_limiting_gives_up_after_the_bounded_attempts() {
    let app = TestApp::start_with(|c| c.max_attempts = 2).await;
    app.slack.script(
        "chat.postMessage",
        &[
            Scripted::RateLimited,
            Scripted::RateLimited,
            Scripted::RateLimited,
        ],
    );
    app.event(&dm("Ev601", "U1", "hello")).await;
    app.slack.wait_for("chat.postMessage", 2).await;
    app.settle().await;
    assert_eq!(app.slack.calls("chat.postMessage").len(), 2);
}

#[tokio::test]
async fn slack_errors_are_counted_by_method_and_code() {
    let app = TestApp::start().await;
    app.slack
        .script("chat.postMessage", &[Scripted::Error("channel_not_found")]);
    app.event(&dm("Ev602", "U1", "hello")).await;
    app.slack.wait_for("chat.postMessage", 1).await;
    app.settle().await;
    assert_eq!(
        app.slack.calls("chat.postMessage").len(),
        1,
        "no retry on a Slack error"
    );
    let m = metrics(&app).await;
    assert!(
        m.contains(r#"crossroads_slack_api_failures_total{method="chat.postMessage",error="channel_not_found"} 1"#),
        "{m}"
    );
    assert!(!m.contains(TOKEN));
}

#[tokio::test]
async fn auth_test_teaches_the_bot_its_own_user_id() {
    let app = TestApp::start_with(|c| c.bot_user_id = None).await;
    app.dispatcher.learn_bot_user().await;
    assert_eq!(app.dispatcher.bot_user(), Some(BOT_USER));
    let calls = app.slack.calls("auth.test");
    assert_eq!(
        calls[0].authorization.as_deref(),
        Some("Bearer xoxb-test-token")
    );
    // Its own messages (no bot_id) are now ignored.
    app.event(&dm("Ev603", BOT_USER, "hello")).await;
    app.settle().await;
    assert!(app.slack.calls("chat.postMessage").is_empty());
}

#[test]
fn the_client_never_prints_its_token() {
    let web = bot_server::WebApi::new(
        "http://127.0.0.1:9/api",
        bot_core::config::Secret::new(TOKEN),
        bot_server::Metrics::new(),
        Duration::from_secs(1),
        3,
    )
    .expect("client");
    assert!(!format!("{web:?}").contains(TOKEN));
}

#[tokio::test]
async fn a_reply_slack_answers_503_twice_arrives_once_on_the_third_try() {
    let app = TestApp::start().await;
    app.slack.script(
        "chat.postMessage",
        &[Scripted::Status(503), Scripted::Status(503)],
    );
    app.event(&dm("Ev611", "U1", "hello")).await;
    app.slack.wait_for("chat.postMessage", 3).await;
    app.settle().await;
    let calls = app.slack.calls("chat.postMessage");
    assert_eq!(calls.len(), 3, "two 503s, then the reply: {calls:?}");
    assert_eq!(calls[0].body, calls[2].body, "the same reply, retried");
    let m = metrics(&app).await;
    assert!(
        m.contains(
            r#"crossroads_slack_api_failures_total{method="chat.postMessage",error="http_503"} 2"#
        ),
        "{m}"
    );
    assert!(m.contains("crossroads_outbox_given_up_total 0"), "{m}");
}
