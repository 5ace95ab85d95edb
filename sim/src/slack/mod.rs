//! A Slack stand-in on loopback: the Web API, file uploads, `response_url`s and Socket Mode, recorded and scriptable to fail.
//!
//! Point a Slack client's API base at [`SlackStandIn::api_url`] and it talks to this
//! instead of Slack; nothing else changes. Every request is recorded as a [`Call`];
//! tests read them back ([`SlackStandIn::calls`]) or wait for them
//! ([`SlackStandIn::wait_for`]). Failures are scripted per method
//! ([`SlackStandIn::script`]); the whole stand-in can go away and come back on the
//! same port ([`SlackStandIn::stop_listening`], [`SlackStandIn::listen_again`]).
//! Socket Mode envelopes go out with [`SlackStandIn::send`]; acknowledgements come
//! back through [`SlackStandIn::wait_for_ack`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use crossroads_sim::slack::{Envelope, SlackStandIn};
//! use crossroads_sim::Scripted;
//!
//! let slack = SlackStandIn::start().await?;
//! // Point the bot at slack.api_url() with slack.bot_token() and slack.app_token(),
//! // and start it; it opens a Socket Mode connection.
//! slack.wait_for_open_connections(1).await;
//! slack.script("chat.postMessage", [Scripted::RateLimited { retry_after_secs: 1 }]);
//! let command = slack.slash_command("/deploy", "api prod", "U1", "C1");
//! let id = slack.send(Envelope::slash_commands(command))?;
//! assert!(slack.wait_for_ack(&id).await.delay.is_some_and(|d| d.as_secs() < 3));
//! let posts = slack.wait_for("chat.postMessage", 2).await; // the 429, then the retry
//! # let _ = posts; Ok(()) }
//! ```
//!
//! Choices where Slack's behaviour is not fully documented:
//! - a missing token answers `not_authed`, a wrong one `invalid_auth`, an app-level
//!   (`xapp-`) token on a bot method `not_allowed_token_type` (all HTTP 200);
//! - a `response_url` takes [`SlackSetup::response_url_uses`] posts (Slack: 5) within
//!   [`SlackSetup::response_url_ttl`] (Slack: 30 minutes); past that it answers
//!   HTTP 404 `{"ok":false,"error":"used_url"}` or `{"ok":false,"error":"expired_url"}`
//!   (clients see Slack's 404; the error names are this stand-in's);
//! - a Socket Mode ticket from `apps.connections.open` opens one connection; a
//!   second connect with it is refused with HTTP 401;
//! - `conversations.history` and `conversations.replies` show only the bot's own posts
//!   (a person's messages are not kept), newest first and oldest first, paged by an
//!   opaque `cursor`; `metadata` only with `include_all_metadata=true`;
//! - `users.info` knows every id starting with `U` or `W`: those given a zone with
//!   [`SlackSetup::user_tz`] have it, any other is in `UTC`; other ids answer
//!   `user_not_found`. `tz_offset` is the zone's standard-time offset for a few
//!   well-known zones (no daylight saving), 0 for the rest.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::routing::{any, post};
use axum::Router;
use serde_json::Value;

use crate::fault::{Faults, Scripted};
use crate::listen::{self, Listener};
use crate::record::{Log, DEFAULT_WAIT};
use crate::StandInError;

mod answer;
mod payloads;
mod socket;
mod web;

pub use socket::{
    Ack, ClientFrame, Connection, DisconnectReason, Envelope, EnvelopeKind, Malformed,
    SocketModeError,
};

/// [`Call::method`] of a POST to an upload URL from `files.getUploadURLExternal`.
pub const UPLOAD: &str = "upload";
/// [`Call::method`] of a POST to a `response_url`.
pub const RESPONSE_URL: &str = "response_url";
/// Fault key of the Socket Mode websocket handshake (`/link`), for [`SlackStandIn::script`].
pub const LINK: &str = "link";

