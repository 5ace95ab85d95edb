//! Slack payloads: Events API bodies, `block_actions` interactions and slash commands,
//! parsed into the few facts the bot acts on.
//!
//! Bodies are parsed with small tolerant serde structs (fast, and an event type or
//! field Slack adds tomorrow never turns a valid delivery into a 400). HTTP and
//! Socket Mode share them: an Events API body is a Socket Mode `events_api` payload,
//! the JSON in an interaction's `payload=` field is an `interactive` payload, and a
//! slash command's form fields are a `slash_commands` payload as a JSON object
//! ([`super::socket`] reads the envelopes around them).

use serde::Deserialize;

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
    /// A form field does not decode to UTF-8 (Slack always sends UTF-8, so the body
    /// was not written by Slack, or was damaged on the way).
    #[error("form field `{0}` is not valid UTF-8")]
    NotUtf8(String),
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
    /// Every workspace the delivery names: the workspace it was sent for, and the
    /// sender's own (another organisation's, in a Slack Connect channel).
    pub teams: Vec<String>,
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
    /// Every workspace the click names (the app's, the clicker's).
    pub teams: Vec<String>,
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
    /// Every workspace the command names.
    pub teams: Vec<String>,
}

/// Whether a delivery naming `teams` comes from outside the workspaces served
/// (`allowed`, from `SLACK_TEAM_ID`; empty: every workspace is served). A delivery
/// that names none while some are configured is outside too.
pub fn foreign(teams: &[String], allowed: &[String]) -> bool {
    if allowed.is_empty() {
        return false;
    }
    teams.is_empty() || teams.iter().any(|t| !allowed.contains(t))
}

/// The distinct non-empty ids of `ids`, in order.
fn teams_of<'a>(ids: impl IntoIterator<Item = Option<&'a str>>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for id in ids.into_iter().flatten() {
        if !id.is_empty() && !out.iter().any(|t| t == id) {
            out.push(id.to_owned());
        }
    }
    out
}

// ------------------------------------------------------------------ events

#[derive(Deserialize)]
struct RawEnvelope {
    #[serde(rename = "type")]
    kind: String,
    challenge: Option<String>,
    event_id: Option<String>,
    team_id: Option<String>,
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
    team: Option<String>,
    user_team: Option<String>,
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
    teams: Vec<String>,
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
            teams: self.teams,
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
                teams: teams_of([
                    env.team_id.as_deref(),
                    event.team.as_deref(),
                    event.user_team.as_deref(),
                ]),
            }
            .into_message(bot_user);
            Ok(EventsPayload::Callback { event_id, message })
        }
        _ => Ok(EventsPayload::Other),
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
    team: Option<RawId>,
    user: Option<RawUser>,
    channel: Option<RawId>,
    container: Option<RawContainer>,
    response_url: Option<String>,
    trigger_id: Option<String>,
    #[serde(default)]
    actions: Vec<RawAction>,
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
struct RawUser {
    id: String,
    team_id: Option<String>,
}

#[derive(Deserialize)]
struct RawAction {
    value: Option<String>,
    #[serde(default)]
    action_id: String,
}

/// Parses an interactivity body: the form field `payload` holding JSON.
pub fn parse_interaction(body: &[u8]) -> Result<InteractionPayload, PayloadError> {
    let form: RawForm = parse_form(body)?;
    let payload = form.payload.ok_or(PayloadError::Missing("payload"))?;
    parse_interaction_json(payload.as_bytes())
}

/// Parses an interaction's JSON (the `payload` form field over HTTP, the envelope's
/// `payload` in Socket Mode).
pub fn parse_interaction_json(json: &[u8]) -> Result<InteractionPayload, PayloadError> {
    let raw: RawInteraction =
        serde_json::from_slice(json).map_err(|e| PayloadError::Json(e.to_string()))?;
    if raw.kind != "block_actions" {
        return Ok(InteractionPayload::Other(raw.kind));
    }
    let raw_user = raw.user.ok_or(PayloadError::Missing("user"))?;
    let teams = teams_of([
        raw.team.as_ref().map(|t| t.id.as_str()),
        raw_user.team_id.as_deref(),
    ]);
    let user = raw_user.id;
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
        teams,
    }))
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
    team_id: Option<String>,
    user_team: Option<String>,
}

/// Parses a slash command body (form-encoded). A field that is not UTF-8 is an
/// error, never a run with U+FFFD in place of what was typed.
pub fn parse_command(body: &[u8]) -> Result<SlashCommand, PayloadError> {
    command(parse_form(body)?)
}

/// Parses a slash command's fields as a JSON object of strings (Socket Mode's
/// `slash_commands` payload).
pub fn parse_command_json(json: &[u8]) -> Result<SlashCommand, PayloadError> {
    command(serde_json::from_slice(json).map_err(|e| PayloadError::Json(e.to_string()))?)
}

