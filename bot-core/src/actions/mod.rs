//! Actions: one module per family; [`dispatch`] picks by the command's `action`.

use crate::config::{ActionKind, ActionSpec, CommandSpec};
use crate::engine::Ctx;
use crate::reply::{Invocation, Outcome, Reply, Target};

pub(crate) mod deploy;
pub mod health;
mod help;
mod jobs;
mod locks;
mod restart;
pub mod status;
mod tasks;
mod toy;

/// Actions that run without taking the lock themselves but must not run while an
/// environment is locked (a deploy is moving traffic, or someone froze it).
fn respects_locks(action: &ActionKind) -> bool {
    matches!(
        action,
        ActionKind::Restart | ActionKind::ForceRestart | ActionKind::Job(_) | ActionKind::Http(_)
    )
}

/// Checks an invocation's arguments before confirmation and before anything runs.
pub(crate) fn check(
    config: &crate::config::Config,
    cmd: &CommandSpec,
    inv: &Invocation,
) -> Result<(), Reply> {
    match cmd.action {
        ActionKind::Deploy => deploy::check(config, inv),
        _ => Ok(()),
    }
}

/// Runs an authorised, confirmed invocation.
pub(crate) async fn dispatch(ctx: &Ctx<'_>, cmd: &CommandSpec, inv: Invocation) -> Reply {
    if respects_locks(&cmd.action) {
        if let Some(env) = inv.target.env() {
            let now = ctx.now();
            match ctx.b.store.lock_of(env, now).await {
                Ok(Some(held)) => return locks::locked_reply(now, &held),
                Ok(None) => {}
                Err(e) => {
                    return Reply::message(
                        Outcome::Failed,
                        format!("I could not check the lock of {env}: {e}"),
                    )
                }
            }
        }
    }
    match (&cmd.action, &inv.target) {
        (ActionKind::Help, _) => help::help(ctx, &inv.args),
        (ActionKind::Status, Target::None) => status::status(ctx, None).await,
        (ActionKind::Status, Target::Env { env, .. }) => status::status(ctx, Some(env)).await,
        (ActionKind::Health, Target::Instance(r)) => health::health(ctx, r).await,
        (ActionKind::Tasks, Target::Instance(r)) => tasks::tasks(ctx, r).await,
        (ActionKind::Lock, Target::Env { env, .. }) => locks::lock(ctx, &inv, env).await,
        (ActionKind::Unlock, Target::Env { env, .. }) => locks::unlock(ctx, &inv, env).await,
        (ActionKind::History, Target::None) => locks::history(ctx, None).await,
        (ActionKind::History, Target::Env { env, .. }) => locks::history(ctx, Some(env)).await,
        (ActionKind::Deploy, Target::Env { env, pools }) => {
            deploy::deploy(ctx, &inv, env, pools).await
        }
        (ActionKind::Rollback, Target::Env { env, pools }) => {
            deploy::move_traffic(ctx, &inv, env, pools, None, true).await
        }
        (ActionKind::Switch, Target::Pool { env, pool, member }) => {
            deploy::move_traffic(
                ctx,
                &inv,
                env,
                std::slice::from_ref(pool),
                member.clone(),
                false,
            )
            .await
        }
        (ActionKind::Switch, Target::Env { env, pools }) => {
            deploy::move_traffic(ctx, &inv, env, pools, None, false).await
        }
        (ActionKind::Restart, Target::Instance(r)) => restart::restart(ctx, &inv, r, false).await,
        (ActionKind::ForceRestart, Target::Instance(r)) => {
            restart::restart(ctx, &inv, r, true).await
        }
        (ActionKind::Toy, _) => toy::toy(ctx, &inv).await,
        (ActionKind::Job(job), _) => jobs::custom(ctx, &inv, ActionSpec::Job(job.clone())).await,
        (ActionKind::Http(spec), _) => {
            jobs::custom(ctx, &inv, ActionSpec::Http(spec.clone())).await
        }
        (action, target) => Reply::message(
            Outcome::Rejected,
            format!(
                "`{}` on `{target}` is not available yet ({action:?}).",
                cmd.name
            ),
        ),
    }
}
