//! `deploy`: blue/green under an environment lock, as a persisted run — build the
//! inactive member, health-gate it, switch, read the switch back, saving after every
//! step so a replica that takes the run over after a crash goes on where it stood
//! (re-attaching to the same build). Any failure stops before the switch and says
//! which step failed and why.

use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::actions::changes::{self, Changes};
use crate::actions::health::probe;
use crate::actions::jobs::{follow_job, Start};
use crate::actions::locks::{reclaim, take_for_run};
use crate::actions::moves::{next_member, switch_and_verify};
use crate::actions::queue;
use crate::actions::watch::{self, Watched};
use crate::config::{CommandSpec, Config, Environment, Pool};
use crate::context::{Action, Ctx};
use crate::failure::told;
use crate::ports::store::{Lock, Run, RunStatus};
use crate::ports::BuildRef;
use crate::rejection::Rejection;
use crate::reply::{Invocation, Outcome, Reply, Target};
use crate::runs::Driver;
use crate::text::human;

pub(super) mod rollout;

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

/// The confirmation question: what is deployed where.
fn question(inv: &Invocation) -> String {
    match &inv.target {
        Target::Env { env, pools } => {
            let what = if pools.is_empty() {
                "every pool".to_owned()
            } else {
                pools.join(", ")
            };
            format!("Really deploy `{}` to *{env}* ({what})?", git_ref(inv))
        }
        Target::Region { env, region, pools } => {
            let what = if pools.is_empty() {
                "every pool".to_owned()
            } else {
                pools.join(", ")
            };
            format!(
                "Really deploy `{}` to *{env}* in region *{region}* only ({what})?",
                git_ref(inv)
            )
        }
        _ => format!("Really `{}`?", inv.as_text()),
    }
}

/// `deploy <env> [pools] [ref]`.
pub(crate) struct Deploy;

#[async_trait]
impl Action for Deploy {
    fn check(&self, config: &Config, inv: &Invocation) -> Result<(), Rejection> {
        check(config, &queue::without_queue_words(inv))
    }

    fn question(&self, _: &Config, inv: &Invocation) -> Option<String> {
        let asked = question(&queue::without_queue_words(inv));
        Some(if queue::wants_queue(inv) {
            format!("{asked} (If it is busy, you wait in line and it starts when it is free.)")
        } else {
            asked
        })
    }

    async fn changes(&self, ctx: &Ctx<'_>, inv: &Invocation) -> Option<String> {
        let inv = queue::without_queue_words(inv);
        let Target::Env { env, pools } = &inv.target else {
            return None;
        };
        changes::for_deploy(ctx, env, pools, &git_ref(&inv)).await
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
        let state: DeployRun = match serde_json::from_value(run.state.clone()) {
            Ok(s) => s,
            Err(_) => {
                let driver = Driver::resume(ctx, &run, None);
                driver.finish(RunStatus::Failed, run.state.clone()).await;
                return Reply::message(
                    Outcome::Failed,
                    ":x: A deploy could not be continued after a restart: its saved state is unreadable. Nothing more was done; check `status`.",
                );
            }
        };
        let Some(env) = ctx.config().env(&state.env) else {
            return Rejection::NoSuchEnvironment(state.env.clone()).reply();
        };
        // The lock is still the run's unless it lapsed and someone else took it.
        let lock = reclaim(ctx, &state.lock).await;
        let driver = Driver::resume(ctx, &run, lock.clone());
        if lock.is_none() {
            driver.finish(RunStatus::Failed, run.state.clone()).await;
            return Reply::message(
                Outcome::Failed,
                format!(
                    ":x: The deploy of `{}` to *{}* could not go on after a restart: the environment is locked by someone else now. Check `status {}`.",
                    state.git_ref, env.name, env.name
                ),
            );
        }
        tracing::info!(run = %run.id, env = %env.name, "resuming a deploy taken over from another replica");
        let mut state = state;
        for p in &mut state.pools {
            // Left between "about to trigger" and hearing back: whether a build started
            // is unknown, and starting another could build twice.
            if p.step == Step::Triggering || (p.step == Step::Building && p.build.is_none()) {
                let active = p.from.clone().unwrap_or_default();
                let target = p.to.clone().unwrap_or_default();
                p.step = Step::Failed;
                p.line = format!("• {}: {active} → {target} — :x: build lost", p.pool);
                p.failure = Some(format!(
                    ":x: *{}*: step 2/4 (build) failed: I lost track of the build of {target} when the replica running this deploy stopped; it may or may not have started. Traffic stays on {active}; check Jenkins before deploying again.",
                    p.pool
                ));
            }
        }
        drive(ctx, driver, &inv, env, state).await
    }
}