/// The stand-in's identity and limits.
#[derive(Debug, Clone)]
pub struct SlackSetup {
    /// Port on 127.0.0.1 (0 = any free port).
    pub port: u16,
    /// Bot token accepted by Web API methods (`xoxb-…`).
    pub bot_token: String,
    /// App-level token accepted by `apps.connections.open` (`xapp-…`).
    pub app_token: String,
    /// Workspace id (`T…`).
    pub team_id: String,
    /// Workspace name.
    pub team: String,
    /// The bot's user id, as `auth.test` reports it.
    pub bot_user_id: String,
    /// The bot's bot id, as `auth.test` reports it.
    pub bot_id: String,
    /// The bot's user name.
    pub bot_name: String,
    /// The app id, sent in Socket Mode's `hello`.
    pub app_id: String,
    /// Posts one `response_url` accepts (Slack: 5).
    pub response_url_uses: u32,
    /// How long a `response_url` lives (Slack: 30 minutes).
    pub response_url_ttl: Duration,
    /// How long `wait_for…` helpers wait before panicking.
    pub wait_timeout: Duration,
    /// IANA time zones `users.info` reports, by user id (others are in `UTC`).
    pub user_zones: BTreeMap<String, String>,
}

impl Default for SlackSetup {
    fn default() -> Self {
        Self {
            port: 0,
            bot_token: "xoxb-sim-bot-token".into(),
            app_token: "xapp-1-sim-app-token".into(),
            team_id: "T0SIM".into(),
            team: "Crossroads Sim".into(),
            bot_user_id: "UBOT".into(),
            bot_id: "BBOT".into(),
            bot_name: "crossroads".into(),
            app_id: "A0SIM".into(),
            response_url_uses: 5,
            response_url_ttl: Duration::from_secs(30 * 60),
            wait_timeout: DEFAULT_WAIT,
            user_zones: BTreeMap::new(),
        }
    }
}

impl SlackSetup {
    /// The defaults: tokens `xoxb-sim-bot-token` / `xapp-1-sim-app-token`, bot `UBOT` / `BBOT`.
    pub fn new() -> Self {
        Self::default()
    }
    /// Listens on this port (0 = any free port).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }
    /// Accepts this bot token.
    pub fn bot_token(mut self, token: &str) -> Self {
        self.bot_token = token.to_owned();
        self
    }
    /// Accepts this app-level token for Socket Mode.
    pub fn app_token(mut self, token: &str) -> Self {
        self.app_token = token.to_owned();
        self
    }
    /// Sets how many posts a `response_url` takes and for how long.
    pub fn response_url_limits(mut self, uses: u32, ttl: Duration) -> Self {
        self.response_url_uses = uses;
        self.response_url_ttl = ttl;
        self
    }
    /// Sets how long `wait_for…` helpers wait.
    pub fn wait_timeout(mut self, d: Duration) -> Self {
        self.wait_timeout = d;
        self
    }
    /// `users.info` reports `user` (a `U…` or `W…` id) in IANA time zone `tz`
    /// (`Europe/Prague`).
    pub fn user_tz(mut self, user: &str, tz: &str) -> Self {
        self.user_zones.insert(user.to_owned(), tz.to_owned());
        self
    }
}

/// One HTTP request the stand-in received.
#[derive(Debug, Clone)]
pub struct Call {
    /// Web API method (`chat.postMessage`), or [`UPLOAD`], or [`RESPONSE_URL`].
    pub method: String,
    /// The request path, e.g. `/api/chat.postMessage`.
    pub path: String,
    /// Headers, names lower-cased.
    pub headers: BTreeMap<String, String>,
    /// The arguments as JSON: a JSON body as sent; a form body (and query string)
    /// as an object of strings, with `blocks`, `attachments`, `files` and `metadata`
    /// parsed from their JSON text; `null` for a body that is neither.
    pub body: Value,
    /// The body exactly as received.
    pub raw: Vec<u8>,
    /// When it arrived.
    pub at: Instant,
}

impl Call {
    /// A header's value (name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
    /// A string argument from [`Call::body`].
    pub fn arg(&self, name: &str) -> Option<&str> {
        self.body.get(name).and_then(Value::as_str)
    }
}

