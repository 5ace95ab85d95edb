//! Running CI jobs with a live progress message, and YAML-defined `job` / `http` commands.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::watch;

use crate::adapters::redact::redact_url;
use crate::adapters::template::{render_params, render_request};
use crate::config::{ActionKind, ActionSpec, CommandSpec, HttpRequestSpec, JobSpec};
use crate::context::{Action, Ctx};
use crate::failure::told;
use crate::ports::{BuildOutcome, BuildProgress, CiError};
use crate::rejection::Rejection;
use crate::reply::{Invocation, Outcome, Reply};
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

/// Runs `job`, forwarding each progress change to `render(line)` → the progress message.
/// Returns the outcome and the time spent in CI.
pub(crate) async fn run_job(
    ctx: &Ctx<'_>,
    job: &JobSpec,
    vars: &[(&str, &str)],
    render: impl Fn(&str) -> Reply,
) -> (Result<BuildOutcome, CiError>, Duration) {
    let params = render_params(&job.parameters, vars);
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
    let run = ctx.backends.ci.run_job(&job.job, &params, &on_progress);
    tokio::pin!(run);
    let result = loop {
        tokio::select! {
            r = &mut run => break r,
            changed = rx.changed() => {
                if changed.is_err() {
                    break run.await;
                }
                let line = progress_line(&rx.borrow_and_update().clone());
                ctx.progress.update(&render(&line)).await;
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

/// Runs a restart-style action (job or HTTP) and reports it under `title`.
pub(crate) async fn run_action(
    ctx: &Ctx<'_>,
    inv: &Invocation,
    title: &str,
    action: &ActionSpec,
    vars: &[(&str, &str)],
) -> Reply {
    match action {
        ActionSpec::Job(job) => {
            let (result, took) = run_job(ctx, job, vars, |line| {
                Reply::message(Outcome::Progress, format!("{title}\n{line}"))
            })
            .await;
            job_reply(ctx, inv, title, job, result, took).await
        }
        ActionSpec::Http(spec) => match send_http(ctx, spec, vars).await {
            Ok(detail) => {
                ctx.audit(inv, "ok").await;
                Reply::message(
                    Outcome::Done,
                    format!(":white_check_mark: {title} — done ({detail})."),
                )
            }
            Err(e) => {
                ctx.audit(inv, &format!("failed: {e}")).await;
                Reply::message(Outcome::Failed, format!(":x: {title} — failed: {e}"))
            }
        },
    }
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
            ctx.audit(inv, &format!("failed: {shown}")).await;
            Reply::message(Outcome::Failed, format!(":x: {title} — {shown}"))
        }
    }
}

/// A command defined entirely in YAML (`action: job` or `action: http`): runs its job
/// or sends its request, with `{env}`, `{user}`, `{args}` and every `key=value` given
/// available to templates.
pub(crate) struct Custom;

#[async_trait]
impl Action for Custom {
    async fn run(&self, ctx: &Ctx<'_>, cmd: &CommandSpec, inv: Invocation) -> Reply {
        let action = match &cmd.action {
            ActionKind::Job(job) => ActionSpec::Job(job.clone()),
            ActionKind::Http(spec) => ActionSpec::Http(spec.clone()),
            ActionKind::Builtin(_) => {
                return Rejection::unsupported(&cmd.name, &inv.target).reply()
            }
        };
        let env = inv.target.env().unwrap_or("").to_owned();
        let args = inv.args.join(" ");
        let mut vars: Vec<(&str, &str)> = vec![("env", &env), ("user", ctx.user), ("args", &args)];
        vars.extend(inv.params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let title = format!("`{}`", inv.as_text());
        run_action(ctx, &inv, &title, &action, &vars).await
    }
}
