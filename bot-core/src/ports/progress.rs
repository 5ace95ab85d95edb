//! The progress port: where a long action's in-place updates go (a Slack message
//! edited with `chat.update`, lines printed by the console, an outbox message).

use async_trait::async_trait;

use crate::reply::Reply;

/// Receives the in-place updates of a long action's progress message
/// (queued → building n% → gate → switched). Transports render each update by
/// editing one message (`chat.update`); the console prints them.
#[async_trait]
pub trait Progress: Send + Sync {
    /// The progress message changed.
    async fn update(&self, reply: &Reply);
}

/// A [`Progress`] that drops every update.
pub struct NoProgress;

#[async_trait]
impl Progress for NoProgress {
    async fn update(&self, _reply: &Reply) {}
}
