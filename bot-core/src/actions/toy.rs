//! `toy`: refresh the requester's own toy database (the mapping decides which).

use async_trait::async_trait;

use crate::actions::jobs::{job_reply, run_job};
use crate::config::CommandSpec;
use crate::context::{Action, Ctx};
use crate::rejection::Rejection;
use crate::reply::{Invocation, Outcome, Reply};

/// `toy`.
pub(crate) struct Toy;

#[async_trait]
impl Action for Toy {
    async fn run(&self, ctx: &Ctx<'_>, _: &CommandSpec, inv: Invocation) -> Reply {
        toy(ctx, inv).await
    }
}

async fn toy(ctx: &Ctx<'_>, inv: Invocation) -> Reply {
    let Some(toy) = &ctx.config().toy else {
        return Rejection::ToyNotConfigured.reply();
    };
    let Some(database) = toy.users.get(ctx.user) else {
        ctx.audit(&inv, "refused: no toy database").await;
        return Rejection::NoToyDatabase {
            user: ctx.user.to_owned(),
        }
        .reply();
    };
    let title = format!(
        ":toy: Refreshing toy database `{database}` from master for <@{}>",
        ctx.user
    );
    let vars = [("database", database.as_str()), ("user", ctx.user)];
    let (result, took) = run_job(ctx, &toy.job, &vars, |line| {
        Reply::message(Outcome::Progress, format!("{title}\n{line}"))
    })
    .await;
    job_reply(ctx, &inv, &title, &toy.job, result, took).await
}
