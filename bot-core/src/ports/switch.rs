//! The traffic-switch port: which member of a pool takes traffic, and moving it.

use async_trait::async_trait;

use crate::config::{Environment, Pool};

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
pub fn refuse_non_member(env: &Environment, pool: &Pool, member: &str) -> Result<(), SwitchError> {
    if pool.members.iter().any(|m| m.name == member) {
        Ok(())
    } else {
        Err(SwitchError::Refused(format!(
            "{member} is not a member of {} {}",
            env.name, pool.name
        )))
    }
}

impl crate::failure::Failure for SwitchError {
    fn plain(&self) -> String {
        match self {
            // The address is configuration (already redacted); the reason is a library's.
            SwitchError::Unreachable { address, .. } => {
                format!("cannot reach the traffic switch at {address}")
            }
            // Written by the switch adapters in our own words, with redacted URLs and
            // at most a short excerpt of what the switch answered.
            other => other.to_string(),
        }
    }
}
