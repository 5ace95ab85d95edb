//! A canary deploy's middle steps: once the new member passed its health gate,
//! traffic moves to it by weight, step by step; each step is held for its pause while
//! Prometheus (or, without an analysis, the pool's health recipe) judges it, and
//! failing readings in a row put all traffic back on the old member. The step, the
//! moment its weight took, and the failing streak are saved with the run, so a
//! replica taking it over goes on at the same step, with the same weights, for the
//! rest of the same pause.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::report::prefix;
use super::state::Step;
use super::steps::Live;
use crate::config::{Canary, Pool};
use crate::failure::told;
use crate::ports::Split;
use crate::runs::Stop;
use crate::steps::analysis::{self, Reading};
use crate::steps::health::probe;
use crate::steps::moves::switch_and_verify;
use crate::steps::watch::unix_ms;
use crate::text::human;

/// One pool's canary, as saved with its run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CanaryRun {
    /// The steps (percent on the new member) as configured when it began.
    pub steps: Vec<u8>,
    /// The step it is at (`steps.len()`: all done).
    pub at: usize,
    /// When the weight of step `at` took (set and read back), Unix ms; `None` until
    /// it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<u64>,
    /// Failing readings in a row.
    #[serde(default)]
    pub failing: u32,
    /// The latest readings.
    #[serde(default)]
    pub readings: Vec<Reading>,
    /// Why it was aborted, once it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted: Option<String>,
}

impl CanaryRun {
    fn new(canary: &Canary) -> Self {
        Self {
            steps: canary.steps.clone(),
            at: 0,
            since_ms: None,
            failing: 0,
            readings: Vec::new(),
            aborted: None,
        }
    }

    /// `step 2/3 (50 %)`.
    fn which(&self) -> String {
        format!(
            "step {}/{} ({} %)",
            (self.at + 1).min(self.steps.len()),
            self.steps.len(),
            self.steps.get(self.at).copied().unwrap_or(100)
        )
    }
}

/// Takes pool `i` through its canary: sets each step's weights, holds and judges
/// it, and hands over to the final switch after the last (100 %) step; on failing
/// readings, puts all traffic back on the old member and fails the pool.
pub(crate) async fn step(
    live: &Live<'_, '_>,
    i: usize,
    pool: &Pool,
    label: &str,
) -> Result<(), Stop> {
    let ctx = live.ctx;
    let env = live.env;
    let Some(canary) = ctx.config().canary(&env.name, &pool.name).cloned() else {
        // No canary any more (the config changed): the plain switch finishes it.
        live.with(|s| s.pools[i].step = Step::Switching);
        return live.save().await;
    };
    let p = live.with(|s| {
        let p = &mut s.pools[i];
        if p.canary.is_none() {
            p.canary = Some(CanaryRun::new(&canary));
        }
        p.clone()
    });
    let from = p.from.clone().unwrap_or_default();
    let to = p.to.clone().unwrap_or_default();
    let line_prefix = prefix(label, p.from.as_deref(), p.to.as_deref());
    // Without an analysis, the health probes go at the pace of the pool's post-switch
    // watch (or of the health gate), and fail after as many in a row.
    let (interval, failures) = match (&canary.analysis, ctx.config().watch(&env.name, &pool.name)) {
        (Some(_), _) => (canary.interval, canary.failures),
        (None, Some(w)) => (w.every, w.failures),
        (None, None) => (ctx.config().settings.gate_interval, canary.failures),
    };
    let switch = match ctx.switch_at(&env.name, pool.region.as_deref(), &pool.name) {
        Ok(s) => s.clone(),
        Err(e) => return abort(live, i, pool, label, &told(&e)).await,
    };
    loop {
        let c = current(live, i);
        let Some(&percent) = c.steps.get(c.at) else {
            live.with(|s| s.pools[i].step = Step::Switching);
            return live.save().await;
        };
        let since_ms = match c.since_ms {
            Some(t) => t,
            None => {
                live.with(|s| {
                    s.pools[i].line = format!(
                        "{line_prefix} — canary {}: moving {percent} % of traffic to {to}",
                        c.which()
                    )
                });
                live.show().await;
                let permit = live.checkpoint("shift traffic").await?;
                let split = Split::canary(pool, &from, &to, percent);
                let set = switch.set_split(env, pool, &split).await;
                ctx.backends.status_cache.moved();
                drop(permit);
                if let Err(e) = set {
                    let why = format!("its weights could not be set: {}", told(&e));
                    return abort(live, i, pool, label, &why).await;
                }
                let now = unix_ms(ctx.now());
                live.with(|s| {
                    if let Some(c) = s.pools[i].canary.as_mut() {
                        c.since_ms = Some(now);
                        c.failing = 0;
                        c.readings.clear();
                    }
                });
                live.save().await?;
                now
            }
        };
        if percent >= 100 {
            live.with(|s| {
                let p = &mut s.pools[i];
                if let Some(c) = p.canary.as_mut() {
                    c.at = c.steps.len();
                }
                p.step = Step::Switching;
            });
            return live.save().await;
        }
        // Hold the step for its pause, reading every interval.
        let pause_ms = analysis_ms(canary.pause);
        loop {
            let now = unix_ms(ctx.now());
            let held = now.saturating_sub(since_ms);
            if held >= pause_ms {
                break;
            }
            show_step(live, i, &line_prefix, &to, pause_ms - held).await;
            let wait = interval.min(Duration::from_millis(pause_ms - held));
            tokio::time::sleep(wait).await;
            let readings = judge(live, pool, &canary, &to).await;
            let failed = readings.iter().any(|r| r.failing);
            let streak = live.with(|s| {
                let c = s.pools[i]
                    .canary
                    .get_or_insert_with(|| CanaryRun::new(&canary));
                c.failing = if failed { c.failing + 1 } else { 0 };
                c.readings = readings.clone();
                c.failing
            });
            if streak >= failures {
                let worst = readings
                    .iter()
                    .filter(|r| r.failing)
                    .map(Reading::describe)
                    .collect::<Vec<_>>()
                    .join("; ");
                let why = format!(
                    "{worst}, failing {streak} reading{} in a row",
                    if streak == 1 { "" } else { "s" }
                );
                return abort(live, i, pool, label, &why).await;
            }
            live.save().await?;
        }
        live.with(|s| {
            if let Some(c) = s.pools[i].canary.as_mut() {
                c.at += 1;
                c.since_ms = None;
            }
        });
        live.save().await?;
    }
}

