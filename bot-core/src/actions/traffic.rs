//! `rollback` and `switch`: move a pool's traffic after health-checking the
//! destination, under the environment lock, and read the switch back.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::actions::deploy::rollout;
use crate::actions::health::probe;
use crate::actions::locks::{reclaim, take_for_run};
use crate::actions::moves::{next_member, switch_and_verify};
use crate::actions::watch::{self, Watched};
use crate::config::{CommandSpec, Environment};
use crate::context::{Action, Ctx};
use crate::failure::told;
use crate::ports::store::{Lock, Run, RunStatus};
use crate::rejection::Rejection;
use crate::reply::{Invocation, Outcome, Reply, Target};
use crate::runs::Driver;
use crate::text::human;
use futures::future::BoxFuture;

/// Which member `rollback` / `switch` moves to.
enum Destination {
    /// The member active before the last switch (rollback).
    Previous,
    /// A named member, or the other one when `None` (switch).
    Member(Option<String>),
}

/// `rollback <env> [pools]`.
pub(crate) struct Rollback;

#[async_trait]
impl Action for Rollback {
    async fn run(&self, ctx: &Ctx<'_>, cmd: &CommandSpec, inv: Invocation) -> Reply {
        let regional = inv
            .target
            .environment()
            .and_then(|e| ctx.config().env(e))
            .filter(|e| !e.regions.is_empty());
        if let Some(env) = regional {
            return rollout::rollback(ctx, &inv, env, inv.target.region()).await;
        }
        match &inv.target {
            Target::Env { env, pools } => move_traffic(ctx, &inv, env, pools, None, true).await,
            other => Rejection::unsupported(&cmd.name, other).reply(),
        }
    }

    async fn resume(&self, ctx: &Ctx<'_>, _: &CommandSpec, inv: Invocation, run: Run) -> Reply {
        if rollout::is_regional(&run.state) {
            return rollout::resume_rollback(ctx, &inv, &run).await;
        }
        resume(ctx, &inv, &run).await
    }
}

/// `switch <env> [pool] [member]`.
pub(crate) struct Switch;

#[async_trait]
impl Action for Switch {
    async fn run(&self, ctx: &Ctx<'_>, cmd: &CommandSpec, inv: Invocation) -> Reply {
        if let Some(env) = inv
            .target
            .env()
            .and_then(|e| ctx.config().env(e))
            .filter(|e| !e.regions.is_empty())
        {
            let regions: Vec<&str> = env.regions.iter().map(|r| r.name.as_str()).collect();
            return Reply::message(
                Outcome::Rejected,
                format!(
                    "*{}* runs in regions {}; `switch` does not move one region's pool yet. Use `deploy {} <region>` or `rollback {} <region>`.",
                    env.name,
                    regions.join(", "),
                    env.name,
                    env.name
                ),
            );
        }
        match &inv.target {
            Target::Pool { env, pool, member } => {
                move_traffic(
                    ctx,
                    &inv,
                    env,
                    std::slice::from_ref(pool),
                    member.clone(),
                    false,
                )
                .await
            }
            Target::Env { env, pools } => move_traffic(ctx, &inv, env, pools, None, false).await,
            other => Rejection::unsupported(&cmd.name, other).reply(),
        }
    }

    async fn resume(&self, ctx: &Ctx<'_>, _: &CommandSpec, inv: Invocation, run: Run) -> Reply {
        resume(ctx, &inv, &run).await
    }
}

/// A rollback or switch, as saved after every pool.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TrafficRun {
    rollback: bool,
    /// The member named (`switch … green`), if any.
    member: Option<String>,
    env: String,
    /// Pools to move, in order.
    pools: Vec<String>,
    /// Pools already handled, and the report's lines so far.
    done: Vec<String>,
    lines: Vec<String>,
    /// How many pools actually moved (a switch to what is active moves none).
    #[serde(default)]
    moved: usize,
    lock: Lock,
    /// Each pool moved: (pool, from, to), for the post-switch watch.
    #[serde(default)]
    moves: Vec<(String, String, String)>,
    /// The post-switch watch, once every pool has moved.
    #[serde(default)]
    watch: Option<Vec<Watched>>,
}