/// One file announced with `files.getUploadURLExternal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// `F…` id.
    pub file_id: String,
    /// `filename` given.
    pub filename: String,
    /// `length` given.
    pub length: u64,
    /// The bytes posted to the upload URL (the file part of a multipart body).
    pub bytes: Option<Vec<u8>>,
    /// Set by `files.completeUploadExternal`.
    pub completed: bool,
    /// `title` given on completion.
    pub title: Option<String>,
    /// `channel_id` given on completion.
    pub channel_id: Option<String>,
    /// `initial_comment` given on completion.
    pub initial_comment: Option<String>,
    /// `thread_ts` given on completion.
    pub thread_ts: Option<String>,
}

/// A message as it stands after `chat.postMessage` and any `chat.update`s.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Channel as given.
    pub channel: String,
    /// Its `ts`.
    pub ts: String,
    /// The `message` object Slack answered (updated in place by `chat.update`).
    pub message: Value,
}

struct ResponseUrl {
    minted: Instant,
    uses: u32,
}

#[derive(Default)]
struct WebState {
    next_ts: u64,
    next_file: u64,
    next_response: u64,
    next_trigger: u64,
    messages: BTreeMap<(String, String), Value>,
    message_order: Vec<(String, String)>,
    uploads: BTreeMap<String, Upload>,
    response_urls: HashMap<String, ResponseUrl>,
    answers: HashMap<String, Value>,
}

impl WebState {
    /// A unique, increasing Slack timestamp (`1700000000.000100`, `….000200`, …).
    fn ts(&mut self) -> String {
        self.next_ts += 1;
        let n = self.next_ts;
        format!("{}.{:06}", 1_700_000_000 + n / 10_000, (n % 10_000) * 100)
    }
}

pub(crate) struct Shared {
    setup: SlackSetup,
    base: String,
    calls: Log<Call>,
    faults: Faults,
    web: Mutex<WebState>,
    socket: socket::Hub,
}

impl Shared {
    fn web(&self) -> MutexGuard<'_, WebState> {
        self.web.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running Slack stand-in.
pub struct SlackStandIn {
    shared: Arc<Shared>,
    server: Listener,
}

impl SlackStandIn {
    /// Starts with [`SlackSetup::default`] on a free loopback port.
    pub async fn start() -> Result<Self, StandInError> {
        Self::start_with(SlackSetup::default()).await
    }

    /// Starts with `setup`.
    pub async fn start_with(setup: SlackSetup) -> Result<Self, StandInError> {
        let (server, shared) = listen::start(setup.port, |addr| {
            let shared = Arc::new(Shared {
                setup,
                base: format!("http://{addr}"),
                calls: Log::default(),
                faults: Faults::default(),
                web: Mutex::new(WebState::default()),
                socket: socket::Hub::default(),
            });
            let router = Router::new()
                .route("/api/{method}", any(web::api))
                .route("/upload/{file_id}", post(web::upload))
                .route("/response/{id}", post(web::response_url))
                .route("/link", any(socket::link))
                .route("/link/", any(socket::link))
                .with_state(shared.clone());
            (router, shared)
        })
        .await?;
        Ok(Self { shared, server })
    }

    /// Bound address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The Web API base, `http://127.0.0.1:port/api` (methods are `{api_url}/{method}`).
    pub fn api_url(&self) -> String {
        format!("{}/api", self.server.url())
    }

    /// The accepted bot token.
    pub fn bot_token(&self) -> &str {
        &self.shared.setup.bot_token
    }

    /// The accepted app-level token.
    pub fn app_token(&self) -> &str {
        &self.shared.setup.app_token
    }

    /// The setup it runs with.
    pub fn setup(&self) -> &SlackSetup {
        &self.shared.setup
    }

    // ------------------------------------------------------------ recording

    /// Every call to `method` so far, oldest first.
    pub fn calls(&self, method: &str) -> Vec<Call> {
        self.shared
            .calls
            .all()
            .into_iter()
            .filter(|c| c.method == method)
            .collect()
    }

    /// Every call so far, oldest first.
    pub fn all_calls(&self) -> Vec<Call> {
        self.shared.calls.all()
    }

