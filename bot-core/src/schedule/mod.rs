//! Deploys scheduled for later (`deploy staging at 18:00`, `in 30m`, `tomorrow 07:30
//! Europe/Prague`): the time is read in the requester's zone, and the deploy is a
//! pending run whose lease lapses at that time, so whichever replica is alive then
//! starts it, once, across restarts. When it starts it goes through every check a
//! deploy goes through at that moment (permission, freezes, locks — it waits in line
//! — and approvals), and its progress and end are posted where it was asked.

pub mod when;

use std::time::SystemTime;

use jiff::tz::TimeZone;
use jiff::Timestamp;

use crate::context::{ActionDef, Ctx};
use crate::failure::told;
use crate::ports::store::{Run, RunStatus};
use crate::rejection::Rejection;
use crate::reply::{Invocation, Outcome, Reply};
use crate::runs::pending::{pending, PendingStart};
use crate::steps::queue_words::WHEN_FREE;
use crate::text::code;

pub use when::{is_time_word, When};

/// The parameter holding a scheduled invocation's time (Unix seconds).
pub use crate::reply::SCHEDULED_AT as AT;
/// The parameter holding the zone the time was given in.
pub use crate::reply::SCHEDULED_ZONE as ZONE;

/// The id of the pending run of scheduled deploy `id`.
pub fn run_id(id: &str) -> String {
    format!("start:schedule:{id}")
}

