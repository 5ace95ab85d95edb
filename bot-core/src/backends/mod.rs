//! Backend traits — the parts an embedder swaps — and their real implementations.
//!
//! | trait | real implementations |
//! |---|---|
//! | [`Probe`] | [`probe::HttpProbe`] (reqwest) |
//! | [`TrafficSwitch`] | [`haproxy::HaproxySwitch`], [`http_switch::HttpSwitch`], [`http_switch::JenkinsSwitch`], [`memory::MemorySwitch`] |
//! | [`Ci`] | [`jenkins::JenkinsClient`] |
//! | [`Store`] | [`store::memory::MemoryStore`] |
//! | [`HttpAction`] | [`probe::ReqwestAction`] |

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::config::{Environment, HttpRequestSpec, Pool};

pub mod haproxy;
pub mod http_switch;
pub mod jenkins;
pub mod memory;
pub mod probe;
pub mod redact;
pub mod store;
pub mod template;

// ---------------------------------------------------------------- probe

/// An HTTP answer as seen by a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSnapshot {
    /// Status code.
    pub status: u16,
    /// Body as text (lossy UTF-8), capped by the probe.
    pub body: String,
    /// Time until the whole body was read.
    pub latency: Duration,
}

/// Why a probe got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// Nothing within the timeout.
    #[error("no answer within {}ms", .0.as_millis())]
    Timeout(Duration),
    /// Connection refused or reset.
    #[error("connection refused")]
    Refused,
    /// Anything else (DNS, TLS, protocol), with a short reason.
    #[error("{0}")]
    Other(String),
}

/// Fetches a URL for health checks, status and tasks.
#[async_trait]
pub trait Probe: Send + Sync {
    /// GETs `url`, giving up after `timeout`. Must return by then.
    async fn get(&self, url: &str, timeout: Duration) -> Result<HttpSnapshot, ProbeError>;
}

/// Sends a configured HTTP request (restart actions, YAML-defined commands).
#[async_trait]
pub trait HttpAction: Send + Sync {
    /// Sends the already-templated request; returns status and body.
    async fn send(
        &self,
        req: &HttpRequestSpec,
        timeout: Duration,
    ) -> Result<HttpSnapshot, ProbeError>;
}

// ---------------------------------------------------------------- switch

/// Why a traffic switch failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SwitchError {
    /// The switch could not be reached.
    #[error("cannot reach the traffic switch at {address}: {reason}")]
    Unreachable {
        /// Where we tried.
        address: String,
        /// What went wrong.
        reason: String,
    },
    /// The switch answered with an error.
    #[error("the traffic switch refused: {0}")]
    Refused(String),
    /// After switching, reading back showed another state.
    #[error("the switch did not take: {0}")]
    NotApplied(String),
    /// The active member could not be determined.
    #[error("cannot tell which member is active: {0}")]
    Unknown(String),
}

/// Moves traffic between the members of one pool and reports which one is active.
#[async_trait]
pub trait TrafficSwitch: Send + Sync {
    /// The member currently taking traffic, read from the switch itself.
    async fn active(&self, env: &Environment, pool: &Pool) -> Result<String, SwitchError>;
    /// Sends all traffic to `member`; must verify by reading back before returning `Ok`.
    async fn switch_to(
        &self,
        env: &Environment,
        pool: &Pool,
        member: &str,
    ) -> Result<(), SwitchError>;
}

/// Refuses to switch to a name that is not a member of `pool` (before anything is sent).
pub(crate) fn refuse_non_member(
    env: &Environment,
    pool: &Pool,
    member: &str,
) -> Result<(), SwitchError> {
    if pool.members.iter().any(|m| m.name == member) {
        Ok(())
    } else {
        Err(SwitchError::Refused(format!(
            "{member} is not a member of {} {}",
            env.name, pool.name
        )))
    }
}

// ---------------------------------------------------------------- CI

/// Where a CI run is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildProgress {
    /// Waiting in the queue, with Jenkins' reason.
    Queued {
        /// `why` from the queue item.
        why: Option<String>,
    },
    /// Running.
    Building {
        /// Build number.
        number: u64,
        /// Build page.
        url: String,
        /// Progress estimate from `estimatedDuration`, capped at 99 while running.
        percent: Option<u8>,
    },
}

/// Final result of a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BuildResult {
    /// `SUCCESS`.
    Success,
    /// `UNSTABLE`.
    Unstable,
    /// `FAILURE`.
    Failure,
    /// `ABORTED`.
    Aborted,
    /// `NOT_BUILT`.
    NotBuilt,
}

impl BuildResult {
    /// Whether the deploy may go on.
    pub fn is_success(self) -> bool {
        matches!(self, BuildResult::Success)
    }
    /// Jenkins' spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            BuildResult::Success => "SUCCESS",
            BuildResult::Unstable => "UNSTABLE",
            BuildResult::Failure => "FAILURE",
            BuildResult::Aborted => "ABORTED",
            BuildResult::NotBuilt => "NOT_BUILT",
        }
    }
}

/// A finished build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOutcome {
    /// Build number.
    pub number: u64,
    /// Build page URL.
    pub url: String,
    /// Console URL.
    pub console_url: String,
    /// Result.
    pub result: BuildResult,
    /// Build duration as Jenkins reports it.
    pub duration: Duration,
}

