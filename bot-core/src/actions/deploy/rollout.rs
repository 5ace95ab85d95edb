//! Rollouts: a deploy of an environment with regions goes stage by stage under the
//! environment's `rollout` policy (`canary: eu` then the rest side by side, or one
//! region after another). Each region's pools go through the same steps as any
//! deploy (build, gate, switch, read back), then its watch; the regions of one stage
//! run side by side on the shared saved state. It stops before the next stage when a
//! region fails (or turns unhealthy after its switch), and then moves regions
//! already switched back (`on_failure: rollback`) or leaves them with a one-click
//! `rollback` (`halt`).

use serde::{Deserialize, Serialize};

use super::report::Board;
use super::state::{DeployRun, Step};
use super::steps::{advance, watch_site, Live};
use super::Ended;
use crate::config::{Environment, OnFailure};
use crate::context::Offer;
use crate::failure::told;
use crate::ports::store::RunStatus;
use crate::rejection::Rejection;
use crate::reply::{ButtonAction, ButtonStyle, Invocation, Outcome, Reply, Target};
use crate::runs::Stop;
use crate::steps::moves::switch_and_verify;
use crate::steps::watch;
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
    Watching,
    Switched,
    Unhealthy,
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
    pub(crate) fn board(&self, state: &DeployRun, title: String) -> Board {
        let mut lines = Vec::new();
        for region in self.regions() {
            lines.push(format!(
                "*{region}* — {}",
                describe(region_state(state, &region))
            ));
            for p in &state.pools {
                if p.region.as_deref() == Some(region.as_str()) {
                    lines.push(format!("  {}", p.line));
                }
            }
            let watched: Vec<_> = state
                .pools
                .iter()
                .filter(|p| p.region.as_deref() == Some(region.as_str()))
                .filter_map(|p| p.watched.clone())
                .collect();
            lines.extend(watch::lines(&watched).into_iter().map(|l| format!("  {l}")));
        }
        let title = match &self.only {
            Some(r) => format!("{title} (region {r} only)"),
            None => format!("{title}, region by region"),
        };
        Board { title, lines }
    }
}

