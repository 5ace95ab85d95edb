//! [`HttpSwitch`] (a configured HTTP request + GET/JSON pointer read-back) and
//! [`JenkinsSwitch`] (a switch job + the same read-back).
//!
//! Templates see `{colour}` (the member taking traffic), `{env}` and `{pool}`.
//! URLs put into errors go through [`redact_url`]: no userinfo, no query values.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::adapters::redact::{redact_url, redact_urls_in};
use crate::adapters::template::{render_params, render_request, render_template};
use crate::config::{Environment, HttpRequestSpec, JobSpec, Pool};
use crate::ports::{
    refuse_non_member, BuildProgress, Ci, CiError, HttpAction, Probe, ProbeError, SwitchError,
    TrafficSwitch,
};

/// Per-request limit for switch requests and read-backs.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest body excerpt carried in an error.
const EXCERPT: usize = 200;

fn vars<'a>(env: &'a Environment, pool: &'a Pool, colour: &'a str) -> [(&'a str, &'a str); 3] {
    [
        ("colour", colour),
        ("env", env.name.as_str()),
        ("pool", pool.name.as_str()),
    ]
}

fn excerpt(body: &str) -> String {
    let one_line = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > EXCERPT {
        format!("{}…", one_line.chars().take(EXCERPT).collect::<String>())
    } else {
        one_line
    }
}

fn unreachable(address: &str, err: &ProbeError) -> SwitchError {
    SwitchError::Unreachable {
        address: redact_url(address),
        reason: redact_urls_in(&err.to_string()),
    }
}

/// Reads the active member: GET a URL, take a JSON pointer.
#[derive(Clone)]
struct ReadBack {
    url: String,
    pointer: String,
    probe: Arc<dyn Probe>,
}

impl ReadBack {
    async fn active(&self, env: &Environment, pool: &Pool) -> Result<String, SwitchError> {
        let vars = [("env", env.name.as_str()), ("pool", pool.name.as_str())];
        let url = render_template(&self.url, &vars);
        let snap = self
            .probe
            .get(&url, REQUEST_TIMEOUT)
            .await
            .map_err(|e| unreachable(&url, &e))?;
        // From here on, `url` only goes into messages.
        let url = redact_url(&url);
        if !(200..300).contains(&snap.status) {
            return Err(SwitchError::Unknown(format!(
                "HTTP {} from {url}: {}",
                snap.status,
                excerpt(&snap.body)
            )));
        }
        let json: serde_json::Value = serde_json::from_str(&snap.body).map_err(|_| {
            SwitchError::Unknown(format!(
                "{url} did not answer JSON: {}",
                excerpt(&snap.body)
            ))
        })?;
        let active = json
            .pointer(&self.pointer)
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| {
                SwitchError::Unknown(format!(
                    "no string at {} in the answer from {url}: {}",
                    self.pointer,
                    excerpt(&snap.body)
                ))
            })?;
        if !pool.members.iter().any(|m| m.name == active) {
            return Err(SwitchError::Unknown(format!(
                "{url} names `{active}`, which is not a member of {} {}",
                env.name, pool.name
            )));
        }
        Ok(active.to_owned())
    }

    /// Reads back after a switch; `NotApplied` unless `member` is now active.
    async fn verify(
        &self,
        env: &Environment,
        pool: &Pool,
        member: &str,
    ) -> Result<(), SwitchError> {
        let active = self.active(env, pool).await.map_err(|e| match e {
            SwitchError::Unknown(m) => SwitchError::NotApplied(m),
            other => other,
        })?;
        if active == member {
            tracing::info!(env = %env.name, pool = %pool.name, member, "traffic switched");
            Ok(())
        } else {
            Err(SwitchError::NotApplied(format!(
                "asked for {member}, but the switch still reports {active}"
            )))
        }
    }
}

/// Switches with a configured HTTP request, verifies with a GET and a JSON pointer.
#[derive(Clone)]
pub struct HttpSwitch {
    set: HttpRequestSpec,
    read: ReadBack,
    sender: Arc<dyn HttpAction>,
}

impl HttpSwitch {
    /// A switch sending `set` (templated) through `sender` and reading `pointer`
    /// from `get_url` with `probe`.
    pub fn new(
        set: HttpRequestSpec,
        get_url: impl Into<String>,
        pointer: impl Into<String>,
        probe: Arc<dyn Probe>,
        sender: Arc<dyn HttpAction>,
    ) -> Self {
        Self {
            set,
            read: ReadBack {
                url: get_url.into(),
                pointer: pointer.into(),
                probe,
            },
            sender,
        }
    }
}

#[async_trait]
impl TrafficSwitch for HttpSwitch {
    async fn active(&self, env: &Environment, pool: &Pool) -> Result<String, SwitchError> {
        self.read.active(env, pool).await
    }

    async fn switch_to(
        &self,
        env: &Environment,
        pool: &Pool,
        member: &str,
    ) -> Result<(), SwitchError> {
        refuse_non_member(env, pool, member)?;
        let req = render_request(&self.set, &vars(env, pool, member));
        let snap = self
            .sender
            .send(&req, REQUEST_TIMEOUT)
            .await
            .map_err(|e| unreachable(&req.url, &e))?;
        if !(200..300).contains(&snap.status) {
            return Err(SwitchError::Refused(format!(
                "HTTP {} from {} {}: {}",
                snap.status,
                req.method.to_ascii_uppercase(),
                redact_url(&req.url),
                excerpt(&snap.body)
            )));
        }
        self.read.verify(env, pool, member).await
    }
}

/// Switches by running a CI job, verifies with a GET and a JSON pointer.
#[derive(Clone)]
pub struct JenkinsSwitch {
    job: JobSpec,
    ci: Arc<dyn Ci>,
    read: ReadBack,
}

impl JenkinsSwitch {
    /// A switch running `job` (parameters templated) on `ci`, reading `pointer`
    /// from `get_url` with `probe`.
    pub fn new(
        job: JobSpec,
        ci: Arc<dyn Ci>,
        get_url: impl Into<String>,
        pointer: impl Into<String>,
        probe: Arc<dyn Probe>,
    ) -> Self {
        Self {
            job,
            ci,
            read: ReadBack {
                url: get_url.into(),
                pointer: pointer.into(),
                probe,
            },
        }
    }
}

#[async_trait]
impl TrafficSwitch for JenkinsSwitch {
    async fn active(&self, env: &Environment, pool: &Pool) -> Result<String, SwitchError> {
        self.read.active(env, pool).await
    }

    async fn switch_to(
        &self,
        env: &Environment,
        pool: &Pool,
        member: &str,
    ) -> Result<(), SwitchError> {
        refuse_non_member(env, pool, member)?;
        let params = render_params(&self.job.parameters, &vars(env, pool, member));
        let ignore = |_: BuildProgress| {};
        let outcome = self
            .ci
            .run_job(&self.job.job, &params, &ignore)
            .await
            .map_err(|e| match e {
                CiError::Unreachable { url, reason } => SwitchError::Unreachable {
                    address: redact_url(&url),
                    reason: redact_urls_in(&reason),
                },
                other => SwitchError::Refused(redact_urls_in(&format!(
                    "switch job `{}`: {other}",
                    self.job.job
                ))),
            })?;
        if !outcome.result.is_success() {
            return Err(SwitchError::Refused(format!(
                "switch job `{}` #{} ended {} ({})",
                self.job.job,
                outcome.number,
                outcome.result.as_str(),
                redact_url(&outcome.console_url)
            )));
        }
        self.read.verify(env, pool, member).await
    }
}
