//! A simulated service instance: `GET /health`, `GET /tasks` and `GET /metrics`, with
//! behaviour (healthy, unhealthy, slow, hanging), failing application requests and
//! version switchable at run time.
//!
//! Every answer carries the instance's name in an `x-instance` header, so a client
//! behind a load balancer can tell which member answered. `/metrics` is in the
//! Prometheus text format: `http_requests_total{code="…"}` counts the answers on the
//! application paths (every path but `/health` and `/metrics`), with `200` and `500`
//! there from the start, as instrumented services initialise the codes they know.
//! Labels naming the pool or member are not the instance's business: a scrape
//! config adds them per target.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;
use tokio::sync::watch;

use crate::ServerHandle;

/// How the instance answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// `200 {"status":"ok",…}`.
    Healthy,
    /// `503 {"status":"degraded",…}`.
    Unhealthy,
    /// Healthy, but only after this delay.
    Slow(Duration),
    /// Accepts the connection and never answers (until the simulator shuts down).
    Hang,
}

/// State of one task on `/tasks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    /// Being worked on.
    Running,
    /// Waiting.
    Queued,
    /// Finished.
    Done,
}

/// One task on `/tasks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Task {
    /// Task id.
    pub id: u64,
    /// Human name.
    pub name: String,
    /// State.
    pub state: TaskState,
    /// Percent done (0–100).
    pub progress: u8,
}

impl Task {
    /// A task with the given fields.
    pub fn new(id: u64, name: impl Into<String>, state: TaskState, progress: u8) -> Self {
        Self {
            id,
            name: name.into(),
            state,
            progress,
        }
    }
}

struct Inner {
    name: String,
    version: String,
    behaviour: Behaviour,
    tasks: Vec<Task>,
    started: Instant,
    health_hits: u64,
    /// Application requests answer 500 (while `/health` follows `behaviour`).
    app_errors: bool,
    /// Answers on the application paths, by status code.
    answered: BTreeMap<u16, u64>,
}

/// A cheap, cloneable remote control for a simulated instance (usable from hooks,
/// e.g. a simulated Jenkins deploy that bumps the version).
#[derive(Clone)]
pub struct InstanceControl {
    inner: Arc<Mutex<Inner>>,
}

impl InstanceControl {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock only means a panicking test thread; the data is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes how the instance answers from now on.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        self.lock().behaviour = behaviour;
    }

    /// Current behaviour.
    pub fn behaviour(&self) -> Behaviour {
        self.lock().behaviour
    }

    /// Sets the version reported by `/health`.
    pub fn set_version(&self, version: impl Into<String>) {
        self.lock().version = version.into();
    }

    /// The version reported by `/health`.
    pub fn version(&self) -> String {
        self.lock().version.clone()
    }

    /// A simulated deploy: bumps the last number in the version (`1.4.2` → `1.4.3`,
    /// `blue` → `blue.1`), resets uptime, and returns the new version.
    pub fn deploy(&self) -> String {
        let mut inner = self.lock();
        inner.version = bump(&inner.version);
        inner.started = Instant::now();
        inner.version.clone()
    }

    /// A simulated restart: uptime starts again from zero.
    pub fn restart(&self) {
        self.lock().started = Instant::now();
    }

    /// Replaces the tasks listed on `/tasks`.
    pub fn set_tasks(&self, tasks: Vec<Task>) {
        self.lock().tasks = tasks;
    }

    /// The instance's name (shown in `/health` as `instance`).
    pub fn name(&self) -> String {
        self.lock().name.clone()
    }

    /// How many `/health` requests arrived so far (including hanging ones).
    pub fn health_hits(&self) -> u64 {
        self.lock().health_hits
    }

    /// From now on, every request on an application path (all but `/health` and
    /// `/metrics`) answers `500` (`true`) or is served normally again (`false`);
    /// `/health` keeps following the behaviour, so health checks still pass.
    pub fn set_app_errors(&self, failing: bool) {
        self.lock().app_errors = failing;
    }

    /// Whether application requests answer `500`.
    pub fn app_errors(&self) -> bool {
        self.lock().app_errors
    }

    /// How many application requests were answered with `status` so far (what
    /// `/metrics` reports as `http_requests_total{code="<status>"}`).
    pub fn answered(&self, status: u16) -> u64 {
        self.lock().answered.get(&status).copied().unwrap_or(0)
    }
}

