//! `rollback <env> [region]` of an environment with regions: takes the whole
//! environment's lock and moves back, region by region, what its last rollout
//! switched (or only the region named), health-checking each destination first.

use serde::{Deserialize, Serialize};

use super::TrafficState;
use crate::actions::deploy::DeployState;
use crate::config::Environment;
use crate::context::Ctx;
use crate::failure::told;
use crate::ports::store::RunStatus;
use crate::rejection::Rejection;
use crate::reply::{Invocation, Outcome, Reply, Target};
use crate::runs::{self, Driver, LockFor};
use crate::steps::health::probe;
use crate::steps::moves::{next_member, switch_and_verify};
use crate::steps::watch::Moved;
use crate::text::human;

/// One pool to move back in a region.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Move {
    region: String,
    pool: String,
    /// The member to move to; `None`: the other one (no rollout to go by).
    to: Option<String>,
}

/// `rollback <env> [region]` of an environment with regions, as saved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RegionalRollback {
    pub(super) env: String,
    moves: Vec<Move>,
    /// Moves handled so far, and their report lines.
    done: usize,
    lines: Vec<String>,
    moved: Vec<String>,
    /// Each pool moved, for the next rollback.
    #[serde(default)]
    switched: Vec<Moved>,
}

impl RegionalRollback {
    /// What it moved.
    pub(crate) fn moved(&self) -> Vec<Moved> {
        self.switched.clone()
    }
}

/// What `rollback` moves: every region the last rollout switched (and did not move
/// back already), or only `region`'s pools; nothing when the last thing done to the
/// environment was a regional rollback.
async fn last_rollout(
    ctx: &Ctx<'_>,
    env: &Environment,
    region: Option<&str>,
    pools: &[String],
) -> Vec<Move> {
    let runs = ctx
        .backends
        .store
        .recent_runs(Some(&env.name), 50)
        .await
        .unwrap_or_default();
    for run in runs {
        if run.action == "rollback" && run.status == RunStatus::Done {
            if let Ok(TrafficState::RegionalRollback(_)) = runs::read::<TrafficState>(&run) {
                return Vec::new();
            }
        }
        if run.action != "deploy" {
            continue;
        }
        let Ok(state) = runs::read::<DeployState>(&run) else {
            continue;
        };
        if !state.is_rollout() {
            continue;
        }
        return state
            .switched()
            .into_iter()
            .filter(|m| region.is_none() || m.region.as_deref() == region)
            .filter(|m| pools.is_empty() || pools.contains(&m.pool))
            .filter_map(|m| {
                Some(Move {
                    region: m.region?,
                    pool: m.pool,
                    to: Some(m.from),
                })
            })
            .collect();
    }
    Vec::new()
}

/// `rollback <env> [region]` of an environment with regions.
pub(crate) async fn rollback(
    ctx: &Ctx<'_>,
    inv: &Invocation,
    env: &Environment,
    region: Option<&str>,
) -> Reply {
    if let Some(r) = region {
        if env.region(r).is_none() {
            return Rejection::Conflict(format!("*{}* has no region `{r}`.", env.name)).reply();
        }
    }
    let pools: Vec<String> = match &inv.target {
        Target::Env { pools, .. } | Target::Region { pools, .. } => pools.clone(),
        _ => Vec::new(),
    };
    let mut moves = last_rollout(ctx, env, region, &pools).await;
    if moves.is_empty() {
        if let Some(r) = region.and_then(|r| env.region(r)) {
            // No rollout to go by: the other member of each pool, as without regions.
            moves = r
                .pools
                .iter()
                .filter(|p| pools.is_empty() || pools.contains(&p.name))
                .map(|p| Move {
                    region: r.name.clone(),
                    pool: p.name.clone(),
                    to: None,
                })
                .collect();
        }
    }
    if moves.is_empty() {
        ctx.audit(inv, "nothing to move").await;
        return Reply::message(
            Outcome::Info,
            format!(
                "Nothing to roll back: the last rollout of *{}* left no region switched. Name a region to flip it (`{} {} {}`).",
                env.name,
                inv.command,
                env.name,
                env.regions.first().map_or("eu", |r| r.name.as_str())
            ),
        );
    }
    let state = RegionalRollback {
        env: env.name.clone(),
        moves,
        done: 0,
        lines: Vec::new(),
        moved: Vec::new(),
        switched: Vec::new(),
    };
    let lock = LockFor {
        env: &env.name,
        reason: "rollback".into(),
    };
    let saved = TrafficState::RegionalRollback(state.clone());
    match runs::start_locked(ctx, "rollback", lock, inv, &saved).await {
        Ok(driver) => drive(ctx, driver, inv, env, state).await,
        Err(not) => not.reply(),
    }
}

