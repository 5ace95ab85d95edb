//! `deploy`: blue/green under an environment lock — build the inactive member,
//! health-gate it, switch, read the switch back. Any failure stops before the switch
//! and says which step failed and why.

use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::actions::health::probe;
use crate::actions::jobs::run_job;
use crate::actions::locks::{lease_for, with_lock};
use crate::actions::traffic::{next_member, switch_and_verify};
use crate::config::{CommandSpec, Config, Environment, Pool};
use crate::context::{Action, Ctx};
use crate::failure::told;
use crate::rejection::Rejection;
use crate::reply::{Invocation, Outcome, Reply, Target};
use crate::text::human;

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
    let Target::Env { env, pools } = &inv.target else {
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
        _ => format!("Really `{}`?", inv.as_text()),
    }
}

/// `deploy <env> [pools] [ref]`.
pub(crate) struct Deploy;

#[async_trait]
impl Action for Deploy {
    fn check(&self, config: &Config, inv: &Invocation) -> Result<(), Rejection> {
        check(config, inv)
    }

    fn question(&self, _: &Config, inv: &Invocation) -> Option<String> {
        Some(question(inv))
    }

    async fn run(&self, ctx: &Ctx<'_>, cmd: &CommandSpec, inv: Invocation) -> Reply {
        match &inv.target {
            Target::Env { env, pools } => deploy(ctx, &inv, env, pools).await,
            other => Rejection::unsupported(&cmd.name, other).reply(),
        }
    }
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

/// `deploy <env> [pools] [ref]`.
async fn deploy(ctx: &Ctx<'_>, inv: &Invocation, env_name: &str, pools: &[String]) -> Reply {
    let Some(env) = ctx.config().env(env_name) else {
        return Rejection::NoSuchEnvironment(env_name.to_owned()).reply();
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
                        ctx.audit_run(
                            inv,
                            &format!("failed: {}", strip(&failure)),
                            links.clone(),
                            Some(started.elapsed()),
                        )
                        .await;
                        return reply;
                    }
                }
            }
            let total = started.elapsed();
            let overhead = total.saturating_sub(timings.build + timings.gate);
            ctx.audit_run(inv, "ok", links.clone(), Some(total)).await;
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
        format!(
            ":x: *{name}*: step 1/4 (read the switch) failed: {}. Nothing was changed.",
            told(&e)
        )
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
                ":x: *{name}*: step 2/4 (build) failed: {}. Traffic stays on {active}.",
                told(&e)
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
                ":x: *{name}*: step 4/4 (switch) failed: {}. I could not confirm traffic moved; check `status {}`.",
                told(&e),
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
