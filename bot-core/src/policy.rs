//! Safety policy: who may run what, and what needs a confirmation click first.
//! Answers with a [`Rejection`]; the restart guard lives with `restart`, locks with
//! the invocation pipeline.

use crate::config::{CommandSpec, Config};
use crate::context::Rules;
use crate::rejection::Rejection;
use crate::reply::Target;

fn in_any_group(config: &Config, groups: &[String], user: &str) -> bool {
    groups.iter().any(|g| {
        config
            .groups
            .get(g)
            .is_some_and(|members| members.iter().any(|m| m == user))
    })
}

/// Checks that `user` may run `cmd` (whose action follows `rules`) on `target`: the
/// command's `allowed` groups, and for mutating actions the environment's `allowed`
/// groups. Re-checked for whoever clicks a button.
pub fn permitted(
    config: &Config,
    cmd: &CommandSpec,
    rules: Rules,
    target: &Target,
    user: &str,
) -> Result<(), Rejection> {
    if !cmd.allowed.is_empty() && !in_any_group(config, &cmd.allowed, user) {
        return Err(Rejection::CommandNotAllowed {
            user: user.to_owned(),
            command: cmd.name.clone(),
            groups: cmd.allowed.clone(),
        });
    }
    if rules.mutating {
        if let Some(env) = target.env().and_then(|e| config.env(e)) {
            if !env.allowed.is_empty() && !in_any_group(config, &env.allowed, user) {
                return Err(Rejection::EnvNotAllowed {
                    user: user.to_owned(),
                    env: env.name.clone(),
                    groups: env.allowed.clone(),
                });
            }
        }
    }
    Ok(())
}

/// Whether `cmd` on `target` needs a confirmation click: commands marked `confirm`,
/// and actions that confirm on protected environments when the target is one.
pub fn needs_confirmation(
    config: &Config,
    cmd: &CommandSpec,
    rules: Rules,
    target: &Target,
) -> bool {
    if cmd.confirm {
        return true;
    }
    rules.confirm_on_protected
        && target
            .env()
            .and_then(|e| config.env(e))
            .is_some_and(|e| e.protected)
}
