//! Realistic payloads for Socket Mode envelopes: a message event, a slash command and a button click, with `response_url`s on this stand-in.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::web::stored_message;
use super::SlackStandIn;

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl SlackStandIn {
    fn next_trigger(&self) -> String {
        let mut web = self.shared.web();
        web.next_trigger += 1;
        format!(
            "{}.{}.sim{:08x}",
            1_000_000 + web.next_trigger,
            47_445_629,
            web.next_trigger
        )
    }

    fn next_ts(&self) -> String {
        self.shared.web().ts()
    }

    /// An `event_callback` payload carrying a human's `message` event (`channel_type`
    /// `im` for `D…` channels), for [`Envelope::events_api`](super::Envelope::events_api).
    pub fn message_event(&self, channel: &str, user: &str, text: &str) -> Value {
        let s = &self.shared.setup;
        let ts = self.next_ts();
        let channel_type = if channel.starts_with('D') {
            "im"
        } else {
            "channel"
        };
        json!({
            "token": "sim-verification-token",
            "team_id": s.team_id,
            "api_app_id": s.app_id,
            "event": {
                "type": "message",
                "channel": channel,
                "channel_type": channel_type,
                "user": user,
                "text": text,
                "ts": ts,
                "event_ts": ts,
                "team": s.team_id,
                "client_msg_id": format!("c0000000-0000-4000-8000-{:012}", ts.replace('.', "")),
            },
            "type": "event_callback",
            "event_id": format!("Ev0SIM{}", ts.replace('.', "")),
            "event_time": unix_now(),
            "authorizations": [{
                "enterprise_id": null,
                "team_id": s.team_id,
                "user_id": s.bot_user_id,
                "is_bot": true,
                "is_enterprise_install": false,
            }],
            "is_ext_shared_channel": false,
            "event_context": format!("4-message-{}-{channel}", s.team_id),
        })
    }

    /// A slash command's fields as Socket Mode sends them (all strings), with a fresh
    /// `response_url` and `trigger_id`, for
    /// [`Envelope::slash_commands`](super::Envelope::slash_commands).
    pub fn slash_command(
        &self,
        command: &str,
        text: &str,
        user_id: &str,
        channel_id: &str,
    ) -> Value {
        let s = &self.shared.setup;
        json!({
            "token": "sim-verification-token",
            "team_id": s.team_id,
            "team_domain": "crossroads-sim",
            "channel_id": channel_id,
            "channel_name": if channel_id.starts_with('D') { "directmessage" } else { "deploys" },
            "user_id": user_id,
            "user_name": user_id.to_ascii_lowercase(),
            "command": command,
            "text": text,
            "api_app_id": s.app_id,
            "is_enterprise_install": "false",
            "response_url": self.response_url(),
            "trigger_id": self.next_trigger(),
        })
    }

    /// A `block_actions` payload for a click on button `action_id` (with `value`) in
    /// the message at `channel`/`message_ts` (the stand-in's copy of the message when
    /// the bot posted it), for [`Envelope::interactive`](super::Envelope::interactive).
    pub fn block_actions(
        &self,
        user_id: &str,
        channel_id: &str,
        message_ts: &str,
        action_id: &str,
        value: &str,
    ) -> Value {
        let s = &self.shared.setup;
        let message = stored_message(&self.shared, channel_id, message_ts)
            .map(|m| m.message)
            .unwrap_or_else(|| json!({"type": "message", "ts": message_ts, "text": ""}));
        let block_id = message
            .get("blocks")
            .and_then(Value::as_array)
            .and_then(|blocks| {
                blocks.iter().find(|b| {
                    b.get("elements")
                        .and_then(Value::as_array)
                        .is_some_and(|els| {
                            els.iter().any(|e| {
                                e.get("action_id").and_then(Value::as_str) == Some(action_id)
                            })
                        })
                })
            })
            .and_then(|b| b.get("block_id"))
            .cloned()
            .unwrap_or_else(|| Value::from("sim-actions"));
        json!({
            "type": "block_actions",
            "user": {"id": user_id, "username": user_id.to_ascii_lowercase(), "name": user_id.to_ascii_lowercase(), "team_id": s.team_id},
            "api_app_id": s.app_id,
            "token": "sim-verification-token",
            "container": {"type": "message", "message_ts": message_ts, "channel_id": channel_id, "is_ephemeral": false},
            "trigger_id": self.next_trigger(),
            "team": {"id": s.team_id, "domain": "crossroads-sim"},
            "enterprise": null,
            "is_enterprise_install": false,
            "channel": {"id": channel_id, "name": "deploys"},
            "message": message,
            "state": {"values": {}},
            "response_url": self.response_url(),
            "actions": [{
                "action_id": action_id,
                "block_id": block_id,
                "text": {"type": "plain_text", "text": value, "emoji": true},
                "value": value,
                "type": "button",
                "action_ts": format!("{}.000100", unix_now()),
            }],
        })
    }
}
