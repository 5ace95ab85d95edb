//! What the bot does with a Slack message, click or slash command, whichever
//! transport (HTTP or Socket Mode) brought it: deduplicate, bound the work in
//! flight, run the engine in the background, deliver replies and progress.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use bot_core::slack::payload::{ButtonClick, MessageEvent, SlashCommand};
use bot_core::{Bot, Outcome, Progress, Reply, Request};
use slack_morphism::prelude::*;
use tokio::sync::{watch, Mutex, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::metrics::Metrics;
use crate::webapi::{content, ResponseUrlMessage, WebApi, WebApiError};

/// Uses of one `response_url` Slack allows.
const RESPONSE_URL_USES: u8 = 5;

/// Default shortest gap between two progress edits of one message (Slack's
/// `chat.update` is Tier 3, about 50 calls a minute per workspace).
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(2);

/// Told to whoever Socket Mode could not serve because too much is in flight.
pub const BUSY_TEXT: &str = "I'm busy right now, please try again in a minute.";

/// Told to whoever Socket Mode could not serve because the bot is shutting down.
pub const RESTARTING_TEXT: &str = "I'm restarting right now, please try again in a minute.";

/// What became of a delivery; transports turn it into their acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Work started in the background.
    Scheduled,
    /// Nothing to do (a bot's message, an edit, another event type).
    Ignored,
    /// The same event was already handled (a retry, a replayed request).
    Duplicate,
    /// Too much work in flight: refuse so Slack delivers it again later.
    Overloaded,
    /// The server is shutting down and takes no new work.
    ShuttingDown,
}

impl Accepted {
    /// `true` when the work was refused (overload or shutdown).
    pub fn refused(self) -> bool {
        matches!(self, Accepted::Overloaded | Accepted::ShuttingDown)
    }
}

/// One background task still running, for shutdown logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    /// What it is doing, e.g. ``message from U1 in D1: `deploy staging` ``.
    pub what: String,
    /// How long it has been running.
    pub running_for: Duration,
}

/// Shared by every transport; cheap to clone.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
    progress_interval: Duration,
}

struct Inner {
    bot: Bot,
    web: WebApi,
    metrics: Metrics,
    bot_user: OnceLock<String>,
    permits: Arc<Semaphore>,
    accepting: AtomicBool,
    tasks: std::sync::Mutex<Tasks>,
    /// Number of tracked tasks, for [`Dispatcher::drain`].
    running: watch::Sender<usize>,
}

#[derive(Default)]
struct Tasks {
    next: u64,
    running: BTreeMap<u64, (String, Instant)>,
}

/// Removes a task from the table when it ends (normally, by panic or by abort).
struct TaskGuard {
    inner: Arc<Inner>,
    id: u64,
    permit: Option<OwnedSemaphorePermit>,
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if self.permit.take().is_some() {
            self.inner.metrics.in_flight(-1);
        }
        let left = match self.inner.tasks.lock() {
            Ok(mut t) => {
                t.running.remove(&self.id);
                t.running.len()
            }
            Err(poisoned) => {
                let mut t = poisoned.into_inner();
                t.running.remove(&self.id);
                t.running.len()
            }
        };
        self.inner.running.send_replace(left);
    }
}

/// At most this many characters of user text in task descriptions.
const DESCRIBE_CHARS: usize = 80;

