//! A Grafana annotations stand-in: `POST /api/annotations` and `GET /api/annotations`, validated like the real HTTP API, recorded and scriptable to fail.
//!
//! Requests need `Authorization: Bearer <token>` (any non-empty token is accepted
//! and recorded; else 401 `{"message":"Unauthorized"}`). Answers as Grafana does:
//! `200 {"message":"Annotation added","id":N}`; a body that does not bind (not
//! JSON, or a field of the wrong type) 400 `{"message":"bad request data"}`; an
//! empty or missing `text` 400 `{"message":"Failed to save annotation"}`. A missing
//! `time` is taken as now, a missing `timeEnd` as `time` (in what `GET` shows).
//! `GET` lists the annotations having every `tags=` given (any of them with
//! `matchAny=true`), newest first. Scripted failures: [`Scripted::Status`] answers
//! `{"message":…}` with the status's reason, [`Scripted::RateLimited`] a 429 with
//! `Retry-After`, [`Scripted::Error`] a 400 naming the error; none of them records
//! anything. [`SimGrafana::fail_all`] holds Grafana down (every request 500).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use serde_json::{json, Map, Value};
use tokio::time::Instant;

use crate::fault::{Dialect, Faults, Scripted};
use crate::listen::{self, Conn, Listener};
use crate::record::{Log, DEFAULT_WAIT};
use crate::wire::parse_form;
use crate::{epoch_ms, StandInError};

const KEY: &str = "annotations";

const GRAFANA: Dialect = Dialect {
    status: |status| message(status, status.canonical_reason().unwrap_or("Error")),
    rate_limited: || message(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests"),
    error: |e| message(StatusCode::BAD_REQUEST, e),
};

/// Grafana's error shape, `{"message":…}`.
fn message(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({"message": text}))).into_response()
}

fn bad_request_data() -> Response {
    message(StatusCode::BAD_REQUEST, "bad request data")
}

/// One annotation the stand-in saved.
#[derive(Debug, Clone, PartialEq)]
pub struct Annotation {
    /// The id answered (1, 2, …).
    pub id: u64,
    /// `time`, milliseconds since the epoch (when it arrived, if not sent).
    pub time: i64,
    /// `timeEnd`, as sent (a region annotation when it differs from `time`).
    pub time_end: Option<i64>,
    /// `tags`, as sent.
    pub tags: Vec<String>,
    /// `text`.
    pub text: String,
    /// `dashboardUID`, as sent (organisation-wide when `None`).
    pub dashboard_uid: Option<String>,
    /// `panelId`, as sent.
    pub panel_id: Option<i64>,
    /// The token from `Authorization: Bearer`.
    pub token: String,
}

struct Shared {
    annotations: Log<Annotation>,
    faults: Faults,
    fail_all: AtomicBool,
    requests: AtomicUsize,
    wait_timeout: Duration,
}

/// A running Grafana annotations stand-in.
pub struct SimGrafana {
    shared: Arc<Shared>,
    server: Listener,
}

impl SimGrafana {
    /// Starts on a free loopback port.
    pub async fn start() -> Result<Self, StandInError> {
        Self::start_on(0).await
    }

