//! `dora [env] [30d]`: DORA's four keys over a window, from what Crossroads already
//! holds: its deploy runs (when each pool went live, the commits each listed, rolled
//! back or not), the rollbacks run by hand, and the monitor's probe log. Each figure
//! comes with its count and its DORA band; `help dora` says how each is measured.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::Serialize;

use super::charts::{median, Window};
use super::deploy::DeployState;
use crate::chart::{ChartSpec, Dataset, Kind};
use crate::config::{CommandSpec, Config};
use crate::context::{Action, Ctx, Offer};
use crate::failure::told;
use crate::ports::store::{Run, RunStatus};
use crate::ports::watch::{instance_target, Health};
use crate::ports::Store;
use crate::reply::{ButtonAction, ButtonStyle, Invocation, Outcome, Reply, Target};
use crate::runs;
use crate::text::span;

/// The window when none is given.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(30 * 86_400);
/// The longest window (chat and API).
pub const MAX_WINDOW: Duration = Duration::from_secs(365 * 86_400);
/// How long after going live a confirmed incident counts against a deploy.
const INCIDENT_WINDOW: Duration = Duration::from_secs(3600);
/// The most runs read.
const MAX_RUNS: usize = 20_000;
/// A day.
const DAY: Duration = Duration::from_secs(86_400);

/// DORA's performance bands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Band {
    /// The best.
    Elite,
    /// Good.
    High,
    /// Middling.
    Medium,
    /// The rest.
    Low,
}

impl Band {
    fn word(self) -> &'static str {
        match self {
            Band::Elite => "elite",
            Band::High => "high",
            Band::Medium => "medium",
            Band::Low => "low",
        }
    }
}

/// The four keys over one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dora {
    /// The environment (every one when `None`).
    pub env: Option<String>,
    /// The window: from.
    #[serde(serialize_with = "rfc3339::serialize")]
    pub since: SystemTime,
    /// The window: to.
    #[serde(serialize_with = "rfc3339::serialize")]
    pub until: SystemTime,
    /// Deploys that went live in the window.
    pub deploys: usize,
    /// Deploys a day.
    pub per_day: f64,
    /// Band of the deployment frequency.
    pub frequency_band: Band,
    /// Commits with a known time that went live.
    pub commits: usize,
    /// Median lead time for changes, seconds.
    pub lead_median_s: Option<u64>,
    /// 90th percentile lead time, seconds.
    pub lead_p90_s: Option<u64>,
    /// Band of the lead time (by its median).
    pub lead_band: Option<Band>,
    /// Deploys that failed after going live.
    pub failures: usize,
    /// Failures / deploys.
    pub failure_rate: Option<f64>,
    /// Band of the change failure rate.
    pub failure_band: Option<Band>,
    /// Failures restored.
    pub restored: usize,
    /// Median time to restore, seconds.
    pub restore_median_s: Option<u64>,
    /// Band of the time to restore.
    pub restore_band: Option<Band>,
}

/// Times as RFC 3339, to the second.
mod rfc3339 {
    use std::time::{SystemTime, UNIX_EPOCH};

    pub fn serialize<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        s.serialize_str(
            &humantime::format_rfc3339_seconds(UNIX_EPOCH + std::time::Duration::from_secs(secs))
                .to_string(),
        )
    }
}

/// One deploy that went live.
struct Live {
    at: SystemTime,
    env: String,
    /// `(region, pool, member)` made live.
    members: Vec<(Option<String>, String, String)>,
    /// Lead times of its commits.
    leads: Vec<Duration>,
    /// Failed after going live, and when it was restored (if it was).
    failed: Option<Option<SystemTime>>,
}

fn ms_time(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
}

