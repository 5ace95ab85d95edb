//! What the bot does with a Slack message, click or slash command, whichever
//! transport (HTTP or Socket Mode) brought it: deduplicate, bound the work in
//! flight, run the engine in the background, deliver replies and progress.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use bot_core::slack::payload::{ButtonClick, MessageEvent, SlashCommand};
use bot_core::{Bot, Outcome, Progress, Reply, Request};
use slack_morphism::prelude::*;
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};

use crate::metrics::Metrics;
use crate::webapi::{content, ResponseUrlMessage, WebApi};

/// Uses of one `response_url` Slack allows.
const RESPONSE_URL_USES: u8 = 5;

/// What became of a delivery; transports turn it into their acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Work started in the background.
    Scheduled,
    /// Nothing to do (a bot's message, an edit, another event type).
    Ignored,
    /// The same event was already handled (a retry).
    Duplicate,
    /// Too much work in flight: refuse so Slack delivers it again later.
    Overloaded,
}

/// Shared by every transport; cheap to clone.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

struct Inner {
    bot: Bot,
    web: WebApi,
    metrics: Metrics,
    bot_user: OnceLock<String>,
    permits: Arc<Semaphore>,
    max_in_flight: usize,
}

impl Dispatcher {
    /// A dispatcher running `bot`, answering through `web`, with at most
    /// `max_in_flight` requests processed at once.
    pub fn new(bot: Bot, web: WebApi, metrics: Metrics, max_in_flight: usize) -> Self {
        let max_in_flight = max_in_flight.max(1);
        Self {
            inner: Arc::new(Inner {
                bot,
                web,
                metrics,
                bot_user: OnceLock::new(),
                permits: Arc::new(Semaphore::new(max_in_flight)),
                max_in_flight,
            }),
        }
    }

    /// The bot.
    pub fn bot(&self) -> &Bot {
        &self.inner.bot
    }

    /// The Web API client.
    pub fn web(&self) -> &WebApi {
        &self.inner.web
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The bot's own user id, once known.
    pub fn bot_user(&self) -> Option<&str> {
        self.inner.bot_user.get().map(String::as_str)
    }

    /// Records the bot's own user id (first value wins).
    pub fn set_bot_user(&self, id: String) {
        let _ = self.inner.bot_user.set(id);
    }

    /// Learns the bot's user id with `auth.test`; failures are logged only.
    pub async fn learn_bot_user(&self) {
        if self.bot_user().is_some() {
            return;
        }
        match self.inner.web.auth_test().await {
            Ok(Some(id)) => {
                tracing::info!(bot_user = %id, "learnt the bot's user id");
                self.set_bot_user(id);
            }
            Ok(None) => {
                tracing::warn!("auth.test gave no user id; relying on bot_id to skip own messages")
            }
            Err(e) => {
                tracing::warn!("auth.test failed ({e}); relying on bot_id to skip own messages")
            }
        }
    }

    /// Waits until every background task has finished, or `timeout` passes.
    pub async fn drain(&self, timeout: std::time::Duration) -> bool {
        let n = u32::try_from(self.inner.max_in_flight).unwrap_or(u32::MAX);
        tokio::time::timeout(timeout, self.inner.permits.acquire_many(n))
            .await
            .is_ok()
    }

    fn permit(&self) -> Option<OwnedSemaphorePermit> {
        match self.inner.permits.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) => {
                self.inner.metrics.shed();
                None
            }
        }
    }

    fn spawn<F>(&self, permit: OwnedSemaphorePermit, work: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let metrics = self.inner.metrics.clone();
        metrics.in_flight(1);
        tokio::spawn(async move {
            work.await;
            metrics.in_flight(-1);
            drop(permit);
        });
    }

    /// Accepts an event delivery: deduplicates on `event_id`, then answers
    /// `message` (if any) in the background.
    pub async fn accept_message(&self, event_id: &str, message: Option<MessageEvent>) -> Accepted {
        let Some(message) = message else {
            return Accepted::Ignored;
        };
        let Some(permit) = self.permit() else {
            return Accepted::Overloaded;
        };
        let bot = &self.inner.bot;
        match bot.store().first_delivery(event_id, bot.now()).await {
            Ok(true) => {}
            Ok(false) => {
                self.inner.metrics.deduplicated();
                return Accepted::Duplicate;
            }
            // Better a rare double answer than a lost one.
            Err(e) => tracing::error!(event_id, "could not record the event: {e}"),
        }
        let this = self.clone();
        self.spawn(permit, async move { this.run_message(message).await });
        Accepted::Scheduled
    }

    /// Accepts a button click and handles it in the background.
    pub fn accept_click(&self, click: ButtonClick) -> Accepted {
        let Some(permit) = self.permit() else {
            return Accepted::Overloaded;
        };
        let this = self.clone();
        self.spawn(permit, async move { this.run_click(click).await });
        Accepted::Scheduled
    }

    /// Accepts a slash command and answers it at its `response_url` in the background.
    pub fn accept_command(&self, command: SlashCommand) -> Accepted {
        let Some(permit) = self.permit() else {
            return Accepted::Overloaded;
        };
        let this = self.clone();
        self.spawn(permit, async move { this.run_command(command).await });
        Accepted::Scheduled
    }

    /// Runs the engine on a message and posts the reply (and progress) to its channel.
    pub async fn run_message(&self, m: MessageEvent) {
        let request = Request {
            channel: Some(m.channel.clone()),
            ..Request::text(m.user.clone(), m.text)
        };
        let sink = Sink::new(
            self.inner.web.clone(),
            Target::Channel {
                channel: m.channel,
                thread_ts: m.thread_ts,
                user: m.user,
            },
        );
        let reply = self.inner.bot.handle_with(request, &sink).await;
        sink.finish(&reply).await;
    }

    /// Runs the engine on a click; the reply replaces the clicked message, a stale
    /// click gets an ephemeral answer and leaves the message alone.
    pub async fn run_click(&self, c: ButtonClick) {
        let request = Request {
            channel: c.channel.clone(),
            ..Request::button(c.user, c.value)
        };
        let sink = Sink::new(
            self.inner.web.clone(),
            Target::ResponseUrl {
                url: c.response_url,
                slash: false,
            },
        );
        let reply = self.inner.bot.handle_with(request, &sink).await;
        sink.finish(&reply).await;
    }

    /// Runs the engine on a slash command and answers in the channel via `response_url`.
    pub async fn run_command(&self, c: SlashCommand) {
        let request = Request {
            channel: Some(c.channel),
            ..Request::text(c.user, c.text)
        };
        let sink = Sink::new(
            self.inner.web.clone(),
            Target::ResponseUrl {
                url: c.response_url,
                slash: true,
            },
        );
        let reply = self.inner.bot.handle_with(request, &sink).await;
        sink.finish(&reply).await;
    }
}

