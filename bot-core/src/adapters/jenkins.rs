//! [`JenkinsClient`]: the real [`Ci`] over Jenkins' remote API (reqwest).
//!
//! Trigger (`buildWithParameters` / `build`, Basic auth, crumb retry on 403) →
//! queue item (until `executable`) → build (until `building` is false), with
//! backing-off polls and one overall deadline.
//!
//! Credentials only ever go to the configured base URL's origin: a URL Jenkins names
//! (`Location`, `executable.url`, a build's `url`) on another origin — a root URL
//! misconfigured as `http://…` behind a TLS proxy, or a hostile answer — is followed
//! on the configured origin instead (same path and query), with a warning logged once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderValue, COOKIE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use serde::Deserialize;

use crate::adapters::redact::{redact_url, redact_urls_in};
use crate::config::JenkinsConfig;
use crate::ports::{BuildOutcome, BuildProgress, BuildRef, BuildResult, Ci, CiError, Commit};

/// Polls back off up to this interval (or `poll_interval`, if that is longer). Polling never backs off beyond this, so a finished build is noticed within a
/// second: the bot must add under 1 s on top of Jenkins (one GET per second per
/// running build is nothing for Jenkins).
const MAX_POLL: Duration = Duration::from_secs(1);
/// Per-request limit; the overall `timeout` still applies on top.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Connection attempts give up after this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Consecutive transport failures tolerated while polling (Jenkins restarting, a blip).
const POLL_RETRIES: u32 = 3;
/// Longest body excerpt carried in an error.
const EXCERPT: usize = 200;

/// Triggers parameterised jobs and follows queue item → build → result.
pub struct JenkinsClient {
    config: JenkinsConfig,
    base: String,
    http: reqwest::Client,
    /// Set once the "Jenkins names another origin" warning has been logged.
    warned_origin: AtomicBool,
}

impl std::fmt::Debug for JenkinsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JenkinsClient")
            .field("url", &redact_url(&self.base))
            .field("user", &self.config.user)
            .finish_non_exhaustive()
    }
}

