//! Four-eyes approval: a command that needs it posts an approval card (to the
//! requester and the approvals channel) instead of running; someone else from the
//! approving groups approves or declines it, by button or by `approve ID` /
//! `decline ID reason`; the store decides each request once, and the approver who
//! completes it runs the command, as the requester.

use async_trait::async_trait;

use crate::config::{ApprovalRule, CommandSpec};
use crate::context::{Action, Ctx};
use crate::engine::invoke::run_invocation;
use crate::failure::told;
use crate::policy;
use crate::ports::approvals::{Approval, ApprovalStatus, Decision, Vote};
use crate::ports::store::ButtonSet;
use crate::rejection::Rejection;
use crate::reply::{
    Approved, Button, ButtonAction, ButtonStyle, Invocation, Outcome, Part, Reply, Target,
};
use crate::text::{code, either, when};

/// `approve ID`.
pub struct Approve;

/// `decline ID [reason]`.
pub struct Decline;

fn id_of(inv: &Invocation) -> Option<String> {
    inv.args.first().map(|a| a.trim().to_uppercase())
}

/// `approve` or `decline` alone: how to use it.
fn usage(what: &str) -> Reply {
    Reply::message(
        Outcome::Info,
        format!("`{what}` takes the request's id from its approval card, e.g. `{what} 4F2A91C0`; the card's buttons do the same."),
    )
}

#[async_trait]
impl Action for Approve {
    async fn run(&self, ctx: &Ctx<'_>, _cmd: &CommandSpec, inv: Invocation) -> Reply {
        match id_of(&inv) {
            Some(id) => vote(ctx, &id, Decision::Approve).await,
            None => usage("approve"),
        }
    }
}

#[async_trait]
impl Action for Decline {
    async fn run(&self, ctx: &Ctx<'_>, _cmd: &CommandSpec, inv: Invocation) -> Reply {
        let Some(id) = id_of(&inv) else {
            return usage("decline");
        };
        let reason = inv.args.get(1..).unwrap_or_default().join(" ");
        let reason = Some(reason.trim().to_owned()).filter(|r| !r.is_empty());
        vote(ctx, &id, Decision::Decline { reason }).await
    }
}

/// The ref an invocation deploys (`deploy master feature/x` or `ref=…`), if any.
fn git_ref(inv: &Invocation) -> Option<String> {
    inv.params
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("ref"))
        .map(|(_, v)| v.clone())
        .or_else(|| inv.args.first().cloned())
}

/// What is being deployed: the commits between the live version and the target, as
/// one card part, shown on the approval card right under what and where (`None` for
/// an action that ships no commits).
pub(crate) async fn changes_on_card(ctx: &Ctx<'_>, inv: &Invocation) -> Option<Part> {
    let cmd = ctx.config().command(&inv.command)?;
    ctx.action(cmd)?
        .action
        .changes(ctx, inv)
        .await
        .map(Part::Text)
}

/// The approval card: what, where, who asked, the ref, the changes, who may approve
/// and until when, with Approve and Decline.
async fn card(ctx: &Ctx<'_>, a: &Approval, inv: &Invocation) -> Reply {
    let target = match &inv.target {
        Target::None => "—".to_owned(),
        t => format!("*{t}*"),
    };
    let mut reply = Reply::new(Outcome::Confirm)
        .header("Approval needed")
        .text(format!(
            "<@{}> asks to run {}.",
            a.requester,
            code(&inv.as_text())
        ))
        .text(format!(
            "*What:* `{}`   *Where:* {target}   *Ref:* {}   *Asked by:* <@{}>",
            inv.command,
            git_ref(inv).map_or_else(|| "the default".to_owned(), |r| code(&r)),
            a.requester
        ));
    if let Some(changes) = changes_on_card(ctx, inv).await {
        reply.parts.push(changes);
    }
    let progress = if a.approvers.is_empty() {
        String::new()
    } else {
        format!(
            " Approved so far by {} ({} of {}).",
            a.approvers
                .iter()
                .map(|u| format!("<@{u}>"))
                .collect::<Vec<_>>()
                .join(", "),
            a.approvers.len(),
            a.needed
        )
    };
    reply = reply.context(format!(
        "Needs {} from {} — not <@{}>.{progress} Expires {}. Request `{}`: or type `approve {}` / `decline {} reason`.",
        if a.needed == 1 {
            "one approval".to_owned()
        } else {
            format!("{} approvals", a.needed)
        },
        either(&a.from),
        a.requester,
        when(a.expires),
        a.id,
        a.id,
        a.id
    ));
    reply.buttons(vec![
        Button {
            label: "Approve".into(),
            value: format!("{}.0", a.buttons),
            style: ButtonStyle::Primary,
            confirm: None,
        },
        Button {
            label: "Decline".into(),
            value: format!("{}.1", a.buttons),
            style: ButtonStyle::Danger,
            confirm: None,
        },
    ])
}

/// Asks for approval of `inv` under `rule`: records the request, answers the
/// requester with the card and posts it to the approvals channel.
pub(crate) async fn request(ctx: &Ctx<'_>, rule: &ApprovalRule, inv: Invocation) -> Reply {
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
    };
    let approval = Approval {
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
    let card = card(ctx, &approval, &inv).await;
    if let Some(channel) = &rule.channel {
        if ctx.channel != Some(channel.as_str()) {
            ctx.post(channel, &card, &format!("approval card {id}"))
                .await;
        }
    }
    card
}

