//! Starting queued deploys: when an environment with deploys waiting in line is free,
//! the first in line is taken out (by exactly one replica) and run as its requester,
//! through the whole invocation pipeline, its progress posted as a new message to them.

use std::collections::HashSet;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::Value;

use super::{invoke, Bot};
use crate::adapters::outbox_progress::OutboxProgress;
use crate::context::{Ctx, NoProgress, Progress};
use crate::ports::{Queued, RunStatus, StoreError};
use crate::reply::{Invocation, Outcome, Reply};
use crate::text::human;

/// How a transport reaches the requester of a queued deploy with a new message: the
/// transport's name and its route for the outbox, or `None` when it cannot.
pub type Reach = Arc<dyn Fn(&Queued) -> Option<(String, Value)> + Send + Sync>;

impl Bot {
    /// Takes the first deploy in line out of every environment that is free now and
    /// returns, for each, its id and a future that runs it as its requester (through
    /// permission checks, the lock and the run) and returns the final reply. With
    /// `reach`, progress and the final reply go to a new outbox message to the
    /// requester (`wake` is called after each write). Spawn them.
    pub async fn start_queued(
        &self,
        reach: Option<Reach>,
        wake: Option<Arc<dyn Fn() + Send + Sync>>,
    ) -> Result<Vec<(String, BoxFuture<'static, Reply>)>, StoreError> {
        let store = self.backends.store.clone();
        let mut seen = HashSet::new();
        let heads: Vec<Queued> = store
            .queued(None)
            .await?
            .into_iter()
            .filter(|q| seen.insert(q.env.clone()))
            .collect();
        let mut started = Vec::new();
        for head in heads {
            if !self.free(&head.env).await? {
                continue;
            }
            // Of several replicas, the one that takes it out starts it.
            let Some(item) = store.dequeue(&head.id).await? else {
                continue;
            };
            let bot = self.clone();
            let (reach, wake) = (reach.clone(), wake.clone());
            let id = item.id.clone();
            let work: BoxFuture<'static, Reply> =
                Box::pin(async move { bot.run_queued(item, reach, wake).await });
            started.push((id, work));
        }
        Ok(started)
    }

    /// Whether `env` is free for the next in line: nobody holds its lock, and no run
    /// on it is still running (one whose replica died holds no live lock until it is
    /// taken over, and must not be overtaken).
    async fn free(&self, env: &str) -> Result<bool, StoreError> {
        let store = &self.backends.store;
        if store.lock_of(env, self.now()).await?.is_some() {
            return Ok(false);
        }
        Ok(!store
            .recent_runs(Some(env), 8)
            .await?
            .iter()
            .any(|r| r.status == RunStatus::Running))
    }

    async fn run_queued(
        &self,
        item: Queued,
        reach: Option<Reach>,
        wake: Option<Arc<dyn Fn() + Send + Sync>>,
    ) -> Reply {
        let generation = self.generation();
        let store = self.backends.store.clone();
        let key = format!("queue:{}", item.id);
        let mut outbox = None;
        if let Some((transport, route)) = reach.and_then(|r| r(&item)) {
            let about = format!("queued deploy of {} to {}", item.user, item.env);
            match store
                .open_message(&key, &transport, &route, &about, self.now())
                .await
            {
                Ok(()) => {
                    let o = OutboxProgress::new(store.clone(), key.clone());
                    outbox = Some(match wake {
                        Some(w) => o.waking(w),
                        None => o,
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "a queued deploy's message could not be opened")
                }
            }
        }
        let progress: &dyn Progress = match &outbox {
            Some(o) => o,
            None => &NoProgress,
        };
        let ctx = Ctx {
            generation: &generation,
            backends: &self.backends,
            user: &item.user,
            channel: item.channel.as_deref(),
            delivery: Some(&key),
            reply_to: outbox.as_ref().map(OutboxProgress::id),
            progress,
        };
        let Ok(inv) = serde_json::from_value::<Invocation>(item.invocation.clone()) else {
            let reply = Reply::message(
                Outcome::Failed,
                format!(
                    "<@{}>, your deploy queued for *{}* could not be started: its saved request is unreadable.",
                    item.user, item.env
                ),
            );
            finish(outbox.as_ref(), &reply).await;
            return reply;
        };
        let waited = human(self.now().duration_since(item.since).unwrap_or_default());
        progress
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
        let reply = invoke::run_invocation(&ctx, inv).await;
        // Someone took the environment between our look and the deploy's own lock:
        // back to the front of the line, nothing said.
        if reply.outcome == Outcome::Rejected
            && matches!(store.lock_of(&item.env, self.now()).await, Ok(Some(_)))
        {
            if let Err(e) = store.enqueue(&item).await {
                tracing::error!(error = %e, env = %item.env, "a queued deploy could not be put back in line");
            } else {
                return reply;
            }
        }
        let reply = reply.context(format!(
            "Queued by <@{}> {waited} before it started, when *{}* came free.",
            item.user, item.env
        ));
        finish(outbox.as_ref(), &reply).await;
        reply
    }
}

async fn finish(outbox: Option<&OutboxProgress>, reply: &Reply) {
    if let Some(o) = outbox {
        if let Err(e) = o.finish(reply).await {
            tracing::error!(error = %e, "a queued deploy's reply could not be written");
        }
    }
}
