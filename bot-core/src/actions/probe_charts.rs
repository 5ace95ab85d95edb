//! `chart latency <instance> [24h]` and `chart uptime [env] [7d]`: charts of the
//! monitor's stored probe results ([`ProbeLog`](crate::ports::ProbeLog)). A stored
//! result may stand for several probes ([`ProbeRecord::count`]): counts and shares add
//! them up, and latencies weigh each point by how many probes it stands for.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use crate::actions::charts::{Window, DAY, HOUR};
use crate::chart::{ChartSpec, Dataset, Kind};
use crate::config::{CommandSpec, Config, InstanceRef};
use crate::context::{Action, Ctx};
use crate::failure::told;
use crate::ports::watch::{check_target, instance_target, Health, ProbeRecord};
use crate::ports::StoreError;
use crate::rejection::Rejection;
use crate::reply::{Invocation, Outcome, Reply, Target};
use crate::text::human;

/// Points along a latency chart.
const BUCKETS: u32 = 48;
/// Most probes read per bucket (the oldest of a bucket when there are more).
const PER_BUCKET: usize = 20_000;

/// Probes of `target` in `[from, to)`, read `buckets` slices at a time, oldest first.
async fn probes_in(
    ctx: &Ctx<'_>,
    target: &str,
    from: SystemTime,
    to: SystemTime,
    buckets: u32,
) -> Result<Vec<Vec<ProbeRecord>>, StoreError> {
    let width = to.duration_since(from).unwrap_or_default() / buckets.max(1);
    let mut out = Vec::new();
    for i in 0..buckets {
        let start = from + width * i;
        let end = if i + 1 == buckets { to } else { start + width };
        out.push(
            ctx.backends
                .store
                .probes(target, start, end, PER_BUCKET)
                .await?,
        );
    }
    Ok(out)
}

/// The `q` quantile (0–1) of `values` (which it sorts), each `(value, weight)`
/// standing for `weight` equal values; nearest rank.
fn quantile(values: &mut [(f64, u32)], q: f64) -> Option<f64> {
    let total: u64 = values.iter().map(|(_, w)| u64::from(*w)).sum();
    if total == 0 {
        return None;
    }
    values.sort_by(|a, b| a.0.total_cmp(&b.0));
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0u64;
    values
        .iter()
        .find(|(_, w)| {
            seen += u64::from(*w);
            seen >= rank
        })
        .map(|(v, _)| *v)
}

/// How many probes `records` stand for.
fn probes_of<'a>(records: impl IntoIterator<Item = &'a ProbeRecord>) -> u64 {
    records.into_iter().map(|p| u64::from(p.count.max(1))).sum()
}

/// `HH:MM` (UTC), with the date `MM-DD ` in front for windows over a day.
fn time_label(t: SystemTime, with_date: bool) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let text =
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string();
    let (date, time) = (
        text.get(5..10).unwrap_or(""),
        text.get(11..16).unwrap_or(""),
    );
    if with_date {
        format!("{date} {time}")
    } else {
        time.to_owned()
    }
}

fn read_failed(what: &str, e: &StoreError) -> Reply {
    Reply::message(
        Outcome::Failed,
        format!("I could not read the {what}: {}", told(e)),
    )
}

/// No probes stored: say why there may be none.
fn nothing_stored(config: &Config, what: &str, window: Window) -> Reply {
    let why = if config.monitor.is_none() {
        " The monitor is off (no `monitor:` in instances.yaml), so nothing is probed in the background."
    } else {
        ""
    };
    Reply::message(
        Outcome::Info,
        format!(
            "No probes of {what} stored for the {}.{why}",
            window.words()
        ),
    )
}

/// `chart latency <instance> [24h]`.
pub(crate) struct ChartLatency;

const LATENCY_USAGE: &str = "chart latency <instance> [24h]";

fn latency_window(inv: &Invocation) -> Result<Window, Rejection> {
    Window::of(inv, Window(HOUR * 24), Window(DAY * 30), LATENCY_USAGE)
}

#[async_trait]
impl Action for ChartLatency {
    fn check(&self, _: &Config, inv: &Invocation) -> Result<(), Rejection> {
        latency_window(inv).map(drop)
    }

