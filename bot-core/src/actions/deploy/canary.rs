//! A canary deploy's middle steps: once the new member passed its health gate,
//! traffic moves to it by weight, step by step; each step is held for its pause while
//! Prometheus (or, without an analysis, the pool's health recipe) judges it, and
//! failing readings in a row put all traffic back on the old member. The step, the
//! moment its weight took, and the failing streak are saved with the run, so a
//! replica taking it over goes on at the same step, with the same weights, for the
//! rest of the same pause.

use std::time::Duration;

use super::live::{ms, Live};
use super::report::prefix;
use super::state::{CanaryRun, Order, Paused, Step};
use crate::config::{Canary, Pool};
use crate::context::Offer;
use crate::failure::told;
use crate::ports::Split;
use crate::reply::{ButtonAction, ButtonStyle, Confirm, Invocation, Outcome, Target};
use crate::runs::Stop;
use crate::steps::analysis::{self, Reading};
use crate::steps::health::probe;
use crate::steps::moves::switch_and_verify;
use crate::steps::watch::unix_ms;
use crate::text::human;

/// Takes pool `i` through its canary: sets each step's weights, holds and judges
/// it, carries out the orders given from chat, and hands over to the final switch
/// after the last (100 %) step; on failing readings (or an abort), puts all traffic
/// back on the old member and fails the pool.
pub(crate) async fn step(
    live: &Live<'_, '_>,
    i: usize,
    pool: &Pool,
    label: &str,
) -> Result<(), Stop> {
    let ctx = live.ctx;
    let env = live.env;
    let Some(canary) = ctx.config().canary(&env.name, &pool.name).cloned() else {
        // No canary any more (the config changed): the plain switch finishes it.
        live.with(|s| s.pools[i].step = Step::Switching);
        return live.save().await;
    };
    let now = unix_ms(ctx.now());
    let p = live.with(|s| {
        let p = &mut s.pools[i];
        let c = p
            .canary
            .get_or_insert_with(|| CanaryRun::new(&canary, None));
        if c.began_ms == 0 {
            c.began_ms = now;
        }
        p.clone()
    });
    let from = p.from.clone().unwrap_or_default();
    let to = p.to.clone().unwrap_or_default();
    let line_prefix = prefix(label, p.from.as_deref(), p.to.as_deref());
    // Without an analysis, the health probes go at the pace of the pool's post-switch
    // watch (or of the health gate), and fail after as many in a row.
    let (interval, failures) = match (&canary.analysis, ctx.config().watch(&env.name, &pool.name)) {
        (Some(_), _) => (canary.interval, canary.failures),
        (None, Some(w)) => (w.every, w.failures),
        (None, None) => (ctx.config().settings.gate_interval, canary.failures),
    };
    let switch = match ctx.switch_at(&env.name, pool.region.as_deref(), &pool.name) {
        Ok(s) => s.clone(),
        Err(e) => return abort(live, i, pool, label, &told(&e)).await,
    };
    // Aborted before a crash: it is put back, whatever happened since.
    if let Some(why) = current(live, i).aborted {
        return abort(live, i, pool, label, &why).await;
    }
    let mut shown = Shown::default();
    'steps: loop {
        let c = current(live, i);
        let Some(&percent) = c.steps.get(c.at) else {
            live.with(|s| s.pools[i].step = Step::Switching);
            return live.save().await;
        };
        if c.since_ms.is_none() {
            // An order given before this step's weights took: nothing moves first.
            match take_orders(live, i).await? {
                Some(Steered::Abort(why)) => return abort(live, i, pool, label, &why).await,
                Some(Steered::Promote) => continue 'steps,
                None => {}
            }
            let c = current(live, i);
            let Some(&percent) = c.steps.get(c.at) else {
                continue 'steps;
            };
            live.with(|s| {
                s.pools[i].line = format!(
                    "{line_prefix} — canary {}: moving {percent} % of traffic to {to}",
                    c.which()
                )
            });
            live.show().await;
            let permit = live.checkpoint("shift traffic").await?;
            let split = Split::canary(pool, &from, &to, percent);
            let set = switch.set_split(env, pool, &split).await;
            ctx.backends.status_cache.moved();
            drop(permit);
            if let Err(e) = set {
                let why = format!("its weights could not be set: {}", told(&e));
                return abort(live, i, pool, label, &why).await;
            }
            let now = unix_ms(ctx.now());
            live.with(|s| {
                if let Some(c) = s.pools[i].canary.as_mut() {
                    c.since_ms = Some(now);
                    c.readings.clear();
                }
            });
            super::shown::canary_step(live, i, c.at, u32::from(percent)).await;
            live.save().await?;
        }
        if percent >= 100 {
            let now = unix_ms(ctx.now());
            live.with(|s| {
                let p = &mut s.pools[i];
                if let Some(c) = p.canary.as_mut() {
                    c.at = c.steps.len();
                    c.took_ms = now.saturating_sub(c.began_ms);
                }
                p.step = Step::Switching;
            });
            return live.save().await;
        }
        // Hold the step for its pause (the clock stopped while paused), reading every
        // interval and looking for orders every tick.
        let pause_ms = ms(canary.pause);
        let mut next_reading = unix_ms(ctx.now()) + ms(interval);
        loop {
            match take_orders(live, i).await? {
                Some(Steered::Abort(why)) => return abort(live, i, pool, label, &why).await,
                Some(Steered::Promote) => continue 'steps,
                None => {}
            }
            let c = current(live, i);
            let since = c.since_ms.unwrap_or_default();
            let now = unix_ms(ctx.now());
            let held = match &c.paused {
                Some(p) => p.since_ms.saturating_sub(since),
                None => now.saturating_sub(since),
            };
            if c.paused.is_none() && held >= pause_ms {
                break;
            }
            let left = pause_ms.saturating_sub(held);
            show_step(live, i, &line_prefix, &to, left, &mut shown).await;
            let mut wait = TICK.min(Duration::from_millis(next_reading.saturating_sub(now)));
            if c.paused.is_none() {
                wait = wait.min(Duration::from_millis(left));
            }
            tokio::time::sleep(wait).await;
            if unix_ms(ctx.now()) < next_reading {
                continue;
            }
            next_reading = unix_ms(ctx.now()) + ms(interval);
            let readings = judge(live, pool, &canary, interval, &to).await;
            let failed = readings.iter().any(|r| r.failing);
            let streak = live.with(|s| {
                let c = s.pools[i]
                    .canary
                    .get_or_insert_with(|| CanaryRun::new(&canary, None));
                c.failing = if failed { c.failing + 1 } else { 0 };
                c.readings = readings.clone();
                c.failing
            });
            if streak >= failures {
                let worst = readings
                    .iter()
                    .filter(|r| r.failing)
                    .map(|r| crate::text::escape(&r.describe()))
                    .collect::<Vec<_>>()
                    .join("; ");
                let why = format!(
                    "{worst}, failing {streak} reading{} in a row",
                    if streak == 1 { "" } else { "s" }
                );
                return abort(live, i, pool, label, &why).await;
            }
            live.save().await?;
        }
        live.with(|s| {
            if let Some(c) = s.pools[i].canary.as_mut() {
                c.at += 1;
                c.since_ms = None;
            }
        });
        live.save().await?;
    }
}

