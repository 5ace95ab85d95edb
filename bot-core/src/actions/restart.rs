//! `restart` and `force restart`: the restart guard. An instance taking traffic is
//! never restarted by `restart`; `force restart` always goes through a confirmation
//! (policy) that names the instance and says whether it is live.

use crate::actions::jobs::run_action;
use crate::config::{ActionKind, InstanceRef};
use crate::engine::{audit, Ctx};
use crate::reply::{ButtonAction, ButtonStyle, Invocation, Outcome, Reply, Target};

pub(crate) async fn restart(
    ctx: &Ctx<'_>,
    inv: &Invocation,
    r: &InstanceRef,
    force: bool,
) -> Reply {
    let Some(instance) = ctx.config().instance(r) else {
        return Reply::message(Outcome::Rejected, format!("There is no {r}."));
    };
    let Some(action) = &instance.restart else {
        return Reply::message(
            Outcome::Rejected,
            format!("*{r}* has no restart action configured."),
        );
    };
    if !force {
        match ctx.active(&r.env, &r.pool).await {
            Ok(active) if active == r.member => {
                audit(ctx, inv, "refused: instance is active", None).await;
                let mut reply = Reply::message(
                    Outcome::Rejected,
                    format!(
                        ":no_entry: *{r}* is taking traffic right now, so I won't restart it: users would see errors. \
                         Restart the inactive member, switch traffic first, or use `force restart` if you really must."
                    ),
                );
                if let Some(force_cmd) = ctx
                    .config()
                    .commands
                    .iter()
                    .find(|c| c.action == ActionKind::ForceRestart)
                {
                    let set = ctx.button_set().await;
                    let run = Invocation {
                        command: force_cmd.name.clone(),
                        target: Target::Instance(r.clone()),
                        args: Vec::new(),
                        params: Vec::new(),
                        confirmed: false,
                    };
                    reply = reply.buttons(vec![Ctx::button(
                        &set,
                        format!("Force restart {r}"),
                        ButtonAction::Run(run),
                        ButtonStyle::Danger,
                    )]);
                }
                return reply;
            }
            Ok(_) => {}
            Err(e) => {
                audit(ctx, inv, &format!("refused: {e}"), None).await;
                return Reply::message(
                    Outcome::Failed,
                    format!(":warning: I can't tell whether *{r}* takes traffic ({e}), so I won't restart it. `force restart` skips this check."),
                );
            }
        }
    }
    let instance_name = format!("{}-{}", r.pool, r.member);
    let vars = [
        ("env", r.env.as_str()),
        ("pool", r.pool.as_str()),
        ("colour", r.member.as_str()),
        ("color", r.member.as_str()),
        ("instance", instance_name.as_str()),
        ("user", ctx.user),
    ];
    let title = format!(
        ":arrows_counterclockwise: {} *{r}* for <@{}>",
        if force {
            "Force restarting"
        } else {
            "Restarting"
        },
        ctx.user
    );
    run_action(ctx, inv, &title, action, &vars).await
}
