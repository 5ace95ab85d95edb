//! Reading Slack's payloads as Slack sends them (`fixtures/`): events, button clicks, slash commands, Socket Mode.

use bot_core::slack::payload::{
    parse_command, parse_events, parse_interaction, ButtonClick, EventsPayload, InteractionPayload,
    MessageEvent, PayloadError, SlashCommand,
};
use bot_core::slack::socket::{parse_frame, Envelope, EnvelopeContent, SocketFrame};
use serde_json::{json, Value};

/// The text of a file under `fixtures/`.
macro_rules! fixture {
    ($path:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/", $path))
    };
}

/// The bot's own user id in the fixtures.
const BOT_USER: &str = "U05LQ8R2B7N";

/// The value of the "Yes, deploy master api v2.1" button clicked in `block_actions.json`.
const DEPLOY_YES: &str = "fddd2732d76e41729aec6b933bd1968d.0";

/// A JSON fixture, parsed, to change a field of.
fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("fixtures are JSON")
}

/// `body` with the field at JSON pointer `at` set to `value` (added if absent).
fn with(mut body: Value, at: &str, value: impl Into<Value>) -> Value {
    let (parent, key) = at.rsplit_once('/').expect("a JSON pointer");
    body.pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("the fixture has no object at {parent:?}"))
        .insert(key.to_owned(), value.into());
    body
}

/// An interactivity body as Slack posts it: the form field `payload` holding the JSON.
fn form(payload: &Value) -> String {
    serde_urlencoded::to_string([("payload", payload.to_string())]).expect("encodes")
}

fn events(body: &Value, bot_user: Option<&str>) -> Result<EventsPayload, PayloadError> {
    parse_events(body.to_string().as_bytes(), bot_user)
}

#[test]
fn url_verification_yields_the_challenge() {
    let p = parse_events(fixture!("events/url_verification.json").as_bytes(), None);
    assert_eq!(
        p,
        Ok(EventsPayload::UrlVerification {
            challenge: "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P".into()
        })
    );
}

#[test]
fn a_dm_is_a_message_to_answer_in_the_dm() {
    let p = parse_events(
        fixture!("events/message_im.json").as_bytes(),
        Some(BOT_USER),
    )
    .expect("parses");
    assert_eq!(
        p,
        EventsPayload::Callback {
            event_id: "Ev070RQKHV7Z".into(),
            message: Some(MessageEvent {
                user: "U04PJ1Y9W2F".into(),
                channel: "D05M1N7K0XA".into(),
                text: "deploy prod api v2.1".into(),
                ts: "1714056483.129349".into(),
                thread_ts: None,
                teams: vec!["T04F2K1QZ7R".into()],
            })
        }
    );
}

#[test]
fn bots_edits_and_the_bot_itself_are_ignored() {
    let dm = json(fixture!("events/message_im.json"));
    for (what, body) in [
        (
            "the bot's own post",
            json(fixture!("events/bot_message.json")),
        ),
        ("an edit", json(fixture!("events/message_changed.json"))),
        ("a bot_id", with(dm.clone(), "/event/bot_id", "B05LQ8QKZ4M")),
        (
            "subtype message_changed",
            with(dm.clone(), "/event/subtype", "message_changed"),
        ),
        (
            "subtype bot_message",
            with(dm.clone(), "/event/subtype", "bot_message"),
        ),
    ] {
        let p = events(&body, None).expect("parses");
        assert!(
            matches!(p, EventsPayload::Callback { message: None, .. }),
            "{what}"
        );
    }
    let p = events(&dm, Some("U04PJ1Y9W2F")).expect("parses");
    assert!(matches!(p, EventsPayload::Callback { message: None, .. }));
}

#[test]
fn a_channel_mention_is_answered_in_a_thread() {
    let body = fixture!("events/app_mention.json").as_bytes();
    let Ok(EventsPayload::Callback {
        message: Some(m), ..
    }) = parse_events(body, None)
    else {
        panic!("a mention is a message");
    };
    assert_eq!(m.thread_ts.as_deref(), Some("1714056611.402109"));
    assert_eq!(m.text, "<@U05LQ8R2B7N> status staging");
}

#[test]
fn channel_messages_and_unknown_types_are_ignored_not_errors() {
    let dm = json(fixture!("events/message_im.json"));
    let in_channel = with(
        with(dm, "/event/channel_type", "channel"),
        "/event/channel",
        "C04HZ3G7VQ8",
    );
    assert!(matches!(
        events(&in_channel, None),
        Ok(EventsPayload::Callback { message: None, .. })
    ));
    assert_eq!(
        parse_events(fixture!("events/app_rate_limited.json").as_bytes(), None),
        Ok(EventsPayload::Other)
    );
    assert!(matches!(
        parse_events(b"{not json", None),
        Err(PayloadError::Json(_))
    ));
}

#[test]
fn a_button_click_carries_value_user_and_response_url() {
    let body = form(&json(fixture!("interactions/block_actions.json")));
    assert_eq!(
        parse_interaction(body.as_bytes()),
        Ok(InteractionPayload::Click(ButtonClick {
            user: "U04PJ1Y9W2F".into(),
            channel: Some("D05M1N7K0XA".into()),
            message_ts: Some("1714056484.530719".into()),
            value: DEPLOY_YES.into(),
            action_id: "crossroads-1".into(),
            response_url:
                "http://127.0.0.1:9/hooks/actions/T04F2K1QZ7R/7021838712389/Zp3kq9TnB0hXvC4sLwYd8R2m"
                    .into(),
            trigger_id: Some("7021838712453.4523086641255.5b7c1e9f0a2d4c6b8e3f1a7d9c0b2e4f".into()),
            teams: vec!["T04F2K1QZ7R".into()],
        }))
    );
    assert_eq!(
        parse_interaction(b"other=1"),
        Err(PayloadError::Missing("payload"))
    );
}

