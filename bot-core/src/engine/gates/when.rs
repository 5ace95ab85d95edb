//! Gates of a deploy for later (`deploy staging at 18:00`): its time is read in the
//! requester's zone first; once the other checks of now passed, it is confirmed
//! where it must be and recorded to start at that time (every other check is made
//! again when it starts: a freeze, a lock or an approval then is what counts).

use async_trait::async_trait;

use super::confirm::confirmation;
use super::{Flow, Gate, Passage};
use crate::context::Ctx;
use crate::schedule;

/// Reads the time a deploy is asked for, in the requester's zone.
pub(super) struct AtItsTime;

#[async_trait]
impl Gate for AtItsTime {
    async fn pass<'a>(&self, ctx: &Ctx<'a>, passage: Passage<'a>) -> Flow<'a> {
        let Passage { action, inv, .. } = passage;
        match schedule::resolve(ctx, action, inv).await {
            Ok(inv) => Flow::On(Passage { inv, ..passage }),
            Err(refusal) => Flow::Answer(refusal.reply()),
        }
    }
}

/// Records a deploy for later instead of running it now.
pub(super) struct ForLater;

#[async_trait]
impl Gate for ForLater {
    async fn pass<'a>(&self, ctx: &Ctx<'a>, passage: Passage<'a>) -> Flow<'a> {
        if schedule::at_of(&passage.inv).is_none() {
            return Flow::On(passage);
        }
        if passage.asks(ctx.config()) {
            return Flow::Answer(confirmation(ctx, &passage).await);
        }
        Flow::Answer(schedule::record(ctx, passage.inv).await)
    }
}
