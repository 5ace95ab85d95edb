//! Simulated platform on loopback: service instances, an HTTP traffic switch, a Jenkins, and stand-ins for Slack, PagerDuty, webhooks, commit comparison, GitHub deployments and Grafana annotations.
//!
//! Every simulator is a real HTTP server bound to `127.0.0.1` (port 0 for an
//! ephemeral port, or a given one) speaking the real wire format, so the bot's
//! real clients can be tested against it and `crossroads demo` can run without
//! any infrastructure. The stand-ins ([`slack`], [`pagerduty`], [`webhook`],
//! [`compare`], [`github`], [`grafana`]) also record what they receive and take
//! scripted failures ([`fault::Scripted`]).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use crossroads_sim::instance::SimInstance;
//! let blue = SimInstance::start("blue", "1.0.0").await?;
//! println!("health at {}/health", blue.url());
//! blue.shutdown().await;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub mod compare;
pub mod fault;
pub mod github;
pub mod grafana;
pub mod haproxy;
pub mod instance;
pub mod jenkins;
mod listen;
pub mod pagerduty;
pub mod postgres;
pub mod prometheus;
pub mod proxy;
mod record;
pub mod slack;
pub mod switch;
pub mod webhook;
mod wire;
pub mod yaml;

pub use compare::{CompareStandIn, GitCommit};
pub use fault::Scripted;
pub use github::SimGithub;
pub use grafana::SimGrafana;
pub use pagerduty::PagerDutyStandIn;
pub use record::DEFAULT_WAIT;
pub use slack::SlackStandIn;
pub use webhook::WebhookStandIn;

/// Why a stand-in could not start (or listen again).
#[derive(Debug, thiserror::Error)]
pub enum StandInError {
    /// Binding `127.0.0.1:port` failed (port 0 means "any").
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Listen {
        /// The port asked for.
        port: u16,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// A running simulator: its bound address and a way to stop it.
///
/// Dropping the handle also stops the server (without waiting for it).
pub struct ServerHandle {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// Binds `127.0.0.1:port` (0 = any free port).
    pub(crate) async fn bind(port: u16) -> io::Result<TcpListener> {
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await
    }

    /// Serves `router` on `listener` until stopped through `stop`.
    pub(crate) fn spawn(
        listener: TcpListener,
        router: Router,
        stop: watch::Sender<bool>,
    ) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        let mut rx = stop.subscribe();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = rx.wait_for(|stopped| *stopped).await;
            };
            // Errors here only mean the listener died; nothing to report to anyone.
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await;
        });
        Ok(Self {
            addr,
            stop,
            task: Some(task),
        })
    }

    /// The bound address (always on loopback).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL without a trailing slash, e.g. `http://127.0.0.1:18081`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets in-flight requests finish (hanging ones are released),
    /// and waits up to two seconds for the server to wind down.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// A loopback port nobody listens on now, for a process to listen on next (or for a
/// "down" instance, an unreachable Jenkins).
///
/// It is picked at random below the kernel's ephemeral range: ports handed to the
/// outgoing connections of tests running beside this one come from that range, so
/// none of them can take it before the process that was given it listens. Where the
/// range leaves no room below it, the kernel picks.
pub fn free_port() -> io::Result<u16> {
    let below = ephemeral_low().unwrap_or(0);
    if below > 10_000 {
        let span = below - 10_000;
        for _ in 0..64 {
            let offset = u16::try_from(random() % u64::from(span)).unwrap_or(0);
            let port = 10_000 + offset;
            if let Ok(listener) = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
                return Ok(listener.local_addr()?.port());
            }
        }
    }
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// The first port of the kernel's ephemeral range (Linux), if it says.
fn ephemeral_low() -> Option<u16> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    range.split_whitespace().next()?.parse().ok()
}

/// A random number from the standard library's per-process hash keys.
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.finish()
}

/// `http://127.0.0.1:{port}` for a port nobody listens on.
pub fn dead_url() -> io::Result<String> {
    Ok(format!("http://127.0.0.1:{}", free_port()?))
}

/// Milliseconds since the Unix epoch, as Jenkins reports times.
pub(crate) fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
