//! Jobs as runs: restarts, force restarts, toy refreshes and the YAML-defined `job` /
//! `http` commands run a CI job or send an HTTP request as a persisted run with a live
//! progress message. The build's queue item and number are saved as soon as they are
//! known, so a replica taking the run over re-attaches to the same build instead of
//! starting another; a run that stopped between sending and hearing back is not sent
//! again, since whether it arrived is unknown.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{ActionKind, ActionSpec, CommandSpec, JobSpec};
use crate::context::{Action, Ctx};
use crate::failure::told;
use crate::ports::store::{Run, RunStatus};
use crate::ports::{BuildOutcome, BuildRef, CiError};
use crate::rejection::Rejection;
use crate::reply::{Invocation, Outcome, Reply};
use crate::runs::{self, Driver, LockFor, RunState, Stop};
use crate::steps::build::{follow_job, Start};
use crate::steps::request::send_http;
use crate::text::human;

/// A job run, as saved after every step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum JobRun {
    /// A CI job, or an HTTP request.
    Job {
        /// Where it is.
        step: JobStep,
        /// When the run began (Unix ms), for its duration.
        began_ms: u64,
    },
}

/// Where a job run is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub(crate) enum JobStep {
    /// Nothing sent yet.
    Ready,
    /// The job is being triggered: where its build is stays unknown until CI answers.
    Triggering,
    /// The build is queued or running here.
    Following {
        /// Where it was last seen.
        build: BuildRef,
    },
    /// The request is being sent: whether it arrived stays unknown until it answers.
    Sending,
}

impl RunState for JobRun {
    const VERSION: u32 = 1;

