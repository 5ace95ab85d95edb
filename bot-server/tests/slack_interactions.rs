//! Button clicks: the reply edits the clicked message (`chat.update`), so long
//! actions keep reporting there; a second click gets an ephemeral "already
//! handled" through `response_url` and leaves the message alone; a click on a
//! message that cannot be edited is answered through `response_url`.

use crate::common;

use common::*;

#[tokio::test]
async fn a_click_edits_the_clicked_message_with_the_health_of_that_instance() {
    let app = TestApp::start().await;
    let value = health_button(&app.bot, "set-1", "green").await;
    let url = app.slack.response_url("r1");
    let res = app.click("U1", &value, &url).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.expect("body"), "", "acked at once, empty");
    let calls = app.slack.wait_for("chat.update", 1).await;
    app.settle().await;
    assert_eq!(app.slack.calls("chat.update").len(), 1);
    let body = &calls[0].body;
    assert_eq!(body["channel"], "D1");
    assert_eq!(body["ts"], CLICKED_TS, "edits the message that was clicked");
    assert_eq!(
        calls[0].authorization.as_deref(),
        Some("Bearer xoxb-test-token")
    );
    let text = block_text(body);
    assert!(
        text.contains("<@U1> chose `health staging api green`"),
        "{text}"
    );
    assert!(text.contains("green"), "{text}");
    assert!(button_values(body).is_empty(), "no buttons left: {body}");
    assert!(app.slack.calls("response/r1").is_empty());
    assert!(app.slack.calls("chat.postMessage").is_empty());
}

#[tokio::test]
async fn a_second_click_is_told_ephemerally_who_handled_it() {
    let app = TestApp::start().await;
    let value = health_button(&app.bot, "set-2", "blue").await;
    app.click("U1", &value, &app.slack.response_url("first"))
        .await;
    app.slack.wait_for("chat.update", 1).await;
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
        block_text(body).contains("Already handled by <@U1>"),
        "{body}"
    );
    assert!(
        calls[0].authorization.is_none(),
        "the bot token is never sent to a response_url"
    );
    // Nothing else touched the conversation: one edit, one ephemeral answer.
    assert_eq!(
        app.slack.all_calls().len(),
        2,
        "{:?}",
        app.slack.all_calls()
    );
    assert_eq!(app.slack.calls("chat.update").len(), 1);
}

#[tokio::test]
async fn a_foreign_button_value_is_refused_ephemerally() {
    let app = TestApp::start().await;
    app.click("U1", "not-a-crossroads-value", &app.slack.response_url("f"))
        .await;
    let calls = app.slack.wait_for("response/f", 1).await;
    assert_eq!(calls[0].body["response_type"], "ephemeral");
    assert_eq!(calls[0].body["replace_original"], false);
    app.settle().await;
    assert!(
        app.slack.calls("chat.update").is_empty(),
        "the message stays"
    );
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
    let calls = app.slack.wait_for("chat.update", 1).await;
    let text = block_text(&calls[0].body);
    assert!(text.contains("chose `health staging api green`"), "{text}");
    app.click("U2", &buttons[0], &app.slack.response_url("again"))
        .await;
    let again = app.slack.wait_for("response/again", 1).await;
    assert_eq!(again[0].body["response_type"], "ephemeral");
}

#[tokio::test]
async fn a_long_action_started_by_a_button_reports_progress_and_result_in_its_message() {
    let app = TestApp::start().await;
    app.ci.hold();
    let value = build_button(&app.bot, "set-build").await;
    app.click("U1", &value, &app.slack.response_url("long"))
        .await;
    // Progress shows up in the clicked message while the build runs.
    let progress = app.slack.wait_for("chat.update", 1).await;
    assert_eq!(progress[0].body["ts"], CLICKED_TS);
    let shown = progress[0].body["text"].as_str().unwrap_or_default();
    assert!(
        shown.contains("queued") || shown.contains("building"),
        "a progress line: {shown}"
    );
    assert!(button_values(&progress[0].body).is_empty(), "buttons gone");
    app.ci.release();
    app.settle().await;
    let updates = app.slack.calls("chat.update");
    assert!(
        updates.len() <= 4,
        "50 progress steps, a few edits: {}",
        updates.len()
    );
    let last = &updates[updates.len() - 1].body;
    assert_eq!(last["ts"], CLICKED_TS);
    let text = block_text(last);
    assert!(text.contains("<@U1> chose `build`"), "{text}");
    assert!(text.contains("succeeded"), "{text}");
    assert!(button_values(last).is_empty(), "no buttons left: {last}");
    assert!(
        app.slack.calls("response/long").is_empty(),
        "no response_url use spent on a message that can be edited"
    );
}