fn bump(version: &str) -> String {
    let digits = version
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .count();
    if digits == 0 {
        return format!("{version}.1");
    }
    let (head, tail) = version.split_at(version.len() - digits);
    match tail.parse::<u64>() {
        Ok(n) => format!("{head}{}", n.saturating_add(1)),
        Err(_) => format!("{version}.1"),
    }
}

/// A running simulated instance.
pub struct SimInstance {
    control: InstanceControl,
    server: ServerHandle,
}

#[derive(Clone)]
struct AppState {
    control: InstanceControl,
    stop: watch::Receiver<bool>,
}

impl SimInstance {
    /// Starts a healthy instance on a free loopback port.
    pub async fn start(name: &str, version: &str) -> io::Result<Self> {
        Self::start_on(0, name, version).await
    }

    /// Starts a healthy instance on `127.0.0.1:port` (0 = any free port), with a few
    /// sample tasks.
    pub async fn start_on(port: u16, name: &str, version: &str) -> io::Result<Self> {
        let control = InstanceControl {
            inner: Arc::new(Mutex::new(Inner {
                name: name.to_owned(),
                version: version.to_owned(),
                behaviour: Behaviour::Healthy,
                tasks: sample_tasks(),
                started: Instant::now(),
                health_hits: 0,
                app_errors: false,
                answered: BTreeMap::from([(200, 0), (500, 0)]),
            })),
        };
        let listener = ServerHandle::bind(port).await?;
        let (stop, stop_rx) = watch::channel(false);
        let state = AppState {
            control: control.clone(),
            stop: stop_rx,
        };
        let router = Router::new()
            .route("/health", get(health))
            .route("/metrics", get(metrics))
            .route("/tasks", get(tasks))
            .layer(middleware::from_fn_with_state(state.clone(), answer))
            .with_state(state);
        let server = ServerHandle::spawn(listener, router, stop)?;
        Ok(Self { control, server })
    }

    /// A remote control sharing this instance's state.
    pub fn control(&self) -> InstanceControl {
        self.control.clone()
    }

    /// Bound address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Base URL, e.g. `http://127.0.0.1:18081`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Stops the server; the port is free afterwards (the instance is "down").
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

impl std::ops::Deref for SimInstance {
    type Target = InstanceControl;
    fn deref(&self) -> &InstanceControl {
        &self.control
    }
}

fn sample_tasks() -> Vec<Task> {
    vec![
        Task::new(1, "reindex-campaigns", TaskState::Running, 42),
        Task::new(2, "sync-ad-accounts", TaskState::Queued, 0),
        Task::new(3, "nightly-report", TaskState::Done, 100),
    ]
}

/// Applies the current behaviour: waits if slow, never returns if hanging (until
/// shutdown); returns whether the instance is healthy.
async fn behave(state: &AppState) -> Result<bool, Response> {
    let behaviour = state.control.behaviour();
    match behaviour {
        Behaviour::Healthy => Ok(true),
        Behaviour::Unhealthy => Ok(false),
        Behaviour::Slow(delay) => {
            let mut stop = state.stop.clone();
            tokio::select! {
                _ = tokio::time::sleep(delay) => Ok(true),
                _ = stop.wait_for(|s| *s) => Err(shutting_down()),
            }
        }
        Behaviour::Hang => {
            let mut stop = state.stop.clone();
            let _ = stop.wait_for(|s| *s).await;
            Err(shutting_down())
        }
    }
}

fn shutting_down() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"status": "shutting down"})),
    )
        .into_response()
}

