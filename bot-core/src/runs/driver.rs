//! The [`Driver`] of one run: the only writer of its state while it holds the run's
//! fencing token, and the judge of whether the run may take its next external step.

use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::saved::{self, RunState};
use crate::context::{Clock, Ctx};
use crate::ports::store::{Lock, Run, RunStatus};
use crate::ports::Store;
use crate::reply::Reply;

/// How many times a save is tried before the lease counts as unknown.
const SAVE_TRIES: u32 = 3;
/// Pause between two tries.
const RETRY: Duration = Duration::from_millis(200);

/// What the driver knows about its lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lease {
    /// Valid until this time: the send time of the last write the store confirmed,
    /// plus the lease (the run's and its lock's alike).
    Valid(SystemTime),
    /// The last write failed: whether the run is still ours is unknown. The time is
    /// when it was last known valid until.
    Unknown(SystemTime),
    /// Another replica took the run (or its lock) over.
    Lost,
}

/// Why a run stopped before its next step. Either way the run is left to whoever
/// takes it over (another replica, or this one once the lease lapses); the driver
/// that stopped says nothing more (its reply is [`Reply::handed_over`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Stop {
    /// Another replica holds the run's fencing token, or its lock, now.
    #[error("another replica took the run over")]
    Lost,
    /// The store did not confirm a save or a renewal: the lease is unknown.
    #[error("the state store did not confirm the run's lease")]
    LeaseUnknown,
}

impl Stop {
    /// The reply of a driver that stopped: nothing is written.
    pub fn reply(self) -> Reply {
        Reply::handed_over()
    }
}

/// Evidence that the run's lease was known valid when an external step began.
#[derive(Debug)]
#[must_use]
pub struct Permit {
    until: SystemTime,
}

impl Permit {
    /// Until when the lease stays valid without another renewal.
    pub fn until(&self) -> SystemTime {
        self.until
    }
}

struct Shared {
    /// The state as last saved (renewals save it again).
    state: Mutex<Value>,
    lock: Mutex<Option<Lock>>,
    lease: Mutex<Lease>,
    /// One write at a time: a renewal never saves an older state over a newer one.
    writing: tokio::sync::Mutex<()>,
}

fn guard<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Drives one run: saves its typed state `S` under the run's fencing token, renews
/// its lease and lock in the background, grants external steps only under a lease
/// known to be valid, and finishes it.
pub struct Driver<S: RunState> {
    store: Arc<dyn Store>,
    id: String,
    fence: u64,
    lease: Duration,
    clock: Clock,
    shared: Arc<Shared>,
    heartbeat: tokio::task::JoinHandle<()>,
    _state: PhantomData<fn() -> S>,
}