/// What deploy `run` made live, with its commits' lead times and whether it failed
/// by itself (moved back or unhealthy after the switch).
fn went_live(run: &Run) -> Option<Live> {
    let state = runs::read::<DeployState>(run).ok()?;
    let s = state.run();
    let done: Vec<_> = s
        .pools
        .iter()
        .filter(|p| p.step == super::deploy::state::Step::Done)
        .collect();
    if done.is_empty() {
        return None;
    }
    let at = done
        .iter()
        .filter_map(|p| p.switched_ms.map(ms_time))
        .min()
        .unwrap_or(run.started);
    let leads = match &s.changes {
        Some(crate::steps::changes::Changes::Listed { commits, .. }) => commits
            .iter()
            .filter_map(|c| at.duration_since(c.time?).ok())
            .collect(),
        _ => Vec::new(),
    };
    let mut failed = None;
    for p in &done {
        if p.rolled_back {
            failed = Some(Some(at));
        }
        if let Some(w) = &p.watched {
            match &w.end {
                Some(crate::steps::watch::WatchEnd::RolledBack { after_ms, .. }) => {
                    failed = Some(Some(ms_time(w.since_ms + after_ms)));
                }
                Some(crate::steps::watch::WatchEnd::Unhealthy { .. }) if failed.is_none() => {
                    failed = Some(None);
                }
                _ => {}
            }
        }
    }
    Some(Live {
        at,
        env: s.env.clone(),
        members: done
            .iter()
            .filter_map(|p| Some((p.region.clone(), p.pool.clone(), p.to.clone()?)))
            .collect(),
        leads,
        failed,
    })
}

/// The median and 90th percentile of `d` (nearest rank).
fn percentiles(d: &mut [Duration]) -> Option<(Duration, Duration)> {
    // The median as the deploys chart takes it (which sorts `d`), then the p90 by rank.
    let median = median(d)?;
    let rank = |p: f64| {
        let i = ((p * d.len() as f64).ceil() as usize).clamp(1, d.len()) - 1;
        d[i]
    };
    Some((median, rank(0.9)))
}

/// The first confirmed incident of `target` within [from, from + INCIDENT_WINDOW):
/// `confirm` not-ok probes in a row; when it began and when it recovered (the next
/// ok probe, looked for until `until`), if it did. Reads the hour after `from`, and
/// after it only when an incident is still open then.
async fn incident(
    store: &dyn Store,
    target: &str,
    from: SystemTime,
    confirm: u32,
    until: SystemTime,
) -> Result<Option<(SystemTime, Option<SystemTime>)>, crate::ports::StoreError> {
    let hour = from + INCIDENT_WINDOW;
    let first = store.probes(target, from, hour, 10_000).await?;
    let mut run_start: Option<SystemTime> = None;
    let mut run_len = 0u32;
    let mut began: Option<SystemTime> = None;
    for p in &first {
        match (p.health, began) {
            (Health::NotOk, None) => {
                run_start.get_or_insert(p.at);
                // A sampled point stands for the probes since the one before.
                run_len = run_len.saturating_add(p.count.max(1));
                if run_len >= confirm {
                    began = Some(run_start.unwrap_or(p.at));
                }
            }
            (Health::Ok, Some(b)) => return Ok(Some((b, Some(p.at)))),
            (_, None) => {
                run_start = None;
                run_len = 0;
            }
            (_, Some(_)) => {}
        }
    }
    let Some(began) = began else {
        return Ok(None);
    };
    // Still down an hour on: its recovery is the first ok probe after.
    let later = store.probes(target, hour, until.max(hour), 10_000).await?;
    let recovered = later.iter().find(|p| p.health == Health::Ok).map(|p| p.at);
    Ok(Some((began, recovered)))
}

/// The deploys of `env` (every environment when `None`) that went live in
/// [since, until], oldest first, each with whether (and when) it failed: moved back
/// by itself or by hand before the next deploy, or followed within the hour by a
/// confirmed incident on a member it made live.
async fn history(
    store: &dyn Store,
    config: &Config,
    env: Option<&str>,
    since: SystemTime,
    until: SystemTime,
) -> Result<Vec<Live>, crate::ports::StoreError> {
    let runs = store.recent_runs(env, MAX_RUNS).await?;
    let mut lives: Vec<Live> = runs
        .iter()
        .filter(|r| r.action == "deploy")
        .filter_map(went_live)
        .filter(|l| l.at >= since && l.at <= until)
        .collect();
    lives.sort_by_key(|l| l.at);
    // Rollbacks by hand: the deploy live before one (on its environment) failed,
    // and was restored when the rollback ran.
    let mut rollbacks: Vec<(String, SystemTime)> = runs
        .iter()
        .filter(|r| r.action == "rollback" && r.status == RunStatus::Done)
        .filter_map(|r| Some((r.env.clone()?, r.started)))
        .collect();
    rollbacks.sort_by_key(|(_, t)| *t);
    for i in 0..lives.len() {
        // Moved back already; one left unhealthy is restored by the rollback.
        if matches!(lives[i].failed, Some(Some(_))) {
            continue;
        }
        let next = lives[i + 1..]
            .iter()
            .find(|l| l.env == lives[i].env)
            .map(|l| l.at);
        if let Some((_, at)) = rollbacks
            .iter()
            .find(|(e, t)| *e == lives[i].env && *t > lives[i].at && next.is_none_or(|n| *t < n))
        {
            lives[i].failed = Some(Some(*at));
        }
    }
    // Confirmed incidents on a member it made live, within the hour.
    let confirm = config.monitor.as_ref().map_or(1, |m| m.confirm.max(1));
    for live in lives.iter_mut().filter(|l| l.failed.is_none()) {
        for (region, pool, member) in &live.members {
            let target = instance_target(&crate::config::InstanceRef {
                env: live.env.clone(),
                pool: pool.clone(),
                member: member.clone(),
                region: region.clone(),
            });
            if let Some((began, restored)) =
                incident(store, &target, live.at, confirm, until).await?
            {
                // Restored as long after going live as the incident lasted.
                live.failed =
                    Some(restored.map(|r| live.at + r.duration_since(began).unwrap_or_default()));
                break;
            }
        }
    }
    Ok(lives)
}

