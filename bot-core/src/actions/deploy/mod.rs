//! `deploy`: blue/green under an environment lock, as one typed run — list what it
//! ships, build the inactive member, health-gate it, switch, read the switch back and
//! watch the new member, saving after every step so a replica that takes the run over
//! after a crash goes on where it stood (re-attaching to the same build). Any failure
//! stops before the switch and says which step failed and why. In an environment with
//! regions it rolls out region by region ([`rollout`]).
//!
//! [`state`] is what it saves, [`steps`] the steps of one pool, [`report`] how it reads.

use async_trait::async_trait;

use crate::config::{CommandSpec, Config, Environment};
use crate::context::{Action, Ctx, Shipping};
use crate::ports::store::{Run, RunStatus};
use crate::rejection::Rejection;
use crate::reply::{Invocation, Next, Outcome, Reply, Target};
use crate::runs::{self, Driver, LockFor, NotStarted};
use crate::steps::queue_words::{wants_queue, without_queue_words};
use crate::steps::{changes, watch};
use crate::text::{code, human};

pub(crate) mod canary;
mod live;
pub(crate) mod report;
pub(crate) mod rollout;
pub(crate) mod shown;
pub(crate) mod state;
pub(crate) mod steps;

use report::Ended;
pub(crate) use state::DeployState;
use state::{DeployRun, PoolRun, Step};
use steps::{advance, list_changes, watch_site, Live};

/// Git ref built when none is given.
const DEFAULT_REF: &str = "main";

/// The git ref a deploy builds: `ref=…`, else the one word given, else [`DEFAULT_REF`].
fn git_ref(inv: &Invocation) -> String {
    inv.params
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("ref"))
        .map(|(_, v)| v.clone())
        .or_else(|| inv.args.first().cloned())
        .unwrap_or_else(|| DEFAULT_REF.to_owned())
}

/// Checks a deploy before anything runs (and before asking for confirmation): one ref
/// at most, and every pool it touches has a deploy job.
fn check(config: &Config, inv: &Invocation) -> Result<(), Rejection> {
    let given_ref = inv
        .params
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("ref"));
    // `deploy staging in 30m`, `… at 18:00`, `… tomorrow`: a time is never a ref.
    if let Some(when) = inv.args.iter().find(|w| crate::schedule::is_time_word(w)) {
        let env = inv.target.env().unwrap_or("staging");
        return Err(Rejection::Conflict(format!(
            "`{}` reads as a time but says no time I can use, so nothing was deployed. Schedule with `deploy {env} in 30m`, `deploy {env} at 18:00` or `deploy {env} tomorrow 07:30`; a git ref that looks like a time goes as `deploy {env} ref={}`.",
            crate::text::escape(when),
            crate::text::escape(when)
        )));
    }
    let extra: &[String] = if given_ref {
        &inv.args
    } else {
        inv.args.get(1..).unwrap_or(&[])
    };
    if !extra.is_empty() {
        return Err(Rejection::DeployArguments {
            words: extra.to_vec(),
        });
    }
    let (Target::Env { env, pools } | Target::Region { env, pools, .. }) = &inv.target else {
        return Ok(());
    };
    let Some(env) = config.env(env) else {
        return Ok(());
    };
    let missing: Vec<String> = env
        .pools
        .iter()
        .filter(|p| pools.is_empty() || pools.contains(&p.name))
        .filter(|p| p.deploy.is_none())
        .map(|p| p.name.clone())
        .collect();
    if !missing.is_empty() {
        return Err(Rejection::NoDeployJob {
            env: env.name.clone(),
            pools: missing,
            example: env
                .pools
                .iter()
                .find(|p| p.deploy.is_some())
                .map_or("api", |p| p.name.as_str())
                .to_owned(),
        });
    }
    Ok(())
}

/// The confirmation question: what is deployed where (and when, for later).
fn question(inv: &Invocation) -> String {
    let asked = question_now(inv);
    match crate::schedule::at_of(inv) {
        Some((at, zone)) => {
            format!(
                "{} — scheduled for {}",
                asked.trim_end_matches('?'),
                crate::schedule::say(at, &zone)
            ) + "?"
        }
        None => asked,
    }
}

fn question_now(inv: &Invocation) -> String {
    match &inv.target {
        Target::Env { env, pools } => {
            let what = if pools.is_empty() {
                "every pool".to_owned()
            } else {
                pools.join(", ")
            };
            format!("Really deploy {} to *{env}* ({what})?", code(&git_ref(inv)))
        }
        Target::Region { env, region, pools } => {
            let what = if pools.is_empty() {
                "every pool".to_owned()
            } else {
                pools.join(", ")
            };
            format!(
                "Really deploy {} to *{env}* in region *{region}* only ({what})?",
                code(&git_ref(inv))
            )
        }
        _ => format!("Really {}?", code(&inv.as_text())),
    }
}

/// `deploy <env> [pools] [ref]`.
pub(crate) struct Deploy;

#[async_trait]
impl Action for Deploy {
    fn check(&self, config: &Config, inv: &Invocation) -> Result<(), Rejection> {
        check(config, &without_queue_words(inv))
    }

