//! `chart deploys [env] [30d]` and the time windows every chart command takes: charts drawn from the store, answered with a one-line
//! summary and the chart itself (a [`Part::Chart`](crate::reply::Part) the transport
//! turns into a PNG: uploaded to Slack, saved to a file by the console).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use crate::chart::{ChartSpec, Dataset, Kind};
use crate::config::{CommandSpec, Config};
use crate::context::{Action, Ctx};
use crate::failure::told;
use crate::ports::AuditRecord;
use crate::rejection::Rejection;
use crate::reply::{Invocation, Outcome, Reply, Target};
use crate::text::human;

/// A day.
pub(crate) const DAY: Duration = Duration::from_secs(86_400);
/// An hour.
pub(crate) const HOUR: Duration = Duration::from_secs(3_600);
/// Audit records read per page.
const PAGE: usize = 500;
/// Most audit records read for one chart.
const MOST_RECORDS: usize = 20_000;

/// A chart's time window, as typed (`30d`, `24h`, `2w`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window(pub Duration);

impl Window {
    /// `30d`, `24h`, `2w` (one word); `None` when it is not one.
    pub(crate) fn parse(word: &str) -> Option<Window> {
        let word = word.trim().to_ascii_lowercase();
        let split = word.find(|c: char| !c.is_ascii_digit())?;
        let (n, unit) = word.split_at(split);
        let n: u32 = n.parse().ok().filter(|n| *n > 0)?;
        let unit = match unit {
            "h" | "hour" | "hours" => HOUR,
            "d" | "day" | "days" => DAY,
            "w" | "week" | "weeks" => DAY * 7,
            _ => return None,
        };
        Some(Window(unit * n))
    }

    /// The window given in `inv`'s one argument, or `default`; refused beyond `longest`.
    pub(crate) fn of(
        inv: &Invocation,
        default: Window,
        longest: Window,
        usage: &str,
    ) -> Result<Window, Rejection> {
        let refuse = |given: String| Rejection::BadWindow {
            given,
            usage: usage.to_owned(),
            longest: Window::text(longest.0),
        };
        match inv.args.as_slice() {
            [] => Ok(default),
            [word] => match Window::parse(word) {
                Some(w) if w.0 <= longest.0 => Ok(w),
                _ => Err(refuse(word.clone())),
            },
            more => Err(refuse(more.join(" "))),
        }
    }

    /// `30d`, `36h`: days when whole, else hours.
    fn text(d: Duration) -> String {
        let secs = d.as_secs();
        if secs % DAY.as_secs() == 0 {
            format!("{}d", secs / DAY.as_secs())
        } else {
            format!("{}h", secs.div_ceil(HOUR.as_secs()))
        }
    }

    /// `last 30 days`, `last 24 hours`, `last day`.
    pub(crate) fn words(self) -> String {
        let secs = self.0.as_secs();
        match (secs % DAY.as_secs() == 0, secs / DAY.as_secs()) {
            (true, 1) => "last day".to_owned(),
            (true, d) => format!("last {d} days"),
            _ => match secs.div_ceil(HOUR.as_secs()) {
                1 => "last hour".to_owned(),
                h => format!("last {h} hours"),
            },
        }
    }
}

/// Whole days since the epoch (UTC).
fn day_of(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() / DAY.as_secs()
}

/// `11-30` for a day number.
fn day_label(day: u64) -> String {
    let t = UNIX_EPOCH + DAY * u32::try_from(day).unwrap_or(u32::MAX);
    let text = humantime::format_rfc3339_seconds(t).to_string();
    text.get(5..10).unwrap_or(&text).to_owned()
}

/// The median of `values` (which it sorts); `None` when empty.
pub(super) fn median(values: &mut [Duration]) -> Option<Duration> {
    if values.is_empty() {
        return None;
    }
    values.sort();
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 0 {
        (values[mid - 1] + values[mid]) / 2
    } else {
        values[mid]
    })
}

/// How a deploy ended, as the chart stacks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Succeeded,
    Failed,
    Refused,
}

impl Ended {
    const ALL: [Ended; 3] = [Ended::Succeeded, Ended::Failed, Ended::Refused];

    fn of(outcome: &str) -> Option<Ended> {
        if outcome == "ok" {
            Some(Ended::Succeeded)
        } else if outcome.starts_with("failed") {
            Some(Ended::Failed)
        } else if outcome.starts_with("refused") {
            Some(Ended::Refused)
        } else {
            None
        }
    }

