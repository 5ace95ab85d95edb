//! Starting a pending run — an approved request, or the first deploy in line — as
//! its requester: what it runs, as whom and where ([`prepare`]), and what happens
//! after the pipeline ran it ([`after`]: a deploy someone else beat to the
//! environment goes back to its place in line). The run it starts is named after the
//! pending run and takes it over in the same write, so whichever replica starts it,
//! it starts once. The engine's loop runs it in between (`carry::start`).

use std::sync::Arc;
use std::time::Duration;

use crate::context::{Clock, Ctx};
use crate::ports::store::{Queued, Run, RunStatus};
use crate::ports::Store;
use crate::reply::{Approved, Invocation, Outcome, Reply};
use crate::runs::pending::PendingStart;
use crate::text::human;

/// What a pending run starts, as whom, and where its buttons are clicked.
pub(crate) struct Prepared {
    /// The invocation to run.
    pub inv: Invocation,
    /// Who it runs as.
    pub user: String,
    /// Where its buttons are clicked.
    pub channel: Option<String>,
    /// The deploy that waited in line, when it is one.
    queued: Option<(Queued, String)>,
    /// What its reply says of it at the end (a scheduled deploy: when it was for).
    note: Option<String>,
    /// Keeps the pending run's lease while it starts.
    renew: tokio::task::JoinHandle<()>,
}

/// The pending run an approving vote recorded (`id`), to start; or what to say when
/// it cannot be read.
pub(crate) async fn approved_run(ctx: &Ctx<'_>, id: &str) -> Result<Run, Reply> {
    match ctx.backends.store.run(id).await {
        Ok(Some(run)) => Ok(run),
        Ok(None) => Err(Reply::message(
            Outcome::Failed,
            "The approved request could not be started: its record is missing. Ask again.",
        )),
        // Recorded, but not readable now: whichever replica is alive starts it once
        // its lease lapses.
        Err(e) => {
            tracing::warn!(run = %id, error = %e, "an approved request is left to start later");
            Err(Reply::new(Outcome::Info).context(format!(
                "It starts as soon as the state store answers again ({}).",
                crate::failure::told(&e)
            )))
        }
    }
}

/// Reads what pending run `run` (its lease is ours) starts, and keeps its lease
/// until [`after`]; `Err` with the reply when there is nothing to start.
pub(crate) async fn prepare(ctx: &Ctx<'_>, run: &Run) -> Result<Prepared, Reply> {
    let store = ctx.backends.store.clone();
    let Ok(what) = serde_json::from_value::<PendingStart>(run.state.clone()) else {
        tracing::error!(run = %run.id, "a pending run could not be read; dropping it");
        end(&*store, run, RunStatus::Failed).await;
        return Err(Reply::message(
            Outcome::Failed,
            "A request waiting to start could not be read; nothing was done. Ask again.",
        ));
    };
    let note = match &what {
        PendingStart::Scheduled { id, at, zone, .. } => {
            let when = crate::schedule::say_at(*at, zone);
            Some(format!(
                ":alarm_clock: Scheduled by <@{}> for {when} (`{id}`).",
                run.user
            ))
        }
        _ => None,
    };
    let found = match what {
        PendingStart::Approval { id, channel } => approved(ctx, &id, channel, run.started).await,
        PendingStart::Queued { item } => queued(ctx, item).await,
        PendingStart::Scheduled {
            id,
            at,
            zone,
            channel,
        } => scheduled(ctx, run, &id, at, &zone, channel).await,
    };
    match found {
        Ok((inv, user, channel, queued)) => Ok(Prepared {
            inv,
            user,
            channel,
            queued,
            note,
            renew: tokio::spawn(keep(
                store,
                run.clone(),
                ctx.config().settings.lease,
                ctx.backends.clock.clone(),
            )),
        }),
        Err(reply) => {
            end(&*store, run, RunStatus::Failed).await;
            Err(reply)
        }
    }
}

