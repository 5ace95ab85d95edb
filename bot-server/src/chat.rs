//! The transport seam: every chat transport (Slack over HTTP or Socket Mode, the
//! console, a test transport) hands the intake a [`ReplySink`] that shows one
//! request's progress and final reply its own way.

use async_trait::async_trait;
use bot_core::{Progress, Reply};

/// Where one request's answers go.
#[async_trait]
pub trait ReplySink: Send + Sync {
    /// The progress message of a long action changed. Must not wait on a slow peer
    /// for long: the action is waiting.
    async fn update(&self, reply: &Reply);
    /// The final reply; called once, after every update.
    async fn finish(&self, reply: &Reply);
}

/// A sink seen as the engine's [`Progress`] port.
pub struct AsProgress<'a>(pub &'a dyn ReplySink);

#[async_trait]
impl Progress for AsProgress<'_> {
    async fn update(&self, reply: &Reply) {
        self.0.update(reply).await;
    }
}