/// How often a step being held looks for orders.
const TICK: Duration = Duration::from_millis(250);

/// An order that ends the step being held, already saved with the run: promoted
/// (now at its last step, weights not yet set), or aborted (why).
enum Steered {
    Promote,
    Abort(String),
}

/// Reads the orders given since the last ones seen, and carries out pause and
/// continue at once (saved); a promote or an abort is handed back.
async fn take_orders(live: &Live<'_, '_>, i: usize) -> Result<Option<Steered>, Stop> {
    let store = &live.ctx.backends.store;
    let id = live.driver.id();
    let seen = current(live, i).orders_seen;
    let Some(seen) = seen else {
        // Begun without knowing the orders before it: the newest so far are old.
        if let Ok(all) = store.run_orders(id, 0).await {
            let newest = all.last().map_or(0, |o| o.seq);
            live.with(|s| {
                if let Some(c) = s.pools[i].canary.as_mut() {
                    c.orders_seen = Some(newest);
                }
            });
            live.save().await?;
        }
        return Ok(None);
    };
    let orders = match store.run_orders(id, seen).await {
        Ok(o) => o,
        Err(e) => {
            // The next save finds out whether the store is gone; orders wait till then.
            tracing::warn!(run = %id, error = %e, "could not read a canary's orders");
            return Ok(None);
        }
    };
    if orders.is_empty() {
        return Ok(None);
    }
    let now = unix_ms(live.ctx.now());
    let mut ending = None;
    live.with(|s| {
        let Some(c) = s.pools[i].canary.as_mut() else {
            return;
        };
        for o in &orders {
            c.orders_seen = Some(o.seq);
            match Order::parse(&o.order) {
                Some(Order::Pause) if c.paused.is_none() => {
                    c.paused = Some(Paused {
                        by: o.user.clone(),
                        since_ms: now,
                    });
                }
                Some(Order::Continue) => {
                    if let Some(p) = c.paused.take() {
                        c.since_ms = c.since_ms.map(|t| t + now.saturating_sub(p.since_ms));
                    }
                }
                Some(Order::Promote) => {
                    c.at = c.steps.len().saturating_sub(1);
                    c.since_ms = None;
                    c.paused = None;
                    c.promoted_by = Some(o.user.clone());
                    ending = Some(Steered::Promote);
                    break;
                }
                Some(Order::Abort) => {
                    let why = format!("aborted by <@{}>", o.user);
                    c.aborted = Some(why.clone());
                    ending = Some(Steered::Abort(why));
                    break;
                }
                Some(Order::Pause) | None => {}
            }
        }
    });
    live.save().await?;
    Ok(ending)
}

