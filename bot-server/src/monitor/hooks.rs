//! Incident hooks through the outbox (transport `hooks`): PagerDuty Events API v2
//! events and webhook JSON events are written first and sent by [`HookCourier`], in
//! order per destination, retried on 429 (after `Retry-After`), 5xx and transport
//! errors, across restarts and from whichever replica is alive. PagerDuty's routing
//! key is added when an event is sent, from the configuration in force, so it is
//! never stored. Change records (GitHub deployments, Grafana annotations, PagerDuty
//! change events, written by [`bot_core::markers`]) go the same way, addressed by
//! [`crate::markers`].

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bot_core::ports::store::{Attempt, Outgoing};
use bot_core::ports::{Store, StoreError};
use bot_core::Bot;
use serde_json::Value;
use tokio::sync::{watch, Notify};

use crate::markers::{self, NotYet};
use crate::metrics::Metrics;

/// The transport name of hook events in the outbox.
pub const TRANSPORT: &str = bot_core::markers::TRANSPORT;
/// Attempts before an event is given up (about half an hour of backoff).
const MAX_ATTEMPTS: u32 = 12;
/// How long a change record is tried before it is given up, from when it was
/// written (its route's `since`): a GitHub down for an afternoon still gets its
/// statuses, in order, once it is back.
const RECORD_GIVE_UP: Duration = Duration::from_secs(6 * 3600);
/// The longest wait between attempts of a change record: a GitHub that is back
/// gets its statuses within seconds.
const RECORD_MAX_WAIT: Duration = Duration::from_secs(8);

/// Whether `kind` is a change record (GitHub, Grafana, PagerDuty change events)
/// rather than an incident hook.
fn is_record(kind: &str) -> bool {
    !matches!(kind, "pagerduty" | "webhook")
}
/// How often the outbox is read when nothing woke the courier.
const POLL: Duration = Duration::from_millis(250);
/// Per-request timeout.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Writes one event for sending (written once, whoever writes it).
pub async fn enqueue(
    store: &dyn Store,
    id: &str,
    route: &Value,
    body: &Value,
    now: SystemTime,
) -> Result<(), StoreError> {
    bot_core::markers::write(store, id, route, body, now).await
}

/// How long to wait after `n` failures: 1 s, 2 s, 4 s … 5 min.
fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.min(9)).min(Duration::from_secs(300))
}

/// How one send went.
enum Sent {
    /// Sent; the transport's state to keep (a GitHub deployment's id).
    Ok(Value),
    /// Not yet: the record before it waits to be sent.
    Wait(Duration),
    /// Try again after this long.
    Again(Duration),
    /// Never going to work (4xx, no destination).
    Never(String),
}

/// How long a courier holds the events it is sending: `settings.lease`, so that
/// another replica sends them again that soon after this one died, but never less
/// than a request may take.
pub(crate) fn send_lease(lease: Duration) -> Duration {
    lease.clamp(TIMEOUT + Duration::from_secs(2), Duration::from_secs(300))
}

/// Sends the outbox's hook events.
#[derive(Clone)]
pub struct HookCourier {
    bot: Bot,
    http: reqwest::Client,
    wake: Arc<Notify>,
    metrics: Metrics,
}

impl HookCourier {
    /// A courier for `bot`'s store, woken by `wake`.
    pub fn new(bot: Bot, wake: Arc<Notify>, metrics: Metrics) -> Self {
        // No redirect is followed: a hook's body (PagerDuty's routing key) goes to the
        // configured address or nowhere.
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("crossroads/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self {
            bot,
            http,
            wake,
            metrics,
        }
    }

