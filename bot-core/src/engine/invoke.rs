//! The invocation pipeline: a resolved command still exists, the person may run it,
//! its arguments check out, it is confirmed where it must be, the environment is not
//! locked against it — then its registry row runs it.

use super::{approval, pending, queue};
use crate::config::{ActiveFreeze, CommandSpec, Config};
use crate::context::{ActionDef, Ctx, Offer};
use crate::failure::told;
use crate::policy;
use crate::ports::store::Run;
use crate::rejection::Rejection;
use crate::reply::{
    ButtonAction, ButtonStyle, Confirm, Invocation, Next, Outcome, Part, Reply, Target,
};
use crate::schedule;
use crate::steps::queue_words::wants_queue;
use crate::text::code;

/// Runs a resolved invocation: permission, checks, freeze, locks, approval,
/// confirmation, action.
pub(crate) async fn run_invocation(ctx: &Ctx<'_>, inv: Invocation) -> Reply {
    let config = ctx.config();
    let Some(cmd) = config.command(&inv.command) else {
        return Rejection::CommandGone {
            command: inv.command.clone(),
        }
        .reply();
    };
    let Some(action) = ctx.action(cmd) else {
        return Rejection::unsupported(&cmd.name, &inv.target).reply();
    };
    if let Err(gone) = still_exists(config, &inv) {
        return gone.reply();
    }
    // `deploy staging at 18:00`: the time read in the requester's zone, first.
    let inv = match schedule::resolve(ctx, action, inv).await {
        Ok(inv) => inv,
        Err(refusal) => return refusal.reply(),
    };
    if let Err(refusal) = policy::permitted(config, cmd, action.rules, &inv.target, ctx.user) {
        ctx.audit(&inv, &format!("refused: {refusal}")).await;
        return refusal.reply();
    }
    if let Err(refusal) = action.action.check(config, &inv) {
        if action.rules.mutating {
            ctx.audit(&inv, &format!("refused: {refusal}")).await;
        }
        return refusal.reply();
    }
    // An approval is good to start for its rule's `valid_for`, queue included.
    if let Some(refusal) = stale_approval(ctx, cmd, action, &inv) {
        ctx.audit(&inv, &format!("refused: {refusal}")).await;
        return refusal.reply();
    }
    // For later: confirmed now where it must be, every other check made when it
    // starts (a freeze, a lock or an approval then is what counts).
    if schedule::at_of(&inv).is_some() {
        if policy::needs_confirmation(config, cmd, action.rules, &inv.target) && !inv.confirmed {
            return confirmation(ctx, cmd, action, inv).await;
        }
        return schedule::record(ctx, inv).await;
    }
    let overridden = match policy::check_freeze(config, action, cmd, &inv, ctx.user, ctx.now()) {
        Ok(Some(_)) if ctx.shell.is_some() => {
            let refusal = Rejection::NotFromShell {
                what: "A freeze override".into(),
            };
            ctx.audit(&inv, &format!("refused: {refusal}")).await;
            return refusal.reply();
        }
        Ok(overridden) => overridden,
        Err(refusal) => {
            ctx.audit(&inv, &format!("refused: {refusal}")).await;
            return refusal.reply();
        }
    };
    // An override holds for the window it names, and only for it: whatever carries
    // this invocation on (a button, the queue, an approval) carries the window too.
    let inv = match &overridden {
        Some(freeze) => policy::scope_override(inv, freeze),
        None => inv,
    };
    let asks = policy::needs_confirmation(config, cmd, action.rules, &inv.target) && !inv.confirmed;
    // A locked environment is said so before anything is asked: no "Really deploy?"
    // whose answer could only be "it is locked".
    // A deploy asked to wait in line (`when free`) is asked first and queued after.
    let waits = wants_queue(&inv);
    if action.rules.respects_locks || (asks && action.rules.takes_lock && !waits) {
        if let Some(refusal) = locked(ctx, &inv).await {
            ctx.audit(&inv, &format!("refused: {}", refusal.to_plain_text()))
                .await;
            return queue::when_locked(ctx, &inv, refusal).await;
        }
    }
    if inv.approval.is_none() {
        if let Some(rule) = policy::approval_rule(config, cmd, action.rules, &inv.target) {
            return approval::request(ctx, rule, inv).await;
        }
    }
    if asks {
        return confirmation(ctx, cmd, action, inv).await;
    }
    let Some(freeze) = overridden else {
        // Nothing changes the platform without its record in the audit log first.
        if action.rules.mutating {
            if let Err(refused) = ctx.audit_first(&inv, "started").await {
                return refused;
            }
        }
        let reply = action.action.run(ctx, cmd, inv).await;
        return follow(ctx, reply).await;
    };
    let said = match announce_override(ctx, &inv, &freeze).await {
        Ok(said) => said,
        Err(refused) => return refused,
    };
    let reply = action.action.run(ctx, cmd, inv).await;
    let mut reply = follow(ctx, reply).await;
    reply.parts.insert(0, Part::Context(said));
    reply
}

