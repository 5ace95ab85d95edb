//! Moving one pool's traffic, shared by deploy, rollout, rollback, switch and the post-switch watch: which member comes next, and switching then reading the switch back.

use std::time::{Duration, Instant};

use crate::config::{Environment, Pool};
use crate::context::Ctx;
use crate::ports::SwitchError;

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
    let region = pool.region.as_deref();
    let switched = ctx
        .switch_at(&env.name, region, &pool.name)?
        .switch_to(env, pool, member)
        .await;
    // Moved or maybe moved: a status from before is not shown after.
    ctx.backends.status_cache.moved();
    switched?;
    let now_active = ctx.active_at(&env.name, region, &pool.name).await?;
    if now_active != member {
        return Err(SwitchError::NotApplied(format!(
            "asked for {member}, the switch reports {now_active}"
        )));
    }
    Ok(started.elapsed())
}
