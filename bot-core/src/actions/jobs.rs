//! Running CI jobs and configured HTTP requests as persisted runs, with a live
//! progress message: the build's queue item and number are saved as soon as they are
//! known, so a replica taking the run over re-attaches to the same build instead of
//! starting another. Also the YAML-defined `job` / `http` commands.

use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::adapters::redact::redact_url;
use crate::adapters::template::{render_params, render_request};
use crate::config::{ActionKind, ActionSpec, CommandSpec, HttpRequestSpec, JobSpec};
use crate::context::{Action, Ctx};
use crate::failure::told;
use crate::ports::store::{Run, RunStatus};
use crate::ports::{BuildOutcome, BuildProgress, BuildRef, CiError};
use crate::rejection::Rejection;
use crate::reply::{Invocation, Outcome, Reply};
use crate::runs::Driver;
use crate::text::human;

/// A line describing where a build is, for progress messages.
pub(crate) fn progress_line(p: &BuildProgress) -> String {
    match p {
        BuildProgress::Queued { why: Some(why) } => {
            format!(":hourglass_flowing_sand: queued — {why}")
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
/// spent in CI.
pub(crate) async fn follow_job<'r>(
    ctx: &Ctx<'_>,
    job: &JobSpec,
    start: Start<'_>,
    render: impl Fn(&str) -> Reply,
    record: &'r (dyn Fn(BuildRef) -> BoxFuture<'r, ()> + Sync),
) -> (Result<BuildOutcome, CiError>, Duration) {
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
                    record(at.clone()).await;
                    Ok(at)
                }
                Ok(None) => Err(params),
                Err(e) => return (Err(e), started.elapsed()),
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
                        record(BuildRef::Started { number: *number, url: url.clone() }).await;
                    }
                    _ => {}
                }
                ctx.progress.update(&render(&progress_line(&p))).await;
            }
        }
    };
    (result, started.elapsed())
}

/// Sends a templated HTTP request (restart actions, `http` commands).
pub(crate) async fn send_http(
    ctx: &Ctx<'_>,
    spec: &HttpRequestSpec,
    vars: &[(&str, &str)],
) -> Result<String, String> {
    let req = render_request(spec, vars);
    let timeout = ctx
        .config()
        .settings
        .probe_timeout
        .max(Duration::from_secs(10));
    let url = redact_url(&req.url);
    match ctx.backends.http.send(&req, timeout).await {
        Ok(s) if (200..300).contains(&s.status) => {
            Ok(format!("HTTP {} in {}", s.status, human(s.latency)))
        }
        Ok(s) => Err(format!(
            "{} {url} answered HTTP {}: {}",
            req.method,
            s.status,
            s.body.chars().take(200).collect::<String>()
        )),
        Err(e) => Err(format!("{} {url}: {e}", req.method)),
    }
}

/// What a job run has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct JobState {
    /// Where its build was last seen.
    build: Option<BuildRef>,
    /// The job was (or was about to be) triggered, or the request sent.
    started: bool,
    /// When the run began (Unix ms), for its duration.
    began_ms: u64,
}

