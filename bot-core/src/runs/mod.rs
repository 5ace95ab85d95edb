//! One lifecycle for every long action. A run is started under its environment's lock
//! ([`start_locked`]) or without one ([`start`]), and resumed after a takeover the
//! same way ([`resume_locked`], [`resume`]); its [`Driver`] saves its typed state
//! after every step under the run's fencing token, renews its lease, lets it take an
//! external step (a Jenkins trigger, a switch, a restart, an HTTP action, a rollback)
//! only while the lease is known to be valid, and finishes it: the final status and
//! the release of its lock are one write, so a finished run is never resumed.
//!
//! The lock row names the run and its fencing token: a replica that lost its run has
//! lost its lock with it, and one that cannot tell (the store does not answer) stops
//! before its next step and leaves the run to whoever takes it over.

mod driver;
pub mod pending;
mod saved;

pub use driver::{Driver, Permit, Stop};
pub use saved::{kind_of, RunState, Unreadable};

use crate::context::Ctx;
use crate::failure::told;
use crate::ports::store::{Lock, LockOutcome, Run, RunStatus};
use crate::rejection::Rejection;
use crate::reply::{Invocation, Outcome, Reply};

/// The lock a run takes on its environment.
pub struct LockFor<'a> {
    /// The environment.
    pub env: &'a str,
    /// Why, as others see it (`deploy main`).
    pub reason: String,
}

/// Why a run did not start.
pub enum NotStarted {
    /// Someone holds the environment's lock.
    Locked(Reply),
    /// The store could not record the run (nothing was done), or a run of this
    /// request exists already.
    Failed(Reply),
}

impl NotStarted {
    /// What the requester is told.
    pub fn reply(self) -> Reply {
        match self {
            NotStarted::Locked(r) | NotStarted::Failed(r) => r,
        }
    }
}

/// The id of a run started by this request: from the delivery (or pending run) it
/// came from, so a replayed delivery finds its run and a pending run starts once.
pub fn new_id(ctx: &Ctx<'_>) -> String {
    match ctx.delivery {
        Some(key) => format!("run:{key}"),
        None => format!("run:{}", uuid::Uuid::new_v4().simple()),
    }
}

fn record(ctx: &Ctx<'_>, id: &str, action: &str, inv: &Invocation) -> Run {
    let now = ctx.now();
    Run {
        id: id.to_owned(),
        action: action.to_owned(),
        user: ctx.user.to_owned(),
        env: inv.target.env().map(str::to_owned),
        invocation: serde_json::to_value(inv).unwrap_or(serde_json::Value::Null),
        message: ctx.reply_to.map(str::to_owned),
        state: serde_json::Value::Null,
        status: RunStatus::Running,
        fence: 1,
        owner: ctx.backends.owner.clone(),
        lease_until: now + ctx.config().settings.lease,
        started: now,
    }
}

/// Starts a run of `action` without a lock (restarts, toy refreshes, YAML jobs):
/// records it with `state`, handing the delivery it came from over to it.
pub async fn start<S: RunState>(
    ctx: &Ctx<'_>,
    action: &str,
    inv: &Invocation,
    state: &S,
) -> Result<Driver<S>, NotStarted> {
    let id = new_id(ctx);
    let mut run = record(ctx, &id, action, inv);
    run.state =
        saved::save(state, None).map_err(|e| NotStarted::Failed(not_recorded(action, &e)))?;
    match ctx.backends.store.start_run(&run, ctx.delivery).await {
        Ok(true) => Ok(Driver::drive(ctx, &run, None)),
        Ok(false) => Err(NotStarted::Failed(already(action))),
        Err(e) => Err(NotStarted::Failed(not_recorded(action, &told(&e)))),
    }
}

