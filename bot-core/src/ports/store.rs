//! The state-store port: focused traits — the inbox of deliveries, the outbox of
//! messages, server-side buttons, environment locks, persisted runs and the
//! hash-chained audit log — and [`Store`], which is all of them.
//!
//! Times are passed in (the clock is a parameter); every lease names its owner, so
//! several replicas can share one store.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use super::runs::{Run, RunOrder, RunStatus, Runs};
pub use super::store_error::StoreError;

// ------------------------------------------------------------------ inbox

/// A delivery from a chat transport, kept until it has been processed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inbound {
    /// Dedupe key: `event_id`, `slash:<trigger_id>`, `click:<channel>:<ts>:<action>:<user>`.
    pub key: String,
    /// The transport that took it (`slack`), which knows how to answer it.
    pub transport: String,
    /// What the transport needs to process it again (the request and where answers go).
    pub payload: Value,
    /// When it arrived.
    pub received: SystemTime,
}

/// What became of a delivery offered to the inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admitted {
    /// Recorded, and leased to whoever offered it.
    New,
    /// Its key was taken before (a retry, a replay, another replica's delivery).
    Duplicate,
}

/// Deliveries written before they are acknowledged and processed from there, so a
/// crash after the acknowledgement loses nothing and each is processed once.
#[async_trait]
pub trait Inbox: Send + Sync {
    /// Records `item` unless its key was taken before; a new one is leased to `owner`
    /// until `lease_until`. Durable when it returns.
    async fn admit(
        &self,
        item: &Inbound,
        owner: &str,
        lease_until: SystemTime,
    ) -> Result<Admitted, StoreError>;
    /// Leases up to `limit` deliveries nobody is working on (never processed, and
    /// not leased or leased by someone whose lease lapsed), oldest first.
    async fn lease_inbound(
        &self,
        owner: &str,
        now: SystemTime,
        lease_until: SystemTime,
        limit: usize,
    ) -> Result<Vec<Inbound>, StoreError>;
    /// Extends `owner`'s lease on a delivery it is still working on; `false` when the
    /// lease is someone else's by now.
    async fn renew_inbound(
        &self,
        key: &str,
        owner: &str,
        lease_until: SystemTime,
    ) -> Result<bool, StoreError>;
    /// Marks a delivery processed. Its key keeps deduplicating until pruned.
    async fn complete_inbound(&self, key: &str) -> Result<(), StoreError>;
    /// Forgets processed deliveries received before `before`; returns how many.
    async fn prune_inbox(&self, before: SystemTime) -> Result<u64, StoreError>;
}

// ----------------------------------------------------------------- outbox

/// A message to deliver: the newest content wins, earlier versions are never sent
/// once a newer one is there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outgoing {
    /// Message id (usually the delivery key it answers).
    pub id: String,
    /// The transport that delivers it (`slack`).
    pub transport: String,
    /// Where it goes, in the transport's words.
    pub route: Value,
    /// Who and what it is about, for logs when it cannot be delivered.
    pub about: String,
    /// The newest content.
    pub body: Value,
    /// Version of `body`; bumped by every put.
    pub version: u64,
    /// `body` is the final reply.
    pub last: bool,
    /// Version last delivered (0: nothing yet).
    pub delivered: u64,
    /// The transport's delivery state (message `ts`, `response_url` uses …).
    pub state: Value,
    /// Failed attempts since the last success.
    pub attempts: u32,
    /// Not before this time.
    pub next_at: SystemTime,
    /// Delivery was given up after the last attempt failed.
    pub given_up: bool,
    /// An earlier attempt may have reached the transport without being recorded (its
    /// sender died holding it, or no answer came back): before sending anything new,
    /// the courier looks for what that attempt left (a posted message) and continues
    /// from there, so a reply is never posted twice.
    #[serde(default)]
    pub in_doubt: bool,
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// `version` was delivered; the transport's state is now `state`; do not deliver
    /// the next version before `next_at` (progress spacing).
    Delivered {
        /// The version sent.
        version: u64,
        /// The transport's state after it.
        state: Value,
        /// Earliest next delivery.
        next_at: SystemTime,
    },
    /// It failed; try again at `retry_at`, or give up when `None`.
    Failed {
        /// When to try again.
        retry_at: Option<SystemTime>,
    },
    /// No answer came back (a timeout, a connection cut after the request went out):
    /// it may have been delivered. Counted as a failure, tried again at `retry_at`,
    /// and leased next time [`Outgoing::in_doubt`].
    Unsure {
        /// When to try again.
        retry_at: SystemTime,
    },
}

