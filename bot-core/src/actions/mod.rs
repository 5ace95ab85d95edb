//! Actions: one module per family; [`dispatch`] picks by the command's `action`.

use crate::config::{ActionKind, CommandSpec};
use crate::engine::Ctx;
use crate::reply::{Invocation, Outcome, Reply, Target};

pub mod health;
mod help;
mod locks;
mod status;
mod tasks;

/// Runs an authorised, confirmed invocation.
pub(crate) async fn dispatch(ctx: &Ctx<'_>, cmd: &CommandSpec, inv: Invocation) -> Reply {
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
        (action, target) => Reply::message(
            Outcome::Rejected,
            format!(
                "`{}` on `{target}` is not available yet ({action:?}).",
                cmd.name
            ),
        ),
    }
}
