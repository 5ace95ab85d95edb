//! Admission of work from every transport, transport-neutral. A durable delivery (a
//! key, a request, an outbox route) is written to the store's inbox before it is
//! acknowledged, processed from there — at once when there is room, else by the
//! sweeper, here or on another replica — and answered through the outbox; a direct
//! delivery (the console) runs at once and answers through its own [`ReplySink`].
//! Background work is tracked and drained on shutdown.
//!
//! Backpressure: a request holds its room until its answer has gone out (or for at
//! most [`HOLD_FOR_DELIVERY`]), and a delivery that finds no room waits up to the
//! configured admission wait for some before it is left to the sweeper. So under
//! more load than the replica can answer, acknowledgements slow down to the pace of
//! answers instead of piling up answers owed.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bot_core::adapters::outbox_progress::OutboxProgress;
use bot_core::ports::store::{Admitted, Inbound};
use bot_core::ports::Store;
use bot_core::{Bot, Request};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{oneshot, watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::chat::{AsProgress, ReplySink};
use crate::metrics::Metrics;

/// What became of a delivery; transports turn it into their acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Taken (durably, for a durable delivery): it will be processed and answered.
    Scheduled,
    /// Nothing to do (a bot's message, an edit, another event type).
    Ignored,
    /// The same delivery was already taken (a retry, a replayed request).
    Duplicate,
    /// Too much work in flight for a direct delivery: refuse it.
    Overloaded,
    /// Shutting down: no new work.
    ShuttingDown,
    /// The store could not take the delivery: refuse it so the sender delivers it
    /// again later (to this replica or another).
    Unavailable,
}

impl Accepted {
    /// `true` when the work was refused (overload, shutdown, store unavailable).
    pub fn refused(self) -> bool {
        matches!(
            self,
            Accepted::Overloaded | Accepted::ShuttingDown | Accepted::Unavailable
        )
    }
}

/// One background task still running, for shutdown logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    /// What it is doing, e.g. ``message from U1 in D1: `deploy staging` ``.
    pub what: String,
    /// How long it has been running.
    pub running_for: Duration,
}

/// Where a delivery's answers go.
pub enum ReplyTo {
    /// Through the outbox, delivered by `transport`'s courier along `route`.
    Outbox {
        /// The transport (`slack`).
        transport: String,
        /// Where, in the transport's words.
        route: Value,
    },
    /// Straight to a sink (the console); nothing is kept.
    Direct(Arc<dyn ReplySink>),
}

/// One delivery of work.
pub struct Delivery {
    /// Dedupe key (`event_id`, `slash:<trigger_id>`, …); required for outbox deliveries.
    pub key: Option<String>,
    /// The request.
    pub request: Request,
    /// Where its answers go.
    pub reply_to: ReplyTo,
    /// What it is, for logs and shutdown (and the outbox's give-up log line).
    pub what: String,
}

/// What an inbox row holds: enough to process the delivery again after a crash.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Kept {
    request: Request,
    route: Value,
    what: String,
}

/// Shared by every transport; cheap to clone.
#[derive(Clone)]
pub struct Intake {
    inner: Arc<Inner>,
}

struct Inner {
    bot: Bot,
    store: Arc<dyn Store>,
    metrics: Metrics,
    /// This replica's name in leases.
    owner: String,
    /// Room for processing: one permit per request being worked on.
    permits: Arc<Semaphore>,
    accepting: AtomicBool,
    tasks: std::sync::Mutex<Tasks>,
    /// Number of tracked tasks, for [`Intake::drain`].
    running: watch::Sender<usize>,
    /// Wakes the sweeper (room freed, work left in the inbox).
    sweep: Notify,
    /// Wakes the couriers (an outbox message changed).
    outbox: Arc<Notify>,
    /// How long a delivery that finds no room waits for some.
    admit_wait: Duration,
    /// Requests holding their room until their answer is delivered, by message id.
    awaiting: Arc<std::sync::Mutex<HashMap<String, oneshot::Sender<()>>>>,
}

/// The longest a request keeps its room after its answer was written, waiting for a
/// courier here to deliver it (one on another replica may deliver it instead).
pub const HOLD_FOR_DELIVERY: Duration = Duration::from_secs(2);