/// Replies, progress edits, announcements and hooks, written before they are sent
/// and sent with retries, across restarts and by whichever replica is alive.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Opens message `id` (nothing when it is open already).
    async fn open_message(
        &self,
        id: &str,
        transport: &str,
        route: &Value,
        about: &str,
        now: SystemTime,
    ) -> Result<(), StoreError>;
    /// Sets the newest content of message `id`; `last` for its final content (which
    /// also clears the failed-attempt count, so a retry meant for older progress does
    /// not hold it back). Once a message has its final content, later puts are ignored.
    async fn put_message(&self, id: &str, body: &Value, last: bool) -> Result<(), StoreError>;
    /// Leases up to `limit` messages of `transport` that are due by `now`, oldest
    /// first. Due: not given up, not leased by anyone else, with an undelivered
    /// version, and either its `next_at` has passed or its final content waits and
    /// the last attempt did not fail (a final reply does not wait out progress spacing).
    /// A message comes back [`Outgoing::in_doubt`] when its last attempt was
    /// [`Attempt::Unsure`], or when an earlier lease lapsed with no attempt recorded.
    async fn lease_messages(
        &self,
        transport: &str,
        owner: &str,
        now: SystemTime,
        lease_until: SystemTime,
        limit: usize,
    ) -> Result<Vec<Outgoing>, StoreError>;
    /// Records how `owner`'s attempt on message `id` ended and releases the lease.
    async fn record_attempt(
        &self,
        id: &str,
        owner: &str,
        attempt: &Attempt,
    ) -> Result<(), StoreError>;
    /// Records several of `owner`'s attempts at once, as [`Outbox::record_attempt`]
    /// does each (one transaction on a database).
    async fn record_attempts(
        &self,
        owner: &str,
        attempts: &[(String, Attempt)],
    ) -> Result<(), StoreError> {
        for (id, attempt) in attempts {
            self.record_attempt(id, owner, attempt).await?;
        }
        Ok(())
    }
    /// A message, as it stands.
    async fn message(&self, id: &str) -> Result<Option<Outgoing>, StoreError>;
    /// How many messages of `transport` still have a version to deliver (and are not
    /// given up): what a shutdown would leave for later.
    async fn undelivered(&self, transport: &str) -> Result<u64, StoreError>;
    /// Forgets messages fully delivered (or given up) whose last change is before
    /// `before`; returns how many.
    async fn prune_outbox(&self, before: SystemTime) -> Result<u64, StoreError>;
}

// ---------------------------------------------------------------- buttons

/// A set of buttons that can be used once: what each does lives here, the button
/// itself carries only `<set>.<index>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ButtonSet {
    /// Opaque id.
    pub id: String,
    /// What each button does, by index.
    pub actions: Vec<Value>,
    /// The conversation the buttons were posted in; a click elsewhere is refused.
    pub channel: Option<String>,
    /// Who the buttons were offered to.
    pub issued_to: String,
    /// Unusable after this.
    pub expires: SystemTime,
    /// Only `issued_to` may click them (a confirmation, a choice); others are told
    /// whose they are and the set stays unused.
    #[serde(default)]
    pub personal: bool,
}

/// Result of clicking a button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First click: go ahead with what the button does.
    Claimed(Value),
    /// Someone already used a button of this set.
    AlreadyUsed {
        /// Who clicked first.
        by: String,
    },
    /// The buttons are older than their time to live.
    Expired,
    /// Never issued (a forged value), or pruned long ago.
    Unknown,
    /// The set belongs to another conversation.
    ElsewhereIssued,
}

/// Server-side buttons: issued once, claimed once, checked against their conversation.
#[async_trait]
pub trait Buttons: Send + Sync {
    /// Records a set.
    async fn issue_buttons(&self, set: &ButtonSet) -> Result<(), StoreError>;
    /// A set as issued, without claiming it (to check who may click before a click
    /// uses it up).
    async fn button_set(&self, set_id: &str) -> Result<Option<ButtonSet>, StoreError>;
    /// Claims button `index` of set `set_id` for `user` clicking in `channel` (when
    /// known): the first claim of a set wins.
    async fn claim_button(
        &self,
        set_id: &str,
        index: usize,
        user: &str,
        channel: Option<&str>,
        now: SystemTime,
    ) -> Result<Claim, StoreError>;
}

