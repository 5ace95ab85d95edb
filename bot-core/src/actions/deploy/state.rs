//! What a deploy saves after every step: the ref, each pool's step (per region in a
//! rollout), the watch after its switch, and the commits it ships.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{Canary, Environment, OnFailure};
use crate::ports::BuildRef;
use crate::rejection::Rejection;
use crate::reply::Reply;
use crate::runs::RunState;
use crate::steps::analysis::Reading;
use crate::steps::changes::Changes;
use crate::steps::watch::{Moved, Watched};

/// A deploy run's saved state: one variant per kind of deploy run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum DeployState {
    /// A blue/green deploy of an environment's pools (region by region in a rollout).
    Deploy(DeployRun),
}

impl RunState for DeployState {
    const VERSION: u32 = 1;

    fn legacy(_action: &str, state: &Value) -> Option<Self> {
        // The untyped state had the same fields (and its lock, read separately); its
        // post-switch watch was one list for every pool.
        let mut run: DeployRun = serde_json::from_value(state.clone()).ok()?;
        if let Some(watched) = state
            .get("watch")
            .and_then(|w| serde_json::from_value::<Vec<Watched>>(w.clone()).ok())
        {
            for p in &mut run.pools {
                p.watch_planned = p.step == Step::Done;
            }
            for w in watched {
                if let Some(p) = run
                    .pools
                    .iter_mut()
                    .find(|p| p.pool == w.pool && p.region == w.region)
                {
                    p.watched = Some(w);
                }
            }
        }
        Some(DeployState::Deploy(run))
    }
}

impl DeployState {
    /// The deploy.
    pub(crate) fn run(&self) -> &DeployRun {
        match self {
            DeployState::Deploy(d) => d,
        }
    }

    /// Whether it was a rollout (an environment with regions).
    pub(crate) fn is_rollout(&self) -> bool {
        self.run().rollout.is_some()
    }

    /// Every pool it switched and left switched (not moved back since).
    pub(crate) fn switched(&self) -> Vec<Moved> {
        self.run()
            .pools
            .iter()
            .filter(|p| p.step == Step::Done && !p.rolled_back && !p.watch_rolled_back())
            .filter_map(PoolRun::moved)
            .collect()
    }

    /// Every move it made, in order (a pool moved back counts twice).
    pub(crate) fn moved(&self) -> Vec<Moved> {
        let mut all = Vec::new();
        for p in self.run().pools.iter().filter(|p| p.step == Step::Done) {
            let Some(m) = p.moved() else { continue };
            let back = p.rolled_back || p.watch_rolled_back();
            all.push(m.clone());
            if back {
                all.push(Moved {
                    from: m.to,
                    to: m.from,
                    ..m
                });
            }
        }
        all
    }
}

/// Where one pool's deploy stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Step {
    /// Not started.
    Waiting,
    /// About to trigger (or triggered, not yet heard back): the build's place is unknown.
    Triggering,
    /// The build is queued or running at `build`.
    Building,
    /// Built: health-gating the new member.
    Gating,
    /// Healthy, with a canary: moving traffic to it step by step.
    Canary,
    /// Healthy: switching traffic and reading it back.
    Switching,
    /// Traffic is on the new member.
    Done,
    /// Stopped; traffic stayed (or was not confirmed to move).
    Failed,
}

/// One pool of a deploy, as saved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PoolRun {
    pub pool: String,
    /// Its region, in an environment with regions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Switched, then moved back by the rollout's `on_failure: rollback`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rolled_back: bool,
    pub step: Step,
    /// Active before the deploy.
    pub from: Option<String>,
    /// Being built and switched to.
    pub to: Option<String>,
    /// Where the build was last seen.
    pub build: Option<BuildRef>,
    /// The finished build: number and page.
    pub built: Option<(u64, String)>,
    /// Milliseconds spent building, gating, switching.
    pub took_ms: [u64; 3],
    /// Its line in the progress message.
    pub line: String,
    /// Why it failed.
    pub failure: Option<String>,
    /// Whether its post-switch watch was planned (once its site switched).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub watch_planned: bool,
    /// Its post-switch watch, once planned (pools with `watch:` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watched: Option<Watched>,
    /// Its canary, once begun (pools with `canary:` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryRun>,
    /// When traffic was switched to it (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switched_ms: Option<u64>,
}

impl PoolRun {
    /// Its move, once it has one.
    pub(crate) fn moved(&self) -> Option<Moved> {
        Some(Moved {
            region: self.region.clone(),
            pool: self.pool.clone(),
            from: self.from.clone()?,
            to: self.to.clone()?,
        })
    }

    /// Whether its watch moved it back.
    pub(crate) fn watch_rolled_back(&self) -> bool {
        self.watched
            .as_ref()
            .is_some_and(|w| crate::steps::watch::rolled_back(std::slice::from_ref(w)))
    }

    /// `api`, or `eu api` in a region.
    pub(crate) fn label(&self) -> String {
        label(self.region.as_deref(), &self.pool)
    }
}

/// `api`, or `eu api` in a region.
pub(crate) fn label(region: Option<&str>, pool: &str) -> String {
    match region {
        Some(r) => format!("{r} {pool}"),
        None => pool.to_owned(),
    }
}

