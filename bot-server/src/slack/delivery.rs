//! Sending one version of a request's answer to Slack, wherever it goes: a new message
//! then `chat.update` of it, the clicked message, or a `response_url` that keeps its
//! last use for the final reply. Pure of storage: the courier keeps the state.

use std::time::Duration;

use bot_core::{Outcome, Reply};
use serde::{Deserialize, Serialize};
use slack_morphism::prelude::*;

use crate::slack::files;
use crate::slack::webapi::{content, ResponseUrlMessage, WebApi, WebApiError};
pub use crate::slack::webapi::{REPLY_EVENT, REPLY_KEY};

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
        /// The conversation, when known: charts are shared there (a `response_url`
        /// cannot carry files).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
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
/// `response_url` uses). A final reply's charts are uploaded as PNG files into the
/// conversation (see [`send_charts`]). A message posted anew carries `tag` (the outbox
/// id) in its metadata, so [`recover`] can find it after an attempt that left no record.
pub async fn send(
    web: &WebApi,
    dest: &Destination,
    state: &mut Delivered,
    reply: &Reply,
    last: bool,
    tag: Option<&str>,
) -> Result<(), WebApiError> {
    if last && reply.charts().next().is_some() {
        return send_charts(web, dest, state, reply, tag).await;
    }
    send_message(web, dest, state, reply, last, tag).await
}

/// Before sending a message in doubt (an earlier attempt may have posted it without a
/// record of its `ts`): finds the post tagged `tag` in the conversation and carries on
/// from it, so the next version edits that post instead of posting a second answer.
/// Only a conversation post needs this: edits and `response_url` answers replace what
/// they touch. When Slack will not show the history (a scope the app lacks), the reply
/// is posted again, and the log says why.
pub async fn recover(
    web: &WebApi,
    dest: &Destination,
    state: &mut Delivered,
    tag: &str,
) -> Result<(), WebApiError> {
    let Destination::Channel {
        channel, thread_ts, ..
    } = dest
    else {
        return Ok(());
    };
    if state.posted.is_some() {
        return Ok(());
    }
    match web.find_tagged(channel, thread_ts.as_deref(), tag).await {
        Ok(Some(ts)) => {
            tracing::info!(message = %tag, "an earlier attempt had posted this reply; editing it");
            state.posted = Some(ts);
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(WebApiError::Slack { error, .. }) => {
            // `missing_scope` (the app lacks `im:history` or `channels:history`),
            // `thread_not_found`, …: nothing to find; the reply goes out once more.
            tracing::warn!(message = %tag, error = %error, "could not look for an earlier post of a reply in doubt; posting it");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// The metadata that tags a post with its outbox id.
fn tagged(mut content: SlackMessageContent, tag: Option<&str>) -> SlackMessageContent {
    if let Some(tag) = tag {
        content.metadata = Some(SlackMessageMetadata {
            event_type: REPLY_EVENT.to_owned(),
            event_payload: Some([(REPLY_KEY.to_owned(), tag.to_owned())].into()),
        });
    }
    content
}

/// A final reply with charts: the charts are rendered as PNG files and shared in the
/// conversation with the reply's text as their comment (in a DM or channel), or
/// after the text (which edits the clicked message, or goes to the `response_url`).
/// The upload comes last, so a retry after a transient failure repeats only edits.
/// When Slack refuses the files for good, the text goes out saying why.
async fn send_charts(
    web: &WebApi,
    dest: &Destination,
    state: &mut Delivered,
    reply: &Reply,
    tag: Option<&str>,
) -> Result<(), WebApiError> {
    let text = reply.without_charts();
    let files = match files::chart_files(reply).await {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "a chart could not be rendered");
            let note = text.context(format!("The chart could not be drawn: {e}."));
            return send_message(web, dest, state, &note, true, tag).await;
        }
    };
    let (channel, thread, comment) = match dest {
        Destination::Channel {
            channel, thread_ts, ..
        } => {
            if state.posted.is_some() {
                // A progress message stands: it becomes the summary; the chart follows.
                send_message(web, dest, state, &text, true, tag).await?;
                (channel, thread_ts, None)
            } else {
                (channel, thread_ts, Some(text.to_plain_text()))
            }
        }
        Destination::Message { channel, .. } => {
            send_message(web, dest, state, &text, true, tag).await?;
            (channel, &None, None)
        }
        Destination::ResponseUrl {
            channel: Some(channel),
            ..
        } => {
            send_message(web, dest, state, &text, true, tag).await?;
            (channel, &None, None)
        }
        Destination::ResponseUrl { channel: None, .. } => {
            let note = text.context(
                "I cannot post a chart here: Slack did not say which conversation this is.",
            );
            return send_message(web, dest, state, &note, true, tag).await;
        }
    };
    match files::share(web, &files, channel, thread.as_deref(), comment).await {
        Ok(_) => Ok(()),
        Err(e) if files::transient(&e) => Err(e),
        Err(e) => {
            tracing::warn!(error = %e.code(), "a chart could not be shared");
            let note = text.context(files::not_shared(&e));
            send_message(web, dest, state, &note, true, tag).await
        }
    }
}

/// Sends `reply` as a message (no files) along `dest`.
async fn send_message(
    web: &WebApi,
    dest: &Destination,
    state: &mut Delivered,
    reply: &Reply,
    last: bool,
    tag: Option<&str>,
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
                            tagged(content(reply), tag),
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
        Destination::ResponseUrl { url, slash, .. } => {
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
