//! Rollouts: a deploy of an environment with regions goes region by region under the
//! environment's `rollout` policy — each region's pools through the same per-pool
//! steps as any deploy (build, gate, switch, read back) — stops before the next region
//! when one fails, and then moves regions already switched back (`on_failure:
//! rollback`) or leaves them with a one-click `rollback` (`halt`). Also `rollback
//! <env> [region]`: moves back what the last rollout switched.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::{advance, label, links, save, taken_over, Board, DeployRun, Step};
use crate::actions::health::probe;
use crate::actions::locks::{reclaim, take_for_run};
use crate::actions::moves::{next_member, switch_and_verify};
use crate::config::{Environment, OnFailure};
use crate::context::{Ctx, Offer};
use crate::failure::told;
use crate::ports::store::{Lock, Run, RunStatus};
use crate::rejection::Rejection;
use crate::reply::{ButtonAction, ButtonStyle, Invocation, Outcome, Reply, Target};
use crate::runs::Driver;
use crate::text::human;

/// What happens to switched regions when a later one fails, as saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Policy {
    Halt,
    Rollback,
}

/// The order of a rollout, as saved with its run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Plan {
    /// Stages in order; each stage's regions.
    stages: Vec<Vec<String>>,
    on_failure: Policy,
    /// `deploy <env> <region>`: this region only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    only: Option<String>,
}

/// How far one region got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RegionState {
    Waiting,
    Deploying,
    Switched,
    RolledBack,
    Failed,
}

