//! The state-store port: focused traits for deliveries, buttons, locks and the audit log;
//! [`Store`] is all of them.

use std::time::SystemTime;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

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

/// Slack deliveries already taken: each is processed once, whichever replica it reaches.
#[async_trait]
pub trait Deliveries: Send + Sync {
    /// Records delivery `key` (an `event_id`, `slash:<trigger_id>`, …); `true` the
    /// first time, `false` for a repeat.
    async fn first_delivery(&self, key: &str, now: SystemTime) -> Result<bool, StoreError>;
}

/// Button sets: each set can be used once, until it expires.
#[async_trait]
pub trait Buttons: Send + Sync {
    /// Registers a set of buttons that can be used once until `expires`.
    async fn issue_buttons(&self, set_id: &str, expires: SystemTime) -> Result<(), StoreError>;
    /// Claims a button set for `user`: the first claim wins.
    async fn claim_buttons(
        &self,
        set_id: &str,
        user: &str,
        now: SystemTime,
    ) -> Result<Claim, StoreError>;
}

/// Environment locks, leased until they expire.
#[async_trait]
pub trait Locks: Send + Sync {
    /// Takes the lock on `lock.env` unless someone holds an unexpired one.
    async fn try_lock(&self, lock: Lock, now: SystemTime) -> Result<LockOutcome, StoreError>;
    /// Releases `env`'s lock whoever holds it; returns the lock that was released, if any.
    async fn unlock(&self, env: &str) -> Result<Option<Lock>, StoreError>;
    /// Releases exactly `lock` (same holder, same start); `false` when the lock on its
    /// environment is another one by now (it lapsed and was taken again).
    async fn release(&self, lock: &Lock) -> Result<bool, StoreError>;
    /// The unexpired lock on `env`, if any.
    async fn lock_of(&self, env: &str, now: SystemTime) -> Result<Option<Lock>, StoreError>;
}

/// The audit log: append-only, read newest first.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends a record.
    async fn append(&self, record: AuditRecord) -> Result<(), StoreError>;
    /// Newest first, at most `limit`, optionally for one environment.
    async fn history(
        &self,
        env: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError>;
}

/// Everything the bot keeps: one object implementing every focused trait.
/// Implemented for any type that implements them all; check an implementation
/// with `testing::conformance::store`.
pub trait Store: Deliveries + Buttons + Locks + AuditLog {}

impl<T: Deliveries + Buttons + Locks + AuditLog> Store for T {}

impl crate::failure::Failure for StoreError {
    fn plain(&self) -> String {
        "the state store is unavailable, so nothing was done".into()
    }
}
