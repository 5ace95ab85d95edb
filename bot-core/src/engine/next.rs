//! What the engine does when an action's reply asks for more ([`Next`]): start the
//! pending run an approval recorded, or put a deploy refused on a locked environment
//! in line. Actions say what comes next; they never call back up into the engine.

use super::{pending, queue};
use crate::context::Ctx;
use crate::failure::told;
use crate::reply::{Next, Outcome, Reply};

/// Does what `reply` asks for next, if anything; returns the reply to give.
pub(crate) async fn follow(ctx: &Ctx<'_>, mut reply: Reply) -> Reply {
    match reply.next.take() {
        None => reply,
        Some(Next::WhenLocked(inv)) => queue::when_locked(ctx, &inv, reply).await,
        Some(Next::Start(id)) => {
            let run = match ctx.backends.store.run(&id).await {
                Ok(Some(run)) => run,
                Ok(None) => return Reply::message(
                    Outcome::Failed,
                    "The approved request could not be started: its record is missing. Ask again.",
                ),
                // Recorded, but not readable now: whichever replica is alive starts
                // it once its lease lapses.
                Err(e) => {
                    tracing::warn!(run = %id, error = %e, "an approved request is left to start later");
                    return reply.context(format!(
                        "It starts as soon as the state store answers again ({}).",
                        told(&e)
                    ));
                }
            };
            let mut started = Box::pin(pending::start(ctx, run)).await;
            for (k, part) in reply.parts.into_iter().enumerate() {
                started.parts.insert(k, part);
            }
            started
        }
    }
}
