//! A generic webhook receiver: records every POST (JSON body and headers) at any path, answers `200 ok`, scriptable to fail.
//!
//! Scripted failures: [`Scripted::Status`] answers that status with a short text
//! body, [`Scripted::RateLimited`] a 429 with `Retry-After`, [`Scripted::Error`] a
//! 400 `{"error":…}`. [`WebhookStandIn::set_answer`] changes the default answer.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json, Router};
use serde_json::{json, Value};

use crate::fault::{Dialect, Faults, Scripted};
use crate::listen::{self, Conn, Listener};
use crate::record::{header_map, Log, DEFAULT_WAIT};
use crate::StandInError;

const KEY: &str = "hook";

const WEBHOOK: Dialect = Dialect {
    status: |status| (status, status.canonical_reason().unwrap_or("error")).into_response(),
    rate_limited: || "rate limited".into_response(),
    error: |e| (StatusCode::BAD_REQUEST, Json(json!({"error": e}))).into_response(),
};

/// One request the receiver got.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// HTTP method (`POST` normally).
    pub method: String,
    /// Path and query, e.g. `/hooks/deploys?x=1`.
    pub path: String,
    /// Headers, names lower-cased.
    pub headers: BTreeMap<String, String>,
    /// The body parsed as JSON (`null` when it is not JSON).
    pub body: Value,
    /// The body exactly as received.
    pub raw: Vec<u8>,
    /// When it arrived.
    pub at: Instant,
}

impl Delivery {
    /// A header's value (name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

struct Shared {
    deliveries: Log<Delivery>,
    faults: Faults,
    answer: Mutex<(u16, String)>,
    wait_timeout: Duration,
}

/// A running webhook receiver.
pub struct WebhookStandIn {
    shared: Arc<Shared>,
    server: Listener,
}

impl WebhookStandIn {
    /// Starts on a free loopback port.
    pub async fn start() -> Result<Self, StandInError> {
        Self::start_on(0).await
    }

    /// Starts on `127.0.0.1:port` (0 = any free port).
    pub async fn start_on(port: u16) -> Result<Self, StandInError> {
        let (server, shared) = listen::start(port, |_| {
            let shared = Arc::new(Shared {
                deliveries: Log::default(),
                faults: Faults::default(),
                answer: Mutex::new((200, "ok".to_owned())),
                wait_timeout: DEFAULT_WAIT,
            });
            let router = Router::new().fallback(receive).with_state(shared.clone());
            (router, shared)
        })
        .await?;
        Ok(Self { shared, server })
    }

    /// Bound address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `http://127.0.0.1:port`; any path under it receives.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Every request so far, oldest first.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.deliveries.all()
    }

    /// Waits until `n` requests arrived; returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Delivery> {
        let what = format!("{n} webhook delivery(ies)");
        self.shared
            .deliveries
            .wait(self.shared.wait_timeout, &what, |all| {
                (all.len() >= n).then(|| all.to_vec())
            })
            .await
    }

    /// Waits for the first request matching `pred`.
    pub async fn wait_for_one(&self, pred: impl Fn(&Delivery) -> bool) -> Delivery {
        self.shared
            .deliveries
            .wait(
                self.shared.wait_timeout,
                "a matching webhook delivery",
                |all| all.iter().find(|d| pred(d)).cloned(),
            )
            .await
    }

    /// Queues scripted answers, used in order before the default.
    pub fn script(&self, answers: impl IntoIterator<Item = Scripted>) {
        self.shared.faults.push(KEY, answers);
    }

    /// Sets the default answer (status and text body; initially `200 ok`).
    pub fn set_answer(&self, status: u16, body: &str) {
        *lock(&self.shared.answer) = (status, body.to_owned());
    }

    /// The receiver becomes unreachable (port closed, connections cut).
    pub async fn stop_listening(&self) {
        self.server.stop().await;
    }

    /// The receiver is back on the same port.
    pub async fn listen_again(&self) -> Result<(), StandInError> {
        self.server.resume().await
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    Extension(conn): Extension<Conn>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.deliveries.push(Delivery {
        method: method.to_string(),
        path: uri
            .path_and_query()
            .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned()),
        headers: header_map(&headers),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        raw: body.to_vec(),
        at: Instant::now(),
    });
    if let Some(resp) = shared.faults.apply(KEY, &WEBHOOK, &conn).await {
        return resp;
    }
    let (status, text) = lock(&shared.answer).clone();
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    (status, text).into_response()
}