    fn question(&self, _: &Config, inv: &Invocation) -> Option<String> {
        let asked = question(&without_queue_words(inv));
        Some(if wants_queue(inv) {
            format!("{asked} (If it is busy, you wait in line and it starts when it is free.)")
        } else {
            asked
        })
    }

    async fn changes(&self, ctx: &Ctx<'_>, inv: &Invocation) -> Option<Shipping> {
        let inv = without_queue_words(inv);
        let (Target::Env { env, pools } | Target::Region { env, pools, .. }) = &inv.target else {
            return None;
        };
        changes::for_deploy(ctx, env, pools, &git_ref(&inv), inv.pin.as_ref()).await
    }

    async fn run(&self, ctx: &Ctx<'_>, cmd: &CommandSpec, inv: Invocation) -> Reply {
        match &inv.target {
            Target::Env { env, pools } => deploy(ctx, &inv, env, None, pools).await,
            Target::Region { env, region, pools } => {
                deploy(ctx, &inv, env, Some(region), pools).await
            }
            other => Rejection::unsupported(&cmd.name, other).reply(),
        }
    }

    async fn resume(&self, ctx: &Ctx<'_>, _: &CommandSpec, inv: Invocation, run: Run) -> Reply {
        let r = match runs::resume::<DeployState>(ctx, &run, "deploy").await {
            Ok(r) => r,
            Err(reply) => return reply,
        };
        let DeployState::Deploy(mut state) = r.state;
        let Some(env) = ctx.config().env(&state.env) else {
            let name = state.env.clone();
            let _ = r
                .driver
                .finish(RunStatus::Failed, &DeployState::Deploy(state))
                .await;
            return Rejection::NoSuchEnvironment(name).reply();
        };
        tracing::info!(run = %run.id, env = %env.name, "resuming a deploy taken over from another replica");
        for p in &mut state.pools {
            // Left between "about to trigger" and hearing back: whether a build started
            // is unknown, and starting another could build twice.
            if p.step == Step::Triggering || (p.step == Step::Building && p.build.is_none()) {
                let active = p.from.clone().unwrap_or_default();
                let target = p.to.clone().unwrap_or_default();
                p.step = Step::Failed;
                p.line = format!("• {}: {active} → {target} — :x: build lost", p.label());
                p.failure = Some(format!(
                    ":x: *{}*: step 2/4 (build) failed: I lost track of the build of {target} when the replica running this deploy stopped; it may or may not have started. Traffic stays on {active}; check Jenkins before deploying again.",
                    p.label()
                ));
            }
        }
        let pools: Vec<String> = Vec::new();
        drive(ctx, r.driver, &inv, env, state, &pools).await
    }
}

/// `deploy <env> [region] [pools] [ref]`: takes the lock (of the whole environment,
/// whatever the region), records the run, drives it. When the environment is locked
/// the engine puts the deploy in line or offers to.
async fn deploy(
    ctx: &Ctx<'_>,
    asked: &Invocation,
    env_name: &str,
    region: Option<&str>,
    pools: &[String],
) -> Reply {
    let Some(env) = ctx.config().env(env_name) else {
        return Rejection::NoSuchEnvironment(env_name.to_owned()).reply();
    };
    let inv = &without_queue_words(asked);
    let plan = match state::Plan::for_deploy(env, region) {
        Ok(plan) => plan,
        Err(refusal) => return refusal,
    };
    let git_ref = git_ref(inv);
    let places: Vec<Option<String>> = match &plan {
        Some(plan) => plan.regions().into_iter().map(Some).collect(),
        None => vec![None],
    };
    // A canary needs a switch that shares traffic out by weight: refused before
    // anything is built or locked.
    for p in env
        .pools
        .iter()
        .filter(|p| pools.is_empty() || pools.contains(&p.name))
        .filter(|p| ctx.config().canary(&env.name, &p.name).is_some())
    {
        for region in &places {
            if !ctx
                .switch_at(&env.name, region.as_deref(), &p.name)
                .is_ok_and(|sw| sw.weighted())
            {
                return Rejection::Conflict(format!(
                    "*{} {}* deploys as a canary, but its traffic switch cannot share traffic out by weight, so nothing was built. Give the pool a switch that can (HAProxy, or an HTTP switch with `weights`), or remove its `canary:`.",
                    env.name,
                    state::label(region.as_deref(), &p.name)
                ))
                .reply();
            }
        }
    }
    let state = DeployRun {
        git_ref: git_ref.clone(),
        env: env.name.clone(),
        pools: places
            .iter()
            .flat_map(|region| {
                env.pools
                    .iter()
                    .filter(|p| pools.is_empty() || pools.contains(&p.name))
                    .map(move |p| PoolRun {
                        pool: p.name.clone(),
                        region: region.clone(),
                        rolled_back: false,
                        step: Step::Waiting,
                        from: None,
                        to: None,
                        build: None,
                        built: None,
                        took_ms: [0; 3],
                        line: format!("• {}: waiting", state::label(region.as_deref(), &p.name)),
                        failure: None,
                        watch_planned: false,
                        watched: None,
                        canary: None,
                        switched_ms: None,
                    })
            })
            .collect(),
        began_ms: watch::unix_ms(ctx.now()),
        changes: None,
        pin: inv.pin.clone(),
        newer: None,
        rollout: plan,
    };
    let lock = LockFor {
        env: &env.name,
        reason: format!("deploy {git_ref}"),
    };
    let saved = DeployState::Deploy(state.clone());
    match runs::start_locked(ctx, "deploy", lock, inv, &saved).await {
        Ok(driver) => drive(ctx, driver, inv, env, state, pools).await,
        // Busy: the engine puts it in line when asked to, else offers to.
        Err(NotStarted::Locked(refusal)) => refusal.then(Next::WhenLocked(Box::new(asked.clone()))),
        Err(not) => not.reply(),
    }
}

