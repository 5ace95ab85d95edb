//! The steps of one pool's deploy, each a function: read the switch, build the
//! inactive member (or re-attach to its build), health-gate it, switch and read the
//! switch back. Each saves the deploy before the next begins, and the external ones
//! (the trigger, the switch) happen only under a lease known to be valid. The pools of
//! the regions of one rollout stage go through their steps side by side, on one
//! shared state.

use std::time::{Duration, Instant};

use futures::future::BoxFuture;

pub(crate) use super::live::{ms, Live};
use super::report::prefix;
use super::state::Step;
use crate::config::Pool;
use crate::context::Ctx;
use crate::failure::told;
use crate::ports::BuildRef;
use crate::reply::{Outcome, Reply};
use crate::runs::Stop;
use crate::steps::build::{follow_job, Start};
use crate::steps::changes::{self, Changes};
use crate::steps::health::probe;
use crate::steps::moves::{next_member, switch_and_verify};
use crate::steps::watch::{self, Watched};
use crate::text::human;

/// Lists the commits the deploy ships, as its first step (once).
pub(crate) async fn list_changes(live: &Live<'_, '_>, pools: &[String]) -> Result<(), Stop> {
    if live.with(|s| s.changes.is_some()) {
        return Ok(());
    }
    let (git_ref, pin) = live.with(|s| (s.git_ref.clone(), s.pin.clone()));
    // A pinned ref that moved since it was shown: what is not deployed is said.
    let (listed, newer) = match &pin {
        Some(p) => changes::up_to(live.ctx, live.env, pools, &git_ref, p).await,
        None => (
            changes::before_build(live.ctx, live.env, pools, &git_ref).await,
            None,
        ),
    };
    live.with(|s| {
        s.changes = Some(listed);
        s.newer = newer;
    });
    live.save().await
}

/// Takes pool `i` through its remaining steps, saving after each; stops at `Done`
/// or `Failed`. `Err` when the run must stop (taken over, or lease unknown).
pub(crate) async fn advance(live: &Live<'_, '_>, i: usize) -> Result<(), Stop> {
    let (region, name, label) = live.with(|s| {
        let p = &s.pools[i];
        (p.region.clone(), p.pool.clone(), p.label())
    });
    let Some(pool) = live
        .env
        .pools_in(region.as_deref())
        .and_then(|pools| pools.iter().find(|p| p.name == name))
    else {
        return live
            .fail(
                i,
                format!("• {label}: :x: no longer configured"),
                format!(
                    ":x: *{label}*: this pool is no longer configured. Nothing more was changed."
                ),
            )
            .await;
    };
    loop {
        match live.with(|s| s.pools[i].step) {
            Step::Done | Step::Failed => return Ok(()),
            Step::Waiting => read_switch(live, i, pool, &label).await?,
            Step::Triggering | Step::Building => build(live, i, pool, &label).await?,
            Step::Gating => gate_step(live, i, pool, &label).await?,
            Step::Canary => super::canary::step(live, i, pool, &label).await?,
            Step::Switching => switch(live, i, pool, &label).await?,
        }
    }
}

/// Step 1: which member is live, and which one to build.
async fn read_switch(live: &Live<'_, '_>, i: usize, pool: &Pool, label: &str) -> Result<(), Stop> {
    let env = live.env;
    let active = match live
        .ctx
        .active_at(&env.name, pool.region.as_deref(), &pool.name)
        .await
    {
        Ok(a) => a,
        Err(e) => {
            return live
                .fail(
                    i,
                    format!("• {label}: :x: cannot read the switch"),
                    format!(
                    ":x: *{label}*: step 1/4 (read the switch) failed: {}. Nothing was changed.",
                    told(&e)
                ),
                )
                .await
        }
    };
    let Some(target) = next_member(pool, &active) else {
        return live
            .fail(
                i,
                format!("• {label}: :x: no inactive member"),
                format!(":x: *{label}*: has no inactive member to build. Nothing was changed."),
            )
            .await;
    };
    live.with(|s| {
        let p = &mut s.pools[i];
        p.from = Some(active);
        p.to = Some(target);
        p.step = Step::Triggering;
    });
    // Saved before the trigger: a replica taking over after a crash here knows a
    // build may have started and never starts a second one.
    live.checkpoint("trigger a build").await.map(drop)
}

