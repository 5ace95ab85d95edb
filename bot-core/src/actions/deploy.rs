//! `deploy`, `rollback` and `switch`: blue/green under an environment lock —
//! build the inactive member, health-gate it, switch, read the switch back.
//! Any failure stops before the switch and says which step failed and why.

use std::time::{Duration, Instant};

use crate::actions::health::probe;
use crate::actions::jobs::run_job;
use crate::backends::{Lock, LockOutcome, SwitchError};
use crate::config::{Environment, Pool};
use crate::engine::{audit, human, Ctx};
use crate::reply::{Invocation, Outcome, Reply};

/// Git ref built when none is given.
const DEFAULT_REF: &str = "main";

/// The git ref a deploy builds: `ref=…`, else the one word given, else [`DEFAULT_REF`].
pub(crate) fn git_ref(inv: &Invocation) -> String {
    inv.params
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("ref"))
        .map(|(_, v)| v.clone())
        .or_else(|| inv.args.first().cloned())
        .unwrap_or_else(|| DEFAULT_REF.to_owned())
}

/// Checks a deploy before anything runs (and before asking for confirmation): one ref
/// at most, and every pool it touches has a deploy job.
pub(crate) fn check(config: &crate::config::Config, inv: &Invocation) -> Result<(), Reply> {
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
        let words: Vec<String> = extra.iter().map(|w| format!("`{w}`")).collect();
        return Err(Reply::message(
            Outcome::Rejected,
            format!(
                "I didn't understand {} — `deploy` takes an environment, optionally pools, and one git ref (or `ref=…`).",
                words.join(", ")
            ),
        ));
    }
    let crate::reply::Target::Env { env, pools } = &inv.target else {
        return Ok(());
    };
    let Some(env) = config.env(env) else {
        return Ok(());
    };
    let missing: Vec<&str> = env
        .pools
        .iter()
        .filter(|p| pools.is_empty() || pools.contains(&p.name))
        .filter(|p| p.deploy.is_none())
        .map(|p| p.name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(Reply::message(
            Outcome::Rejected,
            format!(
                "No `deploy` job is configured for {} in *{}*, so I deploy nothing. Name the pools to deploy, e.g. `deploy {} {}`.",
                missing.join(", "),
                env.name,
                env.name,
                env.pools.iter().find(|p| p.deploy.is_some()).map_or("api", |p| p.name.as_str())
            ),
        ));
    }
    Ok(())
}

/// Times of one pool's deploy, for the report (and for measuring the bot's own overhead).
#[derive(Default, Clone, Copy)]
struct Timings {
    build: Duration,
    gate: Duration,
    switch: Duration,
}

/// One line per pool in the progress message.
struct Board {
    title: String,
    lines: Vec<String>,
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
        if let Some(l) = lines.get_mut(i) {
            *l = line;
        }
        Reply::message(
            Outcome::Progress,
            format!("{}\n{}", self.title, lines.join("\n")),
        )
    }
    async fn set(&mut self, ctx: &Ctx<'_>, i: usize, line: String) {
        let reply = self.with_line(i, line.clone());
        if let Some(l) = self.lines.get_mut(i) {
            *l = line;
        }
        ctx.progress.update(&reply).await;
    }
}

/// Takes the environment lock for the duration of `f` (leased for `lease`, which must
/// outlast the action); refuses, naming the holder, when someone holds it. Only this
/// action's own lock is released at the end, never one taken by someone else meanwhile.
async fn with_lock<'a, F, Fut>(
    ctx: &'a Ctx<'a>,
    env: &str,
    action: &str,
    why: &str,
    lease: Duration,
    f: F,
) -> Reply
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Reply>,
{
    let now = ctx.now();
    let lock = Lock {
        env: env.to_owned(),
        holder: ctx.user.to_owned(),
        reason: why.to_owned(),
        since: now,
        expires: now + lease,
        action: Some(action.to_owned()),
    };
    match ctx.b.store.try_lock(lock.clone(), now).await {
        Ok(LockOutcome::Acquired) => {}
        Ok(LockOutcome::HeldBy(held)) => return super::locks::locked_reply(now, &held),
        Err(e) => {
            return Reply::message(
                Outcome::Failed,
                format!("I could not lock *{env}*: {e}. Nothing was changed."),
            )
        }
    }
    let reply = f().await;
    match ctx.b.store.release(&lock).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(env, "the lock had lapsed before the action finished"),
        Err(e) => tracing::error!(env, error = %e, "could not release lock"),
    }
    reply
}

