//! `lock` and `unlock`: an environment locked by hand, for maintenance or a reason of
//! one's own. The locks runs hold are taken and released by the run lifecycle.

use async_trait::async_trait;

use crate::config::CommandSpec;
use crate::context::{Action, Ctx};
use crate::failure::told;
use crate::ports::{Lock, LockOutcome, Unlocked};
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
            fence: 0,
        };
        match ctx.backends.store.try_lock(lock, now).await {
            Ok(LockOutcome::Acquired) => {
                ctx.audit(&inv, "ok").await;
                Reply::message(
                    Outcome::Done,
                    format!(
                        ":lock: *{env}* is locked by <@{}>: {}. Deploys, rollbacks, switches, \
                         restarts and jobs on *{env}* are refused until `unlock {env}`.",
                        ctx.user,
                        crate::text::escape(&reason)
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

/// `unlock <env>`: releases a lock taken by hand (or one that lapsed) in one
/// conditional step; a running action's lock is never pulled from under it.
pub(crate) struct ReleaseLock;

#[async_trait]
impl Action for ReleaseLock {
    async fn run(&self, ctx: &Ctx<'_>, cmd: &CommandSpec, inv: Invocation) -> Reply {
        let Some(env) = inv.target.environment() else {
            return Rejection::unsupported(&cmd.name, &inv.target).reply();
        };
        let now = ctx.now();
        match ctx.backends.store.unlock(env, now).await {
            Ok(Unlocked::Released(held)) => {
                ctx.audit(&inv, "ok").await;
                let was = if held.holder == ctx.user {
                    String::new()
                } else {
                    format!(
                        " (it was held by <@{}>: {})",
                        held.holder,
                        crate::text::escape(&held.reason)
                    )
                };
                Reply::message(Outcome::Done, format!(":unlock: *{env}* is unlocked{was}."))
            }
            Ok(Unlocked::HeldByRun(held)) => Rejection::HeldByRunningAction {
                lock: Box::new(held),
                now,
            }
            .reply(),
            Ok(Unlocked::NotLocked) => {
                Reply::message(Outcome::Info, format!("*{env}* was not locked."))
            }
            Err(e) => Reply::message(
                Outcome::Failed,
                format!("I could not unlock {env}: {}", told(&e)),
            ),
        }
    }
}
