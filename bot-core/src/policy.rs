//! Safety policy: who may run what, what needs a confirmation click first, which
//! approval rule applies and whether a freeze holds. Answers with a [`Rejection`];
//! the restart guard lives with `restart`, locks with the invocation pipeline.

use std::time::{Duration, SystemTime};

use crate::config::{ActiveFreeze, ApprovalRule, CommandSpec, Config};
use crate::context::{ActionDef, Rules};
use crate::rejection::Rejection;
use crate::reply::{Invocation, Target, OVERRIDE_WINDOW};

/// Whether `user` is a member of any of `groups`.
pub fn in_any_group(config: &Config, groups: &[String], user: &str) -> bool {
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

/// Whether an action changes the platform itself (builds, traffic, restarts, jobs),
/// as opposed to the bot's own state (locks, toy databases).
fn changes_platform(rules: Rules) -> bool {
    rules.takes_lock || rules.respects_locks
}

/// The approval rule `cmd` on `target` falls under: the command's own, else for an
/// action that changes the platform, its environment's.
pub fn approval_rule<'c>(
    config: &'c Config,
    cmd: &CommandSpec,
    rules: Rules,
    target: &Target,
) -> Option<&'c ApprovalRule> {
    if let Some(rule) = config.approval.commands.get(&cmd.name) {
        return Some(rule);
    }
    if !changes_platform(rules) {
        return None;
    }
    target.env().and_then(|e| config.approval.envs.get(e))
}

/// Whether a freeze stops `cmd` (of `action`): deploys, switches, rollbacks, forced
/// restarts, and YAML commands unless they say `freeze: exempt`.
pub fn stopped_by_freeze(action: &ActionDef, cmd: &CommandSpec) -> bool {
    action.rules.frozen && !cmd.freeze_exempt
}

/// `inv`, overriding `freeze`, with the window it overrides named: a button, the
/// queue or an approval that carries it on overrides that window and no other.
pub fn scope_override(mut inv: Invocation, freeze: &ActiveFreeze) -> Invocation {
    inv.params
        .retain(|(k, _)| !k.eq_ignore_ascii_case(OVERRIDE_WINDOW));
    inv.params
        .push((OVERRIDE_WINDOW.to_owned(), freeze.window.text.clone()));
    inv
}

/// The freeze window `inv`'s override was given for, when it names one.
fn overridden_window(inv: &Invocation) -> Option<&str> {
    inv.params
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(OVERRIDE_WINDOW))
        .map(|(_, v)| v.as_str())
}

/// The freeze window in force on `env` at `now` (global or the environment's own);
/// of several, the one that ends last.
pub fn freeze_on(config: &Config, env: &str, now: SystemTime) -> Option<ActiveFreeze> {
    config
        .freeze
        .iter()
        .filter(|w| w.env.as_deref().is_none_or(|e| e == env))
        .filter_map(|w| w.active_at(now))
        .max_by_key(|a| a.ends.timestamp())
}

/// `2d 14h 10m`, `2h 10m`, `10m`, `under a minute`.
pub fn time_left(d: Duration) -> String {
    let mins = d.as_secs().div_ceil(60);
    let (days, hours, mins) = (mins / 1440, (mins % 1440) / 60, mins % 60);
    match (days, hours, mins) {
        (0, 0, 0) => "under a minute".into(),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m:02}m"),
        (d, h, m) => format!("{d}d {h}h {m:02}m"),
    }
}

/// The `override="why"` of an invocation, when given and not blank.
pub fn override_reason(inv: &Invocation) -> Option<&str> {
    inv.params
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("override"))
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// Checks the freeze for `inv` of `action` by `user` at `now`: `Ok(None)` when no
/// freeze holds (or the action is not one a freeze stops), `Ok(Some(window))` when
/// one holds and `user` overrides it, else the refusal naming the window and when
/// it ends.
pub fn check_freeze(
    config: &Config,
    action: &ActionDef,
    cmd: &CommandSpec,
    inv: &Invocation,
    user: &str,
    now: SystemTime,
) -> Result<Option<ActiveFreeze>, Rejection> {
    if !stopped_by_freeze(action, cmd) {
        return Ok(None);
    }
    let Some(env) = inv.target.env() else {
        return Ok(None);
    };
    let Some(freeze) = freeze_on(config, env, now) else {
        return Ok(None);
    };
    let overriders = freeze.window.overriders.clone();
    // An override given for another window does not hold for this one.
    let for_this_window = overridden_window(inv).is_none_or(|w| w == freeze.window.text);
    if override_reason(inv).is_some() && for_this_window {
        if in_any_group(config, &overriders, user) {
            return Ok(Some(freeze));
        }
        return Err(Rejection::OverrideNotAllowed {
            user: user.to_owned(),
            env: env.to_owned(),
            groups: overriders,
        });
    }
    let ends = freeze.ends_at();
    let command = Invocation {
        params: inv
            .params
            .iter()
            .filter(|(k, _)| {
                !k.eq_ignore_ascii_case("override") && !k.eq_ignore_ascii_case(OVERRIDE_WINDOW)
            })
            .cloned()
            .collect(),
        ..inv.clone()
    }
    .as_text();
    Err(Rejection::Frozen(Box::new(crate::rejection::FrozenAt {
        env: env.to_owned(),
        window: freeze.window.text.clone(),
        ends_local: freeze.ends.strftime("%a %d %b %H:%M %Z").to_string(),
        ends_reader: crate::text::when(ends),
        left: time_left(ends.duration_since(now).unwrap_or_default()),
        overriders,
        command,
    })))
}