impl JenkinsClient {
    /// A client for the configured Jenkins.
    pub fn new(config: JenkinsConfig) -> Self {
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("crossroads/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        let base = config.url.trim_end_matches('/').to_owned();
        Self {
            config,
            base,
            http,
            warned_origin: AtomicBool::new(false),
        }
    }

    /// `{base}/job/a/job/b` for the job path `a/b` (segments percent-encoded).
    pub fn job_url(&self, job: &str) -> String {
        let mut url = self.base.clone();
        for seg in job.split('/').filter(|s| !s.is_empty()) {
            url.push_str("/job/");
            url.push_str(&encode_segment(seg));
        }
        url
    }

    fn unreachable(&self, err: &reqwest::Error) -> CiError {
        CiError::Unreachable {
            url: redact_url(&self.base),
            reason: redact_urls_in(&describe(err)),
        }
    }

    fn auth(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        req.basic_auth(&self.config.user, Some(self.config.token.expose()))
            .timeout(REQUEST_TIMEOUT)
    }

    /// Triggers the job; returns the queue item URL from `Location`.
    /// POSTs the build request; the queue item's URL.
    async fn queue(&self, job: &str, params: &[(String, String)]) -> Result<String, CiError> {
        let endpoint = if params.is_empty() {
            "build"
        } else {
            "buildWithParameters"
        };
        let url = format!("{}/{endpoint}", self.job_url(job));
        let send = |extra: HeaderMap| {
            let mut req = self.auth(self.http.post(&url)).headers(extra);
            if !params.is_empty() {
                req = req.form(params);
            }
            req.send()
        };
        let mut resp = send(HeaderMap::new())
            .await
            .map_err(|e| self.unreachable(&e))?;
        if resp.status() == StatusCode::FORBIDDEN {
            // Perhaps CSRF protection wants a crumb (password auth, old Jenkins).
            if let Some(headers) = self.crumb(job).await? {
                tracing::debug!(job, "trigger refused without a crumb; retrying with one");
                resp = send(headers).await.map_err(|e| self.unreachable(&e))?;
            }
        }
        let status = resp.status();
        match status.as_u16() {
            200..=399 => {
                let location = resp
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        CiError::Protocol(format!(
                            "Jenkins answered HTTP {} to the trigger of `{job}` without a queue item location",
                            status.as_u16()
                        ))
                    })?;
                Ok(self.on_base_origin(&location))
            }
            401 | 403 => Err(CiError::Unauthorized {
                job: job.to_owned(),
                status: status.as_u16(),
            }),
            404 => Err(CiError::NoSuchJob {
                job: job.to_owned(),
            }),
            code => {
                let body = resp.text().await.unwrap_or_default();
                Err(CiError::Rejected {
                    job: job.to_owned(),
                    status: code,
                    reason: excerpt(&body),
                })
            }
        }
    }

    /// Fetches a crumb with its session cookie; `None` when CSRF protection is off
    /// (404) or the issuer is otherwise unavailable.
    async fn crumb(&self, job: &str) -> Result<Option<HeaderMap>, CiError> {
        let url = format!("{}/crumbIssuer/api/json", self.base);
        let resp = self
            .auth(self.http.get(&url))
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        if !resp.status().is_success() {
            return Ok(None);
        }
        let cookies: Vec<String> = resp
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .map(|kv| kv.trim().to_owned())
            .filter(|kv| kv.contains('='))
            .collect();
        let body = resp.text().await.map_err(|e| self.unreachable(&e))?;
        let crumb: Crumb = parse(&body, "crumb issuer")?;
        let mut headers = HeaderMap::new();
        let name = reqwest::header::HeaderName::from_bytes(crumb.crumb_request_field.as_bytes())
            .map_err(|_| {
                CiError::Protocol(format!(
                    "crumb issuer named an invalid header `{}` (job `{job}`)",
                    crumb.crumb_request_field
                ))
            })?;
        let value = HeaderValue::from_str(&crumb.crumb)
            .map_err(|_| CiError::Protocol("crumb issuer returned an invalid crumb".into()))?;
        headers.insert(name, value);
        if !cookies.is_empty() {
            if let Ok(v) = HeaderValue::from_str(&cookies.join("; ")) {
                headers.insert(COOKIE, v);
            }
        }
        Ok(Some(headers))
    }

    /// A URL Jenkins named, on the configured origin (see [`on_origin`]); warns once
    /// when Jenkins names another origin.
    fn on_base_origin(&self, named: &str) -> String {
        let (url, moved) = on_origin(&self.base, named);
        if moved && !self.warned_origin.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                configured = %redact_url(&self.base),
                named = %redact_url(named),
                "Jenkins names URLs on another origin than the configured one (check its \
                 root URL setting); following them on the configured origin instead"
            );
        }
        url
    }

    /// GETs `{url}api/json`, tolerating a few transport failures; maps 401/403;
    /// returns the body of a 200.
    async fn poll_body(&self, url: &str, job: &str, what: &str) -> Result<String, CiError> {
        let api = format!("{}api/json", with_slash(url));
        let mut failures = 0;
        loop {
            let result = self.auth(self.http.get(&api)).send().await;
            let resp = match result {
                Ok(resp) => resp,
                Err(e) => {
                    failures += 1;
                    if failures > POLL_RETRIES {
                        return Err(self.unreachable(&e));
                    }
                    tracing::debug!(job, what, error = %redact_urls_in(&describe(&e)), "poll failed; retrying");
                    tokio::time::sleep(self.config.poll_interval).await;
                    continue;
                }
            };
            let status = resp.status();
            match status.as_u16() {
                200 => return resp.text().await.map_err(|e| self.unreachable(&e)),
                401 | 403 => {
                    return Err(CiError::Unauthorized {
                        job: job.to_owned(),
                        status: status.as_u16(),
                    })
                }
                404 => {
                    return Err(CiError::Protocol(format!(
                        "the {what} of `{job}` disappeared from Jenkins (HTTP 404 at {})",
                        redact_url(&api)
                    )))
                }
                code => {
                    let body = resp.text().await.unwrap_or_default();
                    return Err(CiError::Protocol(format!(
                        "HTTP {code} reading the {what} of `{job}`: {}",
                        excerpt(&body)
                    )));
                }
            }
        }
    }

    /// Follows a queue item to its build, then the build to its result.
    async fn follow_queue(
        &self,
        job: &str,
        item_url: &str,
        progress: &(dyn Fn(BuildProgress) + Send + Sync),
    ) -> Result<BuildOutcome, CiError> {
        // Queue item → executable.
        let mut backoff = Backoff::new(self.config.poll_interval);
        let mut last_why: Option<Option<String>> = None;
        let (number, started_url) = loop {
            let body = self.poll_body(item_url, job, "queue item").await?;
            match read_queue_item(&body)? {
                QueueState::Started { number, url } => break (number, url),
                QueueState::Cancelled => {
                    return Err(CiError::Cancelled {
                        job: job.to_owned(),
                    })
                }
                QueueState::Waiting { why } => {
                    if last_why.as_ref() != Some(&why) {
                        progress(BuildProgress::Queued { why: why.clone() });
                        last_why = Some(why);
                    }
                }
            }
            backoff.sleep().await;
        };
        self.follow_build(job, number, &started_url, progress).await
    }

    /// Follows a started build to its result.
    async fn follow_build(
        &self,
        job: &str,
        number: u64,
        url: &str,
        progress: &(dyn Fn(BuildProgress) + Send + Sync),
    ) -> Result<BuildOutcome, CiError> {
        // `build_url` is Jenkins' own link, shown to people; `poll_url` is where we ask.
        let mut build_url = with_slash(url);
        let mut poll_url = self.on_base_origin(&build_url);
        tracing::info!(job, number, url = %redact_url(&build_url), "following build");
        progress(BuildProgress::Building {
            number,
            url: build_url.clone(),
            percent: None,
        });
        let mut backoff = Backoff::new(self.config.poll_interval);
        loop {
            let body = self.poll_body(&poll_url, job, "build").await?;
            let build = read_build(&body, SystemTime::now())?;
            if let Some(url) = build.url.as_deref().filter(|u| !u.is_empty()) {
                build_url = with_slash(url);
                poll_url = self.on_base_origin(&build_url);
            }
            if let Some(result) = build.result {
                return Ok(BuildOutcome {
                    number: build.number,
                    console_url: format!("{build_url}console"),
                    url: build_url,
                    result,
                    duration: build.duration,
                });
            }
            // Not finished, or finished without a result recorded yet.
            progress(BuildProgress::Building {
                number: build.number,
                url: build_url.clone(),
                percent: build.percent,
            });
            // Back off while the build has long to go, but be back by its estimated end.
            backoff.sleep_at_most(build.remaining).await;
        }
    }

    /// Gives up after the configured timeout.
    async fn bounded<F>(&self, job: &str, work: F) -> Result<BuildOutcome, CiError>
    where
        F: std::future::Future<Output = Result<BuildOutcome, CiError>>,
    {
        let started = Instant::now();
        match tokio::time::timeout(self.config.timeout, work).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(
                    job,
                    after_s = started.elapsed().as_secs(),
                    "gave up waiting for Jenkins"
                );
                Err(CiError::Timeout {
                    job: job.to_owned(),
                    after: self.config.timeout,
                })
            }
        }
    }
}

