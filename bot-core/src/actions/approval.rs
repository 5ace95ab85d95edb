//! `approve ID` and `decline ID [reason]`: four-eyes votes typed instead of clicked.

use async_trait::async_trait;

use crate::config::CommandSpec;
use crate::context::{Action, Ctx};
use crate::ports::approvals::Decision;
use crate::reply::{Invocation, Outcome, Reply};
use crate::steps::approval::vote;

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
