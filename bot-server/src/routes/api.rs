//! The `/api/v1` contract for other services: `GET /api/v1/status` (platform status
//! as JSON, no auth), `POST /api/v1/notify` (bearer token, rate limited per token;
//! posts to Slack) and `GET /api/v1/audit` (bearer token; the hash-chained audit log
//! as JSON Lines). The bearer check, the rate limit and channel resolution are shared
//! with `POST /api/v1/chart` (`chart.rs`).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::errors::error;
use crate::slack::webapi::{Posted, WebApiError};
use crate::state::AppState;

/// Query of `GET /api/v1/status`.
#[derive(Debug, Deserialize)]
pub struct StatusQuery {
    /// Only this environment (exact name).
    pub env: Option<String>,
}

/// `GET /api/v1/status[?env=NAME]`: every instance probed, every switch read, as
/// [`bot_core::PlatformStatus`] JSON; an unknown environment gets 404. The round is
/// shared with everyone asking within `settings.status_cache`, each client address
/// may ask `CROSSROADS_STATUS_RATE_LIMIT` times (429 beyond), and without the API
/// token the answer names no URL and no switch's own error text.
pub async fn status(
    State(state): State<AppState>,
    peer: Option<axum::Extension<crate::conn::Peer>>,
    headers: HeaderMap,
    query: Result<Query<StatusQuery>, QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    if let (Some(limit), Some(axum::Extension(crate::conn::Peer(ip)))) = (&state.status_limit, peer)
    {
        if let Err(wait) = limit.check("status", &ip.to_string()) {
            return too_many(limit, wait, "client");
        }
    }
    let full = authorised(&state, &headers, "the full status").is_ok();
    match state
        .slack
        .bot()
        .platform_status(query.env.as_deref())
        .await
    {
        Ok(status) if full => axum::Json(status).into_response(),
        Ok(status) => axum::Json(public(status)).into_response(),
        Err(unknown) => error(StatusCode::NOT_FOUND, unknown),
    }
}

/// The status for anyone: the URLs dropped and a switch's own error text replaced by
/// a plain sentence (it may name sockets, hosts or upstream answers).
fn public(status: bot_core::PlatformStatus) -> Value {
    let mut value = serde_json::to_value(status).unwrap_or(Value::Null);
    fn scrub(v: &mut Value) {
        match v {
            Value::Object(map) => {
                map.remove("url");
                if let Some(e) = map.get_mut("switch_error") {
                    if !e.is_null() {
                        *e = Value::from("the traffic switch could not be read");
                    }
                }
                map.values_mut().for_each(scrub);
            }
            Value::Array(items) => items.iter_mut().for_each(scrub),
            _ => {}
        }
    }
    scrub(&mut value);
    value
}

/// `GET /api/v1/stats`: JSON counters for people who do not run Prometheus — up
/// since; messages received, processed and replied; commands by outcome; Slack and
/// Jenkins errors by kind.
pub async fn stats(State(state): State<AppState>) -> Response {
    let s = state.slack.metrics().stats();
    let now = std::time::SystemTime::now();
    axum::Json(json!({
        "up_since": bot_core::monitor::words::timestamp(state.started),
        "up_secs": now.duration_since(state.started).unwrap_or_default().as_secs(),
        "messages": {
            "received": s.received,
            "processed": s.processed,
            "replied": s.replied,
        },
        "commands": s.commands,
        "errors": {
            "slack": s.slack_errors,
            "jenkins": s.jenkins_errors,
        },
    }))
    .into_response()
}

/// Body of `POST /api/v1/notify`.
#[derive(Debug, Deserialize)]
struct Notify {
    /// A channel id (`C…`), a `#name`, or an alias from `instances.yaml` `channels:`.
    channel: String,
    /// Message text (the notification fallback when `blocks` is given).
    #[serde(default)]
    text: Option<String>,
    /// Block Kit blocks, passed to Slack as they are.
    #[serde(default)]
    blocks: Option<Value>,
}

/// A request refused before reaching Slack: status and one-line reason.
pub(crate) struct Refusal(StatusCode, String);

impl Refusal {
    pub(crate) fn new(status: StatusCode, reason: impl std::fmt::Display) -> Self {
        Self(status, reason.to_string())
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error(self.0, self.1)
    }
}

/// Compares in constant time, so the time taken does not say how much of a guessed
/// token was right (lengths may differ: that much is not secret).
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    given.ct_eq(expected).into()
}