/// Drives a deploy from where `state` stands to its end.
async fn drive(
    ctx: &Ctx<'_>,
    driver: Driver<DeployState>,
    inv: &Invocation,
    env: &Environment,
    state: DeployRun,
    pools: &[String],
) -> Reply {
    let live = Live::new(ctx, &driver, env, state);
    let ended = async {
        list_changes(&live, pools).await?;
        if live.with(|s| s.rollout.is_some()) {
            return rollout::drive(&live, inv).await;
        }
        plain(&live, inv).await
    }
    .await;
    let (status, audit, reply) = match ended {
        Ok(end) => end,
        Err(stop) => return stop.reply(),
    };
    shown::finished(&live, status).await;
    let state = live.snapshot();
    let took = ctx.now().duration_since(state.began()).unwrap_or_default();
    if let Err(stop) = driver
        .finish(status, &DeployState::Deploy(state.clone()))
        .await
    {
        return stop.reply();
    }
    ctx.audit_run(inv, &audit, state.links(), Some(took)).await;
    reply
}

/// A deploy of an environment without regions: each pool in turn, then the watch.
async fn plain(live: &Live<'_, '_>, _inv: &Invocation) -> Result<Ended, crate::runs::Stop> {
    let ctx = live.ctx;
    let env = live.env;
    for i in live.with(|s| s.site(None)) {
        advance(live, i).await?;
        if live.with(|s| s.pools[i].step) != Step::Failed {
            continue;
        }
        let state = live.snapshot();
        let failure = state.pools[i].failure.clone().unwrap_or_default();
        let done: Vec<String> = state
            .pools
            .iter()
            .filter(|p| p.step == Step::Done)
            .map(|p| {
                format!(
                    "{} {} → {}",
                    p.pool,
                    p.from.as_deref().unwrap_or("?"),
                    p.to.as_deref().unwrap_or("?")
                )
            })
            .collect();
        let mut reply = state
            .board(ctx.user)
            .reply(Outcome::Failed)
            .text(failure.clone());
        if !done.is_empty() {
            reply = reply.context(format!(
                "Already switched: {}. `rollback {}` moves them back.",
                done.join(", "),
                env.name
            ));
        }
        return Ok((
            RunStatus::Failed,
            format!("failed: {}", report::strip(&failure)),
            reply,
        ));
    }
    // Watch what moved: a deploy is done only after the watch.
    let watched = watch_site(live, None).await?;
    let state = live.snapshot();
    let total = ctx.now().duration_since(state.began()).unwrap_or_default();
    let watching = watch::took(&watched, ctx.now());
    let canary = state.canary_spent();
    let overhead = total.saturating_sub(state.spent(0) + state.spent(1) + canary + watching);
    let mut board = state.board(ctx.user);
    let troubled = watch::troubled(&watched);
    let (status, audit) = if troubled {
        board.title = if watch::rolled_back(&watched) {
            format!(
                ":rewind: Deployed {} to *{}*, then rolled back: the new member turned unhealthy after the switch",
                code(&state.git_ref), env.name
            )
        } else {
            format!(
                ":rotating_light: Deployed {} to *{}*, but the new member turned unhealthy after the switch",
                code(&state.git_ref), env.name
            )
        };
        let why = watch::trouble(&watched).unwrap_or_default();
        (RunStatus::Failed, format!("failed: {why}"))
    } else {
        board.title = format!(
            ":white_check_mark: Deployed {} to *{}* in {}",
            code(&state.git_ref),
            env.name,
            human(total)
        );
        (RunStatus::Done, "ok".to_owned())
    };
    let watch_time = if watched.is_empty() {
        String::new()
    } else {
        format!(" · watch {}", human(watching))
    };
    let button = watch::rollback_button(ctx, &env.name, watch::still_moved(&watched)).await;
    let outcome = if troubled {
        Outcome::Failed
    } else {
        Outcome::Done
    };
    let reply = board
        .reply(outcome)
        .context(format!(
            "build {} · health gate {}{} · switch {}{watch_time} · bot overhead {}",
            human(state.spent(0)),
            human(state.spent(1)),
            if canary.is_zero() {
                String::new()
            } else {
                format!(" · canary {}", human(canary))
            },
            human(state.spent(2)),
            human(overhead)
        ))
        .buttons(button.into_iter().collect());
    Ok((status, audit, reply))
}