/// Step 2: build the inactive member, or re-attach to the build started before.
async fn build(live: &Live<'_, '_>, i: usize, pool: &Pool, label: &str) -> Result<(), Stop> {
    let ctx = live.ctx;
    let p = live.with(|s| s.pools[i].clone());
    let active = p.from.clone().unwrap_or_default();
    let target = p.to.clone().unwrap_or_default();
    let line_prefix = prefix(label, p.from.as_deref(), p.to.as_deref());
    let Some(job) = pool.deploy.as_ref() else {
        return live
            .fail(
                i,
                format!("{line_prefix} — :x: no deploy job"),
                format!(":x: *{label}*: no `deploy` job is configured for this pool. Nothing was changed."),
            )
            .await;
    };
    let (git_ref, built_ref) = live.with(|s| {
        let built = s.pin.as_ref().map_or(s.git_ref.clone(), |p| p.sha.clone());
        (s.git_ref.clone(), built)
    });
    let instance = format!("{}-{target}", pool.name);
    let region = p.region.clone().unwrap_or_default();
    let vars = [
        ("env", live.env.name.as_str()),
        ("region", region.as_str()),
        ("pool", pool.name.as_str()),
        ("colour", target.as_str()),
        ("color", target.as_str()),
        ("instance", instance.as_str()),
        ("ref", built_ref.as_str()),
        ("ref_name", git_ref.as_str()),
        ("user", ctx.user),
    ];
    let start = match (p.step, p.build.clone()) {
        (Step::Building, Some(at)) => Start::Reattach(at),
        _ => {
            // Its GitHub deployment begins before the trigger (written once).
            super::shown::started(live, i).await;
            let _permit = live.driver.permit("trigger a build")?;
            Start::Trigger(&vars)
        }
    };
    let record = |at: BuildRef| -> BoxFuture<'_, Result<(), Stop>> {
        live.with(|s| {
            s.pools[i].step = Step::Building;
            s.pools[i].build = Some(at);
        });
        Box::pin(live.save())
    };
    let render = |line: &str| {
        live.with(|s| s.pools[i].line = format!("{line_prefix} — {line}"));
        live.board().reply(Outcome::Progress)
    };
    let (result, took) = follow_job(ctx, job, start, render, &record).await?;
    live.with(|s| s.pools[i].took_ms[0] = ms(took));
    match result {
        Ok(b) if b.result.is_success() => {
            live.with(|s| {
                s.pools[i].built = Some((b.number, b.url.clone()));
                s.pools[i].step = Step::Gating;
            });
            // No list before the build: the build's change set says.
            let before = live.with(|s| match &s.changes {
                Some(Changes::AfterBuild { why }) => Some(why.clone()),
                _ => None,
            });
            if let Some(before) = before {
                let listed = changes::from_build(ctx, &job.job, b.number, &b.url, &before).await;
                live.with(|s| s.changes = Some(listed));
            }
            live.save().await
        }
        Ok(b) => {
            live.with(|s| s.pools[i].built = Some((b.number, b.url.clone())));
            let why = format!(
                ":x: *{label}*: step 2/4 (build) failed: build <{}|#{}> of `{}` ended {}. Traffic stays on {active}. <{}|Console>",
                b.url, b.number, job.job, b.result.as_str(), b.console_url
            );
            live.fail(
                i,
                format!(
                    "{line_prefix} — :x: build #{} {}",
                    b.number,
                    b.result.as_str()
                ),
                why,
            )
            .await
        }
        Err(e) => {
            let why = format!(
                ":x: *{label}*: step 2/4 (build) failed: {}. Traffic stays on {active}.",
                told(&e)
            );
            live.fail(i, format!("{line_prefix} — :x: build did not run"), why)
                .await
        }
    }
}

/// Step 3: the health gate.
async fn gate_step(live: &Live<'_, '_>, i: usize, pool: &Pool, label: &str) -> Result<(), Stop> {
    let p = live.with(|s| s.pools[i].clone());
    let line_prefix = prefix(label, p.from.as_deref(), p.to.as_deref());
    let target = p.to.clone().unwrap_or_default();
    let active = p.from.clone().unwrap_or_default();
    let (number, url) = p.built.clone().unwrap_or_default();
    let consecutive = live.ctx.config().settings.gate_consecutive;
    let render = |streak: u32, what: &str| {
        live.with(|s| {
            s.pools[i].line = format!(
                "{line_prefix} — build <{url}|#{number}> ok, health gate {streak}/{consecutive} ({what})"
            )
        });
        live.board().reply(Outcome::Progress)
    };
    live.ctx.progress.update(&render(0, "starting")).await;
    let canary = live
        .ctx
        .config()
        .canary(&live.env.name, &pool.name)
        .cloned();
    match gate(live.ctx, pool, &target, consecutive, &render).await {
        Ok(t) => {
            // A canary begins knowing the orders its run had so far: any order given
            // once its step shows is newer.
            let seen = match &canary {
                Some(_) => live
                    .ctx
                    .backends
                    .store
                    .run_orders(live.driver.id(), 0)
                    .await
                    .ok()
                    .map(|all| all.last().map_or(0, |o| o.seq)),
                None => None,
            };
            live.with(|s| {
                s.pools[i].took_ms[1] = ms(t);
                s.pools[i].step = match &canary {
                    Some(c) => {
                        s.pools[i].canary = Some(super::state::CanaryRun::new(c, seen));
                        Step::Canary
                    }
                    None => Step::Switching,
                };
            });
            live.save().await
        }
        Err(why) => {
            let why = format!(
                ":x: *{label}*: step 3/4 (health gate) failed: {why}. Traffic stays on {active}. Build <{url}|#{number}>."
            );
            live.fail(i, format!("{line_prefix} — :x: health gate failed"), why)
                .await
        }
    }
}

