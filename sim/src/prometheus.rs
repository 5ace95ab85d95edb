//! Prometheus for tests: a query API stand-in, and the real server run from the system.
//!
//! [`SimPrometheus`]: `GET /api/v1/query?query=…` answers an instant vector in
//! Prometheus' own JSON shape (`{"status":"success","data":{"resultType":
//! "vector","result":[…]}}`) with the value the test set, or an empty vector, and
//! records every query it was asked.
//!
//! [`RealPrometheus`]: Debian's `prometheus` binary as a child process (killed on
//! drop) on a free loopback port, scraping given loopback targets every second, each
//! labelled with its `pool` and `member` the way a real scrape config labels them.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

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

// ------------------------------------------------------------------ the real one

/// Where Debian's package puts the binary; `prometheus` on the `PATH` otherwise.
const DEBIAN_BINARY: &str = "/usr/bin/prometheus";
/// How often the real Prometheus scrapes its targets (and evaluates rules).
pub const SCRAPE_INTERVAL: Duration = Duration::from_secs(1);
/// How long the real Prometheus may take to answer `/-/ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// The job every target is scraped under.
const JOB: &str = "instances";

fn binary() -> PathBuf {
    let debian = Path::new(DEBIAN_BINARY);
    if debian.is_file() {
        debian.to_owned()
    } else {
        PathBuf::from("prometheus")
    }
}