fn current(live: &Live<'_, '_>, i: usize) -> CanaryRun {
    live.with(|s| s.pools[i].canary.clone())
        .unwrap_or_else(|| CanaryRun {
            steps: vec![100],
            ..CanaryRun::default()
        })
}

/// What the progress message last showed, and the buttons offered for it.
#[derive(Default)]
struct Shown {
    /// The line last shown (`None`: show it again).
    line: Option<String>,
    /// The step and pause the buttons were offered for, and the buttons.
    buttons: Option<((usize, bool), Vec<crate::reply::Button>)>,
}

/// The progress line of a step being held (its weight, the latest readings, the time
/// to the next step, or who paused it), with Pause/Continue, Promote and Abort.
async fn show_step(
    live: &Live<'_, '_>,
    i: usize,
    line_prefix: &str,
    to: &str,
    left_ms: u64,
    shown: &mut Shown,
) {
    let env = &live.env.name;
    let Some(c) = live.with(|s| s.pools[i].canary.clone()) else {
        return;
    };
    let percent = c.steps.get(c.at).copied().unwrap_or(100);
    let mut line = format!(
        "{line_prefix} — canary step {}/{}: *{percent} %* on {to}",
        (c.at + 1).min(c.steps.len()),
        c.steps.len()
    );
    for r in &c.readings {
        let mark = if r.failing { " :warning:" } else { "" };
        line.push_str(&format!(" · {}{mark}", crate::text::escape(&r.describe())));
    }
    match &c.paused {
        Some(p) => line.push_str(&format!(
            " · :double_vertical_bar: paused by <@{}>, `continue {env}` goes on",
            p.by
        )),
        None => line.push_str(&format!(
            " · next step in {}",
            human(Duration::from_secs(left_ms.div_ceil(1000)))
        )),
    }
    if shown.line.as_deref() == Some(line.as_str()) {
        return;
    }
    let key = (c.at, c.paused.is_some());
    if shown.buttons.as_ref().map(|(k, _)| *k) != Some(key) {
        let buttons = offer_buttons(live, c.paused.is_some()).await;
        shown.buttons = Some((key, buttons));
    }
    live.with(|s| s.pools[i].line = line.clone());
    let buttons = shown
        .buttons
        .as_ref()
        .map(|(_, b)| b.clone())
        .unwrap_or_default();
    let reply = live.board().reply(Outcome::Progress).buttons(buttons);
    live.ctx.progress.update(&reply).await;
    shown.line = Some(line);
}

