//! Running an invocation: it passes the gates (`gates`), then its registry row runs
//! it; what the action's reply asks next (a deploy to put in line, an approved
//! request to start) the engine's loop does.

use super::gates::{self, Flow, Passage};
use crate::context::Ctx;
use crate::reply::{Invocation, Part, Reply};

/// Runs a resolved invocation: through the gates, then its action.
pub(crate) async fn run_invocation(ctx: &Ctx<'_>, inv: Invocation) -> Reply {
    let Passage {
        cmd,
        action,
        inv,
        said,
        ..
    } = match gates::pass(ctx, inv).await {
        Flow::On(cleared) => cleared,
        Flow::Answer(reply) => return reply,
    };
    let mut reply = action.action.run(ctx, cmd, inv).await;
    if let Some(said) = said {
        reply.parts.insert(0, Part::Context(said));
    }
    reply
}
