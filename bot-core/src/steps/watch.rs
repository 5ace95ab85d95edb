//! The post-switch watch: after a deploy, `switch` or `rollback` moves a pool's
//! traffic, the new active member is probed for the pool's `watch:`. When it turns
//! unhealthy, traffic goes back to the previous member (`auto_rollback: true`) and the
//! reply says why; otherwise the reply offers a one-click rollback. The watch is part
//! of the run's saved state, so a replica taking the run over goes on watching until
//! the same end.

use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::config::Environment;
use crate::context::{Ctx, Offer};
use crate::failure::told;
use crate::reply::{Button, ButtonAction, ButtonStyle, Confirm, Invocation, Reply, Target};
use crate::runs::Stop;
use crate::steps::health::probe;
use crate::steps::moves::switch_and_verify;
use crate::text::{escape, human};

/// A pool whose traffic just moved, as watched (and saved with its run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Watched {
    /// Its region, in an environment with regions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Pool.
    pub pool: String,
    /// Active before the move.
    pub from: String,
    /// Active after the move: the member watched.
    pub to: String,
    /// When traffic moved (Unix ms).
    pub since_ms: u64,
    /// When the watch ends (Unix ms).
    pub until_ms: u64,
    /// Probes so far.
    #[serde(default)]
    pub probes: u32,
    /// Failed probes in a row so far (kept across a takeover).
    #[serde(default)]
    pub failing: u32,
    /// What the last failed probe saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// How it ended, once it has.
    #[serde(default)]
    pub end: Option<WatchEnd>,
}

/// How the watch of one pool ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum WatchEnd {
    /// Healthy throughout.
    Healthy,
    /// Turned unhealthy; traffic went back to the previous member.
    RolledBack {
        /// What the probes saw.
        why: String,
        /// How long after the move it turned unhealthy (ms).
        after_ms: u64,
    },
    /// Turned unhealthy; traffic stayed (no `auto_rollback`, or moving back failed).
    Unhealthy {
        /// What the probes saw.
        why: String,
        /// How long after the move (ms).
        after_ms: u64,
        /// Why moving back did not happen, when it was tried.
        rollback_failed: Option<String>,
    },
}

pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    u64::try_from(
        t.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or_default()
}

/// One pool's move, to watch: in `region` (when the environment has regions), from
/// one member to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Moved {
    /// Region, in an environment with regions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Pool.
    pub pool: String,
    /// Active before.
    pub from: String,
    /// Active after.
    pub to: String,
}

/// The watches to run after `moves` in `env`: one per pool that has `watch:`
/// configured, starting now.
pub(crate) fn plan(ctx: &Ctx<'_>, env: &str, moves: &[Moved]) -> Vec<Watched> {
    let now = unix_ms(ctx.now());
    moves
        .iter()
        .filter_map(|m| {
            let watch = ctx.config().watch(env, &m.pool)?;
            Some(Watched {
                region: m.region.clone(),
                pool: m.pool.clone(),
                from: m.from.clone(),
                to: m.to.clone(),
                since_ms: now,
                until_ms: now + u64::try_from(watch.duration.as_millis()).unwrap_or(u64::MAX),
                probes: 0,
                failing: 0,
                problem: None,
                end: None,
            })
        })
        .collect()
}

/// The pause between two probes of a watch: its `watch_every`, shortened so that
/// `watch_failures` failed probes in a row fit inside the window (`watch: 5s` with
/// the default 5 s × 2 notices within the 5 s, not after 10).
pub(crate) fn pause(spec: &crate::config::Watch) -> Duration {
    let fit = spec.duration / (spec.failures.max(1) + 1);
    spec.every.min(fit).max(Duration::from_millis(50))
}