    /// Waits until `n` calls to `method` arrived and returns them (all of them, if
    /// more); panics after the setup's wait timeout, listing every call seen.
    pub async fn wait_for(&self, method: &str, n: usize) -> Vec<Call> {
        let what = format!("{n} call(s) to {method}");
        self.shared
            .calls
            .wait(self.shared.setup.wait_timeout, &what, |calls| {
                let hits: Vec<Call> = calls
                    .iter()
                    .filter(|c| c.method == method)
                    .cloned()
                    .collect();
                (hits.len() >= n).then_some(hits)
            })
            .await
    }

    /// Waits for the first call to `method` matching `pred` (earlier ones count too);
    /// panics after the wait timeout, listing every call seen.
    pub async fn wait_for_one(&self, method: &str, pred: impl Fn(&Call) -> bool) -> Call {
        let what = format!("a matching call to {method}");
        self.shared
            .calls
            .wait(self.shared.setup.wait_timeout, &what, |calls| {
                calls
                    .iter()
                    .find(|c| c.method == method && pred(c))
                    .cloned()
            })
            .await
    }

    /// Messages posted with `chat.postMessage`, as they stand now, oldest first.
    pub fn messages(&self) -> Vec<Message> {
        let web = self.shared.web();
        web.message_order
            .iter()
            .filter_map(|key| {
                web.messages.get(key).map(|m| Message {
                    channel: key.0.clone(),
                    ts: key.1.clone(),
                    message: m.clone(),
                })
            })
            .collect()
    }

    /// The first message posted in `channel`, once it is there (bounded wait: a call
    /// is recorded a moment before its message is stored).
    pub async fn wait_for_message(&self, channel: &str) -> Message {
        let deadline = std::time::Instant::now() + DEFAULT_WAIT;
        loop {
            if let Some(m) = self.messages().into_iter().find(|m| m.channel == channel) {
                return m;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no message was posted in {channel}; messages: {:?}",
                self.messages()
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Files announced so far, by id order.
    pub fn uploads(&self) -> Vec<Upload> {
        self.shared.web().uploads.values().cloned().collect()
    }

    // ------------------------------------------------------------ shaping answers

    /// Queues scripted answers for `method` (a Web API method, [`UPLOAD`],
    /// [`RESPONSE_URL`] or [`LINK`]), used in order before the default answer.
    pub fn script(&self, method: &str, answers: impl IntoIterator<Item = Scripted>) {
        self.shared.faults.push(method, answers);
    }

    /// Scripted answers still queued for `method`.
    pub fn scripted_left(&self, method: &str) -> usize {
        self.shared.faults.pending(method)
    }

    /// Forgets every scripted answer.
    pub fn clear_scripts(&self) {
        self.shared.faults.clear();
    }

    /// Makes a method this stand-in does not implement answer `answer` (HTTP 200, as
    /// JSON; `"ok": true` is added when missing). Unknown methods otherwise answer
    /// `{"ok":false,"error":"unknown_method"}`, as Slack does.
    pub fn set_answer(&self, method: &str, answer: Value) {
        self.shared.web().answers.insert(method.to_owned(), answer);
    }

    /// A fresh `response_url` on this stand-in, as Slack puts in interactions and
    /// slash commands.
    pub fn response_url(&self) -> String {
        let mut web = self.shared.web();
        web.next_response += 1;
        let id = format!("R{:06}", web.next_response);
        web.response_urls.insert(
            id.clone(),
            ResponseUrl {
                minted: Instant::now(),
                uses: 0,
            },
        );
        format!("{}/response/{id}", self.shared.base)
    }

    // ------------------------------------------------------------ outage

    /// Slack becomes unreachable: the port refuses connections and every open one
    /// (HTTP keep-alive and Socket Mode alike) is cut without a close frame.
    pub async fn stop_listening(&self) {
        self.server.stop().await;
    }

    /// Slack is back on the same port.
    pub async fn listen_again(&self) -> Result<(), StandInError> {
        self.server.resume().await
    }

    /// Whether the port accepts connections.
    pub fn is_listening(&self) -> bool {
        self.server.is_listening()
    }

    /// Stops the stand-in for good.
    pub async fn shutdown(self) {
        self.server.stop().await;
    }
}
