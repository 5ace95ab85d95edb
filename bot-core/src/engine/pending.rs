//! Starting a pending run — an approved request, or the first deploy in line — as
//! its requester, through the whole invocation pipeline (permission, freeze, lock,
//! the action's own run). The run it starts is named after the pending run and takes
//! it over in the same write, so whichever replica starts it, it starts once.

use std::sync::Arc;
use std::time::Duration;

use super::invoke;
use crate::context::{Clock, Ctx};
use crate::ports::store::{Queued, Run, RunStatus};
use crate::ports::Store;
use crate::reply::{Approved, Invocation, Outcome, Reply};
use crate::runs::pending::PendingStart;
use crate::text::human;

/// Starts pending run `run` (its lease is ours) and returns the reply of what it
/// ran. `ctx` says where progress and the reply go.
pub(crate) async fn start(ctx: &Ctx<'_>, run: Run) -> Reply {
    let store = ctx.backends.store.clone();
    let Ok(what) = serde_json::from_value::<PendingStart>(run.state.clone()) else {
        tracing::error!(run = %run.id, "a pending run could not be read; dropping it");
        end(&*store, &run, RunStatus::Failed).await;
        return Reply::message(
            Outcome::Failed,
            "A request waiting to start could not be read; nothing was done. Ask again.",
        );
    };
    let renew = tokio::spawn(keep(
        store.clone(),
        run.clone(),
        ctx.config().settings.lease,
        ctx.backends.clock.clone(),
    ));
    let reply = match what {
        PendingStart::Approval { id, channel } => approved(ctx, &run, &id, channel).await,
        PendingStart::Queued { item } => queued(ctx, &run, item).await,
    };
    renew.abort();
    end(&*store, &run, RunStatus::Done).await;
    reply
}

/// Marks the pending run ended, unless the run it started took it over already.
async fn end(store: &dyn Store, run: &Run, status: RunStatus) {
    if let Err(e) = store
        .finish_run(&run.id, run.fence, &run.state, status)
        .await
    {
        tracing::warn!(run = %run.id, error = %e, "could not mark a pending run ended");
    }
}

/// Keeps the pending run's lease while it starts (a slow compare endpoint, a busy
/// store), so no other replica starts it meanwhile.
async fn keep(store: Arc<dyn Store>, run: Run, lease: Duration, clock: Clock) {
    loop {
        tokio::time::sleep(lease / 3).await;
        let until = clock() + lease;
        match store
            .save_run(&run.id, run.fence, &run.state, RunStatus::Pending, until)
            .await
        {
            Ok(true) => {}
            // Started (or taken over): nothing more to keep.
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(run = %run.id, error = %e, "could not renew a pending run's lease")
            }
        }
    }
}

/// Approval request `id`'s invocation, run as its requester.
async fn approved(ctx: &Ctx<'_>, run: &Run, id: &str, channel: Option<String>) -> Reply {
    let a = match ctx.backends.store.approval(id).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            return Reply::message(
                Outcome::Failed,
                format!("Request `{id}` no longer exists; nothing was done."),
            )
        }
        Err(e) => return Reply::message(Outcome::Failed, format!("{}.", crate::failure::told(&e))),
    };
    let Ok(inv) = serde_json::from_value::<Invocation>(a.invocation.clone()) else {
        return Reply::message(
            Outcome::Failed,
            format!("Request `{id}` is unreadable; nothing was done. Ask again."),
        );
    };
    let inv = Invocation {
        confirmed: true,
        approval: Some(Approved {
            id: a.id.clone(),
            by: a.approvers.clone(),
        }),
        ..inv
    };
    let as_requester = Ctx {
        user: &a.requester,
        channel: channel.as_deref().or(ctx.channel),
        delivery: Some(&run.id),
        reply_to: run.message.as_deref().or(ctx.reply_to),
        ..*ctx
    };
    Box::pin(invoke::run_invocation(&as_requester, inv)).await
}

/// A deploy that waited in line, run as whoever queued it; put back at its place
/// when someone else took the environment first.
async fn queued(ctx: &Ctx<'_>, run: &Run, item: Queued) -> Reply {
    let store = &ctx.backends.store;
    let Ok(inv) = serde_json::from_value::<Invocation>(item.invocation.clone()) else {
        return Reply::message(
            Outcome::Failed,
            format!(
                "<@{}>, your deploy queued for *{}* could not be started: its saved request is unreadable.",
                item.user, item.env
            ),
        );
    };
    let as_requester = Ctx {
        user: &item.user,
        channel: item.channel.as_deref(),
        delivery: Some(&run.id),
        reply_to: run.message.as_deref().or(ctx.reply_to),
        ..*ctx
    };
    let waited = human(ctx.now().duration_since(item.since).unwrap_or_default());
    ctx.progress
        .update(&Reply::message(
            Outcome::Progress,
            format!(
                ":arrow_forward: <@{}>, your turn: *{}* is free, so I'm starting `{}` you queued {waited} ago.",
                item.user,
                item.env,
                inv.as_text()
            ),
        ))
        .await;
    tracing::info!(env = %item.env, user = %item.user, "starting a queued deploy");
    let reply = Box::pin(invoke::run_invocation(&as_requester, inv)).await;
    // Someone took the environment between our look and the deploy's own lock:
    // back to its place in line, nothing said.
    if reply.outcome == Outcome::Rejected
        && matches!(store.lock_of(&item.env, ctx.now()).await, Ok(Some(_)))
    {
        end(&**store, run, RunStatus::Done).await;
        match store.enqueue(&item).await {
            Ok(_) => return Reply::handed_over(),
            Err(e) => {
                tracing::error!(error = %e, env = %item.env, "a queued deploy could not be put back in line")
            }
        }
    }
    if reply.outcome == Outcome::HandedOver {
        return reply;
    }
    reply.context(format!(
        "Queued by <@{}> {waited} before it started, when *{}* came free.",
        item.user, item.env
    ))
}