// ------------------------------------------------------------------ locks

/// A lock on an environment: a lease, renewed by whoever holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    /// Environment.
    pub env: String,
    /// Slack user holding it.
    pub holder: String,
    /// Why (`deploy …`, or the reason given to `lock`).
    pub reason: String,
    /// When it was taken.
    pub since: SystemTime,
    /// When it lapses on its own.
    pub expires: SystemTime,
    /// The running action that holds it (`deploy`, `rollback`, `switch`); `None` for a
    /// lock taken by hand with `lock`. Only the action itself releases an action's lock.
    #[serde(default)]
    pub action: Option<String>,
    /// The run holding it, when an action does.
    #[serde(default)]
    pub run: Option<String>,
    /// The fencing token of the run holding it (0 for a lock taken by hand): a run
    /// taken over by another replica holds its lock under its new token, and writes
    /// under the old one are refused.
    #[serde(default)]
    pub fence: u64,
}

/// What `unlock` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unlocked {
    /// A lock taken by hand (or one that had lapsed) was released.
    Released(Lock),
    /// A running action holds it: only the action releases it.
    HeldByRun(Lock),
    /// Nobody held it.
    NotLocked,
}

/// Result of trying to take a lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockOutcome {
    /// The caller holds it now.
    Acquired,
    /// Someone else does.
    HeldBy(Lock),
}

/// Environment locks, leased until they expire.
#[async_trait]
pub trait Locks: Send + Sync {
    /// Takes the lock on `lock.env` unless someone holds an unexpired one.
    async fn try_lock(&self, lock: Lock, now: SystemTime) -> Result<LockOutcome, StoreError>;
    /// Releases `env`'s lock when it was taken by hand, or has lapsed, in one
    /// conditional step: a lock a running action holds is never pulled from under it
    /// (whatever happens between a look and the release).
    async fn unlock(&self, env: &str, now: SystemTime) -> Result<Unlocked, StoreError>;
    /// Releases exactly `lock` (same holder, start and fencing token); `false` when
    /// the lock on its environment is another one by now (it lapsed and was taken
    /// again, or a takeover holds it under a newer token).
    async fn release(&self, lock: &Lock) -> Result<bool, StoreError>;
    /// Extends exactly `lock` (same holder, start and fencing token) to `until`;
    /// `false` when the lock on its environment is another one by now.
    async fn renew_lock(&self, lock: &Lock, until: SystemTime) -> Result<bool, StoreError>;
    /// After a takeover: moves `lock` (the run's lock, same holder, start and run,
    /// whatever its token and even lapsed) to `lock.fence` and `lock.expires`; `false`
    /// when the environment's lock row is another one (someone took it, or released
    /// it, since), so the run must not go on.
    async fn reclaim_lock(&self, lock: &Lock) -> Result<bool, StoreError>;
    /// The unexpired lock on `env`, if any.
    async fn lock_of(&self, env: &str, now: SystemTime) -> Result<Option<Lock>, StoreError>;
}

// ------------------------------------------------------------------ audit

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
    /// Arguments as typed (the git ref, a reason), space-separated; empty when none.
    #[serde(default)]
    pub args: String,
    /// `ok`, `failed: …`, `refused: …`.
    pub outcome: String,
    /// How long it took, when it ran.
    #[serde(default)]
    pub duration: Option<Duration>,
    /// Every build link, in order.
    #[serde(default)]
    pub links: Vec<String>,
}

impl AuditRecord {
    /// The command as typed: `deploy staging feature/login`.
    pub fn what(&self) -> String {
        [
            self.command.as_str(),
            self.target.as_str(),
            self.args.as_str(),
        ]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
    }
}

/// A record as kept: its place in the chain and its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainedRecord {
    /// Position, from 1.
    pub seq: u64,
    /// The record.
    pub record: AuditRecord,
    /// SHA-256 (hex) of the previous record; 64 zeros for the first.
    pub prev_hash: String,
    /// SHA-256 (hex) of this record and `prev_hash`.
    pub hash: String,
}

