//! Delivery of one request's answers to Slack: the first message posted, progress
//! edits coalesced and rate-limited, the final reply last; clicks edit the clicked
//! message; a `response_url` keeps its last use for the reply.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bot_core::{Outcome, Reply};
use slack_morphism::prelude::*;
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::chat::ReplySink;
use crate::config::PROGRESS_INTERVAL;
use crate::slack::webapi::{content, ResponseUrlMessage, WebApi, WebApiError};

/// Uses of one `response_url` Slack allows.
const RESPONSE_URL_USES: u8 = 5;

/// Where replies to one request go.
#[derive(Debug, Clone)]
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

/// The newest undelivered state of one request.
#[derive(Clone)]
enum Pending {
    Nothing,
    Progress(Reply),
    Final(Reply),
}

/// Whether the flushing task runs.
enum Flusher {
    Idle,
    Running(JoinHandle<()>),
    Finished,
}

#[derive(Default)]
struct SinkState {
    /// `ts` of the message posted for this request, to update in place.
    posted: Option<String>,
    /// `response_url` uses so far.
    uses: u8,
}

/// Delivers one request's messages; used by one flushing task at a time.
struct Outbox {
    web: WebApi,
    /// `web` making a single attempt: progress is best effort and never waits
    /// out a `Retry-After` (the next flush carries newer state anyway).
    web_once: WebApi,
    target: Destination,
    state: Mutex<SinkState>,
}

/// Delivers progress updates and the final reply of one request.
///
/// [`Progress::update`] never waits on Slack: it stores the newest state, and a
/// separate task flushes it at most every interval (the first update at once),
/// always sending the newest state and skipping the ones in between. The first
/// update is posted, later ones and the final reply edit that same message
/// (`chat.update`, or `replace_original` on a `response_url`). [`Sink::finish`]
/// delivers the final reply last, after any progress edit in flight, and no
/// progress edit follows it. On a `response_url` at most four uses go to
/// progress (spaced further apart each time) and the fifth is kept for the reply.
pub struct Sink {
    out: Arc<Outbox>,
    pending: watch::Sender<Pending>,
    interval: Duration,
    flusher: std::sync::Mutex<Flusher>,
}

#[async_trait]
impl ReplySink for Sink {
    async fn update(&self, reply: &Reply) {
        if !self.start_flusher() {
            return;
        }
        self.pending.send_if_modified(|p| match p {
            Pending::Final(_) => false,
            _ => {
                *p = Pending::Progress(reply.clone());
                true
            }
        });
    }

    /// Delivers the final reply (after any progress edit under way) and returns
    /// once it is delivered or has failed.
    async fn finish(&self, reply: &Reply) {
        let previous = {
            let mut f = match self.flusher.lock() {
                Ok(f) => f,
                Err(poisoned) => poisoned.into_inner(),
            };
            std::mem::replace(&mut *f, Flusher::Finished)
        };
        match previous {
            Flusher::Running(task) => {
                self.pending.send_replace(Pending::Final(reply.clone()));
                if let Err(e) = task.await {
                    tracing::error!("progress task failed ({e}); delivering the reply directly");
                    self.out.deliver(reply, true).await;
                }
            }
            Flusher::Idle => {
                self.out.deliver(reply, true).await;
            }
            Flusher::Finished => tracing::warn!("a second final reply was dropped"),
        }
    }
}

impl Sink {
    /// A sink delivering to `target` through `web`, progress at most every
    /// [`PROGRESS_INTERVAL`].
    pub fn new(web: WebApi, target: Destination) -> Self {
        Self::with_interval(web, target, PROGRESS_INTERVAL)
    }

    /// A sink delivering to `target` through `web`, progress at most every `interval`.
    pub fn with_interval(web: WebApi, target: Destination, interval: Duration) -> Self {
        Self {
            out: Arc::new(Outbox {
                web_once: web.single_attempt(),
                web,
                target,
                state: Mutex::new(SinkState::default()),
            }),
            pending: watch::Sender::new(Pending::Nothing),
            interval,
            flusher: std::sync::Mutex::new(Flusher::Idle),
        }
    }

    /// Starts the flushing task if it is not running; `false` once finished.
    fn start_flusher(&self) -> bool {
        let mut f = match self.flusher.lock() {
            Ok(f) => f,
            Err(poisoned) => poisoned.into_inner(),
        };
        match *f {
            Flusher::Running(_) => true,
            Flusher::Finished => false,
            Flusher::Idle => {
                // Subscribed before the first update is stored, so it sees it.
                let rx = self.pending.subscribe();
                *f = Flusher::Running(tokio::spawn(flush(self.out.clone(), rx, self.interval)));
                true
            }
        }
    }
}

/// The flushing task: newest progress at most every `interval`, then the final reply.
async fn flush(out: Arc<Outbox>, mut rx: watch::Receiver<Pending>, interval: Duration) {
    let mut next = Instant::now();
    loop {
        if rx.changed().await.is_err() {
            return; // the sink went away without a final reply
        }
        // Hold progress back until `next`; a final reply goes at once.
        while !matches!(*rx.borrow(), Pending::Final(_)) && Instant::now() < next {
            tokio::select! {
                _ = tokio::time::sleep_until(next) => break,
                changed = rx.changed() => if changed.is_err() { return },
            }
        }
        let pending = rx.borrow_and_update().clone();
        match pending {
            Pending::Nothing => {}
            Pending::Progress(reply) => {
                let pause = out.deliver(&reply, false).await;
                next = Instant::now() + out.gap(interval).await.max(pause);
            }
            Pending::Final(reply) => {
                out.deliver(&reply, true).await;
                return;
            }
        }
    }
}

impl Outbox {
    /// Shortest wait before the next progress delivery: `interval`, and on a
    /// `response_url` five times longer after each use (2 s, 10 s, 50 s, 250 s
    /// by default), so its four progress uses spread over a long action.
    async fn gap(&self, interval: Duration) -> Duration {
        match &self.target {
            Destination::ResponseUrl { .. } => {
                let uses = u32::from(self.state.lock().await.uses);
                interval.saturating_mul(5u32.saturating_pow(uses.saturating_sub(1)))
            }
            _ => interval,
        }
    }

    /// Delivers `reply` (`last`: the final reply, else progress). Returns how long
    /// Slack asked to be left alone when it rate limited a progress update.
    async fn deliver(&self, reply: &Reply, last: bool) -> Duration {
        // Progress is best effort: one attempt, a 429 is not waited out.
        let web = if last { &self.web } else { &self.web_once };
        let mut state = self.state.lock().await;
        let result = match &self.target {
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
                    respond(web, &mut state, response_url, false, reply, last).await
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
                            respond(web, &mut state, response_url, false, reply, last).await
                        }
                        other => other.map(drop),
                    }
                }
            }
            Destination::ResponseUrl { url, slash } => {
                respond(web, &mut state, url, *slash, reply, last).await
            }
        };
        match result {
            Err(WebApiError::RateLimited { retry_after, .. }) if !last => retry_after,
            _ => Duration::ZERO,
        }
    }
}

/// Posts `reply` to a `response_url`, keeping its last use for the final reply.
async fn respond(
    web: &WebApi,
    state: &mut SinkState,
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
