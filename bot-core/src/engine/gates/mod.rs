//! The gates an invocation passes before its registry row runs it, in the order of
//! [`GATES`]: each lets it on (possibly changed) or answers instead. The engine
//! follows the list, as middleware chains do, and no gate calls back into it.

mod approval;
mod confirm;
mod exists;
mod freeze;
mod lock;
mod permit;
mod record;
mod when;

use async_trait::async_trait;

use crate::config::{ActiveFreeze, CommandSpec, Config};
use crate::context::{ActionDef, Ctx};
use crate::policy;
use crate::rejection::Rejection;
use crate::reply::{Invocation, Reply};

/// An invocation on its way through the gates, with what the gates learned of it.
pub(crate) struct Passage<'a> {
    /// Its command.
    pub cmd: &'a CommandSpec,
    /// The command's registry row.
    pub action: &'static ActionDef,
    /// What runs, as the gates left it.
    pub inv: Invocation,
    /// The freeze this invocation overrides, when it does.
    pub overridden: Option<ActiveFreeze>,
    /// The line said in the reply when it runs (the freeze override's announcement).
    pub said: Option<String>,
}

impl Passage<'_> {
    /// Whether it must be confirmed with a click before it runs (and is not yet).
    fn asks(&self, config: &Config) -> bool {
        policy::needs_confirmation(config, self.cmd, self.action.rules, &self.inv.target)
            && !self.inv.confirmed
    }
}

/// What a gate decides.
// Moved from gate to gate, never kept: boxing would only add an allocation per gate.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Flow<'a> {
    /// Let it on to the next gate.
    On(Passage<'a>),
    /// Stop here with this answer.
    Answer(Reply),
}

/// One check or step between a resolved invocation and its action.
#[async_trait]
pub(crate) trait Gate: Sync {
    /// Lets `passage` on, or answers instead.
    async fn pass<'a>(&self, ctx: &Ctx<'a>, passage: Passage<'a>) -> Flow<'a>;
}

/// The gates, in the order an invocation meets them.
static GATES: [&dyn Gate; 11] = [
    &exists::StillExists,
    &when::AtItsTime,
    &permit::Permitted,
    &permit::ArgumentsCheck,
    &approval::StillFresh,
    &when::ForLater,
    &freeze::Freeze,
    &lock::Lock,
    &approval::Approval,
    &confirm::Confirmation,
    &record::AuditedFirst,
];

/// Takes `inv` through every gate: the passage cleared to run, or the answer given
/// instead.
pub(crate) async fn pass<'a>(ctx: &Ctx<'a>, inv: Invocation) -> Flow<'a> {
    // The gates borrow the command for as long as the request's configuration lives.
    let config = &ctx.generation.config;
    let Some(cmd) = config.command(&inv.command) else {
        return Flow::Answer(
            Rejection::CommandGone {
                command: inv.command.clone(),
            }
            .reply(),
        );
    };
    let Some(action) = ctx.action(cmd) else {
        return Flow::Answer(Rejection::unsupported(&cmd.name, &inv.target).reply());
    };
    let mut flow = Flow::On(Passage {
        cmd,
        action,
        inv,
        overridden: None,
        said: None,
    });
    for gate in GATES {
        flow = match flow {
            Flow::On(passage) => gate.pass(ctx, passage).await,
            answered => return answered,
        };
    }
    flow
}

/// The refusal `refusal`, recorded in the audit log first.
async fn refused<'a>(ctx: &Ctx<'_>, inv: &Invocation, refusal: Rejection) -> Flow<'a> {
    ctx.audit(inv, &format!("refused: {refusal}")).await;
    Flow::Answer(refusal.reply())
}