    fn legacy(_action: &str, state: &Value) -> Option<Self> {
        // {"build": BuildRef | null, "started": bool, "began_ms": n}
        let began_ms = state.get("began_ms")?.as_u64()?;
        let build = match state.get("build") {
            None | Some(Value::Null) => None,
            Some(b) => Some(serde_json::from_value::<BuildRef>(b.clone()).ok()?),
        };
        let started = state.get("started").and_then(Value::as_bool) == Some(true);
        let step = match (build, started) {
            (Some(build), _) => JobStep::Following { build },
            (None, true) => JobStep::Triggering,
            (None, false) => JobStep::Ready,
        };
        Some(JobRun::Job { step, began_ms })
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    u64::try_from(
        t.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or_default()
}

/// What a job run does: its action's name, its title in messages, what it runs and
/// with which template variables, and the lock it takes, if any.
pub(crate) struct Work<'a> {
    /// The action (`restart`, `toy`, `job` …).
    pub action: &'a str,
    /// The progress message's title.
    pub title: &'a str,
    /// The job or request.
    pub spec: &'a ActionSpec,
    /// Template variables.
    pub vars: &'a [(&'a str, &'a str)],
    /// The environment lock it holds while it runs.
    pub lock: Option<&'a str>,
}

/// Runs `work` as a new persisted run.
pub(crate) async fn run_action(ctx: &Ctx<'_>, inv: &Invocation, work: &Work<'_>) -> Reply {
    let state = JobRun::Job {
        step: JobStep::Ready,
        began_ms: unix_ms(ctx.now()),
    };
    let started = match work.lock {
        Some(env) => {
            let lock = LockFor {
                env,
                reason: inv.as_text(),
            };
            runs::start_locked(ctx, work.action, lock, inv, &state).await
        }
        None => runs::start(ctx, work.action, inv, &state).await,
    };
    match started {
        Ok(driver) => drive(ctx, driver, inv, work, state).await,
        Err(not) => not.reply(),
    }
}

/// Goes on with a taken-over job run from where its state says.
pub(crate) async fn resume_action(
    ctx: &Ctx<'_>,
    run: &Run,
    inv: &Invocation,
    work: &Work<'_>,
) -> Reply {
    match runs::resume::<JobRun>(ctx, run, work.title).await {
        Ok(r) => drive(ctx, r.driver, inv, work, r.state).await,
        Err(reply) => reply,
    }
}

/// How a job run ended, for its audit record and reply.
struct Ended {
    status: RunStatus,
    outcome: String,
    links: Vec<String>,
    reply: Reply,
}

async fn drive(
    ctx: &Ctx<'_>,
    driver: Driver<JobRun>,
    inv: &Invocation,
    work: &Work<'_>,
    state: JobRun,
) -> Reply {
    let JobRun::Job { step, began_ms } = state.clone();
    let began = SystemTime::UNIX_EPOCH + Duration::from_millis(began_ms);
    let elapsed = || ctx.now().duration_since(began).unwrap_or_default();
    let title = work.title;
    let ended = match (step, work.spec) {
        (JobStep::Triggering | JobStep::Sending, _) => lost_track(title),
        (JobStep::Following { build }, ActionSpec::Job(job)) => {
            match follow(ctx, &driver, job, Start::Reattach(build), title, began_ms).await {
                Ok((result, _)) => job_ended(title, job, result, elapsed()),
                Err(stop) => return stop.reply(),
            }
        }
        (JobStep::Ready, ActionSpec::Job(job)) => {
            let triggering = JobRun::Job {
                step: JobStep::Triggering,
                began_ms,
            };
            if let Err(stop) = driver.checkpoint(&triggering, "trigger the job").await {
                return stop.reply();
            }
            match follow(
                ctx,
                &driver,
                job,
                Start::Trigger(work.vars),
                title,
                began_ms,
            )
            .await
            {
                Ok((result, _)) => job_ended(title, job, result, elapsed()),
                Err(stop) => return stop.reply(),
            }
        }
        (JobStep::Ready, ActionSpec::Http(spec)) => {
            let sending = JobRun::Job {
                step: JobStep::Sending,
                began_ms,
            };
            if let Err(stop) = driver.checkpoint(&sending, "send the request").await {
                return stop.reply();
            }
            match send_http(ctx, spec, work.vars).await {
                Ok(detail) => Ended {
                    status: RunStatus::Done,
                    outcome: "ok".into(),
                    links: Vec::new(),
                    reply: Reply::message(
                        Outcome::Done,
                        format!(":white_check_mark: {title} — done ({detail})."),
                    ),
                },
                Err(e) => Ended {
                    status: RunStatus::Failed,
                    outcome: format!("failed: {e}"),
                    links: Vec::new(),
                    reply: Reply::message(Outcome::Failed, format!(":x: {title} — failed: {e}")),
                },
            }
        }
        // The command changed under a run taken over: a request where a job was.
        (JobStep::Following { .. }, ActionSpec::Http(_)) => lost_track(title),
    };
    if let Err(stop) = driver.finish(ended.status, &state).await {
        return stop.reply();
    }
    ctx.audit_run(inv, &ended.outcome, ended.links, Some(elapsed()))
        .await;
    ended.reply
}

/// A run left between sending and hearing back: whether it happened is unknown.
fn lost_track(title: &str) -> Ended {
    let why = "I lost track of it when the replica running it stopped; it may or may not have happened — check CI (or the service) before trying again";
    Ended {
        status: RunStatus::Failed,
        outcome: format!("failed: {why}"),
        links: Vec::new(),
        reply: Reply::message(Outcome::Failed, format!(":x: {title} — {why}.")),
    }
}

/// Follows the job's build, saving every new place it is seen.
async fn follow(
    ctx: &Ctx<'_>,
    driver: &Driver<JobRun>,
    job: &JobSpec,
    start: Start<'_>,
    title: &str,
    began_ms: u64,
) -> Result<(Result<BuildOutcome, CiError>, Duration), Stop> {
    let record = |at: BuildRef| -> BoxFuture<'_, Result<(), Stop>> {
        let state = JobRun::Job {
            step: JobStep::Following { build: at },
            began_ms,
        };
        Box::pin(async move { driver.save(&state).await })
    };
    follow_job(
        ctx,
        job,
        start,
        |line| Reply::message(Outcome::Progress, format!("{title}\n{line}")),
        &record,
    )
    .await
}