/// Checks `Authorization: Bearer …` against the configured token (`what` names the
/// endpoint when none is configured).
pub(crate) fn authorised(state: &AppState, headers: &HeaderMap, what: &str) -> Result<(), Refusal> {
    let Some(token) = &state.api_token else {
        return Err(Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{what} is disabled: CROSSROADS_API_TOKEN is not set"),
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .filter(|t| !t.is_empty());
    match given {
        None => Err(Refusal::new(
            StatusCode::UNAUTHORIZED,
            "missing `Authorization: Bearer <CROSSROADS_API_TOKEN>`",
        )),
        Some(t) if same_secret(t.as_bytes(), token.expose().as_bytes()) => Ok(()),
        Some(_) => Err(Refusal::new(StatusCode::UNAUTHORIZED, "wrong API token")),
    }
}

/// Takes one request of the (authorised) token on `endpoint` from its rate limit:
/// beyond it, the answer to give (429 with `Retry-After` in whole seconds).
pub(crate) fn over_limit(state: &AppState, endpoint: &'static str) -> Option<Response> {
    let (Some(limit), Some(token)) = (&state.api_limit, &state.api_token) else {
        return None;
    };
    limit.check(endpoint, token.expose()).err().map(|wait| {
        tracing::info!(
            endpoint,
            retry_after = crate::rate_limit::retry_after_secs(wait),
            "API rate limit reached"
        );
        too_many(limit, wait, "token")
    })
}

/// `429` over `limit` (kept per `per`: a token, a client), with `Retry-After` in
/// whole seconds.
fn too_many(
    limit: &crate::rate_limit::ApiRateLimit,
    wait: std::time::Duration,
    per: &str,
) -> Response {
    let secs = crate::rate_limit::retry_after_secs(wait);
    let mut res = error(
        StatusCode::TOO_MANY_REQUESTS,
        format!(
            "rate limit of {} per {per} reached; retry in {secs}s",
            limit.rate()
        ),
    );
    if let Ok(v) = header::HeaderValue::from_str(&secs.to_string()) {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res
}

/// A Slack channel id: `C…`, `G…` or `D…` followed by upper-case letters and digits.
pub(crate) fn is_channel_id(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('C' | 'G' | 'D'))
        && s.len() > 1
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// Resolves an alias from `channels:`; ids and `#names` go to Slack as they are.
pub(crate) fn resolve_channel(state: &AppState, channel: &str) -> Result<String, Refusal> {
    let channel = channel.trim();
    let config = state.slack.bot().config();
    if let Some(id) = config.channels.get(channel) {
        return Ok(id.clone());
    }
    if (channel.starts_with('#') && channel.len() > 1) || is_channel_id(channel) {
        return Ok(channel.to_owned());
    }
    let known: Vec<&str> = config.channels.keys().map(String::as_str).collect();
    Err(Refusal::new(
        StatusCode::BAD_REQUEST,
        format!(
            "unknown channel `{channel}`: give a channel id (C…), a #name or one of the aliases in instances.yaml `channels:` ({})",
            if known.is_empty() {
                "none configured".to_owned()
            } else {
                known.join(", ")
            }
        ),
    ))
}

/// Parses and checks the body; returns the `chat.postMessage` body.
fn message(state: &AppState, body: &[u8]) -> Result<Map<String, Value>, Refusal> {
    let notify: Notify = serde_json::from_slice(body).map_err(|e| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("body is not a valid notify request: {e}"),
        )
    })?;
    let text = notify.text.filter(|t| !t.trim().is_empty());
    let blocks = match notify.blocks {
        None | Some(Value::Null) => None,
        Some(Value::Array(b)) if b.is_empty() => None,
        Some(Value::Array(b)) => Some(Value::Array(b)),
        Some(_) => {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "`blocks` must be an array of Block Kit blocks",
            ))
        }
    };
    if text.is_none() && blocks.is_none() {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            "give `text` or `blocks` (or both)",
        ));
    }
    let channel = resolve_channel(state, &notify.channel)?;
    let mut out = Map::new();
    out.insert("channel".into(), Value::String(channel));
    if let Some(t) = text {
        out.insert("text".into(), Value::String(t));
    }
    if let Some(b) = blocks {
        out.insert("blocks".into(), b);
    }
    Ok(out)
}

/// `POST /api/v1/notify` with `Authorization: Bearer <CROSSROADS_API_TOKEN>` and
/// `{"channel": …, "text": …, "blocks": […]}`: posts with `chat.postMessage`.
/// 401 bad token, 503 no token configured, 429 over the token's rate limit (with
/// `Retry-After`), 400 bad body or unknown alias, 413 too large, 502 Slack refused; 200 `{"ok":true,"channel":…,"ts":…}`.
pub async fn notify(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Err(refusal) = authorised(&state, &headers, "notify") {
        return refusal.into_response();
    }
    if let Some(limited) = over_limit(&state, "notify") {
        return limited;
    }
    let body = match body {
        Ok(b) => b,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body larger than {} bytes", crate::config::MAX_BODY_BYTES),
            )
        }
        Err(_) => return error(StatusCode::BAD_REQUEST, "could not read the body"),
    };
    let msg = match message(&state, &body) {
        Ok(m) => m,
        Err(refusal) => return refusal.into_response(),
    };
    let channel = msg.get("channel").cloned().unwrap_or(Value::Null);
    let posted: Result<Posted, WebApiError> = state
        .slack
        .web()
        .call("chat.postMessage", &Value::Object(msg))
        .await;
    match posted {
        Ok(p) => {
            tracing::info!(channel = %channel, ts = ?p.ts, "notify posted");
            axum::Json(json!({
                "ok": true,
                "channel": p.channel.map(Value::String).unwrap_or(channel),
                "ts": p.ts,
            }))
            .into_response()
        }
        Err(e) => {
            tracing::warn!(channel = %channel, error = %e, "notify failed");
            let reason = match &e {
                WebApiError::Slack { error, .. } => format!("slack: {error}"),
                other => format!("slack: {other}"),
            };
            error(StatusCode::BAD_GATEWAY, reason)
        }
    }
}

