//! Socket Mode shares the HTTP dispatch: slack-morphism's models in, the same
//! replies out (the websocket itself needs real Slack and is not exercised here).

mod common;

use bot_server::socket_mode::{dispatch_command, dispatch_interaction, dispatch_push};
use bot_server::Accepted;
use common::*;
use slack_morphism::prelude::*;

#[tokio::test]
async fn socket_mode_events_clicks_and_commands_use_the_same_dispatch() {
    let app = TestApp::start().await;

    let push: SlackPushEventCallback = serde_json::from_value(serde_json::json!({
        "team_id": "T1", "api_app_id": "A1", "event_id": "EvS1", "event_time": 1700000000,
        "event": {"type": "message", "channel_type": "im", "channel": "D9", "user": "U1",
                  "text": "hello", "ts": "1700000000.000900"}
    }))
    .expect("slack-morphism parses a DM event");
    assert_eq!(
        dispatch_push(&app.dispatcher, &push).await,
        Accepted::Scheduled
    );
    assert_eq!(
        dispatch_push(&app.dispatcher, &push).await,
        Accepted::Duplicate
    );
    let posts = app.slack.wait_for("chat.postMessage", 1).await;
    assert_eq!(posts[0].body["channel"], "D9");

    let value = health_button(&app.bot, "set-s", "blue").await;
    let click: SlackInteractionEvent = serde_json::from_value(serde_json::json!({
        "type": "block_actions",
        "team": {"id": "T1"}, "user": {"id": "U1"}, "api_app_id": "A1",
        "container": {"type": "message", "message_ts": "1.1", "channel_id": "D9"},
        "trigger_id": "1.2", "channel": {"id": "D9"},
        "response_url": app.slack.response_url("sock"),
        "actions": [{"type": "button", "action_id": "crossroads-0", "value": value}]
    }))
    .expect("slack-morphism parses a click");
    assert_eq!(
        dispatch_interaction(&app.dispatcher, &click),
        Accepted::Scheduled
    );
    let answer = app.slack.wait_for("response/sock", 1).await;
    assert_eq!(answer[0].body["replace_original"], true);

    let command: SlackCommandEvent = serde_json::from_value(serde_json::json!({
        "team_id": "T1", "channel_id": "C1", "user_id": "U1", "command": "/crossroads",
        "text": "hello", "response_url": app.slack.response_url("sockcmd"), "trigger_id": "1.3"
    }))
    .expect("slack-morphism parses a command");
    let ack = dispatch_command(&app.dispatcher, &command);
    assert_eq!(ack.content.text.as_deref(), Some("Working on `hello`…"));
    let answer = app.slack.wait_for("response/sockcmd", 1).await;
    assert_eq!(answer[0].body["response_type"], "in_channel");
    app.settle().await;
}
