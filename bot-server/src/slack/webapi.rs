//! A thin Slack Web API client: JSON bodies from slack-morphism's request models,
//! bearer auth, HTTP 429 `Retry-After` honoured with bounded attempts, failures
//! counted by method and Slack error code. Also posts to `response_url`s.
//!
//! Why not slack-morphism's `SlackClient` here: its hyper connector is https-only
//! unless rebuilt by hand, it surfaces 429 only after its own optional rate
//! controller, and its `response_url` request has no `response_type`; one reqwest
//! client covers the Web API and `response_url`s with the same retry and metrics.

use std::time::Duration;

use bot_core::config::Secret;
use bot_core::Reply;
use serde::{Deserialize, Serialize};
use slack_morphism::prelude::*;

use crate::metrics::Metrics;

/// Longest `Retry-After` honoured; longer waits give up instead.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Why a Web API call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebApiError {
    /// Slack answered `{"ok":false,"error":…}`.
    #[error("Slack refused {method}: {error}")]
    Slack {
        /// API method.
        method: String,
        /// Slack's error code, e.g. `channel_not_found`.
        error: String,
    },
    /// Still rate limited after every attempt.
    #[error("Slack kept rate limiting {method} after {attempts} attempts")]
    RateLimited {
        /// API method.
        method: String,
        /// Attempts made.
        attempts: u32,
        /// Slack's last `Retry-After`: how long to leave this method alone.
        retry_after: Duration,
    },
    /// An HTTP status other than 200 or 429.
    #[error("Slack answered {method} with HTTP {status}")]
    Http {
        /// API method.
        method: String,
        /// Status code.
        status: u16,
    },
    /// No answer (connection, timeout) or an unreadable one.
    #[error("could not call Slack {method}: {reason}")]
    Transport {
        /// API method.
        method: String,
        /// What went wrong (never contains the token).
        reason: String,
    },
}

impl WebApiError {
    /// Short code for metrics: Slack's error or `http_500`, `ratelimited`, `transport`.
    pub fn code(&self) -> String {
        match self {
            WebApiError::Slack { error, .. } => error.clone(),
            WebApiError::RateLimited { .. } => "ratelimited".into(),
            WebApiError::Http { status, .. } => format!("http_{status}"),
            WebApiError::Transport { .. } => "transport".into(),
        }
    }
}

/// Where a posted message landed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Posted {
    /// Channel id.
    #[serde(default)]
    pub channel: Option<String>,
    /// Message timestamp (its id for `chat.update`).
    #[serde(default)]
    pub ts: Option<String>,
}

#[derive(Deserialize)]
struct Envelope {
    ok: bool,
    error: Option<String>,
}

#[derive(Deserialize)]
struct UploadUrl {
    upload_url: String,
    file_id: String,
}

/// The method name metrics and errors use for the POST of a file's bytes.
pub const UPLOAD: &str = "files.upload_url";

/// One file for [`WebApi::upload_files`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileUpload {
    /// File name, e.g. `deploys-on-staging.png`.
    pub filename: String,
    /// Title shown in Slack.
    pub title: String,
    /// Description for screen readers (`alt_txt`).
    pub alt_text: String,
    /// The content.
    pub bytes: Vec<u8>,
}

/// Where [`WebApi::upload_files`] shares the files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// Channel id.
    pub channel: String,
    /// Thread (its parent's `ts`) to share in.
    pub thread_ts: Option<String>,
    /// The message introducing the files.
    pub comment: Option<String>,
}

#[derive(Deserialize)]
struct AuthTest {
    user_id: Option<String>,
}

#[derive(Deserialize)]
struct ConnectionsOpen {
    url: String,
}

/// A person as `users.info` describes them: only what the bot uses.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SlackUser {
    /// `U…` / `W…` id.
    pub id: String,
    /// IANA time zone, e.g. `Europe/Prague`.
    #[serde(default)]
    pub tz: Option<String>,
}

#[derive(Deserialize)]
struct UsersInfo {
    user: SlackUser,
}

/// The body posted to a `response_url`: slack-morphism's webhook message plus
/// `response_type`, which its model lacks.
#[derive(Debug, Clone, Serialize)]
pub struct ResponseUrlMessage {
    /// Content and `replace_original`.
    #[serde(flatten)]
    pub message: SlackApiPostWebhookMessageRequest,
    /// `in_channel` or `ephemeral`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_type: Option<SlackMessageResponseType>,
}