fn unix_ms(t: SystemTime) -> u64 {
    u64::try_from(
        t.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or_default()
}

/// The reply when the store could not record a run: nothing was started.
pub(crate) fn not_recorded(title: &str, e: &crate::ports::StoreError) -> Reply {
    Reply::message(Outcome::Failed, format!(":x: {title} — {}.", told(e)))
}

/// Runs a restart-style action (job or HTTP) as a persisted run named `action`, and
/// reports it under `title`.
pub(crate) async fn run_action(
    ctx: &Ctx<'_>,
    action: &str,
    inv: &Invocation,
    title: &str,
    spec: &ActionSpec,
    vars: &[(&str, &str)],
) -> Reply {
    let state = JobState {
        began_ms: unix_ms(ctx.now()),
        ..JobState::default()
    };
    let driver = match Driver::start(
        ctx,
        Driver::new_id(ctx),
        action,
        inv,
        serde_json::to_value(&state).unwrap_or_default(),
        None,
    )
    .await
    {
        Ok(d) => d,
        Err(e) => return not_recorded(title, &e),
    };
    drive(ctx, driver, inv, title, spec, vars, state).await
}

/// Goes on with a taken-over job run from where its state says.
pub(crate) async fn resume_action(
    ctx: &Ctx<'_>,
    run: &Run,
    inv: &Invocation,
    title: &str,
    spec: &ActionSpec,
    vars: &[(&str, &str)],
) -> Reply {
    let state: JobState = serde_json::from_value(run.state.clone()).unwrap_or_default();
    let driver = Driver::resume(ctx, run, None);
    drive(ctx, driver, inv, title, spec, vars, state).await
}

async fn drive(
    ctx: &Ctx<'_>,
    driver: Driver,
    inv: &Invocation,
    title: &str,
    spec: &ActionSpec,
    vars: &[(&str, &str)],
    mut state: JobState,
) -> Reply {
    let began = SystemTime::UNIX_EPOCH + Duration::from_millis(state.began_ms);
    let elapsed = || ctx.now().duration_since(began).unwrap_or_default();
    if state.started && state.build.is_none() {
        // A replica died between triggering and hearing back: whether it started is unknown.
        let why = "I lost track of it when the replica running it stopped; it may or may not have started — check CI before trying again";
        ctx.audit_run(inv, &format!("failed: {why}"), Vec::new(), Some(elapsed()))
            .await;
        driver
            .finish(
                RunStatus::Failed,
                serde_json::to_value(&state).unwrap_or_default(),
            )
            .await;
        return Reply::message(Outcome::Failed, format!(":x: {title} — {why}."));
    }
    let start = match state.build.clone() {
        Some(at) => Start::Reattach(at),
        None => Start::Trigger(vars),
    };
    state.started = true;
    if !driver
        .save(serde_json::to_value(&state).unwrap_or_default())
        .await
    {
        return taken_over(title);
    }
    match spec {
        ActionSpec::Job(job) => {
            let saver = &driver;
            let record = |at: BuildRef| -> BoxFuture<'_, ()> {
                let state = JobState {
                    build: Some(at),
                    ..state.clone()
                };
                Box::pin(async move {
                    saver
                        .save(serde_json::to_value(&state).unwrap_or_default())
                        .await;
                })
            };
            let (result, _) = follow_job(
                ctx,
                job,
                start,
                |line| Reply::message(Outcome::Progress, format!("{title}\n{line}")),
                &record,
            )
            .await;
            if driver.lost() {
                return taken_over(title);
            }
            let ok = matches!(&result, Ok(b) if b.result.is_success());
            let reply = job_reply(ctx, inv, title, job, result, elapsed()).await;
            let status = if ok {
                RunStatus::Done
            } else {
                RunStatus::Failed
            };
            driver
                .finish(status, serde_json::to_value(&state).unwrap_or_default())
                .await;
            reply
        }
        ActionSpec::Http(spec) => match send_http(ctx, spec, vars).await {
            Ok(detail) => {
                ctx.audit_run(inv, "ok", Vec::new(), Some(elapsed())).await;
                driver
                    .finish(
                        RunStatus::Done,
                        serde_json::to_value(&state).unwrap_or_default(),
                    )
                    .await;
                Reply::message(
                    Outcome::Done,
                    format!(":white_check_mark: {title} — done ({detail})."),
                )
            }
            Err(e) => {
                ctx.audit_run(inv, &format!("failed: {e}"), Vec::new(), Some(elapsed()))
                    .await;
                driver
                    .finish(
                        RunStatus::Failed,
                        serde_json::to_value(&state).unwrap_or_default(),
                    )
                    .await;
                Reply::message(Outcome::Failed, format!(":x: {title} — failed: {e}"))
            }
        },
    }
}

