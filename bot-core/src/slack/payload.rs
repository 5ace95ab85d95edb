//! Slack payloads: Events API bodies, `block_actions` interactions and slash commands,
//! parsed into the few facts the bot acts on.
//!
//! HTTP bodies are parsed with small tolerant serde structs (fast, and an event type
//! or field Slack adds tomorrow never turns a valid delivery into a 400). Socket Mode
//! hands over slack-morphism's models; the `from_*` functions map those onto the same
//! types so both transports share one dispatch.

use serde::Deserialize;
use slack_morphism::prelude::{
    SlackCommandEvent, SlackEventCallbackBody, SlackInteractionActionContainer,
    SlackInteractionEvent, SlackPushEventCallback,
};

/// Why a payload could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The body is not the JSON Slack sends.
    #[error("malformed JSON: {0}")]
    Json(String),
    /// The body is not the form Slack sends.
    #[error("malformed form: {0}")]
    Form(String),
    /// A field Slack always sends is missing.
    #[error("missing field `{0}`")]
    Missing(&'static str),
}

/// What an Events API body asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventsPayload {
    /// The URL check Slack makes when the endpoint is configured: answer with `challenge`.
    UrlVerification {
        /// Value to echo back.
        challenge: String,
    },
    /// An event delivery.
    Callback {
        /// Slack's id for the delivery, the same across retries.
        event_id: String,
        /// The message to act on, or `None` when the event is to be ignored.
        message: Option<MessageEvent>,
    },
    /// Anything else (`app_rate_limited`, future types): acknowledge and ignore.
    Other,
}

/// A person's message the bot should answer (a DM or a mention).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageEvent {
    /// Sender's user id.
    pub user: String,
    /// Channel (`D…` for a DM).
    pub channel: String,
    /// Text as typed, Slack markup included.
    pub text: String,
    /// The message's own `ts`.
    pub ts: String,
    /// Thread to answer in: the thread the message is in, or, for a channel
    /// mention, a new thread under the message. `None` for a top-level DM.
    pub thread_ts: Option<String>,
}

/// A button click (`block_actions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ButtonClick {
    /// Who clicked.
    pub user: String,
    /// Channel of the message holding the button.
    pub channel: Option<String>,
    /// `ts` of the message holding the button (`container.message_ts`), to edit it
    /// with `chat.update`; `None` when it cannot be edited that way (an ephemeral
    /// message, a view).
    pub message_ts: Option<String>,
    /// The button's `value`, verbatim.
    pub value: String,
    /// The button's `action_id` (with `message_ts`, the user and `trigger_id`, what
    /// makes a click unique when Slack delivers it again).
    pub action_id: String,
    /// Where to send the answer.
    pub response_url: String,
    /// Slack's id for this interaction, the same if it is delivered again.
    pub trigger_id: Option<String>,
}

/// What an interactivity body holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InteractionPayload {
    /// A button click.
    Click(ButtonClick),
    /// Another interaction type (or an action without a value): acknowledge and ignore.
    Other(String),
}

/// A slash command (`/crossroads status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlashCommand {
    /// The command, e.g. `/crossroads`.
    pub command: String,
    /// Everything after the command.
    pub text: String,
    /// Who typed it.
    pub user: String,
    /// Where.
    pub channel: String,
    /// Where to send the answer.
    pub response_url: String,
    /// Slack's id for this invocation, the same if the request is replayed.
    pub trigger_id: Option<String>,
}

// ------------------------------------------------------------------ events

#[derive(Deserialize)]
struct RawEnvelope {
    #[serde(rename = "type")]
    kind: String,
    challenge: Option<String>,
    event_id: Option<String>,
    event: Option<RawEvent>,
}

#[derive(Deserialize)]
struct RawEvent {
    #[serde(rename = "type")]
    kind: Option<String>,
    subtype: Option<String>,
    bot_id: Option<String>,
    user: Option<String>,
    text: Option<String>,
    channel: Option<String>,
    channel_type: Option<String>,
    ts: Option<String>,
    thread_ts: Option<String>,
}

/// The facts of one event, whichever model it came from.
struct EventFacts<'a> {
    kind: &'a str,
    has_subtype: bool,
    has_bot_id: bool,
    user: Option<&'a str>,
    text: Option<&'a str>,
    channel: Option<&'a str>,
    channel_type: Option<&'a str>,
    ts: Option<&'a str>,
    thread_ts: Option<&'a str>,
}

