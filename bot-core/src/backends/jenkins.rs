//! [`JenkinsClient`]: the real [`Ci`] over Jenkins' remote API (reqwest).

use async_trait::async_trait;

use crate::backends::{BuildOutcome, BuildProgress, Ci, CiError};
use crate::config::JenkinsConfig;

/// Triggers parameterised jobs and follows queue item → build → result.
pub struct JenkinsClient {
    config: JenkinsConfig,
}

impl JenkinsClient {
    /// A client for the configured Jenkins.
    pub fn new(config: JenkinsConfig) -> Self {
        Self { config }
    }
}

#[async_trait]
impl Ci for JenkinsClient {
    async fn run_job(
        &self,
        job: &str,
        _params: &[(String, String)],
        _progress: &(dyn Fn(BuildProgress) + Send + Sync),
    ) -> Result<BuildOutcome, CiError> {
        Err(CiError::Unreachable {
            url: self.config.url.clone(),
            reason: format!("not implemented yet (job {job})"),
        })
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
}
