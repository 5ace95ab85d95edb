//! The probe port: fetching a URL for health, status and tasks, and sending configured requests.

use std::time::Duration;

use async_trait::async_trait;

use crate::config::HttpRequestSpec;

/// An HTTP answer as seen by a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSnapshot {
    /// Status code.
    pub status: u16,
    /// Body as text (lossy UTF-8), capped by the probe.
    pub body: String,
    /// Time until the whole body was read.
    pub latency: Duration,
}

/// Why a probe got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// Nothing within the timeout.
    #[error("no answer within {}ms", .0.as_millis())]
    Timeout(Duration),
    /// Connection refused or reset.
    #[error("connection refused")]
    Refused,
    /// Anything else (DNS, TLS, protocol), with a short reason.
    #[error("{0}")]
    Other(String),
}

/// Fetches a URL for health checks, status and tasks.
#[async_trait]
pub trait Probe: Send + Sync {
    /// GETs `url`, giving up after `timeout`. Must return by then.
    async fn get(&self, url: &str, timeout: Duration) -> Result<HttpSnapshot, ProbeError>;
}

/// Sends a configured HTTP request (restart actions, YAML-defined commands).
#[async_trait]
pub trait HttpAction: Send + Sync {
    /// Sends the already-templated request; returns status and body.
    async fn send(
        &self,
        req: &HttpRequestSpec,
        timeout: Duration,
    ) -> Result<HttpSnapshot, ProbeError>;
}