/// Where replies to one request go.
#[derive(Debug, Clone)]
pub enum Target {
    /// A conversation: `chat.postMessage`, then `chat.update` of that message.
    Channel {
        /// Channel id.
        channel: String,
        /// Thread to post in.
        thread_ts: Option<String>,
        /// Requester, for ephemeral answers in shared channels.
        user: String,
    },
    /// A `response_url` (button click or slash command).
    ResponseUrl {
        /// The URL.
        url: String,
        /// `true` for a slash command (first answer is a new message), `false` for a
        /// click (answers replace the clicked message).
        slash: bool,
    },
}

#[derive(Default)]
struct SinkState {
    /// `ts` of the message posted for this request, to update in place.
    posted: Option<String>,
    /// `response_url` uses so far.
    uses: u8,
}

/// Delivers progress updates and the final reply of one request: the first
/// update is posted, later ones and the final reply edit that same message
/// (`chat.update`, or `replace_original` on a `response_url`, keeping one of its
/// five uses for the final reply).
pub struct Sink {
    web: WebApi,
    target: Target,
    state: Mutex<SinkState>,
}

#[async_trait]
impl Progress for Sink {
    async fn update(&self, reply: &Reply) {
        self.deliver(reply, false).await;
    }
}

impl Sink {
    /// A sink delivering to `target` through `web`.
    pub fn new(web: WebApi, target: Target) -> Self {
        Self {
            web,
            target,
            state: Mutex::new(SinkState::default()),
        }
    }

    /// Delivers the final reply.
    pub async fn finish(&self, reply: &Reply) {
        self.deliver(reply, true).await;
    }

    async fn deliver(&self, reply: &Reply, last: bool) {
        let mut state = self.state.lock().await;
        match &self.target {
            Target::Channel {
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
                    let _ = self.web.post_ephemeral(&req).await;
                    return;
                }
                match &state.posted {
                    Some(ts) => {
                        let req = SlackApiChatUpdateRequest::new(
                            channel.clone().into(),
                            content(reply),
                            ts.clone().into(),
                        );
                        let _ = self.web.update(&req).await;
                    }
                    None => {
                        let mut req = SlackApiChatPostMessageRequest::new(
                            channel.clone().into(),
                            content(reply),
                        );
                        req.thread_ts = thread_ts.clone().map(Into::into);
                        if let Ok(posted) = self.web.post_message(&req).await {
                            state.posted = posted.ts;
                        }
                    }
                }
            }
            Target::ResponseUrl { url, slash } => {
                // Keep the last use for the final reply; drop surplus progress updates.
                if !last && state.uses + 1 >= RESPONSE_URL_USES {
                    tracing::debug!("progress update skipped: response_url uses exhausted");
                    return;
                }
                if state.uses >= RESPONSE_URL_USES {
                    tracing::warn!("final reply dropped: response_url uses exhausted");
                    return;
                }
                let stale = reply.outcome == Outcome::Stale;
                let ephemeral = reply.ephemeral || stale;
                // A click's answer replaces the clicked message; a stale click leaves it
                // alone. A slash command's first answer is a new message, later ones
                // replace it.
                let replace = !ephemeral && (!*slash || state.uses > 0);
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
                let _ = self.web.respond(url, &body).await;
            }
        }
    }
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