    /// Starts on `127.0.0.1:port` (0 = any free port).
    pub async fn start_on(port: u16) -> Result<Self, StandInError> {
        let (server, shared) = listen::start(port, |_| {
            let shared = Arc::new(Shared {
                annotations: Log::default(),
                faults: Faults::default(),
                fail_all: AtomicBool::new(false),
                requests: AtomicUsize::new(0),
                wait_timeout: DEFAULT_WAIT,
            });
            let router = Router::new()
                .route("/api/annotations", post(create).get(list))
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

    /// `http://127.0.0.1:port`, Grafana's base URL.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Every annotation saved so far, oldest first.
    pub fn annotations(&self) -> Vec<Annotation> {
        self.shared.annotations.all()
    }

    /// Waits (at most [`DEFAULT_WAIT`]) until `n` annotations were saved; returns all
    /// there are then, possibly fewer than `n`.
    pub async fn wait_for_annotations(&self, n: usize) -> Vec<Annotation> {
        let deadline = Instant::now() + self.shared.wait_timeout;
        loop {
            let all = self.shared.annotations.all();
            if all.len() >= n || Instant::now() >= deadline {
                return all;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// How many requests to `/api/annotations` arrived, whatever they were answered.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Queues scripted answers (`POST` and `GET`), used in order before the default.
    pub fn script(&self, answers: impl IntoIterator<Item = Scripted>) {
        self.shared.faults.push(KEY, answers);
    }

    /// While `true`, every request is answered 500 (scripted answers wait).
    pub fn fail_all(&self, on: bool) {
        self.shared.fail_all.store(on, Ordering::SeqCst);
    }

    /// Grafana becomes unreachable (port closed, connections cut).
    pub async fn stop_listening(&self) {
        self.server.stop().await;
    }

    /// Grafana is back on the same port.
    pub async fn listen_again(&self) -> Result<(), StandInError> {
        self.server.resume().await
    }
}

/// Outage, scripted answer and authentication, in that order: `Err(answer)` or the token.
async fn gate(shared: &Shared, conn: &Conn, headers: &HeaderMap) -> Result<String, Response> {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    if shared.fail_all.load(Ordering::SeqCst) {
        return Err(message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
        ));
    }
    if let Some(resp) = shared.faults.apply(KEY, &GRAFANA, conn).await {
        return Err(resp);
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| message(StatusCode::UNAUTHORIZED, "Unauthorized"))
}

/// A field that must be absent, `null` or of one type; `Err` when it is another.
fn field<'a, T>(
    obj: &'a Map<String, Value>,
    name: &str,
    get: impl Fn(&'a Value) -> Option<T>,
) -> Result<Option<T>, ()> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => get(v).map(Some).ok_or(()),
    }
}

/// The fields of a `POST /api/annotations`.
struct Posted {
    time: Option<i64>,
    time_end: Option<i64>,
    tags: Vec<String>,
    text: String,
    dashboard_uid: Option<String>,
    panel_id: Option<i64>,
}

/// The fields of a `POST`; `Err` when the body does not bind (Grafana's 400).
fn bind(body: &[u8]) -> Result<Posted, ()> {
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body) else {
        return Err(());
    };
    let tags = field(&obj, "tags", |v| {
        v.as_array()?
            .iter()
            .map(|t| t.as_str().map(str::to_owned))
            .collect::<Option<Vec<String>>>()
    })?;
    Ok(Posted {
        time: field(&obj, "time", Value::as_i64)?,
        time_end: field(&obj, "timeEnd", Value::as_i64)?,
        tags: tags.unwrap_or_default(),
        text: field(&obj, "text", |v| v.as_str().map(str::to_owned))?.unwrap_or_default(),
        dashboard_uid: field(&obj, "dashboardUID", |v| v.as_str().map(str::to_owned))?,
        panel_id: field(&obj, "panelId", Value::as_i64)?,
    })
}

async fn create(
    State(shared): State<Arc<Shared>>,
    Extension(conn): Extension<Conn>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token = match gate(&shared, &conn, &headers).await {
        Ok(token) => token,
        Err(resp) => return resp,
    };
    let Ok(posted) = bind(&body) else {
        return bad_request_data();
    };
    if posted.text.is_empty() {
        return message(StatusCode::BAD_REQUEST, "Failed to save annotation");
    }
    let time = posted
        .time
        .filter(|t| *t != 0)
        .unwrap_or_else(|| i64::try_from(epoch_ms(SystemTime::now())).unwrap_or(i64::MAX));
    let mut id = 0;
    shared.annotations.update(|all| {
        id = all.len() as u64 + 1;
        all.push(Annotation {
            id,
            time,
            time_end: posted.time_end,
            tags: posted.tags,
            text: posted.text,
            dashboard_uid: posted.dashboard_uid,
            panel_id: posted.panel_id,
            token,
        });
    });
    Json(json!({"message": "Annotation added", "id": id})).into_response()
}

async fn list(
    State(shared): State<Arc<Shared>>,
    Extension(conn): Extension<Conn>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(resp) = gate(&shared, &conn, &headers).await {
        return resp;
    }
    let query = parse_form(uri.query().unwrap_or(""));
    let values = |name: &str| -> Vec<&str> {
        query
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let tags = values("tags");
    let match_any = values("matchAny").first().is_some_and(|v| *v == "true");
    let dashboard = values("dashboardUID").first().map(|v| (*v).to_owned());
    let limit = values("limit")
        .first()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|l| *l > 0)
        .unwrap_or(100);
    let has = |a: &Annotation, t: &str| a.tags.iter().any(|x| x == t);
    let found: Vec<Value> = shared
        .annotations
        .all()
        .into_iter()
        .rev()
        .filter(|a| {
            tags.is_empty()
                || if match_any {
                    tags.iter().any(|t| has(a, t))
                } else {
                    tags.iter().all(|t| has(a, t))
                }
        })
        .filter(|a| dashboard.is_none() || a.dashboard_uid == dashboard)
        .take(limit)
        .map(|a| {
            json!({
                "id": a.id,
                "alertId": 0,
                "dashboardId": 0,
                "dashboardUID": a.dashboard_uid,
                "panelId": a.panel_id.unwrap_or(0),
                "userId": 1,
                "login": "crossroads",
                "newState": "",
                "prevState": "",
                "time": a.time,
                "timeEnd": a.time_end.unwrap_or(a.time),
                "text": a.text,
                "tags": a.tags,
                "data": {},
            })
        })
        .collect();
    Json(found).into_response()
}