/// Query of `GET /api/v1/audit`.
#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    /// A record number or an RFC 3339 time; everything when absent.
    pub since: Option<String>,
}

/// `GET /api/v1/audit[?since=N|RFC3339]` with `Authorization: Bearer
/// <CROSSROADS_API_TOKEN>`: the audit chain as JSON Lines (`application/x-ndjson`),
/// one record per line with its `seq`, `prev_hash` and `hash`. 401 bad token, 503
/// no token or no store, 400 a `since` that is neither a number nor a time.
pub async fn audit(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Response {
    if let Err(refusal) = authorised(&state, &headers, "the audit export") {
        return refusal.into_response();
    }
    let Query(query) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let since = match query.since.as_deref().map(bot_core::audit::Since::parse) {
        None => bot_core::audit::Since::Seq(1),
        Some(Ok(since)) => since,
        Some(Err(reason)) => return error(StatusCode::BAD_REQUEST, reason),
    };
    let store = state.slack.bot().store();
    let mut pages = Box::pin(bot_core::audit::export_stream(store, since));
    // The first page says whether the store answers at all: a clear 503 if not.
    let first = match futures::StreamExt::next(&mut pages).await {
        None => String::new(),
        Some(Ok(lines)) => lines,
        Some(Err(e)) => {
            tracing::warn!(error = %e, "audit export failed");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the state store is unavailable, so the audit log cannot be read",
            );
        }
    };
    // The rest is sent as it is read; a store failing midway cuts the response short
    // (the client sees an incomplete body, never a silently shortened chain).
    let rest = futures::StreamExt::map(pages, |page| {
        page.map(axum::body::Bytes::from).map_err(|e| {
            tracing::warn!(error = %e, "audit export failed midway");
            std::io::Error::other("the state store failed during the audit export")
        })
    });
    let body = futures::StreamExt::chain(
        futures::stream::once(async move { Ok(axum::body::Bytes::from(first)) }),
        rest,
    );
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        axum::body::Body::from_stream(body),
    )
        .into_response()
}

/// Query of `GET /api/v1/dora`.
#[derive(Debug, Deserialize)]
pub struct DoraQuery {
    /// An environment; every one when absent.
    pub env: Option<String>,
    /// An RFC 3339 time; 30 days ago when absent.
    pub since: Option<String>,
}

/// `GET /api/v1/dora[?env=staging][&since=RFC3339]` with `Authorization: Bearer
/// <CROSSROADS_API_TOKEN>`: DORA's four keys from `since` until now, as JSON (the
/// figures `dora` gives in chat, with their counts and bands). 401 bad token, 503 no
/// token or no store, 400 an unknown environment or a `since` that is not a time.
pub async fn dora(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<DoraQuery>, QueryRejection>,
) -> Response {
    if let Err(refusal) = authorised(&state, &headers, "the DORA export") {
        return refusal.into_response();
    }
    // It reads the whole history of the window: limited like the other API calls.
    if let Some(limited) = over_limit(&state, "dora") {
        return limited;
    }
    let Query(query) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let bot = state.slack.bot();
    let config = bot.config();
    if let Some(env) = query.env.as_deref() {
        if config.env(env).is_none() {
            return error(StatusCode::BAD_REQUEST, format!("no environment `{env}`"));
        }
    }
    let until = bot.now();
    let since = match query.since.as_deref() {
        None => until
            .checked_sub(bot_core::actions::dora::DEFAULT_WINDOW)
            .unwrap_or(std::time::UNIX_EPOCH),
        Some(text) => match text.trim().parse::<jiff::Timestamp>() {
            Ok(t)
                if std::time::SystemTime::from(t) <= until
                    && until
                        .duration_since(std::time::SystemTime::from(t))
                        .is_ok_and(|d| d <= bot_core::actions::dora::MAX_WINDOW) =>
            {
                std::time::SystemTime::from(t)
            }
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "`since` must be an RFC 3339 time in the past year (2026-11-01T00:00:00Z)",
                )
            }
        },
    };
    match bot_core::actions::dora::measure(
        bot.store().as_ref(),
        &config,
        query.env.as_deref(),
        since,
        until,
    )
    .await
    {
        Ok(d) => axum::Json(d).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "DORA export failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the state store is unavailable, so the deploy history cannot be read",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_when_equal() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abd", b"abc"));
        assert!(!same_secret(b"ab", b"abc"));
        assert!(!same_secret(b"abcabc", b"abc"));
        assert!(!same_secret(b"", b"abc"));
    }

    #[test]
    fn channel_ids_are_recognised() {
        assert!(is_channel_id("C0ANNOUNCE"));
        assert!(is_channel_id("G123"));
        assert!(!is_channel_id("announcements"));
        assert!(!is_channel_id("C"));
        assert!(!is_channel_id("Cabc"));
    }
}
