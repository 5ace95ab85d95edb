//! Sending one version of a request's answer to Slack, wherever it goes: a new message
//! then `chat.update` of it, the clicked message, or a `response_url` that keeps its
//! last use for the final reply. Pure of storage: the courier keeps the state.

use std::time::Duration;

use bot_core::{Outcome, Reply};
use serde::{Deserialize, Serialize};
use slack_morphism::prelude::*;

use crate::slack::webapi::{content, ResponseUrlMessage, WebApi, WebApiError};

/// Uses of one `response_url` Slack allows.
const RESPONSE_URL_USES: u8 = 5;

/// Where replies to one request go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "to", rename_all = "snake_case")]
pub enum Destination {
    /// A conversation: `chat.postMessage`, then `chat.update` of that message.
    Channel {
        /// Channel id.
        channel: String,
        /// Thread to post in.
        thread_ts: Option<String>,
        /// Requester, for ephemeral answers in shared channels.
        user: String,
    },
    /// A clicked message: progress and the reply edit it with `chat.update`
    /// (no use limit, no expiry); ephemeral answers go to `response_url`, which
    /// also takes the final reply if the edit fails.
    Message {
        /// Channel of the message.
        channel: String,
        /// Its `ts`.
        ts: String,
        /// The click's `response_url`.
        response_url: String,
    },
    /// A `response_url` (slash command, or a click on a message that cannot be edited).
    ResponseUrl {
        /// The URL.
        url: String,
        /// `true` for a slash command (first answer is a new message), `false` for a
        /// click (answers replace the clicked message).
        slash: bool,
    },
}

/// What has been delivered so far along a destination.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivered {
    /// `ts` of the message posted for this request, to update in place.
    #[serde(default)]
    pub posted: Option<String>,
    /// `response_url` uses so far.
    #[serde(default)]
    pub uses: u8,
}

/// Shortest wait before the next progress delivery: `interval`, and on a
/// `response_url` five times longer after each use (2 s, 10 s, 50 s, 250 s by
/// default), so its four progress uses spread over a long action.
pub fn gap(dest: &Destination, state: &Delivered, interval: Duration) -> Duration {
    match dest {
        Destination::ResponseUrl { .. } => {
            interval.saturating_mul(5u32.saturating_pow(u32::from(state.uses).saturating_sub(1)))
        }
        _ => interval,
    }
}

/// Sends one version of a request's answer — `last` for the final reply, else
/// progress — to `dest`, one attempt, updating `state` (the posted message's `ts`, the
/// `response_url` uses).
pub async fn send(
    web: &WebApi,
    dest: &Destination,
    state: &mut Delivered,
    reply: &Reply,
    last: bool,
) -> Result<(), WebApiError> {
    match dest {
        Destination::Channel {
            channel,
            thread_ts,
            user,
        } => {
            if reply.ephemeral && !channel.starts_with('D') {
                let mut req = SlackApiChatPostEphemeralRequest::new(
                    channel.clone().into(),
                    user.clone().into(),
                    content(reply),
                );
                req.thread_ts = thread_ts.clone().map(Into::into);
                web.post_ephemeral(&req).await
            } else {
                match &state.posted {
                    Some(ts) => {
                        let req = SlackApiChatUpdateRequest::new(
                            channel.clone().into(),
                            content(reply),
                            ts.clone().into(),
                        );
                        web.update(&req).await.map(drop)
                    }
                    None => {
                        let mut req = SlackApiChatPostMessageRequest::new(
                            channel.clone().into(),
                            content(reply),
                        );
                        req.thread_ts = thread_ts.clone().map(Into::into);
                        web.post_message(&req).await.map(|posted| {
                            state.posted = posted.ts;
                        })
                    }
                }
            }
        }
        Destination::Message {
            channel,
            ts,
            response_url,
        } => {
            if reply.ephemeral || reply.outcome == Outcome::Stale {
                respond(web, state, response_url, false, reply, last).await
            } else {
                let req = SlackApiChatUpdateRequest::new(
                    channel.clone().into(),
                    content(reply),
                    ts.clone().into(),
                );
                match web.update(&req).await {
                    Err(e) if last => {
                        tracing::info!(
                            "editing the clicked message failed ({}); replacing it via response_url",
                            e.code()
                        );
                        respond(web, state, response_url, false, reply, last).await
                    }
                    other => other.map(drop),
                }
            }
        }
        Destination::ResponseUrl { url, slash } => {
            respond(web, state, url, *slash, reply, last).await
        }
    }
}

/// Posts `reply` to a `response_url`, keeping its last use for the final reply.
async fn respond(
    web: &WebApi,
    state: &mut Delivered,
    url: &str,
    slash: bool,
    reply: &Reply,
    last: bool,
) -> Result<(), WebApiError> {
    if !last && state.uses + 1 >= RESPONSE_URL_USES {
        tracing::debug!("progress update skipped: response_url uses exhausted");
        return Ok(());
    }
    if state.uses >= RESPONSE_URL_USES {
        tracing::warn!("final reply dropped: response_url uses exhausted");
        return Ok(());
    }
    let stale = reply.outcome == Outcome::Stale;
    let ephemeral = reply.ephemeral || stale;
    // A click's answer replaces the clicked message; a stale click leaves it
    // alone. A slash command's first answer is a new message, later ones
    // replace it.
    let replace = !ephemeral && (!slash || state.uses > 0);
    let response_type = if ephemeral {
        SlackMessageResponseType::Ephemeral
    } else {
        SlackMessageResponseType::InChannel
    };
    let body = ResponseUrlMessage {
        message: SlackApiPostWebhookMessageRequest::new(content(reply))
            .with_replace_original(replace),
        response_type: Some(response_type),
    };
    state.uses += 1;
    web.respond(url, &body).await
}
