//! The button protocol: a click is checked (a value the bot made, permission of who
//! clicked, the set not used or expired) and claims its set; what the button carries
//! (text to read, an invocation to run, a vote) is what the engine does next, its
//! progress and reply saying who chose what.

use async_trait::async_trait;

use crate::context::{Ctx, Rules};
use crate::failure::told;
use crate::policy;
use crate::ports::Progress;
use crate::ports::{Claim, Decision, StoreError};
use crate::rejection::Rejection;
use crate::reply::{ButtonAction, Next, Outcome, Part, Reply};
use crate::steps::approval::vote;
use crate::text::code;

/// What a click comes to.
pub(super) enum Clicked {
    /// This answer (a refusal, a vote's outcome, a cancel).
    Answer(Reply),
    /// The button is claimed: do `next`, saying `chosen` (who chose what).
    Chose {
        /// Who chose what: "<@U1> chose `deploy staging`".
        chosen: String,
        /// What the button carries.
        next: Next,
    },
}

/// Handles a click on a button whose value is `value` (`<set>.<index>`): checks and
/// claims it, and says what the button carries, or the answer instead.
pub(super) async fn handle_button(ctx: &Ctx<'_>, value: &str) -> Clicked {
    let Some((set_id, index)) = value
        .rsplit_once('.')
        .and_then(|(set, i)| Some((set, i.parse::<usize>().ok()?)))
    else {
        return Clicked::Answer(Rejection::ForgedButton.reply());
    };
    let store = &ctx.backends.store;
    let set = match store.button_set(set_id).await {
        Ok(Some(set)) => set,
        Ok(None) => return Clicked::Answer(Rejection::UnknownButtons.reply()),
        Err(e) => return Clicked::Answer(click_failed(&e)),
    };
    let Some(action) = set
        .actions
        .get(index)
        .and_then(|a| serde_json::from_value::<ButtonAction>(a.clone()).ok())
    else {
        return Clicked::Answer(Rejection::ForgedButton.reply());
    };
    // A set bound to a conversation runs nothing from elsewhere, nor from a click
    // that does not say where it comes from.
    if set.channel.is_some() && set.channel.as_deref() != ctx.channel {
        return Clicked::Answer(Rejection::ElsewhereIssued.reply());
    }
    // A confirmation (a choice, a suggestion) answers the person it asked only.
    if set.personal && set.issued_to != ctx.user {
        return Clicked::Answer(
            Rejection::NotYourButton {
                owner: set.issued_to.clone(),
            }
            .reply(),
        );
    }
    // An approval card's buttons are not used up by a click: the request itself is
    // decided once, in the store, and a refused click leaves the card for others.
    match &action {
        // An approving vote that completes the request asks to start it next.
        ButtonAction::Approve(id) => {
            return Clicked::Answer(vote(ctx, id, Decision::Approve).await)
        }
        ButtonAction::Decline(id) => {
            return Clicked::Answer(vote(ctx, id, Decision::Decline { reason: None }).await)
        }
        _ => {}
    }
    // Someone who may not run the command must not use up the buttons of those who may.
    if let ButtonAction::Run(inv) = &action {
        if let Some(cmd) = ctx.config().command(&inv.command) {
            let rules = ctx.action(cmd).map_or(Rules::READ, |a| a.rules);
            if let Err(refusal) = policy::permitted(ctx.config(), cmd, rules, &inv.target, ctx.user)
            {
                ctx.audit(inv, &format!("refused click: {refusal}")).await;
                return Clicked::Answer(refusal.reply().ephemeral());
            }
        }
    }
    match store
        .claim_button(set_id, index, ctx.user, ctx.channel, ctx.now())
        .await
    {
        Ok(Claim::Claimed(_)) => {}
        Ok(Claim::AlreadyUsed { by }) => {
            let refusal = Rejection::AlreadyUsed { by };
            audit_stale_click(ctx, &action, &refusal).await;
            return Clicked::Answer(refusal.reply());
        }
        Ok(Claim::Expired) => {
            audit_stale_click(ctx, &action, &Rejection::Expired).await;
            return Clicked::Answer(Rejection::Expired.reply());
        }
        Ok(Claim::Unknown) => return Clicked::Answer(Rejection::UnknownButtons.reply()),
        Ok(Claim::ElsewhereIssued) => return Clicked::Answer(Rejection::ElsewhereIssued.reply()),
        Err(e) => return Clicked::Answer(click_failed(&e)),
    }
    let user = ctx.user;
    let (what, next) = match action {
        ButtonAction::Cancel => {
            return Clicked::Answer(Reply::message(
                Outcome::Done,
                format!("Cancelled by <@{user}>."),
            ))
        }
        ButtonAction::Text(text) => (code(&text), Next::Read(text)),
        ButtonAction::Run(inv) => (code(&inv.as_text()), Next::Run(Box::new(inv))),
        ButtonAction::Approve(_) | ButtonAction::Decline(_) => {
            return Clicked::Answer(Rejection::ForgedButton.reply())
        }
    };
    Clicked::Chose {
        chosen: format!("<@{user}> chose {what}"),
        next,
    }
}

/// Records a refused click on a button that would have changed something.
async fn audit_stale_click(ctx: &Ctx<'_>, action: &ButtonAction, refusal: &Rejection) {
    let ButtonAction::Run(inv) = action else {
        return;
    };
    let mutating = ctx
        .config()
        .command(&inv.command)
        .and_then(|cmd| ctx.action(cmd))
        .is_some_and(|a| a.rules.mutating);
    if mutating {
        ctx.audit(inv, &format!("refused click: {refusal}")).await;
    }
}

/// The answer to a click that could not be recorded.
fn click_failed(e: &StoreError) -> Reply {
    Reply::message(
        Outcome::Failed,
        format!("I could not record the click: {}", told(e)),
    )
    .ephemeral()
}

/// Progress of an action started by a click: every update keeps saying who chose what,
/// since it replaces the message that held the buttons.
pub(super) struct Chosen<'a> {
    inner: &'a dyn Progress,
    chosen: &'a str,
}

impl<'a> Chosen<'a> {
    /// Progress to `inner` that keeps saying `chosen`.
    pub(super) fn new(inner: &'a dyn Progress, chosen: &'a str) -> Self {
        Self { inner, chosen }
    }
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