/// A deploy, as saved after every step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DeployRun {
    pub git_ref: String,
    pub env: String,
    pub pools: Vec<PoolRun>,
    pub began_ms: u64,
    /// The commits it ships, as far as known (listed as its first step).
    #[serde(default)]
    pub changes: Option<Changes>,
    /// The commit confirmed or approved: what is built (`{ref}`), whatever
    /// `git_ref` (`{ref_name}`) holds by now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<crate::reply::Pin>,
    /// Commits `git_ref` gained after `pin`, not deployed (listed as its first step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newer: Option<Vec<crate::ports::Commit>>,
    /// Region by region, when the environment has regions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Plan>,
}

impl DeployRun {
    /// Indexes of the pools of `site` (a region, or `None` for an environment
    /// without regions).
    pub(crate) fn site(&self, site: Option<&str>) -> Vec<usize> {
        (0..self.pools.len())
            .filter(|&i| self.pools[i].region.as_deref() == site)
            .collect()
    }

    /// Every build link, in order.
    pub(crate) fn links(&self) -> Vec<String> {
        self.pools
            .iter()
            .filter_map(|p| p.built.as_ref().map(|(_, url)| url.clone()))
            .collect()
    }

    /// Every watch, in pool order.
    pub(crate) fn watched(&self) -> Vec<Watched> {
        self.pools
            .iter()
            .filter_map(|p| p.watched.clone())
            .collect()
    }
}

/// What happens to switched regions when a later one fails, as saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Policy {
    Halt,
    Rollback,
}

/// The order of a rollout, as saved with its run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Plan {
    /// Stages in order; each stage's regions.
    pub stages: Vec<Vec<String>>,
    pub on_failure: Policy,
    /// `deploy <env> <region>`: this region only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only: Option<String>,
}

impl Plan {
    /// The plan of `deploy <env> [region]`: `None` for an environment without regions.
    pub(crate) fn for_deploy(
        env: &Environment,
        region: Option<&str>,
    ) -> Result<Option<Self>, Reply> {
        if env.regions.is_empty() {
            return match region {
                None => Ok(None),
                Some(r) => Err(Rejection::Conflict(format!(
                    "*{}* has no regions, so there is no `{r}` to deploy to.",
                    env.name
                ))
                .reply()),
            };
        }
        let on_failure = match env.rollout.on_failure {
            OnFailure::Halt => Policy::Halt,
            OnFailure::Rollback => Policy::Rollback,
        };
        match region {
            Some(r) if env.region(r).is_none() => Err(Rejection::Conflict(format!(
                "*{}* has no region `{r}`; it has {}.",
                env.name,
                env.regions
                    .iter()
                    .map(|r| format!("`{}`", r.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .reply()),
            Some(r) => Ok(Some(Self {
                stages: vec![vec![r.to_owned()]],
                on_failure,
                only: Some(r.to_owned()),
            })),
            None => {
                let stages = if env.rollout.stages.is_empty() {
                    env.regions.iter().map(|r| vec![r.name.clone()]).collect()
                } else {
                    env.rollout.stages.clone()
                };
                Ok(Some(Self {
                    stages,
                    on_failure,
                    only: None,
                }))
            }
        }
    }

    /// Every region, in rollout order.
    pub(crate) fn regions(&self) -> Vec<String> {
        self.stages.iter().flatten().cloned().collect()
    }
}

/// One pool's canary, as saved with its run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// Paused from chat: the clock of the step stands still.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<Paused>,
    /// The sequence number of the last order read (`None`: not known yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orders_seen: Option<u64>,
    /// Who promoted it, when someone did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_by: Option<String>,
    /// When it began (Unix ms; 0 when not known).
    #[serde(default)]
    pub began_ms: u64,
    /// How long it took, from its first step to handing over to the final switch.
    #[serde(default)]
    pub took_ms: u64,
}

/// Who paused a canary, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Paused {
    /// Who.
    pub by: String,
    /// When (Unix ms).
    pub since_ms: u64,
}

impl CanaryRun {
    /// A canary about to begin; `orders_seen`: the newest order of its run so far.
    pub(crate) fn new(canary: &Canary, orders_seen: Option<u64>) -> Self {
        Self {
            steps: canary.steps.clone(),
            orders_seen,
            ..Self::default()
        }
    }

    /// `canary 10 → 50 → 100 %`, or `canary promoted by @x`.
    pub(crate) fn summary(&self) -> String {
        match &self.promoted_by {
            Some(by) => format!("canary promoted by <@{by}>"),
            None => format!(
                "canary {} %",
                self.steps
                    .iter()
                    .map(u8::to_string)
                    .collect::<Vec<_>>()
                    .join(" → ")
            ),
        }
    }

    /// `step 2/3 (50 %)`.
    pub(crate) fn which(&self) -> String {
        format!(
            "step {}/{} ({} %)",
            (self.at + 1).min(self.steps.len()),
            self.steps.len(),
            self.steps.get(self.at).copied().unwrap_or(100)
        )
    }
}

/// What a steering command asks of a canary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// Stop the clock at the current step.
    Pause,
    /// Start it again.
    Continue,
    /// All traffic on the new member now.
    Promote,
    /// All traffic back on the old member, and the deploy fails.
    Abort,
}

impl Order {
    /// As stored with the run.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Order::Pause => "pause",
            Order::Continue => "continue",
            Order::Promote => "promote",
            Order::Abort => "abort",
        }
    }

    /// From its stored name.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        [Order::Pause, Order::Continue, Order::Promote, Order::Abort]
            .into_iter()
            .find(|o| o.as_str() == s)
    }
}