/// Whether a `prometheus` binary that runs is installed.
pub fn prometheus_installed() -> bool {
    Command::new(binary())
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One target the real Prometheus scrapes (`GET /metrics`), with the labels naming it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeTarget {
    /// The `pool` label.
    pub pool: String,
    /// The `member` label.
    pub member: String,
    /// Where it serves `/metrics` (on loopback).
    pub addr: SocketAddr,
}

impl ScrapeTarget {
    /// Member `member` of pool `pool`, serving `/metrics` at `addr`.
    pub fn new(pool: impl Into<String>, member: impl Into<String>, addr: SocketAddr) -> Self {
        Self {
            pool: pool.into(),
            member: member.into(),
            addr,
        }
    }
}

/// Why the real Prometheus could not start, or did not do what was waited for.
#[derive(Debug, thiserror::Error)]
pub enum RealPrometheusError {
    /// A target off loopback: tests scrape nothing else.
    #[error("scrape target {0} is not on loopback")]
    NotLoopback(SocketAddr),
    /// Writing its config or starting the process failed.
    #[error("cannot start {binary} (install it with `apt-get install -y prometheus`): {source}")]
    Start {
        /// The binary run.
        binary: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// It exited before it was ready.
    #[error("Prometheus exited ({status}) before it was ready; its log ends:\n{log}")]
    Exited {
        /// How it ended.
        status: ExitStatus,
        /// The end of its log.
        log: String,
    },
    /// It did not become ready (or did not scrape every target) in time.
    #[error("Prometheus at {url} {what} within {timeout:?}; its log ends:\n{log}")]
    TimedOut {
        /// Its base URL.
        url: String,
        /// What did not happen.
        what: String,
        /// How long it was given.
        timeout: Duration,
        /// The end of its log.
        log: String,
    },
}

/// The real Prometheus as a child process on `127.0.0.1`, killed when dropped.
pub struct RealPrometheus {
    child: Child,
    dir: tempfile::TempDir,
    url: String,
    targets: usize,
}

impl Drop for RealPrometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RealPrometheus {
    /// Starts Prometheus on a free loopback port with its storage in a temporary
    /// directory, scraping every target's `/metrics` every [`SCRAPE_INTERVAL`], and
    /// returns once `GET /-/ready` answers 200 (at most 20 s).
    pub async fn start(targets: &[ScrapeTarget]) -> Result<Self, RealPrometheusError> {
        if let Some(t) = targets.iter().find(|t| !t.addr.ip().is_loopback()) {
            return Err(RealPrometheusError::NotLoopback(t.addr));
        }
        // The port is free when picked; should another process take it first,
        // Prometheus exits at once and a fresh port is tried.
        let mut attempts = 3;
        loop {
            attempts -= 1;
            match Self::start_once(targets).await {
                Err(RealPrometheusError::Exited { log, .. })
                    if attempts > 0 && log.contains("address already in use") => {}
                other => return other,
            }
        }
    }

    async fn start_once(targets: &[ScrapeTarget]) -> Result<Self, RealPrometheusError> {
        let binary = binary();
        let start_error = |source: io::Error| RealPrometheusError::Start {
            binary: binary.display().to_string(),
            source,
        };
        let dir = tempfile::tempdir().map_err(start_error)?;
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, config_text(targets)).map_err(start_error)?;
        let log = std::fs::File::create(dir.path().join("prometheus.log")).map_err(start_error)?;
        let port = crate::free_port().map_err(start_error)?;
        let child = Command::new(&binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(start_error)?)
            .stderr(log)
            .spawn()
            .map_err(start_error)?;
        let mut prometheus = Self {
            child,
            dir,
            url: format!("http://127.0.0.1:{port}"),
            targets: targets.len(),
        };
        prometheus.wait_until_ready().await?;
        Ok(prometheus)
    }

    async fn wait_until_ready(&mut self) -> Result<(), RealPrometheusError> {
        let client = client();
        let ready = format!("{}/-/ready", self.url);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(RealPrometheusError::Exited {
                    status,
                    log: self.log_tail(),
                });
            }
            if let Ok(resp) = client.get(&ready).send().await {
                if resp.status().as_u16() == 200 {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(self.timed_out("was not ready", READY_TIMEOUT));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until Prometheus has scraped every target successfully (`up == 1`),
    /// for at most `timeout`.
    pub async fn wait_until_scraped(&self, timeout: Duration) -> Result<(), RealPrometheusError> {
        let deadline = Instant::now() + timeout;
        let all = self.targets as f64;
        loop {
            let up = self
                .query(&format!("count(up{{job=\"{JOB}\"}} == 1)"))
                .await;
            if up.is_some_and(|n| n >= all) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self.timed_out("did not scrape every target", timeout));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The value of an instant query now: the first sample of a vector, or a
    /// scalar; `None` when it has none (or Prometheus did not answer).
    pub async fn query(&self, promql: &str) -> Option<f64> {
        let resp = client()
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", promql)])
            .send()
            .await
            .ok()?;
        let body: serde_json::Value = resp.json().await.ok()?;
        let data = body.get("data")?;
        let sample = match data.get("resultType")?.as_str()? {
            "vector" => data.get("result")?.get(0)?.get("value")?,
            "scalar" => data.get("result")?,
            _ => return None,
        };
        sample.get(1)?.as_str()?.parse().ok()
    }

    /// Base URL, e.g. `http://127.0.0.1:19090`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// How often it scrapes.
    pub fn scrape_interval(&self) -> Duration {
        SCRAPE_INTERVAL
    }

    fn timed_out(&self, what: &str, timeout: Duration) -> RealPrometheusError {
        RealPrometheusError::TimedOut {
            url: self.url.clone(),
            what: what.to_owned(),
            timeout,
            log: self.log_tail(),
        }
    }

    /// The last lines Prometheus logged.
    fn log_tail(&self) -> String {
        let log =
            std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap_or_default()
}

/// The config file: JSON, which is YAML too, so labels are quoted whatever they hold.
fn config_text(targets: &[ScrapeTarget]) -> String {
    let every = format!("{}ms", SCRAPE_INTERVAL.as_millis());
    let static_configs: Vec<serde_json::Value> = targets
        .iter()
        .map(|t| {
            json!({
                "targets": [t.addr.to_string()],
                "labels": {"pool": t.pool, "member": t.member},
            })
        })
        .collect();
    let config = json!({
        "global": {
            "scrape_interval": every,
            "scrape_timeout": every,
            "evaluation_interval": every,
        },
        "scrape_configs": [{
            "job_name": JOB,
            "metrics_path": "/metrics",
            "static_configs": static_configs,
        }],
    });
    config.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_labels_every_target_with_its_pool_and_member() {
        let addr: SocketAddr = "127.0.0.1:18081".parse().expect("addr");
        let text = config_text(&[ScrapeTarget::new("api", "gr\"een", addr)]);
        let config: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(config["global"]["scrape_interval"], "1000ms");
        let target = &config["scrape_configs"][0]["static_configs"][0];
        assert_eq!(target["targets"][0], "127.0.0.1:18081");
        assert_eq!(target["labels"]["pool"], "api");
        assert_eq!(target["labels"]["member"], "gr\"een");
    }
}
