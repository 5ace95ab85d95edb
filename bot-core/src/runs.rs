//! Long actions as persisted runs: a [`Driver`] starts a run (taking over the delivery
//! it came from), saves its state after every step under its fencing token, renews its
//! lease and the lock it holds in the background, and finishes it. A run whose driver
//! died is taken over by another replica, which goes on where the state says.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::context::{Clock, Ctx};
use crate::ports::store::{Lock, Run, RunStatus};
use crate::ports::{Store, StoreError};
use crate::reply::Invocation;

struct Shared {
    state: Mutex<Value>,
    lock: Mutex<Option<Lock>>,
    lost: AtomicBool,
}

/// Drives one run: the only writer of its state while it holds the fencing token.
pub struct Driver {
    store: Arc<dyn Store>,
    /// The run's id.
    pub id: String,
    fence: u64,
    lease: Duration,
    clock: Clock,
    shared: Arc<Shared>,
    heartbeat: tokio::task::JoinHandle<()>,
}

fn guard<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl Driver {
    /// Starts a run of `action` for `inv` with `state`, holding `lock` (already
    /// taken). The delivery the request came from is handed over to the run in the
    /// same step, so a restart resumes the run rather than replaying the delivery.
    pub async fn start(
        ctx: &Ctx<'_>,
        id: String,
        action: &str,
        inv: &Invocation,
        state: Value,
        lock: Option<Lock>,
    ) -> Result<Driver, StoreError> {
        let now = ctx.now();
        let lease = ctx.config().settings.lease;
        let run = Run {
            id: id.clone(),
            action: action.to_owned(),
            user: ctx.user.to_owned(),
            env: inv.target.env().map(str::to_owned),
            invocation: serde_json::to_value(inv).unwrap_or_default(),
            message: ctx.reply_to.map(str::to_owned),
            state: state.clone(),
            status: RunStatus::Running,
            fence: 1,
            owner: ctx.backends.owner.clone(),
            lease_until: now + lease,
            started: now,
        };
        if !ctx.backends.store.start_run(&run, ctx.delivery).await? {
            return Err(StoreError::Failed(format!("run {id} exists already")));
        }
        Ok(Self::drive(ctx, id, 1, state, lock))
    }

    /// The id of a run started by this request: from the delivery it came from, so a
    /// replayed delivery finds its run.
    pub fn new_id(ctx: &Ctx<'_>) -> String {
        match ctx.delivery {
            Some(key) => format!("run:{key}"),
            None => format!("run:{}", uuid::Uuid::new_v4().simple()),
        }
    }

    /// Drives `run`, just taken over (its fencing token is ours), from its state.
    pub fn resume(ctx: &Ctx<'_>, run: &Run, lock: Option<Lock>) -> Driver {
        Self::drive(ctx, run.id.clone(), run.fence, run.state.clone(), lock)
    }

    fn drive(ctx: &Ctx<'_>, id: String, fence: u64, state: Value, lock: Option<Lock>) -> Driver {
        let store = ctx.backends.store.clone();
        let lease = ctx.config().settings.lease;
        let clock = ctx.backends.clock.clone();
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            lock: Mutex::new(lock),
            lost: AtomicBool::new(false),
        });
        let heartbeat = tokio::spawn(heartbeat(
            store.clone(),
            id.clone(),
            fence,
            lease,
            clock.clone(),
            shared.clone(),
        ));
        Driver {
            store,
            id,
            fence,
            lease,
            clock,
            shared,
            heartbeat,
        }
    }

    /// Whether another replica took the run over (every later write is refused).
    pub fn lost(&self) -> bool {
        self.shared.lost.load(Ordering::SeqCst)
    }

    /// The lock the run holds, if any.
    pub fn lock(&self) -> Option<Lock> {
        guard(&self.shared.lock).clone()
    }

    /// Saves the run's new state; `false` when the run was taken over (the caller
    /// must stop: someone else drives it now).
    pub async fn save(&self, state: Value) -> bool {
        self.write(state, RunStatus::Running).await
    }

    async fn write(&self, state: Value, status: RunStatus) -> bool {
        if self.lost() {
            return false;
        }
        *guard(&self.shared.state) = state.clone();
        let until = (self.clock)() + self.lease;
        match self
            .store
            .save_run(&self.id, self.fence, &state, status, until)
            .await
        {
            Ok(true) => true,
            Ok(false) => {
                tracing::warn!(run = %self.id, "another replica took this run over; stopping");
                self.shared.lost.store(true, Ordering::SeqCst);
                false
            }
            Err(e) => {
                // The heartbeat keeps trying; the state is saved with the next step.
                tracing::warn!(run = %self.id, error = %e, "could not save a run's progress");
                true
            }
        }
    }

    /// Ends the run with `status` and its final state, releasing the lock it holds.
    pub async fn finish(self, status: RunStatus, state: Value) {
        self.heartbeat.abort();
        if !self.write(state, status).await {
            return;
        }
        if let Some(lock) = self.lock() {
            match self.store.release(&lock).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(env = %lock.env, "the lock had lapsed before the run ended")
                }
                Err(e) => {
                    tracing::error!(env = %lock.env, error = %e, "could not release a run's lock")
                }
            }
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.heartbeat.abort();
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
        let until = clock() + lease;
        let state = guard(&shared.state).clone();
        match store
            .save_run(&id, fence, &state, RunStatus::Running, until)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                shared.lost.store(true, Ordering::SeqCst);
                return;
            }
            Err(e) => tracing::warn!(run = %id, error = %e, "could not renew a run's lease"),
        }
        let lock = guard(&shared.lock).clone();
        if let Some(lock) = lock {
            if let Err(e) = store.renew_lock(&lock, until).await {
                tracing::warn!(env = %lock.env, error = %e, "could not renew a run's lock");
            }
        }
    }
}
