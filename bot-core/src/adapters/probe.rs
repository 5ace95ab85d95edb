//! [`HttpProbe`] and [`ReqwestAction`]: the real HTTP implementations of [`Probe`] and [`HttpAction`].

use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::config::HttpRequestSpec;
use crate::ports::{HttpAction, HttpSnapshot, Probe, ProbeError};

/// Bodies longer than this are cut before any check looks at them.
const MAX_BODY: usize = 256 * 1024;

/// Probes over HTTP with reqwest; one shared connection pool.
#[derive(Clone)]
pub struct HttpProbe {
    client: reqwest::Client,
}

impl Default for HttpProbe {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpProbe {
    /// A probe with its own client (no proxy: probes go straight to the instance).
    /// It follows a redirect only to the same origin (scheme, host and port), at
    /// most five: a health endpoint cannot send the bot elsewhere.
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::custom(same_origin_only))
            .user_agent(concat!("crossroads/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self { client }
    }

    /// A probe sharing an existing client.
    pub fn with_client(client: reqwest::Client) -> Self {
        Self { client }
    }
}

/// The redirect policy of probes: same origin, at most five hops.
fn same_origin_only(attempt: reqwest::redirect::Attempt<'_>) -> reqwest::redirect::Action {
    let same = attempt
        .previous()
        .first()
        .is_some_and(|first| first.origin() == attempt.url().origin());
    if same && attempt.previous().len() <= 5 {
        attempt.follow()
    } else {
        attempt.stop()
    }
}

pub(crate) fn classify(err: &reqwest::Error, timeout: Duration) -> ProbeError {
    if err.is_timeout() {
        return ProbeError::Timeout(timeout);
    }
    if err.is_connect() {
        let text = format!("{err:?}");
        if text.contains("Connection refused") || text.contains("ConnectionRefused") {
            return ProbeError::Refused;
        }
        return ProbeError::Other(format!("cannot connect: {}", root_cause(err)));
    }
    ProbeError::Other(root_cause(err))
}

fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: &(dyn std::error::Error + 'static) = err;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

async fn read(
    resp: reqwest::Response,
    started: Instant,
    timeout: Duration,
) -> Result<HttpSnapshot, ProbeError> {
    let status = resp.status().as_u16();
    let mut body = Vec::new();
    let mut resp = resp;
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_BODY.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if room <= chunk.len() {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => return Err(classify(&e, timeout)),
        }
    }
    Ok(HttpSnapshot {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
        latency: started.elapsed(),
    })
}

#[async_trait]
impl Probe for HttpProbe {
    async fn get(&self, url: &str, timeout: Duration) -> Result<HttpSnapshot, ProbeError> {
        let started = Instant::now();
        let fut = async {
            let resp = self
                .client
                .get(url)
                .timeout(timeout)
                .send()
                .await
                .map_err(|e| classify(&e, timeout))?;
            read(resp, started, timeout).await
        };
        // The outer timeout also bounds body reading and connection set-up.
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(ProbeError::Timeout(timeout)),
        }
    }
}

/// Sends configured HTTP requests with reqwest. No redirect is followed: a request
/// carrying headers and a body goes to the configured address or nowhere (a 3xx is
/// the answer).
#[derive(Clone)]
pub struct ReqwestAction {
    client: reqwest::Client,
}

impl Default for ReqwestAction {
    fn default() -> Self {
        Self::new()
    }
}

impl ReqwestAction {
    /// A sender with its own client.
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("crossroads/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self { client }
    }
}

#[async_trait]
impl HttpAction for ReqwestAction {
    async fn send(
        &self,
        req: &HttpRequestSpec,
        timeout: Duration,
    ) -> Result<HttpSnapshot, ProbeError> {
        let started = Instant::now();
        let method = reqwest::Method::from_bytes(req.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| ProbeError::Other(format!("bad HTTP method `{}`", req.method)))?;
        let mut builder = self.client.request(method, &req.url).timeout(timeout);
        for (k, v) in &req.headers {
            builder = builder.header(k, v);
        }
        if let Some(body) = &req.body {
            builder = builder.body(body.clone());
        }
        let fut = async {
            let resp = builder.send().await.map_err(|e| classify(&e, timeout))?;
            read(resp, started, timeout).await
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(ProbeError::Timeout(timeout)),
        }
    }
}