/// Default for the admission wait ([`Intake::with_admit_wait`]): well inside the 3 s
/// Slack gives an acknowledgement.
pub const DEFAULT_ADMIT_WAIT: Duration = Duration::from_millis(500);

/// Tells the request waiting on message `id` that its answer went out.
#[derive(Clone)]
pub struct DeliveredHook(Arc<std::sync::Mutex<HashMap<String, oneshot::Sender<()>>>>);

impl DeliveredHook {
    /// Message `id` was delivered with its final content (or given up).
    pub fn delivered(&self, id: &str) {
        if let Some(tx) = lock(&self.0).remove(id) {
            let _ = tx.send(());
        }
    }
}

#[derive(Default)]
struct Tasks {
    next: u64,
    running: BTreeMap<u64, (String, Instant)>,
}

/// Removes a task from the table when it ends (normally, by panic or by abort).
struct TaskGuard {
    inner: Arc<Inner>,
    id: u64,
    permit: Option<OwnedSemaphorePermit>,
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if self.permit.take().is_some() {
            self.inner.metrics.in_flight(-1);
            self.inner.sweep.notify_one();
        }
        let left = {
            let mut t = lock(&self.inner.tasks);
            t.running.remove(&self.id);
            t.running.len()
        };
        self.inner.running.send_replace(left);
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// At most this many characters of user text in task descriptions.
const DESCRIBE_CHARS: usize = 80;

/// A short, quote-safe excerpt of what someone typed, for task descriptions.
pub fn excerpt(text: &str) -> String {
    let mut s: String = text.chars().take(DESCRIBE_CHARS).collect();
    if text.chars().count() > DESCRIBE_CHARS {
        s.push('…');
    }
    s.replace('`', "'")
}

impl Intake {
    /// An intake running `bot`, working on at most `max_in_flight` requests at once
    /// (more wait in the inbox).
    pub fn new(bot: Bot, metrics: Metrics, max_in_flight: usize) -> Self {
        let store = bot.store();
        let owner = bot.owner().to_owned();
        Self {
            inner: Arc::new(Inner {
                bot,
                store,
                metrics,
                owner,
                permits: Arc::new(Semaphore::new(max_in_flight.max(1))),
                accepting: AtomicBool::new(true),
                tasks: std::sync::Mutex::new(Tasks::default()),
                running: watch::Sender::new(0),
                sweep: Notify::new(),
                outbox: Arc::new(Notify::new()),
                admit_wait: DEFAULT_ADMIT_WAIT,
                awaiting: Arc::default(),
            }),
        }
    }

