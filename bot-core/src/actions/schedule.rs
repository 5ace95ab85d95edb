//! `scheduled [env]` lists the deploys scheduled for later; `unschedule <id>` cancels
//! one (its requester's, or anyone's for a member of `admins`). Scheduling itself
//! (`deploy staging at 18:00`) is a step of the engine ([`crate::schedule`]).

use async_trait::async_trait;

use crate::config::CommandSpec;
use crate::context::{Action, Ctx};
use crate::failure::told;
use crate::ports::store::RunStatus;
use crate::reply::{Invocation, Outcome, Reply};
use crate::schedule::{self, from_now, run_id};
use crate::steps::queue_words::without_queue_words;
use crate::text::code;

/// `scheduled [env]`.
pub(crate) struct ShowScheduled;

#[async_trait]
impl Action for ShowScheduled {
    async fn run(&self, ctx: &Ctx<'_>, _: &CommandSpec, inv: Invocation) -> Reply {
        let env = inv.target.env();
        let all = match schedule::list(ctx, env).await {
            Ok(all) => all,
            Err(reply) => return reply,
        };
        let where_ = env.map_or_else(|| "any environment".to_owned(), |e| format!("*{e}*"));
        if all.is_empty() {
            return Reply::message(
                Outcome::Info,
                format!("Nothing is scheduled for {where_}. `deploy staging at 18:00`, `in 30m` or `tomorrow 07:30 Europe/Prague` schedules a deploy."),
            );
        }
        let now = ctx.now();
        let rows: Vec<String> = all
            .iter()
            .map(|s| {
                let what = s
                    .inv
                    .as_ref()
                    .map_or_else(|| "deploy".to_owned(), |i| without_queue_words(i).as_text());
                let when = schedule::say_at(s.at, &s.zone);
                format!(
                    "• `{}` {} — {when}, {} · <@{}>",
                    s.id,
                    code(&what),
                    from_now(s.at, now),
                    s.run.user
                )
            })
            .collect();
        Reply::message(
            Outcome::Info,
            format!(":alarm_clock: Scheduled for {where_}:\n{}", rows.join("\n")),
        )
        .context("`unschedule <id>` cancels one.".to_owned())
    }
}

/// `unschedule <id>`.
pub(crate) struct Unschedule;

#[async_trait]
impl Action for Unschedule {
    async fn run(&self, ctx: &Ctx<'_>, _: &CommandSpec, inv: Invocation) -> Reply {
        let Some(id) = inv
            .args
            .first()
            .map(|a| a.trim().trim_matches('`').to_owned())
        else {
            return Reply::message(
                Outcome::Info,
                "Which one? `unschedule <id>`; `scheduled` lists them with their ids.",
            );
        };
        let store = &ctx.backends.store;
        let run = match store.run(&run_id(&id)).await {
            Ok(Some(run)) => run,
            Ok(None) => {
                return Reply::message(
                    Outcome::Info,
                    format!(
                        "No deploy is scheduled as {}; `scheduled` lists them.",
                        code(&id)
                    ),
                )
            }
            Err(e) => {
                return Reply::message(
                    Outcome::Failed,
                    format!(
                        "I could not read the schedule: {}. Nothing was cancelled.",
                        told(&e)
                    ),
                )
            }
        };
        if run.status != RunStatus::Pending {
            return Reply::message(
                Outcome::Info,
                format!("{} is not waiting any more: it has started (or was cancelled). `history` shows how it went.", code(&id)),
            );
        }
        let admin = ctx
            .config()
            .groups
            .get("admins")
            .is_some_and(|members| members.iter().any(|m| m == ctx.user));
        if run.user != ctx.user && !admin {
            return Reply::message(
                Outcome::Rejected,
                format!(
                    "{} is <@{}>'s; only they or a member of `admins` can cancel it.",
                    code(&id),
                    run.user
                ),
            );
        }
        // Cancelled under the fencing token it had when read: a replica starting it
        // at this moment has taken it over, and then the cancel is refused.
        match store
            .finish_run(&run.id, run.fence, &run.state, RunStatus::Failed)
            .await
        {
            Ok(true) => {
                ctx.audit(&inv, &format!("unscheduled {id} of <@{}>", run.user))
                    .await;
                Reply::message(
                    Outcome::Done,
                    format!(":no_entry_sign: Cancelled the scheduled deploy {}; it will not start.", code(&id)),
                )
            }
            Ok(false) => Reply::message(
                Outcome::Failed,
                format!("{} is starting right now, too late to cancel it; `abort` or `rollback` it once it runs.", code(&id)),
            ),
            Err(e) => Reply::message(
                Outcome::Failed,
                format!("I could not cancel {}: {}. It is still scheduled.", code(&id), told(&e)),
            ),
        }
    }
}
