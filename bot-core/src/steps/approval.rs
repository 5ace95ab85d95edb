//! Four-eyes approval, as the engine and the `approve` / `decline` commands share it:
//! the approval card (what, where, who asked, the ref, what ships, who may approve and
//! until when) and a vote on a request, decided once in the store. The vote that
//! approves records, in the same step, the pending run that carries the request out;
//! the engine starts it as the requester.

use crate::context::{Ctx, Shipping};
use crate::failure::told;
use crate::policy;
use crate::ports::approvals::{Approval, ApprovalStatus, Decision, Vote};
use crate::rejection::Rejection;
use crate::reply::{Button, ButtonStyle, Invocation, Next, Outcome, Part, Reply, Target};
use crate::runs::pending::{approval_id, pending, PendingStart};
use crate::text::{code, either, escape, when};

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
pub(crate) async fn changes_on_card(ctx: &Ctx<'_>, inv: &Invocation) -> Option<Shipping> {
    let cmd = ctx.config().command(&inv.command)?;
    ctx.action(cmd)?.action.changes(ctx, inv).await
}

/// The approval card: what, where, who asked, the ref, the changes, who may approve
/// and until when, with Approve and Decline.
pub(crate) async fn card(
    ctx: &Ctx<'_>,
    a: &Approval,
    inv: &Invocation,
    shipping: Option<&Shipping>,
) -> Reply {
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
            {
                let named = git_ref(inv).map_or_else(|| "the default".to_owned(), |r| code(&r));
                match inv.pin.as_ref().or(shipping.and_then(|s| s.pin.as_ref())) {
                    Some(p) => {
                        format!("{named} at {}", code(&crate::steps::changes::short(&p.sha)))
                    }
                    None => named,
                }
            },
            a.requester
        ));
    let shipping = match shipping {
        Some(s) => Some(s.clone()),
        None => changes_on_card(ctx, inv).await,
    };
    if let Some(s) = shipping {
        reply.parts.push(Part::Text(s.text));
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
    // A person in Slack decides, never someone with a shell on the server.
    if ctx.shell.is_some() {
        return refuse(Rejection::NotFromShell {
            what: "An approval or a decline".into(),
        })
        .await;
    }
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
    // No approval counts without its record in the audit log first.
    if decision == Decision::Approve {
        if let Err(refused) = ctx
            .audit_first(
                &inv,
                &format!("approving: request {id} of <@{}>", a.requester),
            )
            .await
        {
            return refused;
        }
    }
    // The run that carries the request out is recorded with the vote that approves
    // it: a crash right after the vote loses nothing.
    let start = pending(
        ctx,
        approval_id(id),
        &a.requester,
        inv.target.env().map(str::to_owned),
        a.invocation.clone(),
        ctx.reply_to.map(str::to_owned),
        &PendingStart::Approval {
            id: id.to_owned(),
            // Its reply takes this one's place: buttons it offers are clicked here.
            channel: ctx.channel.map(str::to_owned),
        },
    );
    let vote = match store
        .vote(id, user, &decision, ctx.now(), Some(&start))
        .await
    {
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
            // The engine starts the recorded run, as the requester; its progress and
            // reply take this one's place.
            Reply::new(Outcome::Progress)
                .context(format!(
                    ":white_check_mark: {} · asked by <@{}> · request `{id}`",
                    how(&a),
                    a.requester
                ))
                .then(Next::Start(approval_id(id)))
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
            card(ctx, &a, &inv, None).await
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
                    ":x: <@{user}> declined {} of <@{}>: {}",
                    code(&inv.as_text()),
                    a.requester,
                    escape(r)
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
        Vote::Closed(a) if redelivered(ctx, &a).await => Reply::handed_over(),
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
        pin: None,
    })
}

/// Whether this is the delivery that approved `a`, seen again (a replica died after
/// the vote): the run the vote recorded answers it, so this says nothing.
async fn redelivered(ctx: &Ctx<'_>, a: &Approval) -> bool {
    let (ApprovalStatus::Approved, Some(reply_to)) = (a.status, ctx.reply_to) else {
        return false;
    };
    matches!(
        ctx.backends.store.run(&approval_id(&a.id)).await,
        Ok(Some(run)) if run.message.as_deref() == Some(reply_to)
    )
}
