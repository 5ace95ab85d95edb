//! What a deploy leaves where people look: a GitHub deployment per pool whose
//! statuses follow it, and, once it ends, a Grafana annotation and a PagerDuty
//! change event (see [`crate::markers`]).

use super::live::Live;
use super::state::{DeployRun, Step};
use crate::markers::{self, Change, Ended, Move};
use crate::ports::store::RunStatus;
use crate::steps::changes::{short, Changes};

/// The deployment of pool `i` of this run.
fn key(live: &Live<'_, '_>, i: usize) -> String {
    markers::deployment_key(live.driver.id(), i)
}

/// What is deployed: the pinned commit when there is one.
fn deployed(s: &DeployRun) -> String {
    s.pin.as_ref().map_or(s.git_ref.clone(), |p| p.sha.clone())
}

/// Pool `i` knows its members and is about to build: its deployment begins.
pub(crate) async fn started(live: &Live<'_, '_>, i: usize) {
    let (s, p) = live.with(|s| (s.clone(), s.pools[i].clone()));
    let (Some(from), Some(to)) = (p.from.as_deref(), p.to.as_deref()) else {
        return;
    };
    let git_ref = deployed(&s);
    let m = Move {
        env: &s.env,
        region: p.region.as_deref(),
        pool: &p.pool,
        from,
        to,
        git_ref: &git_ref,
        ref_name: &s.git_ref,
        requester: live.ctx.user,
        task: "deploy",
    };
    markers::deployment_started(live.ctx, &key(live, i), &m, None).await;
}

/// Pool `i` is live on its new member.
pub(crate) async fn switched(live: &Live<'_, '_>, i: usize) {
    // Only while the run is ours (the first status written is the one that stays).
    if live
        .driver
        .permit("record the deployment's outcome")
        .is_err()
    {
        return;
    }
    let (env, p) = live.with(|s| (s.env.clone(), s.pools[i].clone()));
    let build = p.built.as_ref().map(|(_, url)| url.as_str());
    let what = format!(
        "{} is live on {}",
        p.label(),
        p.to.as_deref().unwrap_or("?")
    );
    markers::deployment_ended(live.ctx, &key(live, i), &env, Ended::Success, build, &what).await;
    // The deployment whose member traffic left is no longer live.
    if live.ctx.config().github(&env).is_none() {
        return;
    }
    let runs = live
        .ctx
        .backends
        .store
        .recent_runs(Some(&env), 50)
        .await
        .unwrap_or_default();
    let before = runs
        .iter()
        .filter(|r| r.id != live.driver.id())
        .find_map(|r| made(r, p.region.as_deref(), &p.pool));
    if let Some(before) = before.filter(|b| Some(b.member.as_str()) == p.from.as_deref()) {
        markers::deployment_inactive(
            live.ctx,
            &before.key,
            &env,
            &format!(
                "superseded: {} moved to {}",
                p.label(),
                p.to.as_deref().unwrap_or("?")
            ),
        )
        .await;
    }
}

/// Step `at` of pool `i`'s canary put `percent` % of its traffic on the new member.
pub(crate) async fn canary_step(live: &Live<'_, '_>, i: usize, at: usize, percent: u32) {
    let (s, p) = live.with(|s| (s.clone(), s.pools[i].clone()));
    let now = live.ctx.now();
    let change = Change {
        id: format!("{}:canary:{i}:{at}", live.driver.id()),
        env: &s.env,
        pools: vec![p.pool.clone()],
        outcome: "canary",
        began: now,
        ended: now,
        text: format!(
            "Canary of {} on {} {}: {percent} % of traffic on {} (step {} of {}) for {}",
            s.git_ref,
            s.env,
            p.label(),
            p.to.as_deref().unwrap_or("?"),
            at + 1,
            p.canary.as_ref().map_or(0, |c| c.steps.len()),
            live.ctx.user
        ),
        links: Vec::new(),
    };
    markers::annotate(live.ctx, &change).await;
}

/// The deploy ended with `status`: pools moved back are marked `inactive`, and the
/// whole deploy gets its annotation and change event.
pub(crate) async fn finished(live: &Live<'_, '_>, status: RunStatus) {
    let s = live.snapshot();
    let ctx = live.ctx;
    let mut back = false;
    for (i, p) in s.pools.iter().enumerate() {
        if p.step == Step::Done && (p.rolled_back || p.watch_rolled_back()) {
            back = true;
            markers::deployment_inactive(
                ctx,
                &key(live, i),
                &s.env,
                &format!(
                    "{} moved back to {}",
                    p.label(),
                    p.from.as_deref().unwrap_or("?")
                ),
            )
            .await;
        }
    }
    let outcome = match status {
        _ if back => "rolled-back",
        RunStatus::Done => "success",
        _ => "failure",
    };
    let pools = markers::distinct(s.pools.iter().map(|p| p.pool.as_str()));
    let moves: Vec<String> = s
        .pools
        .iter()
        .map(|p| {
            format!(
                "{} {} → {}",
                p.label(),
                p.from.as_deref().unwrap_or("?"),
                p.to.as_deref().unwrap_or("?")
            )
        })
        .collect();
    let verb = match outcome {
        "success" => "Deployed",
        "rolled-back" => "Deployed, then rolled back,",
        _ => "Failed to deploy",
    };
    let mut text = format!(
        "{verb} {} to {} ({}) by {}",
        s.git_ref,
        s.env,
        moves.join(", "),
        ctx.user
    );
    if let Some(pin) = &s.pin {
        text.push_str(&format!(" at {}", short(&pin.sha)));
    }
    if let Some(Changes::Listed { commits, .. }) = &s.changes {
        let listed: Vec<String> = commits
            .iter()
            .rev()
            .take(10)
            .map(|c| format!("{} {} ({})", short(&c.sha), c.title, c.author))
            .collect();
        if !listed.is_empty() {
            text.push_str(&format!("\nCommits: {}", listed.join("; ")));
            if commits.len() > 10 {
                text.push_str(&format!(" and {} more", commits.len() - 10));
            }
        }
    }
    let links: Vec<(String, String)> = s
        .pools
        .iter()
        .filter_map(|p| {
            p.built
                .as_ref()
                .map(|(n, url)| (url.clone(), format!("{} build #{n}", p.label())))
        })
        .collect();
    let change = Change {
        id: live.driver.id().to_owned(),
        env: &s.env,
        pools,
        outcome,
        began: s.began(),
        ended: ctx.now(),
        text,
        links,
    };
    markers::annotate(ctx, &change).await;
    markers::change_event(ctx, &change).await;
}

/// The deployment a past deploy `run` made of `pool` (in `region`) that switched:
/// its key, the member it went live on and what it deployed.
pub(crate) struct Made {
    /// The deployment's key.
    pub key: String,
    /// The member it made live.
    pub member: String,
    /// What it deployed.
    pub git_ref: String,
}

/// What deploy `run` made of `pool` in `region`, if it switched it.
pub(crate) fn made(
    run: &crate::ports::store::Run,
    region: Option<&str>,
    pool: &str,
) -> Option<Made> {
    if run.action != "deploy" {
        return None;
    }
    let state = crate::runs::read::<super::state::DeployState>(run).ok()?;
    let s = state.run();
    let (i, p) =
        s.pools.iter().enumerate().find(|(_, p)| {
            p.pool == pool && p.region.as_deref() == region && p.step == Step::Done
        })?;
    Some(Made {
        key: markers::deployment_key(&run.id, i),
        member: p.to.clone()?,
        git_ref: deployed(s),
    })
}
