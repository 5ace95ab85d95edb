//! Admission of work from every transport: deduplicate deliveries, bound the work in
//! flight, run the engine in tracked background tasks, and drain them on shutdown.
//! Transport-neutral: a delivery is a key, a [`Request`] and a [`ReplySink`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bot_core::{Bot, Request};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::chat::{AsProgress, ReplySink};
use crate::metrics::Metrics;

/// What became of a delivery; transports turn it into their acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Work started in the background.
    Scheduled,
    /// Nothing to do (a bot's message, an edit, another event type).
    Ignored,
    /// The same delivery was already taken (a retry, a replayed request).
    Duplicate,
    /// Too much work in flight: refuse so the sender delivers it again later.
    Overloaded,
    /// Shutting down: no new work.
    ShuttingDown,
}

impl Accepted {
    /// `true` when the work was refused (overload or shutdown).
    pub fn refused(self) -> bool {
        matches!(self, Accepted::Overloaded | Accepted::ShuttingDown)
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

/// One delivery of work: its dedupe key (none for transports that cannot repeat
/// themselves, like the console), the request, where its answers go, and a
/// description for logs.
pub struct Delivery {
    /// Dedupe key (`event_id`, `slash:<trigger_id>`, …).
    pub key: Option<String>,
    /// The request.
    pub request: Request,
    /// Where progress and the reply go.
    pub sink: Arc<dyn ReplySink>,
    /// What it is, for logs and shutdown.
    pub what: String,
}

/// Shared by every transport; cheap to clone.
#[derive(Clone)]
pub struct Intake {
    inner: Arc<Inner>,
}

struct Inner {
    bot: Bot,
    metrics: Metrics,
    permits: Arc<Semaphore>,
    accepting: AtomicBool,
    tasks: std::sync::Mutex<Tasks>,
    /// Number of tracked tasks, for [`Intake::drain`].
    running: watch::Sender<usize>,
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
    /// An intake running `bot`, with at most `max_in_flight` requests processed at once.
    pub fn new(bot: Bot, metrics: Metrics, max_in_flight: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                bot,
                metrics,
                permits: Arc::new(Semaphore::new(max_in_flight.max(1))),
                accepting: AtomicBool::new(true),
                tasks: std::sync::Mutex::new(Tasks::default()),
                running: watch::Sender::new(0),
            }),
        }
    }

    /// The bot.
    pub fn bot(&self) -> &Bot {
        &self.inner.bot
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Refuses new work from now on (shutdown): deliveries get
    /// [`Accepted::ShuttingDown`]; work already running goes on.
    pub fn stop_accepting(&self) {
        self.inner.accepting.store(false, Ordering::SeqCst);
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

    /// Takes a delivery: refuses it when shutting down or overloaded, drops a repeat
    /// of a key already taken, else runs the engine on it in the background and
    /// hands progress and the reply to its sink.
    pub async fn submit(&self, delivery: Delivery) -> Accepted {
        let permit = match self.permit() {
            Ok(p) => p,
            Err(refused) => return refused,
        };
        if let Some(key) = &delivery.key {
            if !self.first_delivery(key).await {
                return Accepted::Duplicate;
            }
        }
        let bot = self.inner.bot.clone();
        let Delivery {
            request,
            sink,
            what,
            ..
        } = delivery;
        self.spawn(what, Some(permit), async move {
            let reply = bot.handle_with(request, &AsProgress(&*sink)).await;
            sink.finish(&reply).await;
        });
        Accepted::Scheduled
    }

    /// Runs a short answer a transport owes (such as "try again") in the background:
    /// outside admission, but tracked and drained on shutdown like any work.
    pub fn spawn_answer<F>(&self, what: String, work: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.spawn(what, None, work);
    }

    /// A permit for one more request, or why not.
    fn permit(&self) -> Result<OwnedSemaphorePermit, Accepted> {
        if !self.is_accepting() {
            return Err(Accepted::ShuttingDown);
        }
        self.inner.permits.clone().try_acquire_owned().map_err(|_| {
            self.inner.metrics.shed();
            Accepted::Overloaded
        })
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

    /// `false` when `key` was taken before (counted as deduplicated).
    async fn first_delivery(&self, key: &str) -> bool {
        let bot = &self.inner.bot;
        match bot.store().first_delivery(key, bot.now()).await {
            Ok(true) => true,
            Ok(false) => {
                self.inner.metrics.deduplicated();
                false
            }
            // Better a rare double answer than a lost one.
            Err(e) => {
                tracing::error!(key, "could not record the delivery: {e}");
                true
            }
        }
    }
}