/// `rollback <env> [pools]` and `switch <env> <pool> [member]`: takes the lock,
/// records the run, moves each pool.
async fn move_traffic(
    ctx: &Ctx<'_>,
    inv: &Invocation,
    env_name: &str,
    pools: &[String],
    member: Option<String>,
    rollback: bool,
) -> Reply {
    let Some(env) = ctx.config().env(env_name) else {
        return Rejection::NoSuchEnvironment(env_name.to_owned()).reply();
    };
    let verb = if rollback { "rollback" } else { "switch" };
    let id = Driver::new_id(ctx);
    let lock = match take_for_run(ctx, &env.name, verb, verb.to_owned(), &id).await {
        Ok(lock) => lock,
        Err(refusal) => return refusal,
    };
    let state = TrafficRun {
        rollback,
        member,
        env: env.name.clone(),
        pools: env
            .pools
            .iter()
            .filter(|p| pools.is_empty() || pools.contains(&p.name))
            .map(|p| p.name.clone())
            .collect(),
        done: Vec::new(),
        lines: Vec::new(),
        moved: 0,
        lock: lock.clone(),
        moves: Vec::new(),
        watch: None,
    };
    let driver = match Driver::start(
        ctx,
        id,
        verb,
        inv,
        serde_json::to_value(&state).unwrap_or_default(),
        Some(lock.clone()),
    )
    .await
    {
        Ok(d) => d,
        Err(e) => {
            let _ = ctx.backends.store.release(&lock).await;
            return Reply::message(
                Outcome::Failed,
                format!(
                    "I could not record the {verb}: {}. Nothing was changed.",
                    told(&e)
                ),
            );
        }
    };
    drive(ctx, driver, inv, env, state).await
}

/// Goes on with a rollback or switch taken over from a replica that died: moving a
/// pool again is safe (health check, switch, read back).
async fn resume(ctx: &Ctx<'_>, inv: &Invocation, run: &Run) -> Reply {
    let Ok(state) = serde_json::from_value::<TrafficRun>(run.state.clone()) else {
        Driver::resume(ctx, run, None)
            .finish(RunStatus::Failed, run.state.clone())
            .await;
        return Reply::message(Outcome::Failed, ":x: A traffic move could not be continued after a restart: its saved state is unreadable. Check `status`.");
    };
    let Some(env) = ctx.config().env(&state.env) else {
        return Rejection::NoSuchEnvironment(state.env.clone()).reply();
    };
    let lock = reclaim(ctx, &state.lock).await;
    let driver = Driver::resume(ctx, run, lock.clone());
    if lock.is_none() {
        driver.finish(RunStatus::Failed, run.state.clone()).await;
        return Reply::message(
            Outcome::Failed,
            format!(":x: Moving traffic in *{}* could not go on after a restart: the environment is locked by someone else now. Check `status {}`.", env.name, env.name),
        );
    }
    drive(ctx, driver, inv, env, state).await
}

