//! The Slack transport: a message, click or slash command becomes a [`Request`] and a
//! [`Sink`] aimed at the right place (the channel, the clicked message, the
//! `response_url`), handed to the [`Intake`]. Routes, Socket Mode, delivery and the
//! Web API client live in the submodules.

pub mod ack;
pub mod courier;
pub mod delivery;
pub mod files;
pub mod people;
pub mod routes;
pub mod socket_mode;
pub mod webapi;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bot_core::slack::payload::{ButtonClick, MessageEvent, SlashCommand};
use bot_core::{Bot, Request};

use crate::config::PROGRESS_INTERVAL;
use crate::intake::{excerpt, Accepted, Delivery, Intake, ReplyTo};
use crate::metrics::Metrics;
use ack::refusal;
use courier::{send_once, Courier, TRANSPORT};
use delivery::Destination;
use webapi::WebApi;

/// Slack's side of the bot; cheap to clone.
#[derive(Clone)]
pub struct Slack {
    intake: Intake,
    web: WebApi,
    bot_user: Arc<OnceLock<String>>,
    progress_interval: Duration,
    attempts: u32,
    /// `SLACK_TEAM_ID`: the workspaces served (empty: all).
    teams: Arc<Vec<String>>,
    /// `CROSSROADS_CHAT_RATE_LIMIT`, per user.
    chat: Option<Arc<crate::rate_limit::ChatRateLimit>>,
}

impl Slack {
    /// Slack answered through `web`, work admitted by `intake`.
    pub fn new(intake: Intake, web: WebApi) -> Self {
        Self {
            intake,
            web,
            bot_user: Arc::new(OnceLock::new()),
            progress_interval: PROGRESS_INTERVAL,
            attempts: courier::MAX_ATTEMPTS,
            teams: Arc::new(Vec::new()),
            chat: None,
        }
    }

    /// Serves only the workspaces `teams` (`SLACK_TEAM_ID`; empty: every one):
    /// deliveries naming another are acknowledged and ignored.
    pub fn with_teams(mut self, teams: Vec<String>) -> Self {
        self.teams = Arc::new(teams);
        self
    }

    /// Limits each user to `rate` messages, commands and clicks (`None`: no limit).
    pub fn with_chat_rate(mut self, rate: Option<crate::rate_limit::Rate>) -> Self {
        self.chat = rate.map(|r| Arc::new(crate::rate_limit::ChatRateLimit::new(r)));
        self
    }

    /// Whether a delivery from `user`, naming `teams`, is turned away before it
    /// runs: from a workspace not served (ignored, logged, counted), or over the
    /// user's chat limit (told once along `dest`, then ignored until it refills).
    fn turned_away(&self, teams: &[String], user: &str, dest: Option<Destination>) -> bool {
        if bot_core::slack::payload::foreign(teams, &self.teams) {
            tracing::info!(user, teams = ?teams, "a delivery from a workspace not served (SLACK_TEAM_ID); ignored");
            self.metrics().foreign();
            return true;
        }
        let Some(chat) = &self.chat else {
            return false;
        };
        match chat.take(user) {
            crate::rate_limit::ChatTurn::Go => false,
            crate::rate_limit::ChatTurn::Quiet => {
                self.metrics().rate_limited();
                true
            }
            crate::rate_limit::ChatTurn::SlowDown => {
                self.metrics().rate_limited();
                tracing::info!(user, "a user is over the chat rate limit");
                if let Some(dest) = dest {
                    let web = self.web.clone();
                    let reply = bot_core::Reply::message(
                        bot_core::Outcome::Rejected,
                        format!(
                            "<@{user}>, slow down: that is more than I take from one person in a while. I'll run what you ask again once a little time has passed."
                        ),
                    )
                    .ephemeral();
                    self.intake
                        .spawn_answer("telling a user to slow down".into(), async move {
                            send_once(&web, &dest, &reply).await
                        });
                }
                true
            }
        }
    }

    /// Attempts to deliver one message before the outbox gives it up (default
    /// [`courier::MAX_ATTEMPTS`]).
    pub fn with_delivery_attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// Progress edits of one message at most every `every` (default
    /// [`PROGRESS_INTERVAL`]).
    pub fn with_progress_interval(mut self, every: Duration) -> Self {
        self.progress_interval = every;
        self
    }

    /// The intake.
    pub fn intake(&self) -> &Intake {
        &self.intake
    }

    /// The bot.
    pub fn bot(&self) -> &Bot {
        self.intake.bot()
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        self.intake.metrics()
    }

    /// The Web API client.
    pub fn web(&self) -> &WebApi {
        &self.web
    }

    /// The bot's own user id, once known.
    pub fn bot_user(&self) -> Option<&str> {
        self.bot_user.get().map(String::as_str)
    }

    /// Records the bot's own user id (first value wins).
    pub fn set_bot_user(&self, id: String) {
        let _ = self.bot_user.set(id);
    }

