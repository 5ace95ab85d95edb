//! Scripted failures shared by the stand-ins: per-key queues of answers consumed in order before the default answer.
//!
//! A stand-in keys its queues by what a test thinks in: the Slack stand-in by Web
//! API method (`chat.postMessage`), the others by a fixed key. Each stand-in says how
//! a failure looks in its own dialect (Slack's `{"ok":false,…}`, PagerDuty's
//! `{"status":…}`) through a [`Dialect`].

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;

use crate::listen::Conn;

/// One scripted answer, used once, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scripted {
    /// Answer this HTTP status with the service's usual error body (e.g. 503).
    Status(u16),
    /// HTTP 429 with `Retry-After: retry_after_secs` and the service's rate-limit body.
    RateLimited {
        /// Seconds put in `Retry-After`.
        retry_after_secs: u64,
    },
    /// The service's own "request refused" answer naming this error; for Slack,
    /// HTTP 200 `{"ok":false,"error":…}`.
    Error(&'static str),
    /// Close the TCP connection without any answer.
    Drop,
    /// Wait this long, then give the default answer (the next scripted entry is
    /// left for the next request).
    Delay(Duration),
    /// Do the work (post the message), then close the connection without an answer:
    /// the caller cannot tell whether it happened. Slack stand-in only.
    Lost,
    /// Do the work, then hold the answer this long (a caller killed meanwhile never
    /// hears it). Slack stand-in only.
    Late(Duration),
}

impl Scripted {
    /// Takes effect after the default answer is made.
    fn after_work(&self) -> bool {
        matches!(self, Scripted::Lost | Scripted::Late(_))
    }
}

/// How one stand-in renders scripted failures.
pub(crate) struct Dialect {
    /// Body for [`Scripted::Status`].
    pub(crate) status: fn(StatusCode) -> Response,
    /// Body for [`Scripted::RateLimited`] (the `Retry-After` header is added here).
    pub(crate) rate_limited: fn() -> Response,
    /// Answer for [`Scripted::Error`].
    pub(crate) error: fn(&str) -> Response,
}

/// Queues of scripted answers by key.
#[derive(Default)]
pub(crate) struct Faults {
    queues: Mutex<HashMap<String, VecDeque<Scripted>>>,
}

impl Faults {
    fn queues(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Scripted>>> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends answers to `key`'s queue.
    pub(crate) fn push(&self, key: &str, answers: impl IntoIterator<Item = Scripted>) {
        self.queues()
            .entry(key.to_owned())
            .or_default()
            .extend(answers);
    }

    /// Scripted answers still waiting for `key`.
    pub(crate) fn pending(&self, key: &str) -> usize {
        self.queues().get(key).map_or(0, VecDeque::len)
    }

    /// Forgets every scripted answer.
    pub(crate) fn clear(&self) {
        self.queues().clear();
    }

    /// The next scripted answer for `key` when it is of the kind wanted (`after`: one
    /// that takes effect after the work is done).
    fn next(&self, key: &str, after: bool) -> Option<Scripted> {
        let mut queues = self.queues();
        let queue = queues.get_mut(key)?;
        if queue.front()?.after_work() != after {
            return None;
        }
        queue.pop_front()
    }

    /// After the default answer `resp` to `key` was made: answers it, late, or never.
    pub(crate) async fn after(&self, key: &str, conn: &Conn, resp: Response) -> Response {
        match self.next(key, true) {
            Some(Scripted::Late(d)) => {
                tokio::time::sleep(d).await;
                resp
            }
            Some(Scripted::Lost) => {
                conn.hang_up();
                std::future::pending::<Response>().await
            }
            _ => resp,
        }
    }

    /// Consumes the next scripted answer for `key`: `Some(response)` to answer with,
    /// `None` to go on with the default. A [`Scripted::Drop`] never returns (the
    /// connection is cut under it).
    pub(crate) async fn apply(
        &self,
        key: &str,
        dialect: &Dialect,
        conn: &Conn,
    ) -> Option<Response> {
        match self.next(key, false)? {
            Scripted::Status(code) => {
                let status =
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let mut resp = (dialect.status)(status);
                *resp.status_mut() = status;
                Some(resp)
            }
            Scripted::RateLimited { retry_after_secs } => {
                let mut resp = (dialect.rate_limited)();
                *resp.status_mut() = StatusCode::TOO_MANY_REQUESTS;
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
                Some(resp)
            }
            Scripted::Error(error) => Some((dialect.error)(error)),
            Scripted::Delay(d) => {
                tokio::time::sleep(d).await;
                None
            }
            Scripted::Drop => {
                conn.hang_up();
                std::future::pending::<Option<Response>>().await
            }
            Scripted::Lost | Scripted::Late(_) => None,
        }
    }
}
