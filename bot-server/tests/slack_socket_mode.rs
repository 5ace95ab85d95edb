//! Socket Mode shares the HTTP dispatch: slack-morphism's models in, the same
//! replies out; work it cannot take is answered with "try again" instead of
//! silence (the websocket itself needs real Slack and is not exercised here).

mod common;

use bot_server::slack::ack::BUSY_TEXT;
use bot_server::slack::socket_mode::{dispatch_command, dispatch_interaction, dispatch_push};
use bot_server::Accepted;
use common::*;
use slack_morphism::prelude::*;

fn push(event_id: &str, channel: &str, text: &str) -> SlackPushEventCallback {
    serde_json::from_value(serde_json::json!({
        "team_id": "T1", "api_app_id": "A1", "event_id": event_id, "event_time": 1700000000,
        "event": {"type": "message", "channel_type": "im", "channel": channel, "user": "U1",
                  "text": text, "ts": "1700000000.000900"}
    }))
    .expect("slack-morphism parses a DM event")
}

fn click(value: &str, response_url: &str) -> SlackInteractionEvent {
    serde_json::from_value(serde_json::json!({
        "type": "block_actions",
        "team": {"id": "T1"}, "user": {"id": "U1"}, "api_app_id": "A1",
        "container": {"type": "message", "message_ts": "1.1", "channel_id": "D9"},
        "trigger_id": "1.2", "channel": {"id": "D9"},
        "response_url": response_url,
        "actions": [{"type": "button", "action_id": "crossroads-0", "value": value}]
    }))
    .expect("slack-morphism parses a click")
}

fn command(text: &str, response_url: &str, trigger_id: &str) -> SlackCommandEvent {
    serde_json::from_value(serde_json::json!({
        "team_id": "T1", "channel_id": "C1", "user_id": "U1", "command": "/crossroads",
        "text": text, "response_url": response_url, "trigger_id": trigger_id
    }))
    .expect("slack-morphism parses a command")
}

#[tokio::test]
async fn socket_mode_events_clicks_and_commands_use_the_same_dispatch() {
    let app = TestApp::start().await;

    let event = push("EvS1", "D9", "hello");
    assert_eq!(
        dispatch_push(&app.dispatcher, &event).await,
        Accepted::Scheduled
    );
    assert_eq!(
        dispatch_push(&app.dispatcher, &event).await,
        Accepted::Duplicate
    );
    let posts = app.slack.wait_for("chat.postMessage", 1).await;
    assert_eq!(posts[0].body["channel"], "D9");

    let value = health_button(&app.bot, "set-s", "blue").await;
    assert_eq!(
        dispatch_interaction(
            &app.dispatcher,
            &click(&value, &app.slack.response_url("sock"))
        )
        .await,
        Accepted::Scheduled
    );
    let answer = app.slack.wait_for("chat.update", 1).await;
    assert_eq!(answer[0].body["channel"], "D9");
    assert_eq!(answer[0].body["ts"], "1.1", "the clicked message is edited");

    let cmd = command("hello", &app.slack.response_url("sockcmd"), "1.3");
    let ack = dispatch_command(&app.dispatcher, &cmd).await;
    assert_eq!(ack.content.text.as_deref(), Some("Working on `hello`…"));
    let answer = app.slack.wait_for("response/sockcmd", 1).await;
    assert_eq!(answer[0].body["response_type"], "in_channel");
    app.settle().await;
    assert!(app.slack.calls("response/sock").is_empty());
}

#[tokio::test]
async fn socket_mode_tells_people_to_retry_when_too_busy() {
    let app = TestApp::start_with(|c| c.max_in_flight = 1).await;
    app.ci.hold();
    assert_eq!(
        dispatch_push(&app.dispatcher, &push("EvB1", "D1", "build")).await,
        Accepted::Scheduled
    );
    app.ci.wait_started(1).await;

    // A DM: answered in the DM.
    assert_eq!(
        dispatch_push(&app.dispatcher, &push("EvB2", "D9", "status")).await,
        Accepted::Overloaded
    );
    // A channel mention: answered ephemerally, in its thread.
    let mention: SlackPushEventCallback = serde_json::from_value(serde_json::json!({
        "team_id": "T1", "api_app_id": "A1", "event_id": "EvB3", "event_time": 1700000000,
        "event": {"type": "app_mention", "channel": "C5", "user": "U2",
                  "text": "<@UBOT> status", "ts": "1700000000.000950"}
    }))
    .expect("slack-morphism parses a mention");
    assert_eq!(
        dispatch_push(&app.dispatcher, &mention).await,
        Accepted::Overloaded
    );
    // A click: told ephemerally, the message and its buttons stay.
    let value = health_button(&app.bot, "set-busy", "blue").await;
    assert_eq!(
        dispatch_interaction(
            &app.dispatcher,
            &click(&value, &app.slack.response_url("busy"))
        )
        .await,
        Accepted::Overloaded
    );
    // A slash command: the immediate answer says so.
    let ack = dispatch_command(
        &app.dispatcher,
        &command("status", &app.slack.response_url("busycmd"), "9.9"),
    )
    .await;
    assert_eq!(ack.content.text.as_deref(), Some(BUSY_TEXT));
    assert_eq!(ack.response_type, Some(SlackMessageResponseType::Ephemeral));

    let dm_answer = app
        .slack
        .wait_for_one("chat.postMessage", |p| p.body["channel"] == "D9")
        .await;
    assert_eq!(dm_answer.body["text"], BUSY_TEXT);
    let ephemeral = app.slack.wait_for("chat.postEphemeral", 1).await;
    assert_eq!(ephemeral[0].body["channel"], "C5");
    assert_eq!(ephemeral[0].body["user"], "U2");
    assert_eq!(ephemeral[0].body["thread_ts"], "1700000000.000950");
    assert_eq!(ephemeral[0].body["text"], BUSY_TEXT);
    let clicked = app.slack.wait_for("response/busy", 1).await;
    assert_eq!(clicked[0].body["response_type"], "ephemeral");
    assert_eq!(clicked[0].body["replace_original"], false);
    assert_eq!(clicked[0].body["text"], BUSY_TEXT);

    app.ci.release();
    app.settle().await;
    assert!(
        app.slack.calls("response/busycmd").is_empty(),
        "a refused command does no work"
    );
    // The refused button was not spent: clicking again now works.
    dispatch_interaction(
        &app.dispatcher,
        &click(&value, &app.slack.response_url("later")),
    )
    .await;
    app.settle().await;
    let edits = app.slack.calls("chat.update");
    assert!(
        edits
            .iter()
            .any(|e| block_text(&e.body).contains("chose `health staging api blue`")),
        "{edits:?}"
    );
}
