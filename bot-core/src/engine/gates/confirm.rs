//! Gate: what must be confirmed is asked first, with a danger button carrying the
//! confirmed invocation (and the commit it ships, pinned), and Cancel.

use async_trait::async_trait;

use super::{Flow, Gate, Passage};
use crate::context::{store_down, Ctx, Offer};
use crate::failure::told;
use crate::reply::{ButtonAction, ButtonStyle, Confirm, Invocation, Outcome, Reply, Target};
use crate::text::code;

/// Asks before running what its rules say must be confirmed.
pub(super) struct Confirmation;

#[async_trait]
impl Gate for Confirmation {
    async fn pass<'a>(&self, ctx: &Ctx<'a>, passage: Passage<'a>) -> Flow<'a> {
        if !passage.asks(ctx.config()) {
            return Flow::On(passage);
        }
        Flow::Answer(confirmation(ctx, &passage).await)
    }
}

/// The question, with a danger button carrying the confirmed invocation, and Cancel.
pub(super) async fn confirmation(ctx: &Ctx<'_>, passage: &Passage<'_>) -> Reply {
    let inv = &passage.inv;
    let text = question(ctx, passage).await;
    // The message also says what would ship; the native dialog keeps to the question.
    // What the person confirms is what ships: the head commit shown is pinned.
    let shipping = passage.action.action.changes(ctx, inv).await;
    let shown = match &shipping {
        Some(s) => format!("{text}\n{}", s.text),
        None => text.clone(),
    };
    let label = format!("Yes, {}", inv.as_text());
    let confirmed = Invocation {
        confirmed: true,
        pin: inv.pin.clone().or_else(|| shipping.and_then(|s| s.pin)),
        ..inv.clone()
    };
    let mut yes = Offer::new(label, ButtonAction::Run(confirmed), ButtonStyle::Danger);
    yes.confirm = Some(Confirm {
        title: "Are you sure?".into(),
        text: text.clone(),
        ok: "Do it".into(),
        deny: "Cancel".into(),
    });
    let cancel = Offer::new("Cancel", ButtonAction::Cancel, ButtonStyle::Default);
    match ctx.offer_personal(vec![yes, cancel]).await {
        Ok(buttons) => Reply::message(Outcome::Confirm, shown).buttons(buttons),
        Err(e) => store_down(&e),
    }
}

/// The question asked before running: names the target and, for instances, whether
/// it is live; on a protected environment says so.
async fn question(ctx: &Ctx<'_>, passage: &Passage<'_>) -> String {
    let inv = &passage.inv;
    if let Target::Instance(r) = &inv.target {
        let live = match ctx.active_at(&r.env, r.region.as_deref(), &r.pool).await {
            Ok(active) if active == r.member => {
                format!("*{r}* is LIVE: it is taking traffic right now.")
            }
            Ok(active) => format!("*{r}* is not taking traffic ({active} is)."),
            Err(e) => format!(
                "*{r}* may be live: I cannot read its switch ({}).",
                told(&e)
            ),
        };
        return format!("{live} Really `{}` *{r}*?", passage.cmd.name);
    }
    if inv.target == Target::None {
        return format!("Really {}?", code(&inv.as_text()));
    }
    let protected = inv
        .target
        .env()
        .and_then(|e| ctx.config().env(e))
        .is_some_and(|e| e.protected);
    let question = passage
        .action
        .action
        .question(ctx.config(), inv)
        .unwrap_or_else(|| format!("Really {}?", code(&inv.as_text())));
    format!(
        "{question}{}",
        if protected {
            " This is a protected environment serving live traffic."
        } else {
            ""
        }
    )
}