/// Moves every pool not yet handled, saving after each.
async fn drive(
    ctx: &Ctx<'_>,
    driver: Driver,
    inv: &Invocation,
    env: &Environment,
    mut state: TrafficRun,
) -> Reply {
    let dest = if state.rollback {
        Destination::Previous
    } else {
        Destination::Member(state.member.clone())
    };
    let failed = |state: &TrafficRun, text: String| {
        Reply::message(Outcome::Failed, text).text(state.lines.join("\n"))
    };
    for name in state.pools.clone() {
        if state.done.contains(&name) {
            continue;
        }
        let Some(pool) = env.pools.iter().find(|p| p.name == name) else {
            continue;
        };
        let active = match ctx.active(&env.name, &pool.name).await {
            Ok(a) => a,
            Err(e) => {
                let shown = told(&e);
                ctx.audit(inv, &format!("failed: {shown}")).await;
                let reply = failed(
                    &state,
                    format!(
                        ":x: *{} {}*: cannot read the switch: {shown}. Nothing was changed.",
                        env.name, pool.name
                    ),
                );
                driver
                    .finish(
                        RunStatus::Failed,
                        serde_json::to_value(&state).unwrap_or_default(),
                    )
                    .await;
                return reply;
            }
        };
        let target = match &dest {
            Destination::Member(Some(m)) => Some(m.clone()),
            Destination::Member(None) | Destination::Previous => next_member(pool, &active),
        };
        let outcome = match target {
            None => None,
            Some(target) if target == active => {
                Some(format!("• {}: {target} is already active", pool.name))
            }
            Some(target) => {
                let Some(instance) = pool.members.iter().find(|m| m.name == target) else {
                    continue;
                };
                let verdict = probe(ctx, instance).await;
                if !verdict.healthy {
                    let why = verdict.problem().unwrap_or_default();
                    ctx.audit(inv, &format!("refused: {target} unhealthy"))
                        .await;
                    let reply = failed(&state, format!(":x: *{} {}*: {target} is not healthy ({why}), so traffic stays on {active}.", env.name, pool.name));
                    driver
                        .finish(
                            RunStatus::Failed,
                            serde_json::to_value(&state).unwrap_or_default(),
                        )
                        .await;
                    return reply;
                }
                match switch_and_verify(ctx, env, pool, &target).await {
                    Ok(t) => {
                        state.moved += 1;
                        state
                            .moves
                            .push((pool.name.clone(), active.clone(), target.clone()));
                        Some(format!(
                            "• {}: {active} → *{target}* :white_check_mark: ({})",
                            pool.name,
                            human(t)
                        ))
                    }
                    Err(e) => {
                        let shown = told(&e);
                        ctx.audit(inv, &format!("failed: {shown}")).await;
                        let reply = failed(&state, format!(":x: *{} {}*: switching to {target} failed: {shown}. Check `status {}`.", env.name, pool.name, env.name));
                        driver
                            .finish(
                                RunStatus::Failed,
                                serde_json::to_value(&state).unwrap_or_default(),
                            )
                            .await;
                        return reply;
                    }
                }
            }
        };
        state.lines.extend(outcome);
        state.done.push(name);
        if !driver
            .save(serde_json::to_value(&state).unwrap_or_default())
            .await
        {
            return Reply::message(
                Outcome::Progress,
                ":arrows_counterclockwise: continued by another replica",
            );
        }
    }
    if state.moved == 0 {
        ctx.audit(inv, "nothing to move").await;
        let text = if state.lines.is_empty() {
            "Nothing to move.".to_owned()
        } else {
            state.lines.join("\n")
        };
        driver
            .finish(
                RunStatus::Done,
                serde_json::to_value(&state).unwrap_or_default(),
            )
            .await;
        return Reply::message(
            Outcome::Info,
            format!("Traffic of *{}* stays where it is:", env.name),
        )
        .text(text);
    }
    // Watch what moved: the move is done only after the watch.
    let Ok(watched) = watch_moved(ctx, &driver, env, &mut state).await else {
        return Reply::message(
            Outcome::Progress,
            ":arrows_counterclockwise: continued by another replica",
        );
    };
    let troubled = watch::troubled(&watched);
    match watch::trouble(&watched) {
        Some(why) => ctx.audit(inv, &format!("failed: {why}")).await,
        None => ctx.audit(inv, "ok").await,
    }
    let title = if troubled {
        format!(
            ":rotating_light: Moved traffic of *{}*, but the new member turned unhealthy after the switch",
            env.name
        )
    } else if state.rollback {
        format!(":rewind: Rolled back *{}*", env.name)
    } else {
        format!(":twisted_rightwards_arrows: Switched *{}*", env.name)
    };
    let mut lines = state.lines.clone();
    lines.extend(watch::lines(&watched));
    let text = if lines.is_empty() {
        "Nothing to move.".to_owned()
    } else {
        lines.join("\n")
    };
    let button = watch::rollback_button(ctx, &env.name, watch::still_moved(&watched)).await;
    driver
        .finish(
            if troubled {
                RunStatus::Failed
            } else {
                RunStatus::Done
            },
            serde_json::to_value(&state).unwrap_or_default(),
        )
        .await;
    let outcome = if troubled {
        Outcome::Failed
    } else {
        Outcome::Done
    };
    Reply::message(outcome, title)
        .text(text)
        .buttons(button.into_iter().collect())
}

/// Watches every pool moved (those with `watch:` configured), saving the watch with
/// the run; `Err` when the run was taken over.
async fn watch_moved(
    ctx: &Ctx<'_>,
    driver: &Driver,
    env: &Environment,
    state: &mut TrafficRun,
) -> Result<Vec<Watched>, ()> {
    let mut watched = match state.watch.clone() {
        Some(w) => w,
        None => {
            let planned = watch::plan(ctx, &env.name, &state.moves);
            state.watch = Some(planned.clone());
            if !driver
                .save(serde_json::to_value(&*state).unwrap_or_default())
                .await
            {
                return Err(());
            }
            planned
        }
    };
    if watched.iter().all(|w| w.end.is_some()) {
        return Ok(watched);
    }
    let snapshot = state.clone();
    let save_watch = |w: &[Watched]| -> BoxFuture<'_, bool> {
        let mut s = snapshot.clone();
        s.watch = Some(w.to_vec());
        Box::pin(async move {
            driver
                .save(serde_json::to_value(&s).unwrap_or_default())
                .await
        })
    };
    let verb = if state.rollback {
        format!(":rewind: Rolled back *{}*", env.name)
    } else {
        format!(":twisted_rightwards_arrows: Switched *{}*", env.name)
    };
    let done = state.lines.clone();
    let render = |lines: &[String]| {
        let mut all = done.clone();
        all.extend(lines.iter().cloned());
        Reply::message(Outcome::Progress, verb.clone()).text(all.join("\n"))
    };
    watch::run(ctx, env, &mut watched, &save_watch, &render).await?;
    state.watch = Some(watched.clone());
    Ok(watched)
}