/// The audit log: append-only and hash-chained, read newest first.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends a record at the end of the chain.
    async fn append(&self, record: AuditRecord) -> Result<(), StoreError>;
    /// Newest first: `limit` records after skipping `offset`, optionally for one
    /// environment.
    async fn history(
        &self,
        env: Option<&str>,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError>;
    /// The chain in order, from position `from` (1 for all), at most `limit` records.
    async fn chain(&self, from: u64, limit: usize) -> Result<Vec<ChainedRecord>, StoreError>;
    /// The newest record's position and hash (`None` when the log is empty): what an
    /// operator keeps elsewhere to tell later that nothing was cut off.
    async fn head(&self) -> Result<Option<(u64, String)>, StoreError>;
}

/// The hash of the first record's predecessor.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The chain hash of `record` at position `seq` after `prev_hash`: SHA-256 over a
/// canonical line of its fields (times in milliseconds), hex.
pub fn audit_hash(seq: u64, prev_hash: &str, record: &AuditRecord) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(canonical(seq, prev_hash, record).as_bytes()))
}

/// The chain hash of `record` signed with `key` (`CROSSROADS_AUDIT_KEY`): HMAC-SHA256
/// over the same canonical line, hex. Only whoever holds the key can recompute a
/// chain of these, so a database writer cannot rewrite it unseen.
pub fn audit_hmac(key: &[u8], seq: u64, prev_hash: &str, record: &AuditRecord) -> String {
    use hmac::{Hmac, Mac};
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(key) else {
        // HMAC takes keys of any length; this cannot happen.
        return audit_hash(seq, prev_hash, record);
    };
    mac.update(canonical(seq, prev_hash, record).as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The hash a store writes for `record`: signed when it holds a key, else plain.
pub fn chain_hash(key: Option<&[u8]>, seq: u64, prev_hash: &str, record: &AuditRecord) -> String {
    match key {
        Some(k) => audit_hmac(k, seq, prev_hash, record),
        None => audit_hash(seq, prev_hash, record),
    }
}

/// The canonical line a record's hash is taken over.
fn canonical(seq: u64, prev_hash: &str, record: &AuditRecord) -> String {
    let millis = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis()
    };
    let canonical = serde_json::json!([
        seq,
        prev_hash,
        millis(record.at),
        record.user,
        record.command,
        record.target,
        record.env,
        record.args,
        record.outcome,
        record.duration.map(|d| d.as_millis()),
        record.links,
    ]);
    canonical.to_string()
}

/// Where a chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit record {seq} does not match the chain: {why}")]
pub struct BrokenChain {
    /// The first record that does not fit.
    pub seq: u64,
    /// How it does not fit.
    pub why: String,
}

/// Checks `records` (in order, continuing after `prev`: the previous record's
/// position and hash) and returns the last position and hash.
pub fn verify_chain(
    prev: (u64, String),
    records: &[ChainedRecord],
) -> Result<(u64, String), BrokenChain> {
    let mut check = ChainCheck::after(None, prev);
    check.check(records)?;
    Ok((check.seq, check.hash))
}

/// A walk along the chain, page by page. With a key, records must be signed with it
/// from the first signed one on (older plain records may come first, from before the
/// key was set).
#[derive(Debug, Clone)]
pub struct ChainCheck<'k> {
    key: Option<&'k [u8]>,
    /// The last position checked (0 before the first record).
    pub seq: u64,
    /// Its hash.
    pub hash: String,
    /// Whether a record signed with the key was seen.
    pub signed: bool,
    /// Whether the last record checked is signed with the key.
    pub last_signed: bool,
}

impl<'k> ChainCheck<'k> {
    /// A walk from the first record, checking signatures with `key` when given.
    pub fn new(key: Option<&'k [u8]>) -> Self {
        Self::after(key, (0, GENESIS.to_owned()))
    }

    /// A walk continuing after `prev` (position and hash).
    pub fn after(key: Option<&'k [u8]>, prev: (u64, String)) -> Self {
        Self {
            key,
            seq: prev.0,
            hash: prev.1,
            signed: false,
            last_signed: false,
        }
    }

