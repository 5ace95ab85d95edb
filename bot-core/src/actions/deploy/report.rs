//! How a deploy reads in Slack: the progress board (a line per pool, a heading per
//! region in a rollout, the watch after each switch, the commits it ships) and the
//! figures of its final line.

use std::time::{Duration, SystemTime};

use super::state::{DeployRun, Plan, Step};
use crate::ports::store::RunStatus;
use crate::reply::{Outcome, Reply};
use crate::steps::changes::{one_line, short, Changes};
use crate::steps::watch;
use crate::text::{code, escape};

/// How a deploy ended: its run status, its audit outcome and its reply.
pub(crate) type Ended = (RunStatus, String, Reply);

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
            ":rocket: Deploying {} to *{}* for <@{user}>",
            crate::text::code(&self.git_ref),
            self.env
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
        if let Some(p) = &self.pin {
            board.lines.push(format!(
                "*Pinned:* {} {}",
                code(&short(&p.sha)),
                escape(&p.title)
            ));
        }
        if let Some(newer) = self.newer.as_ref().filter(|n| !n.is_empty()) {
            let shown: Vec<String> = newer
                .iter()
                .rev()
                .take(3)
                .map(|c| format!("{} {}", code(&short(&c.sha)), escape(&one_line(&c.title))))
                .collect();
            board.lines.push(format!(
                ":warning: {} has {} newer commit{}, not deployed: {}{}",
                code(&self.git_ref),
                newer.len(),
                if newer.len() == 1 { "" } else { "s" },
                shown.join(", "),
                if newer.len() > 3 { ", …" } else { "" }
            ));
        }
        board
    }

    /// When it began.
    pub(crate) fn began(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(self.began_ms)
    }

    /// Time spent in canary steps, every pool's.
    pub(crate) fn canary_spent(&self) -> Duration {
        Duration::from_millis(
            self.pools
                .iter()
                .filter_map(|p| p.canary.as_ref().map(|c| c.took_ms))
                .sum(),
        )
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

/// How far one region got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RegionState {
    Waiting,
    Deploying,
    Watching,
    Switched,
    Unhealthy,
    RolledBack,
    Failed,
}

impl Plan {
    /// The progress board: a line per region saying where it stands, each followed
    /// by its pools' lines.
    pub(crate) fn board(&self, state: &DeployRun, title: String) -> Board {
        let mut lines = Vec::new();
        for region in self.regions() {
            lines.push(format!(
                "*{region}* — {}",
                describe(region_state(state, &region))
            ));
            for p in &state.pools {
                if p.region.as_deref() == Some(region.as_str()) {
                    lines.push(format!("  {}", p.line));
                }
            }
            let watched: Vec<_> = state
                .pools
                .iter()
                .filter(|p| p.region.as_deref() == Some(region.as_str()))
                .filter_map(|p| p.watched.clone())
                .collect();
            lines.extend(watch::lines(&watched).into_iter().map(|l| format!("  {l}")));
        }
        let title = match &self.only {
            Some(r) => format!("{title} (region {r} only)"),
            None => format!("{title}, region by region"),
        };
        Board { title, lines }
    }
}

pub(crate) fn region_state(state: &DeployRun, region: &str) -> RegionState {
    let pools: Vec<_> = state
        .pools
        .iter()
        .filter(|p| p.region.as_deref() == Some(region))
        .collect();
    let watched: Vec<_> = pools.iter().filter_map(|p| p.watched.clone()).collect();
    if pools.iter().any(|p| p.step == Step::Failed) {
        RegionState::Failed
    } else if !pools.is_empty() && pools.iter().all(|p| p.step == Step::Done) {
        if pools.iter().any(|p| p.rolled_back) || watch::rolled_back(&watched) {
            RegionState::RolledBack
        } else if watch::troubled(&watched) {
            RegionState::Unhealthy
        } else if watched.iter().any(|w| w.end.is_none()) || pools.iter().any(|p| !p.watch_planned)
        {
            RegionState::Watching
        } else {
            RegionState::Switched
        }
    } else if pools.iter().all(|p| p.step == Step::Waiting) {
        RegionState::Waiting
    } else {
        RegionState::Deploying
    }
}

pub(crate) fn describe(s: RegionState) -> &'static str {
    match s {
        RegionState::Waiting => ":white_circle: waiting",
        RegionState::Deploying => ":arrows_counterclockwise: deploying",
        RegionState::Watching => ":eyes: switched, watching",
        RegionState::Switched => ":white_check_mark: switched",
        RegionState::Unhealthy => ":rotating_light: switched, then unhealthy",
        RegionState::RolledBack => ":rewind: switched, then rolled back",
        RegionState::Failed => ":x: failed",
    }
}