/// Message content for a reply: Block Kit blocks plus the plain-text fallback.
pub fn content(reply: &Reply) -> SlackMessageContent {
    SlackMessageContent::new()
        .with_text(reply.to_plain_text())
        .with_blocks(reply.blocks())
}

/// Pages of history looked through for a post in doubt (200 messages each).
pub const HISTORY_PAGES: usize = 5;

/// A page of `conversations.history` / `conversations.replies`: only what finding a
/// tagged post needs.
#[derive(Deserialize)]
struct History {
    #[serde(default)]
    messages: Vec<HistoryMessage>,
    #[serde(default)]
    response_metadata: Option<NextCursor>,
}

#[derive(Deserialize)]
struct NextCursor {
    #[serde(default)]
    next_cursor: Option<String>,
}

/// The metadata event type of the bot's posts, and the payload key naming the outbox id.
pub const REPLY_EVENT: &str = "crossroads_reply";
/// See [`REPLY_EVENT`].
pub const REPLY_KEY: &str = "outbox";

#[derive(Deserialize)]
struct HistoryMessage {
    ts: String,
    /// Any app's metadata, in any shape: read loosely.
    #[serde(default)]
    metadata: serde_json::Value,
}

impl HistoryMessage {
    fn tagged(&self, tag: &str) -> bool {
        let m = &self.metadata;
        m["event_type"] == REPLY_EVENT && m["event_payload"][REPLY_KEY] == tag
    }
}

/// The Slack Web API client; cheap to clone.
#[derive(Clone)]
pub struct WebApi {
    http: reqwest::Client,
    base: String,
    token: Secret,
    metrics: Metrics,
    max_attempts: u32,
    /// Whether failures are logged here (they are always counted).
    log_failures: bool,
}

impl std::fmt::Debug for WebApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebApi")
            .field("base", &self.base)
            .field("token", &self.token)
            .finish()
    }
}

