//! Events API over the real server: URL verification, DMs answered once in the DM,
//! retries deduplicated, bots and edits ignored, mentions answered in a thread.

use crate::common;

use bot_core::Request;
use common::*;

#[tokio::test]
async fn url_verification_answers_with_the_challenge() {
    let app = TestApp::start().await;
    let res = app
        .event(&fixture("events/url_verification.json").to_string())
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.text().await.expect("body"),
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );
}

#[tokio::test]
async fn a_dm_is_acked_empty_and_answered_once_in_that_dm() {
    let app = TestApp::start().await;
    let res = app.event(&dm("Ev100", "U1", "hello there")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.expect("body"), "");
    let posts = app.slack.wait_for("chat.postMessage", 1).await;
    app.settle().await;
    assert_eq!(app.slack.calls("chat.postMessage").len(), 1);
    let post = &posts[0].body;
    assert_eq!(post["channel"], "D1");
    assert!(
        post.get("thread_ts").is_none(),
        "a top-level DM is answered top-level"
    );
    assert_eq!(
        posts[0].authorization.as_deref(),
        Some("Bearer xoxb-test-token")
    );
    // Whatever the engine answers to this text is what Slack receives.
    let expected = app.bot.handle(Request::text("U1", "hello there")).await;
    assert_eq!(post["text"], expected.to_plain_text());
    assert_eq!(
        post["blocks"],
        serde_json::to_value(expected.blocks()).expect("blocks")
    );
}

#[tokio::test]
async fn a_dm_status_gets_the_status_report() {
    let app = TestApp::start().await;
    app.event(&dm("Ev101", "U1", "status")).await;
    let posts = app.slack.wait_for("chat.postMessage", 1).await;
    app.settle().await;
    assert_eq!(app.slack.calls("chat.postMessage").len(), 1);
    assert_eq!(posts[0].body["channel"], "D1");
    let text = block_text(&posts[0].body);
    assert!(text.contains("staging"), "{text}");
    assert!(text.contains("blue"), "{text}");
    assert!(text.contains("green"), "{text}");
}

#[tokio::test]
async fn health_without_an_instance_offers_one_button_per_instance() {
    let app = TestApp::start().await;
    app.event(&dm("Ev102", "U1", "health")).await;
    let posts = app.slack.wait_for("chat.postMessage", 1).await;
    let buttons = button_values(&posts[0].body);
    assert_eq!(buttons.len(), 2, "{:?}", posts[0].body);
    let text = block_text(&posts[0].body);
    assert!(text.contains("staging api blue"), "{text}");
    assert!(text.contains("staging api green"), "{text}");
}

#[tokio::test]
async fn a_retried_delivery_is_answered_once() {
    let app = TestApp::start().await;
    let body = dm("Ev200", "U1", "hello");
    let first = app.event(&body).await;
    assert_eq!(first.status(), 200);
    let mut headers = signed(&now_ts(), &body);
    headers.push(("x-slack-retry-num", "1".into()));
    headers.push(("x-slack-retry-reason", "http_timeout".into()));
    let retry = app
        .post("/slack/events", "application/json", headers, body.clone())
        .await;
    assert_eq!(retry.status(), 200);
    assert_eq!(
        retry
            .headers()
            .get("x-slack-no-retry")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    app.settle().await;
    assert_eq!(app.slack.calls("chat.postMessage").len(), 1);
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("crossroads_slack_events_deduplicated_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn bots_the_bot_itself_and_edits_get_no_reply() {
    let app = TestApp::start().await;
    let bot_post = with(
        fixture("events/bot_message.json"),
        &[("/event/user", BOT_USER)],
    )
    .to_string();
    let own_user = dm("Ev301", BOT_USER, "status");
    let edit = fixture("events/message_changed.json").to_string();
    for body in [bot_post, own_user, edit] {
        let res = app.event(&body.to_string()).await;
        assert_eq!(res.status(), 200);
    }
    // A human DM after them is answered, so the server was processing all along.
    app.event(&dm("Ev303", "U1", "hello")).await;
    app.slack.wait_for("chat.postMessage", 1).await;
    app.settle().await;
    let posts = app.slack.all_calls();
    assert_eq!(posts.len(), 1, "{posts:?}");
}

#[tokio::test]
async fn a_channel_mention_is_answered_in_its_thread() {
    let app = TestApp::start().await;
    let body = with(
        fixture("events/app_mention.json"),
        &[
            ("/event/channel", "C42"),
            ("/event/text", "<@UBOT> hello"),
            ("/event/ts", "1700000000.000400"),
        ],
    );
    app.event(&body.to_string()).await;
    let posts = app.slack.wait_for("chat.postMessage", 1).await;
    assert_eq!(posts[0].body["channel"], "C42");
    assert_eq!(posts[0].body["thread_ts"], "1700000000.000400");
}
