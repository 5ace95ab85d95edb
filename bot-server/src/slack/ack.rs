//! What Slack is told at once: the acknowledgement of a slash command, and the
//! "try again" answers to work that could not be taken.

use bot_core::{Outcome, Reply};
use slack_morphism::prelude::*;

use crate::intake::Accepted;

/// Told to whoever Socket Mode could not serve because too much is in flight.
pub const BUSY_TEXT: &str = "I'm busy right now, please try again in a minute.";

/// Told to whoever Socket Mode could not serve because the bot is shutting down.
pub const RESTARTING_TEXT: &str = "I'm restarting right now, please try again in a minute.";

/// Told to whoever Socket Mode could not serve because the state store is unavailable.
pub const UNAVAILABLE_TEXT: &str =
    "I can't take work right now: my state store is unavailable, so nothing was done. Please try again in a minute.";

/// The ephemeral "try again" answer to refused work.
pub fn refusal(why: Accepted) -> Reply {
    let text = match why {
        Accepted::ShuttingDown => RESTARTING_TEXT,
        Accepted::Unavailable => UNAVAILABLE_TEXT,
        _ => BUSY_TEXT,
    };
    Reply::message(Outcome::Rejected, text).ephemeral()
}

/// The immediate answer to a slash command, shown only to the person who typed it.
pub fn command_ack(text: &str) -> SlackCommandEventResponse {
    let shown = text.trim().replace('`', "'");
    let text = if shown.is_empty() {
        "Working on it…".to_owned()
    } else {
        format!("Working on `{shown}`…")
    };
    SlackCommandEventResponse::new(SlackMessageContent::new().with_text(text))
        .with_response_type(SlackMessageResponseType::Ephemeral)
}

/// The immediate answer to a slash command that was refused (`why`).
pub fn command_refusal(why: Accepted) -> SlackCommandEventResponse {
    let reply = refusal(why);
    SlackCommandEventResponse::new(SlackMessageContent::new().with_text(reply.to_plain_text()))
        .with_response_type(SlackMessageResponseType::Ephemeral)
}
