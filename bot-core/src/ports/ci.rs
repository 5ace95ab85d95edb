//! The CI port: trigger a job, follow it to its end.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Where a triggered build was last seen: enough to follow it again after a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuildRef {
    /// In the queue: the queue item's URL.
    Queued {
        /// Queue item URL.
        item: String,
    },
    /// Started: its number and build page.
    Started {
        /// Build number.
        number: u64,
        /// Build page URL.
        url: String,
    },
}

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

/// One commit being deployed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    /// Full hash.
    pub sha: String,
    /// Author's name.
    pub author: String,
    /// First line of the message.
    pub title: String,
    /// When it was committed, when the source says (DORA's lead time starts here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<std::time::SystemTime>,
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
    /// This CI cannot follow a build started earlier.
    #[error("this CI cannot follow a build started before a restart")]
    CannotReattach,
}

/// Runs CI jobs (Jenkins and anything shaped like it). Every method answers for
/// itself: a wrapper (counting, logging) forwards each one, and a CI that cannot do
/// something says so in its answer (`Ok(None)`, [`CiError::CannotReattach`]).
#[async_trait]
pub trait Ci: Send + Sync {
    /// Triggers `job` with `params`, follows it to the end and reports progress on the way.
    async fn run_job(
        &self,
        job: &str,
        params: &[(String, String)],
        progress: &(dyn Fn(BuildProgress) + Send + Sync),
    ) -> Result<BuildOutcome, CiError>;

    /// Triggers `job` with `params` and returns where to follow it, without waiting:
    /// a run records that place before following it, so a replica taking the run over
    /// re-attaches instead of building again. CIs that cannot split triggering from
    /// following answer `None`, and [`Ci::run_job`] is used instead.
    async fn trigger(
        &self,
        job: &str,
        params: &[(String, String)],
    ) -> Result<Option<BuildRef>, CiError>;

    /// Follows a build triggered earlier (by [`Ci::trigger`], here or in a process
    /// that died) from where it was last seen, to its end. CIs that cannot answer
    /// [`CiError::CannotReattach`].
    async fn reattach(
        &self,
        job: &str,
        at: &BuildRef,
        progress: &(dyn Fn(BuildProgress) + Send + Sync),
    ) -> Result<BuildOutcome, CiError>;

    /// The commits build `url` of `job` brought in (Jenkins' `changeSets`), oldest
    /// first; `None` when this CI does not say.
    async fn changes(&self, job: &str, url: &str) -> Result<Option<Vec<Commit>>, CiError>;
}

impl crate::failure::Failure for CiError {
    fn plain(&self) -> String {
        match self {
            CiError::Unreachable { .. } => "Jenkins did not answer".into(),
            CiError::Rejected { job, status, .. } => {
                format!("Jenkins rejected job `{job}` (HTTP {status})")
            }
            CiError::Protocol(_) => "Jenkins answered something I could not read".into(),
            // The rest are our own words about our own configuration.
            other => other.to_string(),
        }
    }
}
