//! `rollback` and `switch`: move a pool's traffic after health-checking the
//! destination, under the environment lock, read the switch back, and watch the new
//! member where the pool says so. `rollback` goes back to the member the last deploy
//! (or switch) moved away from. In an environment with regions, `rollback` moves back
//! what the last rollout switched ([`regional`]).

mod regional;
mod shown;

use async_trait::async_trait;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::actions::deploy::DeployState;
use crate::config::{CommandSpec, Environment, Pool};
use crate::context::{Action, Ctx};
use crate::failure::told;
use crate::ports::store::{Run, RunStatus};
use crate::rejection::Rejection;
use crate::reply::{Invocation, Outcome, Reply, Target};
use crate::runs::{self, Driver, LockFor, RunState, Stop};
use crate::steps::health::probe;
use crate::steps::moves::{next_member, switch_and_verify};
use crate::steps::watch::{self, Moved, Watched};
use crate::text::human;

pub(crate) use regional::RegionalRollback;

/// What a `rollback` or `switch` run saves: one variant per kind of move.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum TrafficState {
    /// A rollback or switch of an environment's pools.
    Move(TrafficRun),
    /// A rollback of an environment with regions: what its last rollout switched.
    RegionalRollback(RegionalRollback),
}

impl RunState for TrafficState {
    const VERSION: u32 = 1;

    fn legacy(_action: &str, state: &Value) -> Option<Self> {
        // Before states were typed, a plain move saved `rollback` and `pools`; a
        // regional rollback saved `moves` and a numeric `done`.
        if state.get("rollback").is_some() && state.get("pools").is_some() {
            return serde_json::from_value(state.clone())
                .ok()
                .map(TrafficState::Move);
        }
        if state.get("done").is_some_and(Value::is_u64) {
            return serde_json::from_value(state.clone())
                .ok()
                .map(TrafficState::RegionalRollback);
        }
        None
    }
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
            return regional::rollback(ctx, &inv, env, inv.target.region()).await;
        }
        match &inv.target {
            Target::Env { env, pools } => move_traffic(ctx, &inv, env, pools, None, true).await,
            other => Rejection::unsupported(&cmd.name, other).reply(),
        }
    }

    async fn resume(&self, ctx: &Ctx<'_>, _: &CommandSpec, inv: Invocation, run: Run) -> Reply {
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

/// Goes on with a rollback or switch taken over from a replica that died, by the
/// kind of move it saved.
async fn resume(ctx: &Ctx<'_>, inv: &Invocation, run: &Run) -> Reply {
    let what = match runs::kind_of(&run.state) {
        Some("regional_rollback") => "rollback",
        _ => "traffic move",
    };
    let r = match runs::resume::<TrafficState>(ctx, run, what).await {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let env_name = match &r.state {
        TrafficState::Move(m) => m.env.clone(),
        TrafficState::RegionalRollback(m) => m.env.clone(),
    };
    let Some(env) = ctx.config().env(&env_name) else {
        let _ = r.driver.finish(RunStatus::Failed, &r.state).await;
        return Rejection::NoSuchEnvironment(env_name).reply();
    };
    match r.state {
        TrafficState::Move(state) => drive(ctx, r.driver, inv, env, state).await,
        TrafficState::RegionalRollback(state) => {
            regional::drive(ctx, r.driver, inv, env, state).await
        }
    }
}

/// A rollback or switch, as saved after every pool.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TrafficRun {
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
    /// Each pool moved: (pool, from, to), for the post-switch watch and the next
    /// rollback.
    #[serde(default)]
    moves: Vec<(String, String, String)>,
    /// The post-switch watch, once every pool has moved.
    #[serde(default)]
    watch: Option<Vec<Watched>>,
    /// The move under way, saved before the switch is told: (pool, from, to).
    #[serde(default)]
    moving: Option<(String, String, String)>,
}

impl TrafficRun {
    /// Counts `pool`'s move from `from` to `to` as this run's.
    fn record_move(&mut self, pool: &str, from: &str, to: &str) {
        self.moved += 1;
        self.moves
            .push((pool.to_owned(), from.to_owned(), to.to_owned()));
    }

    /// What it moved.
    pub(crate) fn moved(&self) -> Vec<Moved> {
        self.moves
            .iter()
            .map(|(pool, from, to)| Moved {
                region: None,
                pool: pool.clone(),
                from: from.clone(),
                to: to.clone(),
            })
            .collect()
    }
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
        moves: Vec::new(),
        watch: None,
        moving: None,
    };
    let lock = LockFor {
        env: &env.name,
        reason: verb.to_owned(),
    };
    match runs::start_locked(ctx, verb, lock, inv, &TrafficState::Move(state.clone())).await {
        Ok(driver) => drive(ctx, driver, inv, env, state).await,
        Err(not) => not.reply(),
    }
}