/// How a job's build ended, in words.
fn job_ended(
    title: &str,
    job: &JobSpec,
    result: Result<BuildOutcome, CiError>,
    took: Duration,
) -> Ended {
    match result {
        Ok(b) if b.result.is_success() => Ended {
            status: RunStatus::Done,
            outcome: "ok".into(),
            links: vec![b.url.clone()],
            reply: Reply::message(
                Outcome::Done,
                format!(
                    ":white_check_mark: {title} — build <{}|#{}> succeeded in {}.",
                    b.url,
                    b.number,
                    human(took)
                ),
            ),
        },
        Ok(b) => Ended {
            status: RunStatus::Failed,
            outcome: format!("failed: build {}", b.result.as_str()),
            links: vec![b.url.clone()],
            reply: Reply::message(
                Outcome::Failed,
                format!(
                    ":x: {title} — build <{}|#{}> of `{}` ended {}. <{}|Console>",
                    b.url,
                    b.number,
                    job.job,
                    b.result.as_str(),
                    b.console_url
                ),
            ),
        },
        Err(e) => {
            let shown = told(&e);
            Ended {
                status: RunStatus::Failed,
                outcome: format!("failed: {shown}"),
                links: Vec::new(),
                reply: Reply::message(Outcome::Failed, format!(":x: {title} — {shown}")),
            }
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
    // Only declared words reach the templates, lower-cased, and never a built-in.
    vars.extend(
        inv.params
            .iter()
            .map(|(k, v)| (k.to_lowercase(), v.clone()))
            .filter(|(k, _)| {
                cmd.params.contains(k) && !crate::config::BUILT_INS.contains(&k.as_str())
            }),
    );
    Some(CustomParts {
        spec,
        title: crate::text::code(&inv.as_text()),
        vars,
    })
}

#[async_trait]
impl Action for Custom {
    /// Typed `key=value` words: only the command's declared `params`, never a
    /// built-in (`user=U0BOSS` does not make anyone else the requester).
    fn check(&self, config: &crate::config::Config, inv: &Invocation) -> Result<(), Rejection> {
        let Some(cmd) = config.command(&inv.command) else {
            return Ok(());
        };
        let names: Vec<String> = inv
            .params
            .iter()
            .map(|(k, _)| k.to_lowercase())
            .filter(|k| k != crate::reply::OVERRIDE_WINDOW && k != "override")
            .filter(|k| !cmd.params.contains(k))
            .collect();
        if names.is_empty() {
            return Ok(());
        }
        let builtin = names
            .iter()
            .filter(|n| crate::config::BUILT_INS.contains(&n.as_str()))
            .cloned()
            .collect();
        Err(Rejection::UndeclaredParams {
            command: cmd.name.clone(),
            names,
            declared: cmd.params.clone(),
            builtin,
        })
    }

    async fn run(&self, ctx: &Ctx<'_>, cmd: &CommandSpec, inv: Invocation) -> Reply {
        let Some(CustomParts { spec, title, vars }) = custom_parts(cmd, &inv) else {
            return Rejection::unsupported(&cmd.name, &inv.target).reply();
        };
        let mut vars: Vec<(&str, &str)> =
            vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        vars.push(("user", ctx.user));
        let work = Work {
            action: cmd.action.name(),
            title: &title,
            spec: &spec,
            vars: &vars,
            lock: None,
        };
        run_action(ctx, &inv, &work).await
    }

    async fn resume(&self, ctx: &Ctx<'_>, cmd: &CommandSpec, inv: Invocation, run: Run) -> Reply {
        let Some(CustomParts { spec, title, vars }) = custom_parts(cmd, &inv) else {
            return Rejection::unsupported(&cmd.name, &inv.target).reply();
        };
        let mut vars: Vec<(&str, &str)> =
            vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        vars.push(("user", ctx.user));
        let work = Work {
            action: cmd.action.name(),
            title: &title,
            spec: &spec,
            vars: &vars,
            lock: None,
        };
        resume_action(ctx, &run, &inv, &work).await
    }
}