/// After the pipeline ran what `run` started, with `reply`: ends the pending run
/// (unless the run it started took it over already) and returns the reply to give.
pub(crate) async fn after(ctx: &Ctx<'_>, run: &Run, prepared: Prepared, reply: Reply) -> Reply {
    prepared.renew.abort();
    let store = &ctx.backends.store;
    end(&**store, run, RunStatus::Done).await;
    let reply = match prepared.note {
        Some(note) if reply.outcome != Outcome::HandedOver => reply.context(note),
        _ => reply,
    };
    let Some((item, waited)) = prepared.queued else {
        return reply;
    };
    // Someone took the environment between our look and the deploy's own lock:
    // back to its place in line, nothing said.
    if reply.outcome == Outcome::Rejected
        && matches!(store.lock_of(&item.env, ctx.now()).await, Ok(Some(_)))
    {
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

/// Approval request `id`'s invocation, as its requester.
async fn approved(
    ctx: &Ctx<'_>,
    id: &str,
    channel: Option<String>,
    at: std::time::SystemTime,
) -> Found {
    let a = match ctx.backends.store.approval(id).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            return Err(Reply::message(
                Outcome::Failed,
                format!("Request `{id}` no longer exists; nothing was done."),
            ))
        }
        Err(e) => {
            return Err(Reply::message(
                Outcome::Failed,
                format!("{}.", crate::failure::told(&e)),
            ))
        }
    };
    let Ok(inv) = serde_json::from_value::<Invocation>(a.invocation.clone()) else {
        return Err(Reply::message(
            Outcome::Failed,
            format!("Request `{id}` is unreadable; nothing was done. Ask again."),
        ));
    };
    let inv = Invocation {
        confirmed: true,
        approval: Some(Approved {
            id: a.id.clone(),
            by: a.approvers.clone(),
            at: Some(at),
        }),
        ..inv
    };
    Ok((
        inv,
        a.requester,
        channel.or(ctx.channel.map(str::to_owned)),
        None,
    ))
}

/// Scheduled deploy `id`, as whoever scheduled it; they are told it starts.
async fn scheduled(
    ctx: &Ctx<'_>,
    run: &Run,
    id: &str,
    at: std::time::SystemTime,
    zone: &str,
    channel: Option<String>,
) -> Found {
    let Ok(inv) = serde_json::from_value::<Invocation>(run.invocation.clone()) else {
        return Err(Reply::message(
            Outcome::Failed,
            format!(
                "<@{}>, your deploy scheduled as `{id}` could not be started: its saved request is unreadable.",
                run.user
            ),
        ));
    };
    let late = ctx.now().duration_since(at).unwrap_or_default();
    tracing::info!(schedule = %id, user = %run.user, late_ms = late.as_millis() as u64, "starting a scheduled deploy");
    let when = crate::schedule::say_at(at, zone);
    ctx.progress
        .update(&Reply::message(
            Outcome::Progress,
            format!(
                ":alarm_clock: <@{}>, it is time: starting {} you scheduled for {when} (`{id}`).",
                run.user,
                crate::text::code(&crate::steps::queue_words::without_queue_words(&inv).as_text())
            ),
        ))
        .await;
    Ok((inv, run.user.clone(), channel, None))
}

/// What a pending run starts: the invocation, its user and channel, and the queued
/// deploy with how long it waited (for a deploy that waited in line).
type Found = Result<(Invocation, String, Option<String>, Option<(Queued, String)>), Reply>;

/// A deploy that waited in line, as whoever queued it; its requester is told it starts.
async fn queued(ctx: &Ctx<'_>, item: Queued) -> Found {
    let Ok(inv) = serde_json::from_value::<Invocation>(item.invocation.clone()) else {
        return Err(Reply::message(
            Outcome::Failed,
            format!(
                "<@{}>, your deploy queued for *{}* could not be started: its saved request is unreadable.",
                item.user, item.env
            ),
        ));
    };
    let waited = human(ctx.now().duration_since(item.since).unwrap_or_default());
    ctx.progress
        .update(&Reply::message(
            Outcome::Progress,
            format!(
                ":arrow_forward: <@{}>, your turn: *{}* is free, so I'm starting {} you queued {waited} ago.",
                item.user,
                item.env,
                crate::text::code(&inv.as_text())
            ),
        ))
        .await;
    tracing::info!(env = %item.env, user = %item.user, "starting a queued deploy");
    Ok((
        inv,
        item.user.clone(),
        item.channel.clone(),
        Some((item, waited)),
    ))
}
