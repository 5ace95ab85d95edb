//! `help [command]`: generated from `commands.yaml`.

use async_trait::async_trait;

use crate::config::CommandSpec;
use crate::context::{Action, Ctx};
use crate::rejection::Rejection;
use crate::reply::{Invocation, Outcome, Reply};

/// `help [command]`.
pub(crate) struct Help;

#[async_trait]
impl Action for Help {
    async fn run(&self, ctx: &Ctx<'_>, _: &CommandSpec, inv: Invocation) -> Reply {
        help(ctx, &inv.args)
    }
}

fn help(ctx: &Ctx<'_>, args: &[String]) -> Reply {
    let config = ctx.config();
    if !args.is_empty() {
        let asked = args.join(" ").to_lowercase();
        let found = config
            .commands
            .iter()
            .find(|c| c.name == asked || c.phrases.contains(&asked));
        let Some(cmd) = found else {
            return Rejection::NoHelp { asked }.reply();
        };
        let mut reply = Reply::new(Outcome::Info)
            .header(format!("help: {}", cmd.name))
            .text(cmd.help.clone());
        let others: Vec<String> = cmd
            .phrases
            .iter()
            .filter(|p| **p != cmd.name)
            .map(|p| format!("`{p}`"))
            .collect();
        if !others.is_empty() {
            reply = reply.text(format!("Also: {}", others.join(", ")));
        }
        if !cmd.examples.is_empty() {
            reply = reply.text(
                cmd.examples
                    .iter()
                    .map(|e| format!("• `{e}`"))
                    .collect::<Vec<_>>()
                    .join("\n"),
            );
        }
        let mut notes = Vec::new();
        if cmd.confirm {
            notes.push("asks for confirmation".to_owned());
        }
        if !cmd.allowed.is_empty() {
            notes.push(format!("limited to {}", cmd.allowed.join(", ")));
        }
        if !notes.is_empty() {
            reply = reply.context(notes.join(" · "));
        }
        return reply;
    }
    let lines: Vec<String> = config
        .commands
        .iter()
        .map(|c| format!("`{}` — {}", c.examples.first().unwrap_or(&c.name), c.help))
        .collect();
    let envs: Vec<String> = config
        .environments
        .iter()
        .map(|e| format!("`{}`", e.name))
        .collect();
    Reply::new(Outcome::Info)
        .header("What I can do")
        .text(lines.join("\n"))
        .context(format!(
            "Environments: {}. Name instances any way you like: `rh blue`, `blue master`, an emoji, `master active`. `help <command>` for details.",
            envs.join(", ")
        ))
}