    async fn run(&self, ctx: &Ctx<'_>, cmd: &CommandSpec, inv: Invocation) -> Reply {
        let window = match latency_window(&inv) {
            Ok(w) => w,
            Err(refusal) => return refusal.reply(),
        };
        let Target::Instance(instance) = &inv.target else {
            return Rejection::unsupported(&cmd.name, &inv.target).reply();
        };
        let now = ctx.now();
        let from = now - window.0;
        let buckets = match probes_in(ctx, &instance_target(instance), from, now, BUCKETS).await {
            Ok(b) => b,
            Err(e) => return read_failed("probe history", &e),
        };
        if buckets.iter().all(Vec::is_empty) {
            return nothing_stored(ctx.config(), &instance.to_string(), window);
        }
        latency_reply(instance, window, from, &buckets)
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

fn latency_reply(
    instance: &InstanceRef,
    window: Window,
    from: SystemTime,
    buckets: &[Vec<ProbeRecord>],
) -> Reply {
    let width = window.0 / buckets.len().max(1) as u32;
    let with_date = window.0 > DAY;
    let labels = (0..buckets.len() as u32)
        .map(|i| time_label(from + width * i, with_date))
        .collect();
    let answered = |b: &Vec<ProbeRecord>| -> Vec<(f64, u32)> {
        b.iter()
            .filter(|p| p.health != Health::NotOk)
            .filter_map(|p| p.latency.map(|l| (ms(l), p.count.max(1))))
            .collect()
    };
    let p50 = buckets
        .iter()
        .map(|b| quantile(&mut answered(b), 0.5))
        .collect();
    let p95 = buckets
        .iter()
        .map(|b| quantile(&mut answered(b), 0.95))
        .collect();
    let failed = probes_of(
        buckets
            .iter()
            .flatten()
            .filter(|p| p.health == Health::NotOk),
    );
    let total = probes_of(buckets.iter().flatten());
    let mut all: Vec<(f64, u32)> = buckets.iter().flat_map(answered).collect();
    let title = format!("Latency of {instance}, {}", window.words());
    let mut spec = ChartSpec::new(Kind::Line, title.clone(), labels)
        .dataset(Dataset::new("p50 ms", p50).color("#1d9bd1"))
        .dataset(Dataset::new("p95 ms", p95).color("#e01e5a"));
    spec.options = Some(serde_json::json!({"scales": {"y": {"title": {"text": "milliseconds"}}}}));
    let mut summary = format!("*{title}*: {total} probes");
    match (quantile(&mut all.clone(), 0.5), quantile(&mut all, 0.95)) {
        (Some(p50), Some(p95)) => summary.push_str(&format!(
            ", median {}, p95 {}",
            human(Duration::from_secs_f64(p50 / 1000.0)),
            human(Duration::from_secs_f64(p95 / 1000.0))
        )),
        _ => summary.push_str(", none answered"),
    }
    if failed > 0 {
        summary.push_str(&format!("; {failed} failed (not in the latency)"));
    }
    summary.push('.');
    Reply::new(Outcome::Info).text(summary).chart(spec)
}

/// `chart uptime [env] [7d]`.
pub(crate) struct ChartUptime;

const UPTIME_USAGE: &str = "chart uptime [env] [7d]";

fn uptime_window(inv: &Invocation) -> Result<Window, Rejection> {
    Window::of(inv, Window(DAY * 7), Window(DAY * 90), UPTIME_USAGE)
}

/// One target's probes in the window: ok and not ok (pending counts as neither).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Tally {
    ok: u64,
    not_ok: u64,
}

impl Tally {
    fn add(&mut self, probes: &[ProbeRecord]) {
        for p in probes {
            let n = u64::from(p.count.max(1));
            match p.health {
                Health::Ok => self.ok += n,
                Health::NotOk => self.not_ok += n,
                Health::Pending => {}
            }
        }
    }

    /// Uptime in percent, one decimal; `None` without a verdict.
    fn percent(self) -> Option<f64> {
        let all = self.ok + self.not_ok;
        (all > 0).then(|| (self.ok as f64 * 1000.0 / all as f64).round() / 10.0)
    }
}

#[async_trait]
impl Action for ChartUptime {
    fn check(&self, _: &Config, inv: &Invocation) -> Result<(), Rejection> {
        uptime_window(inv).map(drop)
    }