/// Saves the watch state of a run; before an automatic rollback too, which happens
/// only when it returns `Ok` (the run's lease is known valid).
pub(crate) type Checkpoint<'a> = &'a (dyn Fn(&[Watched]) -> BoxFuture<'a, Result<(), Stop>> + Sync);

/// Renders the progress message from the watch lines so far.
pub(crate) type Render<'a> = &'a (dyn Fn(&[String]) -> Reply + Sync);

/// Watches every pool of `watched` not yet ended until each ends, moving traffic back
/// where the pool's `auto_rollback` says so. Saves after every round of probes (so a
/// replica taking over goes on counting where it stood); `Err` when the run must stop
/// (taken over, or its lease is not known to be valid before a rollback).
pub(crate) async fn run(
    ctx: &Ctx<'_>,
    env: &Environment,
    watched: &mut [Watched],
    checkpoint: Checkpoint<'_>,
    render: Render<'_>,
) -> Result<(), Stop> {
    loop {
        let open: Vec<usize> = (0..watched.len())
            .filter(|i| watched[*i].end.is_none())
            .collect();
        if open.is_empty() {
            return Ok(());
        }
        for i in open {
            let w = &mut watched[i];
            let pool = env
                .pools_in(w.region.as_deref())
                .and_then(|pools| pools.iter().find(|p| p.name == w.pool));
            let (Some(pool), Some(spec)) = (pool, ctx.config().watch(&env.name, &w.pool).cloned())
            else {
                // No longer configured: nothing left to watch.
                w.end = Some(WatchEnd::Healthy);
                continue;
            };
            let Some(member) = pool.members.iter().find(|m| m.name == w.to) else {
                w.end = Some(WatchEnd::Healthy);
                continue;
            };
            let verdict = probe(ctx, member).await;
            w.probes += 1;
            let now = unix_ms(ctx.now());
            if verdict.healthy {
                w.failing = 0;
                if now >= w.until_ms {
                    w.end = Some(WatchEnd::Healthy);
                }
                continue;
            }
            w.failing += 1;
            w.problem = verdict.problem();
            if w.failing < spec.failures {
                continue;
            }
            let why = w.problem.clone().unwrap_or_default();
            let after_ms = now.saturating_sub(w.since_ms);
            if !spec.auto_rollback {
                w.end = Some(WatchEnd::Unhealthy {
                    why,
                    after_ms,
                    rollback_failed: None,
                });
                continue;
            }
            // Moving traffic back is an external step: only under a valid lease.
            let (from, pool) = (w.from.clone(), pool.clone());
            checkpoint(watched).await?;
            let ended = match roll_back(ctx, env, &pool, &from).await {
                Ok(()) => WatchEnd::RolledBack { why, after_ms },
                Err(failed) => WatchEnd::Unhealthy {
                    why,
                    after_ms,
                    rollback_failed: Some(failed),
                },
            };
            watched[i].end = Some(ended);
        }
        checkpoint(watched).await?;
        ctx.progress.update(&render(&lines(watched))).await;
        if watched.iter().all(|w| w.end.is_some()) {
            return Ok(());
        }
        let pause = watched
            .iter()
            .filter(|w| w.end.is_none())
            .filter_map(|w| ctx.config().watch(&env.name, &w.pool).map(pause))
            .min()
            .unwrap_or(Duration::from_secs(1));
        tokio::time::sleep(pause).await;
    }
}

/// Moves `pool` back to `previous` once that member answers healthy.
async fn roll_back(
    ctx: &Ctx<'_>,
    env: &Environment,
    pool: &crate::config::Pool,
    previous: &str,
) -> Result<(), String> {
    let Some(member) = pool.members.iter().find(|m| m.name == previous) else {
        return Err(format!("{previous} is no longer configured"));
    };
    let verdict = probe(ctx, member).await;
    if !verdict.healthy {
        return Err(format!(
            "{previous} is not healthy either ({})",
            verdict.problem().unwrap_or_default()
        ));
    }
    switch_and_verify(ctx, env, pool, previous)
        .await
        .map(drop)
        .map_err(|e| format!("moving traffic back to {previous} failed: {}", told(&e)))
}

/// `api`, or `eu api` in a region.
fn name(w: &Watched) -> String {
    match &w.region {
        Some(r) => format!("{r} {}", w.pool),
        None => w.pool.clone(),
    }
}

/// One line per watched pool, as it stands.
pub(crate) fn lines(watched: &[Watched]) -> Vec<String> {
    watched
        .iter()
        .map(|w| {
            let took = |ms: u64| human(Duration::from_millis(ms));
            match &w.end {
                None => format!(
                    "• {}: :eyes: watching {} for {} after the switch ({} probes so far)",
                    name(w),
                    w.to,
                    took(w.until_ms.saturating_sub(w.since_ms)),
                    w.probes
                ),
                Some(WatchEnd::Healthy) => format!(
                    "• {}: {} stayed healthy for {} after the switch ({} probes)",
                    name(w),
                    w.to,
                    took(w.until_ms.saturating_sub(w.since_ms)),
                    w.probes
                ),
                Some(WatchEnd::RolledBack { why, after_ms }) => format!(
                    "• {}: :rewind: {} turned unhealthy {} after the switch ({}), so I moved traffic back to *{}* automatically",
                    name(w),
                    w.to,
                    took(*after_ms),
                    escape(why),
                    w.from
                ),
                Some(WatchEnd::Unhealthy {
                    why,
                    after_ms,
                    rollback_failed: Some(failed),
                }) => format!(
                    "• {}: :rotating_light: {} turned unhealthy {} after the switch ({}); I could not move traffic back: {}. Traffic is still on {}",
                    name(w),
                    w.to,
                    took(*after_ms),
                    escape(why),
                    escape(failed),
                    w.to
                ),
                Some(WatchEnd::Unhealthy {
                    why,
                    after_ms,
                    rollback_failed: None,
                }) => format!(
                    "• {}: :warning: {} turned unhealthy {} after the switch ({}). Traffic is still on it (no `auto_rollback`)",
                    name(w),
                    w.to,
                    took(*after_ms),
                    escape(why)
                ),
            }
        })
        .collect()
}

/// Whether any watched pool went back to its previous member.
pub(crate) fn rolled_back(watched: &[Watched]) -> bool {
    watched
        .iter()
        .any(|w| matches!(w.end, Some(WatchEnd::RolledBack { .. })))
}

/// Whether any watched pool turned unhealthy (rolled back or not).
pub(crate) fn troubled(watched: &[Watched]) -> bool {
    watched
        .iter()
        .any(|w| !matches!(w.end, Some(WatchEnd::Healthy) | None))
}

/// The first reason a watched pool turned unhealthy, for the audit record.
pub(crate) fn trouble(watched: &[Watched]) -> Option<String> {
    watched.iter().find_map(|w| match &w.end {
        Some(WatchEnd::RolledBack { why, .. }) => Some(format!(
            "{} {} unhealthy after the switch ({why}); rolled back to {} automatically",
            name(w),
            w.to,
            w.from
        )),
        Some(WatchEnd::Unhealthy { why, .. }) => Some(format!(
            "{} {} unhealthy after the switch ({why}); traffic still on it",
            name(w),
            w.to
        )),
        _ => None,
    })
}

/// How long the watch took (the longest of its pools), for the timings line.
pub(crate) fn took(watched: &[Watched], now: SystemTime) -> Duration {
    let now = unix_ms(now);
    Duration::from_millis(
        watched
            .iter()
            .map(|w| now.saturating_sub(w.since_ms))
            .max()
            .unwrap_or_default(),
    )
}

/// A one-click rollback of `pools` in `env` (single use, like every button), when a
/// command runs the `rollback` action; `None` when none does, no pool is given, or
/// the buttons cannot be recorded.
pub(crate) async fn rollback_button(
    ctx: &Ctx<'_>,
    env: &str,
    pools: Vec<String>,
) -> Option<Button> {
    if pools.is_empty() {
        return None;
    }
    let cmd = ctx
        .config()
        .commands
        .iter()
        .find(|c| c.action.name() == "rollback")?;
    // During a freeze the rollback carries an override for that window: it holds for
    // whoever clicks it from the window's override groups, and no one else.
    let params = match crate::policy::freeze_on(ctx.config(), env, ctx.now()) {
        Some(freeze) => vec![
            (
                "override".to_owned(),
                "rollback after the new member turned unhealthy".to_owned(),
            ),
            (
                crate::reply::OVERRIDE_WINDOW.to_owned(),
                freeze.window.text.clone(),
            ),
        ],
        None => Vec::new(),
    };
    let inv = Invocation {
        command: cmd.name.clone(),
        target: Target::Env {
            env: env.to_owned(),
            pools: pools.clone(),
        },
        args: Vec::new(),
        params,
        confirmed: true,
        approval: None,
        pin: None,
    };
    let label = format!("Roll back {env} {}", pools.join(" "));
    let mut offer = Offer::new(label, ButtonAction::Run(inv), ButtonStyle::Danger);
    offer.confirm = Some(Confirm {
        title: "Roll back?".into(),
        text: format!(
            "Move traffic of *{env}* ({}) back to the previous member?",
            pools.join(", ")
        ),
        ok: "Roll back".into(),
        deny: "Cancel".into(),
    });
    match ctx.offer(vec![offer]).await {
        Ok(mut buttons) => buttons.pop(),
        Err(e) => {
            tracing::warn!(error = %e, "could not offer the rollback button");
            None
        }
    }
}

/// The pools of `watched` whose traffic is still on the member they moved to.
pub(crate) fn still_moved(watched: &[Watched]) -> Vec<String> {
    watched
        .iter()
        .filter(|w| !matches!(w.end, Some(WatchEnd::RolledBack { .. })))
        .map(|w| w.pool.clone())
        .collect()
}
