//! `history [env]`: the audit log, newest first.

use async_trait::async_trait;

use crate::config::CommandSpec;
use crate::context::{Action, Ctx};
use crate::failure::told;
use crate::rejection::Rejection;
use crate::reply::{Invocation, Outcome, Reply, Target};
use crate::text::when;

/// `history [env]`.
pub(crate) struct History;

#[async_trait]
impl Action for History {
    async fn run(&self, ctx: &Ctx<'_>, cmd: &CommandSpec, inv: Invocation) -> Reply {
        match &inv.target {
            Target::None => history(ctx, None).await,
            Target::Env { env, .. } => history(ctx, Some(env)).await,
            other => Rejection::unsupported(&cmd.name, other).reply(),
        }
    }
}

async fn history(ctx: &Ctx<'_>, env: Option<&str>) -> Reply {
    let records = match ctx.backends.store.history(env, 20).await {
        Ok(r) => r,
        Err(e) => {
            return Reply::message(
                Outcome::Failed,
                format!("I could not read the history: {}", told(&e)),
            )
        }
    };
    let title = match env {
        Some(e) => format!("Latest actions on {e}"),
        None => "Latest actions".to_owned(),
    };
    if records.is_empty() {
        return Reply::message(Outcome::Info, format!("{title}: nothing yet."));
    }
    let lines: Vec<String> = records
        .iter()
        .map(|r| {
            let mut line = format!(
                "{} · <@{}> · `{} {}` · {}",
                when(r.at),
                r.user,
                r.command,
                r.target,
                r.outcome
            );
            if let Some(link) = &r.link {
                line.push_str(&format!(" · <{link}|build>"));
            }
            line
        })
        .collect();
    Reply::new(Outcome::Info)
        .header(title)
        .text(lines.join("\n"))
}