/// The four keys of `lives` (those in [since, until]).
fn summarize(env: Option<&str>, lives: &[&Live], since: SystemTime, until: SystemTime) -> Dora {
    let days = until
        .duration_since(since)
        .unwrap_or_default()
        .as_secs_f64()
        / DAY.as_secs_f64();
    let deploys = lives.len();
    let per_day = if days > 0.0 {
        deploys as f64 / days
    } else {
        0.0
    };
    let mut leads: Vec<Duration> = lives.iter().flat_map(|l| l.leads.iter().copied()).collect();
    let commits = leads.len();
    let lead = percentiles(&mut leads);
    let failures = lives.iter().filter(|l| l.failed.is_some()).count();
    let mut restores: Vec<Duration> = lives
        .iter()
        .filter_map(|l| l.failed.flatten()?.duration_since(l.at).ok())
        .collect();
    let restored = restores.len();
    let restore = percentiles(&mut restores);
    let failure_rate = (deploys > 0).then(|| failures as f64 / deploys as f64);
    Dora {
        env: env.map(str::to_owned),
        since,
        until,
        deploys,
        per_day,
        frequency_band: frequency_band(per_day),
        commits,
        lead_median_s: lead.map(|(m, _)| m.as_secs()),
        lead_p90_s: lead.map(|(_, p)| p.as_secs()),
        lead_band: lead.map(|(m, _)| lead_band(m)),
        failures,
        failure_rate,
        failure_band: failure_rate.map(failure_band),
        restored,
        restore_median_s: restore.map(|(m, _)| m.as_secs()),
        restore_band: restore.map(|(m, _)| restore_band(m)),
    }
}

/// DORA's four keys for `env` (every environment when `None`) over [since, until].
pub async fn measure(
    store: &dyn Store,
    config: &Config,
    env: Option<&str>,
    since: SystemTime,
    until: SystemTime,
) -> Result<Dora, crate::ports::StoreError> {
    let lives = history(store, config, env, since, until).await?;
    let all: Vec<&Live> = lives.iter().collect();
    Ok(summarize(env, &all, since, until))
}

/// The four keys over [since, until], and week by week, oldest first (the last
/// week may be short).
pub async fn weekly(
    store: &dyn Store,
    config: &Config,
    env: Option<&str>,
    since: SystemTime,
    until: SystemTime,
) -> Result<(Dora, Vec<Dora>), crate::ports::StoreError> {
    let lives = history(store, config, env, since, until).await?;
    let all: Vec<&Live> = lives.iter().collect();
    let overall = summarize(env, &all, since, until);
    let mut weeks = Vec::new();
    let mut from = since;
    while from < until {
        let to = (from + DAY * 7).min(until);
        let these: Vec<&Live> = lives.iter().filter(|l| l.at >= from && l.at < to).collect();
        weeks.push(summarize(env, &these, from, to));
        from = to;
    }
    Ok((overall, weeks))
}

/// DORA (2023): elite deploys on demand, several a day (more than one); high
/// between once a day and once a week; medium between once a week and once a month;
/// low less often.
fn frequency_band(per_day: f64) -> Band {
    if per_day > 1.0 {
        Band::Elite
    } else if per_day >= 1.0 / 7.0 {
        Band::High
    } else if per_day >= 1.0 / 30.0 {
        Band::Medium
    } else {
        Band::Low
    }
}

