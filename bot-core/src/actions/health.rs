//! `health <instance>`: runs an instance's recipe and shows each check's verdict.

use async_trait::async_trait;

use crate::config::{CommandSpec, InstanceRef};
use crate::context::{Action, Ctx};
use crate::rejection::Rejection;
use crate::reply::{Invocation, Outcome, Reply};
use crate::steps::health::{health_url, probe};
use crate::text::{escape, human};

/// `health <instance>`.
pub(crate) struct Health;

#[async_trait]
impl Action for Health {
    async fn run(&self, ctx: &Ctx<'_>, cmd: &CommandSpec, inv: Invocation) -> Reply {
        match inv.target.instance() {
            Some(r) => health(ctx, r).await,
            None => Rejection::unsupported(&cmd.name, &inv.target).reply(),
        }
    }
}

async fn health(ctx: &Ctx<'_>, r: &InstanceRef) -> Reply {
    let Some(instance) = ctx.config().instance(r) else {
        return Rejection::NoSuchInstance(r.clone()).reply();
    };
    let (verdict, active) = tokio::join!(
        probe(ctx, instance),
        ctx.active_at(&r.env, r.region.as_deref(), &r.pool)
    );
    let role = match active {
        Ok(a) if a == r.member => "active (taking traffic)".to_owned(),
        Ok(a) => format!("inactive ({a} is active)"),
        Err(e) => format!("role unknown: {e}"),
    };
    let headline = if verdict.healthy {
        format!(":white_check_mark: *{r}* is healthy")
    } else if let Some(reason) = &verdict.down {
        format!(":red_circle: *{r}* is down: {}", escape(reason))
    } else {
        format!(":warning: *{r}* is unhealthy")
    };
    let lines: Vec<String> = verdict
        .checks
        .iter()
        .map(|c| {
            format!(
                "{} {} — {}",
                if c.ok { ":white_check_mark:" } else { ":x:" },
                escape(&c.name),
                escape(&c.detail)
            )
        })
        .collect();
    let mut facts = vec![role, health_url(instance)];
    if let Some(v) = &verdict.version {
        facts.push(format!("version {}", escape(v)));
    }
    if let Some(l) = verdict.latency {
        facts.push(human(l));
    }
    // An unhealthy verdict is a failed check: scripts (`crossroads run`) see it.
    let outcome = if verdict.healthy {
        Outcome::Info
    } else {
        Outcome::Failed
    };
    Reply::message(outcome, headline)
        .text(lines.join("\n"))
        .context(facts.join(" · "))
}
