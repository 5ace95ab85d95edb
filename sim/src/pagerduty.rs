//! A PagerDuty Events API v2 stand-in: alert events (`POST /v2/enqueue`) and change events (`POST /v2/change/enqueue`), validated like the real service, recorded and scriptable to fail.
//!
//! Answers as PagerDuty does: `202 {"status":"success","message":"Event processed","dedup_key":…}`
//! (change events: `202 {"status":"success","message":"Change event processed"}`),
//! or `400 {"status":"invalid event","message":"Event object is invalid","errors":[…]}`.
//! Scripted failures: [`Scripted::Status`] answers `{"status":"error","message":…}`,
//! [`Scripted::RateLimited`] a 429 `{"status":"throttle event",…}` with `Retry-After`,
//! [`Scripted::Error`] a 400 "invalid event" naming the error. Alert events take
//! them from [`PagerDutyStandIn::script`], change events from
//! [`PagerDutyStandIn::script_change`]. Change events accept any non-empty
//! `routing_key` (the real service wants 32 characters) and are recorded apart
//! from alert events, only when accepted.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use serde_json::{json, Value};

use crate::fault::{Dialect, Faults, Scripted};
use crate::listen::{self, Conn, Listener};
use crate::record::{header_map, Log, DEFAULT_WAIT};
use crate::StandInError;

const KEY: &str = "enqueue";
const CHANGE_KEY: &str = "change";
/// The longest `payload.summary` of a change event.
const SUMMARY_MAX: usize = 1024;
const SEVERITIES: &[&str] = &["critical", "error", "warning", "info"];

const PAGERDUTY: Dialect = Dialect {
    status: |status| {
        Json(json!({
            "status": "error",
            "message": status.canonical_reason().unwrap_or("Error"),
        }))
        .into_response()
    },
    rate_limited: || {
        Json(json!({
            "status": "throttle event",
            "message": "Requests for this service are arriving too quickly. Please retry later.",
        }))
        .into_response()
    },
    error: |e| invalid(vec![e.to_owned()]),
};

fn invalid(errors: Vec<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({
            "status": "invalid event",
            "message": "Event object is invalid",
            "errors": errors,
        })),
    )
        .into_response()
}

/// One request to `/v2/enqueue`.
#[derive(Debug, Clone, PartialEq)]
pub struct PagerDutyEvent {
    /// The JSON body (`null` if it did not parse).
    pub body: Value,
    /// Headers, names lower-cased.
    pub headers: BTreeMap<String, String>,
    /// HTTP status answered (0 when the connection was dropped or is still delayed).
    pub status: u16,
    /// The `dedup_key` answered, when accepted.
    pub dedup_key: Option<String>,
    /// When it arrived.
    pub at: Instant,
}

impl PagerDutyEvent {
    /// `event_action`.
    pub fn action(&self) -> Option<&str> {
        self.body.get("event_action").and_then(Value::as_str)
    }
    /// `payload.summary`.
    pub fn summary(&self) -> Option<&str> {
        self.body
            .pointer("/payload/summary")
            .and_then(Value::as_str)
    }
}

/// One change event accepted at `/v2/change/enqueue`.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEvent {
    /// `routing_key`.
    pub routing_key: String,
    /// `payload.summary`.
    pub summary: String,
    /// `payload.timestamp`, as sent.
    pub timestamp: Option<String>,
    /// `payload.source`, as sent.
    pub source: Option<String>,
    /// `payload.custom_details` (`null` when not sent).
    pub custom_details: Value,
    /// `links`: each `href` and its `text`, in order.
    pub links: Vec<(String, Option<String>)>,
}

/// Where an alert stands after the accepted events for its `dedup_key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    /// Last accepted action was `trigger`.
    Triggered,
    /// Last accepted action was `acknowledge`.
    Acknowledged,
    /// Last accepted action was `resolve`.
    Resolved,
}

struct Shared {
    events: Log<PagerDutyEvent>,
    faults: Faults,
    alerts: Mutex<BTreeMap<String, AlertState>>,
    next_key: AtomicU64,
    changes: Log<ChangeEvent>,
    change_requests: AtomicUsize,
    wait_timeout: Duration,
}

/// A running PagerDuty Events API v2 stand-in.
pub struct PagerDutyStandIn {
    shared: Arc<Shared>,
    server: Listener,
}

impl PagerDutyStandIn {
    /// Starts on a free loopback port.
    pub async fn start() -> Result<Self, StandInError> {
        Self::start_on(0).await
    }

