//! The Slack courier: delivers the outbox's Slack messages — only the newest version of
//! each, progress at most every interval, the final reply as soon as it is there —
//! retrying 429 (after `Retry-After`), 5xx and transport errors with backoff, across
//! restarts and from whichever replica is alive. A message that still fails after the
//! last attempt is logged with who and what it was about, and counted.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bot_core::ports::store::{Attempt, Outgoing};
use bot_core::ports::Store;
use bot_core::Reply;
use tokio::sync::{mpsc, Notify, Semaphore};

use crate::intake::{DeliveredHook, Intake};
use crate::metrics::Metrics;
use crate::slack::delivery::{gap, recover, send, Delivered, Destination};
use crate::slack::webapi::{WebApi, WebApiError};

/// The transport name of Slack's messages in the outbox.
pub const TRANSPORT: &str = "slack";

/// Attempts before a message is given up, by default (about four minutes of backoff).
pub const MAX_ATTEMPTS: u32 = 9;
/// Most messages sent at once.
const CONCURRENCY: usize = 64;
/// Most outcomes recorded in one write.
const RECORD_BATCH: usize = 256;
/// How often the outbox is read when nothing woke the courier (another replica's
/// messages, retries coming due).
const POLL: Duration = Duration::from_millis(250);
/// How long a courier holds a message it is sending, when no configuration says
/// (`settings.lease` otherwise, so another replica sends it again that soon after
/// this one died).
const SEND_LEASE: Duration = Duration::from_secs(30);
/// The shortest hold: a send under way is never taken over.
const MIN_SEND_LEASE: Duration = Duration::from_secs(12);

/// Delivers Slack's outbox messages.
#[derive(Clone)]
pub struct Courier {
    store: Arc<dyn Store>,
    web: WebApi,
    metrics: Metrics,
    owner: String,
    interval: Duration,
    attempts: u32,
    wake: Arc<Notify>,
    clock: Arc<dyn Fn() -> SystemTime + Send + Sync>,
    lease: Arc<dyn Fn() -> Duration + Send + Sync>,
    /// Tells the intake a final answer went out (the request gives its room up).
    delivered: Option<DeliveredHook>,
}

/// How long to wait before attempt `n + 1` after `n` failures: 1 s, 2 s, 4 s … 60 s.
fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.min(6)).min(Duration::from_secs(60))
}

impl Courier {
    /// A courier for `intake`'s store, sending through `web` (one attempt per call:
    /// the courier does the retrying), progress at most every `interval`.
    pub fn new(intake: &Intake, web: WebApi, interval: Duration) -> Self {
        let bot = intake.bot().clone();
        Self {
            store: bot.store(),
            web: web.single_attempt(),
            metrics: intake.metrics().clone(),
            owner: intake.owner().to_owned(),
            interval,
            attempts: MAX_ATTEMPTS,
            wake: intake.outbox_changed(),
            clock: Arc::new({
                let bot = bot.clone();
                move || bot.now()
            }),
            lease: Arc::new(move || bot.settings().lease),
            delivered: Some(intake.delivered_hook()),
        }
    }