/// An approved invocation whose approval is older than its rule's `valid_for`.
fn stale_approval(
    ctx: &Ctx<'_>,
    cmd: &CommandSpec,
    action: &ActionDef,
    inv: &Invocation,
) -> Option<Rejection> {
    let approved = inv.approval.as_ref()?;
    let at = approved.at?;
    let valid_for = policy::approval_rule(ctx.config(), cmd, action.rules, &inv.target)
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

/// The refusal when the invocation's environment is locked (or its lock cannot be read).
async fn locked(ctx: &Ctx<'_>, inv: &Invocation) -> Option<Reply> {
    let env = inv.target.env()?;
    let now = ctx.now();
    match ctx.backends.store.lock_of(env, now).await {
        Ok(Some(lock)) => Some(
            Rejection::Locked {
                lock: Box::new(lock),
                now,
                user: ctx.user.to_owned(),
            }
            .reply(),
        ),
        Ok(None) => None,
        Err(e) => Some(Reply::message(
            Outcome::Failed,
            format!("I could not check the lock of {env}: {}", told(&e)),
        )),
    }
}

/// Checks that an invocation still names something that exists (buttons outlive reloads).
fn still_exists(config: &Config, inv: &Invocation) -> Result<(), Rejection> {
    let missing = match &inv.target {
        Target::None => false,
        Target::Env { env, pools } => {
            config.env(env).is_none() || pools.iter().any(|p| config.pool(env, p).is_none())
        }
        Target::Pool { env, pool, member } => match config.pool(env, pool) {
            None => true,
            Some(p) => member
                .as_ref()
                .is_some_and(|m| !p.members.iter().any(|x| &x.name == m)),
        },
        Target::Instance(r) => config.instance(r).is_none(),
        Target::Region { env, region, pools } => {
            config.env(env).and_then(|e| e.region(region)).is_none()
                || pools.iter().any(|p| config.pool(env, p).is_none())
        }
    };
    if missing {
        return Err(Rejection::TargetGone {
            target: inv.target.to_string(),
        });
    }
    Ok(())
}

/// Asks before running: a danger button carrying the confirmed invocation, and Cancel.
async fn confirmation(
    ctx: &Ctx<'_>,
    cmd: &CommandSpec,
    action: &ActionDef,
    inv: Invocation,
) -> Reply {
    let text = question(ctx, cmd, action, &inv).await;
    // The message also says what would ship; the native dialog keeps to the question.
    // What the person confirms is what ships: the head commit shown is pinned.
    let shipping = action.action.changes(ctx, &inv).await;
    let shown = match &shipping {
        Some(s) => format!("{text}\n{}", s.text),
        None => text.clone(),
    };
    let label = format!("Yes, {}", inv.as_text());
    let confirmed = Invocation {
        confirmed: true,
        pin: inv.pin.clone().or_else(|| shipping.and_then(|s| s.pin)),
        ..inv
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

/// Nothing can be asked or run without the store.
pub(super) fn store_down(e: &crate::ports::StoreError) -> Reply {
    Reply::message(Outcome::Failed, format!("{}.", told(e)))
}

/// The question asked before running: names the target and, for instances, whether
/// it is live; on a protected environment says so.
async fn question(
    ctx: &Ctx<'_>,
    cmd: &CommandSpec,
    action: &ActionDef,
    inv: &Invocation,
) -> String {
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
        return format!("{live} Really `{}` *{r}*?", cmd.name);
    }
    if inv.target == Target::None {
        return format!("Really {}?", code(&inv.as_text()));
    }
    let protected = inv
        .target
        .env()
        .and_then(|e| ctx.config().env(e))
        .is_some_and(|e| e.protected);
    let question = action
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

/// Does what `reply` asks for next, if anything; returns the reply to give.
pub(super) async fn follow(ctx: &Ctx<'_>, mut reply: Reply) -> Reply {
    match reply.next.take() {
        None => reply,
        Some(Next::WhenLocked(inv)) => queue::when_locked(ctx, &inv, reply).await,
        Some(Next::Start(id)) => {
            let run = match ctx.backends.store.run(&id).await {
                Ok(Some(run)) => run,
                Ok(None) => return Reply::message(
                    Outcome::Failed,
                    "The approved request could not be started: its record is missing. Ask again.",
                ),
                // Recorded, but not readable now: whichever replica is alive starts
                // it once its lease lapses.
                Err(e) => {
                    tracing::warn!(run = %id, error = %e, "an approved request is left to start later");
                    return reply.context(format!(
                        "It starts as soon as the state store answers again ({}).",
                        told(&e)
                    ));
                }
            };
            let mut started = Box::pin(start(ctx, run)).await;
            for (k, part) in reply.parts.into_iter().enumerate() {
                started.parts.insert(k, part);
            }
            started
        }
    }
}

/// Starts pending run `run` (its lease is ours) through the whole pipeline, as its
/// requester: an approved request, or the first deploy in line.
pub(super) async fn start(ctx: &Ctx<'_>, run: Run) -> Reply {
    let prepared = match pending::prepare(ctx, &run).await {
        Ok(p) => p,
        Err(reply) => return reply,
    };
    let as_requester = Ctx {
        user: &prepared.user,
        channel: prepared.channel.as_deref(),
        delivery: Some(&run.id),
        reply_to: run.message.as_deref().or(ctx.reply_to),
        ..*ctx
    };
    let reply = Box::pin(run_invocation(&as_requester, prepared.inv.clone())).await;
    pending::after(ctx, &run, prepared, reply).await
}