/// The time and zone `inv` is scheduled for, when it is.
pub(crate) fn at_of(inv: &Invocation) -> Option<(Timestamp, TimeZone)> {
    let param = |name: &str| {
        inv.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let secs: i64 = param(AT)?.parse().ok()?;
    let at = Timestamp::from_second(secs).ok()?;
    let zone = param(ZONE)
        .and_then(|z| TimeZone::get(z).ok())
        .unwrap_or(TimeZone::UTC);
    Some((at, zone))
}

/// Whether `run` is a scheduled deploy whose time has not come.
pub(crate) fn waiting(run: &Run, now: SystemTime) -> bool {
    run.status == RunStatus::Pending
        && run.lease_until > now
        && matches!(
            serde_json::from_value::<PendingStart>(run.state.clone()),
            Ok(PendingStart::Scheduled { .. })
        )
}

/// `inv` without its schedule: what runs when the time comes.
fn unscheduled(inv: &Invocation) -> Invocation {
    let mut plain = inv.clone();
    plain.params.retain(|(k, _)| k != AT && k != ZONE);
    plain
}

/// The requester's zone: their chat profile's, else UTC.
async fn zone_of(ctx: &Ctx<'_>) -> TimeZone {
    match ctx.backends.people.time_zone(ctx.user).await {
        Some(name) => TimeZone::get(&name).unwrap_or(TimeZone::UTC),
        None => TimeZone::UTC,
    }
}

/// Reads a time from a deploy's words: `inv` unchanged when it has none (or was read
/// already), else with the time words replaced by [`AT`] and [`ZONE`]. Words that
/// read as a time but make none are refused, saying why.
pub(crate) async fn resolve(
    ctx: &Ctx<'_>,
    action: &ActionDef,
    inv: Invocation,
) -> Result<Invocation, Rejection> {
    if action.name != "deploy" || at_of(&inv).is_some() {
        return Ok(inv);
    }
    if !inv.args.iter().any(|w| is_time_word(w)) {
        return Ok(inv);
    }
    let zone = zone_of(ctx).await;
    let now = Timestamp::try_from(ctx.now()).unwrap_or(Timestamp::UNIX_EPOCH);
    match when::read(&inv.args, now, &zone) {
        Ok(None) => Ok(inv),
        Ok(Some(_))
            if inv.params.iter().any(|(k, _)| {
                k.eq_ignore_ascii_case("override") || k == crate::reply::OVERRIDE_WINDOW
            }) =>
        {
            Err(Rejection::Conflict(
                "A freeze override is given when a deploy runs, never ahead of time, so nothing was scheduled. Schedule it without `override=`; if a freeze holds when it starts, it is refused and you are told.".to_owned(),
            ))
        }
        Ok(Some((when, rest))) => {
            let mut scheduled = inv;
            scheduled.args = rest;
            scheduled
                .params
                .push((AT.to_owned(), when.at.as_second().to_string()));
            scheduled.params.push((
                ZONE.to_owned(),
                when.zone.iana_name().unwrap_or("UTC").to_owned(),
            ));
            Ok(scheduled)
        }
        Err(why) => {
            let env = inv.target.env().unwrap_or("staging");
            Err(Rejection::Conflict(format!(
                "I could not tell when: {why}. Nothing was deployed or scheduled. Say `deploy {env} in 30m`, `deploy {env} at 18:00` or `deploy {env} tomorrow 07:30 Europe/Prague`; a git ref that looks like a time goes as `ref=…`.",
                why = crate::text::escape(&why)
            )))
        }
    }
}

/// `at` said in `zone`, and as a Slack date each reader sees in their own zone.
pub(crate) fn say(at: Timestamp, zone: &TimeZone) -> String {
    let local = at.to_zoned(zone.clone());
    let name = zone.iana_name().unwrap_or("UTC");
    format!(
        "{} ({name}, {})",
        local.strftime("%a %-d %b %H:%M"),
        crate::text::when(SystemTime::from(at))
    )
}

/// [`say`] of a stored time and zone name (UTC when the zone is unknown).
pub(crate) fn say_at(at: SystemTime, zone: &str) -> String {
    let zone = TimeZone::get(zone).unwrap_or(TimeZone::UTC);
    Timestamp::try_from(at)
        .map(|t| say(t, &zone))
        .unwrap_or_default()
}

/// Records `inv` (scheduled, authorised and confirmed) to start at its time, as
/// `ctx.user`, and says so.
pub(crate) async fn record(ctx: &Ctx<'_>, inv: Invocation) -> Reply {
    let Some((at, zone)) = at_of(&inv) else {
        return Reply::message(
            Outcome::Failed,
            "A scheduled deploy lost its time; nothing was scheduled.",
        );
    };
    // A confirmation clicked late: the time it asked about has passed.
    let now = Timestamp::try_from(ctx.now()).unwrap_or(Timestamp::UNIX_EPOCH);
    if at <= now {
        return Rejection::Conflict(format!(
            "{} has passed while this waited for an answer, so nothing was scheduled. Ask again with a time ahead.",
            say(at, &zone)
        ))
        .reply();
    }
    let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let store = &ctx.backends.store;
    // Where its progress and end are posted: a message of its own, in the
    // conversation it was asked in (only chat has one).
    let message = match (ctx.channel, ctx.reply_to) {
        (Some(channel), Some(_)) => {
            let msg = format!("schedule:{id}");
            let route = serde_json::json!({
                "to": "channel",
                "channel": channel,
                "thread_ts": null,
                "user": ctx.user,
            });
            match store
                .open_message(
                    &msg,
                    "slack",
                    &route,
                    &format!("scheduled deploy {id}"),
                    ctx.now(),
                )
                .await
            {
                Ok(()) => Some(msg),
                Err(e) => {
                    return Reply::message(
                        Outcome::Failed,
                        format!(
                        ":x: I could not record the scheduled deploy: {}. Nothing was scheduled.",
                        told(&e)
                    ),
                    )
                }
            }
        }
        _ => None,
    };
    let mut fire = unscheduled(&inv);
    // It was confirmed now; when it fires a busy environment makes it wait in line.
    fire.confirmed = true;
    fire.args.extend(WHEN_FREE.iter().map(|w| (*w).to_owned()));
    let fire_at = SystemTime::from(at);
    let start = PendingStart::Scheduled {
        id: id.clone(),
        at: fire_at,
        zone: zone.iana_name().unwrap_or("UTC").to_owned(),
        channel: ctx.channel.map(str::to_owned),
    };
    let mut run = pending(
        ctx,
        run_id(&id),
        ctx.user,
        inv.target.env().map(str::to_owned),
        serde_json::to_value(&fire).unwrap_or(serde_json::Value::Null),
        message,
        &start,
    );
    // Nobody holds it until its time: then its lease has lapsed and whichever
    // replica looks first starts it.
    run.owner = String::new();
    run.lease_until = fire_at;
    match store.start_run(&run, None).await {
        Ok(true) => {}
        Ok(false) => {
            return Reply::message(
                Outcome::Failed,
                "This deploy was scheduled before; nothing more was done.",
            )
        }
        Err(e) => {
            return Reply::message(
                Outcome::Failed,
                format!(
                    ":x: I could not record the scheduled deploy: {}. Nothing was scheduled.",
                    told(&e)
                ),
            )
        }
    }
    let what = unscheduled(&inv).as_text();
    ctx.audit(&inv, &format!("scheduled {id} for {at}")).await;
    Reply::message(
        Outcome::Done,
        format!(
            ":alarm_clock: Scheduled {} for {} · id `{id}`",
            code(&what),
            say(at, &zone)
        ),
    )
    .context(format!(
        "When it starts I check again what a deploy checks: permission, freezes, locks (it waits in line) and approvals, and tell you how it went. `scheduled` lists what is scheduled; `unschedule {id}` cancels it."
    ))
}

/// A scheduled deploy, as listed.
pub(crate) struct Scheduled {
    /// Its id.
    pub id: String,
    /// Its pending run.
    pub run: Run,
    /// When it starts.
    pub at: SystemTime,
    /// The zone it was asked in.
    pub zone: String,
    /// What it runs.
    pub inv: Option<Invocation>,
}

/// The deploys still scheduled (of `env`, or every environment), soonest first.
pub(crate) async fn list(ctx: &Ctx<'_>, env: Option<&str>) -> Result<Vec<Scheduled>, Reply> {
    let runs = ctx
        .backends
        .store
        .recent_runs(env, 500)
        .await
        .map_err(|e| {
            Reply::message(
                Outcome::Failed,
                format!("I could not read the schedule: {}.", told(&e)),
            )
        })?;
    let mut all: Vec<Scheduled> = runs
        .into_iter()
        .filter(|r| r.status == RunStatus::Pending && r.action == "start")
        .filter_map(
            |run| match serde_json::from_value::<PendingStart>(run.state.clone()) {
                Ok(PendingStart::Scheduled { id, at, zone, .. }) => Some(Scheduled {
                    id,
                    at,
                    zone,
                    inv: serde_json::from_value(run.invocation.clone()).ok(),
                    run,
                }),
                _ => None,
            },
        )
        .collect();
    all.sort_by_key(|s| s.at);
    Ok(all)
}

/// How far off `at` is, from `now`.
pub(crate) fn from_now(at: SystemTime, now: SystemTime) -> String {
    match at.duration_since(now) {
        Ok(d) => format!("in {}", crate::text::span(d)),
        Err(_) => "now".to_owned(),
    }
}
