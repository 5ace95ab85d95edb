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

    /// Whether this switch can share a pool's traffic out by weight (canary deploys
    /// need it). A switch that cannot refuses [`set_split`](Self::set_split).
    fn weighted(&self) -> bool {
        false
    }

    /// Shares the pool's traffic out as `split` says (every member with a share
    /// takes traffic), and reads it back before returning `Ok`. A later
    /// [`switch_to`](Self::switch_to) ends the split: all traffic on one member again.
    async fn set_split(
        &self,
        env: &Environment,
        pool: &Pool,
        split: &Split,
    ) -> Result<(), SwitchError> {
        let _ = (env, pool, split);
        Err(SwitchError::Refused(
            "this traffic switch cannot share traffic out by weight".into(),
        ))
    }

    /// The split in force, read from the switch itself (all on the active member
    /// for a switch without weights).
    async fn split(&self, env: &Environment, pool: &Pool) -> Result<Split, SwitchError> {
        let active = self.active(env, pool).await?;
        Ok(Split::all_on(pool, &active))
    }
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

/// How a pool's traffic is shared out by weight: each member's share in percent, in
/// the pool's member order, summing to 100. A canary deploy moves it step by step.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Split(Vec<(String, u8)>);

impl Split {
    /// A split from `(member, percent)` pairs; `Err` saying why when a share is over
    /// 100, a member is named twice, or the shares do not add up to 100.
    pub fn new(shares: Vec<(String, u8)>) -> Result<Self, SwitchError> {
        let total: u32 = shares.iter().map(|(_, p)| u32::from(*p)).sum();
        for (i, (m, _)) in shares.iter().enumerate() {
            if shares[..i].iter().any(|(n, _)| n == m) {
                return Err(SwitchError::Refused(format!(
                    "{m} is named twice in a traffic split"
                )));
            }
        }
        if total != 100 {
            return Err(SwitchError::Refused(format!(
                "a traffic split must add up to 100 %, not {total} % ({})",
                describe(&shares)
            )));
        }
        Ok(Self(shares))
    }

    /// Every member of `pool` on `to` at `percent`, the rest on `from`, 0 elsewhere.
    pub fn canary(pool: &Pool, from: &str, to: &str, percent: u8) -> Self {
        let percent = percent.min(100);
        Self(
            pool.members
                .iter()
                .map(|m| {
                    let share = if m.name == to {
                        percent
                    } else if m.name == from {
                        100 - percent
                    } else {
                        0
                    };
                    (m.name.clone(), share)
                })
                .collect(),
        )
    }

    /// All of the pool's traffic on `member`.
    pub fn all_on(pool: &Pool, member: &str) -> Self {
        Self(
            pool.members
                .iter()
                .map(|m| (m.name.clone(), if m.name == member { 100 } else { 0 }))
                .collect(),
        )
    }

    /// `member`'s share in percent (0 when it is not named).
    pub fn share(&self, member: &str) -> u8 {
        self.0
            .iter()
            .find(|(m, _)| m == member)
            .map_or(0, |(_, p)| *p)
    }

    /// `(member, percent)` pairs, in order.
    pub fn shares(&self) -> &[(String, u8)] {
        &self.0
    }

    /// The one member taking traffic, when only one does.
    pub fn sole(&self) -> Option<&str> {
        let mut taking = self.0.iter().filter(|(_, p)| *p > 0);
        match (taking.next(), taking.next()) {
            (Some((m, _)), None) => Some(m),
            _ => None,
        }
    }

    /// Refuses a split naming something that is not a member of `pool`.
    pub fn refuse_non_members(&self, env: &Environment, pool: &Pool) -> Result<(), SwitchError> {
        for (m, _) in &self.0 {
            refuse_non_member(env, pool, m)?;
        }
        Ok(())
    }

    /// The same split with every member of `pool` named (those left out at 0 %), in
    /// member order: two splits compare equal whatever order they were written in.
    pub fn over(&self, pool: &Pool) -> Self {
        Self(
            pool.members
                .iter()
                .map(|m| (m.name.clone(), self.share(&m.name)))
                .collect(),
        )
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&describe(&self.0))
    }
}

fn describe(shares: &[(String, u8)]) -> String {
    shares
        .iter()
        .map(|(m, p)| format!("{m} {p} %"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Shares in percent from raw weights (HAProxy's, or an HTTP switch's read-back):
/// rounded so that they add up to 100, the remainder going to the largest. `None`
/// when no member has any weight.
pub fn shares_from_weights(weights: &[(String, u32)]) -> Option<Split> {
    let total: u64 = weights.iter().map(|(_, w)| u64::from(*w)).sum();
    if total == 0 {
        return None;
    }
    let mut shares: Vec<(String, u8)> = weights
        .iter()
        .map(|(m, w)| {
            let p = (u64::from(*w) * 100 + total / 2) / total;
            (m.clone(), u8::try_from(p.min(100)).unwrap_or(100))
        })
        .collect();
    let sum: i32 = shares.iter().map(|(_, p)| i32::from(*p)).sum();
    if sum != 100 {
        if let Some(biggest) = shares.iter_mut().max_by_key(|(_, p)| *p) {
            let fixed = (i32::from(biggest.1) + 100 - sum).clamp(0, 100);
            biggest.1 = u8::try_from(fixed).unwrap_or(100);
        }
    }
    Some(Split(shares))
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