/// `approved by <@U1>, <@U2>` / `declined by <@U3>`.
fn how(a: &Approval) -> String {
    match a.status {
        ApprovalStatus::Declined => format!(
            "declined by <@{}>",
            a.declined_by.as_deref().unwrap_or("someone")
        ),
        _ => format!(
            "approved by {}",
            a.approvers
                .iter()
                .map(|u| format!("<@{u}>"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A vote by this request's user on request `id`, by button or typed.
pub(crate) async fn vote(ctx: &Ctx<'_>, id: &str, decision: Decision) -> Reply {
    let store = &ctx.backends.store;
    let a = match store.approval(id).await {
        Ok(Some(a)) => a,
        Ok(None) => return Rejection::NoSuchApproval { id: id.to_owned() }.reply(),
        Err(e) => return Reply::message(Outcome::Failed, format!("{}.", told(&e))).ephemeral(),
    };
    let Ok(inv) = serde_json::from_value::<Invocation>(a.invocation.clone()) else {
        return Reply::message(
            Outcome::Failed,
            format!("Request `{id}` is unreadable; nothing was done. Ask again."),
        );
    };
    let user = ctx.user;
    let own = user == a.requester;
    let asked = inv_of(&a);
    let asked = &asked;
    let refuse = |refusal: Rejection| async move {
        ctx.audit(asked, &format!("refused click: {refusal}")).await;
        refusal.reply()
    };
    // The requester may withdraw their own request, never approve it.
    if own && decision == Decision::Approve {
        return refuse(Rejection::SelfApproval { id: id.to_owned() }).await;
    }
    if !own && !policy::in_any_group(ctx.config(), &a.from, user) {
        return refuse(Rejection::NotApprover {
            user: user.to_owned(),
            groups: a.from.clone(),
        })
        .await;
    }
    let vote = match store.vote(id, user, &decision, ctx.now()).await {
        Ok(v) => v,
        Err(e) => return Reply::message(Outcome::Failed, format!("{}.", told(&e))).ephemeral(),
    };
    match vote {
        Vote::Approved(a) => {
            ctx.audit(
                &inv,
                &format!("approved: request {id} of <@{}>", a.requester),
            )
            .await;
            if let Some(channel) = a.channel.as_deref().filter(|c| Some(*c) != ctx.channel) {
                let note = Reply::message(
                    Outcome::Info,
                    format!(
                        ":white_check_mark: <@{user}> approved your {}; it runs now.",
                        code(&inv.as_text())
                    ),
                );
                ctx.post(channel, &note, &format!("approval {id} given"))
                    .await;
            }
            let approved = Invocation {
                confirmed: true,
                approval: Some(Approved {
                    id: a.id.clone(),
                    by: a.approvers.clone(),
                }),
                ..inv
            };
            let as_requester = Ctx {
                user: &a.requester,
                ..*ctx
            };
            let mut reply = Box::pin(run_invocation(&as_requester, approved)).await;
            reply.parts.insert(
                0,
                Part::Context(format!(
                    ":white_check_mark: {} · asked by <@{}> · request `{id}`",
                    how(&a),
                    a.requester
                )),
            );
            reply
        }
        Vote::Counted(a) => {
            ctx.audit(
                &inv,
                &format!(
                    "approved: request {id} of <@{}> ({} of {})",
                    a.requester,
                    a.approvers.len(),
                    a.needed
                ),
            )
            .await;
            card(ctx, &a, &inv).await
        }
        Vote::Declined(a) => {
            let reason = a.reason.clone();
            ctx.audit(
                &inv,
                &format!(
                    "declined: request {id} of <@{}>{}",
                    a.requester,
                    reason
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                ),
            )
            .await;
            let said = match &reason {
                Some(r) => format!(
                    ":x: <@{user}> declined {} of <@{}>: {r}",
                    code(&inv.as_text()),
                    a.requester
                ),
                None => format!(
                    ":x: <@{user}> declined {} of <@{}>. Nothing runs. Say why with `decline {id} your reason`: it goes on the record and to <@{}>.",
                    code(&inv.as_text()),
                    a.requester,
                    a.requester
                ),
            };
            if let Some(channel) = a
                .channel
                .as_deref()
                .filter(|c| Some(*c) != ctx.channel && !own)
            {
                ctx.post(
                    channel,
                    &Reply::message(Outcome::Info, said.clone()),
                    &format!("approval {id} declined"),
                )
                .await;
            }
            Reply::message(Outcome::Done, said)
        }
        Vote::Closed(a) => {
            refuse(Rejection::ApprovalClosed {
                id: id.to_owned(),
                how: how(&a),
            })
            .await
        }
        Vote::Expired(a) => {
            refuse(Rejection::ApprovalExpired {
                id: id.to_owned(),
                requester: a.requester,
            })
            .await
        }
        Vote::AlreadyVoted(_) => Rejection::AlreadyApproved { id: id.to_owned() }.reply(),
        Vote::Unknown => Rejection::NoSuchApproval { id: id.to_owned() }.reply(),
    }
}

/// The invocation a request carries, for the audit of a refused click (a request
/// whose invocation cannot be read is audited as `approve`).
fn inv_of(a: &Approval) -> Invocation {
    serde_json::from_value(a.invocation.clone()).unwrap_or(Invocation {
        command: "approve".into(),
        target: Target::None,
        args: vec![a.id.clone()],
        params: Vec::new(),
        confirmed: false,
        approval: None,
    })
}