impl EventFacts<'_> {
    /// Keeps only subtype-less human DMs and mentions not sent by the bot itself.
    fn into_message(self, bot_user: Option<&str>) -> Option<MessageEvent> {
        let mention = match (self.kind, self.channel_type) {
            ("message", Some("im")) => false,
            ("app_mention", _) => true,
            _ => return None,
        };
        if self.has_subtype || self.has_bot_id {
            return None;
        }
        let user = self.user?;
        if bot_user == Some(user) {
            return None;
        }
        let ts = self.ts.unwrap_or_default();
        let thread_ts = match (self.thread_ts, mention) {
            (Some(t), _) => Some(t.to_owned()),
            (None, true) if !ts.is_empty() => Some(ts.to_owned()),
            (None, _) => None,
        };
        Some(MessageEvent {
            user: user.to_owned(),
            channel: self.channel?.to_owned(),
            text: self.text.unwrap_or_default().to_owned(),
            ts: ts.to_owned(),
            thread_ts,
        })
    }
}

/// Parses an Events API body. `bot_user` is the bot's own user id, whose messages are ignored.
pub fn parse_events(body: &[u8], bot_user: Option<&str>) -> Result<EventsPayload, PayloadError> {
    let env: RawEnvelope =
        serde_json::from_slice(body).map_err(|e| PayloadError::Json(e.to_string()))?;
    match env.kind.as_str() {
        "url_verification" => Ok(EventsPayload::UrlVerification {
            challenge: env.challenge.ok_or(PayloadError::Missing("challenge"))?,
        }),
        "event_callback" => {
            let event_id = env.event_id.ok_or(PayloadError::Missing("event_id"))?;
            let event = env.event.ok_or(PayloadError::Missing("event"))?;
            let message = EventFacts {
                kind: event.kind.as_deref().unwrap_or_default(),
                has_subtype: event.subtype.is_some(),
                has_bot_id: event.bot_id.is_some(),
                user: event.user.as_deref(),
                text: event.text.as_deref(),
                channel: event.channel.as_deref(),
                channel_type: event.channel_type.as_deref(),
                ts: event.ts.as_deref(),
                thread_ts: event.thread_ts.as_deref(),
            }
            .into_message(bot_user);
            Ok(EventsPayload::Callback { event_id, message })
        }
        _ => Ok(EventsPayload::Other),
    }
}

/// Maps a Socket Mode event (slack-morphism's model) onto the message to act on, if any.
pub fn message_from_push_event(
    event: &SlackPushEventCallback,
    bot_user: Option<&str>,
) -> Option<MessageEvent> {
    match &event.event {
        SlackEventCallbackBody::Message(m) => EventFacts {
            kind: "message",
            has_subtype: m.subtype.is_some(),
            has_bot_id: m.sender.bot_id.is_some(),
            user: m.sender.user.as_ref().map(|u| u.0.as_str()),
            text: m.content.as_ref().and_then(|c| c.text.as_deref()),
            channel: m.origin.channel.as_ref().map(|c| c.0.as_str()),
            channel_type: m.origin.channel_type.as_ref().map(|c| c.0.as_str()),
            ts: Some(m.origin.ts.0.as_str()),
            thread_ts: m.origin.thread_ts.as_ref().map(|t| t.0.as_str()),
        }
        .into_message(bot_user),
        SlackEventCallbackBody::AppMention(m) => EventFacts {
            kind: "app_mention",
            has_subtype: false,
            has_bot_id: false,
            user: Some(m.user.0.as_str()),
            text: m.content.text.as_deref(),
            channel: Some(m.channel.0.as_str()),
            channel_type: None,
            ts: Some(m.origin.ts.0.as_str()),
            thread_ts: m.origin.thread_ts.as_ref().map(|t| t.0.as_str()),
        }
        .into_message(bot_user),
        _ => None,
    }
}

// ------------------------------------------------------------ interactions

#[derive(Deserialize)]
struct RawForm {
    payload: Option<String>,
}

#[derive(Deserialize)]
struct RawInteraction {
    #[serde(rename = "type")]
    kind: String,
    user: Option<RawId>,
    channel: Option<RawId>,
    container: Option<RawContainer>,
    response_url: Option<String>,
    #[serde(default)]
    actions: Vec<RawAction>,
    trigger_id: Option<String>,
}

#[derive(Deserialize)]
struct RawContainer {
    #[serde(rename = "type")]
    kind: Option<String>,
    message_ts: Option<String>,
    channel_id: Option<String>,
    #[serde(default)]
    is_ephemeral: bool,
}

/// The message a click came from, when `chat.update` can edit it: a message
/// container (not a view), not ephemeral, with its `ts`.
fn editable_ts(kind: Option<&str>, ts: Option<&str>, ephemeral: bool) -> Option<String> {
    match kind {
        Some("message") | None if !ephemeral => ts.filter(|t| !t.is_empty()).map(str::to_owned),
        _ => None,
    }
}

#[derive(Deserialize)]
struct RawId {
    id: String,
}

