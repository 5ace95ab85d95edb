//! Gate: a locked environment is said so before anything is asked (no "Really
//! deploy?" whose answer could only be "it is locked"); a deploy refused so is put in
//! line when it asked to wait, else offered to.

use async_trait::async_trait;

use super::{Flow, Gate, Passage};
use crate::context::Ctx;
use crate::engine::queue;
use crate::failure::told;
use crate::rejection::Rejection;
use crate::reply::{Invocation, Outcome, Reply};
use crate::steps::queue_words::wants_queue;

/// Refuses (or queues) what a held lock stops.
pub(super) struct Lock;

#[async_trait]
impl Gate for Lock {
    async fn pass<'a>(&self, ctx: &Ctx<'a>, passage: Passage<'a>) -> Flow<'a> {
        let rules = passage.action.rules;
        let asks = passage.asks(ctx.config());
        // A deploy asked to wait in line (`when free`) is asked first and queued after.
        let waits = wants_queue(&passage.inv);
        if !(rules.respects_locks || (asks && rules.takes_lock && !waits)) {
            return Flow::On(passage);
        }
        match locked(ctx, &passage.inv).await {
            None => Flow::On(passage),
            Some(refusal) => {
                ctx.audit(
                    &passage.inv,
                    &format!("refused: {}", refusal.to_plain_text()),
                )
                .await;
                Flow::Answer(queue::when_locked(ctx, &passage.inv, refusal).await)
            }
        }
    }
}

/// The refusal when the invocation's environment is locked (or its lock cannot be read).
async fn locked(ctx: &Ctx<'_>, inv: &Invocation) -> Option<Reply> {
    let env = inv.target.env()?;
    let now = ctx.now();
    match ctx.backends.store.lock_of(env, now).await {
        Ok(Some(lock)) => Some(
            Rejection::Locked {
                lock: Box::new(lock),
                now,
                user: ctx.user.to_owned(),
            }
            .reply(),
        ),
        Ok(None) => None,
        Err(e) => Some(Reply::message(
            Outcome::Failed,
            format!("I could not check the lock of {env}: {}", told(&e)),
        )),
    }
}