impl WebApi {
    /// A client for the Web API at `base` (e.g. `https://slack.com/api`) with `token`.
    pub fn new(
        base: &str,
        token: Secret,
        metrics: Metrics,
        timeout: Duration,
        max_attempts: u32,
    ) -> Result<Self, WebApiError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| WebApiError::Transport {
                method: "client".into(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token,
            metrics,
            max_attempts: max_attempts.max(1),
            log_failures: true,
        })
    }

    /// The same client making one attempt per call: a 429 comes back at once as
    /// [`WebApiError::RateLimited`] with its `Retry-After` instead of being waited
    /// out (for best-effort calls such as progress updates).
    pub fn single_attempt(&self) -> WebApi {
        WebApi {
            max_attempts: 1,
            ..self.clone()
        }
    }

    /// The same client leaving the logging of failures to the caller (they are still
    /// counted), for callers that log them with more context.
    pub fn unlogged(&self) -> WebApi {
        WebApi {
            log_failures: false,
            ..self.clone()
        }
    }

    /// `chat.postMessage`.
    pub async fn post_message(
        &self,
        req: &SlackApiChatPostMessageRequest,
    ) -> Result<Posted, WebApiError> {
        self.call("chat.postMessage", req).await
    }

    /// `chat.update`.
    pub async fn update(&self, req: &SlackApiChatUpdateRequest) -> Result<Posted, WebApiError> {
        self.call("chat.update", req).await
    }

    /// `chat.postEphemeral`.
    pub async fn post_ephemeral(
        &self,
        req: &SlackApiChatPostEphemeralRequest,
    ) -> Result<(), WebApiError> {
        self.call::<_, serde_json::Value>("chat.postEphemeral", req)
            .await
            .map(|_| ())
    }

    /// The `ts` of the post in `channel` (in `thread_ts`'s thread when given) whose
    /// metadata tags it with outbox id `tag`, newest first, looking through the last
    /// [`HISTORY_PAGES`] pages of `conversations.history` (or `conversations.replies`).
    pub async fn find_tagged(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        tag: &str,
    ) -> Result<Option<String>, WebApiError> {
        let method = if thread_ts.is_some() {
            "conversations.replies"
        } else {
            "conversations.history"
        };
        let mut cursor: Option<String> = None;
        for _ in 0..HISTORY_PAGES {
            let mut form = vec![
                ("channel", channel.to_owned()),
                ("limit", "200".to_owned()),
                ("include_all_metadata", "true".to_owned()),
            ];
            if let Some(ts) = thread_ts {
                form.push(("ts", ts.to_owned()));
            }
            if let Some(c) = cursor.take() {
                form.push(("cursor", c));
            }
            let page: History = self.call_form(method, &form).await?;
            if let Some(found) = page.messages.iter().find(|m| m.tagged(tag)) {
                return Ok(Some(found.ts.clone()));
            }
            cursor = page
                .response_metadata
                .and_then(|r| r.next_cursor)
                .filter(|c| !c.is_empty());
            if cursor.is_none() {
                break;
            }
        }
        Ok(None)
    }

    /// `auth.test`: the bot's own user id.
    pub async fn auth_test(&self) -> Result<Option<String>, WebApiError> {
        let r: AuthTest = self.call("auth.test", &serde_json::json!({})).await?;
        Ok(r.user_id)
    }

    /// `users.info` (a form, as Slack documents it): the person with id `user`.
    pub async fn users_info(&self, user: &str) -> Result<SlackUser, WebApiError> {
        let r: UsersInfo = self
            .call_form("users.info", &[("user", user.to_owned())])
            .await?;
        Ok(r.user)
    }

    /// `apps.connections.open` with the app-level token: the websocket URL of a new
    /// Socket Mode connection (it holds a one-time ticket: do not log it).
    pub async fn connections_open(&self, app_token: &Secret) -> Result<String, WebApiError> {
        let r: ConnectionsOpen = self
            .call_as(
                "apps.connections.open",
                app_token.expose(),
                &serde_json::json!({}),
            )
            .await?;
        Ok(r.url)
    }

    /// Calls Web API `method` with a JSON body.
    pub async fn call<Req: Serialize + ?Sized, Resp: for<'de> Deserialize<'de>>(
        &self,
        method: &str,
        body: &Req,
    ) -> Result<Resp, WebApiError> {
        self.call_as(method, self.token.expose(), body).await
    }

    /// Calls Web API `method` with a JSON body and another token.
    async fn call_as<Req: Serialize + ?Sized, Resp: for<'de> Deserialize<'de>>(
        &self,
        method: &str,
        token: &str,
        body: &Req,
    ) -> Result<Resp, WebApiError> {
        let url = format!("{}/{method}", self.base);
        let text = self.send(method, &url, Some(token), body).await?;
        self.read(method, &text)
    }

    /// Calls Web API `method` with a form body (`files.getUploadURLExternal` takes
    /// only forms in older Slack documentation; every method accepts them).
    async fn call_form<Resp: for<'de> Deserialize<'de>>(
        &self,
        method: &str,
        form: &[(&str, String)],
    ) -> Result<Resp, WebApiError> {
        let url = format!("{}/{method}", self.base);
        let text = self
            .send_with(method, &url, Some(self.token.expose()), |req| {
                req.form(form)
            })
            .await?;
        self.read(method, &text)
    }

    fn read<Resp: for<'de> Deserialize<'de>>(
        &self,
        method: &str,
        text: &str,
    ) -> Result<Resp, WebApiError> {
        let envelope: Envelope = serde_json::from_str(text).map_err(|e| {
            self.fail(WebApiError::Transport {
                method: method.to_owned(),
                reason: format!("unreadable answer: {e}"),
            })
        })?;
        if !envelope.ok {
            return Err(self.fail(WebApiError::Slack {
                method: method.to_owned(),
                error: envelope.error.unwrap_or_else(|| "unknown_error".into()),
            }));
        }
        serde_json::from_str(text).map_err(|e| {
            self.fail(WebApiError::Transport {
                method: method.to_owned(),
                reason: format!("unexpected answer: {e}"),
            })
        })
    }

    /// Uploads `files` and shares them in `share.channel` (in `share.thread_ts`,
    /// introduced by `share.comment`) with Slack's current flow:
    /// `files.getUploadURLExternal` for each file, the bytes POSTed to the URL it
    /// returns, then one `files.completeUploadExternal`. Returns the file ids.
    pub async fn upload_files(
        &self,
        files: &[FileUpload],
        share: &Share,
    ) -> Result<Vec<String>, WebApiError> {
        let mut done = Vec::new();
        for f in files {
            let mut form = vec![
                ("filename", f.filename.clone()),
                ("length", f.bytes.len().to_string()),
            ];
            if !f.alt_text.is_empty() {
                form.push(("alt_txt", f.alt_text.chars().take(1000).collect()));
            }
            let url: UploadUrl = self.call_form("files.getUploadURLExternal", &form).await?;
            // The upload URL is the credential: no token, and never logged.
            let bytes = f.bytes.clone();
            self.send_with(UPLOAD, &url.upload_url, None, move |req| {
                req.header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                    .body(bytes.clone())
            })
            .await?;
            done.push(serde_json::json!({"id": url.file_id, "title": f.title}));
        }
        let mut body = serde_json::json!({"files": done, "channel_id": share.channel});
        if let Some(ts) = &share.thread_ts {
            body["thread_ts"] = ts.clone().into();
        }
        if let Some(comment) = share.comment.as_ref().filter(|c| !c.trim().is_empty()) {
            body["initial_comment"] = comment.clone().into();
        }
        let _: serde_json::Value = self.call("files.completeUploadExternal", &body).await?;
        Ok(done
            .iter()
            .filter_map(|f| f["id"].as_str().map(str::to_owned))
            .collect())
    }

    /// Posts `message` to a `response_url` (no token: the URL is the credential).
    pub async fn respond(
        &self,
        url: &str,
        message: &ResponseUrlMessage,
    ) -> Result<(), WebApiError> {
        // Slack answers response_url posts with `ok` (text) or `{"ok":true}`.
        let text = self.send("response_url", url, None, message).await?;
        if let Ok(Envelope {
            ok: false,
            error: Some(error),
        }) = serde_json::from_str::<Envelope>(&text)
        {
            return Err(self.fail(WebApiError::Slack {
                method: "response_url".into(),
                error,
            }));
        }
        Ok(())
    }

    fn fail(&self, e: WebApiError) -> WebApiError {
        let method = match &e {
            WebApiError::Slack { method, .. }
            | WebApiError::RateLimited { method, .. }
            | WebApiError::Http { method, .. }
            | WebApiError::Transport { method, .. } => method.clone(),
        };
        self.metrics.api_failure(&method, &e.code());
        if self.log_failures {
            tracing::warn!(method = %method, error = %e.code(), "Slack call failed: {e}");
        }
        e
    }

    /// POSTs JSON, retrying on 429 after `Retry-After`; returns the 2xx body.
    async fn send<B: Serialize + ?Sized>(
        &self,
        method: &str,
        url: &str,
        token: Option<&str>,
        body: &B,
    ) -> Result<String, WebApiError> {
        self.send_with(method, url, token, |req| req.json(body))
            .await
    }

    /// POSTs the body `build` puts on the request, retrying on 429 after
    /// `Retry-After`; returns the 2xx body.
    async fn send_with(
        &self,
        method: &str,
        url: &str,
        token: Option<&str>,
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<String, WebApiError> {
        let mut retry_after = Duration::ZERO;
        for attempt in 1..=self.max_attempts {
            self.metrics.api_call(method);
            let mut req = build(self.http.post(url));
            if let Some(token) = token {
                req = req.bearer_auth(token);
            }
            let res = req.send().await.map_err(|e| {
                self.fail(WebApiError::Transport {
                    method: method.to_owned(),
                    // reqwest errors name the URL, never headers: no token leaks here.
                    reason: e.without_url().to_string(),
                })
            })?;
            let status = res.status();
            if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                let wait =
                    crate::retry::retry_after(res.headers()).unwrap_or(Duration::from_secs(1));
                retry_after = wait;
                self.metrics.api_failure(method, "ratelimited");
                if attempt == self.max_attempts || wait > MAX_RETRY_AFTER {
                    break;
                }
                tracing::info!(
                    method,
                    attempt,
                    wait_secs = wait.as_secs(),
                    "Slack rate limited; retrying"
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            if !status.is_success() {
                return Err(self.fail(WebApiError::Http {
                    method: method.to_owned(),
                    status: status.as_u16(),
                }));
            }
            return res.text().await.map_err(|e| {
                self.fail(WebApiError::Transport {
                    method: method.to_owned(),
                    reason: e.without_url().to_string(),
                })
            });
        }
        let e = WebApiError::RateLimited {
            method: method.to_owned(),
            attempts: self.max_attempts,
            retry_after,
        };
        if self.log_failures {
            tracing::warn!(method, "Slack call failed: {e}");
        }
        Err(e)
    }
}
