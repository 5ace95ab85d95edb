//! A simulated HTTP traffic switch: `GET /pools/{env}/{pool}` → `{"active":"blue"}`,
//! `POST /pools/{env}/{pool}` with `{"active":"green"}` moves traffic, and
//! `POST /pools/{env}/{pool}/weights` with `{"blue":90,"green":10}` shares it out by
//! weight; the `GET` answer's `weights` shows the weights in force.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::ServerHandle;

/// One pool as the switch knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSetup {
    /// Environment name.
    pub env: String,
    /// Pool name.
    pub pool: String,
    /// Members that may be made active.
    pub members: Vec<String>,
    /// Member active at start.
    pub active: String,
}

impl PoolSetup {
    /// A pool with `members`, `active` taking traffic at start.
    pub fn new(env: &str, pool: &str, members: &[&str], active: &str) -> Self {
        Self {
            env: env.to_owned(),
            pool: pool.to_owned(),
            members: members.iter().map(|m| (*m).to_owned()).collect(),
            active: active.to_owned(),
        }
    }
}

/// How the switch treats writes (for testing failure handling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WriteMode {
    /// Writes apply.
    #[default]
    Apply,
    /// Writes answer `200` but change nothing (a switch that silently does not take).
    Ignore,
    /// Writes answer `500`.
    Fail,
    /// Writes apply at once but are answered only after this long (a switch slow to
    /// confirm what it did: the caller can die between the change and the answer).
    ApplySlowly(std::time::Duration),
}

/// One request the switch received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchCall {
    /// `GET` or `POST`.
    pub method: String,
    /// Environment in the path.
    pub env: String,
    /// Pool in the path.
    pub pool: String,
    /// The JSON body of a `POST` (or `null` if unreadable).
    pub body: Option<Value>,
    /// When the switch received it.
    pub at: std::time::Instant,
}

struct Pool {
    members: Vec<String>,
    active: String,
    /// Weight per member; all on `active` unless a split was set.
    weights: BTreeMap<String, u64>,
}

fn all_on(members: &[String], active: &str) -> BTreeMap<String, u64> {
    members
        .iter()
        .map(|m| (m.clone(), if m == active { 100 } else { 0 }))
        .collect()
}

struct Inner {
    pools: BTreeMap<(String, String), Pool>,
    mode: WriteMode,
    calls: Vec<SwitchCall>,
}

/// A running simulated switch.
pub struct SimSwitch {
    inner: Arc<Mutex<Inner>>,
    server: ServerHandle,
}

impl SimSwitch {
    /// Starts a switch on a free loopback port.
    pub async fn start(pools: Vec<PoolSetup>) -> io::Result<Self> {
        Self::start_on(0, pools).await
    }