    fn label(self) -> &'static str {
        match self {
            Ended::Succeeded => "succeeded",
            Ended::Failed => "failed",
            Ended::Refused => "refused",
        }
    }

    fn color(self) -> &'static str {
        match self {
            Ended::Succeeded => "#2eb67d",
            Ended::Failed => "#e01e5a",
            Ended::Refused => "#ecb22e",
        }
    }
}

/// Deploys per day by how they ended, and the median duration of successful ones.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DeployDays {
    /// First day (days since the epoch).
    pub first: u64,
    /// Per day: counts by [`Ended::ALL`] and successful durations.
    pub days: Vec<([u32; 3], Vec<Duration>)>,
}

impl DeployDays {
    /// Buckets `records` (any order) of the deploy commands `deploys` into the days
    /// from `first` to `last`.
    fn of(records: &[AuditRecord], deploys: &[&str], first: u64, last: u64) -> DeployDays {
        let mut days = vec![([0u32; 3], Vec::new()); (last + 1 - first) as usize];
        for r in records {
            let day = day_of(r.at);
            if day < first || day > last || !deploys.contains(&r.command.as_str()) {
                continue;
            }
            let Some(ended) = Ended::of(&r.outcome) else {
                continue;
            };
            let slot = &mut days[(day - first) as usize];
            slot.0[ended as usize] += 1;
            if let (Ended::Succeeded, Some(d)) = (ended, r.duration) {
                slot.1.push(d);
            }
        }
        DeployDays { first, days }
    }

    fn total(&self, ended: Ended) -> u32 {
        self.days.iter().map(|d| d.0[ended as usize]).sum()
    }

    fn chart(&self, title: String) -> ChartSpec {
        let labels = (0..self.days.len() as u64)
            .map(|i| day_label(self.first + i))
            .collect();
        let mut spec = ChartSpec::new(Kind::Bar, title, labels);
        for ended in Ended::ALL {
            if ended == Ended::Refused && self.total(ended) == 0 {
                continue;
            }
            let data = self
                .days
                .iter()
                .map(|d| Some(f64::from(d.0[ended as usize])))
                .collect();
            spec = spec.dataset(
                Dataset::new(ended.label(), data)
                    .stack("deploys")
                    .color(ended.color()),
            );
        }
        let medians = self
            .days
            .iter()
            .map(|d| {
                let mut took = d.1.clone();
                median(&mut took).map(|m| (m.as_secs_f64() / 60.0 * 10.0).round() / 10.0)
            })
            .collect();
        spec = spec.dataset(
            Dataset::new("median minutes (succeeded)", medians)
                .kind(Kind::Line)
                .on_right_axis()
                .color("#1d9bd1"),
        );
        spec.options = Some(serde_json::json!({"scales": {
            "y": {"title": {"text": "deploys"}},
            "y1": {"title": {"text": "minutes"}},
        }}));
        spec
    }
}

/// Every audit record of `env` (all when `None`) from `since` on, newest first, at
/// most [`MOST_RECORDS`]; `true` when more were left unread.
async fn audit_since(
    ctx: &Ctx<'_>,
    env: Option<&str>,
    since: SystemTime,
) -> Result<(Vec<AuditRecord>, bool), crate::ports::StoreError> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let page = ctx.backends.store.history(env, offset, PAGE).await?;
        offset += page.len();
        let full = page.len() == PAGE;
        // Newest first: a page ending before `since` is the last one needed.
        let done = !full || page.last().is_some_and(|r| r.at < since);
        out.extend(page.into_iter().filter(|r| r.at >= since));
        if done {
            return Ok((out, false));
        }
        if offset >= MOST_RECORDS {
            return Ok((out, true));
        }
    }
}

/// `chart deploys [env] [30d]`.
pub(crate) struct ChartDeploys;

const DEPLOYS_USAGE: &str = "chart deploys [env] [30d]";

fn deploys_window(inv: &Invocation) -> Result<Window, Rejection> {
    Window::of(inv, Window(DAY * 30), Window(DAY * 365), DEPLOYS_USAGE)
}

#[async_trait]
impl Action for ChartDeploys {
    fn check(&self, _: &Config, inv: &Invocation) -> Result<(), Rejection> {
        deploys_window(inv).map(drop)
    }