/// Starts a run of `action` under `lock`'s environment lock: takes the lock (naming
/// the run and its fencing token), records the run with `state`, and releases the
/// lock again when the run cannot be recorded. Someone else's lock is refused.
pub async fn start_locked<S: RunState>(
    ctx: &Ctx<'_>,
    action: &str,
    lock: LockFor<'_>,
    inv: &Invocation,
    state: &S,
) -> Result<Driver<S>, NotStarted> {
    let id = new_id(ctx);
    let now = ctx.now();
    let mut run = record(ctx, &id, action, inv);
    let held = Lock {
        env: lock.env.to_owned(),
        holder: ctx.user.to_owned(),
        reason: lock.reason,
        since: now,
        expires: run.lease_until,
        action: Some(action.to_owned()),
        run: Some(id.clone()),
        fence: run.fence,
    };
    run.state = saved::save(state, Some(&held))
        .map_err(|e| NotStarted::Failed(not_recorded(action, &e)))?;
    let store = &ctx.backends.store;
    match store.try_lock(held.clone(), now).await {
        Ok(LockOutcome::Acquired) => {}
        Ok(LockOutcome::HeldBy(other)) => {
            return Err(NotStarted::Locked(
                Rejection::Locked {
                    lock: Box::new(other),
                    now,
                    user: ctx.user.to_owned(),
                }
                .reply(),
            ))
        }
        Err(e) => {
            return Err(NotStarted::Failed(Reply::message(
                Outcome::Failed,
                format!(
                    "I could not lock *{}*: {}. Nothing was changed.",
                    held.env,
                    told(&e)
                ),
            )))
        }
    }
    let started = store.start_run(&run, ctx.delivery).await;
    if !matches!(started, Ok(true)) {
        // Not recorded: the lock goes back, whatever the reason.
        if let Err(e) = store.release(&held).await {
            tracing::error!(env = %held.env, error = %e, "could not release the lock of a run that did not start; it lapses with its lease");
        }
    }
    match started {
        Ok(true) => Ok(Driver::drive(ctx, &run, Some(held))),
        Ok(false) => Err(NotStarted::Failed(already(action))),
        Err(e) => Err(NotStarted::Failed(not_recorded(action, &told(&e)))),
    }
}

fn not_recorded(action: &str, why: &str) -> Reply {
    Reply::message(
        Outcome::Failed,
        format!(":x: I could not record the {action}: {why}. Nothing was changed."),
    )
}

fn already(action: &str) -> Reply {
    Reply::message(
        Outcome::Failed,
        format!(":x: This {action} was started before; nothing more was done."),
    )
}

/// The typed state saved with `run` (to look at a run, not to drive it).
pub fn read<S: RunState>(run: &Run) -> Result<S, Unreadable> {
    saved::load::<S>(run).map(|(state, _)| state)
}

/// What a resumed run goes on with: its state and the driver that owns it now.
pub struct Resumed<S: RunState> {
    /// The run's state as last saved.
    pub state: S,
    /// Its driver, under the fencing token of the takeover.
    pub driver: Driver<S>,
}

/// Goes on with `run`, just taken over (its fencing token is ours): reads its typed
/// state and, when it held a lock, reclaims it under the new token. A run whose
/// state cannot be read, or whose lock someone else took or released since, is
/// finished as failed and the reply says why; it never goes on guessing.
pub async fn resume<S: RunState>(
    ctx: &Ctx<'_>,
    run: &Run,
    what: &str,
) -> Result<Resumed<S>, Reply> {
    let (state, lock) = match saved::load::<S>(run) {
        Ok(loaded) => loaded,
        Err(why) => {
            tracing::error!(run = %run.id, action = %run.action, error = %why, "a run taken over could not be read");
            let driver: Driver<S> = Driver::drive(ctx, run, None);
            driver.abandon(RunStatus::Failed).await;
            return Err(Reply::message(
                Outcome::Failed,
                format!(":x: The {what} could not be continued after a restart: {why}. Nothing more was done; check `status`."),
            ));
        }
    };
    let Some(mut lock) = lock else {
        return Ok(Resumed {
            state,
            driver: Driver::drive(ctx, run, None),
        });
    };
    lock.fence = run.fence;
    lock.expires = ctx.now() + ctx.config().settings.lease;
    match ctx.backends.store.reclaim_lock(&lock).await {
        Ok(true) => Ok(Resumed {
            state,
            driver: Driver::drive(ctx, run, Some(lock)),
        }),
        Ok(false) => {
            tracing::warn!(run = %run.id, env = %lock.env, "the lock of a run taken over is someone else's now; not going on");
            let driver: Driver<S> = Driver::drive(ctx, run, None);
            driver.abandon(RunStatus::Failed).await;
            Err(Reply::message(
                Outcome::Failed,
                format!(
                    ":x: The {what} on *{}* could not go on after a restart: the environment was locked or unlocked by someone else since. Nothing more was done; check `status {}`.",
                    lock.env, lock.env
                ),
            ))
        }
        Err(e) => {
            // Cannot tell: leave it; the lease lapses and it is taken over again.
            tracing::warn!(run = %run.id, error = %e, "could not reclaim the lock of a run taken over; leaving it for later");
            Err(Reply::handed_over())
        }
    }
}
