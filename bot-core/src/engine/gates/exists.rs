//! Gate: the invocation still names something that exists (buttons outlive reloads).

use async_trait::async_trait;

use super::{Flow, Gate, Passage};
use crate::config::Config;
use crate::context::Ctx;
use crate::rejection::Rejection;
use crate::reply::{Invocation, Target};

/// Refuses an invocation whose target a reload took away.
pub(super) struct StillExists;

#[async_trait]
impl Gate for StillExists {
    async fn pass<'a>(&self, ctx: &Ctx<'a>, passage: Passage<'a>) -> Flow<'a> {
        match still_exists(ctx.config(), &passage.inv) {
            Ok(()) => Flow::On(passage),
            Err(gone) => Flow::Answer(gone.reply()),
        }
    }
}

/// Checks that an invocation still names something that exists.
fn still_exists(config: &Config, inv: &Invocation) -> Result<(), Rejection> {
    let missing = match &inv.target {
        Target::None => false,
        Target::Env { env, pools } => {
            config.env(env).is_none() || pools.iter().any(|p| config.pool(env, p).is_none())
        }
        Target::Pool { env, pool, member } => match config.pool(env, pool) {
            None => true,
            Some(p) => member
                .as_ref()
                .is_some_and(|m| !p.members.iter().any(|x| &x.name == m)),
        },
        Target::Instance(r) => config.instance(r).is_none(),
        Target::Region { env, region, pools } => {
            config.env(env).and_then(|e| e.region(region)).is_none()
                || pools.iter().any(|p| config.pool(env, p).is_none())
        }
    };
    if missing {
        return Err(Rejection::TargetGone {
            target: inv.target.to_string(),
        });
    }
    Ok(())
}
