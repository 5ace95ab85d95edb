//! [`OutboxProgress`]: the [`Progress`] of a request whose answers go through the
//! outbox — each update and the final reply are written to one outbox message, which
//! the transport's courier delivers (newest version only, with retries).

use std::sync::Arc;

use async_trait::async_trait;

use crate::ports::Progress;
use crate::ports::{Store, StoreError};
use crate::reply::Reply;

/// Writes one request's progress and final reply into outbox message `id`.
pub struct OutboxProgress {
    store: Arc<dyn Store>,
    id: String,
    /// Called after every write, so a courier in this process can deliver at once.
    wake: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl OutboxProgress {
    /// Writes into message `id` (opened by whoever took the request).
    pub fn new(store: Arc<dyn Store>, id: impl Into<String>) -> Self {
        Self {
            store,
            id: id.into(),
            wake: None,
        }
    }

    /// Also calls `wake` after each write.
    pub fn waking(mut self, wake: Arc<dyn Fn() + Send + Sync>) -> Self {
        self.wake = Some(wake);
        self
    }

    /// The message id.
    pub fn id(&self) -> &str {
        &self.id
    }

    async fn put(&self, reply: &Reply, last: bool) -> Result<(), StoreError> {
        let body = serde_json::to_value(reply)
            .map_err(|_| StoreError::Failed("a reply could not be serialised".into()))?;
        self.store.put_message(&self.id, &body, last).await?;
        if let Some(wake) = &self.wake {
            wake();
        }
        Ok(())
    }

    /// Writes the final reply; nothing for a reply handed over to whoever drives its
    /// run now (they write it).
    pub async fn finish(&self, reply: &Reply) -> Result<(), StoreError> {
        if reply.outcome == crate::reply::Outcome::HandedOver {
            return Ok(());
        }
        self.put(reply, true).await
    }

    /// Writes the final reply and marks inbox delivery `key` processed, in one step
    /// ([`crate::ports::Store::answer_inbound`]); a reply handed over only marks it.
    pub async fn finish_inbound(&self, reply: &Reply, key: &str) -> Result<(), StoreError> {
        if reply.outcome == crate::reply::Outcome::HandedOver {
            return self.store.complete_inbound(key).await;
        }
        let body = serde_json::to_value(reply)
            .map_err(|_| StoreError::Failed("a reply could not be serialised".into()))?;
        self.store.answer_inbound(key, &self.id, &body).await?;
        if let Some(wake) = &self.wake {
            wake();
        }
        Ok(())
    }
}

#[async_trait]
impl Progress for OutboxProgress {
    async fn update(&self, reply: &Reply) {
        if let Err(e) = self.put(reply, false).await {
            tracing::warn!(message = %self.id, error = %e, "a progress update could not be written");
        }
    }
}
