//! `lock`, `unlock` and `history`: environment locks and the audit log.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::backends::{Lock, LockOutcome};
use crate::engine::{audit, human, Ctx};
use crate::reply::{Invocation, Outcome, Reply};

/// A manual lock lasts until unlocked (or a week, whichever comes first).
const MANUAL_LOCK: Duration = Duration::from_secs(7 * 24 * 3600);

/// `<!date^…>` renders in each reader's time zone in Slack; elsewhere the UTC time shows.
pub(crate) fn when(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let utc = humantime::format_rfc3339_seconds(UNIX_EPOCH + std::time::Duration::from_secs(secs));
    format!("<!date^{secs}^{{date_short_pretty}} {{time}}|{utc}>")
}

/// "Locked by …" for anything that finds an environment locked.
pub(crate) fn locked_reply(now: SystemTime, held: &Lock) -> Reply {
    let for_how_long = human(now.duration_since(held.since).unwrap_or_default());
    let hint = match &held.action {
        Some(_) => "Try again when it is done.".to_owned(),
        None => format!("Ask them, or `unlock {}` when it is safe.", held.env),
    };
    Reply::message(
        Outcome::Rejected,
        format!(
            ":lock: *{}* is locked by <@{}> ({}, for {for_how_long}). {hint}",
            held.env, held.holder, held.reason
        ),
    )
}

pub(crate) async fn lock(ctx: &Ctx<'_>, inv: &Invocation, env: &str) -> Reply {
    let now = ctx.now();
    let reason = if inv.args.is_empty() {
        "locked by hand".to_owned()
    } else {
        inv.args.join(" ")
    };
    let lock = Lock {
        env: env.to_owned(),
        holder: ctx.user.to_owned(),
        reason: reason.clone(),
        since: now,
        expires: now + MANUAL_LOCK,
        action: None,
    };
    match ctx.b.store.try_lock(lock, now).await {
        Ok(LockOutcome::Acquired) => {
            audit(ctx, inv, "ok", None).await;
            Reply::message(Outcome::Done, format!(":lock: *{env}* is locked by <@{}>: {reason}. Deploys wait until `unlock {env}`.", ctx.user))
        }
        Ok(LockOutcome::HeldBy(held)) => locked_reply(now, &held),
        Err(e) => Reply::message(Outcome::Failed, format!("I could not lock {env}: {e}")),
    }
}

pub(crate) async fn unlock(ctx: &Ctx<'_>, inv: &Invocation, env: &str) -> Reply {
    let now = ctx.now();
    // A running deploy, rollback or switch releases its own lock; pulling it from
    // under the action would let a second one start while traffic is moving.
    match ctx.b.store.lock_of(env, now).await {
        Ok(Some(held)) if held.action.is_some() => {
            return Reply::message(
                Outcome::Rejected,
                format!(
                    ":lock: *{env}* is held by a running `{}` of <@{}> ({}, for {}). It unlocks itself when that is done.",
                    held.action.as_deref().unwrap_or("action"),
                    held.holder,
                    held.reason,
                    human(now.duration_since(held.since).unwrap_or_default())
                ),
            )
        }
        Ok(_) => {}
        Err(e) => return Reply::message(Outcome::Failed, format!("I could not unlock {env}: {e}")),
    }
    match ctx.b.store.unlock(env).await {
        Ok(Some(held)) => {
            audit(ctx, inv, "ok", None).await;
            let was = if held.holder == ctx.user {
                String::new()
            } else {
                format!(" (it was held by <@{}>: {})", held.holder, held.reason)
            };
            Reply::message(Outcome::Done, format!(":unlock: *{env}* is unlocked{was}."))
        }
        Ok(None) => Reply::message(Outcome::Info, format!("*{env}* was not locked.")),
        Err(e) => Reply::message(Outcome::Failed, format!("I could not unlock {env}: {e}")),
    }
}

pub(crate) async fn history(ctx: &Ctx<'_>, env: Option<&str>) -> Reply {
    let records = match ctx.b.store.history(env, 20).await {
        Ok(r) => r,
        Err(e) => {
            return Reply::message(
                Outcome::Failed,
                format!("I could not read the history: {e}"),
            )
        }
    };
    let title = match env {
        Some(e) => format!("Latest actions on {e}"),
        None => "Latest actions".to_owned(),
    };
    if records.is_empty() {
        return Reply::message(Outcome::Info, format!("{title}: nothing yet."));
    }
    let lines: Vec<String> = records
        .iter()
        .map(|r| {
            let mut line = format!(
                "{} · <@{}> · `{} {}` · {}",
                when(r.at),
                r.user,
                r.command,
                r.target,
                r.outcome
            );
            if let Some(link) = &r.link {
                line.push_str(&format!(" · <{link}|build>"));
            }
            line
        })
        .collect();
    Reply::new(Outcome::Info)
        .header(title)
        .text(lines.join("\n"))
}