/// Why a CI run failed before producing a result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CiError {
    /// Jenkins could not be reached.
    #[error("Jenkins did not answer at {url}: {reason}")]
    Unreachable {
        /// Base URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// 401/403.
    #[error("Jenkins refused the credentials (HTTP {status}) for job `{job}`")]
    Unauthorized {
        /// Job path.
        job: String,
        /// 401 or 403.
        status: u16,
    },
    /// 404.
    #[error("Jenkins has no job `{job}`")]
    NoSuchJob {
        /// Job path.
        job: String,
    },
    /// 400/500 from the trigger.
    #[error("Jenkins rejected job `{job}` (HTTP {status}): {reason}")]
    Rejected {
        /// Job path.
        job: String,
        /// Status.
        status: u16,
        /// Body excerpt.
        reason: String,
    },
    /// The queue item was cancelled.
    #[error("the queued build of `{job}` was cancelled in Jenkins")]
    Cancelled {
        /// Job path.
        job: String,
    },
    /// Gave up waiting.
    #[error("gave up waiting for `{job}` after {}s", .after.as_secs())]
    Timeout {
        /// Job path.
        job: String,
        /// How long we waited.
        after: Duration,
    },
    /// Jenkins answered something we could not read.
    #[error("unexpected answer from Jenkins: {0}")]
    Protocol(String),
    /// No CI is configured.
    #[error("no Jenkins is configured")]
    NotConfigured,
}

/// Runs CI jobs (Jenkins and anything shaped like it).
#[async_trait]
pub trait Ci: Send + Sync {
    /// Triggers `job` with `params`, follows it to the end and reports progress on the way.
    async fn run_job(
        &self,
        job: &str,
        params: &[(String, String)],
        progress: &(dyn Fn(BuildProgress) + Send + Sync),
    ) -> Result<BuildOutcome, CiError>;
}

// ---------------------------------------------------------------- store

/// A storage failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("state store: {0}")]
pub struct StoreError(pub String);

/// A lock on an environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    /// Environment.
    pub env: String,
    /// Slack user holding it.
    pub holder: String,
    /// Why (`deploy`, or the reason given to `lock`).
    pub reason: String,
    /// When it was taken.
    pub since: SystemTime,
    /// When it lapses on its own.
    pub expires: SystemTime,
    /// The running action that holds it (`deploy`, `rollback`, `switch`); `None` for a
    /// lock taken by hand with `lock`. Only the action itself releases an action's lock.
    #[serde(default)]
    pub action: Option<String>,
}

/// Result of trying to take a lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockOutcome {
    /// The caller holds it now.
    Acquired,
    /// Someone else does.
    HeldBy(Lock),
}

/// Result of clicking a button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First click: go ahead.
    Claimed,
    /// Someone already used a button of this set.
    AlreadyUsed {
        /// Who clicked first.
        by: String,
    },
    /// The buttons are older than their time to live.
    Expired,
    /// Never issued (or forgotten).
    Unknown,
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When.
    pub at: SystemTime,
    /// Who (Slack user id).
    pub user: String,
    /// Command name.
    pub command: String,
    /// Target as text.
    pub target: String,
    /// Environment, when the target has one.
    pub env: Option<String>,
    /// `ok`, `failed: …`, `refused: …`.
    pub outcome: String,
    /// Build link, when a build ran.
    pub link: Option<String>,
}

/// Durable state: processed events, locks, buttons, audit log, last active colour.
#[async_trait]
pub trait Store: Send + Sync {
    /// Records `event_id`; `true` the first time, `false` for a repeat.
    async fn first_delivery(&self, event_id: &str, now: SystemTime) -> Result<bool, StoreError>;
    /// Registers a set of buttons that can be used once until `expires`.
    async fn issue_buttons(&self, set_id: &str, expires: SystemTime) -> Result<(), StoreError>;
    /// Claims a button set for `user`.
    async fn claim_buttons(
        &self,
        set_id: &str,
        user: &str,
        now: SystemTime,
    ) -> Result<Claim, StoreError>;
    /// Takes the lock on `env` unless someone else holds an unexpired one.
    async fn try_lock(&self, lock: Lock, now: SystemTime) -> Result<LockOutcome, StoreError>;
    /// Releases `env`'s lock whoever holds it; returns the lock that was released, if any.
    async fn unlock(&self, env: &str) -> Result<Option<Lock>, StoreError>;
    /// Releases exactly `lock` (same holder, same start); `false` when the lock on its
    /// environment is another one by now (it lapsed and was taken again).
    async fn release(&self, lock: &Lock) -> Result<bool, StoreError>;
    /// The unexpired lock on `env`, if any.
    async fn lock_of(&self, env: &str, now: SystemTime) -> Result<Option<Lock>, StoreError>;
    /// Appends to the audit log.
    async fn audit(&self, record: AuditRecord) -> Result<(), StoreError>;
    /// Newest first, optionally for one environment.
    async fn history(
        &self,
        env: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError>;
    /// Remembers the last member known active in a pool.
    async fn set_last_active(&self, env: &str, pool: &str, member: &str) -> Result<(), StoreError>;
    /// The last member known active, if recorded.
    async fn last_active(&self, env: &str, pool: &str) -> Result<Option<String>, StoreError>;
}

/// Builds the traffic switch a pool's config describes: HAProxy runtime API, HTTP
/// request, Jenkins job (run on `ci`), or the shared in-memory `memory` switch.
pub fn switch_for(
    spec: &crate::config::SwitchSpec,
    ci: std::sync::Arc<dyn Ci>,
    memory: std::sync::Arc<memory::MemorySwitch>,
) -> std::sync::Arc<dyn TrafficSwitch> {
    if let Some(s) = haproxy::HaproxySwitch::from_spec(spec) {
        return std::sync::Arc::new(s);
    }
    if let Some(s) = http_switch::HttpSwitch::from_spec(spec) {
        return std::sync::Arc::new(s);
    }
    if let Some(s) = http_switch::JenkinsSwitch::from_spec(spec, ci) {
        return std::sync::Arc::new(s);
    }
    memory
}