    /// A courier for `store` on its own (tests, tools): the system clock, woken by
    /// `wake`.
    pub fn for_store(
        store: Arc<dyn Store>,
        web: WebApi,
        interval: Duration,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            web: web.single_attempt(),
            metrics: Metrics::new(),
            owner: bot_core::engine::replica_name(),
            interval,
            attempts: MAX_ATTEMPTS,
            wake,
            clock: Arc::new(SystemTime::now),
            lease: Arc::new(|| SEND_LEASE),
            delivered: None,
        }
    }

    /// Gives a message up after `attempts` failed attempts.
    pub fn with_attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// Delivers until `stop` resolves, then once more what is due.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let sending = Arc::new(Semaphore::new(CONCURRENCY));
        // How each send went is recorded in batches, off the sending slots: a send
        // frees its slot as soon as Slack answered, and the message stays leased to
        // this courier until its outcome is written.
        let (records, pending) = mpsc::unbounded_channel();
        let writer = tokio::spawn(self.clone().write_records(pending));
        loop {
            let busy = self.round(&sending, &records).await;
            if busy {
                continue;
            }
            // Progress comes due an interval after the last edit: look again by then.
            let poll = (self.interval / 2).clamp(Duration::from_millis(5), POLL);
            tokio::select! {
                () = &mut stop => break,
                _ = self.wake.notified() => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
        self.round(&sending, &records).await;
        // Wait for the sends under way, then for their outcomes to be written.
        let _ = sending.acquire_many(CONCURRENCY as u32).await;
        drop(records);
        let _ = writer.await;
    }

    /// Writes the outcomes of sends as they come, as many at once as are waiting.
    async fn write_records(self, mut pending: mpsc::UnboundedReceiver<(String, Attempt)>) {
        let mut batch = Vec::with_capacity(RECORD_BATCH);
        while pending.recv_many(&mut batch, RECORD_BATCH).await > 0 {
            if let Err(e) = self.store.record_attempts(&self.owner, &batch).await {
                // Not recorded: each message's lease lapses and it is sent again, in
                // doubt, so its post is found rather than repeated.
                tracing::warn!(messages = batch.len(), error = %e, "could not record deliveries");
            }
            batch.clear();
        }
    }

    /// Leases what is due and sends it; `true` when there may be more due at once.
    async fn round(
        &self,
        sending: &Arc<Semaphore>,
        records: &mpsc::UnboundedSender<(String, Attempt)>,
    ) -> bool {
        let room = sending.available_permits();
        if room == 0 {
            let _ = sending.acquire().await;
            return true;
        }
        let now = (self.clock)();
        let hold = (self.lease)().clamp(MIN_SEND_LEASE, Duration::from_secs(300));
        let due = match self
            .store
            .lease_messages(
                TRANSPORT,
                &self.owner,
                now,
                crate::retry::after(now, hold),
                room,
            )
            .await
        {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the outbox");
                return false;
            }
        };
        let full = due.len() == room;
        for message in due {
            let Ok(permit) = sending.clone().acquire_owned().await else {
                return false;
            };
            let this = self.clone();
            let records = records.clone();
            tokio::spawn(async move {
                let id = message.id.clone();
                let last = message.last;
                let attempt = this.attempt(message).await;
                drop(permit);
                let ended = matches!(
                    attempt,
                    Attempt::Delivered { .. } | Attempt::Failed { retry_at: None }
                );
                if let (true, true, Some(hook)) = (last, ended, &this.delivered) {
                    hook.delivered(&id);
                }
                let _ = records.send((id, attempt));
            });
        }
        full
    }

    /// Sends the newest version of `m` once and says how it went.
    async fn attempt(&self, m: Outgoing) -> Attempt {
        let (dest, reply) = match (
            serde_json::from_value::<Destination>(m.route.clone()),
            serde_json::from_value::<Reply>(m.body.clone()),
        ) {
            (Ok(d), Ok(r)) => (d, r),
            _ => {
                tracing::error!(message = %m.id, about = %m.about, "an outbox message could not be read; giving it up");
                self.metrics.outbox_given_up();
                return Attempt::Failed { retry_at: None };
            }
        };
        let mut state: Delivered = serde_json::from_value(m.state.clone()).unwrap_or_default();
        if m.in_doubt {
            if let Err(e) = recover(&self.web, &dest, &mut state, &m.id).await {
                return self.failed(&m, &e, false, (self.clock)());
            }
        }
        // A first post that hears nothing back may have gone out all the same.
        let posting = matches!(dest, Destination::Channel { .. }) && state.posted.is_none();
        let sent = send(&self.web, &dest, &mut state, &reply, m.last, Some(&m.id)).await;
        // Spacing counts from when Slack had the edit, not from when it was sent.
        let now = (self.clock)();
        if sent.is_ok() && m.last {
            self.metrics.replied();
        }
        match sent {
            Ok(()) => Attempt::Delivered {
                version: m.version,
                next_at: now + gap(&dest, &state, self.interval),
                state: serde_json::to_value(&state).unwrap_or_default(),
            },
            Err(e) => self.failed(&m, &e, posting, now),
        }
    }

    /// How a failed attempt is recorded; `posting` when it was a first post, which may
    /// have reached Slack if no answer came back.
    fn failed(&self, m: &Outgoing, e: &WebApiError, posting: bool, now: SystemTime) -> Attempt {
        let transient = match e {
            WebApiError::RateLimited { .. } | WebApiError::Transport { .. } => true,
            WebApiError::Http { status, .. } => *status >= 500 || *status == 408,
            WebApiError::Slack { error, .. } => {
                matches!(
                    error.as_str(),
                    "internal_error" | "fatal_error" | "service_unavailable" | "request_timeout"
                )
            }
        };
        let failures = m.attempts + 1;
        if transient && failures < self.attempts {
            let wait = match e {
                WebApiError::RateLimited { retry_after, .. } => *retry_after,
                _ => backoff(m.attempts),
            };
            tracing::info!(message = %m.id, failures, error = %e.code(), wait_ms = wait.as_millis() as u64, "Slack delivery failed; trying again");
            let retry_at = crate::retry::after(now, wait);
            let unanswered = match e {
                WebApiError::Transport { .. } => true,
                // A gateway between gave up waiting: Slack may have done it.
                WebApiError::Http { status, .. } => matches!(*status, 502 | 504),
                _ => false,
            };
            if posting && unanswered {
                return Attempt::Unsure { retry_at };
            }
            return Attempt::Failed {
                retry_at: Some(retry_at),
            };
        }
        tracing::error!(
            message = %m.id,
            about = %m.about,
            route = %m.route,
            failures,
            error = %e.code(),
            "giving up on a Slack message"
        );
        self.metrics.outbox_given_up();
        Attempt::Failed { retry_at: None }
    }
}

/// Sends `reply` along `dest` once, outside the outbox: for the "try again" answers
/// owed when the outbox itself is what failed.
pub async fn send_once(web: &WebApi, dest: &Destination, reply: &Reply) {
    let mut state = Delivered::default();
    if let Err(e) = send(web, dest, &mut state, reply, true, None).await {
        tracing::warn!(error = %e.code(), "a direct answer could not be delivered");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        let waits: Vec<u64> = (0..9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }
}
