//! Gate: nothing changes the platform without its record in the audit log first; a
//! freeze override is recorded and announced (in the announcements channel, and in
//! the reply) before it runs.

use async_trait::async_trait;

use super::{Flow, Gate, Passage};
use crate::config::ActiveFreeze;
use crate::context::Ctx;
use crate::policy;
use crate::reply::{Invocation, Outcome, Reply};

/// Records what is about to change the platform, or stops when it cannot.
pub(super) struct AuditedFirst;

#[async_trait]
impl Gate for AuditedFirst {
    async fn pass<'a>(&self, ctx: &Ctx<'a>, passage: Passage<'a>) -> Flow<'a> {
        if let Some(freeze) = &passage.overridden {
            return match announce_override(ctx, &passage.inv, freeze).await {
                Ok(said) => Flow::On(Passage {
                    said: Some(said),
                    ..passage
                }),
                Err(refused) => Flow::Answer(refused),
            };
        }
        if passage.action.rules.mutating {
            if let Err(refused) = ctx.audit_first(&passage.inv, "started").await {
                return Flow::Answer(refused);
            }
        }
        Flow::On(passage)
    }
}

/// Records and announces that `inv` overrides `freeze`; returns the line said, or
/// the refusal when the override could not be recorded (then nothing runs).
async fn announce_override(
    ctx: &Ctx<'_>,
    inv: &Invocation,
    freeze: &ActiveFreeze,
) -> Result<String, Reply> {
    let why = policy::override_reason(inv).unwrap_or_default();
    let said = format!(
        ":rotating_light: <@{}> overrides the freeze `{}` on *{}* for `{}`: \"{}\"",
        ctx.user,
        freeze.window.text,
        inv.target.env().unwrap_or_default(),
        inv.command,
        crate::text::escape(&why.replace('`', "'"))
    );
    ctx.audit_first(
        inv,
        &format!("override of freeze `{}`: {why}", freeze.window.text),
    )
    .await?;
    if let Some(channel) = ctx.config().channels.get("announcements") {
        ctx.post(
            channel,
            &Reply::message(Outcome::Info, said.clone()),
            "freeze override",
        )
        .await;
    }
    Ok(said)
}
