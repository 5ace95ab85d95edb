//! Running an invocation: it passes the gates (`gates`), then its registry row runs
//! it; what the action's reply asks next (a deploy to put in line, an approved
//! request to start) the engine's loop does.

use super::gates::{self, Flow, Passage};
use crate::context::Ctx;
use crate::reply::{Invocation, Reply};

/// What running an invocation came to.
pub(super) struct Ran {
    /// The answer: the action's, or a gate's instead.
    pub reply: Reply,
    /// The freeze override's announcement, said before the answer.
    pub said: Option<String>,
}

/// Runs a resolved invocation: through the gates, then its action.
pub(super) async fn run_invocation(ctx: &Ctx<'_>, inv: Invocation) -> Ran {
    let Passage {
        cmd,
        action,
        inv,
        said,
        ..
    } = match gates::pass(ctx, inv).await {
        Flow::On(cleared) => cleared,
        Flow::Answer(reply) => return Ran { reply, said: None },
    };
    Ran {
        reply: action.action.run(ctx, cmd, inv).await,
        said,
    }
}
