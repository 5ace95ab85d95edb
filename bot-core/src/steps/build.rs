//! Following a CI build: trigger it (or re-attach to where it was last seen), report
//! each change of progress as one line, and record every new place the build is seen
//! (queue item, then number) so a replica taking the run over re-attaches instead of
//! building again.

use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::sync::watch;

use crate::adapters::template::render_params;
use crate::config::JobSpec;
use crate::context::Ctx;
use crate::ports::{BuildOutcome, BuildProgress, BuildRef, CiError};
use crate::reply::Reply;
use crate::runs::Stop;

/// A line describing where a build is, for progress messages.
pub(crate) fn progress_line(p: &BuildProgress) -> String {
    match p {
        BuildProgress::Queued { why: Some(why) } => {
            format!(
                ":hourglass_flowing_sand: queued — {}",
                crate::text::escape(why)
            )
        }
        BuildProgress::Queued { why: None } => ":hourglass_flowing_sand: queued".to_owned(),
        BuildProgress::Building {
            number,
            url,
            percent,
        } => format!(
            ":hammer_and_wrench: building <{url}|#{number}>{}",
            percent.map(|p| format!(" — {p}%")).unwrap_or_default()
        ),
    }
}

/// How a job is followed: triggered now, or re-attached to where it was last seen.
pub(crate) enum Start<'a> {
    /// Trigger it with these template variables.
    Trigger(&'a [(&'a str, &'a str)]),
    /// Follow the build triggered before.
    Reattach(BuildRef),
}

/// Runs (or re-attaches to) `job`, forwarding each progress change to
/// `render(line)` → the progress message, and every new place the build is seen
/// (its queue item, then its number) to `record`. Returns the outcome and the time
/// spent in CI; `Err` when `record` says the run must stop (the build goes on in CI,
/// and whoever takes the run over re-attaches to it).
pub(crate) async fn follow_job<'r>(
    ctx: &Ctx<'_>,
    job: &JobSpec,
    start: Start<'_>,
    render: impl Fn(&str) -> Reply,
    record: &'r (dyn Fn(BuildRef) -> BoxFuture<'r, Result<(), Stop>> + Sync),
) -> Result<(Result<BuildOutcome, CiError>, Duration), Stop> {
    let (tx, mut rx) = watch::channel(BuildProgress::Queued { why: None });
    let started = Instant::now();
    ctx.progress
        .update(&render(&progress_line(&BuildProgress::Queued {
            why: None,
        })))
        .await;
    let on_progress = move |p: BuildProgress| {
        tx.send_if_modified(|cur| {
            if *cur == p {
                false
            } else {
                *cur = p;
                true
            }
        });
    };
    let ci = &ctx.backends.ci;
    // Trigger first and record where the build is, then follow it; a CI that cannot
    // split the two runs the job in one go.
    let at = match start {
        Start::Trigger(vars) => {
            let params = render_params(&job.parameters, vars);
            match ci.trigger(&job.job, &params).await {
                Ok(Some(at)) => {
                    record(at.clone()).await?;
                    Ok(at)
                }
                Ok(None) => Err(params),
                Err(e) => return Ok((Err(e), started.elapsed())),
            }
        }
        Start::Reattach(at) => Ok(at),
    };
    let run: BoxFuture<'_, Result<BuildOutcome, CiError>> = match &at {
        Ok(at) => Box::pin(ci.reattach(&job.job, at, &on_progress)),
        Err(params) => Box::pin(ci.run_job(&job.job, params, &on_progress)),
    };
    tokio::pin!(run);
    let mut seen_number = None;
    let result = loop {
        tokio::select! {
            r = &mut run => break r,
            changed = rx.changed() => {
                if changed.is_err() {
                    break run.await;
                }
                let p = rx.borrow_and_update().clone();
                match &p {
                    BuildProgress::Building { number, url, .. } if seen_number != Some(*number) => {
                        seen_number = Some(*number);
                        record(BuildRef::Started { number: *number, url: url.clone() }).await?;
                    }
                    _ => {}
                }
                ctx.progress.update(&render(&progress_line(&p))).await;
            }
        }
    };
    Ok((result, started.elapsed()))
}
