//! A simulated service instance: `GET /health` and `GET /tasks`, with behaviour
//! (healthy, unhealthy, slow, hanging) and version switchable at run time.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
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
            .route("/tasks", get(tasks))
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
    use super::bump;

    #[test]
    fn deploy_bumps_the_last_number() {
        assert_eq!(bump("1.4.2"), "1.4.3");
        assert_eq!(bump("2024.9"), "2024.10");
        assert_eq!(bump("blue"), "blue.1");
    }
}