/// Where one pool's deploy stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Step {
    /// Not started.
    Waiting,
    /// About to trigger (or triggered, not yet heard back): the build's place is unknown.
    Triggering,
    /// The build is queued or running at `build`.
    Building,
    /// Built: health-gating the new member.
    Gating,
    /// Healthy: switching traffic and reading it back.
    Switching,
    /// Traffic is on the new member.
    Done,
    /// Stopped; traffic stayed (or was not confirmed to move).
    Failed,
}

/// One pool of a deploy, as saved.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PoolRun {
    pool: String,
    /// Its region, in an environment with regions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    region: Option<String>,
    /// Switched, then moved back by the rollout's `on_failure: rollback`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    rolled_back: bool,
    step: Step,
    /// Active before the deploy.
    from: Option<String>,
    /// Being built and switched to.
    to: Option<String>,
    /// Where the build was last seen.
    build: Option<BuildRef>,
    /// The finished build: number and page.
    built: Option<(u64, String)>,
    /// Milliseconds spent building, gating, switching.
    took_ms: [u64; 3],
    /// Its line in the progress message.
    line: String,
    /// Why it failed.
    failure: Option<String>,
}

/// A deploy, as saved after every step.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DeployRun {
    git_ref: String,
    env: String,
    pools: Vec<PoolRun>,
    began_ms: u64,
    lock: Lock,
    /// The post-switch watch, once every pool has switched.
    #[serde(default)]
    watch: Option<Vec<Watched>>,
    /// The commits it ships, as far as known.
    #[serde(default)]
    changes: Option<Changes>,
    /// Region by region, when the environment has regions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rollout: Option<rollout::Plan>,
}

