//! The runs port: long actions persisted as state machines, each driven by one
//! fenced owner under a lease, taken over where they stood when their replica dies.

use std::time::SystemTime;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::store_error::StoreError;

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Recorded but not started (an approved request, the head of the deploy queue):
    /// started by its owner at once, or by whichever replica is alive once its lease
    /// lapses.
    Pending,
    /// Being driven (or waiting to be taken over).
    Running,
    /// Ended well.
    Done,
    /// Ended badly.
    Failed,
}

impl RunStatus {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Running => "running",
            RunStatus::Done => "done",
            RunStatus::Failed => "failed",
        }
    }
    /// From its stored name.
    pub fn parse(s: &str) -> Option<RunStatus> {
        match s {
            "pending" => Some(RunStatus::Pending),
            "running" => Some(RunStatus::Running),
            "done" => Some(RunStatus::Done),
            "failed" => Some(RunStatus::Failed),
            _ => None,
        }
    }
}

/// A long action persisted as a state machine: whoever drives it holds a lease and a
/// fencing token; a replica that dies has its runs taken over where they stood.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// Id (the delivery it came from, or a fresh one).
    pub id: String,
    /// The action (`deploy`, `rollback`, …).
    pub action: String,
    /// Who asked.
    pub user: String,
    /// The environment it works on, when it has one.
    pub env: Option<String>,
    /// The resolved invocation, as JSON.
    pub invocation: Value,
    /// The outbox message its progress edits, when it has one.
    pub message: Option<String>,
    /// The action's own state, as JSON.
    pub state: Value,
    /// Where it is.
    pub status: RunStatus,
    /// Fencing token: bumped by every takeover; writes with an older one are refused.
    pub fence: u64,
    /// Who drives it.
    pub owner: String,
    /// The driver's lease.
    pub lease_until: SystemTime,
    /// When it started.
    pub started: SystemTime,
}

/// Persisted runs.
#[async_trait]
pub trait Runs: Send + Sync {
    /// Records a new run (driven by `run.owner` with `run.fence`) and, in the same
    /// step, marks what it came from done: inbox delivery `handoff`, or the pending
    /// run `handoff` it starts. From now on the run, not the delivery, is what a
    /// restart resumes. `false` when a run with that id exists.
    async fn start_run(&self, run: &Run, handoff: Option<&str>) -> Result<bool, StoreError>;
    /// Saves a run's state and status, and extends its lease, if `fence` is still
    /// its fencing token and it has not ended; `false` when another driver took it
    /// over (or it ended: a late write never brings a finished run back).
    async fn save_run(
        &self,
        id: &str,
        fence: u64,
        state: &Value,
        status: RunStatus,
        lease_until: SystemTime,
    ) -> Result<bool, StoreError>;
    /// Ends a run: its final `state` and `status` and the release of the lock it
    /// holds (the lock row naming `id` under `fence`), in one step. `false` when
    /// another driver took it over (nothing is written). A finished run is never
    /// taken over.
    async fn finish_run(
        &self,
        id: &str,
        fence: u64,
        state: &Value,
        status: RunStatus,
    ) -> Result<bool, StoreError>;
    /// Takes over up to `limit` running or pending runs whose lease lapsed by `now`:
    /// each gets a new fencing token, `owner` and lease. Returns them as taken.
    async fn take_over_runs(
        &self,
        owner: &str,
        now: SystemTime,
        lease_until: SystemTime,
        limit: usize,
    ) -> Result<Vec<Run>, StoreError>;
    /// A run by id.
    async fn run(&self, id: &str) -> Result<Option<Run>, StoreError>;
    /// The newest runs of `env` (every environment when `None`), newest first.
    async fn recent_runs(&self, env: Option<&str>, limit: usize) -> Result<Vec<Run>, StoreError>;
    /// Leaves `order` (a canary's `pause`, `continue`, `promote`, `abort`) from `user`
    /// for run `id`, for its driver to read on whichever replica drives it. Its
    /// sequence number (rising), or `None` when no such run is running.
    async fn order_run(
        &self,
        id: &str,
        order: &str,
        user: &str,
        at: SystemTime,
    ) -> Result<Option<u64>, StoreError>;
    /// The orders left for run `id` after sequence number `after`, oldest first.
    async fn run_orders(&self, id: &str, after: u64) -> Result<Vec<RunOrder>, StoreError>;
}

/// An order left for a running run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOrder {
    /// Its sequence number: rising, in the order given.
    pub seq: u64,
    /// `pause`, `continue`, `promote` or `abort`.
    pub order: String,
    /// Who gave it.
    pub user: String,
    /// When.
    pub at: SystemTime,
}