#[async_trait]
impl Ci for JenkinsClient {
    async fn run_job(
        &self,
        job: &str,
        params: &[(String, String)],
        progress: &(dyn Fn(BuildProgress) + Send + Sync),
    ) -> Result<BuildOutcome, CiError> {
        self.bounded(job, async {
            let item_url = self.queue(job, params).await?;
            tracing::info!(job, queue_item = %redact_url(&item_url), "build queued");
            self.follow_queue(job, &item_url, progress).await
        })
        .await
    }

    async fn trigger(
        &self,
        job: &str,
        params: &[(String, String)],
    ) -> Result<Option<BuildRef>, CiError> {
        let item = self.queue(job, params).await?;
        tracing::info!(job, queue_item = %redact_url(&item), "build queued");
        Ok(Some(BuildRef::Queued { item }))
    }

    async fn reattach(
        &self,
        job: &str,
        at: &BuildRef,
        progress: &(dyn Fn(BuildProgress) + Send + Sync),
    ) -> Result<BuildOutcome, CiError> {
        self.bounded(job, async {
            match at {
                BuildRef::Queued { item } => {
                    // Only ever on Jenkins' own origin: the item URL came from it.
                    let item = self.on_base_origin(item);
                    self.follow_queue(job, &item, progress).await
                }
                BuildRef::Started { number, url } => {
                    self.follow_build(job, *number, url, progress).await
                }
            }
        })
        .await
    }

