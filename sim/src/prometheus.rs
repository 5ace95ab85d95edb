//! A Prometheus query API stand-in: `GET /api/v1/query?query=…` answers an instant
//! vector in Prometheus' own JSON shape (`{"status":"success","data":{"resultType":
//! "vector","result":[…]}}`) with the value the test set, or an empty vector, and
//! records every query it was asked. The real Prometheus runs where it is installed.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio::sync::watch;

use crate::ServerHandle;

#[derive(Default)]
struct Inner {
    value: Option<f64>,
    queries: Vec<String>,
}

/// A running Prometheus query API stand-in.
pub struct SimPrometheus {
    inner: Arc<Mutex<Inner>>,
    server: ServerHandle,
}

impl SimPrometheus {
    /// Starts it on a free loopback port, answering `value` (`None`: no data).
    pub async fn start(value: Option<f64>) -> io::Result<Self> {
        let inner = Arc::new(Mutex::new(Inner {
            value,
            queries: Vec::new(),
        }));
        let listener = ServerHandle::bind(0).await?;
        let (stop, _) = watch::channel(false);
        let router = Router::new()
            .route("/api/v1/query", get(query))
            .with_state(inner.clone());
        let server = ServerHandle::spawn(listener, router, stop)?;
        Ok(Self { inner, server })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Base URL, e.g. `http://127.0.0.1:19090`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// What every query reads from now on (`None`: an empty vector).
    pub fn set(&self, value: Option<f64>) {
        self.lock().value = value;
    }

    /// Every query asked so far, oldest first.
    pub fn queries(&self) -> Vec<String> {
        self.lock().queries.clone()
    }
}

async fn query(
    State(inner): State<Arc<Mutex<Inner>>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let Some(q) = params.get("query") else {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            Json(json!({"status": "error", "errorType": "bad_data", "error": "no query given"})),
        )
            .into_response();
    };
    let mut inner = inner.lock().unwrap_or_else(|p| p.into_inner());
    inner.queries.push(q.clone());
    let result = match inner.value {
        Some(v) => json!([{"metric": {}, "value": [1_700_000_000.0, v.to_string()]}]),
        None => json!([]),
    };
    Json(json!({"status": "success", "data": {"resultType": "vector", "result": result}}))
        .into_response()
}