    /// Starts on `127.0.0.1:port` (0 = any free port).
    pub async fn start_on(port: u16) -> Result<Self, StandInError> {
        let (server, shared) = listen::start(port, |_| {
            let shared = Arc::new(Shared {
                events: Log::default(),
                faults: Faults::default(),
                alerts: Mutex::new(BTreeMap::new()),
                next_key: AtomicU64::new(1),
                changes: Log::default(),
                change_requests: AtomicUsize::new(0),
                wait_timeout: DEFAULT_WAIT,
            });
            let router = Router::new()
                .route("/v2/enqueue", post(enqueue))
                .route("/v2/change/enqueue", post(change_enqueue))
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

    /// `http://127.0.0.1:port` (PagerDuty's is `https://events.pagerduty.com`).
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The full enqueue URL, `…/v2/enqueue`.
    pub fn enqueue_url(&self) -> String {
        format!("{}/v2/enqueue", self.server.url())
    }

    /// The full change-events URL, `…/v2/change/enqueue`.
    pub fn change_url(&self) -> String {
        format!("{}/v2/change/enqueue", self.server.url())
    }

    /// Every request so far to `/v2/enqueue` (valid or not), oldest first.
    pub fn events(&self) -> Vec<PagerDutyEvent> {
        self.shared.events.all()
    }

    /// Waits until `n` requests were answered `202`; returns the accepted ones.
    pub async fn wait_for_accepted(&self, n: usize) -> Vec<PagerDutyEvent> {
        let what = format!("{n} accepted PagerDuty event(s)");
        self.shared
            .events
            .wait(self.shared.wait_timeout, &what, |all| {
                let ok: Vec<_> = all.iter().filter(|e| e.status == 202).cloned().collect();
                (ok.len() >= n).then_some(ok)
            })
            .await
    }

    /// Waits until `n` requests arrived (answered or not); returns them all.
    pub async fn wait_for_events(&self, n: usize) -> Vec<PagerDutyEvent> {
        let what = format!("{n} PagerDuty request(s)");
        self.shared
            .events
            .wait(self.shared.wait_timeout, &what, |all| {
                (all.len() >= n).then(|| all.to_vec())
            })
            .await
    }

    /// Every change event accepted so far, oldest first.
    pub fn change_events(&self) -> Vec<ChangeEvent> {
        self.shared.changes.all()
    }

    /// Waits (at most [`DEFAULT_WAIT`]) until `n` change events were accepted; returns
    /// all there are then, possibly fewer than `n`.
    pub async fn wait_for_change_events(&self, n: usize) -> Vec<ChangeEvent> {
        let deadline = tokio::time::Instant::now() + self.shared.wait_timeout;
        loop {
            let all = self.shared.changes.all();
            if all.len() >= n || tokio::time::Instant::now() >= deadline {
                return all;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// How many requests to `/v2/change/enqueue` arrived, whatever they were answered.
    pub fn change_requests(&self) -> usize {
        self.shared.change_requests.load(Ordering::SeqCst)
    }

    /// Where the alert with `dedup_key` stands.
    pub fn alert(&self, dedup_key: &str) -> Option<AlertState> {
        lock(&self.shared.alerts).get(dedup_key).copied()
    }

    /// Queues scripted answers for `/v2/enqueue`, used in order before the default.
    pub fn script(&self, answers: impl IntoIterator<Item = Scripted>) {
        self.shared.faults.push(KEY, answers);
    }

    /// Queues scripted answers for `/v2/change/enqueue`, used in order before the default.
    pub fn script_change(&self, answers: impl IntoIterator<Item = Scripted>) {
        self.shared.faults.push(CHANGE_KEY, answers);
    }

    /// PagerDuty becomes unreachable (port closed, connections cut).
    pub async fn stop_listening(&self) {
        self.server.stop().await;
    }

    /// PagerDuty is back on the same port.
    pub async fn listen_again(&self) -> Result<(), StandInError> {
        self.server.resume().await
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the real service checks; `Ok(action)` or the error messages.
fn validate(body: &Value) -> Result<&str, Vec<String>> {
    let mut errors = Vec::new();
    match body.get("routing_key").and_then(Value::as_str) {
        None => errors.push("'routing_key' is missing or blank".to_owned()),
        Some(k) if k.chars().count() != 32 => {
            errors.push("Length of 'routing_key' is incorrect (should be 32 characters)".to_owned())
        }
        Some(_) => {}
    }
    let action = body
        .get("event_action")
        .and_then(Value::as_str)
        .unwrap_or("");
    let dedup = body
        .get("dedup_key")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty());
    if dedup.is_some_and(|k| k.len() > 255) {
        errors.push("'dedup_key' is too long (maximum is 255 characters)".to_owned());
    }
    match action {
        "trigger" => {
            for field in ["summary", "source"] {
                let present = body
                    .get("payload")
                    .and_then(|p| p.get(field))
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.trim().is_empty());
                if !present {
                    errors.push(format!("'payload.{field}' is missing or blank"));
                }
            }
            let severity = body.pointer("/payload/severity").and_then(Value::as_str);
            if !severity.is_some_and(|s| SEVERITIES.contains(&s)) {
                errors.push(
                    "'payload.severity' is invalid (must be one of: critical, error, warning, info)"
                        .to_owned(),
                );
            }
        }
        "acknowledge" | "resolve" => {
            if dedup.is_none() {
                errors.push(format!("'dedup_key' is required for '{action}' events"));
            }
        }
        "" => errors.push("'event_action' is missing or blank".to_owned()),
        other => errors.push(format!(
            "'event_action' is invalid ('{other}'; must be trigger, acknowledge or resolve)"
        )),
    }
    if errors.is_empty() {
        Ok(action)
    } else {
        Err(errors)
    }
}

async fn enqueue(
    State(shared): State<Arc<Shared>>,
    Extension(conn): Extension<Conn>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = serde_json::from_slice::<Value>(&body).ok();
    let index = shared.events.push(PagerDutyEvent {
        body: parsed.clone().unwrap_or(Value::Null),
        headers: header_map(&headers),
        status: 0,
        dedup_key: None,
        at: Instant::now(),
    });
    let set = |status: u16, dedup_key: Option<String>| {
        shared.events.update(|all| {
            if let Some(e) = all.get_mut(index) {
                e.status = status;
                e.dedup_key = dedup_key;
            }
        });
    };
    if let Some(resp) = shared.faults.apply(KEY, &PAGERDUTY, &conn).await {
        set(resp.status().as_u16(), None);
        return resp;
    }
    let Some(body) = parsed.filter(Value::is_object) else {
        set(400, None);
        return invalid(vec!["Event object is not valid JSON".to_owned()]);
    };
    let action = match validate(&body) {
        Ok(action) => action,
        Err(errors) => {
            set(400, None);
            return invalid(errors);
        }
    };
    let dedup_key = body
        .get("dedup_key")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let n = shared.next_key.fetch_add(1, Ordering::Relaxed);
            format!("{:032x}", n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        });
    let state = match action {
        "trigger" => AlertState::Triggered,
        "acknowledge" => AlertState::Acknowledged,
        _ => AlertState::Resolved,
    };
    lock(&shared.alerts).insert(dedup_key.clone(), state);
    set(202, Some(dedup_key.clone()));
    (
        StatusCode::ACCEPTED,
        Json(json!({"status": "success", "message": "Event processed", "dedup_key": dedup_key})),
    )
        .into_response()
}

/// A string that is not blank.
fn text(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).filter(|s| !s.trim().is_empty())
}

/// What the real service checks of a change event; the event or the error messages.
fn validate_change(body: &Value) -> Result<ChangeEvent, Vec<String>> {
    let mut errors = Vec::new();
    let routing_key = text(body.get("routing_key"));
    if routing_key.is_none() {
        errors.push("'routing_key' is missing or blank".to_owned());
    }
    let payload = body.get("payload").filter(|p| p.is_object());
    let summary = text(payload.and_then(|p| p.get("summary")));
    match summary {
        None => errors.push("'payload.summary' is missing or blank".to_owned()),
        Some(s) if s.chars().count() > SUMMARY_MAX => errors.push(format!(
            "'payload.summary' is too long (maximum is {SUMMARY_MAX} characters)"
        )),
        Some(_) => {}
    }
    let optional = |name: &str, errors: &mut Vec<String>| -> Option<String> {
        match payload.and_then(|p| p.get(name)) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                errors.push(format!("'payload.{name}' must be a string"));
                None
            }
        }
    };
    let timestamp = optional("timestamp", &mut errors);
    let source = optional("source", &mut errors);
    let custom_details = payload
        .and_then(|p| p.get("custom_details"))
        .cloned()
        .unwrap_or(Value::Null);
    let mut links = Vec::new();
    match body.get("links") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for (i, link) in list.iter().enumerate() {
                match text(link.get("href")) {
                    Some(href) => links.push((
                        href.to_owned(),
                        link.get("text").and_then(Value::as_str).map(str::to_owned),
                    )),
                    None => errors.push(format!("'links[{i}].href' is missing or blank")),
                }
            }
        }
        Some(_) => errors.push("'links' must be an array".to_owned()),
    }
    match (routing_key, summary) {
        (Some(routing_key), Some(summary)) if errors.is_empty() => Ok(ChangeEvent {
            routing_key: routing_key.to_owned(),
            summary: summary.to_owned(),
            timestamp,
            source,
            custom_details,
            links,
        }),
        _ => Err(errors),
    }
}

async fn change_enqueue(
    State(shared): State<Arc<Shared>>,
    Extension(conn): Extension<Conn>,
    body: Bytes,
) -> Response {
    shared.change_requests.fetch_add(1, Ordering::SeqCst);
    if let Some(resp) = shared.faults.apply(CHANGE_KEY, &PAGERDUTY, &conn).await {
        return resp;
    }
    let Some(body) = serde_json::from_slice::<Value>(&body)
        .ok()
        .filter(Value::is_object)
    else {
        return invalid(vec!["Event object is not valid JSON".to_owned()]);
    };
    match validate_change(&body) {
        Ok(event) => {
            shared.changes.push(event);
            (
                StatusCode::ACCEPTED,
                Json(json!({"status": "success", "message": "Change event processed"})),
            )
                .into_response()
        }
        Err(errors) => invalid(errors),
    }
}