/// Elite under a day; high under a week; medium under a month; low longer.
fn lead_band(median: Duration) -> Band {
    if median < DAY {
        Band::Elite
    } else if median < DAY * 7 {
        Band::High
    } else if median < DAY * 30 {
        Band::Medium
    } else {
        Band::Low
    }
}

/// Elite at most 5 %; high at most 10 %; medium at most 15 %; low above.
fn failure_band(rate: f64) -> Band {
    if rate <= 0.05 {
        Band::Elite
    } else if rate <= 0.10 {
        Band::High
    } else if rate <= 0.15 {
        Band::Medium
    } else {
        Band::Low
    }
}

/// Elite under an hour; high under a day; medium under a week; low longer.
fn restore_band(median: Duration) -> Band {
    if median < Duration::from_secs(3600) {
        Band::Elite
    } else if median < DAY {
        Band::High
    } else if median < DAY * 7 {
        Band::Medium
    } else {
        Band::Low
    }
}

const USAGE: &str = "dora [env] [30d]";

/// The window asked for: `30d`, `2w`, `12h` (default 30 days, at most a year).
fn window(inv: &Invocation) -> Result<Window, crate::rejection::Rejection> {
    Window::of(inv, Window(DEFAULT_WINDOW), Window(MAX_WINDOW), USAGE)
}

fn band(b: Option<Band>) -> String {
    b.map_or_else(|| "no band".to_owned(), |b| format!("*{}*", b.word()))
}

fn secs(s: Option<u64>) -> String {
    s.map_or_else(|| "—".to_owned(), |s| span(Duration::from_secs(s)))
}

/// The reply for `d` over `window`.
pub fn render(d: &Dora, window: Duration) -> Reply {
    let place = d
        .env
        .as_deref()
        .map_or_else(|| "every environment".to_owned(), |e| format!("*{e}*"));
    let plural = |n: usize, one: &str, many: &str| {
        if n == 1 {
            one.to_owned()
        } else {
            many.to_owned()
        }
    };
    let words = Window(window).words();
    let frequency = format!(
        "• *Deployment frequency:* {:.2} a day — {} {} in the {words} · {}",
        d.per_day,
        d.deploys,
        plural(d.deploys, "deploy", "deploys"),
        band(Some(d.frequency_band))
    );
    let lead = match d.lead_median_s {
        Some(_) => format!(
            "• *Lead time for changes:* median {}, p90 {} — from {} {} with a known time · {}",
            secs(d.lead_median_s),
            secs(d.lead_p90_s),
            d.commits,
            plural(d.commits, "commit", "commits"),
            band(d.lead_band)
        ),
        None => "• *Lead time for changes:* — no deployed commit with a known time (a compare endpoint or Jenkins' change sets give them)".to_owned(),
    };
    let failure = match d.failure_rate {
        Some(rate) => format!(
            "• *Change failure rate:* {:.0} % — {} of {} {} · {}",
            rate * 100.0,
            d.failures,
            d.deploys,
            plural(d.deploys, "deploy", "deploys"),
            band(d.failure_band)
        ),
        None => "• *Change failure rate:* — no deploys".to_owned(),
    };
    let restore = match d.restore_median_s {
        Some(_) => format!(
            "• *Time to restore:* median {} — {} of {} {} restored · {}",
            secs(d.restore_median_s),
            d.restored,
            d.failures,
            plural(d.failures, "failure", "failures"),
            band(d.restore_band)
        ),
        None if d.failures > 0 => format!(
            "• *Time to restore:* — {} {} not restored yet",
            d.failures,
            plural(d.failures, "failure", "failures")
        ),
        None => "• *Time to restore:* — no failures".to_owned(),
    };
    Reply::message(
        Outcome::Info,
        format!(
            ":bar_chart: DORA's four keys for {place}, the {words}:\n{frequency}\n{lead}\n{failure}\n{restore}"
        ),
    )
}

/// The button that shows how the figures are measured (`help dora`).
fn definitions() -> Offer {
    Offer {
        label: "How these are measured".to_owned(),
        action: ButtonAction::Run(Invocation {
            command: "help".to_owned(),
            target: Target::None,
            args: vec!["dora".to_owned()],
            params: Vec::new(),
            confirmed: false,
            approval: None,
            pin: None,
        }),
        style: ButtonStyle::Default,
        confirm: None,
    }
}

/// `dora [env] [30d]`.
pub(crate) struct ShowDora;

#[async_trait]
impl Action for ShowDora {
    fn check(&self, _: &Config, inv: &Invocation) -> Result<(), crate::rejection::Rejection> {
        window(inv).map(drop)
    }