    async fn changes(&self, job: &str, url: &str) -> Result<Option<Vec<Commit>>, CiError> {
        let poll = self.on_base_origin(&with_slash(url));
        let body = self.poll_body(&poll, job, "build").await?;
        Ok(read_changes(&body))
    }
}

/// A [`Ci`] for configurations without Jenkins: every job fails with [`CiError::NotConfigured`].
pub struct NoCi;

#[async_trait]
impl Ci for NoCi {
    async fn run_job(
        &self,
        _job: &str,
        _params: &[(String, String)],
        _progress: &(dyn Fn(BuildProgress) + Send + Sync),
    ) -> Result<BuildOutcome, CiError> {
        Err(CiError::NotConfigured)
    }

    async fn trigger(
        &self,
        _job: &str,
        _params: &[(String, String)],
    ) -> Result<Option<BuildRef>, CiError> {
        Err(CiError::NotConfigured)
    }

    async fn reattach(
        &self,
        _job: &str,
        _at: &BuildRef,
        _progress: &(dyn Fn(BuildProgress) + Send + Sync),
    ) -> Result<BuildOutcome, CiError> {
        Err(CiError::NotConfigured)
    }

    async fn changes(&self, _job: &str, _url: &str) -> Result<Option<Vec<Commit>>, CiError> {
        Err(CiError::NotConfigured)
    }
}

// ---------------------------------------------------------------- wire shapes

/// Resolves a URL Jenkins named (absolute, or relative to `base`) onto `base`'s
/// origin, so credentials never go anywhere else: on another origin (or with other
/// userinfo) only its path and query are kept, and the second value is `true`.
pub fn on_origin(base: &str, named: &str) -> (String, bool) {
    let fallback = || (format!("{base}/{}", named.trim_start_matches('/')), false);
    let Ok(base_url) = url::Url::parse(&format!("{base}/")) else {
        return fallback();
    };
    let Ok(joined) = base_url.join(named) else {
        return fallback();
    };
    // A URL Jenkins named ends up in a Slack link `<url|#12>`: `|` must not end it.
    let linkable = |u: url::Url| String::from(u).replace('|', "%7C");
    if joined.origin() == base_url.origin()
        && joined.username() == base_url.username()
        && joined.password() == base_url.password()
    {
        return (linkable(joined), false);
    }
    let mut rebased = base_url;
    rebased.set_path(joined.path());
    rebased.set_query(joined.query());
    (linkable(rebased), true)
}

/// A queue item, as the client reads Jenkins' `api/json` of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueState {
    /// Still waiting, with Jenkins' reason (`why`).
    Waiting {
        /// Why it waits, e.g. "Waiting for next available executor".
        why: Option<String>,
    },
    /// Taken out of the queue without running.
    Cancelled,
    /// Running as build `number` at `url`.
    Started {
        /// Build number.
        number: u64,
        /// The build's URL as Jenkins names it.
        url: String,
    },
}

