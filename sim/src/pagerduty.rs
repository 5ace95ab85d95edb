//! A PagerDuty Events API v2 stand-in: `POST /v2/enqueue`, validated like the real service, recorded and scriptable to fail.
//!
//! Answers as PagerDuty does: `202 {"status":"success","message":"Event processed","dedup_key":…}`,
//! or `400 {"status":"invalid event","message":"Event object is invalid","errors":[…]}`.
//! Scripted failures: [`Scripted::Status`] answers `{"status":"error","message":…}`,
//! [`Scripted::RateLimited`] a 429 `{"status":"throttle event",…}` with `Retry-After`,
//! [`Scripted::Error`] a 400 "invalid event" naming the error.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
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
                wait_timeout: DEFAULT_WAIT,
            });
            let router = Router::new()
                .route("/v2/enqueue", post(enqueue))
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

    /// Every request so far (valid or not), oldest first.
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

    /// Where the alert with `dedup_key` stands.
    pub fn alert(&self, dedup_key: &str) -> Option<AlertState> {
        lock(&self.shared.alerts).get(dedup_key).copied()
    }

    /// Queues scripted answers, used in order before the default.
    pub fn script(&self, answers: impl IntoIterator<Item = Scripted>) {
        self.shared.faults.push(KEY, answers);
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