/// Pause (or Continue), Promote and Abort for the environment's canary, as far as
/// `commands.yaml` has the commands.
async fn offer_buttons(live: &Live<'_, '_>, paused: bool) -> Vec<crate::reply::Button> {
    let ctx = live.ctx;
    let env = &live.env.name;
    let first = if paused { "continue" } else { "pause" };
    let mut offers = Vec::new();
    for (action, label, style) in [
        (
            first,
            if paused { "Continue" } else { "Pause" },
            ButtonStyle::Default,
        ),
        ("promote", "Promote", ButtonStyle::Primary),
        ("abort", "Abort", ButtonStyle::Danger),
    ] {
        let Some(cmd) = ctx
            .config()
            .commands
            .iter()
            .find(|c| c.action.name() == action)
        else {
            continue;
        };
        let inv = Invocation {
            command: cmd.name.clone(),
            target: Target::Env {
                env: env.clone(),
                pools: Vec::new(),
            },
            args: Vec::new(),
            params: Vec::new(),
            confirmed: action != "promote",
            approval: None,
            pin: None,
        };
        let mut offer = Offer::new(label, ButtonAction::Run(inv), style);
        if action == "abort" {
            offer.confirm = Some(Confirm {
                title: "Abort the canary?".into(),
                text: format!(
                    "Put all traffic of *{env}* back on the old member and stop this deploy?"
                ),
                ok: "Abort".into(),
                deny: "Cancel".into(),
            });
        }
        offers.push(offer);
    }
    match ctx.offer(offers).await {
        Ok(buttons) => buttons,
        Err(e) => {
            tracing::warn!(error = %e, "could not offer the canary's buttons");
            Vec::new()
        }
    }
}

/// This interval's readings: the analysis' queries, or a health probe of the new
/// member when the canary has none.
async fn judge(
    live: &Live<'_, '_>,
    pool: &Pool,
    canary: &Canary,
    interval: Duration,
    to: &str,
) -> Vec<Reading> {
    let ctx = live.ctx;
    match &canary.analysis {
        Some(a) => {
            let region = pool.region.clone().unwrap_or_default();
            let vars = [
                ("env", live.env.name.as_str()),
                ("region", region.as_str()),
                ("pool", pool.name.as_str()),
                ("member", to),
            ];
            analysis::read(ctx, a, interval, &vars).await
        }
        None => {
            let Some(instance) = pool.members.iter().find(|m| m.name == to) else {
                return Vec::new();
            };
            let verdict = probe(ctx, instance).await;
            vec![Reading {
                name: format!("{to} health"),
                value: None,
                max: 0.0,
                missing: Some(if verdict.healthy {
                    "healthy".to_owned()
                } else {
                    verdict.problem().unwrap_or_else(|| "unhealthy".to_owned())
                }),
                failing: !verdict.healthy,
                health: true,
            }]
        }
    }
}

/// Puts all of the pool's traffic back on the old member and fails the pool, naming
/// `why` (the failing query, its reading and its limit).
async fn abort(
    live: &Live<'_, '_>,
    i: usize,
    pool: &Pool,
    label: &str,
    why: &str,
) -> Result<(), Stop> {
    let p = live.with(|s| {
        let p = &mut s.pools[i];
        if let Some(c) = p.canary.as_mut() {
            c.aborted = Some(why.to_owned());
        }
        p.clone()
    });
    let from = p.from.clone().unwrap_or_default();
    let to = p.to.clone().unwrap_or_default();
    let which = p.canary.as_ref().map(CanaryRun::which).unwrap_or_default();
    let line_prefix = prefix(label, p.from.as_deref(), p.to.as_deref());
    let build = p
        .built
        .as_ref()
        .map(|(n, url)| format!(" Build <{url}|#{n}>."))
        .unwrap_or_default();
    live.with(|s| {
        s.pools[i].line =
            format!("{line_prefix} — :x: canary aborted, putting traffic back on {from}")
    });
    live.show().await;
    let _permit = live.checkpoint("put traffic back").await?;
    match switch_and_verify(live.ctx, live.env, pool, &from).await {
        Ok(_) => {
            live.fail(
                i,
                format!("{line_prefix} — :x: canary aborted at {which}, traffic back on {from}"),
                format!(
                    ":x: *{label}*: the canary was aborted at {which} on {to}: {why}. All traffic is back on {from}.{build}"
                ),
            )
            .await
        }
        Err(e) => {
            live.fail(
                i,
                format!("{line_prefix} — :x: canary aborted at {which}; putting traffic back failed"),
                format!(
                    ":x: *{label}*: the canary was aborted at {which} on {to}: {why}. Putting all traffic back on {from} failed: {}; check `status {}`.{build}",
                    told(&e),
                    live.env.name
                ),
            )
            .await
        }
    }
}