impl DeployRun {
    fn board(&self, user: &str) -> Board {
        let title = format!(
            ":rocket: Deploying `{}` to *{}* for <@{user}>",
            self.git_ref, self.env
        );
        let mut board = match &self.rollout {
            Some(plan) => plan.board(self, title),
            None => Board {
                title,
                lines: self.pools.iter().map(|p| p.line.clone()).collect(),
                rows: None,
            },
        };
        // What it ships, under the pools' lines.
        board
            .lines
            .extend(self.changes.as_ref().map(Changes::render));
        board
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    u64::try_from(
        t.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or_default()
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// One line per pool in the progress message (a rollout's adds a line per region).
struct Board {
    title: String,
    lines: Vec<String>,
    /// Where each pool's line is, when not at its own index.
    rows: Option<Vec<usize>>,
}

impl Board {
    fn reply(&self, outcome: Outcome) -> Reply {
        Reply::message(
            outcome,
            format!("{}\n{}", self.title, self.lines.join("\n")),
        )
    }
    /// The progress message as it would read with pool `i`'s line replaced by `line`.
    fn with_line(&self, i: usize, line: String) -> Reply {
        let mut lines = self.lines.clone();
        // A rollout's board has a heading line per region: pool `i` sits below them.
        let at = self
            .rows
            .as_ref()
            .and_then(|r| r.get(i).copied())
            .unwrap_or(i);
        if let Some(l) = lines.get_mut(at) {
            *l = line;
        }
        Reply::message(
            Outcome::Progress,
            format!("{}\n{}", self.title, lines.join("\n")),
        )
    }
}

/// `deploy <env> [region] [pools] [ref]`: takes the lock (of the whole environment,
/// whatever the region), records the run, drives it.
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
    let plain = queue::without_queue_words(asked);
    let inv = &plain;
    let plan = match rollout::Plan::for_deploy(env, region) {
        Ok(plan) => plan,
        Err(refusal) => return refusal,
    };
    let git_ref = git_ref(inv);
    let now = ctx.now();
    let id = Driver::new_id(ctx);
    let lock = match take_for_run(ctx, &env.name, "deploy", format!("deploy {git_ref}"), &id).await
    {
        Ok(lock) => lock,
        // Busy: wait in line when asked to, else offer to.
        Err(refusal) => return queue::when_locked(ctx, asked, refusal).await,
    };
    let places: Vec<Option<String>> = match &plan {
        Some(plan) => plan.regions().into_iter().map(Some).collect(),
        None => vec![None],
    };
    let state = DeployRun {
        git_ref,
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
                        line: format!("• {}: waiting", label(region.as_deref(), &p.name)),
                        failure: None,
                    })
            })
            .collect(),
        began_ms: unix_ms(now),
        lock: lock.clone(),
        watch: None,
        changes: None,
        rollout: plan,
    };
    let mut state = state;
    state.changes = Some(changes::before_build(ctx, env, pools, &state.git_ref).await);
    let driver = match Driver::start(
        ctx,
        id,
        "deploy",
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
                    "I could not record the deploy: {}. Nothing was changed.",
                    told(&e)
                ),
            );
        }
    };
    drive(ctx, driver, inv, env, state).await
}

fn strip(s: &str) -> String {
    s.replace(":x: ", "")
}

/// `api`, or `eu api` in a region.
fn label(region: Option<&str>, pool: &str) -> String {
    match region {
        Some(r) => format!("{r} {pool}"),
        None => pool.to_owned(),
    }
}

