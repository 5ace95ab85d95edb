//! `queue [env]` lists the deploys waiting in line for an environment; `unqueue [env]`
//! leaves the line. Putting a deploy in line (`deploy <env> when free`, or `Queue me`
//! on a "locked" refusal) and starting the first in line when its environment frees
//! are steps of the engine.

use async_trait::async_trait;

use crate::config::CommandSpec;
use crate::context::{Action, Ctx};
use crate::failure::told;
use crate::ports::Lock;
use crate::reply::{Invocation, Outcome, Reply};
use crate::text::{code, escape, human};

/// Who holds `lock`, said to `user`: `after the running `deploy` of you`.
pub(crate) fn holder(lock: &Lock, user: &str) -> String {
    let who = if lock.holder == user {
        "you".to_owned()
    } else {
        format!("<@{}>", lock.holder)
    };
    match &lock.action {
        Some(action) => format!("after the running `{action}` of {who}"),
        None => format!("after {who}'s lock ({})", escape(&lock.reason)),
    }
}

pub(crate) fn failed(env: &str, e: &crate::ports::StoreError) -> Reply {
    Reply::message(
        Outcome::Failed,
        format!("I could not reach the line for *{env}*: {}.", told(e)),
    )
}

/// `queue [env]`: the line of one environment, or of every environment.
pub(crate) struct ShowQueue;

#[async_trait]
impl Action for ShowQueue {
    async fn run(&self, ctx: &Ctx<'_>, _: &CommandSpec, inv: Invocation) -> Reply {
        let env = inv.target.env().map(str::to_owned);
        let store = &ctx.backends.store;
        let now = ctx.now();
        let line = match store.queued(env.as_deref()).await {
            Ok(line) => line,
            Err(e) => return failed(env.as_deref().unwrap_or("any environment"), &e),
        };
        let envs: Vec<String> = match &env {
            Some(e) => vec![e.clone()],
            None => ctx
                .config()
                .environments
                .iter()
                .map(|e| e.name.clone())
                .filter(|e| line.iter().any(|q| &q.env == e))
                .collect(),
        };
        if envs.is_empty() || line.is_empty() {
            let where_ = env.map_or_else(|| "any environment".to_owned(), |e| format!("*{e}*"));
            return Reply::message(
                Outcome::Info,
                format!("Nobody is waiting for {where_}. `deploy <env> when free` waits in line when an environment is busy."),
            );
        }
        let mut reply = Reply::new(Outcome::Info);
        for e in envs {
            let busy = match store.lock_of(&e, now).await {
                Ok(Some(lock)) => format!(
                    "busy: {} ({}, for {})",
                    holder(&lock, ctx.user).trim_start_matches("after "),
                    escape(&lock.reason),
                    human(now.duration_since(lock.since).unwrap_or_default())
                ),
                Ok(None) => "free: the first in line starts now".to_owned(),
                Err(_) => "its lock cannot be read".to_owned(),
            };
            let rows: Vec<String> = line
                .iter()
                .filter(|q| q.env == e)
                .enumerate()
                .map(|(i, q)| {
                    let what = serde_json::from_value::<Invocation>(q.invocation.clone())
                        .map_or_else(|_| "deploy".to_owned(), |inv| inv.as_text());
                    format!(
                        "{}. <@{}> — {} (waiting {})",
                        i + 1,
                        q.user,
                        code(&what),
                        human(now.duration_since(q.since).unwrap_or_default())
                    )
                })
                .collect();
            reply = reply.text(format!(
                ":hourglass_flowing_sand: *{e}* — {busy}\n{}",
                rows.join("\n")
            ));
        }
        reply
    }
}

/// `unqueue [env]`: leaves the line of one environment, or of every environment.
pub(crate) struct LeaveQueue;

#[async_trait]
impl Action for LeaveQueue {
    async fn run(&self, ctx: &Ctx<'_>, _: &CommandSpec, inv: Invocation) -> Reply {
        let env = inv.target.env().map(str::to_owned);
        let store = &ctx.backends.store;
        let where_ = env
            .as_deref()
            .map_or_else(|| "any environment".to_owned(), |e| format!("*{e}*"));
        let line = match store.queued(env.as_deref()).await {
            Ok(line) => line,
            Err(e) => return failed(&where_, &e),
        };
        let mut left = Vec::new();
        for q in line.iter().filter(|q| q.user == ctx.user) {
            match store.dequeue(&q.id, None).await {
                Ok(Some(q)) => left.push(q.env),
                Ok(None) => {}
                Err(e) => return failed(&q.env, &e),
            }
        }
        if left.is_empty() {
            return Reply::message(
                Outcome::Info,
                format!("You're not waiting in line for {where_}."),
            );
        }
        ctx.audit(&inv, "ok").await;
        let envs: Vec<String> = left.iter().map(|e| format!("*{e}*")).collect();
        Reply::message(
            Outcome::Done,
            format!(
                ":wave: You left the line for {}. Nothing of yours will start there.",
                envs.join(", ")
            ),
        )
    }
}