    /// Sends until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            self.round().await;
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = self.wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Sends what is due, oldest first; after a failure, later events to the same
    /// destination wait with it, so a resolve never overtakes its trigger.
    async fn round(&self) {
        let store = self.bot.store();
        let now = self.bot.now();
        let until = crate::retry::after(now, send_lease(self.bot.settings().lease));
        let due = match store
            .lease_messages(TRANSPORT, self.bot.owner(), now, until, 64)
            .await
        {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the hook outbox");
                return;
            }
        };
        let mut blocked: Vec<(String, SystemTime)> = Vec::new();
        for m in due {
            let dest = m.route.to_string();
            let attempt = if let Some((_, until)) = blocked.iter().find(|(d, _)| *d == dest) {
                Attempt::Failed {
                    retry_at: Some(*until),
                }
            } else {
                let attempt = self.attempt(&m).await;
                if let Attempt::Failed {
                    retry_at: Some(until),
                } = &attempt
                {
                    blocked.push((dest, *until));
                }
                attempt
            };
            if let Err(e) = store
                .record_attempt(&m.id, self.bot.owner(), &attempt)
                .await
            {
                tracing::warn!(event = %m.id, error = %e, "could not record a hook delivery");
            }
        }
    }

    async fn attempt(&self, m: &Outgoing) -> Attempt {
        let now = self.bot.now();
        match self.send(m).await {
            Sent::Ok(state) => Attempt::Delivered {
                version: m.version,
                state,
                next_at: now,
            },
            Sent::Wait(wait) => Attempt::Failed {
                retry_at: Some(crate::retry::after(now, wait)),
            },
            Sent::Again(wait) if !exhausted(m, now) => {
                tracing::info!(event = %m.id, failures = m.attempts + 1, wait_ms = wait.as_millis() as u64, "hook delivery failed; trying again");
                Attempt::Failed {
                    retry_at: Some(crate::retry::after(now, wait)),
                }
            }
            Sent::Again(_) => {
                tracing::error!(event = %m.id, "giving up on a hook event after its last attempt");
                self.metrics.outbox_given_up();
                Attempt::Failed { retry_at: None }
            }
            Sent::Never(why) => {
                tracing::error!(event = %m.id, why = %why, "giving up on a hook event");
                self.metrics.outbox_given_up();
                Attempt::Failed { retry_at: None }
            }
        }
    }

    async fn send(&self, m: &Outgoing) -> Sent {
        let config = self.bot.config();
        let kind = m.route.get("kind").and_then(Value::as_str).unwrap_or("");
        let mut bearer = None;
        let mut github = false;
        let (url, body) = match kind {
            "pagerduty" => {
                let Some(pd) = config.monitor.as_ref().and_then(|m| m.pagerduty.clone()) else {
                    return Sent::Never("PagerDuty is no longer configured".into());
                };
                let mut body = m.body.clone();
                if let Some(obj) = body.as_object_mut() {
                    obj.insert(
                        "routing_key".into(),
                        Value::String(pd.routing_key.expose().to_owned()),
                    );
                }
                (pd.url, body)
            }
            "webhook" => match m.route.get("url").and_then(Value::as_str) {
                Some(u) => (u.to_owned(), m.body.clone()),
                None => return Sent::Never("a webhook event without a URL".into()),
            },
            _ => match markers::request(&config, self.bot.store().as_ref(), kind, m).await {
                Some(Ok(r)) => {
                    bearer = r.bearer;
                    github = r.github;
                    (r.url, r.body)
                }
                Some(Err(NotYet::Wait(wait))) => return Sent::Wait(wait),
                Some(Err(NotYet::Never(why))) => return Sent::Never(why),
                None => return Sent::Never(format!("unknown hook kind `{kind}`")),
            },
        };
        let failures = m.attempts;
        let backoff = |failures: u32| {
            let wait = backoff(failures);
            if is_record(kind) {
                wait.min(RECORD_MAX_WAIT)
            } else {
                wait
            }
        };
        let mut request = self.http.post(&url).json(&body);
        if let Some(token) = bearer.filter(|t| !t.is_empty()) {
            request = request.bearer_auth(token);
        }
        if github {
            request = request
                .header("Accept", "application/vnd.github+json")
                .header("X-GitHub-Api-Version", "2022-11-28");
        }
        let sent = match request.send().await {
            Ok(resp) => {
                let status = resp.status();
                if status.is_success() {
                    let answer = resp.json::<Value>().await.unwrap_or(Value::Null);
                    Sent::Ok(markers::kept(kind, &answer))
                } else if status.as_u16() == 429 || (github && rate_limited(&resp)) {
                    let wait = crate::retry::retry_after(resp.headers())
                        .unwrap_or_else(|| backoff(failures));
                    Sent::Again(wait)
                } else if status.is_server_error() || status.as_u16() == 408 {
                    Sent::Again(backoff(failures))
                } else if status.is_redirection() {
                    Sent::Never(format!(
                        "answered {} (a redirect, which is not followed)",
                        status.as_u16()
                    ))
                } else {
                    Sent::Never(format!("answered {}", status.as_u16()))
                }
            }
            Err(e) => {
                tracing::debug!(event = %m.id, timeout = e.is_timeout(), connect = e.is_connect(), "hook transport error");
                Sent::Again(backoff(failures))
            }
        };
        if matches!(sent, Sent::Again(_) | Sent::Never(_)) {
            self.metrics.hook_failed(kind);
            // GitHub refusing a deployment record is said in the deploy's thread,
            // once per deploy (as soon as the thread exists).
            if kind == bot_core::markers::GITHUB {
                let (why, retried) = match &sent {
                    Sent::Never(why) => (why.clone(), false),
                    _ => (
                        "it did not answer, or answered with an error".to_owned(),
                        !exhausted(m, self.bot.now()),
                    ),
                };
                markers::note_in_thread(
                    self.bot.store().as_ref(),
                    m,
                    &why,
                    retried,
                    self.bot.now(),
                )
                .await;
            }
        }
        sent
    }
}

/// Whether `m` has had its last try: an incident hook after [`MAX_ATTEMPTS`]
/// failures, a change record [`RECORD_GIVE_UP`] after it was written (the seconds
/// a GitHub status waits for the one before it are not failures).
fn exhausted(m: &Outgoing, now: SystemTime) -> bool {
    let kind = m.route.get("kind").and_then(Value::as_str).unwrap_or("");
    if !is_record(kind) {
        return m.attempts + 1 >= MAX_ATTEMPTS;
    }
    let since = m
        .route
        .get("since")
        .and_then(Value::as_u64)
        .map_or(now, |ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms));
    now.duration_since(since).unwrap_or_default() > RECORD_GIVE_UP
}

/// GitHub's rate limits: a 403 with no requests left, or with `Retry-After` (its
/// secondary limit).
fn rate_limited(resp: &reqwest::Response) -> bool {
    let headers = resp.headers();
    resp.status().as_u16() == 403
        && (headers
            .get("x-ratelimit-remaining")
            .and_then(|v| v.to_str().ok())
            == Some("0")
            || headers.contains_key(reqwest::header::RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        let waits: Vec<u64> = (0..11).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    }
}