    /// Checks the next `records`, in order.
    pub fn check(&mut self, records: &[ChainedRecord]) -> Result<(), BrokenChain> {
        for r in records {
            if r.seq != self.seq + 1 {
                return Err(BrokenChain {
                    seq: self.seq + 1,
                    why: format!("the next record is numbered {}", r.seq),
                });
            }
            if r.prev_hash != self.hash {
                return Err(BrokenChain {
                    seq: r.seq,
                    why: "it does not name the previous record's hash".into(),
                });
            }
            let plain = audit_hash(r.seq, &r.prev_hash, &r.record) == r.hash;
            match self.key {
                Some(key) if audit_hmac(key, r.seq, &r.prev_hash, &r.record) == r.hash => {
                    self.signed = true;
                    self.last_signed = true;
                }
                Some(_) if plain && !self.signed => self.last_signed = false,
                Some(_) if plain => {
                    return Err(BrokenChain {
                        seq: r.seq,
                        why: "it is not signed with the audit key, though records before it are (rewritten without the key?)".into(),
                    })
                }
                Some(_) => {
                    return Err(BrokenChain {
                        seq: r.seq,
                        why: "its content does not match its recorded hash under the audit key (edited?)".into(),
                    })
                }
                None if plain => {}
                None => {
                    return Err(BrokenChain {
                        seq: r.seq,
                        why: "its content does not hash to its recorded hash (edited, or signed: set CROSSROADS_AUDIT_KEY to check a signed chain)".into(),
                    })
                }
            }
            self.seq = r.seq;
            self.hash = r.hash.clone();
        }
        Ok(())
    }
}

// ------------------------------------------------------------ deploy queue

/// A deploy waiting for its environment to free.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queued {
    /// Opaque id.
    pub id: String,
    /// Place in line, across environments: smaller goes first. 0 when not yet queued
    /// (the store assigns the next one); an item put back keeps its old place.
    pub seq: u64,
    /// The environment it waits for.
    pub env: String,
    /// Who queued it (the deploy runs as them).
    pub user: String,
    /// The resolved invocation to run, as JSON.
    pub invocation: Value,
    /// The conversation it was asked in, where the start is announced.
    pub channel: Option<String>,
    /// When it was queued.
    pub since: SystemTime,
}

/// Deploys waiting in line per environment, oldest first; taken out by exactly one
/// replica when their environment frees.
#[async_trait]
pub trait DeployQueue: Send + Sync {
    /// Puts `item` in line: at the end when its `seq` is 0, else back at its old place.
    /// Returns its `seq`.
    async fn enqueue(&self, item: &Queued) -> Result<u64, StoreError>;
    /// The line of `env` (every environment's when `None`), first in line first.
    async fn queued(&self, env: Option<&str>) -> Result<Vec<Queued>, StoreError>;
    /// Takes `id` out of line; the item when it was still there. Of several callers
    /// at once, exactly one gets it. With `start`, the pending run that starts it is
    /// recorded in the same step, so a crash right after loses nothing.
    async fn dequeue(&self, id: &str, start: Option<&Run>) -> Result<Option<Queued>, StoreError>;
}

/// Everything the bot keeps: one object implementing every focused trait. Check an
/// implementation with `testing::conformance::store`.
#[async_trait]
pub trait Store:
    Inbox
    + Outbox
    + Buttons
    + Locks
    + Runs
    + AuditLog
    + crate::ports::watch::ProbeLog
    + crate::ports::watch::Watches
    + crate::ports::approvals::Approvals
    + DeployQueue
{
    /// Whether the store answers now (for readiness); `Err` says why not.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Answers inbox delivery `key`: writes `body` as the final content of its outbox
    /// message `id` (as [`Outbox::put_message`] with `last`) and marks the delivery
    /// processed (as [`Inbox::complete_inbound`]). A database does both in one
    /// transaction, so a crash leaves both or neither.
    async fn answer_inbound(&self, key: &str, id: &str, body: &Value) -> Result<(), StoreError> {
        self.put_message(id, body, true).await?;
        self.complete_inbound(key).await
    }

    /// Forgets what is past use and older than `before` (`settings.retention`):
    /// button sets and approval requests that expired before it, and finished runs
    /// that started before it, except the newest finished run of each environment
    /// and action (rollback reads where the last deploy moved traffic from). Running
    /// and pending runs, locks and the audit log are never pruned. Returns how many
    /// rows went.
    async fn prune_history(&self, before: SystemTime) -> Result<u64, StoreError>;
}

impl crate::failure::Failure for StoreError {
    fn plain(&self) -> String {
        "the state store is unavailable, so nothing was done".into()
    }
}