    async fn run(&self, ctx: &Ctx<'_>, cmd: &CommandSpec, inv: Invocation) -> Reply {
        let window = match uptime_window(&inv) {
            Ok(w) => w,
            Err(refusal) => return refusal.reply(),
        };
        let env = match &inv.target {
            Target::None => None,
            Target::Env { env, .. } => Some(env.as_str()),
            other => return Rejection::unsupported(&cmd.name, other).reply(),
        };
        let config = ctx.config();
        // Instances of the environment (every one, and the checks, without one).
        let mut targets: Vec<(String, String)> = config
            .instances()
            .filter(|(r, _)| env.is_none_or(|e| r.env == e))
            .map(|(r, _)| (r.to_string(), instance_target(&r)))
            .collect();
        if env.is_none() {
            targets.extend(
                config
                    .checks
                    .iter()
                    .map(|c| (c.name.clone(), check_target(&c.name))),
            );
        }
        let now = ctx.now();
        let from = now - window.0;
        let days = (window.0.as_secs().div_ceil(DAY.as_secs())).clamp(1, 90) as u32;
        let mut tallies = Vec::new();
        for (name, target) in &targets {
            let mut tally = Tally::default();
            match probes_in(ctx, target, from, now, days).await {
                Ok(buckets) => buckets.iter().for_each(|b| tally.add(b)),
                Err(e) => return read_failed("probe history", &e),
            }
            tallies.push((name.clone(), tally));
        }
        let place = env.map_or_else(|| "every instance and check".to_owned(), |e| e.to_owned());
        if tallies.iter().all(|(_, t)| t.percent().is_none()) {
            return nothing_stored(config, &place, window);
        }
        uptime_reply(&place, window, &tallies)
    }
}

fn uptime_reply(place: &str, window: Window, tallies: &[(String, Tally)]) -> Reply {
    let title = format!("Uptime of {place}, {}", window.words());
    let labels = tallies.iter().map(|(n, _)| n.clone()).collect();
    let data = tallies.iter().map(|(_, t)| t.percent()).collect();
    let mut spec = ChartSpec::new(Kind::Bar, title.clone(), labels)
        .dataset(Dataset::new("uptime %", data).color("#2eb67d"));
    spec.options =
        Some(serde_json::json!({"scales": {"y": {"title": {"text": "% of probes ok"}}}}));
    let mut worst: Vec<(&String, f64)> = tallies
        .iter()
        .filter_map(|(n, t)| t.percent().map(|p| (n, p)))
        .filter(|(_, p)| *p < 100.0)
        .collect();
    worst.sort_by(|a, b| a.1.total_cmp(&b.1));
    let summary = if worst.is_empty() {
        format!("*{title}*: every probe answered ok.")
    } else {
        let shown: Vec<String> = worst
            .iter()
            .take(3)
            .map(|(n, p)| format!("{n} {p}%"))
            .collect();
        format!("*{title}*: lowest {}.", shown.join(", "))
    };
    Reply::new(Outcome::Info).text(summary).chart(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_take_the_nearest_rank() {
        let mut v = [5.0, 1.0, 3.0, 2.0, 4.0].map(|v| (v, 1));
        assert_eq!(quantile(&mut v, 0.5), Some(3.0));
        assert_eq!(quantile(&mut v, 0.95), Some(5.0));
        assert_eq!(quantile(&mut [], 0.5), None);
    }

    #[test]
    fn a_point_standing_for_several_probes_weighs_as_many() {
        // 1 ms once, 9 ms standing for nine probes: the median is 9 ms.
        let mut v = [(1.0, 1), (9.0, 9)];
        assert_eq!(quantile(&mut v, 0.5), Some(9.0));
        assert_eq!(quantile(&mut v, 0.1), Some(1.0));
    }

    #[test]
    fn uptime_counts_ok_against_not_ok_and_ignores_pending() {
        let probe = |health| ProbeRecord {
            target: "t".into(),
            at: UNIX_EPOCH,
            health,
            latency: None,
            status: None,
            version: None,
            reason: None,
            count: 1,
        };
        let mut t = Tally::default();
        t.add(&[
            probe(Health::Ok),
            probe(Health::Ok),
            probe(Health::Ok),
            probe(Health::NotOk),
            probe(Health::Pending),
        ]);
        assert_eq!(t.percent(), Some(75.0));
        let mut sampled = probe(Health::Ok);
        sampled.count = 4;
        t.add(&[sampled]);
        assert_eq!(
            t.percent(),
            Some(87.5),
            "a point standing for 4 probes counts 4"
        );
        assert_eq!(Tally::default().percent(), None);
    }

    #[test]
    fn times_are_labelled_in_utc() {
        let t = UNIX_EPOCH + Duration::from_secs(100 * 86_400 + 3_600 + 120);
        assert_eq!(time_label(t, false), "01:02");
        assert_eq!(time_label(t, true), "04-11 01:02");
    }
}