/// Ends the run as failed: `text` above the lines so far, `outcome` on the record.
async fn fail(
    ctx: &Ctx<'_>,
    driver: Driver<TrafficState>,
    inv: &Invocation,
    state: RegionalRollback,
    outcome: String,
    text: String,
) -> Reply {
    let reply = Reply::message(Outcome::Failed, text).text(state.lines.join("\n"));
    if let Err(stop) = driver
        .finish(RunStatus::Failed, &TrafficState::RegionalRollback(state))
        .await
    {
        return stop.reply();
    }
    ctx.audit(inv, &outcome).await;
    reply
}

/// Moves each pool not yet handled, health-checking the destination first, saving
/// after each.
pub(super) async fn drive(
    ctx: &Ctx<'_>,
    driver: Driver<TrafficState>,
    inv: &Invocation,
    env: &Environment,
    mut state: RegionalRollback,
) -> Reply {
    while let Some(m) = state.moves.get(state.done).cloned() {
        let name = format!("{} {}", m.region, m.pool);
        let Some(pool) = env
            .pools_in(Some(&m.region))
            .and_then(|pools| pools.iter().find(|p| p.name == m.pool))
        else {
            state.done += 1;
            continue;
        };
        let active = match ctx.active_at(&env.name, Some(&m.region), &m.pool).await {
            Ok(a) => a,
            Err(e) => {
                let shown = told(&e);
                let text = format!(
                    ":x: *{} {name}*: cannot read the switch: {shown}. Nothing more was changed.",
                    env.name
                );
                return fail(
                    ctx,
                    driver,
                    inv,
                    state,
                    format!("failed: {name}: {shown}"),
                    text,
                )
                .await;
            }
        };
        let target = m.to.clone().or_else(|| next_member(pool, &active));
        match target {
            Some(target) if target != active => {
                let Some(instance) = pool.members.iter().find(|x| x.name == target) else {
                    state.done += 1;
                    continue;
                };
                let verdict = probe(ctx, instance).await;
                if !verdict.healthy {
                    let why = crate::text::escape(&verdict.problem().unwrap_or_default());
                    let text = format!(":x: *{} {name}*: {target} is not healthy ({why}), so traffic stays on {active}.", env.name);
                    return fail(
                        ctx,
                        driver,
                        inv,
                        state,
                        format!("refused: {name} {target} unhealthy"),
                        text,
                    )
                    .await;
                }
                // The destination is saved before the move: a replica that takes the
                // rollback over after the switch finds it done, instead of moving
                // the pool on to "the other one" again.
                if let Some(saved_move) = state.moves.get_mut(state.done) {
                    saved_move.to = Some(target.clone());
                }
                let saved = TrafficState::RegionalRollback(state.clone());
                if let Err(stop) = driver.checkpoint(&saved, "switch traffic back").await {
                    return stop.reply();
                }
                match switch_and_verify(ctx, env, pool, &target).await {
                    Ok(t) => {
                        if !state.moved.contains(&m.region) {
                            state.moved.push(m.region.clone());
                        }
                        state.switched.push(Moved {
                            region: Some(m.region.clone()),
                            pool: m.pool.clone(),
                            from: active.clone(),
                            to: target.clone(),
                        });
                        state.lines.push(format!(
                            "• {name}: {active} → *{target}* :white_check_mark: ({})",
                            human(t)
                        ));
                    }
                    Err(e) => {
                        let shown = told(&e);
                        let text = format!(":x: *{} {name}*: switching to {target} failed: {shown}. Check `status {}`.", env.name, env.name);
                        return fail(
                            ctx,
                            driver,
                            inv,
                            state,
                            format!("failed: {name}: {shown}"),
                            text,
                        )
                        .await;
                    }
                }
            }
            Some(target) => state
                .lines
                .push(format!("• {name}: {target} is already active")),
            None => {}
        }
        state.done += 1;
        if let Err(stop) = driver
            .save(&TrafficState::RegionalRollback(state.clone()))
            .await
        {
            return stop.reply();
        }
        ctx.progress
            .update(
                &Reply::message(
                    Outcome::Progress,
                    format!(":rewind: Rolling back *{}*", env.name),
                )
                .text(state.lines.join(
                    "
",
                )),
            )
            .await;
    }
    let regions = state.moved.join(", ");
    let text = state.lines.join("\n");
    let env_name = state.env.clone();
    let now = ctx.now();
    super::shown::moved(
        ctx,
        driver.id(),
        &env_name,
        true,
        &state.moved(),
        now,
        false,
    )
    .await;
    if let Err(stop) = driver
        .finish(RunStatus::Done, &TrafficState::RegionalRollback(state))
        .await
    {
        return stop.reply();
    }
    ctx.audit(
        inv,
        &if regions.is_empty() {
            "nothing to move".to_owned()
        } else {
            format!("ok: rolled back {regions}")
        },
    )
    .await;
    if regions.is_empty() {
        return Reply::message(
            Outcome::Info,
            format!("Traffic of *{env_name}* stays where it is:"),
        )
        .text(text);
    }
    Reply::message(
        Outcome::Done,
        format!(":rewind: Rolled back *{env_name}* in {regions}"),
    )
    .text(text)
}