/// What `run` moved, in order, as far as its saved state says: a deploy's or
/// rollout's switched pools, a switch's or rollback's moves. Nothing for other runs.
pub(crate) fn moves_of(run: &Run) -> Vec<Moved> {
    match run.action.as_str() {
        "deploy" => runs::read::<DeployState>(run)
            .map(|s| s.moved())
            .unwrap_or_default(),
        "switch" | "rollback" => match runs::read::<TrafficState>(run) {
            Ok(TrafficState::Move(m)) => m.moved(),
            Ok(TrafficState::RegionalRollback(r)) => r.moved(),
            Err(_) => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// Where `rollback` moves `pool` back to: the member the newest run that moved it
/// onto `active` (a deploy, a switch, a rollback) moved it away from; the next
/// member when no run says.
async fn previous_member(
    ctx: &Ctx<'_>,
    env: &Environment,
    pool: &Pool,
    active: &str,
) -> Option<String> {
    let runs = ctx
        .backends
        .store
        .recent_runs(Some(&env.name), 50)
        .await
        .unwrap_or_default();
    for run in runs {
        if run.status == RunStatus::Pending {
            continue;
        }
        let Some(m) = moves_of(&run)
            .into_iter()
            .rev()
            .find(|m| m.region.is_none() && m.pool == pool.name)
        else {
            continue;
        };
        if m.to == active && pool.members.iter().any(|x| x.name == m.from) {
            return Some(m.from);
        }
        // The newest move of this pool does not explain what is live now (moved by
        // hand since): go by the pool's order.
        break;
    }
    next_member(pool, active)
}

/// The reply of a move that failed, with the lines so far.
fn failed(state: &TrafficRun, text: String) -> Reply {
    Reply::message(Outcome::Failed, text).text(state.lines.join("\n"))
}

/// Ends the run as failed with `reply` and the audit `outcome`.
async fn fail(
    ctx: &Ctx<'_>,
    driver: Driver<TrafficState>,
    inv: &Invocation,
    state: TrafficRun,
    outcome: String,
    reply: Reply,
) -> Reply {
    if let Err(stop) = driver
        .finish(RunStatus::Failed, &TrafficState::Move(state))
        .await
    {
        return stop.reply();
    }
    ctx.audit(inv, &outcome).await;
    reply
}

/// Moves every pool not yet handled, saving after each, then watches what moved.
async fn drive(
    ctx: &Ctx<'_>,
    driver: Driver<TrafficState>,
    inv: &Invocation,
    env: &Environment,
    mut state: TrafficRun,
) -> Reply {
    let began = ctx.now();
    for name in state.pools.clone() {
        if state.done.contains(&name) {
            continue;
        }
        let Some(pool) = env.pools.iter().find(|p| p.name == name) else {
            state.done.push(name);
            continue;
        };
        let active = match ctx.active(&env.name, &pool.name).await {
            Ok(a) => a,
            Err(e) => {
                let shown = told(&e);
                let reply = failed(
                    &state,
                    format!(
                        ":x: *{} {}*: cannot read the switch: {shown}. Nothing was changed.",
                        env.name, pool.name
                    ),
                );
                return fail(ctx, driver, inv, state, format!("failed: {shown}"), reply).await;
            }
        };
        // A move saved as under way (by a replica that died after telling the
        // switch) keeps its destination: worked out again from what is live now, it
        // would take the pool on to the other member.
        let begun = state.moving.take().filter(|(p, _, _)| *p == name);
        let target = match (&begun, &state.member, state.rollback) {
            (Some((_, _, to)), _, _) => Some(to.clone()),
            (None, Some(m), _) => Some(m.clone()),
            (None, None, true) => previous_member(ctx, env, pool, &active).await,
            (None, None, false) => next_member(pool, &active),
        };
        let line = match target {
            None => None,
            Some(target) if target == active => match begun {
                // The replica that died moved it: that move is this run's.
                Some((_, from, _)) if from != target => {
                    state.record_move(&pool.name, &from, &target);
                    Some(format!(
                        "• {}: {from} → *{target}* :white_check_mark:",
                        pool.name
                    ))
                }
                _ => Some(format!("• {}: {target} is already active", pool.name)),
            },
            Some(target) => {
                let Some(instance) = pool.members.iter().find(|m| m.name == target) else {
                    state.done.push(name);
                    continue;
                };
                let verdict = probe(ctx, instance).await;
                if !verdict.healthy {
                    let why = crate::text::escape(&verdict.problem().unwrap_or_default());
                    let reply = failed(&state, format!(":x: *{} {}*: {target} is not healthy ({why}), so traffic stays on {active}.", env.name, pool.name));
                    return fail(
                        ctx,
                        driver,
                        inv,
                        state,
                        format!("refused: {target} unhealthy"),
                        reply,
                    )
                    .await;
                }
                state.moving = Some((pool.name.clone(), active.clone(), target.clone()));
                if let Err(stop) = driver
                    .checkpoint(&TrafficState::Move(state.clone()), "switch traffic")
                    .await
                {
                    return stop.reply();
                }
                match switch_and_verify(ctx, env, pool, &target).await {
                    Ok(t) => {
                        state.record_move(&pool.name, &active, &target);
                        Some(format!(
                            "• {}: {active} → *{target}* :white_check_mark: ({})",
                            pool.name,
                            human(t)
                        ))
                    }
                    Err(e) => {
                        let shown = told(&e);
                        let reply = failed(&state, format!(":x: *{} {}*: switching to {target} failed: {shown}. Check `status {}`.", env.name, pool.name, env.name));
                        return fail(ctx, driver, inv, state, format!("failed: {shown}"), reply)
                            .await;
                    }
                }
            }
        };
        state.moving = None;
        state.lines.extend(line);
        state.done.push(name);
        if let Err(stop) = driver.save(&TrafficState::Move(state.clone())).await {
            return stop.reply();
        }
    }
    if state.moved == 0 {
        let text = if state.lines.is_empty() {
            "Nothing to move.".to_owned()
        } else {
            state.lines.join("\n")
        };
        if let Err(stop) = driver
            .finish(RunStatus::Done, &TrafficState::Move(state.clone()))
            .await
        {
            return stop.reply();
        }
        ctx.audit(inv, "nothing to move").await;
        return Reply::message(
            Outcome::Info,
            format!("Traffic of *{}* stays where it is:", env.name),
        )
        .text(text);
    }
    // Watch what moved: the move is done only after the watch.
    let watched = match watch_moved(ctx, &driver, env, &mut state).await {
        Ok(w) => w,
        Err(stop) => return stop.reply(),
    };
    let troubled = watch::troubled(&watched);
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
    let status = if troubled {
        RunStatus::Failed
    } else {
        RunStatus::Done
    };
    let moves = state.moved();
    shown::moved(
        ctx,
        driver.id(),
        &env.name,
        state.rollback,
        &moves,
        began,
        troubled,
    )
    .await;
    if let Err(stop) = driver.finish(status, &TrafficState::Move(state)).await {
        return stop.reply();
    }
    match watch::trouble(&watched) {
        Some(why) => ctx.audit(inv, &format!("failed: {why}")).await,
        None => ctx.audit(inv, "ok").await,
    }
    let button = watch::rollback_button(ctx, &env.name, watch::still_moved(&watched)).await;
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
/// the run; `Err` when the run must stop.
async fn watch_moved(
    ctx: &Ctx<'_>,
    driver: &Driver<TrafficState>,
    env: &Environment,
    state: &mut TrafficRun,
) -> Result<Vec<Watched>, Stop> {
    let mut watched = match state.watch.clone() {
        Some(w) => w,
        None => {
            let planned = watch::plan(ctx, &env.name, &state.moved());
            state.watch = Some(planned.clone());
            driver.save(&TrafficState::Move(state.clone())).await?;
            planned
        }
    };
    if watched.iter().all(|w| w.end.is_some()) {
        return Ok(watched);
    }
    let snapshot = state.clone();
    let checkpoint = |w: &[Watched]| -> BoxFuture<'_, Result<(), Stop>> {
        let mut s = snapshot.clone();
        s.watch = Some(w.to_vec());
        Box::pin(async move {
            driver
                .checkpoint(&TrafficState::Move(s), "watch")
                .await
                .map(drop)
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
    watch::run(ctx, env, &mut watched, &checkpoint, &render).await?;
    state.watch = Some(watched.clone());
    Ok(watched)
}