/// Reads a queue item's `api/json` (public for tests and fuzzing).
pub fn read_queue_item(body: &str) -> Result<QueueState, CiError> {
    let item: QueueItem = parse(body, "queue item")?;
    if let Some(exe) = item.executable {
        return Ok(QueueState::Started {
            number: exe.number,
            url: exe.url,
        });
    }
    if item.cancelled == Some(true) || item.class.ends_with("$LeftItem") {
        return Ok(QueueState::Cancelled);
    }
    Ok(QueueState::Waiting { why: item.why })
}

/// A build, as the client reads Jenkins' `api/json` of it at some moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildState {
    /// Build number.
    pub number: u64,
    /// The build's URL as Jenkins names it, when it does.
    pub url: Option<String>,
    /// The result, once it is finished and recorded.
    pub result: Option<BuildResult>,
    /// How long it ran (finished builds).
    pub duration: Duration,
    /// Progress from its start and Jenkins' estimate, capped at 99 (running builds).
    pub percent: Option<u8>,
    /// Time left until the estimated end (running builds with an estimate).
    pub remaining: Option<Duration>,
}

/// The commits of a build's `api/json` (`changeSets` of a Pipeline run, `changeSet`
/// of a freestyle build); `None` when it has neither.
pub fn read_changes(body: &str) -> Option<Vec<Commit>> {
    let build: serde_json::Value = serde_json::from_str(body).ok()?;
    // Pipeline runs: `changeSets` (an array); freestyle builds: `changeSet` (one).
    let sets: Vec<&serde_json::Value> = match build.get("changeSets") {
        Some(serde_json::Value::Array(sets)) => sets.iter().collect(),
        _ => vec![build.get("changeSet")?],
    };
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    Some(
        sets.iter()
            .filter_map(|set| set.get("items")?.as_array())
            .flatten()
            .map(|item| Commit {
                sha: text(
                    item.get("commitId")
                        .or_else(|| item.get("id"))
                        .unwrap_or_default(),
                ),
                author: text(&item["author"]["fullName"]),
                // Jenkins' changeSet item `timestamp`: milliseconds since the epoch.
                time: item
                    .get("timestamp")
                    .and_then(serde_json::Value::as_u64)
                    .filter(|ms| *ms > 0 && *ms < 7_258_118_400_000)
                    .map(|ms| std::time::UNIX_EPOCH + Duration::from_millis(ms)),
                title: item
                    .get("msg")
                    .and_then(|m| m.as_str())
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned)
                    .unwrap_or_else(|| {
                        text(&item["comment"])
                            .lines()
                            .next()
                            .unwrap_or_default()
                            .to_owned()
                    }),
            })
            .collect(),
    )
}

