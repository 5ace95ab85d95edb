//! `toy`: refresh the requester's own toy database (the mapping decides which), as a
//! persisted run.

use async_trait::async_trait;

use crate::actions::jobs::{resume_action, run_action, Work};
use crate::config::{ActionSpec, CommandSpec};
use crate::context::{Action, Ctx};
use crate::ports::store::Run;
use crate::rejection::Rejection;
use crate::reply::{Invocation, Reply};

/// `toy`.
pub(crate) struct Toy;

/// The job, the title and the database of `ctx.user`, or why there is none.
fn parts(ctx: &Ctx<'_>) -> Result<(ActionSpec, String, String), Rejection> {
    let Some(toy) = &ctx.config().toy else {
        return Err(Rejection::ToyNotConfigured);
    };
    let Some(database) = toy.users.get(ctx.user) else {
        return Err(Rejection::NoToyDatabase {
            user: ctx.user.to_owned(),
        });
    };
    let title = format!(
        ":toy: Refreshing toy database `{database}` from master for <@{}>",
        ctx.user
    );
    Ok((ActionSpec::Job(toy.job.clone()), title, database.clone()))
}

#[async_trait]
impl Action for Toy {
    async fn run(&self, ctx: &Ctx<'_>, cmd: &CommandSpec, inv: Invocation) -> Reply {
        let (spec, title, database) = match parts(ctx) {
            Ok(p) => p,
            Err(refusal) => {
                if matches!(refusal, Rejection::NoToyDatabase { .. }) {
                    ctx.audit(&inv, "refused: no toy database").await;
                }
                return refusal.reply();
            }
        };
        let vars = [("database", database.as_str()), ("user", ctx.user)];
        let work = Work {
            action: cmd.action.name(),
            title: &title,
            spec: &spec,
            vars: &vars,
            lock: None,
        };
        run_action(ctx, &inv, &work).await
    }

    async fn resume(&self, ctx: &Ctx<'_>, cmd: &CommandSpec, inv: Invocation, run: Run) -> Reply {
        let (spec, title, database) = match parts(ctx) {
            Ok(p) => p,
            Err(refusal) => return refusal.reply(),
        };
        let vars = [("database", database.as_str()), ("user", ctx.user)];
        let work = Work {
            action: cmd.action.name(),
            title: &title,
            spec: &spec,
            vars: &vars,
            lock: None,
        };
        resume_action(ctx, &run, &inv, &work).await
    }
}