fn region_state(state: &DeployRun, region: &str) -> RegionState {
    let pools: Vec<_> = state
        .pools
        .iter()
        .filter(|p| p.region.as_deref() == Some(region))
        .collect();
    let watched: Vec<_> = pools.iter().filter_map(|p| p.watched.clone()).collect();
    if pools.iter().any(|p| p.step == Step::Failed) {
        RegionState::Failed
    } else if !pools.is_empty() && pools.iter().all(|p| p.step == Step::Done) {
        if pools.iter().any(|p| p.rolled_back) || watch::rolled_back(&watched) {
            RegionState::RolledBack
        } else if watch::troubled(&watched) {
            RegionState::Unhealthy
        } else if watched.iter().any(|w| w.end.is_none()) || pools.iter().any(|p| !p.watch_planned)
        {
            RegionState::Watching
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
        RegionState::Watching => ":eyes: switched, watching",
        RegionState::Switched => ":white_check_mark: switched",
        RegionState::Unhealthy => ":rotating_light: switched, then unhealthy",
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
                RegionState::Watching | RegionState::Switched => "switched".to_owned(),
                RegionState::Unhealthy => "switched, then unhealthy".to_owned(),
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

/// How one region of a stage ended.
enum RegionEnd {
    /// Switched, and healthy through its watch.
    Switched,
    /// Pool `i` failed before switching (or could not switch).
    Failed(usize),
    /// Switched, then turned unhealthy in its watch (and maybe moved back).
    Unhealthy(String),
}

/// One region: its pools in turn, then its watch.
async fn region(live: &Live<'_, '_>, region: &str) -> Result<RegionEnd, Stop> {
    for i in live.with(|s| s.site(Some(region))) {
        advance(live, i).await?;
        live.show().await;
        if live.with(|s| s.pools[i].step) == Step::Failed {
            return Ok(RegionEnd::Failed(i));
        }
    }
    let watched = watch_site(live, Some(region)).await?;
    live.show().await;
    Ok(match watch::trouble(&watched) {
        Some(why) => RegionEnd::Unhealthy(why),
        None => RegionEnd::Switched,
    })
}

/// Drives a rollout from where its state stands: stage by stage, the regions of a
/// stage side by side; stops after the first stage where a region fails.
pub(super) async fn drive(live: &Live<'_, '_>, _inv: &Invocation) -> Result<Ended, Stop> {
    let ctx = live.ctx;
    let env = live.env;
    let Some(plan) = live.with(|s| s.rollout.clone()) else {
        return Ok((
            RunStatus::Failed,
            "failed: a rollout without a plan".into(),
            Reply::message(Outcome::Failed, "internal error: a rollout without a plan"),
        ));
    };
    let mut failure: Option<String> = None;
    for stage in &plan.stages {
        let ends = futures::future::join_all(stage.iter().map(|r| region(live, r))).await;
        for end in ends {
            match end? {
                RegionEnd::Switched => {}
                RegionEnd::Failed(i) => {
                    failure.get_or_insert_with(|| {
                        live.with(|s| s.pools[i].failure.clone().unwrap_or_default())
                    });
                }
                RegionEnd::Unhealthy(why) => {
                    failure.get_or_insert_with(|| format!(":rotating_light: {why}"));
                }
            }
        }
        if failure.is_some() {
            break;
        }
    }
    let state = live.snapshot();
    let took = ctx.now().duration_since(state.began()).unwrap_or_default();
    let Some(failure) = failure else {
        let summary = outcomes(&state, &plan);
        let mut board = state.board(ctx.user);
        board.title = format!(
            ":white_check_mark: Deployed `{}` to *{}* in {} ({})",
            state.git_ref,
            env.name,
            plan.regions().join(", "),
            human(took)
        );
        return Ok((
            RunStatus::Done,
            format!("ok: {summary}"),
            board.reply(Outcome::Done).context(summary),
        ));
    };
    if plan.on_failure == Policy::Rollback {
        roll_back_switched(live, env).await?;
    }
    let state = live.snapshot();
    let summary = outcomes(&state, &plan);
    let mut reply = state
        .board(ctx.user)
        .reply(Outcome::Failed)
        .text(failure.clone())
        .context(format!("Regions: {summary}."));
    let left: Vec<String> = plan
        .regions()
        .into_iter()
        .filter(|r| {
            state.pools.iter().any(|p| {
                p.region.as_deref() == Some(r)
                    && p.step == Step::Done
                    && !p.rolled_back
                    && !p.watch_rolled_back()
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
    Ok((RunStatus::Failed, format!("failed: {summary}"), reply))
}

/// `on_failure: rollback`: moves every pool still switched back to where it was,
/// each under a valid lease, saving after each.
async fn roll_back_switched(live: &Live<'_, '_>, env: &Environment) -> Result<(), Stop> {
    let n = live.with(|s| s.pools.len());
    for j in 0..n {
        let p = live.with(|s| s.pools[j].clone());
        if p.step != Step::Done || p.rolled_back || p.watch_rolled_back() {
            continue;
        }
        let pool = env
            .pools_in(p.region.as_deref())
            .and_then(|pools| pools.iter().find(|x| x.name == p.pool));
        let (Some(pool), Some(from)) = (pool, p.from.clone()) else {
            continue;
        };
        let to = p.to.clone().unwrap_or_default();
        let name = p.label();
        let _permit = live.checkpoint("switch traffic back").await?;
        let line = match switch_and_verify(live.ctx, env, pool, &from).await {
            Ok(_) => {
                live.with(|s| s.pools[j].rolled_back = true);
                format!("• {name}: {from} → {to} → *{from}* :rewind: rolled back")
            }
            Err(e) => format!(
                "• {name}: {from} → *{to}* :x: rolling back failed: {}",
                told(&e)
            ),
        };
        live.with(|s| s.pools[j].line = line);
        live.save().await?;
        live.show().await;
    }
    Ok(())
}