/// Drives a deploy from where `state` stands to its end: each pool in turn, each step
/// saved before the next begins.
async fn drive(
    ctx: &Ctx<'_>,
    driver: Driver,
    inv: &Invocation,
    env: &Environment,
    mut state: DeployRun,
) -> Reply {
    if state.rollout.is_some() {
        return rollout::drive(ctx, driver, inv, env, state).await;
    }
    let began = SystemTime::UNIX_EPOCH + Duration::from_millis(state.began_ms);
    for i in 0..state.pools.len() {
        if let Err(()) = advance(ctx, &driver, env, &mut state, i).await {
            return taken_over(&state);
        }
        if state.pools[i].step == Step::Failed {
            let failure = state.pools[i].failure.clone().unwrap_or_default();
            let board = state.board(ctx.user);
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
            let mut reply = board.reply(Outcome::Failed).text(failure.clone());
            if !done.is_empty() {
                reply = reply.context(format!(
                    "Already switched: {}. `rollback {}` moves them back.",
                    done.join(", "),
                    env.name
                ));
            }
            let took = ctx.now().duration_since(began).unwrap_or_default();
            ctx.audit_run(
                inv,
                &format!("failed: {}", strip(&failure)),
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
            return reply;
        }
    }
    // 5. Watch what moved: a deploy is done only after the watch.
    let Ok(watched) = watch_switched(ctx, &driver, env, &mut state).await else {
        return taken_over(&state);
    };
    let total = ctx.now().duration_since(began).unwrap_or_default();
    let sum = |k: usize| Duration::from_millis(state.pools.iter().map(|p| p.took_ms[k]).sum());
    let watching = watch::took(&watched, ctx.now());
    let overhead = total.saturating_sub(sum(0) + sum(1) + watching);
    let mut board = state.board(ctx.user);
    board.lines.extend(watch::lines(&watched));
    let troubled = watch::troubled(&watched);
    let outcome = if troubled {
        board.title = if watch::rolled_back(&watched) {
            format!(
                ":rewind: Deployed `{}` to *{}*, then rolled back: the new member turned unhealthy after the switch",
                state.git_ref, env.name
            )
        } else {
            format!(
                ":rotating_light: Deployed `{}` to *{}*, but the new member turned unhealthy after the switch",
                state.git_ref, env.name
            )
        };
        let why = watch::trouble(&watched).unwrap_or_default();
        ctx.audit_run(inv, &format!("failed: {why}"), links(&state), Some(total))
            .await;
        Outcome::Failed
    } else {
        ctx.audit_run(inv, "ok", links(&state), Some(total)).await;
        board.title = format!(
            ":white_check_mark: Deployed `{}` to *{}* in {}",
            state.git_ref,
            env.name,
            human(total)
        );
        Outcome::Done
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
    let watch_time = if watched.is_empty() {
        String::new()
    } else {
        format!(" · watch {}", human(watching))
    };
    board
        .reply(outcome)
        .context(format!(
            "build {} · health gate {} · switch {}{watch_time} · bot overhead {}",
            human(sum(0)),
            human(sum(1)),
            human(sum(2)),
            human(overhead)
        ))
        .buttons(button.into_iter().collect())
}

/// Watches every pool the deploy switched (those with `watch:` configured), saving the
/// watch with the run; `Err` when the run was taken over.
async fn watch_switched(
    ctx: &Ctx<'_>,
    driver: &Driver,
    env: &Environment,
    state: &mut DeployRun,
) -> Result<Vec<Watched>, ()> {
    let mut watched = match state.watch.clone() {
        Some(w) => w,
        None => {
            let moves: Vec<(String, String, String)> = state
                .pools
                .iter()
                .filter(|p| p.step == Step::Done)
                .filter_map(|p| Some((p.pool.clone(), p.from.clone()?, p.to.clone()?)))
                .collect();
            let planned = watch::plan(ctx, &env.name, &moves);
            state.watch = Some(planned.clone());
            save(driver, state).await?;
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
    let board = state.board(ctx.user);
    let render = |lines: &[String]| {
        let mut all = board.lines.clone();
        all.extend(lines.iter().cloned());
        Reply::message(
            Outcome::Progress,
            format!("{}\n{}", board.title, all.join("\n")),
        )
    };
    watch::run(ctx, env, &mut watched, &save_watch, &render).await?;
    state.watch = Some(watched.clone());
    Ok(watched)
}

/// Every build link of a deploy, in order.
fn links(state: &DeployRun) -> Vec<String> {
    state
        .pools
        .iter()
        .filter_map(|p| p.built.as_ref().map(|(_, url)| url.clone()))
        .collect()
}

/// The reply of a driver whose run another replica took over: it says no more.
fn taken_over(state: &DeployRun) -> Reply {
    Reply::message(
        Outcome::Progress,
        format!(
            ":rocket: Deploying `{}` to *{}*\n:arrows_counterclockwise: continued by another replica",
            state.git_ref, state.env
        ),
    )
}

/// Saves `state`; `Err` when another replica took the run over.
async fn save(driver: &Driver, state: &DeployRun) -> Result<(), ()> {
    if driver
        .save(serde_json::to_value(state).unwrap_or_default())
        .await
    {
        Ok(())
    } else {
        Err(())
    }
}

/// Marks pool `i` failed with `line` and the reason `why`.
fn fail(state: &mut DeployRun, i: usize, line: String, why: String) {
    let p = &mut state.pools[i];
    p.step = Step::Failed;
    p.line = line;
    p.failure = Some(why);
}

/// Takes pool `i` through its remaining steps, saving after each; stops at `Done` or
/// `Failed`. `Err` when the run was taken over.
async fn advance(
    ctx: &Ctx<'_>,
    driver: &Driver,
    env: &Environment,
    state: &mut DeployRun,
    i: usize,
) -> Result<(), ()> {
    let region = state.pools[i].region.clone();
    let Some(pool) = env
        .pools_in(region.as_deref())
        .and_then(|pools| pools.iter().find(|p| p.name == state.pools[i].pool))
    else {
        let name = label(region.as_deref(), &state.pools[i].pool);
        fail(
            state,
            i,
            format!("• {name}: :x: no longer configured"),
            format!(":x: *{name}*: this pool is no longer configured. Nothing more was changed."),
        );
        return save(driver, state).await;
    };
    let name = label(region.as_deref(), &pool.name);
    loop {
        let p = state.pools[i].clone();
        let prefix = format!(
            "• {name}: {} → {}",
            p.from.as_deref().unwrap_or("?"),
            p.to.as_deref().unwrap_or("?")
        );
        match p.step {
            Step::Done | Step::Failed => return Ok(()),
            Step::Waiting => {
                // 1. Read the switch.
                let active = match ctx
                    .active_at(&env.name, region.as_deref(), &pool.name)
                    .await
                {
                    Ok(a) => a,
                    Err(e) => {
                        fail(
                            state,
                            i,
                            format!("• {name}: :x: cannot read the switch"),
                            format!(
                                ":x: *{name}*: step 1/4 (read the switch) failed: {}. Nothing was changed.",
                                told(&e)
                            ),
                        );
                        return save(driver, state).await;
                    }
                };
                let Some(target) = next_member(pool, &active) else {
                    fail(
                        state,
                        i,
                        format!("• {name}: :x: no inactive member"),
                        format!(
                            ":x: *{name}*: has no inactive member to build. Nothing was changed."
                        ),
                    );
                    return save(driver, state).await;
                };
                let p = &mut state.pools[i];
                p.from = Some(active);
                p.to = Some(target);
                p.step = Step::Triggering;
                save(driver, state).await?;
            }
            Step::Triggering | Step::Building => {
                // 2. Build (or re-attach to the build started before a restart).
                let Some(job) = pool.deploy.as_ref() else {
                    fail(
                        state,
                        i,
                        format!("{prefix} — :x: no deploy job"),
                        format!(":x: *{name}*: no `deploy` job is configured for this pool. Nothing was changed."),
                    );
                    return save(driver, state).await;
                };
                let active = p.from.clone().unwrap_or_default();
                let target = p.to.clone().unwrap_or_default();
                let reattach = match (p.step, &p.build) {
                    (Step::Building, Some(at)) => Some(at.clone()),
                    _ => None,
                };
                let instance = format!("{}-{target}", pool.name);
                let vars = [
                    ("env", env.name.as_str()),
                    ("region", region.as_deref().unwrap_or("")),
                    ("pool", pool.name.as_str()),
                    ("colour", target.as_str()),
                    ("color", target.as_str()),
                    ("instance", instance.as_str()),
                    ("ref", state.git_ref.as_str()),
                    ("user", ctx.user),
                ];
                let start = match reattach {
                    Some(at) => Start::Reattach(at),
                    None => Start::Trigger(&vars),
                };
                let board = state.board(ctx.user);
                let snapshot = state.clone();
                let record = |at: BuildRef| -> BoxFuture<'_, ()> {
                    let mut s = snapshot.clone();
                    s.pools[i].step = Step::Building;
                    s.pools[i].build = Some(at);
                    Box::pin(async move {
                        driver
                            .save(serde_json::to_value(&s).unwrap_or_default())
                            .await;
                    })
                };
                let (result, took) = follow_job(
                    ctx,
                    job,
                    start,
                    |line| board.with_line(i, format!("{prefix} — {line}")),
                    &record,
                )
                .await;
                if driver.lost() {
                    return Err(());
                }
                let p = &mut state.pools[i];
                p.took_ms[0] = ms(took);
                match result {
                    Ok(b) if b.result.is_success() => {
                        p.built = Some((b.number, b.url.clone()));
                        p.step = Step::Gating;
                        // No list before the build: the build's change set says.
                        if matches!(state.changes, Some(Changes::AfterBuild { .. })) {
                            state.changes =
                                Some(changes::from_build(ctx, &job.job, b.number, &b.url).await);
                        }
                        save(driver, state).await?;
                    }
                    Ok(b) => {
                        p.built = Some((b.number, b.url.clone()));
                        let why = format!(
                            ":x: *{name}*: step 2/4 (build) failed: build <{}|#{}> of `{}` ended {}. Traffic stays on {active}. <{}|Console>",
                            b.url, b.number, job.job, b.result.as_str(), b.console_url
                        );
                        fail(
                            state,
                            i,
                            format!("{prefix} — :x: build #{} {}", b.number, b.result.as_str()),
                            why,
                        );
                        return save(driver, state).await;
                    }
                    Err(e) => {
                        let why = format!(
                            ":x: *{name}*: step 2/4 (build) failed: {}. Traffic stays on {active}.",
                            told(&e)
                        );
                        fail(state, i, format!("{prefix} — :x: build did not run"), why);
                        return save(driver, state).await;
                    }
                }
            }
            Step::Gating => {
                // 3. Health gate.
                let target = p.to.clone().unwrap_or_default();
                let active = p.from.clone().unwrap_or_default();
                let (number, url) = p.built.clone().unwrap_or_default();
                let consecutive = ctx.config().settings.gate_consecutive;
                state.pools[i].line =
                    format!("{prefix} — build <{url}|#{number}> ok, health gate 0/{consecutive}");
                let board = state.board(ctx.user);
                ctx.progress.update(&board.reply(Outcome::Progress)).await;
                let render = |streak: u32, what: &str| {
                    board.with_line(
                        i,
                        format!(
                            "{prefix} — build <{url}|#{number}> ok, health gate {streak}/{consecutive} ({what})"
                        ),
                    )
                };
                match gate(ctx, pool, &target, consecutive, &render).await {
                    Ok(t) => {
                        state.pools[i].took_ms[1] = ms(t);
                        state.pools[i].step = Step::Switching;
                        save(driver, state).await?;
                    }
                    Err(why) => {
                        let why = format!(
                            ":x: *{name}*: step 3/4 (health gate) failed: {why}. Traffic stays on {active}. Build <{url}|#{number}>."
                        );
                        fail(state, i, format!("{prefix} — :x: health gate failed"), why);
                        return save(driver, state).await;
                    }
                }
            }
            Step::Switching => {
                // 4. Switch and read back (idempotent: safe to do again after a restart).
                let target = p.to.clone().unwrap_or_default();
                let active = p.from.clone().unwrap_or_default();
                state.pools[i].line = format!("{prefix} — healthy, switching traffic");
                ctx.progress
                    .update(&state.board(ctx.user).reply(Outcome::Progress))
                    .await;
                match switch_and_verify(ctx, env, pool, &target).await {
                    Ok(t) => {
                        let (number, url) = p.built.clone().unwrap_or_default();
                        let p = &mut state.pools[i];
                        p.took_ms[2] = ms(t);
                        p.step = Step::Done;
                        p.line = format!(
                            "• {name}: {active} → *{target}* :white_check_mark: build <{url}|#{number}>, healthy, traffic switched"
                        );
                        return save(driver, state).await;
                    }
                    Err(e) => {
                        let why = format!(
                            ":x: *{name}*: step 4/4 (switch) failed: {}. I could not confirm traffic moved; check `status {}`.",
                            told(&e),
                            env.name
                        );
                        fail(state, i, format!("{prefix} — :x: switch failed"), why);
                        return save(driver, state).await;
                    }
                }
            }
        }
    }
}

/// Probes `member` until `consecutive` healthy answers in a row, or `timeout`.
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
            last = verdict.problem().unwrap_or_default();
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
