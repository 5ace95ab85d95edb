//! Gates of who and what: the person may run the command on its target, and its
//! arguments check out.

use async_trait::async_trait;

use super::{refused, Flow, Gate, Passage};
use crate::context::Ctx;
use crate::policy;

/// Refuses someone the command's rules do not allow, on the record.
pub(super) struct Permitted;

#[async_trait]
impl Gate for Permitted {
    async fn pass<'a>(&self, ctx: &Ctx<'a>, passage: Passage<'a>) -> Flow<'a> {
        let rules = passage.action.rules;
        match policy::permitted(
            ctx.config(),
            passage.cmd,
            rules,
            &passage.inv.target,
            ctx.user,
        ) {
            Ok(()) => Flow::On(passage),
            Err(refusal) => refused(ctx, &passage.inv, refusal).await,
        }
    }
}

/// Refuses arguments the action does not take; on the record when it would have
/// changed something.
pub(super) struct ArgumentsCheck;

#[async_trait]
impl Gate for ArgumentsCheck {
    async fn pass<'a>(&self, ctx: &Ctx<'a>, passage: Passage<'a>) -> Flow<'a> {
        match passage.action.action.check(ctx.config(), &passage.inv) {
            Ok(()) => Flow::On(passage),
            Err(refusal) if passage.action.rules.mutating => {
                refused(ctx, &passage.inv, refusal).await
            }
            Err(refusal) => Flow::Answer(refusal.reply()),
        }
    }
}
