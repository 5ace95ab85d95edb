//! Button clicks: the reply replaces the clicked message via `response_url`; a
//! second click gets an ephemeral "already handled" and leaves the message alone.

mod common;

use common::*;

#[tokio::test]
async fn a_click_replaces_the_message_with_the_health_of_that_instance() {
    let app = TestApp::start().await;
    let value = health_button(&app.bot, "set-1", "green").await;
    let url = app.slack.response_url("r1");
    let res = app.click("U1", &value, &url).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.expect("body"), "", "acked at once, empty");
    let calls = app.slack.wait_for("response/r1", 1).await;
    app.settle().await;
    assert_eq!(app.slack.calls("response/r1").len(), 1);
    let body = &calls[0].body;
    assert_eq!(body["replace_original"], true);
    assert_eq!(body["response_type"], "in_channel");
    assert!(
        calls[0].authorization.is_none(),
        "the bot token is never sent to a response_url"
    );
    let text = block_text(body);
    assert!(
        text.contains("<@U1> chose `health staging api green`"),
        "{text}"
    );
    assert!(text.contains("green"), "{text}");
    assert!(button_values(body).is_empty(), "no buttons left: {body}");
    assert!(app.slack.calls("chat.postMessage").is_empty());
}

#[tokio::test]
async fn a_second_click_is_told_ephemerally_who_handled_it() {
    let app = TestApp::start().await;
    let value = health_button(&app.bot, "set-2", "blue").await;
    app.click("U1", &value, &app.slack.response_url("first"))
        .await;
    app.slack.wait_for("response/first", 1).await;
    app.settle().await;
    let res = app
        .click("U2", &value, &app.slack.response_url("second"))
        .await;
    assert_eq!(res.status(), 200);
    let calls = app.slack.wait_for("response/second", 1).await;
    app.settle().await;
    let body = &calls[0].body;
    assert_eq!(body["response_type"], "ephemeral");
    assert_eq!(body["replace_original"], false, "the original stays");
    assert!(
        body["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Already handled by <@U1>"),
        "{body}"
    );
    // Nothing else touched the conversation.
    assert_eq!(app.slack.all_calls().len(), 2);
}

#[tokio::test]
async fn a_foreign_button_value_is_refused_ephemerally() {
    let app = TestApp::start().await;
    app.click("U1", "not-a-crossroads-value", &app.slack.response_url("f"))
        .await;
    let calls = app.slack.wait_for("response/f", 1).await;
    assert_eq!(calls[0].body["response_type"], "ephemeral");
    assert_eq!(calls[0].body["replace_original"], false);
}

#[tokio::test]
async fn health_buttons_from_a_dm_work_when_clicked() {
    let app = TestApp::start().await;
    app.event(&dm("Ev500", "U1", "health")).await;
    let posts = app.slack.wait_for("chat.postMessage", 1).await;
    let buttons = button_values(&posts[0].body);
    assert_eq!(buttons.len(), 2, "{}", posts[0].body);
    app.click("U1", &buttons[1], &app.slack.response_url("flow"))
        .await;
    let calls = app.slack.wait_for("response/flow", 1).await;
    assert_eq!(calls[0].body["replace_original"], true);
    let text = block_text(&calls[0].body);
    assert!(text.contains("chose `health staging api green`"), "{text}");
    app.click("U2", &buttons[0], &app.slack.response_url("again"))
        .await;
    let again = app.slack.wait_for("response/again", 1).await;
    assert_eq!(again[0].body["response_type"], "ephemeral");
}
