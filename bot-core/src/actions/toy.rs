//! `toy`: refresh the requester's own toy database (the mapping decides which).

use crate::actions::jobs::{job_reply, run_job};
use crate::engine::{audit, Ctx};
use crate::reply::{Invocation, Outcome, Reply};

pub(crate) async fn toy(ctx: &Ctx<'_>, inv: &Invocation) -> Reply {
    let Some(toy) = &ctx.config().toy else {
        return Reply::message(
            Outcome::Rejected,
            "Toy databases are not configured here (no `toy:` section in instances.yaml).",
        );
    };
    let Some(database) = toy.users.get(ctx.user) else {
        audit(ctx, inv, "refused: no toy database", None).await;
        return Reply::message(
            Outcome::Rejected,
            format!(
                "<@{}>, you have no toy database yet. Ask an admin to add `{}: toy_<yourname>` under `toy.users` in instances.yaml.",
                ctx.user, ctx.user
            ),
        );
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
    job_reply(ctx, inv, &title, &toy.job, result, took).await
}
