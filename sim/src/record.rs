//! Recorded traffic shared by the stand-ins: an append-only log with bounded waits, header capture and body decoding.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use axum::http::{header, HeaderMap};
use serde_json::{Map, Value};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::wire::parse_form;

/// How long the `wait_for…` helpers wait before panicking, unless a stand-in's setup
/// says otherwise.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// An append-only log that tests can wait on.
pub(crate) struct Log<T> {
    items: Mutex<Vec<T>>,
    changed: watch::Sender<usize>,
}

impl<T> Default for Log<T> {
    fn default() -> Self {
        Self {
            items: Mutex::new(Vec::new()),
            changed: watch::channel(0).0,
        }
    }
}

impl<T: Clone + Debug> Log<T> {
    fn items(&self) -> MutexGuard<'_, Vec<T>> {
        self.items.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends one entry, wakes the waiters, and returns the entry's index.
    pub(crate) fn push(&self, item: T) -> usize {
        let len = {
            let mut items = self.items();
            items.push(item);
            items.len()
        };
        self.changed.send_replace(len);
        len - 1
    }

    /// Changes entries in place (e.g. to mark a connection closed) and wakes the waiters.
    pub(crate) fn update(&self, f: impl FnOnce(&mut Vec<T>)) {
        let len = {
            let mut items = self.items();
            f(&mut items);
            items.len()
        };
        self.changed.send_replace(len);
    }

    /// A copy of every entry so far, oldest first.
    pub(crate) fn all(&self) -> Vec<T> {
        self.items().clone()
    }

    /// Waits until `found` returns `Some` for the entries so far, at most `timeout`;
    /// panics naming `what` and listing the entries seen otherwise.
    pub(crate) async fn wait<R>(
        &self,
        timeout: Duration,
        what: &str,
        mut found: impl FnMut(&[T]) -> Option<R>,
    ) -> R {
        let deadline = Instant::now() + timeout;
        // Subscribe before looking, so an entry pushed in between still wakes us.
        let mut rx = self.changed.subscribe();
        loop {
            // A copy, so `found` (which may run a test's predicate) runs without the lock.
            if let Some(r) = found(&self.all()) {
                return r;
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                _ => {
                    let seen = self.all();
                    panic!(
                        "timed out after {timeout:?} waiting for {what}; saw {} entries:\n{seen:#?}",
                        seen.len()
                    );
                }
            }
        }
    }
}

/// Headers with lower-cased names; repeated headers joined with `, `.
pub(crate) fn header_map(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        out.entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    out
}

/// The media type of `Content-Type`, lower-cased, without parameters.
pub(crate) fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// A form (or query string) as a JSON object of strings; the fields named in
/// `json_fields` are parsed as JSON when they hold valid JSON (Slack sends `blocks`
/// and `files` that way in forms).
pub(crate) fn form_object(text: &str, json_fields: &[&str]) -> Map<String, Value> {
    parse_form(text)
        .into_iter()
        .map(|(k, v)| {
            let value = if json_fields.contains(&k.as_str()) {
                serde_json::from_str(&v).unwrap_or(Value::String(v))
            } else {
                Value::String(v)
            };
            (k, value)
        })
        .collect()
}
