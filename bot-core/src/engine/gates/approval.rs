//! Gates of four-eyes approval: an approved invocation is started within its rule's
//! `valid_for`, and a command that needs approval posts an approval card (to the
//! requester and the approvals channel) instead of running. Approving it is a vote
//! (`steps::approval`); the run it records is started by the engine (`pending`).

use async_trait::async_trait;

use super::{refused, Flow, Gate, Passage};
use crate::config::ApprovalRule;
use crate::context::Ctx;
use crate::failure::told;
use crate::policy;
use crate::ports::approvals::{Approval as Request, ApprovalStatus};
use crate::ports::store::ButtonSet;
use crate::rejection::Rejection;
use crate::reply::{ButtonAction, Invocation, Outcome, Reply};
use crate::steps::approval::{card, changes_on_card};
use crate::text::either;

/// Refuses an approval older than its rule's `valid_for`, queue included.
pub(super) struct StillFresh;

#[async_trait]
impl Gate for StillFresh {
    async fn pass<'a>(&self, ctx: &Ctx<'a>, passage: Passage<'a>) -> Flow<'a> {
        match stale(ctx, &passage) {
            None => Flow::On(passage),
            Some(refusal) => refused(ctx, &passage.inv, refusal).await,
        }
    }
}

/// The refusal of an approved invocation whose approval is older than its rule's
/// `valid_for`.
fn stale(ctx: &Ctx<'_>, passage: &Passage<'_>) -> Option<Rejection> {
    let inv = &passage.inv;
    let approved = inv.approval.as_ref()?;
    let at = approved.at?;
    let valid_for =
        policy::approval_rule(ctx.config(), passage.cmd, passage.action.rules, &inv.target)
            .map_or(crate::config::DEFAULT_VALID_FOR, |r| r.valid_for);
    if ctx.now().duration_since(at).unwrap_or_default() <= valid_for {
        return None;
    }
    let asked = Invocation {
        approval: None,
        pin: None,
        confirmed: false,
        ..inv.clone()
    };
    Some(Rejection::ApprovalStale {
        id: approved.id.clone(),
        requester: ctx.user.to_owned(),
        valid_for,
        command: asked.as_text(),
    })
}

/// Asks for approval instead of running, where a rule wants one.
pub(super) struct Approval;

#[async_trait]
impl Gate for Approval {
    async fn pass<'a>(&self, ctx: &Ctx<'a>, passage: Passage<'a>) -> Flow<'a> {
        if passage.inv.approval.is_some() {
            return Flow::On(passage);
        }
        let config = ctx.config();
        let rules = passage.action.rules;
        match policy::approval_rule(config, passage.cmd, rules, &passage.inv.target) {
            Some(rule) => Flow::Answer(request(ctx, rule, passage.inv).await),
            None => Flow::On(passage),
        }
    }
}

/// Asks for approval of `inv` under `rule`: records the request, answers the
/// requester with the card and posts it to the approvals channel.
async fn request(ctx: &Ctx<'_>, rule: &ApprovalRule, inv: Invocation) -> Reply {
    // What the approver sees is what ships: the head commit shown is pinned.
    let shipping = changes_on_card(ctx, &inv).await;
    let inv = Invocation {
        pin: inv
            .pin
            .clone()
            .or_else(|| shipping.as_ref().and_then(|s| s.pin.clone())),
        ..inv
    };
    let now = ctx.now();
    let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_uppercase();
    let set = uuid::Uuid::new_v4().simple().to_string();
    let expires = now + rule.expires;
    let buttons = ButtonSet {
        id: set.clone(),
        actions: vec![
            serde_json::to_value(ButtonAction::Approve(id.clone())).unwrap_or_default(),
            serde_json::to_value(ButtonAction::Decline(id.clone())).unwrap_or_default(),
        ],
        // The card is clicked in the approvals channel as well as where it was asked.
        channel: None,
        issued_to: ctx.user.to_owned(),
        expires,
        // Approval cards are clicked by approvers, by design.
        personal: false,
    };
    let approval = Request {
        id: id.clone(),
        invocation: serde_json::to_value(&inv).unwrap_or_default(),
        requester: ctx.user.to_owned(),
        channel: ctx.channel.map(str::to_owned),
        from: rule.from.clone(),
        needed: rule.count.max(1),
        approvers: Vec::new(),
        status: ApprovalStatus::Pending,
        declined_by: None,
        reason: None,
        buttons: set,
        created: now,
        expires,
    };
    let store = &ctx.backends.store;
    let stored = async {
        store.issue_buttons(&buttons).await?;
        store.request_approval(&approval).await
    }
    .await;
    if let Err(e) = stored {
        return Reply::message(Outcome::Failed, format!("{}.", told(&e)));
    }
    ctx.audit(
        &inv,
        &format!(
            "requested: approval {id} from {}",
            either(&rule.from).replace('`', "")
        ),
    )
    .await;
    let card = card(ctx, &approval, &inv, shipping.as_ref()).await;
    if let Some(channel) = &rule.channel {
        if ctx.channel != Some(channel.as_str()) {
            ctx.post(channel, &card, &format!("approval card {id}"))
                .await;
        }
    }
    card
}