fn excerpt(text: &str) -> String {
    let mut s: String = text.chars().take(DESCRIBE_CHARS).collect();
    if text.chars().count() > DESCRIBE_CHARS {
        s.push('…');
    }
    s.replace('`', "'")
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
                accepting: AtomicBool::new(true),
                tasks: std::sync::Mutex::new(Tasks::default()),
                running: watch::Sender::new(0),
            }),
            progress_interval: PROGRESS_INTERVAL,
        }
    }

    /// Progress edits of one message at most every `every` (default
    /// [`PROGRESS_INTERVAL`]); applies to this handle and clones made from it.
    pub fn with_progress_interval(mut self, every: Duration) -> Self {
        self.progress_interval = every;
        self
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

    /// Refuses new work from now on (shutdown): deliveries get
    /// [`Accepted::ShuttingDown`]; work already running goes on.
    pub fn stop_accepting(&self) {
        self.inner.accepting.store(false, Ordering::SeqCst);
    }

    /// Whether new work is taken.
    pub fn is_accepting(&self) -> bool {
        self.inner.accepting.load(Ordering::SeqCst)
    }

    /// The background tasks running now, oldest first.
    pub fn in_flight(&self) -> Vec<InFlight> {
        let now = Instant::now();
        let tasks = match self.inner.tasks.lock() {
            Ok(t) => t,
            Err(poisoned) => poisoned.into_inner(),
        };
        tasks
            .running
            .values()
            .map(|(what, since)| InFlight {
                what: what.clone(),
                running_for: now.saturating_duration_since(*since),
            })
            .collect()
    }

    /// Waits until every background task has finished, or `timeout` passes;
    /// `true` when none is left.
    pub async fn drain(&self, timeout: Duration) -> bool {
        let mut running = self.inner.running.subscribe();
        let idle = tokio::time::timeout(timeout, async {
            running.wait_for(|n| *n == 0).await.is_ok()
        })
        .await;
        idle == Ok(true)
    }

    /// A permit for one more request, or why not.
    fn permit(&self) -> Result<OwnedSemaphorePermit, Accepted> {
        if !self.is_accepting() {
            return Err(Accepted::ShuttingDown);
        }
        self.inner.permits.clone().try_acquire_owned().map_err(|_| {
            self.inner.metrics.shed();
            Accepted::Overloaded
        })
    }

    /// Runs `work` in the background, tracked until it ends (see [`Self::drain`]).
    fn spawn<F>(&self, what: String, permit: Option<OwnedSemaphorePermit>, work: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let id = {
            let mut tasks = match self.inner.tasks.lock() {
                Ok(t) => t,
                Err(poisoned) => poisoned.into_inner(),
            };
            tasks.next += 1;
            let id = tasks.next;
            tasks.running.insert(id, (what, Instant::now()));
            self.inner.running.send_replace(tasks.running.len());
            id
        };
        if permit.is_some() {
            self.inner.metrics.in_flight(1);
        }
        let guard = TaskGuard {
            inner: self.inner.clone(),
            id,
            permit,
        };
        tokio::spawn(async move {
            let _guard = guard;
            work.await;
        });
    }

    /// Accepts an event delivery: deduplicates on `event_id`, then answers
    /// `message` (if any) in the background.
    pub async fn accept_message(&self, event_id: &str, message: Option<MessageEvent>) -> Accepted {
        let Some(message) = message else {
            return Accepted::Ignored;
        };
        let permit = match self.permit() {
            Ok(p) => p,
            Err(refused) => return refused,
        };
        if !self.first_delivery(event_id).await {
            return Accepted::Duplicate;
        }
        let what = format!(
            "message from {} in {}: `{}`",
            message.user,
            message.channel,
            excerpt(&message.text)
        );
        let this = self.clone();
        self.spawn(what, Some(permit), async move {
            this.run_message(message).await
        });
        Accepted::Scheduled
    }

    /// Accepts a button click and handles it in the background.
    pub fn accept_click(&self, click: ButtonClick) -> Accepted {
        let permit = match self.permit() {
            Ok(p) => p,
            Err(refused) => return refused,
        };
        let what = format!(
            "click by {} in {}",
            click.user,
            click.channel.as_deref().unwrap_or("?")
        );
        let this = self.clone();
        self.spawn(
            what,
            Some(permit),
            async move { this.run_click(click).await },
        );
        Accepted::Scheduled
    }

    /// Accepts a slash command: deduplicates on its `trigger_id` (a replayed
    /// request is answered once), then answers at its `response_url` in the background.
    pub async fn accept_command(&self, command: SlashCommand) -> Accepted {
        let permit = match self.permit() {
            Ok(p) => p,
            Err(refused) => return refused,
        };
        if let Some(trigger) = &command.trigger_id {
            if !self.first_delivery(&format!("slash:{trigger}")).await {
                return Accepted::Duplicate;
            }
        }
        let what = format!(
            "{} `{}` by {} in {}",
            command.command,
            excerpt(&command.text),
            command.user,
            command.channel
        );
        let this = self.clone();
        self.spawn(what, Some(permit), async move {
            this.run_command(command).await
        });
        Accepted::Scheduled
    }

    /// `false` when `key` was seen before (counted as deduplicated).
    async fn first_delivery(&self, key: &str) -> bool {
        let bot = &self.inner.bot;
        match bot.store().first_delivery(key, bot.now()).await {
            Ok(true) => true,
            Ok(false) => {
                self.inner.metrics.deduplicated();
                false
            }
            // Better a rare double answer than a lost one.
            Err(e) => {
                tracing::error!(key, "could not record the delivery: {e}");
                true
            }
        }
    }

    /// Tells the sender of a message that could not be taken (`why`) to try
    /// again, in the background: for Socket Mode, where Slack does not redeliver.
    pub fn refuse_message(&self, m: MessageEvent, why: Accepted) {
        let reply = refusal(why);
        let sink = Sink::new(
            self.inner.web.clone(),
            Target::Channel {
                channel: m.channel,
                thread_ts: m.thread_ts,
                user: m.user,
            },
        );
        self.spawn("telling a sender to retry".into(), None, async move {
            sink.finish(&reply).await
        });
    }

    /// Tells who clicked that the click could not be taken (`why`), ephemerally,
    /// leaving the message and its buttons as they are.
    pub fn refuse_click(&self, c: ButtonClick, why: Accepted) {
        let reply = refusal(why);
        let sink = Sink::new(
            self.inner.web.clone(),
            Target::ResponseUrl {
                url: c.response_url,
                slash: false,
            },
        );
        self.spawn("telling a clicker to retry".into(), None, async move {
            sink.finish(&reply).await
        });
    }

    /// A sink for `target` with this dispatcher's progress interval.
    fn sink(&self, target: Target) -> Sink {
        Sink::with_interval(self.inner.web.clone(), target, self.progress_interval)
    }

    /// Runs the engine on a message and posts the reply (and progress) to its channel.
    pub async fn run_message(&self, m: MessageEvent) {
        let request = Request {
            channel: Some(m.channel.clone()),
            ..Request::text(m.user.clone(), m.text)
        };
        let sink = self.sink(Target::Channel {
            channel: m.channel,
            thread_ts: m.thread_ts,
            user: m.user,
        });
        let reply = self.inner.bot.handle_with(request, &sink).await;
        sink.finish(&reply).await;
    }

    /// Runs the engine on a click: progress and the reply edit the clicked message
    /// (`chat.update`), or replace it through `response_url` when it cannot be
    /// edited; a stale click gets an ephemeral answer and leaves the message alone.
    pub async fn run_click(&self, c: ButtonClick) {
        let request = Request {
            channel: c.channel.clone(),
            ..Request::button(c.user, c.value)
        };
        let target = match (c.channel, c.message_ts) {
            (Some(channel), Some(ts)) => Target::Message {
                channel,
                ts,
                response_url: c.response_url,
            },
            _ => Target::ResponseUrl {
                url: c.response_url,
                slash: false,
            },
        };
        let sink = self.sink(target);
        let reply = self.inner.bot.handle_with(request, &sink).await;
        sink.finish(&reply).await;
    }

    /// Runs the engine on a slash command and answers in the channel via `response_url`.
    pub async fn run_command(&self, c: SlashCommand) {
        let request = Request {
            channel: Some(c.channel),
            ..Request::text(c.user, c.text)
        };
        let sink = self.sink(Target::ResponseUrl {
            url: c.response_url,
            slash: true,
        });
        let reply = self.inner.bot.handle_with(request, &sink).await;
        sink.finish(&reply).await;
    }
}

/// The ephemeral "try again" answer to refused work.
fn refusal(why: Accepted) -> Reply {
    let text = match why {
        Accepted::ShuttingDown => RESTARTING_TEXT,
        _ => BUSY_TEXT,
    };
    Reply::message(Outcome::Rejected, text).ephemeral()
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
    target: Target,
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
impl Progress for Sink {
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
}

impl Sink {
    /// A sink delivering to `target` through `web`, progress at most every
    /// [`PROGRESS_INTERVAL`].
    pub fn new(web: WebApi, target: Target) -> Self {
        Self::with_interval(web, target, PROGRESS_INTERVAL)
    }

    /// A sink delivering to `target` through `web`, progress at most every `interval`.
    pub fn with_interval(web: WebApi, target: Target, interval: Duration) -> Self {
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

    /// Delivers the final reply (after any progress edit under way) and returns
    /// once it is delivered or has failed.
    pub async fn finish(&self, reply: &Reply) {
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
            Target::ResponseUrl { .. } => {
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
            Target::Message {
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
            Target::ResponseUrl { url, slash } => {
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
