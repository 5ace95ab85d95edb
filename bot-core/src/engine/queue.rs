//! The deploy queue, as a step of the invocation pipeline: a deploy refused on a
//! locked environment is put in line when it asked to wait (`when free`), else the
//! refusal offers a `Queue me` button. Starting the first in line is in `queued`.

use crate::actions::queue::{failed, holder};
use crate::context::{Ctx, Offer};
use crate::ports::Queued;
use crate::reply::{ButtonAction, ButtonStyle, Confirm, Invocation, Outcome, Reply};
use crate::steps::queue_words::{wants_queue, without_queue_words, WHEN_FREE};
use crate::text::code;

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
                "`Queue me` (or {}) waits in line and starts it when *{env}* is free.",
                code(&format!("{} when free", without_queue_words(inv).as_text()))
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
            ":hourglass_flowing_sand: You're #{place} in line for *{env}*, {after}. I'll start {} by myself when *{env}* is free and tell you here.",
            code(&plain.as_text())
        ),
    )
    .context(format!(
        "`queue {env}` shows the line; `unqueue {env}` leaves it."
    ))
}
