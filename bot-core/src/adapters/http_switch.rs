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
use crate::config::{Environment, HttpRequestSpec, JobSpec, Pool, WeightsSpec};
use crate::ports::{
    refuse_non_member, shares_from_weights, BuildProgress, Ci, CiError, HttpAction, Probe,
    ProbeError, Split, SwitchError, TrafficSwitch,
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
    /// The switch's `get` answer as JSON, with its URL (redacted: from here on it only
    /// goes into messages) and its body (for excerpts).
    async fn read(
        &self,
        env: &Environment,
        pool: &Pool,
    ) -> Result<(serde_json::Value, String, String), SwitchError> {
        let vars = [("env", env.name.as_str()), ("pool", pool.name.as_str())];
        let url = render_template(&self.url, &vars);
        let snap = self
            .probe
            .get(&url, REQUEST_TIMEOUT)
            .await
            .map_err(|e| unreachable(&url, &e))?;
        let url = redact_url(&url);
        if !(200..300).contains(&snap.status) {
            return Err(SwitchError::Unknown(format!(
                "HTTP {} from {url}: {}",
                snap.status,
                excerpt(&snap.body)
            )));
        }
        let json = serde_json::from_str(&snap.body).map_err(|_| {
            SwitchError::Unknown(format!(
                "{url} did not answer JSON: {}",
                excerpt(&snap.body)
            ))
        })?;
        Ok((json, url, snap.body))
    }

    /// The weights in force: the object of member → weight at `pointer`.
    async fn split(
        &self,
        env: &Environment,
        pool: &Pool,
        pointer: &str,
    ) -> Result<Split, SwitchError> {
        let (json, url, body) = self.read(env, pool).await?;
        let bad = || {
            SwitchError::Unknown(format!(
                "no object of member weights at {pointer} in the answer from {url}: {}",
                excerpt(&body)
            ))
        };
        let object = json
            .pointer(pointer)
            .and_then(serde_json::Value::as_object)
            .ok_or_else(bad)?;
        let mut weights = Vec::new();
        for m in &pool.members {
            let w = match object.get(&m.name) {
                None => 0,
                Some(v) => v
                    .as_u64()
                    .and_then(|w| u32::try_from(w).ok())
                    .ok_or_else(bad)?,
            };
            weights.push((m.name.clone(), w));
        }
        if let Some(stranger) = object
            .keys()
            .find(|k| !pool.members.iter().any(|m| &m.name == *k))
        {
            return Err(SwitchError::Unknown(format!(
                "{url} gives a weight to `{stranger}`, which is not a member of {} {}",
                env.name, pool.name
            )));
        }
        shares_from_weights(&weights).ok_or_else(|| {
            SwitchError::Unknown(format!("{url} gives no member of {} any weight", pool.name))
        })
    }

    async fn active(&self, env: &Environment, pool: &Pool) -> Result<String, SwitchError> {
        let (json, url, body) = self.read(env, pool).await?;
        let active = json
            .pointer(&self.pointer)
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| {
                SwitchError::Unknown(format!(
                    "no string at {} in the answer from {url}: {}",
                    self.pointer,
                    excerpt(&body)
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
    weights: Option<WeightsSpec>,
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
            weights: None,
        }
    }

    /// Shares traffic out by weight with `weights` (a canary's steps), when given.
    pub fn with_weights(mut self, weights: Option<WeightsSpec>) -> Self {
        self.weights = weights;
        self
    }

    /// Sends `req`; `Refused` naming the status unless it answers 2xx.
    async fn send(&self, req: &HttpRequestSpec) -> Result<(), SwitchError> {
        let snap = self
            .sender
            .send(req, REQUEST_TIMEOUT)
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
        Ok(())
    }
}

#[async_trait]
impl TrafficSwitch for HttpSwitch {
    async fn active(&self, env: &Environment, pool: &Pool) -> Result<String, SwitchError> {
        let active = self.read.active(env, pool).await?;
        // With weights, one member is active only when it takes all the traffic.
        if let Some(spec) = &self.weights {
            let split = self.read.split(env, pool, &spec.pointer).await?;
            if split.sole() != Some(active.as_str()) {
                return Err(SwitchError::Unknown(format!(
                    "traffic is shared out by weight ({split}): a canary is under way or was left part-way"
                )));
            }
        }
        Ok(active)
    }

    async fn switch_to(
        &self,
        env: &Environment,
        pool: &Pool,
        member: &str,
    ) -> Result<(), SwitchError> {
        refuse_non_member(env, pool, member)?;
        self.send(&render_request(&self.set, &vars(env, pool, member)))
            .await?;
        self.read.verify(env, pool, member).await?;
        // With weights, the switch must also have ended any split.
        if let Some(spec) = &self.weights {
            let split = self
                .read
                .split(env, pool, &spec.pointer)
                .await
                .map_err(|e| match e {
                    SwitchError::Unknown(m) => SwitchError::NotApplied(m),
                    other => other,
                })?;
            if split.sole() != Some(member) {
                return Err(SwitchError::NotApplied(format!(
                    "asked for all traffic on {member}, but the switch reports {split}"
                )));
            }
        }
        Ok(())
    }

    fn weighted(&self) -> bool {
        self.weights.is_some()
    }

    async fn set_split(
        &self,
        env: &Environment,
        pool: &Pool,
        split: &Split,
    ) -> Result<(), SwitchError> {
        let Some(spec) = &self.weights else {
            return Err(SwitchError::Refused(
                "this HTTP switch has no `weights` request, so it cannot share traffic out by weight"
                    .into(),
            ));
        };
        split.refuse_non_members(env, pool)?;
        let split = split.over(pool);
        let object: serde_json::Map<String, serde_json::Value> = split
            .shares()
            .iter()
            .map(|(m, p)| (m.clone(), serde_json::Value::from(*p)))
            .collect();
        let weights = serde_json::Value::Object(object).to_string();
        let mut req = render_request(
            &spec.set,
            &[("env", env.name.as_str()), ("pool", pool.name.as_str())],
        );
        // `{weights}` goes in as JSON, not as a string: we wrote it, from member names
        // JSON-escaped by serde, so it cannot add fields of its own.
        req.body = req.body.map(|b| b.replace("{weights}", &weights));
        self.send(&req).await?;
        let now = self
            .read
            .split(env, pool, &spec.pointer)
            .await
            .map_err(|e| match e {
                SwitchError::Unknown(m) => SwitchError::NotApplied(m),
                other => other,
            })?;
        if now == split {
            tracing::info!(env = %env.name, pool = %pool.name, %split, "traffic split set");
            Ok(())
        } else {
            Err(SwitchError::NotApplied(format!(
                "asked for {split}, but the switch reports {now}"
            )))
        }
    }

    async fn split(&self, env: &Environment, pool: &Pool) -> Result<Split, SwitchError> {
        match &self.weights {
            Some(spec) => self.read.split(env, pool, &spec.pointer).await,
            None => Ok(Split::all_on(pool, &self.read.active(env, pool).await?)),
        }
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