/// A lease long enough for every step of an action on `pools` pools: each build may
/// take Jenkins' whole timeout and each gate its whole timeout.
fn lease_for(ctx: &Ctx<'_>, pools: usize) -> Duration {
    let settings = &ctx.config().settings;
    let build = ctx
        .config()
        .jenkins
        .as_ref()
        .map_or(Duration::from_secs(30 * 60), |j| j.timeout);
    let per_pool = build + settings.gate_timeout + Duration::from_secs(60);
    settings
        .lock_lease
        .max(per_pool * u32::try_from(pools.max(1)).unwrap_or(u32::MAX))
}

/// The member a deploy builds: the one after the active member, in file order.
fn next_member(pool: &Pool, active: &str) -> Option<String> {
    let i = pool.members.iter().position(|m| m.name == active)?;
    pool.members
        .get((i + 1) % pool.members.len())
        .map(|m| m.name.clone())
        .filter(|m| m != active)
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

/// Switches and then reads the switch back; returns how long it took.
async fn switch_and_verify(
    ctx: &Ctx<'_>,
    env: &Environment,
    pool: &Pool,
    member: &str,
) -> Result<Duration, SwitchError> {
    let started = Instant::now();
    let key = (env.name.clone(), pool.name.clone());
    let sw =
        ctx.engine.switches.get(&key).ok_or_else(|| {
            SwitchError::Unknown(format!("no switch for {} {}", env.name, pool.name))
        })?;
    sw.switch_to(env, pool, member).await?;
    let now_active = ctx.active(&env.name, &pool.name).await?;
    if now_active != member {
        return Err(SwitchError::NotApplied(format!(
            "asked for {member}, the switch reports {now_active}"
        )));
    }
    if let Err(e) = ctx
        .b
        .store
        .set_last_active(&env.name, &pool.name, member)
        .await
    {
        tracing::warn!(error = %e, "could not record the active member");
    }
    Ok(started.elapsed())
}

/// `deploy <env> [pools] [ref]`.
pub(crate) async fn deploy(
    ctx: &Ctx<'_>,
    inv: &Invocation,
    env_name: &str,
    pools: &[String],
) -> Reply {
    let Some(env) = ctx.config().env(env_name) else {
        return Reply::message(
            Outcome::Rejected,
            format!("There is no environment {env_name}."),
        );
    };
    let git_ref = git_ref(inv);
    let pools: Vec<&Pool> = env
        .pools
        .iter()
        .filter(|p| pools.is_empty() || pools.contains(&p.name))
        .collect();
    let why = format!("deploy {git_ref}");
    with_lock(
        ctx,
        &env.name,
        "deploy",
        &why,
        lease_for(ctx, pools.len()),
        || async {
            let started = Instant::now();
            let mut board = Board {
                title: format!(
                    ":rocket: Deploying `{git_ref}` to *{}* for <@{}>",
                    env.name, ctx.user
                ),
                lines: pools
                    .iter()
                    .map(|p| format!("• {}: waiting", p.name))
                    .collect(),
            };
            let mut done = Vec::new();
            let mut timings = Timings::default();
            let mut links = Vec::new();
            for (i, pool) in pools.iter().enumerate() {
                match deploy_pool(ctx, env, pool, &git_ref, &mut board, i).await {
                    Ok((line, t, link)) => {
                        timings.build += t.build;
                        timings.gate += t.gate;
                        timings.switch += t.switch;
                        links.push(link);
                        done.push(line);
                    }
                    Err(failure) => {
                        let mut reply = board.reply(Outcome::Failed).text(failure.clone());
                        if !done.is_empty() {
                            reply = reply.context(format!(
                                "Already switched: {}. `rollback {}` moves them back.",
                                done.join(", "),
                                env.name
                            ));
                        }
                        audit(
                            ctx,
                            inv,
                            &format!("failed: {}", strip(&failure)),
                            links.last().cloned(),
                        )
                        .await;
                        return reply;
                    }
                }
            }
            let total = started.elapsed();
            let overhead = total.saturating_sub(timings.build + timings.gate);
            audit(ctx, inv, "ok", links.last().cloned()).await;
            board.title = format!(
                ":white_check_mark: Deployed `{git_ref}` to *{}* in {}",
                env.name,
                human(total)
            );
            board.reply(Outcome::Done).context(format!(
                "build {} · health gate {} · switch {} · bot overhead {}",
                human(timings.build),
                human(timings.gate),
                human(timings.switch),
                human(overhead)
            ))
        },
    )
    .await
}

fn strip(s: &str) -> String {
    s.replace(":x: ", "")
}

/// Deploys one pool; on success returns a summary line, its timings and the build link.
async fn deploy_pool(
    ctx: &Ctx<'_>,
    env: &Environment,
    pool: &Pool,
    git_ref: &str,
    board: &mut Board,
    i: usize,
) -> Result<(String, Timings, String), String> {
    let name = &pool.name;
    let active = ctx.active(&env.name, name).await.map_err(|e| {
        format!(":x: *{name}*: step 1/4 (read the switch) failed: {e}. Nothing was changed.")
    })?;
    let target = next_member(pool, &active).ok_or_else(|| {
        format!(":x: *{name}*: has no inactive member to build. Nothing was changed.")
    })?;
    let job = pool.deploy.as_ref().ok_or_else(|| {
        format!(":x: *{name}*: no `deploy` job is configured for this pool. Nothing was changed.")
    })?;
    let instance = format!("{name}-{target}");
    let vars = [
        ("env", env.name.as_str()),
        ("pool", name.as_str()),
        ("colour", target.as_str()),
        ("color", target.as_str()),
        ("instance", instance.as_str()),
        ("ref", git_ref),
        ("user", ctx.user),
    ];
    // 2. Build.
    let prefix = format!("• {name}: {active} → {target}");
    let (result, build_time) = run_job(ctx, job, &vars, |line| {
        board.with_line(i, format!("{prefix} — {line}"))
    })
    .await;
    let build = match result {
        Ok(b) if b.result.is_success() => b,
        Ok(b) => {
            board.lines[i] = format!("{prefix} — :x: build #{} {}", b.number, b.result.as_str());
            return Err(format!(
                ":x: *{name}*: step 2/4 (build) failed: build <{}|#{}> of `{}` ended {}. Traffic stays on {active}. <{}|Console>",
                b.url, b.number, job.job, b.result.as_str(), b.console_url
            ));
        }
        Err(e) => {
            board.lines[i] = format!("{prefix} — :x: build did not run");
            return Err(format!(
                ":x: *{name}*: step 2/4 (build) failed: {e}. Traffic stays on {active}."
            ));
        }
    };
    let link = build.url.clone();
    // 3. Health gate.
    let consecutive = ctx.config().settings.gate_consecutive;
    board
        .set(
            ctx,
            i,
            format!(
                "{prefix} — build <{}|#{}> ok, health gate 0/{consecutive}",
                build.url, build.number
            ),
        )
        .await;
    let gate_result = {
        let board = &*board;
        let render = |streak: u32, what: &str| {
            board.with_line(
                i,
                format!(
                    "{prefix} — build <{}|#{}> ok, health gate {streak}/{consecutive} ({what})",
                    build.url, build.number
                ),
            )
        };
        gate(ctx, pool, &target, consecutive, &render).await
    };
    let gate_time = match gate_result {
        Ok(t) => t,
        Err(why) => {
            board.lines[i] = format!("{prefix} — :x: health gate failed");
            return Err(format!(
                ":x: *{name}*: step 3/4 (health gate) failed: {why}. Traffic stays on {active}. Build <{}|#{}>.",
                build.url, build.number
            ));
        }
    };
    // 4. Switch and read back.
    board
        .set(ctx, i, format!("{prefix} — healthy, switching traffic"))
        .await;
    let switch_time = match switch_and_verify(ctx, env, pool, &target).await {
        Ok(t) => t,
        Err(e) => {
            board.lines[i] = format!("{prefix} — :x: switch failed");
            return Err(format!(
                ":x: *{name}*: step 4/4 (switch) failed: {e}. I could not confirm traffic moved; check `status {}`.",
                env.name
            ));
        }
    };
    let line = format!("{name} {active} → {target}");
    board.lines[i] = format!(
        "• {name}: {active} → *{target}* :white_check_mark: build <{}|#{}>, healthy, traffic switched",
        build.url, build.number
    );
    Ok((
        line,
        Timings {
            build: build_time,
            gate: gate_time,
            switch: switch_time,
        },
        link,
    ))
}

/// Which member `rollback` / `switch` moves to.
enum Destination {
    /// The member active before the last switch (rollback).
    Previous,
    /// A named member, or the other one when `None` (switch).
    Member(Option<String>),
}

/// `rollback <env> [pools]` and `switch <env> <pool> [member]`: health-check the destination, switch, verify.
pub(crate) async fn move_traffic(
    ctx: &Ctx<'_>,
    inv: &Invocation,
    env_name: &str,
    pools: &[String],
    member: Option<String>,
    rollback: bool,
) -> Reply {
    let Some(env) = ctx.config().env(env_name) else {
        return Reply::message(
            Outcome::Rejected,
            format!("There is no environment {env_name}."),
        );
    };
    let dest = if rollback {
        Destination::Previous
    } else {
        Destination::Member(member)
    };
    let pools: Vec<&Pool> = env
        .pools
        .iter()
        .filter(|p| pools.is_empty() || pools.contains(&p.name))
        .collect();
    let verb = if rollback { "rollback" } else { "switch" };
    with_lock(ctx, &env.name, verb, verb, lease_for(ctx, 0), || async {
        let mut lines = Vec::new();
        for pool in &pools {
            let active = match ctx.active(&env.name, &pool.name).await {
                Ok(a) => a,
                Err(e) => {
                    let r = Reply::message(Outcome::Failed, format!(":x: *{} {}*: cannot read the switch: {e}. Nothing was changed.", env.name, pool.name));
                    audit(ctx, inv, &format!("failed: {e}"), None).await;
                    return r;
                }
            };
            let target = match &dest {
                Destination::Member(Some(m)) => m.clone(),
                Destination::Member(None) | Destination::Previous => match next_member(pool, &active) {
                    Some(m) => m,
                    None => continue,
                },
            };
            if target == active {
                lines.push(format!("• {}: {target} is already active", pool.name));
                continue;
            }
            let Some(instance) = pool.members.iter().find(|m| m.name == target) else {
                continue;
            };
            let verdict = probe(ctx, instance).await;
            if !verdict.healthy {
                let why = verdict.problem().unwrap_or_default();
                audit(ctx, inv, &format!("refused: {target} unhealthy"), None).await;
                return Reply::message(
                    Outcome::Failed,
                    format!(":x: *{} {}*: {target} is not healthy ({why}), so traffic stays on {active}.", env.name, pool.name),
                )
                .text(lines.join("\n"));
            }
            match switch_and_verify(ctx, env, pool, &target).await {
                Ok(t) => lines.push(format!("• {}: {active} → *{target}* :white_check_mark: ({})", pool.name, human(t))),
                Err(e) => {
                    audit(ctx, inv, &format!("failed: {e}"), None).await;
                    return Reply::message(
                        Outcome::Failed,
                        format!(":x: *{} {}*: switching to {target} failed: {e}. Check `status {}`.", env.name, pool.name, env.name),
                    )
                    .text(lines.join("\n"));
                }
            }
        }
        audit(ctx, inv, "ok", None).await;
        let title = if rollback { format!(":rewind: Rolled back *{}*", env.name) } else { format!(":twisted_rightwards_arrows: Switched *{}*", env.name) };
        Reply::message(Outcome::Done, title).text(if lines.is_empty() { "Nothing to move.".to_owned() } else { lines.join("\n") })
    })
    .await
}
