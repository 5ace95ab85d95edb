//! Runs recorded before they start: an approved request (recorded with the vote that
//! approves it), the head of the deploy queue (recorded as it leaves the line) and a
//! deploy scheduled for later (whose lease lapses at its time). A
//! pending run is started at once by the replica that recorded it, and by whichever
//! replica is alive when that one dies first, so a crash between the decision and the
//! start loses nothing; the run it starts is named after it, so it starts once.

use serde::{Deserialize, Serialize};

use crate::context::Ctx;
use crate::ports::store::{Queued, Run, RunStatus};

/// What a pending run starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PendingStart {
    /// The invocation of approval request `id`, as its requester.
    Approval {
        /// The request.
        id: String,
        /// Where it was asked (buttons it offers are bound to it).
        channel: Option<String>,
    },
    /// A deploy scheduled for later, as whoever scheduled it; its lease lapses at `at`.
    Scheduled {
        /// Its id (`unschedule <id>`).
        id: String,
        /// When it starts.
        at: std::time::SystemTime,
        /// The zone it was asked in (to say the time back).
        zone: String,
        /// Where it was asked.
        channel: Option<String>,
    },
    /// A deploy that waited in line, as whoever queued it.
    Queued {
        /// The line's item, as it was taken out (put back when someone else was
        /// quicker to the environment).
        item: Queued,
    },
}

/// The id of the pending run that starts approval request `id`.
pub fn approval_id(id: &str) -> String {
    format!("start:approval:{id}")
}

/// The id of the pending run that starts queued deploy `item`.
pub fn queued_id(item: &str) -> String {
    format!("start:queue:{item}")
}

/// A pending run of `start` for `user`, owned by this replica for one lease, whose
/// progress and reply go to outbox message `message`.
pub fn pending(
    ctx: &Ctx<'_>,
    id: String,
    user: &str,
    env: Option<String>,
    invocation: serde_json::Value,
    message: Option<String>,
    start: &PendingStart,
) -> Run {
    let now = ctx.now();
    Run {
        id,
        action: "start".into(),
        user: user.to_owned(),
        env,
        invocation,
        message,
        state: serde_json::to_value(start).unwrap_or(serde_json::Value::Null),
        status: RunStatus::Pending,
        fence: 1,
        owner: ctx.backends.owner.clone(),
        lease_until: now + ctx.config().settings.lease,
        started: now,
    }
}
