//! The deploy queue: `deploy <env> when free`, or the `Queue me` button on a "locked"
//! refusal, puts a deploy in line for its environment instead of refusing it; `queue
//! [env]` lists the line and `unqueue [env]` leaves it. The engine starts the first in
//! line when its environment frees (`Bot::start_queued`).

use async_trait::async_trait;

use crate::config::CommandSpec;
use crate::context::{Action, Ctx, Offer};
use crate::failure::told;
use crate::ports::{Lock, Queued};
use crate::reply::{ButtonAction, ButtonStyle, Confirm, Invocation, Outcome, Reply};
use crate::text::human;

/// The words that ask a deploy to wait in line: `deploy staging when free`.
const WHEN_FREE: [&str; 2] = ["when", "free"];

fn queue_words_at(args: &[String]) -> Option<usize> {
    args.windows(2).position(|w| {
        w[0].eq_ignore_ascii_case(WHEN_FREE[0]) && w[1].eq_ignore_ascii_case(WHEN_FREE[1])
    })
}

/// Whether `inv` asks to wait in line when its environment is busy.
pub(crate) fn wants_queue(inv: &Invocation) -> bool {
    queue_words_at(&inv.args).is_some()
}

/// `inv` without the words asking to wait in line.
pub(crate) fn without_queue_words(inv: &Invocation) -> Invocation {
    let mut plain = inv.clone();
    while let Some(i) = queue_words_at(&plain.args) {
        plain.args.drain(i..i + 2);
    }
    plain
}

fn is_deploy(ctx: &Ctx<'_>, inv: &Invocation) -> bool {
    ctx.config()
        .command(&inv.command)
        .is_some_and(|c| c.action.name() == "deploy")
}

/// What a deploy refused on a locked environment turns into: put in line when it
/// asked to wait (`when free`), else the refusal with a `Queue me` button. Other
/// refusals and other commands are left as they are.
pub(crate) async fn when_locked(ctx: &Ctx<'_>, inv: &Invocation, refusal: Reply) -> Reply {
    if refusal.outcome != Outcome::Rejected || !is_deploy(ctx, inv) {
        return refusal;
    }
    if wants_queue(inv) {
        return enqueue(ctx, inv).await;
    }
    let mut queued = inv.clone();
    queued
        .args
        .extend(WHEN_FREE.iter().map(|w| (*w).to_owned()));
    queued.confirmed = true;
    let env = inv.target.env().unwrap_or_default().to_owned();
    let protected = ctx.config().env(&env).is_some_and(|e| e.protected);
    let mut offer = Offer::new("Queue me", ButtonAction::Run(queued), ButtonStyle::Primary);
    if protected {
        offer.confirm = Some(Confirm {
            title: "Wait in line?".into(),
            text: format!(
                "`{}` starts by itself as soon as *{env}*, a protected environment serving live traffic, is free.",
                without_queue_words(inv).as_text()
            ),
            ok: "Queue me".into(),
            deny: "Cancel".into(),
        });
    }
    match ctx.offer(vec![offer]).await {
        Ok(buttons) => refusal
            .context(format!(
                "`Queue me` (or `{} when free`) waits in line and starts it when *{env}* is free.",
                without_queue_words(inv).as_text()
            ))
            .buttons(buttons),
        Err(_) => refusal,
    }
}

/// Puts deploy `inv` in line for its environment; the reply says its place.
pub(crate) async fn enqueue(ctx: &Ctx<'_>, inv: &Invocation) -> Reply {
    let Some(env) = inv.target.env().map(str::to_owned) else {
        return Reply::message(
            Outcome::Rejected,
            "Only a deploy to an environment can wait in line.",
        );
    };
    let store = &ctx.backends.store;
    let now = ctx.now();
    let line = match store.queued(Some(&env)).await {
        Ok(line) => line,
        Err(e) => return failed(&env, &e),
    };
    if let Some(i) = line.iter().position(|q| q.user == ctx.user) {
        return Reply::message(
            Outcome::Info,
            format!(
                "You're already #{} in line for *{env}*. `queue {env}` shows the line; `unqueue {env}` leaves it.",
                i + 1
            ),
        );
    }
    let plain = Invocation {
        confirmed: true,
        ..without_queue_words(inv)
    };
    let item = Queued {
        id: uuid::Uuid::new_v4().simple().to_string(),
        seq: 0,
        env: env.clone(),
        user: ctx.user.to_owned(),
        invocation: serde_json::to_value(&plain).unwrap_or_default(),
        channel: ctx.channel.map(str::to_owned),
        since: now,
    };
    if let Err(e) = store.enqueue(&item).await {
        return failed(&env, &e);
    }
    let place = line.len() + 1;
    let after = match line.last() {
        Some(q) => format!("after <@{}>", q.user),
        None => match store.lock_of(&env, now).await {
            Ok(Some(lock)) => holder(&lock, ctx.user),
            _ => "next".to_owned(),
        },
    };
    ctx.audit(&plain, &format!("queued #{place}")).await;
    Reply::message(
        Outcome::Done,
        format!(
            ":hourglass_flowing_sand: You're #{place} in line for *{env}*, {after}. I'll start `{}` by myself when *{env}* is free and tell you here.",
            plain.as_text()
        ),
    )
    .context(format!(
        "`queue {env}` shows the line; `unqueue {env}` leaves it."
    ))
}

fn holder(lock: &Lock, user: &str) -> String {
    let who = if lock.holder == user {
        "you".to_owned()
    } else {
        format!("<@{}>", lock.holder)
    };
    match &lock.action {
        Some(action) => format!("after the running `{action}` of {who}"),
        None => format!("after {who}'s lock ({})", lock.reason),
    }
}

fn failed(env: &str, e: &crate::ports::StoreError) -> Reply {
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
                    lock.reason,
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
                        "{}. <@{}> — `{what}` (waiting {})",
                        i + 1,
                        q.user,
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
            match store.dequeue(&q.id).await {
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
