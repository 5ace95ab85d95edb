//! How a deploy reads in Slack: the progress board (a line per pool, a heading per
//! region in a rollout, the watch after each switch, the commits it ships) and the
//! figures of its final line.

use std::time::{Duration, SystemTime};

use super::state::DeployRun;
use crate::reply::{Outcome, Reply};
use crate::steps::changes::Changes;
use crate::steps::watch;

/// The progress message of a deploy: a title and its lines.
pub(crate) struct Board {
    pub title: String,
    pub lines: Vec<String>,
}

impl Board {
    /// The board as a reply.
    pub(crate) fn reply(&self, outcome: Outcome) -> Reply {
        Reply::message(
            outcome,
            format!("{}\n{}", self.title, self.lines.join("\n")),
        )
    }
}

impl DeployRun {
    /// The progress board, as the deploy stands.
    pub(crate) fn board(&self, user: &str) -> Board {
        let title = format!(
            ":rocket: Deploying `{}` to *{}* for <@{user}>",
            self.git_ref, self.env
        );
        let mut board = match &self.rollout {
            Some(plan) => plan.board(self, title),
            None => {
                let mut lines: Vec<String> = self.pools.iter().map(|p| p.line.clone()).collect();
                lines.extend(watch::lines(&self.watched()));
                Board { title, lines }
            }
        };
        // What it ships, under the pools' lines.
        board
            .lines
            .extend(self.changes.as_ref().map(Changes::render));
        board
    }

    /// When it began.
    pub(crate) fn began(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(self.began_ms)
    }

    /// Time spent in step `k` (0 build, 1 health gate, 2 switch) over every pool.
    pub(crate) fn spent(&self, k: usize) -> Duration {
        Duration::from_millis(
            self.pools
                .iter()
                .map(|p| p.took_ms.get(k).copied().unwrap_or_default())
                .sum(),
        )
    }
}

/// `• api: 1 → 2` with `?` where a side is not known yet.
pub(crate) fn prefix(name: &str, from: Option<&str>, to: Option<&str>) -> String {
    format!("• {name}: {} → {}", from.unwrap_or("?"), to.unwrap_or("?"))
}

/// A failure line without its icon, for the audit record.
pub(crate) fn strip(s: &str) -> String {
    s.replace(":x: ", "")
}
