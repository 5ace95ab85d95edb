//! `pause`, `continue`, `promote` and `abort`: steering the canary under way on an
//! environment, typed or clicked. The order is left with the deploy's run in the
//! store; the run's driver, on whichever replica holds it, carries it out at its
//! next tick and shows it in the progress message.

use async_trait::async_trait;

use super::deploy::state::{DeployState, Order, Step};
use crate::config::CommandSpec;
use crate::context::{Action, Ctx};
use crate::failure::told;
use crate::ports::RunStatus;
use crate::rejection::Rejection;
use crate::reply::{Invocation, Outcome, Reply};

/// How the reply to an order begins: its icon and verb.
fn done(order: Order) -> (&'static str, &'static str) {
    match order {
        Order::Pause => (":double_vertical_bar:", "Pausing"),
        Order::Continue => (":arrow_forward:", "Continuing"),
        Order::Promote => (":fast_forward:", "Promoting"),
        Order::Abort => (":octagonal_sign:", "Aborting"),
    }
}

/// One steering command.
pub(crate) struct Steer(pub Order);

#[async_trait]
impl Action for Steer {
    async fn run(&self, ctx: &Ctx<'_>, cmd: &CommandSpec, inv: Invocation) -> Reply {
        let Some(env) = inv.target.environment() else {
            return Rejection::unsupported(&cmd.name, &inv.target).reply();
        };
        let store = &ctx.backends.store;
        let runs = match store.recent_runs(Some(env), 20).await {
            Ok(r) => r,
            Err(e) => {
                return Reply::message(
                    Outcome::Failed,
                    format!(
                        ":x: I could not look for the canary on *{env}*: {}. Nothing was changed.",
                        told(&e)
                    ),
                )
            }
        };
        // The deploy under way with a pool in its canary steps.
        let under_way = runs
            .iter()
            .filter(|r| r.status == RunStatus::Running && r.action == "deploy")
            .find_map(|r| {
                let state = crate::runs::read::<DeployState>(r).ok()?;
                let p = state
                    .run()
                    .pools
                    .iter()
                    .find(|p| p.step == Step::Canary)?
                    .clone();
                Some((r.id.clone(), p))
            });
        let Some((run, pool)) = under_way else {
            ctx.audit(&inv, "refused: no canary under way").await;
            return Rejection::Conflict(format!(
                "No canary is under way on *{env}*, so there is nothing to {}.",
                self.0.as_str()
            ))
            .reply();
        };
        match store
            .order_run(&run, self.0.as_str(), ctx.user, ctx.now())
            .await
        {
            Ok(Some(_)) => {
                ctx.audit(&inv, "ok").await;
                let (icon, doing) = done(self.0);
                let at = pool
                    .canary
                    .as_ref()
                    .and_then(|c| c.steps.get(c.at).copied())
                    .map(|p| format!(" (at {p} % on {})", pool.to.as_deref().unwrap_or("?")))
                    .unwrap_or_default();
                Reply::message(
                    Outcome::Done,
                    format!(
                        "{icon} {doing} the canary of *{env} {}*{at}: its progress message shows it once done.",
                        pool.label()
                    ),
                )
            }
            Ok(None) => Rejection::Conflict(format!(
                "The canary on *{env}* has just ended, so there is nothing to {}.",
                self.0.as_str()
            ))
            .reply(),
            Err(e) => Reply::message(
                Outcome::Failed,
                format!(
                    ":x: I could not pass the order to the canary on *{env}*: {}. Nothing was changed.",
                    told(&e)
                ),
            ),
        }
    }
}