#[tokio::test]
async fn a_click_on_an_ephemeral_message_is_answered_through_response_url() {
    let app = TestApp::start().await;
    let value = health_button(&app.bot, "set-e", "green").await;
    app.click_ephemeral("U1", &value, &app.slack.response_url("eph"))
        .await;
    let calls = app.slack.wait_for("response/eph", 1).await;
    app.settle().await;
    assert_eq!(calls[0].body["replace_original"], true);
    assert!(block_text(&calls[0].body).contains("chose `health staging api green`"));
    assert!(app.slack.calls("chat.update").is_empty());
}

#[tokio::test]
async fn when_the_edit_fails_the_reply_still_arrives_through_response_url() {
    let app = TestApp::start().await;
    app.slack
        .script("chat.update", &[Scripted::Error("message_not_found")]);
    let value = health_button(&app.bot, "set-f", "blue").await;
    app.click("U1", &value, &app.slack.response_url("fallback"))
        .await;
    let calls = app.slack.wait_for("response/fallback", 1).await;
    app.settle().await;
    assert_eq!(app.slack.calls("chat.update").len(), 1);
    assert_eq!(calls[0].body["replace_original"], true);
    assert!(block_text(&calls[0].body).contains("chose `health staging api blue`"));
}

/// A click on `value` by `user` in `channel` (the message `ts` there).
async fn click_in_channel(app: &TestApp, user: &str, channel: &str, value: &str, url: &str) {
    let payload = with(
        fixture("interactions/block_actions.json"),
        &[
            ("/user/id", user),
            ("/channel/id", channel),
            ("/container/channel_id", channel),
            ("/response_url", url),
            ("/actions/0/value", value),
            ("/trigger_id", &format!("{}.{url}", now_ts())),
        ],
    )
    .to_string();
    let body = serde_urlencoded::to_string([("payload", payload)]).expect("form");
    let status = app
        .post(
            "/slack/interactions",
            "application/x-www-form-urlencoded",
            signed(&now_ts(), &body),
            body,
        )
        .await
        .status();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn forged_values_and_buttons_clicked_elsewhere_run_nothing() {
    let app = TestApp::start().await;
    // A value shaped like ours, naming a set that was never issued.
    click_in_channel(
        &app,
        "U1",
        "D1",
        "0123456789abcdef0123456789abcdef.0",
        &app.slack.response_url("forged"),
    )
    .await;
    // A value carrying an invocation, as buttons once did: not one of ours.
    let old_style =
        r#"{"set":"x","run":{"command":"build","target":{"k":"none"},"confirmed":true}}"#;
    click_in_channel(&app, "U2", "D1", old_style, &app.slack.response_url("old")).await;
    for url in ["response/forged", "response/old"] {
        let answer = app.slack.wait_for(url, 1).await;
        assert_eq!(answer[0].body["response_type"], "ephemeral", "{url}");
    }
    // A genuine button offered in D1, clicked from another conversation.
    app.event(&dm("Ev620", "U1", "health")).await;
    let posts = app.slack.wait_for("chat.postMessage", 1).await;
    let buttons = button_values(&posts[0].body);
    click_in_channel(
        &app,
        "U1",
        "C9",
        &buttons[0],
        &app.slack.response_url("elsewhere"),
    )
    .await;
    let elsewhere = app.slack.wait_for("response/elsewhere", 1).await;
    assert_eq!(elsewhere[0].body["response_type"], "ephemeral");
    assert!(
        block_text(&elsewhere[0].body).contains("another conversation"),
        "{}",
        elsewhere[0].body
    );
    app.settle().await;
    assert_eq!(app.ci.started_count(), 0, "nothing was built");
    assert!(
        app.slack.calls("chat.update").is_empty(),
        "no message was touched"
    );
    // The set was not used up: clicked where it was offered, it works.
    click_in_channel(
        &app,
        "U1",
        "D1",
        &buttons[0],
        &app.slack.response_url("here"),
    )
    .await;
    let update = app.slack.wait_for("chat.update", 1).await;
    assert!(
        block_text(&update[0].body).contains("chose `health staging api"),
        "{}",
        update[0].body
    );
}
