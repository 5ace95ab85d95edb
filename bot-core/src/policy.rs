//! Safety policy: who may run what, and what needs a confirmation click first.

use crate::config::{ActionKind, CommandSpec, Config};
use crate::engine::{is_mutating, Ctx};
use crate::reply::{Invocation, Target};

fn in_any_group(config: &Config, groups: &[String], user: &str) -> bool {
    groups.iter().any(|g| {
        config
            .groups
            .get(g)
            .is_some_and(|members| members.iter().any(|m| m == user))
    })
}

/// Checks that `user` may run `cmd` on `target`: the command's `allowed` groups, and
/// for mutating actions the environment's `allowed` groups. Re-checked for whoever clicks a button.
pub fn permitted(
    config: &Config,
    cmd: &CommandSpec,
    target: &Target,
    user: &str,
) -> Result<(), String> {
    if !cmd.allowed.is_empty() && !in_any_group(config, &cmd.allowed, user) {
        return Err(format!(
            "Sorry <@{user}>, `{}` is limited to {}.",
            cmd.name,
            cmd.allowed
                .iter()
                .map(|g| format!("`{g}`"))
                .collect::<Vec<_>>()
                .join(" or ")
        ));
    }
    if is_mutating(&cmd.action) {
        if let Some(env) = target.env().and_then(|e| config.env(e)) {
            if !env.allowed.is_empty() && !in_any_group(config, &env.allowed, user) {
                return Err(format!(
                    "Sorry <@{user}>, changes to `{}` are limited to {}.",
                    env.name,
                    env.allowed
                        .iter()
                        .map(|g| format!("`{g}`"))
                        .collect::<Vec<_>>()
                        .join(" or ")
                ));
            }
        }
    }
    Ok(())
}

/// Whether `cmd` on `target` needs a confirmation click: commands marked `confirm`, and
/// traffic-moving actions on protected environments.
pub fn needs_confirmation(config: &Config, cmd: &CommandSpec, target: &Target) -> bool {
    if cmd.confirm {
        return true;
    }
    let protected = target
        .env()
        .and_then(|e| config.env(e))
        .is_some_and(|e| e.protected);
    protected
        && matches!(
            cmd.action,
            ActionKind::Deploy
                | ActionKind::Rollback
                | ActionKind::Switch
                | ActionKind::Job(_)
                | ActionKind::Http(_)
        )
}

/// The question asked before running: names the target and, for instances, whether it is live.
pub(crate) async fn confirmation_text(
    ctx: &Ctx<'_>,
    cmd: &CommandSpec,
    inv: &Invocation,
) -> String {
    match &inv.target {
        Target::Instance(r) => {
            let live = match ctx.active(&r.env, &r.pool).await {
                Ok(active) if active == r.member => {
                    format!("*{r}* is LIVE: it is taking traffic right now.")
                }
                Ok(active) => format!("*{r}* is not taking traffic ({active} is)."),
                Err(e) => format!("*{r}* may be live: I cannot read its switch ({e})."),
            };
            format!("{live} Really `{}` *{r}*?", cmd.name)
        }
        Target::None => format!("Really `{}`?", inv.as_text()),
        other => {
            let protected = other
                .env()
                .and_then(|e| ctx.config().env(e))
                .is_some_and(|e| e.protected);
            let question = match other {
                Target::Env { env, pools } if cmd.action == ActionKind::Deploy => {
                    let what = if pools.is_empty() {
                        "every pool".to_owned()
                    } else {
                        pools.join(", ")
                    };
                    format!(
                        "Really deploy `{}` to *{env}* ({what})?",
                        crate::actions::deploy::git_ref(inv)
                    )
                }
                _ => format!("Really `{}`?", inv.as_text()),
            };
            format!(
                "{question}{}",
                if protected {
                    " This is a protected environment serving live traffic."
                } else {
                    ""
                }
            )
        }
    }
}
