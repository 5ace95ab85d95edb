//! Gate: a change freeze stops what it names, unless the person overrides it; an
//! override holds for the window it names, and only for it.

use async_trait::async_trait;

use super::{refused, Flow, Gate, Passage};
use crate::context::Ctx;
use crate::policy;
use crate::rejection::Rejection;

/// Refuses what a freeze stops, or lets an override through scoped to its window.
pub(super) struct Freeze;

#[async_trait]
impl Gate for Freeze {
    async fn pass<'a>(&self, ctx: &Ctx<'a>, passage: Passage<'a>) -> Flow<'a> {
        let checked = policy::check_freeze(
            ctx.config(),
            passage.action,
            passage.cmd,
            &passage.inv,
            ctx.user,
            ctx.now(),
        );
        match checked {
            Ok(None) => Flow::On(passage),
            Ok(Some(_)) if ctx.shell.is_some() => {
                let refusal = Rejection::NotFromShell {
                    what: "A freeze override".into(),
                };
                refused(ctx, &passage.inv, refusal).await
            }
            // Whatever carries this invocation on (a button, the queue, an approval)
            // carries the window too.
            Ok(Some(freeze)) => Flow::On(Passage {
                inv: policy::scope_override(passage.inv, &freeze),
                overridden: Some(freeze),
                ..passage
            }),
            Err(refusal) => refused(ctx, &passage.inv, refusal).await,
        }
    }
}