fn analysis_ms(d: Duration) -> u64 {
    super::steps::ms(d)
}

fn current(live: &Live<'_, '_>, i: usize) -> CanaryRun {
    live.with(|s| s.pools[i].canary.clone())
        .unwrap_or_else(|| CanaryRun {
            steps: vec![100],
            at: 0,
            since_ms: None,
            failing: 0,
            readings: Vec::new(),
            aborted: None,
        })
}

/// The progress line of a step being held: its weight, the latest readings, and the
/// time to the next step.
async fn show_step(live: &Live<'_, '_>, i: usize, line_prefix: &str, to: &str, left_ms: u64) {
    live.with(|s| {
        let p = &mut s.pools[i];
        let Some(c) = &p.canary else { return };
        let percent = c.steps.get(c.at).copied().unwrap_or(100);
        let mut line = format!(
            "{line_prefix} — canary step {}/{}: *{percent} %* on {to}",
            (c.at + 1).min(c.steps.len()),
            c.steps.len()
        );
        for r in &c.readings {
            let mark = if r.failing { " :warning:" } else { "" };
            line.push_str(&format!(" · {}{mark}", crate::text::escape(&r.describe())));
        }
        line.push_str(&format!(
            " · next step in {}",
            human(Duration::from_millis(left_ms))
        ));
        p.line = line;
    });
    live.show().await;
}

/// This interval's readings: the analysis' queries, or a health probe of the new
/// member when the canary has none.
async fn judge(live: &Live<'_, '_>, pool: &Pool, canary: &Canary, to: &str) -> Vec<Reading> {
    let ctx = live.ctx;
    match &canary.analysis {
        Some(a) => {
            let region = pool.region.clone().unwrap_or_default();
            let vars = [
                ("env", live.env.name.as_str()),
                ("region", region.as_str()),
                ("pool", pool.name.as_str()),
                ("member", to),
            ];
            analysis::read(ctx, a, &vars).await
        }
        None => {
            let Some(instance) = pool.members.iter().find(|m| m.name == to) else {
                return Vec::new();
            };
            let verdict = probe(ctx, instance).await;
            vec![Reading {
                name: format!("{to} health"),
                value: None,
                max: 0.0,
                missing: Some(if verdict.healthy {
                    "healthy".to_owned()
                } else {
                    verdict.problem().unwrap_or_else(|| "unhealthy".to_owned())
                }),
                failing: !verdict.healthy,
                health: true,
            }]
        }
    }
}

/// Puts all of the pool's traffic back on the old member and fails the pool, naming
/// `why` (the failing query, its reading and its limit).
async fn abort(
    live: &Live<'_, '_>,
    i: usize,
    pool: &Pool,
    label: &str,
    why: &str,
) -> Result<(), Stop> {
    let p = live.with(|s| {
        let p = &mut s.pools[i];
        if let Some(c) = p.canary.as_mut() {
            c.aborted = Some(why.to_owned());
        }
        p.clone()
    });
    let from = p.from.clone().unwrap_or_default();
    let to = p.to.clone().unwrap_or_default();
    let which = p.canary.as_ref().map(CanaryRun::which).unwrap_or_default();
    let line_prefix = prefix(label, p.from.as_deref(), p.to.as_deref());
    let build = p
        .built
        .as_ref()
        .map(|(n, url)| format!(" Build <{url}|#{n}>."))
        .unwrap_or_default();
    let why = crate::text::escape(why);
    live.with(|s| {
        s.pools[i].line =
            format!("{line_prefix} — :x: canary aborted, putting traffic back on {from}")
    });
    live.show().await;
    let _permit = live.checkpoint("put traffic back").await?;
    match switch_and_verify(live.ctx, live.env, pool, &from).await {
        Ok(_) => {
            live.fail(
                i,
                format!("{line_prefix} — :x: canary aborted at {which}, traffic back on {from}"),
                format!(
                    ":x: *{label}*: the canary was aborted at {which} on {to}: {why}. All traffic is back on {from}.{build}"
                ),
            )
            .await
        }
        Err(e) => {
            live.fail(
                i,
                format!("{line_prefix} — :x: canary aborted at {which}; putting traffic back failed"),
                format!(
                    ":x: *{label}*: the canary was aborted at {which} on {to}: {why}. Putting all traffic back on {from} failed: {}; check `status {}`.{build}",
                    told(&e),
                    live.env.name
                ),
            )
            .await
        }
    }
}