    async fn run(&self, ctx: &Ctx<'_>, _: &CommandSpec, inv: Invocation) -> Reply {
        let window = window(&inv).map_or(DEFAULT_WINDOW, |w| w.0);
        let until = ctx.now();
        let since = until.checked_sub(window).unwrap_or(SystemTime::UNIX_EPOCH);
        match measure(
            &*ctx.backends.store,
            ctx.config(),
            inv.target.env(),
            since,
            until,
        )
        .await
        {
            Ok(d) => {
                let reply = render(&d, window);
                match ctx.offer(vec![definitions()]).await {
                    Ok(buttons) => reply.buttons(buttons),
                    Err(_) => reply.context("`help dora` says how these are measured.".to_owned()),
                }
            }
            Err(e) => Reply::message(
                Outcome::Failed,
                format!("I could not read the deploy history: {}.", told(&e)),
            ),
        }
    }
}

/// `chart dora [env] [90d]`: the weekly trend, as a chart.
pub(crate) struct ChartDora;

const CHART_USAGE: &str = "chart dora [env] [90d]";

fn chart_window(inv: &Invocation) -> Result<Window, crate::rejection::Rejection> {
    Window::of(inv, Window(DAY * 90), Window(MAX_WINDOW), CHART_USAGE)
}

/// `11-02`: the month and day a week starts.
fn week_label(t: SystemTime) -> String {
    let text = humantime::format_rfc3339_seconds(t).to_string();
    text.get(5..10).unwrap_or(&text).to_owned()
}

/// The chart of `weeks`: deploys a week (bars), change failure rate and median lead
/// time in hours (lines, right axis).
fn trend(weeks: &[Dora], title: String) -> ChartSpec {
    let labels = weeks.iter().map(|w| week_label(w.since)).collect();
    let deploys = weeks.iter().map(|w| Some(w.deploys as f64)).collect();
    let failure = weeks
        .iter()
        .map(|w| w.failure_rate.map(|r| (r * 1000.0).round() / 10.0))
        .collect();
    let lead = weeks
        .iter()
        .map(|w| w.lead_median_s.map(|s| (s as f64 / 360.0).round() / 10.0))
        .collect();
    let mut spec = ChartSpec::new(Kind::Bar, title, labels)
        .dataset(Dataset::new("deploys", deploys).color("#2eb67d"))
        .dataset(
            Dataset::new("change failure %", failure)
                .kind(Kind::Line)
                .on_right_axis()
                .color("#e01e5a"),
        )
        .dataset(
            Dataset::new("median lead time (h)", lead)
                .kind(Kind::Line)
                .on_right_axis()
                .color("#1d9bd1"),
        );
    spec.options = Some(serde_json::json!({"scales": {
        "y": {"title": {"text": "deploys a week"}},
        "y1": {"title": {"text": "% · hours"}},
    }}));
    spec
}

#[async_trait]
impl Action for ChartDora {
    fn check(&self, _: &Config, inv: &Invocation) -> Result<(), crate::rejection::Rejection> {
        chart_window(inv).map(drop)
    }

    async fn run(&self, ctx: &Ctx<'_>, _: &CommandSpec, inv: Invocation) -> Reply {
        let window = chart_window(&inv).map_or(Window(DAY * 90), |w| w);
        let until = ctx.now();
        let since = until
            .checked_sub(window.0)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let env = inv.target.env();
        let (overall, weeks) =
            match weekly(&*ctx.backends.store, ctx.config(), env, since, until).await {
                Ok(w) => w,
                Err(e) => {
                    return Reply::message(
                        Outcome::Failed,
                        format!("I could not read the deploy history: {}.", told(&e)),
                    )
                }
            };
        let place = env.map_or_else(|| "every environment".to_owned(), str::to_owned);
        if overall.deploys == 0 {
            return Reply::message(
                Outcome::Info,
                format!("No deploys went live on {place} in the {}.", window.words()),
            );
        }
        let title = format!("DORA on {place}, week by week, {}", window.words());
        let summary = format!(
            "*{title}*: {} deploys; change failure rate {}; median lead time {}; median time to restore {}.",
            overall.deploys,
            overall
                .failure_rate
                .map_or_else(|| "—".to_owned(), |r| format!("{:.0} %", r * 100.0)),
            secs(overall.lead_median_s),
            secs(overall.restore_median_s)
        );
        Reply::new(Outcome::Info)
            .text(summary)
            .chart(trend(&weeks, title))
    }
}