/// Step 4: switch and read back (the same switch again after a takeover is safe).
async fn switch(live: &Live<'_, '_>, i: usize, pool: &Pool, label: &str) -> Result<(), Stop> {
    let p = live.with(|s| s.pools[i].clone());
    let line_prefix = prefix(label, p.from.as_deref(), p.to.as_deref());
    let target = p.to.clone().unwrap_or_default();
    let active = p.from.clone().unwrap_or_default();
    live.with(|s| s.pools[i].line = format!("{line_prefix} — healthy, switching traffic"));
    live.show().await;
    let _permit = live.checkpoint("switch traffic").await?;
    match switch_and_verify(live.ctx, live.env, pool, &target).await {
        Ok(t) => {
            let (number, url) = p.built.clone().unwrap_or_default();
            live.with(|s| {
                let p = &mut s.pools[i];
                p.took_ms[2] = ms(t);
                p.step = Step::Done;
                p.switched_ms = Some(watch::unix_ms(live.ctx.now()));
                let canary = p
                    .canary
                    .as_ref()
                    .map(|c| format!(", {}", c.summary()))
                    .unwrap_or_default();
                p.line = format!(
                    "• {label}: {active} → *{target}* :white_check_mark: build <{url}|#{number}>, healthy{canary}, traffic switched"
                );
            });
            // Recorded before the save: a takeover that switches again writes it once.
            super::shown::switched(live, i).await;
            live.save().await
        }
        Err(e) => {
            let why = format!(
                ":x: *{label}*: step 4/4 (switch) failed: {}. I could not confirm traffic moved; check `status {}`.",
                told(&e),
                live.env.name
            );
            live.fail(i, format!("{line_prefix} — :x: switch failed"), why)
                .await
        }
    }
}

/// Probes `member` until `consecutive` healthy answers in a row, or the gate's timeout.
async fn gate(
    ctx: &Ctx<'_>,
    pool: &Pool,
    member: &str,
    consecutive: u32,
    render: &(dyn Fn(u32, &str) -> Reply + Sync),
) -> Result<Duration, String> {
    let settings = &ctx.config().settings;
    let Some(instance) = pool.members.iter().find(|m| m.name == member) else {
        return Err(format!("{member} is not a member of {}", pool.name));
    };
    let started = Instant::now();
    let mut streak = 0;
    let mut last = String::from("never probed");
    loop {
        let verdict = probe(ctx, instance).await;
        if verdict.healthy {
            streak += 1;
            ctx.progress.update(&render(streak, "healthy")).await;
            if streak >= consecutive {
                return Ok(started.elapsed());
            }
        } else {
            streak = 0;
            last = crate::text::escape(&verdict.problem().unwrap_or_default());
            ctx.progress.update(&render(0, &last)).await;
        }
        if started.elapsed() + settings.gate_interval > settings.gate_timeout {
            return Err(format!(
                "{member} did not pass {consecutive} health checks in a row within {} (last: {last})",
                human(settings.gate_timeout)
            ));
        }
        tokio::time::sleep(settings.gate_interval).await;
    }
}

/// Watches the pools of `site` that switched (those with `watch:`), once all of
/// them have: plans the watch once, saves it with the run, and runs it to its end.
pub(crate) async fn watch_site(
    live: &Live<'_, '_>,
    site: Option<&str>,
) -> Result<Vec<Watched>, Stop> {
    let idx: Vec<usize> = live.with(|s| {
        s.site(site)
            .into_iter()
            .filter(|&i| s.pools[i].step == Step::Done && !s.pools[i].rolled_back)
            .collect()
    });
    let unplanned: Vec<usize> = live.with(|s| {
        idx.iter()
            .copied()
            .filter(|&i| !s.pools[i].watch_planned)
            .collect()
    });
    if !unplanned.is_empty() {
        let moves: Vec<_> = live.with(|s| {
            unplanned
                .iter()
                .filter_map(|&i| s.pools[i].moved())
                .collect()
        });
        let planned = watch::plan(live.ctx, &live.env.name, &moves);
        live.with(|s| {
            for &i in &unplanned {
                let p = &mut s.pools[i];
                p.watch_planned = true;
                p.watched = planned
                    .iter()
                    .find(|w| w.pool == p.pool && w.region == p.region)
                    .cloned();
            }
        });
        live.save().await?;
    }
    let mut watched: Vec<Watched> = live.with(|s| {
        idx.iter()
            .filter_map(|&i| s.pools[i].watched.clone())
            .collect()
    });
    if watched.iter().all(|w| w.end.is_some()) {
        return Ok(watched);
    }
    let put_back = |w: &[Watched]| {
        live.with(|s| {
            for one in w {
                if let Some(p) = s
                    .pools
                    .iter_mut()
                    .find(|p| p.pool == one.pool && p.region == one.region)
                {
                    p.watched = Some(one.clone());
                }
            }
        })
    };
    let checkpoint = |w: &[Watched]| -> BoxFuture<'_, Result<(), Stop>> {
        put_back(w);
        Box::pin(async move { live.checkpoint("watch").await.map(drop) })
    };
    let render = |_: &[String]| live.board().reply(Outcome::Progress);
    watch::run(live.ctx, live.env, &mut watched, &checkpoint, &render).await?;
    put_back(&watched);
    Ok(watched)
}
