//! The approvals port: four-eyes requests kept in the store, so they survive
//! restarts and are decided once whichever replica a click reaches. How a vote
//! changes a request is one pure function, [`vote_on`], shared by every adapter.

use std::time::SystemTime;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ports::store_error::StoreError;

/// Where a request for approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    /// Waiting for approvers.
    Pending,
    /// Approved by enough people: the action was handed to whoever completed it.
    Approved,
    /// Declined (by an approver, or withdrawn by the requester).
    Declined,
}

impl ApprovalStatus {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Declined => "declined",
        }
    }
}

/// A request for approval of one resolved command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// Short id people can type (`approve 4F2A91C0`).
    pub id: String,
    /// The resolved invocation waiting to run, as JSON.
    pub invocation: Value,
    /// Who asked; the action runs as them.
    pub requester: String,
    /// The conversation they asked in.
    pub channel: Option<String>,
    /// Groups whose members may approve.
    pub from: Vec<String>,
    /// Approvals needed (by different people, none of them the requester).
    pub needed: u32,
    /// Who approved so far, in order.
    pub approvers: Vec<String>,
    /// Where it stands.
    pub status: ApprovalStatus,
    /// Who declined it.
    pub declined_by: Option<String>,
    /// Why, when they said.
    pub reason: Option<String>,
    /// The button set of its card (Approve is `<set>.0`, Decline `<set>.1`).
    pub buttons: String,
    /// When it was asked.
    pub created: SystemTime,
    /// No approval counts after this.
    pub expires: SystemTime,
}

/// A vote on a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Approve.
    Approve,
    /// Decline, optionally saying why (a second decline by the same person adds
    /// the reason afterwards).
    Decline {
        /// Why.
        reason: Option<String>,
    },
}

/// What a vote did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vote {
    /// Counted; more approvals are needed.
    Counted(Approval),
    /// This vote completed the approvals: the caller, and only the caller, runs it.
    Approved(Approval),
    /// Declined by this vote (or its reason added).
    Declined(Approval),
    /// Decided before this vote.
    Closed(Approval),
    /// Past its expiry.
    Expired(Approval),
    /// This person's approval is already counted.
    AlreadyVoted(Approval),
    /// No such request.
    Unknown,
}

/// How `decision` by `user` at `now` changes `a`: the vote, and the request to store
/// when it changed. Who may vote at all (not the requester, a member of `from`) is
/// the engine's policy; this is what must be decided atomically.
pub fn vote_on(
    a: &Approval,
    user: &str,
    decision: &Decision,
    now: SystemTime,
) -> (Vote, Option<Approval>) {
    match (a.status, decision) {
        (ApprovalStatus::Declined, Decision::Decline { reason: Some(r) })
            if a.declined_by.as_deref() == Some(user) && a.reason.is_none() =>
        {
            let next = Approval {
                reason: Some(r.clone()),
                ..a.clone()
            };
            (Vote::Declined(next.clone()), Some(next))
        }
        (ApprovalStatus::Approved | ApprovalStatus::Declined, _) => (Vote::Closed(a.clone()), None),
        (ApprovalStatus::Pending, _) if now >= a.expires => (Vote::Expired(a.clone()), None),
        (ApprovalStatus::Pending, Decision::Decline { reason }) => {
            let next = Approval {
                status: ApprovalStatus::Declined,
                declined_by: Some(user.to_owned()),
                reason: reason.clone(),
                ..a.clone()
            };
            (Vote::Declined(next.clone()), Some(next))
        }
        (ApprovalStatus::Pending, Decision::Approve) => {
            if a.approvers.iter().any(|u| u == user) {
                return (Vote::AlreadyVoted(a.clone()), None);
            }
            let mut next = a.clone();
            next.approvers.push(user.to_owned());
            if next.approvers.len() >= a.needed.max(1) as usize {
                next.status = ApprovalStatus::Approved;
                (Vote::Approved(next.clone()), Some(next))
            } else {
                (Vote::Counted(next.clone()), Some(next))
            }
        }
    }
}

/// Requests for approval, decided once across replicas.
#[async_trait]
pub trait Approvals: Send + Sync {
    /// Records a new request (its id is unused).
    async fn request_approval(&self, approval: &Approval) -> Result<(), StoreError>;
    /// A request by id.
    async fn approval(&self, id: &str) -> Result<Option<Approval>, StoreError>;
    /// Applies `decision` by `user` at `now` atomically ([`vote_on`]): of two
    /// approvers voting at once, exactly one gets [`Vote::Approved`]. When this vote
    /// approves the request, `start` (the pending run that runs it) is recorded in the
    /// same step, so a crash right after the vote loses nothing.
    async fn vote(
        &self,
        id: &str,
        user: &str,
        decision: &Decision,
        now: SystemTime,
        start: Option<&crate::ports::runs::Run>,
    ) -> Result<Vote, StoreError>;
}
