//! `lock` and `unlock`, and [`with_lock`]: the environment lock every traffic move
//! runs under.

use std::time::Duration;

use async_trait::async_trait;

use crate::config::CommandSpec;
use crate::context::{Action, Ctx};
use crate::failure::told;
use crate::ports::{Lock, LockOutcome};
use crate::rejection::Rejection;
use crate::reply::{Invocation, Outcome, Reply};

/// A manual lock lasts until unlocked (or a week, whichever comes first).
const MANUAL_LOCK: Duration = Duration::from_secs(7 * 24 * 3600);

/// `lock <env> [reason]`.
pub(crate) struct TakeLock;

#[async_trait]
impl Action for TakeLock {
    async fn run(&self, ctx: &Ctx<'_>, cmd: &CommandSpec, inv: Invocation) -> Reply {
        let Some(env) = inv.target.environment() else {
            return Rejection::unsupported(&cmd.name, &inv.target).reply();
        };
        let now = ctx.now();
        let reason = if inv.args.is_empty() {
            "locked by hand".to_owned()
        } else {
            inv.args.join(" ")
        };
        let lock = Lock {
            env: env.to_owned(),
            holder: ctx.user.to_owned(),
            reason: reason.clone(),
            since: now,
            expires: now + MANUAL_LOCK,
            action: None,
        };
        match ctx.backends.store.try_lock(lock, now).await {
            Ok(LockOutcome::Acquired) => {
                ctx.audit(&inv, "ok", None).await;
                Reply::message(
                    Outcome::Done,
                    format!(
                        ":lock: *{env}* is locked by <@{}>: {reason}. Deploys, rollbacks, switches, \
                         restarts and jobs on *{env}* are refused until `unlock {env}`.",
                        ctx.user
                    ),
                )
            }
            Ok(LockOutcome::HeldBy(held)) => Rejection::Locked {
                lock: Box::new(held),
                now,
                user: ctx.user.to_owned(),
            }
            .reply(),
            Err(e) => Reply::message(
                Outcome::Failed,
                format!("I could not lock {env}: {}", told(&e)),
            ),
        }
    }
}

/// `unlock <env>`.
pub(crate) struct ReleaseLock;

#[async_trait]
impl Action for ReleaseLock {
    async fn run(&self, ctx: &Ctx<'_>, cmd: &CommandSpec, inv: Invocation) -> Reply {
        let Some(env) = inv.target.environment() else {
            return Rejection::unsupported(&cmd.name, &inv.target).reply();
        };
        let now = ctx.now();
        // A running deploy, rollback or switch releases its own lock; pulling it from
        // under the action would let a second one start while traffic is moving.
        match ctx.backends.store.lock_of(env, now).await {
            Ok(Some(held)) if held.action.is_some() => {
                return Rejection::HeldByRunningAction {
                    lock: Box::new(held),
                    now,
                }
                .reply()
            }
            Ok(_) => {}
            Err(e) => {
                return Reply::message(
                    Outcome::Failed,
                    format!("I could not unlock {env}: {}", told(&e)),
                )
            }
        }
        match ctx.backends.store.unlock(env).await {
            Ok(Some(held)) => {
                ctx.audit(&inv, "ok", None).await;
                let was = if held.holder == ctx.user {
                    String::new()
                } else {
                    format!(" (it was held by <@{}>: {})", held.holder, held.reason)
                };
                Reply::message(Outcome::Done, format!(":unlock: *{env}* is unlocked{was}."))
            }
            Ok(None) => Reply::message(Outcome::Info, format!("*{env}* was not locked.")),
            Err(e) => Reply::message(
                Outcome::Failed,
                format!("I could not unlock {env}: {}", told(&e)),
            ),
        }
    }
}

/// Takes the environment lock for the duration of `f` (leased for `lease`, which must
/// outlast the action); refuses, naming the holder, when someone holds it. Only this
/// action's own lock is released at the end, never one taken by someone else meanwhile.
pub(crate) async fn with_lock<'a, F, Fut>(
    ctx: &'a Ctx<'a>,
    env: &str,
    action: &str,
    why: &str,
    lease: Duration,
    f: F,
) -> Reply
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Reply>,
{
    let now = ctx.now();
    let lock = Lock {
        env: env.to_owned(),
        holder: ctx.user.to_owned(),
        reason: why.to_owned(),
        since: now,
        expires: now + lease,
        action: Some(action.to_owned()),
    };
    match ctx.backends.store.try_lock(lock.clone(), now).await {
        Ok(LockOutcome::Acquired) => {}
        Ok(LockOutcome::HeldBy(held)) => {
            return Rejection::Locked {
                lock: Box::new(held),
                now,
                user: ctx.user.to_owned(),
            }
            .reply()
        }
        Err(e) => {
            return Reply::message(
                Outcome::Failed,
                format!(
                    "I could not lock *{env}*: {}. Nothing was changed.",
                    told(&e)
                ),
            )
        }
    }
    let reply = f().await;
    match ctx.backends.store.release(&lock).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(env, "the lock had lapsed before the action finished"),
        Err(e) => tracing::error!(env, error = %e, "could not release lock"),
    }
    reply
}

/// A lease long enough for every step of an action on `pools` pools: each build may
/// take Jenkins' whole timeout and each gate its whole timeout.
pub(crate) fn lease_for(ctx: &Ctx<'_>, pools: usize) -> Duration {
    let settings = &ctx.config().settings;
    let build = ctx
        .config()
        .jenkins
        .as_ref()
        .map_or(Duration::from_secs(30 * 60), |j| j.timeout);
    let per_pool = build + settings.gate_timeout + Duration::from_secs(60);
    settings
        .lock_lease
        .max(per_pool * u32::try_from(pools.max(1)).unwrap_or(u32::MAX))
}