    /// Learns the bot's user id with `auth.test`; failures are logged only.
    pub async fn learn_bot_user(&self) {
        if self.bot_user().is_some() {
            return;
        }
        match self.web.auth_test().await {
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

    /// The courier delivering this transport's outbox messages.
    pub fn courier(&self) -> Courier {
        Courier::new(&self.intake, self.web.clone(), self.progress_interval)
            .with_attempts(self.attempts)
    }

    /// Hands a delivery answered along `dest` to the intake.
    async fn submit(
        &self,
        key: Option<String>,
        request: Request,
        dest: Destination,
        what: String,
    ) -> Accepted {
        let route = match serde_json::to_value(&dest) {
            Ok(route) => route,
            Err(_) => return Accepted::Ignored,
        };
        self.intake
            .submit(Delivery {
                key,
                request,
                reply_to: ReplyTo::Outbox {
                    transport: TRANSPORT.to_owned(),
                    route,
                },
                what,
            })
            .await
    }

    /// An event delivery: deduplicated on `event_id`; the message (if any) is
    /// answered in its channel (in its thread when it has one).
    pub async fn accept_message(&self, event_id: &str, message: Option<MessageEvent>) -> Accepted {
        let Some(m) = message else {
            return Accepted::Ignored;
        };
        let told = Destination::Channel {
            channel: m.channel.clone(),
            thread_ts: m.thread_ts.clone(),
            user: m.user.clone(),
        };
        if self.turned_away(&m.teams, &m.user, Some(told)) {
            return Accepted::Ignored;
        }
        let what = format!(
            "message from {} in {}: `{}`",
            m.user,
            m.channel,
            excerpt(&m.text)
        );
        let request = Request {
            channel: Some(m.channel.clone()),
            ..Request::text(m.user.clone(), m.text)
        };
        let dest = Destination::Channel {
            channel: m.channel,
            thread_ts: m.thread_ts,
            user: m.user,
        };
        self.submit(Some(event_id.to_owned()), request, dest, what)
            .await
    }

    /// A click: a redelivered interaction is answered once; progress and the reply
    /// edit the clicked message (`chat.update`), or replace it through
    /// `response_url` when it cannot be edited; a stale click gets an ephemeral
    /// answer and leaves the message alone.
    pub async fn accept_click(&self, c: ButtonClick) -> Accepted {
        let told = Destination::ResponseUrl {
            url: c.response_url.clone(),
            slash: false,
            channel: None,
        };
        if self.turned_away(&c.teams, &c.user, Some(told)) {
            return Accepted::Ignored;
        }
        let what = format!(
            "click by {} in {}",
            c.user,
            c.channel.as_deref().unwrap_or("?")
        );
        // The button (message and action), who clicked, and Slack's id for this
        // click: a redelivery repeats all four; clicking again after a refusal does not.
        let key = format!(
            "click:{}:{}:{}:{}:{}",
            c.channel.as_deref().unwrap_or("-"),
            c.message_ts.as_deref().unwrap_or("-"),
            c.action_id,
            c.user,
            c.trigger_id.as_deref().unwrap_or("-")
        );
        let request = Request {
            channel: c.channel.clone(),
            ..Request::button(c.user, c.value)
        };
        let target = match (c.channel, c.message_ts) {
            (Some(channel), Some(ts)) => Destination::Message {
                channel,
                ts,
                response_url: c.response_url,
            },
            (channel, _) => Destination::ResponseUrl {
                url: c.response_url,
                slash: false,
                channel,
            },
        };
        self.submit(Some(key), request, target, what).await
    }

    /// A slash command: deduplicated on its `trigger_id` (a replayed request is
    /// answered once), answered at its `response_url`.
    pub async fn accept_command(&self, c: SlashCommand) -> Accepted {
        let told = Destination::ResponseUrl {
            url: c.response_url.clone(),
            slash: true,
            channel: Some(c.channel.clone()),
        };
        if self.turned_away(&c.teams, &c.user, Some(told)) {
            return Accepted::Ignored;
        }
        let what = format!(
            "{} `{}` by {} in {}",
            c.command,
            excerpt(&c.text),
            c.user,
            c.channel
        );
        let request = Request {
            channel: Some(c.channel.clone()),
            ..Request::text(c.user, c.text)
        };
        let dest = Destination::ResponseUrl {
            url: c.response_url,
            slash: true,
            channel: Some(c.channel),
        };
        // A command without a trigger_id is keyed on what identifies it best.
        let key = c
            .trigger_id
            .map(|t| format!("slash:{t}"))
            .unwrap_or_else(|| format!("slash:{}", uuid::Uuid::new_v4().simple()));
        self.submit(Some(key), request, dest, what).await
    }

    /// Tells the sender of a message that could not be taken (`why`) to try again,
    /// in the background: for Socket Mode, where Slack does not redeliver.
    pub fn refuse_message(&self, m: MessageEvent, why: Accepted) {
        let dest = Destination::Channel {
            channel: m.channel,
            thread_ts: m.thread_ts,
            user: m.user,
        };
        let web = self.web.clone();
        self.intake
            .spawn_answer("telling a sender to retry".into(), async move {
                send_once(&web, &dest, &refusal(why)).await
            });
    }

    /// Tells who clicked that the click could not be taken (`why`), ephemerally,
    /// leaving the message and its buttons as they are.
    pub fn refuse_click(&self, c: ButtonClick, why: Accepted) {
        let dest = Destination::ResponseUrl {
            url: c.response_url,
            slash: false,
            channel: None,
        };
        let web = self.web.clone();
        self.intake
            .spawn_answer("telling a clicker to retry".into(), async move {
                send_once(&web, &dest, &refusal(why)).await
            });
    }
}
