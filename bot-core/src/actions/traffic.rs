//! `rollback` and `switch`: move a pool's traffic after health-checking the
//! destination, under the environment lock, and read the switch back.

use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::actions::health::probe;
use crate::actions::locks::{lease_for, with_lock};
use crate::config::{CommandSpec, Environment, Pool};
use crate::context::{Action, Ctx};
use crate::failure::told;
use crate::ports::SwitchError;
use crate::rejection::Rejection;
use crate::reply::{Invocation, Outcome, Reply, Target};
use crate::text::human;

/// The member a deploy builds (and `rollback` returns to): the one after the active
/// member, in file order.
pub(crate) fn next_member(pool: &Pool, active: &str) -> Option<String> {
    let i = pool.members.iter().position(|m| m.name == active)?;
    pool.members
        .get((i + 1) % pool.members.len())
        .map(|m| m.name.clone())
        .filter(|m| m != active)
}

/// Switches and then reads the switch back; returns how long it took.
pub(crate) async fn switch_and_verify(
    ctx: &Ctx<'_>,
    env: &Environment,
    pool: &Pool,
    member: &str,
) -> Result<Duration, SwitchError> {
    let started = Instant::now();
    ctx.switch(&env.name, &pool.name)?
        .switch_to(env, pool, member)
        .await?;
    let now_active = ctx.active(&env.name, &pool.name).await?;
    if now_active != member {
        return Err(SwitchError::NotApplied(format!(
            "asked for {member}, the switch reports {now_active}"
        )));
    }
    Ok(started.elapsed())
}

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
        match &inv.target {
            Target::Env { env, pools } => move_traffic(ctx, &inv, env, pools, None, true).await,
            other => Rejection::unsupported(&cmd.name, other).reply(),
        }
    }
}

/// `switch <env> [pool] [member]`.
pub(crate) struct Switch;

#[async_trait]
impl Action for Switch {
    async fn run(&self, ctx: &Ctx<'_>, cmd: &CommandSpec, inv: Invocation) -> Reply {
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
}

/// `rollback <env> [pools]` and `switch <env> <pool> [member]`: health-check the destination, switch, verify.
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
        let mut moved = 0;
        for pool in &pools {
            let active = match ctx.active(&env.name, &pool.name).await {
                Ok(a) => a,
                Err(e) => {
                    let shown = told(&e);
                    let r = Reply::message(Outcome::Failed, format!(":x: *{} {}*: cannot read the switch: {shown}. Nothing was changed.", env.name, pool.name));
                    ctx.audit(inv, &format!("failed: {shown}"), None).await;
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
                ctx.audit(inv, &format!("refused: {target} unhealthy"), None).await;
                return Reply::message(
                    Outcome::Failed,
                    format!(":x: *{} {}*: {target} is not healthy ({why}), so traffic stays on {active}.", env.name, pool.name),
                )
                .text(lines.join("\n"));
            }
            match switch_and_verify(ctx, env, pool, &target).await {
                Ok(t) => {
                    moved += 1;
                    lines.push(format!("• {}: {active} → *{target}* :white_check_mark: ({})", pool.name, human(t)));
                }
                Err(e) => {
                    let shown = told(&e);
                    ctx.audit(inv, &format!("failed: {shown}"), None).await;
                    return Reply::message(
                        Outcome::Failed,
                        format!(":x: *{} {}*: switching to {target} failed: {shown}. Check `status {}`.", env.name, pool.name, env.name),
                    )
                    .text(lines.join("\n"));
                }
            }
        }
        if moved == 0 {
            ctx.audit(inv, "nothing to move", None).await;
            let lines = if lines.is_empty() { "Nothing to move.".to_owned() } else { lines.join("\n") };
            return Reply::message(Outcome::Info, format!("Traffic of *{}* stays where it is:", env.name)).text(lines);
        }
        ctx.audit(inv, "ok", None).await;
        let title = if rollback { format!(":rewind: Rolled back *{}*", env.name) } else { format!(":twisted_rightwards_arrows: Switched *{}*", env.name) };
        Reply::message(Outcome::Done, title).text(lines.join("\n"))
    })
    .await
}