/// Another replica drives the run now: this one says nothing more.
pub(crate) fn taken_over(title: &str) -> Reply {
    Reply::message(
        Outcome::Progress,
        format!("{title}\n:arrows_counterclockwise: continued by another replica"),
    )
}

/// The final reply for a finished (or failed) job, with audit.
pub(crate) async fn job_reply(
    ctx: &Ctx<'_>,
    inv: &Invocation,
    title: &str,
    job: &JobSpec,
    result: Result<BuildOutcome, CiError>,
    took: Duration,
) -> Reply {
    match result {
        Ok(b) if b.result.is_success() => {
            ctx.audit_run(inv, "ok", vec![b.url.clone()], Some(took))
                .await;
            Reply::message(
                Outcome::Done,
                format!(
                    ":white_check_mark: {title} — build <{}|#{}> succeeded in {}.",
                    b.url,
                    b.number,
                    human(took)
                ),
            )
        }
        Ok(b) => {
            ctx.audit_run(
                inv,
                &format!("failed: build {}", b.result.as_str()),
                vec![b.url.clone()],
                Some(took),
            )
            .await;
            Reply::message(
                Outcome::Failed,
                format!(
                    ":x: {title} — build <{}|#{}> of `{}` ended {}. <{}|Console>",
                    b.url,
                    b.number,
                    job.job,
                    b.result.as_str(),
                    b.console_url
                ),
            )
        }
        Err(e) => {
            let shown = told(&e);
            ctx.audit_run(inv, &format!("failed: {shown}"), Vec::new(), Some(took))
                .await;
            Reply::message(Outcome::Failed, format!(":x: {title} — {shown}"))
        }
    }
}

/// A command defined entirely in YAML (`action: job` or `action: http`): runs its job
/// or sends its request, with `{env}`, `{user}`, `{args}` and every `key=value` given
/// available to templates.
pub(crate) struct Custom;

/// What a YAML-defined command runs, its title, and its template variables.
struct CustomParts {
    spec: ActionSpec,
    title: String,
    vars: Vec<(String, String)>,
}

fn custom_parts(cmd: &CommandSpec, inv: &Invocation) -> Option<CustomParts> {
    let spec = match &cmd.action {
        ActionKind::Job(job) => ActionSpec::Job(job.clone()),
        ActionKind::Http(spec) => ActionSpec::Http(spec.clone()),
        ActionKind::Builtin(_) => return None,
    };
    let mut vars = vec![
        ("env".to_owned(), inv.target.env().unwrap_or("").to_owned()),
        ("args".to_owned(), inv.args.join(" ")),
        (
            "region".to_owned(),
            inv.target.region().unwrap_or("").to_owned(),
        ),
    ];
    vars.extend(inv.params.iter().cloned());
    Some(CustomParts {
        spec,
        title: format!("`{}`", inv.as_text()),
        vars,
    })
}

#[async_trait]
impl Action for Custom {
    async fn run(&self, ctx: &Ctx<'_>, cmd: &CommandSpec, inv: Invocation) -> Reply {
        let Some(CustomParts { spec, title, vars }) = custom_parts(cmd, &inv) else {
            return Rejection::unsupported(&cmd.name, &inv.target).reply();
        };
        let mut vars: Vec<(&str, &str)> =
            vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        vars.push(("user", ctx.user));
        run_action(ctx, cmd.action.name(), &inv, &title, &spec, &vars).await
    }

    async fn resume(&self, ctx: &Ctx<'_>, cmd: &CommandSpec, inv: Invocation, run: Run) -> Reply {
        let Some(CustomParts { spec, title, vars }) = custom_parts(cmd, &inv) else {
            return Rejection::unsupported(&cmd.name, &inv.target).reply();
        };
        let mut vars: Vec<(&str, &str)> =
            vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        vars.push(("user", ctx.user));
        resume_action(ctx, &run, &inv, &title, &spec, &vars).await
    }
}