impl Plan {
    /// The plan of `deploy <env> [region]`: `None` for an environment without regions.
    pub(crate) fn for_deploy(
        env: &Environment,
        region: Option<&str>,
    ) -> Result<Option<Self>, Reply> {
        if env.regions.is_empty() {
            return match region {
                None => Ok(None),
                Some(r) => Err(Rejection::Conflict(format!(
                    "*{}* has no regions, so there is no `{r}` to deploy to.",
                    env.name
                ))
                .reply()),
            };
        }
        let on_failure = match env.rollout.on_failure {
            OnFailure::Halt => Policy::Halt,
            OnFailure::Rollback => Policy::Rollback,
        };
        match region {
            Some(r) if env.region(r).is_none() => Err(Rejection::Conflict(format!(
                "*{}* has no region `{r}`; it has {}.",
                env.name,
                env.regions
                    .iter()
                    .map(|r| format!("`{}`", r.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .reply()),
            Some(r) => Ok(Some(Self {
                stages: vec![vec![r.to_owned()]],
                on_failure,
                only: Some(r.to_owned()),
            })),
            None => {
                let stages = if env.rollout.stages.is_empty() {
                    env.regions.iter().map(|r| vec![r.name.clone()]).collect()
                } else {
                    env.rollout.stages.clone()
                };
                Ok(Some(Self {
                    stages,
                    on_failure,
                    only: None,
                }))
            }
        }
    }

    /// Every region, in rollout order.
    pub(crate) fn regions(&self) -> Vec<String> {
        self.stages.iter().flatten().cloned().collect()
    }

    /// The progress board: a line per region saying where it stands, each followed
    /// by its pools' lines.
    pub(super) fn board(&self, state: &DeployRun, title: String) -> Board {
        let mut lines = Vec::new();
        let mut rows = vec![0; state.pools.len()];
        for region in self.regions() {
            lines.push(format!(
                "*{region}* — {}",
                describe(region_state(state, &region))
            ));
            for (i, p) in state.pools.iter().enumerate() {
                if p.region.as_deref() == Some(region.as_str()) {
                    rows[i] = lines.len();
                    lines.push(format!("  {}", p.line));
                }
            }
        }
        let title = match &self.only {
            Some(r) => format!("{title} (region {r} only)"),
            None => format!("{title}, region by region"),
        };
        Board {
            title,
            lines,
            rows: Some(rows),
        }
    }
}

fn region_state(state: &DeployRun, region: &str) -> RegionState {
    let pools: Vec<_> = state
        .pools
        .iter()
        .filter(|p| p.region.as_deref() == Some(region))
        .collect();
    if pools.iter().any(|p| p.step == Step::Failed) {
        RegionState::Failed
    } else if !pools.is_empty() && pools.iter().all(|p| p.step == Step::Done) {
        if pools.iter().any(|p| p.rolled_back) {
            RegionState::RolledBack
        } else {
            RegionState::Switched
        }
    } else if pools.iter().all(|p| p.step == Step::Waiting) {
        RegionState::Waiting
    } else {
        RegionState::Deploying
    }
}

fn describe(s: RegionState) -> &'static str {
    match s {
        RegionState::Waiting => ":white_circle: waiting",
        RegionState::Deploying => ":arrows_counterclockwise: deploying",
        RegionState::Switched => ":white_check_mark: switched",
        RegionState::RolledBack => ":rewind: switched, then rolled back",
        RegionState::Failed => ":x: failed",
    }
}

/// Each region's outcome in one line: `eu switched, then rolled back; us failed (api:
/// health gate failed)`.
fn outcomes(state: &DeployRun, plan: &Plan) -> String {
    plan.regions()
        .iter()
        .map(|region| {
            let what = match region_state(state, region) {
                RegionState::Waiting => "not started".to_owned(),
                RegionState::Deploying => {
                    let moved: Vec<&str> = state
                        .pools
                        .iter()
                        .filter(|p| p.region.as_deref() == Some(region.as_str()))
                        .filter(|p| p.step == Step::Done)
                        .map(|p| p.pool.as_str())
                        .collect();
                    if moved.is_empty() {
                        "not finished".to_owned()
                    } else {
                        format!("partly switched ({})", moved.join(", "))
                    }
                }
                RegionState::Switched => "switched".to_owned(),
                RegionState::RolledBack => "switched, then rolled back".to_owned(),
                RegionState::Failed => {
                    let why: Vec<String> = state
                        .pools
                        .iter()
                        .filter(|p| p.region.as_deref() == Some(region.as_str()))
                        .filter(|p| p.step == Step::Failed)
                        .map(|p| {
                            let reason = p.line.rsplit(":x: ").next().unwrap_or("failed");
                            format!("{}: {reason}", p.pool)
                        })
                        .collect();
                    format!("failed ({})", why.join(", "))
                }
            };
            format!("{region} {what}")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Drives a rollout from where `state` stands: stage by stage, region by region, each
/// region's pools in turn; stops at the first region that fails.
pub(super) async fn drive(
    ctx: &Ctx<'_>,
    driver: Driver,
    inv: &Invocation,
    env: &Environment,
    mut state: DeployRun,
) -> Reply {
    let Some(plan) = state.rollout.clone() else {
        return Reply::message(Outcome::Failed, "internal error: a rollout without a plan");
    };
    let began = SystemTime::UNIX_EPOCH + Duration::from_millis(state.began_ms);
    let mut failed = None;
    'stages: for stage in &plan.stages {
        for region in stage {
            let mine: Vec<usize> = (0..state.pools.len())
                .filter(|&i| state.pools[i].region.as_deref() == Some(region.as_str()))
                .collect();
            for i in mine {
                if advance(ctx, &driver, env, &mut state, i).await.is_err() {
                    return taken_over(&state);
                }
                ctx.progress
                    .update(&state.board(ctx.user).reply(Outcome::Progress))
                    .await;
                if state.pools[i].step == Step::Failed {
                    failed = Some(i);
                    break 'stages;
                }
            }
        }
    }
    let took = ctx.now().duration_since(began).unwrap_or_default();
    let Some(i) = failed else {
        let summary = outcomes(&state, &plan);
        ctx.audit_run(inv, &format!("ok: {summary}"), links(&state), Some(took))
            .await;
        let mut board = state.board(ctx.user);
        board.title = format!(
            ":white_check_mark: Deployed `{}` to *{}* in {} ({})",
            state.git_ref,
            env.name,
            plan.regions().join(", "),
            human(took)
        );
        driver
            .finish(
                RunStatus::Done,
                serde_json::to_value(&state).unwrap_or_default(),
            )
            .await;
        return board.reply(Outcome::Done).context(summary);
    };
    let failure = state.pools[i].failure.clone().unwrap_or_default();
    if plan.on_failure == Policy::Rollback {
        for j in 0..state.pools.len() {
            let p = state.pools[j].clone();
            if p.step != Step::Done || p.rolled_back {
                continue;
            }
            let region = p.region.as_deref();
            let pool = env
                .pools_in(region)
                .and_then(|pools| pools.iter().find(|x| x.name == p.pool));
            let (Some(pool), Some(from)) = (pool, p.from.clone()) else {
                continue;
            };
            let to = p.to.clone().unwrap_or_default();
            let name = label(region, &p.pool);
            match switch_and_verify(ctx, env, pool, &from).await {
                Ok(_) => {
                    state.pools[j].rolled_back = true;
                    state.pools[j].line =
                        format!("• {name}: {from} → {to} → *{from}* :rewind: rolled back");
                }
                Err(e) => {
                    state.pools[j].line = format!(
                        "• {name}: {from} → *{to}* :x: rolling back failed: {}",
                        told(&e)
                    );
                }
            }
            if save(&driver, &state).await.is_err() {
                return taken_over(&state);
            }
            ctx.progress
                .update(&state.board(ctx.user).reply(Outcome::Progress))
                .await;
        }
    }
    let summary = outcomes(&state, &plan);
    let mut reply = state
        .board(ctx.user)
        .reply(Outcome::Failed)
        .text(failure.clone())
        .context(format!("Regions: {summary}."));
    let left: Vec<String> =
        plan.regions()
            .into_iter()
            .filter(|r| {
                state.pools.iter().any(|p| {
                    p.region.as_deref() == Some(r) && p.step == Step::Done && !p.rolled_back
                })
            })
            .collect();
    if !left.is_empty() {
        reply = reply.context(format!(
            "Still switched: {}. `rollback {}` moves them back.",
            left.join(", "),
            env.name
        ));
        if let Some(cmd) = ctx
            .config()
            .commands
            .iter()
            .find(|c| c.action.name() == "rollback")
        {
            let again = Invocation {
                command: cmd.name.clone(),
                target: Target::Env {
                    env: env.name.clone(),
                    pools: Vec::new(),
                },
                args: Vec::new(),
                params: Vec::new(),
                confirmed: true,
                approval: None,
            };
            let offer = Offer::new(
                format!("Roll back {}", left.join(", ")),
                ButtonAction::Run(again),
                ButtonStyle::Danger,
            );
            if let Ok(buttons) = ctx.offer(vec![offer]).await {
                reply = reply.buttons(buttons);
            }
        }
    }
    ctx.audit_run(
        inv,
        &format!("failed: {summary}"),
        links(&state),
        Some(took),
    )
    .await;
    driver
        .finish(
            RunStatus::Failed,
            serde_json::to_value(&state).unwrap_or_default(),
        )
        .await;
    reply
}

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
    env: String,
    moves: Vec<Move>,
    /// Moves handled so far, and their report lines.
    done: usize,
    lines: Vec<String>,
    moved: Vec<String>,
    lock: Lock,
}

/// Whether a saved rollback state is a regional one.
pub(crate) fn is_regional(state: &serde_json::Value) -> bool {
    state.get("moves").is_some()
}

/// What `rollback` moves: every region the last rollout switched (and did not move
/// back already), or only `region`'s pools. `None` when the last thing done to the
/// environment was a rollback.
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
        if run.action == "rollback" && is_regional(&run.state) && run.status == RunStatus::Done {
            return Vec::new();
        }
        if run.action != "deploy" {
            continue;
        }
        let Ok(state) = serde_json::from_value::<DeployRun>(run.state) else {
            continue;
        };
        if state.rollout.is_none() {
            continue;
        }
        return state
            .pools
            .iter()
            .filter(|p| p.step == Step::Done && !p.rolled_back)
            .filter(|p| region.is_none() || p.region.as_deref() == region)
            .filter(|p| pools.is_empty() || pools.contains(&p.pool))
            .filter_map(|p| {
                Some(Move {
                    region: p.region.clone()?,
                    pool: p.pool.clone(),
                    to: p.from.clone(),
                })
            })
            .collect();
    }
    Vec::new()
}

/// `rollback <env> [region]` of an environment with regions: takes the whole
/// environment's lock and moves back what the last rollout switched.
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
    let id = Driver::new_id(ctx);
    let lock = match take_for_run(ctx, &env.name, "rollback", "rollback".into(), &id).await {
        Ok(lock) => lock,
        Err(refusal) => return refusal,
    };
    let state = RegionalRollback {
        env: env.name.clone(),
        moves,
        done: 0,
        lines: Vec::new(),
        moved: Vec::new(),
        lock: lock.clone(),
    };
    let driver = match Driver::start(
        ctx,
        id,
        "rollback",
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
                    "I could not record the rollback: {}. Nothing was changed.",
                    told(&e)
                ),
            );
        }
    };
    drive_rollback(ctx, driver, inv, env, state).await
}