fn command(raw: RawCommand) -> Result<SlashCommand, PayloadError> {
    let teams = teams_of([raw.team_id.as_deref(), raw.user_team.as_deref()]);
    Ok(SlashCommand {
        teams,
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

/// Reads a form body strictly: every name and value must decode (`+` and `%XX`)
/// to UTF-8. serde_urlencoded alone would replace bad bytes with U+FFFD.
fn parse_form<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, PayloadError> {
    for pair in body.split(|b| *b == b'&') {
        let (name, value) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &pair[..0]),
        };
        let decode = |raw: &[u8]| -> Vec<u8> {
            let spaced: Vec<u8> = raw
                .iter()
                .map(|b| if *b == b'+' { b' ' } else { *b })
                .collect();
            percent_encoding::percent_decode(&spaced).collect()
        };
        let name = decode(name);
        let Ok(field) = std::str::from_utf8(&name) else {
            return Err(PayloadError::NotUtf8(
                String::from_utf8_lossy(&name).chars().take(40).collect(),
            ));
        };
        if std::str::from_utf8(&decode(value)).is_err() {
            return Err(PayloadError::NotUtf8(field.chars().take(40).collect()));
        }
    }
    serde_urlencoded::from_bytes(body).map_err(|e| PayloadError::Form(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dm(extra: &str) -> String {
        format!(
            r#"{{"type":"event_callback","event_id":"Ev1","team_id":"T1","event":{{"type":"message","channel_type":"im","channel":"D1","user":"U1","text":"status","ts":"1.1"{extra}}}}}"#
        )
    }

    #[test]
    fn url_verification_yields_the_challenge() {
        let p = parse_events(
            br#"{"type":"url_verification","challenge":"abc","token":"t"}"#,
            None,
        );
        assert_eq!(
            p,
            Ok(EventsPayload::UrlVerification {
                challenge: "abc".into()
            })
        );
    }

    #[test]
    fn a_dm_is_a_message_to_answer_in_the_dm() {
        let p = parse_events(dm("").as_bytes(), Some("UBOT")).expect("parses");
        assert_eq!(
            p,
            EventsPayload::Callback {
                event_id: "Ev1".into(),
                message: Some(MessageEvent {
                    user: "U1".into(),
                    channel: "D1".into(),
                    text: "status".into(),
                    ts: "1.1".into(),
                    thread_ts: None,
                    teams: vec!["T1".into()],
                })
            }
        );
    }

    #[test]
    fn bots_edits_and_the_bot_itself_are_ignored() {
        for extra in [
            r#","bot_id":"B1""#,
            r#","subtype":"message_changed""#,
            r#","subtype":"bot_message""#,
        ] {
            let p = parse_events(dm(extra).as_bytes(), None).expect("parses");
            assert!(
                matches!(p, EventsPayload::Callback { message: None, .. }),
                "{extra}"
            );
        }
        let p = parse_events(dm("").as_bytes(), Some("U1")).expect("parses");
        assert!(matches!(p, EventsPayload::Callback { message: None, .. }));
    }

    #[test]
    fn a_channel_mention_is_answered_in_a_thread() {
        let body = br#"{"type":"event_callback","event_id":"Ev2","event":{"type":"app_mention","channel":"C1","user":"U1","text":"<@UBOT> status","ts":"5.5"}}"#;
        let Ok(EventsPayload::Callback {
            message: Some(m), ..
        }) = parse_events(body, None)
        else {
            panic!("a mention is a message");
        };
        assert_eq!(m.thread_ts.as_deref(), Some("5.5"));
        assert_eq!(m.text, "<@UBOT> status");
    }

    #[test]
    fn channel_messages_and_unknown_types_are_ignored_not_errors() {
        let body = br#"{"type":"event_callback","event_id":"Ev3","event":{"type":"message","channel_type":"channel","channel":"C1","user":"U1","text":"hi","ts":"1"}}"#;
        assert!(matches!(
            parse_events(body, None),
            Ok(EventsPayload::Callback { message: None, .. })
        ));
        assert_eq!(
            parse_events(br#"{"type":"app_rate_limited"}"#, None),
            Ok(EventsPayload::Other)
        );
        assert!(matches!(
            parse_events(b"{not json", None),
            Err(PayloadError::Json(_))
        ));
    }

    #[test]
    fn a_button_click_carries_value_user_and_response_url() {
        let payload = r#"{"type":"block_actions","user":{"id":"U9"},"channel":{"id":"D1"},"response_url":"http://127.0.0.1:1/r","actions":[{"action_id":"a","block_id":"b","type":"button","value":"{\"set\":\"s\"}"}]}"#;
        let body = serde_urlencoded::to_string([("payload", payload)]).expect("encodes");
        assert_eq!(
            parse_interaction(body.as_bytes()),
            Ok(InteractionPayload::Click(ButtonClick {
                user: "U9".into(),
                channel: Some("D1".into()),
                message_ts: None,
                value: r#"{"set":"s"}"#.into(),
                action_id: "a".into(),
                response_url: "http://127.0.0.1:1/r".into(),
                trigger_id: None,
                teams: vec![],
            }))
        );
        assert_eq!(
            parse_interaction(b"other=1"),
            Err(PayloadError::Missing("payload"))
        );
    }

    #[test]
    fn a_slash_command_is_read_from_the_form() {
        let body = "command=%2Fcrossroads&text=status+staging&user_id=U1&channel_id=C1&response_url=http%3A%2F%2F127.0.0.1%3A1%2Fr&trigger_id=t";
        assert_eq!(
            parse_command(body.as_bytes()),
            Ok(SlashCommand {
                command: "/crossroads".into(),
                text: "status staging".into(),
                user: "U1".into(),
                channel: "C1".into(),
                response_url: "http://127.0.0.1:1/r".into(),
                trigger_id: Some("t".into()),
                teams: vec![],
            })
        );
    }

    fn click_with_container(container: &str) -> ButtonClick {
        let payload = format!(
            r#"{{"type":"block_actions","user":{{"id":"U9"}},"channel":{{"id":"C5"}},"container":{container},"response_url":"http://127.0.0.1:1/r","actions":[{{"type":"button","value":"v"}}]}}"#
        );
        let body = serde_urlencoded::to_string([("payload", payload)]).expect("encodes");
        match parse_interaction(body.as_bytes()) {
            Ok(InteractionPayload::Click(c)) => c,
            other => panic!("a click, got {other:?}"),
        }
    }

    #[test]
    fn a_click_names_the_message_to_edit_unless_it_is_ephemeral() {
        let c = click_with_container(
            r#"{"type":"message","message_ts":"1700000000.000200","channel_id":"C5","is_ephemeral":false}"#,
        );
        assert_eq!(c.message_ts.as_deref(), Some("1700000000.000200"));
        assert_eq!(c.channel.as_deref(), Some("C5"));
        let c = click_with_container(
            r#"{"type":"message","message_ts":"1700000000.000200","channel_id":"C5","is_ephemeral":true}"#,
        );
        assert_eq!(c.message_ts, None, "ephemeral messages cannot be edited");
        let c = click_with_container(r#"{"type":"view","view_id":"V1"}"#);
        assert_eq!(c.message_ts, None);
    }

    #[test]
    fn socket_mode_payloads_are_the_same_json() {
        let click = br#"{"type":"block_actions","team":{"id":"T1"},"user":{"id":"U1"},
            "api_app_id":"A1","trigger_id":"1.2",
            "container":{"type":"message","message_ts":"1.5","channel_id":"D9"},
            "response_url":"http://127.0.0.1:1/r",
            "actions":[{"type":"button","action_id":"a","value":"v"}]}"#;
        let Ok(InteractionPayload::Click(c)) = parse_interaction_json(click) else {
            panic!("a click");
        };
        assert_eq!(c.message_ts.as_deref(), Some("1.5"));
        assert_eq!(c.channel.as_deref(), Some("D9"), "from the container");
        assert_eq!(c.trigger_id.as_deref(), Some("1.2"));

        let command = br#"{"command":"/crossroads","text":"status","user_id":"U1",
            "channel_id":"C1","response_url":"http://127.0.0.1:1/r","trigger_id":"9.9",
            "is_enterprise_install":"false"}"#;
        let c = parse_command_json(command).expect("a command");
        assert_eq!((c.text.as_str(), c.user.as_str()), ("status", "U1"));
        assert_eq!(c.trigger_id.as_deref(), Some("9.9"));
    }

    #[test]
    fn a_form_field_that_is_not_utf8_is_refused_not_mangled() {
        let body =
            "command=%2Fcrossroads&text=deploy+%FF%FE&user_id=U1&channel_id=C1&response_url=x";
        assert_eq!(
            parse_command(body.as_bytes()),
            Err(PayloadError::NotUtf8("text".into()))
        );
        assert_eq!(
            parse_interaction(b"payload=%C3%28"),
            Err(PayloadError::NotUtf8("payload".into()))
        );
        // Multi-byte UTF-8, raw or percent-encoded, is fine.
        let ok = "command=%2Fc&text=d%C3%A9ploy+caf\u{e9}&user_id=U1&channel_id=C1&response_url=x";
        assert_eq!(
            parse_command(ok.as_bytes()).map(|c| c.text),
            Ok("déploy café".into())
        );
    }
}