    async fn run(&self, ctx: &Ctx<'_>, cmd: &CommandSpec, inv: Invocation) -> Reply {
        let window = match deploys_window(&inv) {
            Ok(w) => w,
            Err(refusal) => return refusal.reply(),
        };
        let env = match &inv.target {
            Target::None => None,
            Target::Env { env, .. } => Some(env.as_str()),
            other => return Rejection::unsupported(&cmd.name, other).reply(),
        };
        let now = ctx.now();
        let last = day_of(now);
        let days = window.0.as_secs().div_ceil(DAY.as_secs()).max(1);
        let first = last + 1 - days;
        let since = UNIX_EPOCH + DAY * u32::try_from(first).unwrap_or(0);
        let (records, cut) = match audit_since(ctx, env, since).await {
            Ok(r) => r,
            Err(e) => {
                return Reply::message(
                    Outcome::Failed,
                    format!("I could not read the deploy history: {}", told(&e)),
                )
            }
        };
        let deploys: Vec<&str> = ctx
            .config()
            .commands
            .iter()
            .filter(|c| c.action.name() == "deploy")
            .map(|c| c.name.as_str())
            .collect();
        let data = DeployDays::of(&records, &deploys, first, last);
        let place = env.map_or_else(|| "every environment".to_owned(), str::to_owned);
        let title = format!("Deploys on {place}, {}", window.words());
        let total: u32 = Ended::ALL.iter().map(|e| data.total(*e)).sum();
        if total == 0 {
            return Reply::message(
                Outcome::Info,
                format!("No deploys on {place} in the {}.", window.words()),
            );
        }
        let mut took: Vec<Duration> = data.days.iter().flat_map(|d| d.1.clone()).collect();
        let mut summary = format!(
            "*{title}*: {total} ({} succeeded, {} failed",
            data.total(Ended::Succeeded),
            data.total(Ended::Failed)
        );
        if data.total(Ended::Refused) > 0 {
            summary.push_str(&format!(", {} refused", data.total(Ended::Refused)));
        }
        summary.push(')');
        if let Some(m) = median(&mut took) {
            summary.push_str(&format!("; median successful deploy {}", human(m)));
        }
        summary.push('.');
        let mut reply = Reply::new(Outcome::Info)
            .text(summary)
            .chart(data.chart(title));
        if cut {
            reply = reply.context(format!(
                "Only the newest {MOST_RECORDS} audit records were read."
            ));
        }
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(args: &[&str]) -> Invocation {
        Invocation {
            command: "chart deploys".into(),
            target: Target::None,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            params: Vec::new(),
            confirmed: false,
            approval: None,
            pin: None,
        }
    }

    #[test]
    fn windows_are_hours_days_or_weeks_within_the_longest() {
        assert_eq!(deploys_window(&inv(&[])), Ok(Window(DAY * 30)));
        assert_eq!(deploys_window(&inv(&["7d"])), Ok(Window(DAY * 7)));
        assert_eq!(deploys_window(&inv(&["48h"])), Ok(Window(HOUR * 48)));
        assert_eq!(deploys_window(&inv(&["2w"])), Ok(Window(DAY * 14)));
        for bad in ["0d", "400d", "soon", "7x", "d"] {
            let refusal = deploys_window(&inv(&[bad])).expect_err(bad).to_string();
            assert!(
                refusal.contains(bad) && refusal.contains("365d"),
                "{refusal}"
            );
        }
        assert_eq!(Window(HOUR * 24).words(), "last day");
        assert_eq!(Window(HOUR * 36).words(), "last 36 hours");
        assert_eq!(Window(DAY * 30).words(), "last 30 days");
    }

    fn record(day: u64, command: &str, outcome: &str, minutes: u64) -> AuditRecord {
        AuditRecord {
            at: UNIX_EPOCH + DAY * day as u32 + HOUR,
            user: "U1".into(),
            command: command.into(),
            target: "staging".into(),
            env: Some("staging".into()),
            args: String::new(),
            outcome: outcome.into(),
            duration: Some(Duration::from_secs(minutes * 60)),
            links: Vec::new(),
        }
    }

    #[test]
    fn deploys_are_counted_per_day_by_outcome_with_the_median_of_successes() {
        let records = [
            record(100, "deploy", "ok", 4),
            record(100, "deploy", "ok", 6),
            record(100, "deploy", "ok", 20),
            record(100, "deploy", "failed: gate", 1),
            record(101, "deploy", "refused: locked", 0),
            record(101, "restart", "ok", 1),
            record(99, "deploy", "ok", 5),
        ];
        let d = DeployDays::of(&records, &["deploy"], 100, 102);
        assert_eq!(d.days.len(), 3);
        assert_eq!(d.days[0].0, [3, 1, 0]);
        assert_eq!(d.days[1].0, [0, 0, 1]);
        assert_eq!(d.days[2].0, [0, 0, 0]);
        let chart = d.chart("t".into());
        assert_eq!(chart.labels, ["04-11", "04-12", "04-13"]);
        assert_eq!(chart.datasets.len(), 4);
        assert_eq!(chart.datasets[3].data, vec![Some(6.0), None, None]);
        chart.validate().expect("a valid chart");
    }
}