#[derive(Deserialize)]
struct RawAction {
    value: Option<String>,
    #[serde(default)]
    action_id: String,
}

/// Parses an interactivity body: the form field `payload` holding JSON.
pub fn parse_interaction(body: &[u8]) -> Result<InteractionPayload, PayloadError> {
    let form: RawForm =
        serde_urlencoded::from_bytes(body).map_err(|e| PayloadError::Form(e.to_string()))?;
    let payload = form.payload.ok_or(PayloadError::Missing("payload"))?;
    let raw: RawInteraction =
        serde_json::from_str(&payload).map_err(|e| PayloadError::Json(e.to_string()))?;
    if raw.kind != "block_actions" {
        return Ok(InteractionPayload::Other(raw.kind));
    }
    let user = raw.user.ok_or(PayloadError::Missing("user"))?.id;
    let response_url = raw
        .response_url
        .ok_or(PayloadError::Missing("response_url"))?;
    let Some((value, action_id)) = raw
        .actions
        .into_iter()
        .next()
        .and_then(|a| Some((a.value?, a.action_id)))
    else {
        return Ok(InteractionPayload::Other(
            "block_actions without a value".into(),
        ));
    };
    let container = raw.container.as_ref();
    let message_ts = container
        .and_then(|c| editable_ts(c.kind.as_deref(), c.message_ts.as_deref(), c.is_ephemeral));
    let channel = raw
        .channel
        .map(|c| c.id)
        .or_else(|| container.and_then(|c| c.channel_id.clone()));
    Ok(InteractionPayload::Click(ButtonClick {
        user,
        channel,
        message_ts,
        value,
        action_id,
        response_url,
        trigger_id: raw.trigger_id.filter(|t| !t.is_empty()),
    }))
}

/// Maps a Socket Mode interaction (slack-morphism's model) onto a click, if it is one.
pub fn click_from_interaction(event: &SlackInteractionEvent) -> InteractionPayload {
    let SlackInteractionEvent::BlockActions(b) = event else {
        return InteractionPayload::Other("not block_actions".into());
    };
    let first = b.actions.as_ref().and_then(|a| a.first());
    let value = first.and_then(|a| a.value.clone());
    let action_id = first.map(|a| a.action_id.0.clone()).unwrap_or_default();
    let (message_ts, container_channel) = match &b.container {
        SlackInteractionActionContainer::Message(m) => (
            editable_ts(
                Some("message"),
                Some(m.message_ts.0.as_str()),
                m.is_ephemeral.unwrap_or(false),
            ),
            m.channel_id.as_ref().map(|c| c.0.clone()),
        ),
        _ => (None, None),
    };
    match (&b.user, &b.response_url, value) {
        (Some(user), Some(url), Some(value)) => InteractionPayload::Click(ButtonClick {
            user: user.id.0.clone(),
            channel: b
                .channel
                .as_ref()
                .map(|c| c.id.0.clone())
                .or(container_channel),
            message_ts,
            value,
            action_id,
            response_url: url.0.to_string(),
            trigger_id: Some(b.trigger_id.0.clone()).filter(|t| !t.is_empty()),
        }),
        _ => InteractionPayload::Other("block_actions without user, response_url or value".into()),
    }
}

// ---------------------------------------------------------- slash commands

#[derive(Deserialize)]
struct RawCommand {
    command: Option<String>,
    text: Option<String>,
    user_id: Option<String>,
    channel_id: Option<String>,
    response_url: Option<String>,
    trigger_id: Option<String>,
}

/// Parses a slash command body (form-encoded).
pub fn parse_command(body: &[u8]) -> Result<SlashCommand, PayloadError> {
    let raw: RawCommand =
        serde_urlencoded::from_bytes(body).map_err(|e| PayloadError::Form(e.to_string()))?;
    Ok(SlashCommand {
        command: raw.command.unwrap_or_default(),
        text: raw.text.unwrap_or_default(),
        user: raw.user_id.ok_or(PayloadError::Missing("user_id"))?,
        channel: raw.channel_id.ok_or(PayloadError::Missing("channel_id"))?,
        response_url: raw
            .response_url
            .ok_or(PayloadError::Missing("response_url"))?,
        trigger_id: raw.trigger_id.filter(|t| !t.is_empty()),
    })
}

/// Maps a Socket Mode slash command (slack-morphism's model) onto ours.
pub fn command_from_event(event: &SlackCommandEvent) -> SlashCommand {
    SlashCommand {
        command: event.command.0.clone(),
        text: event.text.clone().unwrap_or_default(),
        user: event.user_id.0.clone(),
        channel: event.channel_id.0.clone(),
        response_url: event.response_url.0.to_string(),
        trigger_id: Some(event.trigger_id.0.clone()).filter(|t| !t.is_empty()),
    }
}
