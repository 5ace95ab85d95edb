//! `restart` and `force restart`: the restart guard. An instance taking traffic is
//! never restarted by `restart`; `force restart` always goes through a confirmation
//! (its `confirm: true` in commands.yaml) that names the instance and says whether it
//! is live.

use async_trait::async_trait;

use crate::actions::jobs::{resume_action, run_action, Work};
use crate::config::{CommandSpec, InstanceRef};
use crate::context::{Action, Ctx, Offer};
use crate::failure::told;
use crate::ports::store::Run;
use crate::rejection::Rejection;
use crate::reply::{ButtonAction, ButtonStyle, Invocation, Outcome, Reply, Target};

/// `restart <instance>` (`force: false`) and `force restart <instance>` (`force: true`).
pub(crate) struct Restart {
    pub(crate) force: bool,
}

#[async_trait]
impl Action for Restart {
    async fn run(&self, ctx: &Ctx<'_>, cmd: &CommandSpec, inv: Invocation) -> Reply {
        restart(ctx, cmd, inv, self.force).await
    }

    async fn resume(&self, ctx: &Ctx<'_>, cmd: &CommandSpec, inv: Invocation, run: Run) -> Reply {
        let Some(r) = inv.target.instance() else {
            return Rejection::unsupported(&cmd.name, &inv.target).reply();
        };
        let Some(spec) = ctx.config().instance(r).and_then(|i| i.restart.clone()) else {
            return Rejection::NoRestartAction(r.clone()).reply();
        };
        let (title, names) = parts(ctx, r, self.force);
        let vars = vars(ctx, r, &names);
        let work = Work {
            action: cmd.action.name(),
            title: &title,
            spec: &spec,
            vars: &vars,
            lock: Some(&r.env),
        };
        resume_action(ctx, &run, &inv, &work).await
    }
}

/// The title of a restart and the instance name its templates see.
fn parts(ctx: &Ctx<'_>, r: &InstanceRef, force: bool) -> (String, String) {
    let title = format!(
        ":arrows_counterclockwise: {} *{r}* for <@{}>",
        if force {
            "Force restarting"
        } else {
            "Restarting"
        },
        ctx.user
    );
    (title, format!("{}-{}", r.pool, r.member))
}

/// The template variables of a restart.
fn vars<'a>(ctx: &'a Ctx<'_>, r: &'a InstanceRef, instance: &'a str) -> [(&'a str, &'a str); 6] {
    [
        ("env", r.env.as_str()),
        ("pool", r.pool.as_str()),
        ("colour", r.member.as_str()),
        ("color", r.member.as_str()),
        ("instance", instance),
        ("user", ctx.user),
    ]
}

async fn restart(ctx: &Ctx<'_>, cmd: &CommandSpec, inv: Invocation, force: bool) -> Reply {
    let Some(r) = inv.target.instance() else {
        return Rejection::unsupported(&cmd.name, &inv.target).reply();
    };
    let Some(instance) = ctx.config().instance(r) else {
        return Rejection::NoSuchInstance(r.clone()).reply();
    };
    let Some(action) = &instance.restart else {
        return Rejection::NoRestartAction(r.clone()).reply();
    };
    if !force {
        match ctx.active_at(&r.env, r.region.as_deref(), &r.pool).await {
            Ok(active) if active == r.member => {
                ctx.audit(&inv, "refused: instance is active").await;
                return offer_force(ctx, r).await;
            }
            Ok(_) => {}
            Err(e) => {
                let shown = told(&e);
                ctx.audit(&inv, &format!("refused: {shown}")).await;
                return Reply::message(
                    Outcome::Failed,
                    format!(":warning: I can't tell whether *{r}* takes traffic ({shown}), so I won't restart it. `force restart` skips this check."),
                );
            }
        }
    }
    let (title, names) = parts(ctx, r, force);
    let vars = vars(ctx, r, &names);
    // A restart holds its environment's lock, so no switch sends traffic to the
    // member being restarted meanwhile.
    let work = Work {
        action: cmd.action.name(),
        title: &title,
        spec: action,
        vars: &vars,
        lock: Some(&r.env),
    };
    run_action(ctx, &inv, &work).await
}

/// The refusal to restart a live instance, with a button offering `force restart`
/// when the vocabulary has it.
async fn offer_force(ctx: &Ctx<'_>, r: &InstanceRef) -> Reply {
    let reply = Rejection::InstanceIsLive(r.clone()).reply();
    let Some(force_cmd) = ctx
        .config()
        .commands
        .iter()
        .find(|c| c.action.name() == "force_restart")
    else {
        return reply;
    };
    let run = Invocation {
        command: force_cmd.name.clone(),
        target: Target::Instance(r.clone()),
        args: Vec::new(),
        params: Vec::new(),
        confirmed: false,
        approval: None,
        pin: None,
    };
    match ctx
        .offer(vec![Offer::new(
            format!("Force restart {r}"),
            ButtonAction::Run(run),
            ButtonStyle::Danger,
        )])
        .await
    {
        Ok(buttons) => reply.buttons(buttons),
        // The refusal stands without its shortcut.
        Err(e) => reply.context(format!("(No button: {}.)", told(&e))),
    }
}