#[test]
fn a_slash_command_is_read_from_the_form() {
    let body = fixture!("commands/slash_command.txt").trim_end();
    assert_eq!(
        parse_command(body.as_bytes()),
        Ok(SlashCommand {
            command: "/crossroads".into(),
            text: "status staging".into(),
            user: "U04PJ1Y9W2F".into(),
            channel: "C04HZ3G7VQ8".into(),
            response_url:
                "http://127.0.0.1:9/hooks/commands/T04F2K1QZ7R/7021901123456/q8Wm2LxR5tYc7NbV1kPz3HdJ"
                    .into(),
            trigger_id: Some("7021901123789.4523086641255.0c4e8a2f6b1d3e5a7c9f0b2d4e6a8c1e".into()),
            teams: vec!["T04F2K1QZ7R".into()],
        })
    );
}

fn click(payload: &Value) -> ButtonClick {
    match parse_interaction(form(payload).as_bytes()) {
        Ok(InteractionPayload::Click(c)) => c,
        other => panic!("a click, got {other:?}"),
    }
}

#[test]
fn a_click_names_the_message_to_edit_unless_it_is_ephemeral() {
    let in_message = json(fixture!("interactions/block_actions.json"));
    let c = click(&in_message);
    assert_eq!(c.message_ts.as_deref(), Some("1714056484.530719"));
    assert_eq!(c.channel.as_deref(), Some("D05M1N7K0XA"));
    let c = click(&json(fixture!("interactions/block_actions_ephemeral.json")));
    assert_eq!(c.message_ts, None, "ephemeral messages cannot be edited");
    let in_view = with(
        in_message,
        "/container",
        json!({"type": "view", "view_id": "V070RT5K2QX"}),
    );
    let c = click(&in_view);
    assert_eq!(c.message_ts, None);
}

/// The envelope a Socket Mode frame carries.
fn envelope(frame: &Value) -> Envelope {
    match parse_frame(&frame.to_string(), Some(BOT_USER)) {
        Ok(SocketFrame::Envelope(e)) => e,
        other => panic!("an envelope, got {other:?}"),
    }
}

#[test]
fn socket_mode_clicks_name_the_message_too() {
    let mut frame = json(fixture!("socket_mode/interactive.json"));
    frame["payload"]
        .as_object_mut()
        .expect("an object")
        .remove("channel");
    let Ok(EnvelopeContent::Interaction(InteractionPayload::Click(c))) = envelope(&frame).content
    else {
        panic!("a click");
    };
    assert_eq!(c.message_ts.as_deref(), Some("1714056484.530719"));
    assert_eq!(
        c.channel.as_deref(),
        Some("D05M1N7K0XA"),
        "from the container"
    );
}

// ------------------------------------------------------------ Socket Mode

#[test]
fn socket_mode_envelopes_carry_what_the_http_routes_receive() {
    let e = envelope(&json(fixture!("socket_mode/events_api.json")));
    assert_eq!(e.id, "b2c8e4f1-7a3d-4e59-9c1b-6d0f2a8e5b37");
    assert_eq!(e.retry_attempt, 0);
    assert!(!e.accepts_response_payload);
    let over_http = parse_events(
        fixture!("events/message_im.json").as_bytes(),
        Some(BOT_USER),
    )
    .expect("an event callback");
    assert!(matches!(
        &over_http,
        EventsPayload::Callback {
            message: Some(_),
            ..
        }
    ));
    assert_eq!(e.content, Ok(EnvelopeContent::Events(over_http)));

    let e = envelope(&json(fixture!("socket_mode/interactive.json")));
    assert_eq!(e.id, "3f9a1c2e-6b4d-4a8f-b0e7-5d2c8a9f1e64");
    assert!(!e.accepts_response_payload);
    let over_http = form(&json(fixture!("interactions/block_actions.json")));
    assert_eq!(
        e.content,
        parse_interaction(over_http.as_bytes()).map(EnvelopeContent::Interaction)
    );

    let e = envelope(&json(fixture!("socket_mode/slash_commands.json")));
    assert_eq!(e.id, "e7d41b3a-9c2f-4f60-8a15-2b6e9d0c7f83");
    assert!(
        e.accepts_response_payload,
        "a command may be answered in the acknowledgement"
    );
    let over_http = fixture!("commands/slash_command.txt").trim_end();
    assert_eq!(
        e.content,
        parse_command(over_http.as_bytes()).map(EnvelopeContent::Command)
    );
}

#[test]
fn an_envelope_whose_payload_is_unreadable_is_still_acknowledged() {
    let mut frame = json(fixture!("socket_mode/slash_commands.json"));
    frame["payload"] = json!({"text": "no user"});
    let e = envelope(&frame);
    assert_eq!(e.id, "e7d41b3a-9c2f-4f60-8a15-2b6e9d0c7f83");
    assert!(e.content.is_err(), "{:?}", e.content);
    assert!(parse_frame("not json", None).is_err());
    assert_eq!(
        parse_frame(r#"{"envelope_id":"x"}"#, None),
        Err(PayloadError::Missing("type"))
    );
}

#[test]
fn socket_mode_hello_and_disconnect_are_understood() {
    assert_eq!(
        parse_frame(fixture!("socket_mode/hello.json"), None),
        Ok(SocketFrame::Hello {
            connections: Some(1)
        })
    );
    assert_eq!(
        parse_frame(fixture!("socket_mode/disconnect.json"), None),
        Ok(SocketFrame::Disconnect {
            reason: "refresh_requested".into()
        })
    );
}