/// Paths that are not the application's: not failed on purpose, not counted.
const NOT_APPLICATION: [&str; 2] = ["/health", "/metrics"];

/// Around every request: application requests fail on purpose when asked to and are
/// counted by status; every answer names the instance in `x-instance`.
async fn answer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let application = !NOT_APPLICATION.contains(&request.uri().path());
    let (failing, name) = {
        let inner = state.control.lock();
        (inner.app_errors, inner.name.clone())
    };
    let mut response = if application && failing {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"status": "error", "error": "failing on purpose", "instance": name})),
        )
            .into_response()
    } else {
        next.run(request).await
    };
    if application {
        let mut inner = state.control.lock();
        *inner
            .answered
            .entry(response.status().as_u16())
            .or_insert(0) += 1;
    }
    if let Ok(value) = HeaderValue::from_str(&name) {
        response.headers_mut().insert("x-instance", value);
    }
    response
}

/// `http_requests_total` in the Prometheus text exposition format (version 0.0.4).
async fn metrics(State(state): State<AppState>) -> Response {
    let answered = state.control.lock().answered.clone();
    let mut text = String::from(
        "# HELP http_requests_total Requests answered on the application paths, by status code.\n\
         # TYPE http_requests_total counter\n",
    );
    for (code, count) in answered {
        let _ = writeln!(text, "http_requests_total{{code=\"{code}\"}} {count}");
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn health(State(state): State<AppState>) -> Response {
    state.control.lock().health_hits += 1;
    let healthy = match behave(&state).await {
        Ok(h) => h,
        Err(resp) => return resp,
    };
    let (name, version, uptime) = {
        let inner = state.control.lock();
        (
            inner.name.clone(),
            inner.version.clone(),
            inner.started.elapsed().as_secs(),
        )
    };
    if healthy {
        Json(json!({"status": "ok", "version": version, "uptime_s": uptime, "instance": name}))
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "degraded", "version": version, "uptime_s": uptime, "instance": name})),
        )
            .into_response()
    }
}

async fn tasks(State(state): State<AppState>) -> Response {
    if let Err(resp) = behave(&state).await {
        return resp;
    }
    let tasks = state.control.lock().tasks.clone();
    Json(json!({ "tasks": tasks })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deploy_bumps_the_last_number() {
        assert_eq!(bump("1.4.2"), "1.4.3");
        assert_eq!(bump("2024.9"), "2024.10");
        assert_eq!(bump("blue"), "blue.1");
    }

    #[tokio::test]
    async fn metrics_count_application_answers_by_code_and_errors_leave_health_alone() {
        let sim = SimInstance::start("green", "1.0.0").await.expect("start");
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let get = |path: &str| client.get(format!("{}{path}", sim.url())).send();
        let tasks = get("/tasks").await.expect("tasks");
        assert_eq!(tasks.status(), 200);
        assert_eq!(tasks.headers()["x-instance"], "green");
        sim.set_app_errors(true);
        assert_eq!(get("/tasks").await.expect("tasks").status(), 500);
        assert_eq!(get("/nowhere").await.expect("other").status(), 500);
        let health = get("/health").await.expect("health");
        assert_eq!(health.status(), 200, "health checks still pass");
        assert_eq!(health.headers()["x-instance"], "green");
        let metrics = get("/metrics").await.expect("metrics");
        assert_eq!(metrics.status(), 200);
        assert!(metrics.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain; version=0.0.4"));
        let text = metrics.text().await.expect("text");
        assert!(
            text.contains("# TYPE http_requests_total counter\n")
                && text.contains("http_requests_total{code=\"200\"} 1\n")
                && text.contains("http_requests_total{code=\"500\"} 2\n"),
            "health and metrics are not counted: {text}"
        );
        assert_eq!((sim.answered(200), sim.answered(500)), (1, 2));
        sim.shutdown().await;
    }
}