impl<S: RunState> Driver<S> {
    /// Drives `run` (its fencing token is ours, its lease just written), holding `lock`.
    pub(crate) fn drive(ctx: &Ctx<'_>, run: &Run, lock: Option<Lock>) -> Self {
        let store = ctx.backends.store.clone();
        let lease = ctx.config().settings.lease;
        let clock = ctx.backends.clock.clone();
        let until = match &lock {
            Some(l) => run.lease_until.min(l.expires),
            None => run.lease_until,
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(run.state.clone()),
            lock: Mutex::new(lock),
            lease: Mutex::new(Lease::Valid(until)),
            writing: tokio::sync::Mutex::new(()),
        });
        let heartbeat = tokio::spawn(heartbeat(
            store.clone(),
            run.id.clone(),
            run.fence,
            lease,
            clock.clone(),
            shared.clone(),
        ));
        Driver {
            store,
            id: run.id.clone(),
            fence: run.fence,
            lease,
            clock,
            shared,
            heartbeat,
            _state: PhantomData,
        }
    }

    /// The run's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether the run is someone else's now.
    pub fn lost(&self) -> bool {
        *guard(&self.shared.lease) == Lease::Lost
    }

    /// Saves the run's new state (and renews its lease and lock with it). `Err` when
    /// the run is someone else's now, or the store did not confirm the write after a
    /// few tries: the caller stops there, and the run is taken over from the last
    /// state that was saved.
    pub async fn save(&self, state: &S) -> Result<(), Stop> {
        let lock = guard(&self.shared.lock).clone();
        let value = match saved::save(state, lock.as_ref()) {
            Ok(v) => v,
            Err(why) => {
                tracing::error!(run = %self.id, why, "a run's state could not be written down; stopping");
                return Err(Stop::LeaseUnknown);
            }
        };
        let _writing = self.shared.writing.lock().await;
        *guard(&self.shared.state) = value.clone();
        for attempt in 1..=SAVE_TRIES {
            match write(
                &*self.store,
                &self.id,
                self.fence,
                &value,
                self.lease,
                &self.clock,
                lock.as_ref(),
            )
            .await
            {
                Written::Yes(until) => {
                    self.set(Lease::Valid(until));
                    return Ok(());
                }
                Written::Lost => {
                    self.set(Lease::Lost);
                    tracing::warn!(run = %self.id, "another replica took this run over; stopping");
                    return Err(Stop::Lost);
                }
                Written::Unknown => {
                    let last = self.unknown();
                    let again = (self.clock)() + RETRY;
                    if attempt == SAVE_TRIES || again >= last {
                        break;
                    }
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
        tracing::warn!(run = %self.id, "could not save a run's progress: its lease is unknown, so it stops here and is taken over once the lease lapses");
        Err(Stop::LeaseUnknown)
    }

    /// Saves `state` and grants the external step `step` (a trigger, a switch, a
    /// restart, an HTTP action, a rollback) only when the lease is known to be valid
    /// afterwards. On `Err` the step must not happen; the log says why.
    pub async fn checkpoint(&self, state: &S, step: &str) -> Result<Permit, Stop> {
        if let Err(stop) = self.save(state).await {
            tracing::warn!(run = %self.id, step, why = %stop, "stopping before an external step");
            return Err(stop);
        }
        self.permit(step)
    }

    /// Grants the external step `step` when the lease is known valid now (with a
    /// margin for the step itself), without saving first.
    pub fn permit(&self, step: &str) -> Result<Permit, Stop> {
        let now = (self.clock)();
        let margin = self.lease / 4;
        match *guard(&self.shared.lease) {
            Lease::Valid(until) if now + margin < until => Ok(Permit { until }),
            Lease::Lost => {
                tracing::warn!(run = %self.id, step, "stopping before an external step: another replica took this run over");
                Err(Stop::Lost)
            }
            Lease::Valid(_) | Lease::Unknown(_) => {
                tracing::warn!(run = %self.id, step, "stopping before an external step: the run's lease is not known to be valid");
                Err(Stop::LeaseUnknown)
            }
        }
    }

    /// Ends the run with `status` and its final `state`: the status is written and the
    /// lock released in one step, tried until the lease runs out. `Err` when the run is
    /// someone else's, or the end could not be recorded (it stays running, holding its
    /// lock, and is taken over from its last saved state).
    pub async fn finish(self, status: RunStatus, state: &S) -> Result<(), Stop> {
        let lock = guard(&self.shared.lock).clone();
        let value = match saved::save(state, lock.as_ref()) {
            Ok(v) => v,
            Err(why) => {
                tracing::error!(run = %self.id, why, "a run's final state could not be written down");
                return Err(Stop::LeaseUnknown);
            }
        };
        self.end(status, &value).await
    }

    /// Ends a run whose state cannot be read, with the state as it was saved.
    pub(crate) async fn abandon(self, status: RunStatus) {
        let value = guard(&self.shared.state).clone();
        let _ = self.end(status, &value).await;
    }

    async fn end(&self, status: RunStatus, value: &Value) -> Result<(), Stop> {
        // No renewal may land after the end: wait out one in flight, then stop them.
        let _writing = self.shared.writing.lock().await;
        self.heartbeat.abort();
        if self.lost() {
            return Err(Stop::Lost);
        }
        loop {
            match self
                .store
                .finish_run(&self.id, self.fence, value, status)
                .await
            {
                Ok(true) => return Ok(()),
                Ok(false) => {
                    tracing::warn!(run = %self.id, "another replica took this run over before it ended here");
                    return Err(Stop::Lost);
                }
                Err(e) => {
                    let last = self.unknown();
                    if (self.clock)() + RETRY >= last {
                        tracing::error!(run = %self.id, error = %e, "could not record the end of a run: it stays running, holding its lock, until another replica takes it over");
                        return Err(Stop::LeaseUnknown);
                    }
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }

    fn set(&self, lease: Lease) {
        let mut l = guard(&self.shared.lease);
        if *l != Lease::Lost {
            *l = lease;
        }
    }

    /// Marks the lease unknown; returns until when it was last known valid.
    fn unknown(&self) -> SystemTime {
        let mut l = guard(&self.shared.lease);
        match *l {
            Lease::Valid(until) | Lease::Unknown(until) => {
                *l = Lease::Unknown(until);
                until
            }
            Lease::Lost => SystemTime::UNIX_EPOCH,
        }
    }
}

impl<S: RunState> Drop for Driver<S> {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

/// How one write of a run's lease went.
enum Written {
    /// Both the run and its lock are ours until this time.
    Yes(SystemTime),
    /// The run or its lock is someone else's.
    Lost,
    /// The store did not answer, or failed.
    Unknown,
}

/// Saves `value` under `fence` and renews the run's lease and its lock, each
/// bounded by a third of the lease.
async fn write(
    store: &dyn Store,
    id: &str,
    fence: u64,
    value: &Value,
    lease: Duration,
    clock: &Clock,
    lock: Option<&Lock>,
) -> Written {
    let sent = clock();
    let until = sent + lease;
    let bound = lease / 3;
    match tokio::time::timeout(
        bound,
        store.save_run(id, fence, value, RunStatus::Running, until),
    )
    .await
    {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => return Written::Lost,
        Ok(Err(e)) => {
            tracing::warn!(run = %id, error = %e, "could not renew a run's lease");
            return Written::Unknown;
        }
        Err(_) => {
            tracing::warn!(run = %id, "the state store did not answer a run's renewal in time");
            return Written::Unknown;
        }
    }
    let Some(lock) = lock else {
        return Written::Yes(until);
    };
    match tokio::time::timeout(bound, store.renew_lock(lock, until)).await {
        Ok(Ok(true)) => Written::Yes(until),
        Ok(Ok(false)) => {
            tracing::warn!(run = %id, env = %lock.env, "the run's lock is someone else's now");
            Written::Lost
        }
        Ok(Err(e)) => {
            tracing::warn!(run = %id, env = %lock.env, error = %e, "could not renew a run's lock");
            Written::Unknown
        }
        Err(_) => {
            tracing::warn!(run = %id, env = %lock.env, "the state store did not answer a lock renewal in time");
            Written::Unknown
        }
    }
}

/// Renews the run's lease (with its latest state) and its lock every third of a lease.
async fn heartbeat(
    store: Arc<dyn Store>,
    id: String,
    fence: u64,
    lease: Duration,
    clock: Clock,
    shared: Arc<Shared>,
) {
    loop {
        tokio::time::sleep(lease / 3).await;
        let _writing = shared.writing.lock().await;
        let state = guard(&shared.state).clone();
        let lock = guard(&shared.lock).clone();
        let written = write(&*store, &id, fence, &state, lease, &clock, lock.as_ref()).await;
        drop(_writing);
        let mut l = guard(&shared.lease);
        match (written, *l) {
            (_, Lease::Lost) => return,
            (Written::Yes(until), _) => *l = Lease::Valid(until),
            (Written::Lost, _) => {
                tracing::warn!(run = %id, "another replica took this run over; it stops before its next step");
                *l = Lease::Lost;
                return;
            }
            (Written::Unknown, Lease::Valid(until) | Lease::Unknown(until)) => {
                *l = Lease::Unknown(until)
            }
        }
    }
}
