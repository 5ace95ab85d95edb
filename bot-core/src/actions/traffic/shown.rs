//! What a rollback or switch leaves where people look: a rollback marks the
//! deployment it undoes `inactive` and records its own (of what goes live again);
//! both get a Grafana annotation, and a rollback a PagerDuty change event.

use std::time::SystemTime;

use crate::actions::deploy::shown::made;
use crate::context::Ctx;
use crate::markers::{self, Change, Ended, Move};
use crate::steps::watch::Moved;

/// A rollback or switch `run` made `moves` in `env` (`troubled`: the new member
/// turned unhealthy after).
pub(crate) async fn moved(
    ctx: &Ctx<'_>,
    run: &str,
    env: &str,
    rollback: bool,
    moves: &[Moved],
    began: SystemTime,
    troubled: bool,
) {
    if moves.is_empty() {
        return;
    }
    if rollback && ctx.config().github(env).is_some() {
        let runs = ctx
            .backends
            .store
            .recent_runs(Some(env), 50)
            .await
            .unwrap_or_default();
        for (k, m) in moves.iter().enumerate() {
            let mut deploys = runs
                .iter()
                .filter(|r| r.id != run)
                .filter_map(|r| made(r, m.region.as_deref(), &m.pool));
            // The newest deploy of the pool: undone when it is what was live.
            let Some(newest) = deploys.next() else {
                continue;
            };
            let back_to = if newest.member == m.from {
                markers::deployment_inactive(
                    ctx,
                    &newest.key,
                    env,
                    &format!("rolled back to {} by {}", m.to, ctx.user),
                )
                .await;
                deploys.find(|d| d.member == m.to)
            } else if newest.member == m.to {
                Some(newest)
            } else {
                None
            };
            // What goes live again is a deployment of its own, when its ref is known.
            if let Some(back) = back_to {
                let key = markers::deployment_key(run, k);
                let mv = Move {
                    env,
                    region: m.region.as_deref(),
                    pool: &m.pool,
                    from: &m.from,
                    to: &m.to,
                    git_ref: &back.git_ref,
                    ref_name: &back.git_ref,
                    requester: ctx.user,
                    task: "rollback",
                };
                markers::deployment_started(ctx, &key, &mv, None).await;
                let (ended, what) = if troubled {
                    (
                        Ended::Failure,
                        format!("{} on {} turned unhealthy after the rollback", m.pool, m.to),
                    )
                } else {
                    (
                        Ended::Success,
                        format!("{} is live on {} again", m.pool, m.to),
                    )
                };
                markers::deployment_ended(ctx, &key, env, ended, None, &what).await;
            }
        }
    }
    let verb = if rollback { "Rolled back" } else { "Switched" };
    let outcome = match (troubled, rollback) {
        (true, _) => "failure",
        (false, true) => "rolled-back",
        (false, false) => "switched",
    };
    let lines: Vec<String> = moves
        .iter()
        .map(|m| match &m.region {
            Some(r) => format!("{r} {} {} → {}", m.pool, m.from, m.to),
            None => format!("{} {} → {}", m.pool, m.from, m.to),
        })
        .collect();
    let pools = markers::distinct(moves.iter().map(|m| m.pool.as_str()));
    let change = Change {
        id: run.to_owned(),
        env,
        pools,
        outcome,
        began,
        ended: ctx.now(),
        text: format!("{verb} {env} ({}) by {}", lines.join(", "), ctx.user),
        links: Vec::new(),
    };
    markers::annotate(ctx, &change).await;
    if rollback {
        markers::change_event(ctx, &change).await;
    }
}
