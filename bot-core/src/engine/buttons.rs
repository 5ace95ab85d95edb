//! The button protocol: a click is checked (a value the bot made, permission of who
//! clicked, the set not used or expired), claims its set, and runs what the button
//! carries; progress and the reply keep saying who chose what.

use async_trait::async_trait;

use crate::context::{Ctx, Progress, Rules};
use crate::engine::invoke::run_invocation;
use crate::engine::understand::handle_text;
use crate::failure::told;
use crate::policy;
use crate::ports::Claim;
use crate::rejection::Rejection;
use crate::reply::{ButtonAction, ButtonValue, Invocation, Outcome, Part, Reply};
use crate::text::code;

/// Handles a click on a button whose value is `value`.
pub(super) async fn handle_button(ctx: &Ctx<'_>, value: &str) -> Reply {
    let Ok(value) = serde_json::from_str::<ButtonValue>(value) else {
        return Rejection::ForgedButton.reply();
    };
    // Someone who may not run the command must not use up the buttons of those who may.
    if let ButtonAction::Run(inv) = &value.action {
        if let Some(cmd) = ctx.config().command(&inv.command) {
            let rules = ctx.action(cmd).map_or(Rules::READ, |a| a.rules);
            if let Err(refusal) = policy::permitted(ctx.config(), cmd, rules, &inv.target, ctx.user)
            {
                return refusal.reply().ephemeral();
            }
        }
    }
    let claim = match ctx
        .backends
        .store
        .claim_buttons(&value.set, ctx.user, ctx.now())
        .await
    {
        Ok(c) => c,
        Err(e) => {
            return Reply::message(
                Outcome::Failed,
                format!("I could not record the click: {}", told(&e)),
            )
            .ephemeral()
        }
    };
    match claim {
        Claim::Claimed => {}
        Claim::AlreadyUsed { by } => return Rejection::AlreadyUsed { by }.reply(),
        Claim::Expired => return Rejection::Expired.reply(),
        Claim::Unknown => return Rejection::UnknownButtons.reply(),
    }
    let user = ctx.user;
    let (what, choice) = match value.action {
        ButtonAction::Cancel => {
            return Reply::message(Outcome::Done, format!("Cancelled by <@{user}>."))
        }
        ButtonAction::Text(text) => (code(&text), Choice::Text(text)),
        ButtonAction::Run(inv) => (code(&inv.as_text()), Choice::Run(inv)),
    };
    let chosen = format!("<@{user}> chose {what}");
    let progress = Chosen {
        inner: ctx.progress,
        chosen: &chosen,
    };
    let ctx = Ctx {
        progress: &progress,
        ..*ctx
    };
    let reply = match choice {
        Choice::Text(text) => Box::pin(handle_text(&ctx, &text)).await,
        Choice::Run(inv) => Box::pin(run_invocation(&ctx, inv)).await,
    };
    prepend(reply, chosen)
}

/// What a claimed button goes on to do.
enum Choice {
    /// Handle this text as if typed.
    Text(String),
    /// Run this invocation.
    Run(Invocation),
}

/// Progress of an action started by a click: every update keeps saying who chose what,
/// since it replaces the message that held the buttons.
struct Chosen<'a> {
    inner: &'a dyn Progress,
    chosen: &'a str,
}

#[async_trait]
impl Progress for Chosen<'_> {
    async fn update(&self, reply: &Reply) {
        self.inner
            .update(&prepend(reply.clone(), self.chosen.to_owned()))
            .await;
    }
}

fn prepend(mut reply: Reply, context: String) -> Reply {
    reply.parts.insert(0, Part::Context(context));
    reply
}