    /// Starts a switch on `127.0.0.1:port` (0 = any free port).
    pub async fn start_on(port: u16, pools: Vec<PoolSetup>) -> io::Result<Self> {
        let pools = pools
            .into_iter()
            .map(|p| {
                (
                    (p.env, p.pool),
                    Pool {
                        weights: all_on(&p.members, &p.active),
                        members: p.members,
                        active: p.active,
                    },
                )
            })
            .collect();
        let inner = Arc::new(Mutex::new(Inner {
            pools,
            mode: WriteMode::Apply,
            calls: Vec::new(),
        }));
        let listener = ServerHandle::bind(port).await?;
        let (stop, _) = watch::channel(false);
        let router = Router::new()
            .route("/pools/{env}/{pool}", get(read).post(write))
            .route(
                "/pools/{env}/{pool}/weights",
                axum::routing::post(write_weights),
            )
            .with_state(inner.clone());
        let server = ServerHandle::spawn(listener, router, stop)?;
        Ok(Self { inner, server })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// Bound address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Base URL, e.g. `http://127.0.0.1:18070`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The active member of a pool, if the pool exists.
    pub fn active(&self, env: &str, pool: &str) -> Option<String> {
        self.lock()
            .pools
            .get(&(env.to_owned(), pool.to_owned()))
            .map(|p| p.active.clone())
    }

    /// Sets the active member directly (as if someone switched by hand).
    pub fn set_active(&self, env: &str, pool: &str, member: &str) {
        if let Some(p) = self
            .lock()
            .pools
            .get_mut(&(env.to_owned(), pool.to_owned()))
        {
            p.active = member.to_owned();
            p.weights = all_on(&p.members, member);
        }
    }

    /// The weights in force in a pool, if the pool exists.
    pub fn weights(&self, env: &str, pool: &str) -> Option<BTreeMap<String, u64>> {
        self.lock()
            .pools
            .get(&(env.to_owned(), pool.to_owned()))
            .map(|p| p.weights.clone())
    }

    /// Changes how writes are treated from now on.
    pub fn set_write_mode(&self, mode: WriteMode) {
        self.lock().mode = mode;
    }

    /// Every request received so far, oldest first.
    pub fn calls(&self) -> Vec<SwitchCall> {
        self.lock().calls.clone()
    }

    /// Stops the server.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

/// How long a write waits before its answer.
fn slowness(inner: &Mutex<Inner>) -> std::time::Duration {
    match lock(inner).mode {
        WriteMode::ApplySlowly(d) => d,
        _ => std::time::Duration::ZERO,
    }
}

fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    inner.lock().unwrap_or_else(|p| p.into_inner())
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

async fn read(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path((env, pool)): Path<(String, String)>,
) -> Response {
    let mut inner = lock(&inner);
    inner.calls.push(SwitchCall {
        method: Method::GET.to_string(),
        env: env.clone(),
        pool: pool.clone(),
        body: None,
        at: std::time::Instant::now(),
    });
    match inner.pools.get(&(env.clone(), pool.clone())) {
        Some(p) => Json(json!({ "active": p.active, "members": p.members, "weights": p.weights }))
            .into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no pool {env}/{pool}")),
    }
}

async fn write(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(path): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let slow = slowness(&inner);
    let response = write_now(&inner, path, &body);
    if !slow.is_zero() {
        tokio::time::sleep(slow).await;
    }
    response
}

fn write_now(inner: &Mutex<Inner>, (env, pool): (String, String), body: &Bytes) -> Response {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let mut inner = lock(inner);
    inner.calls.push(SwitchCall {
        method: Method::POST.to_string(),
        env: env.clone(),
        pool: pool.clone(),
        body: Some(parsed.clone().unwrap_or(Value::Null)),
        at: std::time::Instant::now(),
    });
    let mode = inner.mode;
    let Some(p) = inner.pools.get_mut(&(env.clone(), pool.clone())) else {
        return error(StatusCode::NOT_FOUND, format!("no pool {env}/{pool}"));
    };
    let Some(target) = parsed
        .as_ref()
        .and_then(|v| v.get("active"))
        .and_then(Value::as_str)
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "expected a JSON body like {\"active\": \"green\"}".into(),
        );
    };
    if !p.members.iter().any(|m| m == target) {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "{target} is not a member of {env}/{pool} (members: {})",
                p.members.join(", ")
            ),
        );
    }
    match mode {
        WriteMode::Apply | WriteMode::ApplySlowly(_) => {
            p.active = target.to_owned();
            p.weights = all_on(&p.members, target);
        }
        WriteMode::Ignore => {}
        WriteMode::Fail => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "switch backend failure".into(),
            )
        }
    }
    Json(json!({ "active": p.active })).into_response()
}

async fn write_weights(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(path): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let slow = slowness(&inner);
    let response = write_weights_now(&inner, path, &body);
    if !slow.is_zero() {
        tokio::time::sleep(slow).await;
    }
    response
}

fn write_weights_now(
    inner: &Mutex<Inner>,
    (env, pool): (String, String),
    body: &Bytes,
) -> Response {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let mut inner = lock(inner);
    inner.calls.push(SwitchCall {
        method: Method::POST.to_string(),
        env: env.clone(),
        pool: pool.clone(),
        body: Some(parsed.clone().unwrap_or(Value::Null)),
        at: std::time::Instant::now(),
    });
    let mode = inner.mode;
    let Some(p) = inner.pools.get_mut(&(env.clone(), pool.clone())) else {
        return error(StatusCode::NOT_FOUND, format!("no pool {env}/{pool}"));
    };
    let Some(object) = parsed.as_ref().and_then(Value::as_object) else {
        return error(
            StatusCode::BAD_REQUEST,
            "expected a JSON body like {\"blue\": 90, \"green\": 10}".into(),
        );
    };
    let mut weights = BTreeMap::new();
    for (member, weight) in object {
        if !p.members.iter().any(|m| m == member) {
            return error(
                StatusCode::BAD_REQUEST,
                format!("{member} is not a member of {env}/{pool}"),
            );
        }
        let Some(w) = weight.as_u64() else {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the weight of {member} is not a whole number"),
            );
        };
        weights.insert(member.clone(), w);
    }
    if weights.values().all(|w| *w == 0) {
        return error(StatusCode::BAD_REQUEST, "every weight is 0".into());
    }
    match mode {
        WriteMode::Apply | WriteMode::ApplySlowly(_) => {
            for m in &p.members {
                weights.entry(m.clone()).or_insert(0);
            }
            if let Some((top, _)) = weights.iter().max_by_key(|(_, w)| **w) {
                p.active = top.clone();
            }
            p.weights = weights;
        }
        WriteMode::Ignore => {}
        WriteMode::Fail => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "switch backend failure".into(),
            )
        }
    }
    Json(json!({ "active": p.active, "weights": p.weights })).into_response()
}
