//! Socket Mode frames: `hello`, `disconnect` and envelopes, whose payloads are read by the same parsers as HTTP bodies.
//!
//! Wire format: `{"type":"hello","num_connections":N,…}`,
//! `{"type":"disconnect","reason":"refresh_requested"|"warning"|"link_disabled",…}`, and
//! envelopes `{"envelope_id","type":"events_api"|"interactive"|"slash_commands",
//! "payload",…,"accepts_response_payload","retry_attempt","retry_reason"}`. An envelope
//! whose payload cannot be read is still an envelope (it must be acknowledged, or
//! Slack delivers it again); a frame that is not JSON or has no `type` is an error.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::payload::{
    parse_command_json, parse_events, parse_interaction_json, EventsPayload, InteractionPayload,
    PayloadError, SlashCommand,
};

/// One text frame from Slack. (Short-lived: an envelope's size is not worth a box.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketFrame {
    /// The connection is ready.
    Hello {
        /// Connections the app has open, as Slack counts them.
        connections: Option<u64>,
    },
    /// Slack asks the client to go (`refresh_requested`, `warning`, `link_disabled`).
    Disconnect {
        /// Slack's reason.
        reason: String,
    },
    /// Work to acknowledge and do.
    Envelope(Envelope),
    /// A frame type this client does not act on.
    Other(String),
}

/// One envelope: acknowledge `id`, then act on `content`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// What to acknowledge.
    pub id: String,
    /// 0 on first delivery.
    pub retry_attempt: u64,
    /// Whether the acknowledgement may carry a response payload.
    pub accepts_response_payload: bool,
    /// The payload, or why it could not be read.
    pub content: Result<EnvelopeContent, PayloadError>,
}

/// What an envelope carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeContent {
    /// `events_api`: what an Events API body would hold.
    Events(EventsPayload),
    /// `interactive`: a click or another interaction.
    Interaction(InteractionPayload),
    /// `slash_commands`.
    Command(SlashCommand),
    /// Another envelope type: acknowledge and ignore.
    Other(String),
}

#[derive(Deserialize)]
struct RawFrame<'a> {
    #[serde(rename = "type")]
    kind: Option<String>,
    envelope_id: Option<String>,
    #[serde(borrow)]
    payload: Option<&'a RawValue>,
    #[serde(default)]
    accepts_response_payload: bool,
    #[serde(default)]
    retry_attempt: Option<u64>,
    num_connections: Option<u64>,
    reason: Option<String>,
}

/// Parses one text frame. `bot_user` is the bot's own user id, whose messages are ignored.
pub fn parse_frame(text: &str, bot_user: Option<&str>) -> Result<SocketFrame, PayloadError> {
    let raw: RawFrame<'_> =
        serde_json::from_str(text).map_err(|e| PayloadError::Json(e.to_string()))?;
    let kind = raw.kind.ok_or(PayloadError::Missing("type"))?;
    match kind.as_str() {
        "hello" => Ok(SocketFrame::Hello {
            connections: raw.num_connections,
        }),
        "disconnect" => Ok(SocketFrame::Disconnect {
            reason: raw.reason.unwrap_or_default(),
        }),
        "events_api" | "interactive" | "slash_commands" => {
            let id = raw
                .envelope_id
                .filter(|id| !id.is_empty())
                .ok_or(PayloadError::Missing("envelope_id"))?;
            let content = match raw.payload {
                None => Err(PayloadError::Missing("payload")),
                Some(p) => {
                    let json = p.get().as_bytes();
                    match kind.as_str() {
                        "events_api" => parse_events(json, bot_user).map(EnvelopeContent::Events),
                        "interactive" => {
                            parse_interaction_json(json).map(EnvelopeContent::Interaction)
                        }
                        _ => parse_command_json(json).map(EnvelopeContent::Command),
                    }
                }
            };
            Ok(SocketFrame::Envelope(Envelope {
                id,
                retry_attempt: raw.retry_attempt.unwrap_or(0),
                accepts_response_payload: raw.accepts_response_payload,
                content,
            }))
        }
        _ => match raw.envelope_id.filter(|id| !id.is_empty()) {
            // An envelope of a type added after this client was written: acknowledged
            // so Slack does not deliver it again, and ignored.
            Some(id) => Ok(SocketFrame::Envelope(Envelope {
                id,
                retry_attempt: raw.retry_attempt.unwrap_or(0),
                accepts_response_payload: raw.accepts_response_payload,
                content: Ok(EnvelopeContent::Other(kind)),
            })),
            None => Ok(SocketFrame::Other(kind)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slack::payload::MessageEvent;

    #[test]
    fn hello_and_disconnect_are_read() {
        assert_eq!(
            parse_frame(
                r#"{"type":"hello","num_connections":2,"debug_info":{"host":"h"},"connection_info":{"app_id":"A1"}}"#,
                None
            ),
            Ok(SocketFrame::Hello {
                connections: Some(2)
            })
        );
        assert_eq!(
            parse_frame(
                r#"{"type":"disconnect","reason":"refresh_requested","debug_info":{}}"#,
                None
            ),
            Ok(SocketFrame::Disconnect {
                reason: "refresh_requested".into()
            })
        );
    }

    #[test]
    fn an_events_api_envelope_holds_an_events_api_body() {
        let frame = r#"{"envelope_id":"e1","type":"events_api","accepts_response_payload":false,
            "retry_attempt":1,"retry_reason":"timeout",
            "payload":{"type":"event_callback","event_id":"Ev1","event":{"type":"message",
              "channel_type":"im","channel":"D1","user":"U1","text":"status","ts":"1.1"}}}"#;
        let Ok(SocketFrame::Envelope(e)) = parse_frame(frame, Some("UBOT")) else {
            panic!("an envelope");
        };
        assert_eq!((e.id.as_str(), e.retry_attempt), ("e1", 1));
        assert_eq!(
            e.content,
            Ok(EnvelopeContent::Events(EventsPayload::Callback {
                event_id: "Ev1".into(),
                message: Some(MessageEvent {
                    user: "U1".into(),
                    channel: "D1".into(),
                    text: "status".into(),
                    ts: "1.1".into(),
                    thread_ts: None,
                    teams: vec![],
                }),
            }))
        );
    }

    #[test]
    fn an_unreadable_payload_is_still_an_envelope_to_acknowledge() {
        let Ok(SocketFrame::Envelope(e)) = parse_frame(
            r#"{"envelope_id":"e2","type":"slash_commands","payload":{"text":"x"},"accepts_response_payload":true}"#,
            None,
        ) else {
            panic!("an envelope");
        };
        assert_eq!(e.id, "e2");
        assert!(e.accepts_response_payload);
        assert_eq!(e.content, Err(PayloadError::Missing("user_id")));
        let Ok(SocketFrame::Envelope(e)) = parse_frame(
            r#"{"envelope_id":"e3","type":"future_kind","payload":{}}"#,
            None,
        ) else {
            panic!("an envelope");
        };
        assert_eq!(e.content, Ok(EnvelopeContent::Other("future_kind".into())));
    }

    #[test]
    fn frames_that_are_not_slack_frames_are_errors() {
        assert!(matches!(
            parse_frame("this is not json {", None),
            Err(PayloadError::Json(_))
        ));
        assert_eq!(
            parse_frame(r#"{"envelope_id":"no-type","payload":{}}"#, None),
            Err(PayloadError::Missing("type"))
        );
        assert_eq!(
            parse_frame(r#"{"type":"events_api","payload":{}}"#, None),
            Err(PayloadError::Missing("envelope_id"))
        );
    }
}
