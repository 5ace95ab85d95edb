//! The monitor's store ports: every probe result, kept for a retention period for
//! charts and the board ([`ProbeLog`]), and each target's confirmed state with its
//! open incident ([`Watches`]), so announcements and recoveries survive restarts and
//! a monitor that moves to another replica carries on where the last one stood.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::config::InstanceRef;
use crate::ports::store_error::StoreError;

/// What a probe made of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// The recipe passed.
    Ok,
    /// Neither ok nor broken yet: a build running, a deploy in progress.
    Pending,
    /// The recipe failed, or the target did not answer.
    NotOk,
}

impl Health {
    /// As stored and shown: `ok`, `pending`, `not_ok`.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Pending => "pending",
            Health::NotOk => "not_ok",
        }
    }
    /// From its stored name.
    pub fn parse(s: &str) -> Option<Health> {
        match s {
            "ok" => Some(Health::Ok),
            "pending" => Some(Health::Pending),
            "not_ok" => Some(Health::NotOk),
            _ => None,
        }
    }
}

/// The target id of an instance in the probe log: `instance:env/pool/member`, or
/// `instance:env/region/pool/member` in an environment with regions.
pub fn instance_target(r: &InstanceRef) -> String {
    match &r.region {
        Some(region) => format!("instance:{}/{region}/{}/{}", r.env, r.pool, r.member),
        None => format!("instance:{}/{}/{}", r.env, r.pool, r.member),
    }
}

/// The target id of a `checks:` entry in the probe log: `check:name`.
pub fn check_target(name: &str) -> String {
    format!("check:{name}")
}

/// One probe of one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeRecord {
    /// The target: [`instance_target`] or [`check_target`].
    pub target: String,
    /// When the probe started.
    pub at: SystemTime,
    /// The verdict.
    pub health: Health,
    /// How long the answer took (the timeout when there was none).
    pub latency: Option<Duration>,
    /// The HTTP status answered, when there was an answer.
    pub status: Option<u16>,
    /// The version the recipe read, when it reads one.
    pub version: Option<String>,
    /// Why it is not ok (or pending), in one line.
    pub reason: Option<String>,
    /// How many probes this record stands for: itself and, just before it, the
    /// probes of the target that said the same and were not written on their own
    /// (1 for a probe written as taken). Counts and shares add these up.
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

/// Probe results kept for a while, for charts (`chart latency`, `chart uptime`) and
/// the board of replicas that do not run the monitor themselves. The monitor writes
/// a result when it differs from the target's last written one, and otherwise one
/// point per target per sampling period standing for the probes since
/// ([`ProbeRecord::count`]).
#[async_trait]
pub trait ProbeLog: Send + Sync {
    /// Records a batch of probes, all or none (one transaction). Durable when it returns.
    async fn record_probes(&self, records: &[ProbeRecord]) -> Result<(), StoreError>;
    /// Probes of `target` taken at or after `since` and before `until`, oldest
    /// first, at most `limit` (the oldest ones when there are more).
    async fn probes(
        &self,
        target: &str,
        since: SystemTime,
        until: SystemTime,
        limit: usize,
    ) -> Result<Vec<ProbeRecord>, StoreError>;
    /// The newest probe of every target, in no particular order.
    async fn latest_probes(&self) -> Result<Vec<ProbeRecord>, StoreError>;
    /// Forgets probes taken before `before` (the retention); returns how many.
    async fn prune_probes(&self, before: SystemTime) -> Result<u64, StoreError>;
}

/// An incident: a target confirmed not ok, announced, not yet recovered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    /// The outbox message that announced it; the recovery edits it.
    pub message: String,
    /// Since when the target was not ok (its first failing probe).
    pub since: SystemTime,
    /// Why, as the recipe said at the time.
    pub reason: String,
}

/// The confirmed state of one target: what `confirm` agreeing probes said last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watch {
    /// The target id.
    pub target: String,
    /// The confirmed verdict.
    pub health: Health,
    /// Since when (the first probe of the agreeing run).
    pub since: SystemTime,
    /// Why, when not ok.
    pub reason: Option<String>,
    /// The open incident, when there is one.
    pub incident: Option<Incident>,
}

/// Each target's confirmed state and open incident.
#[async_trait]
pub trait Watches: Send + Sync {
    /// One target's confirmed state.
    async fn watch_of(&self, target: &str) -> Result<Option<Watch>, StoreError>;
    /// Every target's confirmed state.
    async fn watches(&self) -> Result<Vec<Watch>, StoreError>;
    /// Saves a target's confirmed state (replacing the previous one).
    async fn save_watch(&self, watch: &Watch) -> Result<(), StoreError>;
}
