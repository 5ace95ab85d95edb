//! Starting queued deploys: when an environment with deploys waiting in line is free,
//! the first in line is taken out (by exactly one replica) together with the pending
//! run that starts it, and started as its requester through the whole invocation
//! pipeline, its progress posted as a new message to them. A replica that dies right
//! after taking it out loses nothing: another one starts the pending run.

use std::collections::HashSet;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::Value;

use super::Bot;
use crate::context::Ctx;
use crate::ports::{NoProgress, Queued, RunStatus, StoreError};
use crate::reply::Reply;
use crate::runs::pending::{pending, queued_id, PendingStart};

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
            // Where its progress goes: a message of its own, opened before it leaves
            // the line (an unused one is never sent).
            let key = format!("queue:{}", head.id);
            let mut message = None;
            if let Some((transport, route)) = reach.as_ref().and_then(|r| r(&head)) {
                let about = format!("queued deploy of {} to {}", head.user, head.env);
                match store
                    .open_message(&key, &transport, &route, &about, self.now())
                    .await
                {
                    Ok(()) => message = Some(key.clone()),
                    Err(e) => {
                        tracing::warn!(error = %e, "a queued deploy's message could not be opened")
                    }
                }
            }
            let run = {
                let generation = self.generation();
                let ctx = Ctx {
                    generation: &generation,
                    backends: &self.backends,
                    user: &head.user,
                    channel: head.channel.as_deref(),
                    delivery: None,
                    reply_to: None,
                    progress: &NoProgress,
                    shell: None,
                };
                pending(
                    &ctx,
                    queued_id(&head.id),
                    &head.user,
                    Some(head.env.clone()),
                    head.invocation.clone(),
                    message,
                    &PendingStart::Queued { item: head.clone() },
                )
            };
            // Of several replicas, the one that takes it out starts it.
            if store.dequeue(&head.id, Some(&run)).await?.is_none() {
                continue;
            }
            let bot = self.clone();
            let wake = wake.clone();
            let id = head.id.clone();
            let work: BoxFuture<'static, Reply> =
                Box::pin(async move { bot.drive_taken(run, wake).await });
            started.push((id, work));
        }
        Ok(started)
    }

    /// Whether `env` is free for the next in line: nobody holds its lock, and no run
    /// on it is still running or waiting to start (one whose replica died holds no
    /// live lock until it is taken over, and must not be overtaken).
    async fn free(&self, env: &str) -> Result<bool, StoreError> {
        let store = &self.backends.store;
        if store.lock_of(env, self.now()).await?.is_some() {
            return Ok(false);
        }
        let now = self.now();
        Ok(!store
            .recent_runs(Some(env), 8)
            .await?
            .iter()
            // A deploy scheduled for later holds nothing until its time.
            .filter(|r| !crate::schedule::waiting(r, now))
            .any(|r| matches!(r.status, RunStatus::Running | RunStatus::Pending)))
    }
}
