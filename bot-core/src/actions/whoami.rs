//! `whoami`: your Slack id, your groups, and what you may run where.

use async_trait::async_trait;

use crate::config::{CommandSpec, TargetKind};
use crate::context::{Action, Ctx, Rules};
use crate::policy::permitted;
use crate::reply::{Invocation, Outcome, Reply, Target};
use crate::text::{code, either};

/// `whoami`.
pub(crate) struct Whoami;

#[async_trait]
impl Action for Whoami {
    async fn run(&self, ctx: &Ctx<'_>, _: &CommandSpec, _: Invocation) -> Reply {
        whoami(ctx)
    }
}

fn whoami(ctx: &Ctx<'_>) -> Reply {
    let config = ctx.config();
    let user = ctx.user;
    let groups: Vec<String> = config
        .groups
        .iter()
        .filter(|(_, members)| members.iter().any(|m| m == user))
        .map(|(g, _)| g.clone())
        .collect();
    let mut anywhere = Vec::new();
    let mut per_env: Vec<(String, Vec<String>)> = config
        .environments
        .iter()
        .map(|e| (e.name.clone(), Vec::new()))
        .collect();
    let mut refused = Vec::new();
    for cmd in &config.commands {
        let rules = ctx.action(cmd).map_or(Rules::READ, |a| a.rules);
        if !rules.mutating || cmd.target == TargetKind::Nothing {
            match permitted(config, cmd, rules, &Target::None, user) {
                Ok(()) => anywhere.push(code(&cmd.name)),
                Err(_) => refused.push(format!("{} ({})", code(&cmd.name), either(&cmd.allowed))),
            }
            continue;
        }
        let mut somewhere = false;
        for (env, list) in &mut per_env {
            let target = Target::Env {
                env: env.clone(),
                pools: Vec::new(),
            };
            if permitted(config, cmd, rules, &target, user).is_ok() {
                list.push(code(&cmd.name));
                somewhere = true;
            }
        }
        if !somewhere {
            let limited = if cmd.allowed.is_empty() {
                "no environment allows you".to_owned()
            } else {
                either(&cmd.allowed)
            };
            refused.push(format!("{} ({limited})", code(&cmd.name)));
        }
    }
    let mut lines = vec![format!(
        "You are <@{user}> (`{user}`), {}.",
        if groups.is_empty() {
            "in no group".to_owned()
        } else {
            format!(
                "in {}",
                groups
                    .iter()
                    .map(|g| code(g))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    )];
    lines.push(format!("*Anywhere*: {}", anywhere.join(", ")));
    for (env, list) in &per_env {
        let protected = config.env(env).is_some_and(|e| e.protected);
        lines.push(format!(
            "*{env}*{}: {}",
            if protected { " (protected)" } else { "" },
            if list.is_empty() {
                "no changes".to_owned()
            } else {
                list.join(", ")
            }
        ));
    }
    let mut reply = Reply::new(Outcome::Info)
        .header("Who you are")
        .text(lines.join("\n"));
    if !refused.is_empty() {
        reply = reply.context(format!("Not for you: {}", refused.join(", ")));
    }
    reply
}
