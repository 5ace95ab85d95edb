//! Rollouts: a deploy of an environment with regions goes stage by stage under the
//! environment's `rollout` policy (`canary: eu` then the rest side by side, or one
//! region after another). Each region's pools go through the same steps as any
//! deploy (build, gate, switch, read back), then its watch; the regions of one stage
//! run side by side on the shared saved state. It stops before the next stage when a
//! region fails (or turns unhealthy after its switch), and then moves regions
//! already switched back (`on_failure: rollback`) or leaves them with a one-click
//! `rollback` (`halt`).

use super::report::{region_state, Ended, RegionState};
use super::state::{DeployRun, Plan, Policy, Step};
use super::steps::{advance, watch_site, Live};
use crate::config::Environment;
use crate::context::Offer;
use crate::failure::told;
use crate::ports::store::RunStatus;
use crate::reply::{ButtonAction, ButtonStyle, Invocation, Outcome, Reply, Target};
use crate::runs::Stop;
use crate::steps::moves::switch_and_verify;
use crate::steps::watch;
use crate::text::human;

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
            ":white_check_mark: Deployed {} to *{}* in {} ({})",
            crate::text::code(&state.git_ref),
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
                pin: None,
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