/// Goes on with a regional rollback taken over from a replica that died.
pub(crate) async fn resume_rollback(ctx: &Ctx<'_>, inv: &Invocation, run: &Run) -> Reply {
    let Ok(state) = serde_json::from_value::<RegionalRollback>(run.state.clone()) else {
        Driver::resume(ctx, run, None)
            .finish(RunStatus::Failed, run.state.clone())
            .await;
        return Reply::message(Outcome::Failed, ":x: A rollback could not be continued after a restart: its saved state is unreadable. Check `status`.");
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
            format!(":x: Rolling back *{}* could not go on after a restart: the environment is locked by someone else now. Check `status {}`.", env.name, env.name),
        );
    }
    drive_rollback(ctx, driver, inv, env, state).await
}

/// Moves each pool not yet handled, health-checking the destination first, saving
/// after each.
async fn drive_rollback(
    ctx: &Ctx<'_>,
    driver: Driver,
    inv: &Invocation,
    env: &Environment,
    mut state: RegionalRollback,
) -> Reply {
    while let Some(m) = state.moves.get(state.done).cloned() {
        let name = label(Some(&m.region), &m.pool);
        let Some(pool) = env
            .pools_in(Some(&m.region))
            .and_then(|pools| pools.iter().find(|p| p.name == m.pool))
        else {
            state.done += 1;
            continue;
        };
        let fail = |state: &RegionalRollback, text: String| {
            Reply::message(Outcome::Failed, text).text(state.lines.join("\n"))
        };
        let active = match ctx.active_at(&env.name, Some(&m.region), &m.pool).await {
            Ok(a) => a,
            Err(e) => {
                let shown = told(&e);
                ctx.audit(inv, &format!("failed: {name}: {shown}")).await;
                let reply = fail(
                    &state,
                    format!(":x: *{} {name}*: cannot read the switch: {shown}. Nothing more was changed.", env.name),
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
        let target = m.to.clone().or_else(|| next_member(pool, &active));
        match target {
            Some(target) if target != active => {
                let Some(instance) = pool.members.iter().find(|x| x.name == target) else {
                    state.done += 1;
                    continue;
                };
                let verdict = probe(ctx, instance).await;
                if !verdict.healthy {
                    let why = verdict.problem().unwrap_or_default();
                    ctx.audit(inv, &format!("refused: {name} {target} unhealthy"))
                        .await;
                    let reply = fail(&state, format!(":x: *{} {name}*: {target} is not healthy ({why}), so traffic stays on {active}.", env.name));
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
                        if !state.moved.contains(&m.region) {
                            state.moved.push(m.region.clone());
                        }
                        state.lines.push(format!(
                            "• {name}: {active} → *{target}* :white_check_mark: ({})",
                            human(t)
                        ));
                    }
                    Err(e) => {
                        let shown = told(&e);
                        ctx.audit(inv, &format!("failed: {name}: {shown}")).await;
                        let reply = fail(&state, format!(":x: *{} {name}*: switching to {target} failed: {shown}. Check `status {}`.", env.name, env.name));
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
            Some(target) => state
                .lines
                .push(format!("• {name}: {target} is already active")),
            None => {}
        }
        state.done += 1;
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
    let regions = state.moved.join(", ");
    ctx.audit(
        inv,
        &if regions.is_empty() {
            "nothing to move".to_owned()
        } else {
            format!("ok: rolled back {regions}")
        },
    )
    .await;
    let text = state.lines.join("\n");
    driver
        .finish(
            RunStatus::Done,
            serde_json::to_value(&state).unwrap_or_default(),
        )
        .await;
    if regions.is_empty() {
        return Reply::message(
            Outcome::Info,
            format!("Traffic of *{}* stays where it is:", env.name),
        )
        .text(text);
    }
    Reply::message(
        Outcome::Done,
        format!(":rewind: Rolled back *{}* in {regions}", env.name),
    )
    .text(text)
}
