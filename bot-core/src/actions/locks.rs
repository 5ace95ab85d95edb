//! `lock` and `unlock`, and the environment lock every traffic-moving run holds.

use async_trait::async_trait;

use crate::config::CommandSpec;
use crate::context::{Action, Ctx};
use crate::failure::told;
use crate::ports::{Lock, LockOutcome};
use crate::rejection::Rejection;
use crate::reply::{Invocation, Outcome, Reply};

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
            expires: now + ctx.config().settings.lock_lease,
            action: None,
            run: None,
        };
        match ctx.backends.store.try_lock(lock, now).await {
            Ok(LockOutcome::Acquired) => {
                ctx.audit(&inv, "ok").await;
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
                ctx.audit(&inv, "ok").await;
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

/// Takes `env`'s lock for run `run` of `action`, leased for the work lease (the run
/// renews it); a refusal names whoever holds it.
pub(crate) async fn take_for_run(
    ctx: &Ctx<'_>,
    env: &str,
    action: &str,
    reason: String,
    run: &str,
) -> Result<Lock, Reply> {
    let now = ctx.now();
    let lock = Lock {
        env: env.to_owned(),
        holder: ctx.user.to_owned(),
        reason,
        since: now,
        expires: now + ctx.config().settings.lease,
        action: Some(action.to_owned()),
        run: Some(run.to_owned()),
    };
    match ctx.backends.store.try_lock(lock.clone(), now).await {
        Ok(LockOutcome::Acquired) => Ok(lock),
        Ok(LockOutcome::HeldBy(held)) => Err(Rejection::Locked {
            lock: Box::new(held),
            now,
            user: ctx.user.to_owned(),
        }
        .reply()),
        Err(e) => Err(Reply::message(
            Outcome::Failed,
            format!(
                "I could not lock *{env}*: {}. Nothing was changed.",
                told(&e)
            ),
        )),
    }
}

/// After a takeover: `lock` (the run's) renewed when it still holds, taken again when
/// it lapsed and nobody took the environment meanwhile; `None` when someone else
/// holds it now.
pub(crate) async fn reclaim(ctx: &Ctx<'_>, lock: &Lock) -> Option<Lock> {
    let now = ctx.now();
    let lock = Lock {
        expires: now + ctx.config().settings.lease,
        ..lock.clone()
    };
    let store = &ctx.backends.store;
    match store.lock_of(&lock.env, now).await {
        Ok(Some(held)) if held.holder == lock.holder && held.since == lock.since => store
            .renew_lock(&lock, lock.expires)
            .await
            .ok()?
            .then_some(lock),
        Ok(Some(_)) | Err(_) => None,
        Ok(None) => matches!(
            store.try_lock(lock.clone(), now).await,
            Ok(LockOutcome::Acquired)
        )
        .then_some(lock),
    }
}