    /// How long a delivery that finds no room waits for some before it is left in
    /// the inbox for the sweeper (zero: at once). Set before the intake is shared.
    pub fn with_admit_wait(mut self, wait: Duration) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.admit_wait = wait;
        }
        self
    }

    /// What a courier calls when it delivered a message's final content, so the
    /// request that wrote it gives its room up.
    pub fn delivered_hook(&self) -> DeliveredHook {
        DeliveredHook(self.inner.awaiting.clone())
    }

    /// The bot.
    pub fn bot(&self) -> &Bot {
        &self.inner.bot
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// This replica's name in leases.
    pub fn owner(&self) -> &str {
        &self.inner.owner
    }

    /// Notified whenever an outbox message changes here: couriers wait on it.
    pub fn outbox_changed(&self) -> Arc<Notify> {
        self.inner.outbox.clone()
    }

    /// Refuses new work from now on (shutdown): deliveries get
    /// [`Accepted::ShuttingDown`]; work already running goes on.
    pub fn stop_accepting(&self) {
        self.inner.accepting.store(false, Ordering::SeqCst);
        self.inner.sweep.notify_one();
    }

    /// Whether new work is taken.
    pub fn is_accepting(&self) -> bool {
        self.inner.accepting.load(Ordering::SeqCst)
    }

    /// The background tasks running now, oldest first.
    pub fn in_flight(&self) -> Vec<InFlight> {
        let now = Instant::now();
        lock(&self.inner.tasks)
            .running
            .values()
            .map(|(what, since)| InFlight {
                what: what.clone(),
                running_for: now.saturating_duration_since(*since),
            })
            .collect()
    }

    /// Waits until every background task has finished, or `timeout` passes;
    /// `true` when none is left.
    pub async fn drain(&self, timeout: Duration) -> bool {
        let mut running = self.inner.running.subscribe();
        let idle = tokio::time::timeout(timeout, async {
            running.wait_for(|n| *n == 0).await.is_ok()
        })
        .await;
        idle == Ok(true)
    }

    /// Takes a delivery. A durable one is written to the inbox first (a repeat of a
    /// key already taken is a duplicate; a store that cannot take the write refuses
    /// it) and processed at once when there is room, else left for the sweeper; a
    /// direct one runs at once or is refused when there is no room.
    pub async fn submit(&self, delivery: Delivery) -> Accepted {
        if !self.is_accepting() {
            return Accepted::ShuttingDown;
        }
        let Delivery {
            key,
            request,
            reply_to,
            what,
        } = delivery;
        match reply_to {
            ReplyTo::Direct(sink) => {
                let Ok(permit) = self.inner.permits.clone().try_acquire_owned() else {
                    self.inner.metrics.shed();
                    return Accepted::Overloaded;
                };
                let bot = self.inner.bot.clone();
                let metrics = self.inner.metrics.clone();
                metrics.received();
                self.spawn(what, Some(permit), async move {
                    let reply = bot.handle_with(request, &AsProgress(&*sink)).await;
                    metrics.processed(reply.outcome);
                    sink.finish(&reply).await;
                    metrics.replied();
                });
                Accepted::Scheduled
            }
            ReplyTo::Outbox { transport, route } => {
                let Some(key) = key else {
                    tracing::error!(what, "a durable delivery without a key was refused");
                    return Accepted::Ignored;
                };
                self.admit(key, transport, route, request, what).await
            }
        }
    }

    async fn admit(
        &self,
        key: String,
        transport: String,
        route: Value,
        request: Request,
        what: String,
    ) -> Accepted {
        let permits = self.inner.permits.clone();
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) if !self.inner.admit_wait.is_zero() => {
                tokio::time::timeout(self.inner.admit_wait, permits.acquire_owned())
                    .await
                    .ok()
                    .and_then(Result::ok)
            }
            Err(_) => None,
        };
        let now = self.inner.bot.now();
        let kept = Kept {
            request,
            route,
            what,
        };
        let item = Inbound {
            key,
            transport,
            payload: serde_json::to_value(&kept).unwrap_or_default(),
            received: now,
        };
        // Leased to us only when we start on it now; otherwise any sweeper may take it.
        let lease_until = if permit.is_some() {
            now + self.inner.bot.settings().lease
        } else {
            now
        };
        match self
            .inner
            .store
            .admit(&item, &self.inner.owner, lease_until)
            .await
        {
            Ok(Admitted::New) => {}
            Ok(Admitted::Duplicate) => {
                self.inner.metrics.deduplicated();
                return Accepted::Duplicate;
            }
            Err(e) => {
                tracing::error!(key = %item.key, error = %e, "the inbox could not take a delivery; refusing it");
                return Accepted::Unavailable;
            }
        }
        self.inner.metrics.received();
        match permit {
            Some(permit) => self.process(item, permit),
            None => self.inner.sweep.notify_one(),
        }
        Accepted::Scheduled
    }

    /// Works a delivery taken from the inbox: opens its outbox message, runs the
    /// engine with progress written to it, writes the final reply, marks it done.
    fn process(&self, item: Inbound, permit: OwnedSemaphorePermit) {
        let kept: Kept = match serde_json::from_value(item.payload.clone()) {
            Ok(k) => k,
            Err(_) => {
                tracing::error!(key = %item.key, "an inbox delivery could not be read; dropping it");
                let store = self.inner.store.clone();
                let key = item.key;
                self.spawn("dropping an unreadable delivery".into(), None, async move {
                    let _ = store.complete_inbound(&key).await;
                });
                return;
            }
        };
        let inner = self.inner.clone();
        let what = kept.what.clone();
        self.spawn(what, Some(permit), async move {
            let Kept {
                mut request,
                route,
                what,
            } = kept;
            let store = inner.store.clone();
            let now = inner.bot.now();
            if let Err(e) = store
                .open_message(&item.key, &item.transport, &route, &what, now)
                .await
            {
                tracing::error!(key = %item.key, error = %e, "no outbox message; the delivery stays in the inbox");
                return;
            }
            request.delivery = Some(item.key.clone());
            request.reply_to = Some(item.key.clone());
            let outbox = inner.outbox.clone();
            let progress = OutboxProgress::new(store.clone(), item.key.clone())
                .waking(Arc::new(move || outbox.notify_one()));
            let renew = renew_while(&inner, &item.key);
            let reply = inner.bot.handle_with(request, &progress).await;
            renew.abort();
            inner.metrics.processed(reply.outcome);
            // Registered before the write, so a delivery right after it is not missed.
            let (tx, delivered) = oneshot::channel();
            lock(&inner.awaiting).insert(item.key.clone(), tx);
            let written = progress.finish_inbound(&reply, &item.key).await;
            if let Err(e) = written {
                lock(&inner.awaiting).remove(&item.key);
                tracing::error!(key = %item.key, error = %e, "the reply could not be written; the delivery stays in the inbox");
                return;
            }
            if reply.outcome != bot_core::reply::Outcome::HandedOver {
                let _ = tokio::time::timeout(HOLD_FOR_DELIVERY, delivered).await;
            }
            lock(&inner.awaiting).remove(&item.key);
        });
    }

    /// Leases deliveries waiting in the inbox (left for later, or abandoned by a
    /// replica that died) as room allows, until shutdown. Run one per process.
    pub async fn sweep(&self, every: Duration) {
        while self.is_accepting() {
            let room = self.inner.permits.available_permits();
            if room > 0 {
                let now = self.inner.bot.now();
                let lease = self.inner.bot.settings().lease;
                match self
                    .inner
                    .store
                    .lease_inbound(&self.inner.owner, now, now + lease, room)
                    .await
                {
                    Ok(items) => {
                        let full = items.len() == room;
                        for item in items {
                            match self.inner.permits.clone().try_acquire_owned() {
                                Ok(permit) => self.process(item, permit),
                                // Raced with a new delivery: it waits for the next sweep.
                                Err(_) => break,
                            }
                        }
                        if full {
                            continue;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "could not read the inbox"),
                }
            }
            let _ = tokio::time::timeout(every, self.inner.sweep.notified()).await;
        }
    }

    /// Runs a short answer a transport owes (such as "try again") in the background:
    /// outside admission, but tracked and drained on shutdown like any work.
    pub fn spawn_answer<F>(&self, what: String, work: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.spawn(what, None, work);
    }

    /// Runs `work` in the background, tracked until it ends (see [`Self::drain`]).
    fn spawn<F>(&self, what: String, permit: Option<OwnedSemaphorePermit>, work: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let id = {
            let mut tasks = lock(&self.inner.tasks);
            tasks.next += 1;
            let id = tasks.next;
            tasks.running.insert(id, (what, Instant::now()));
            self.inner.running.send_replace(tasks.running.len());
            id
        };
        if permit.is_some() {
            self.inner.metrics.in_flight(1);
        }
        let guard = TaskGuard {
            inner: self.inner.clone(),
            id,
            permit,
        };
        tokio::spawn(async move {
            let _guard = guard;
            work.await;
        });
    }
}

/// Renews this replica's lease on delivery `key` until aborted.
fn renew_while(inner: &Arc<Inner>, key: &str) -> tokio::task::JoinHandle<()> {
    let inner = inner.clone();
    let key = key.to_owned();
    tokio::spawn(async move {
        loop {
            let lease = inner.bot.settings().lease;
            tokio::time::sleep(lease / 3).await;
            let until = inner.bot.now() + lease;
            match inner.store.renew_inbound(&key, &inner.owner, until).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => tracing::warn!(key, error = %e, "could not renew a delivery's lease"),
            }
        }
    })
}