/// Reads a build's `api/json` as of `now` (public for tests and fuzzing); an
/// unknown result is an error.
pub fn read_build(body: &str, now: SystemTime) -> Result<BuildState, CiError> {
    let build: Build = parse(body, "build")?;
    let result = match (build.building, build.result.as_deref()) {
        (false, Some(result)) => Some(parse_result(result)?),
        _ => None,
    };
    Ok(BuildState {
        number: build.number,
        url: build.url,
        result,
        duration: Duration::from_millis(build.duration),
        percent: percent(build.timestamp, build.estimated_duration, now),
        remaining: remaining(build.timestamp, build.estimated_duration, now),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Crumb {
    crumb: String,
    crumb_request_field: String,
}

#[derive(Deserialize)]
struct QueueItem {
    #[serde(rename = "_class", default)]
    class: String,
    #[serde(default)]
    why: Option<String>,
    #[serde(default)]
    cancelled: Option<bool>,
    #[serde(default)]
    executable: Option<Executable>,
}

#[derive(Deserialize)]
struct Executable {
    number: u64,
    url: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Build {
    number: u64,
    #[serde(default)]
    url: Option<String>,
    building: bool,
    #[serde(default)]
    result: Option<String>,
    #[serde(default)]
    duration: u64,
    #[serde(default = "unknown_estimate")]
    estimated_duration: i64,
    #[serde(default)]
    timestamp: u64,
}

fn unknown_estimate() -> i64 {
    -1
}

// ---------------------------------------------------------------- helpers

/// Polling interval that starts at `poll_interval` and grows ×1.5 up to [`MAX_POLL`].
struct Backoff {
    start: Duration,
    next: Duration,
    max: Duration,
}

impl Backoff {
    fn new(start: Duration) -> Self {
        let start = start.max(Duration::from_millis(10));
        Self {
            start,
            next: start,
            max: MAX_POLL.max(start),
        }
    }
    async fn sleep(&mut self) {
        self.sleep_at_most(None).await;
    }
    /// Sleeps the backed-off interval, or less when `limit` comes sooner (never under the start interval).
    async fn sleep_at_most(&mut self, limit: Option<Duration>) {
        let wait = limit.map_or(self.next, |l| self.next.min(l.max(self.start)));
        tokio::time::sleep(wait).await;
        self.next = self.next.mul_f64(1.5).min(self.max);
    }
}

/// Time left until a build's estimated end, when Jenkins gave an estimate.
fn remaining(timestamp_ms: u64, estimated_ms: i64, now: SystemTime) -> Option<Duration> {
    let estimated = u64::try_from(estimated_ms).ok().filter(|e| *e > 0)?;
    let now_ms = u64::try_from(now.duration_since(UNIX_EPOCH).ok()?.as_millis()).ok()?;
    let end = timestamp_ms.checked_add(estimated)?;
    Some(Duration::from_millis(end.saturating_sub(now_ms)))
}

/// Progress from Jenkins' start time and estimate, capped at 99 while running.
fn percent(timestamp_ms: u64, estimated_ms: i64, now: SystemTime) -> Option<u8> {
    let estimated = u64::try_from(estimated_ms).ok().filter(|e| *e > 0)?;
    if timestamp_ms == 0 {
        return None;
    }
    let now_ms = u64::try_from(now.duration_since(UNIX_EPOCH).ok()?.as_millis()).ok()?;
    let elapsed = now_ms.saturating_sub(timestamp_ms);
    let pct = elapsed.saturating_mul(100) / estimated;
    Some(u8::try_from(pct.min(99)).unwrap_or(99))
}

fn parse_result(result: &str) -> Result<BuildResult, CiError> {
    Ok(match result {
        "SUCCESS" => BuildResult::Success,
        "UNSTABLE" => BuildResult::Unstable,
        "FAILURE" => BuildResult::Failure,
        "ABORTED" => BuildResult::Aborted,
        "NOT_BUILT" => BuildResult::NotBuilt,
        other => {
            return Err(CiError::Protocol(format!(
                "unknown build result `{}`",
                excerpt(other)
            )))
        }
    })
}

fn parse<T: for<'de> Deserialize<'de>>(body: &str, what: &str) -> Result<T, CiError> {
    serde_json::from_str(body)
        .map_err(|e| CiError::Protocol(format!("cannot read the {what} ({e}): {}", excerpt(body))))
}

fn with_slash(url: &str) -> String {
    if url.ends_with('/') {
        url.to_owned()
    } else {
        format!("{url}/")
    }
}

/// Percent-encodes one path segment (everything but RFC 3986 unreserved characters).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A short, single-line excerpt of an answer body (HTML tags dropped).
fn excerpt(body: &str) -> String {
    let mut text = String::with_capacity(body.len().min(EXCERPT * 2));
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if in_tag => {}
            c => text.push(c),
        }
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let joined = words.join(" ");
    if joined.chars().count() > EXCERPT {
        let cut: String = joined.chars().take(EXCERPT).collect();
        format!("{cut}…")
    } else if joined.is_empty() {
        "(empty answer)".to_owned()
    } else {
        joined
    }
}

/// The innermost cause of a reqwest error, e.g. "Connection refused (os error 111)".
fn describe(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        return "no answer in time".to_owned();
    }
    let mut cur: &(dyn std::error::Error + 'static) = err;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_counts_down_to_the_estimated_end_and_stops_at_zero() {
        let start = UNIX_EPOCH + Duration::from_secs(1_000);
        let at = |ms| start + Duration::from_millis(ms);
        assert_eq!(
            remaining(1_000_000, 4_000, at(1_000)),
            Some(Duration::from_millis(3_000))
        );
        assert_eq!(
            remaining(1_000_000, 4_000, at(9_000)),
            Some(Duration::ZERO),
            "overdue: poll now"
        );
        assert_eq!(remaining(1_000_000, -1, at(1_000)), None, "no estimate");
    }

    #[test]
    fn percent_is_capped_and_needs_an_estimate() {
        let now = UNIX_EPOCH + Duration::from_millis(1_000_000);
        assert_eq!(percent(1_000_000 - 500, 1000, now), Some(50));
        assert_eq!(percent(1_000_000 - 5000, 1000, now), Some(99));
        assert_eq!(percent(1_000_000 - 500, -1, now), None);
        assert_eq!(percent(1_000_000 - 500, 0, now), None);
        // Jenkins' clock ahead of ours: no negative progress.
        assert_eq!(percent(1_000_000 + 500, 1000, now), Some(0));
    }

    #[test]
    fn excerpts_are_short_single_line_text() {
        assert_eq!(
            excerpt("<html><body><h1>Error</h1>\n<p>No such parameter: FOO</p></body></html>"),
            "Error No such parameter: FOO"
        );
        assert!(excerpt(&"x".repeat(1000)).chars().count() <= EXCERPT + 1);
        assert_eq!(excerpt(""), "(empty answer)");
    }

    #[test]
    fn job_paths_become_nested_job_urls() {
        let client = JenkinsClient::new(JenkinsConfig {
            url: "http://127.0.0.1:18090/".into(),
            user: "u".into(),
            token: crate::config::Secret::new("s3cr3t-token"),
            timeout: Duration::from_secs(1),
            poll_interval: Duration::from_millis(10),
        });
        assert_eq!(
            client.job_url("platform/deploy api"),
            "http://127.0.0.1:18090/job/platform/job/deploy%20api"
        );
        assert!(!format!("{client:?}").contains("s3cr3t-token"));
    }

    #[test]
    fn named_urls_stay_on_the_configured_origin() {
        let client = JenkinsClient::new(JenkinsConfig {
            url: "https://127.0.0.1:18090/".into(),
            user: "u".into(),
            token: crate::config::Secret::new("s3cr3t-token"),
            timeout: Duration::from_secs(1),
            poll_interval: Duration::from_millis(10),
        });
        let cases = [
            ("/queue/item/7/", "https://127.0.0.1:18090/queue/item/7/"),
            ("queue/item/7/", "https://127.0.0.1:18090/queue/item/7/"),
            (
                "https://127.0.0.1:18090/job/a/1/",
                "https://127.0.0.1:18090/job/a/1/",
            ),
            // Root URL misconfigured as http behind a TLS proxy.
            (
                "http://127.0.0.1:18090/job/a/1/",
                "https://127.0.0.1:18090/job/a/1/",
            ),
            // Another host, port, a scheme-relative URL, injected userinfo.
            (
                "https://127.0.0.2:18090/queue/item/7/?x=1",
                "https://127.0.0.1:18090/queue/item/7/?x=1",
            ),
            (
                "https://127.0.0.1:1/job/a/1/",
                "https://127.0.0.1:18090/job/a/1/",
            ),
            (
                "//127.0.0.2/queue/item/7/",
                "https://127.0.0.1:18090/queue/item/7/",
            ),
            (
                "https://someone@127.0.0.1:18090/job/a/",
                "https://127.0.0.1:18090/job/a/",
            ),
            ("ftp://127.0.0.1/x", "https://127.0.0.1:18090/x"),
        ];
        for (named, want) in cases {
            assert_eq!(client.on_base_origin(named), want, "{named}");
        }
        assert!(client
            .on_base_origin("http://[::1")
            .starts_with("https://127.0.0.1:18090/"));
    }
}
