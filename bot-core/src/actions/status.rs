//! `status [env] [region]`: every instance probed concurrently — every region's at
//! once, so a hung region delays no other — one report grouped by environment, region
//! and pool, active member marked, with latency and version.
//! [`gather`] builds the [`PlatformStatus`] that both the chat reply and the
//! HTTP status endpoint render.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use async_trait::async_trait;

use crate::adapters::redact::redact_url;
use crate::config::{CommandSpec, Environment, Pool, Site};
use crate::context::{Action, Ctx, PoolAt};
use crate::ports::Split;
use crate::rejection::Rejection;
use crate::reply::{Invocation, Outcome, Reply, Target};
use crate::steps::health::probe;
use crate::text::{escape, human};

/// Status of every (or one) environment: what `status` shows, as data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlatformStatus {
    /// Environments in file order.
    pub environments: Vec<EnvStatus>,
    /// How many instances are healthy.
    pub healthy: usize,
    /// How many instances were probed.
    pub total: usize,
    /// Timeout of each probe.
    #[serde(rename = "probe_timeout_ms", with = "millis")]
    pub probe_timeout: Duration,
}

/// One environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvStatus {
    /// Environment name.
    pub name: String,
    /// Protected environments need confirmation for mutating actions.
    pub protected: bool,
    /// Pools in file order (empty for an environment with regions: see `regions`).
    pub pools: Vec<PoolStatus>,
    /// Regions in file order, each with its pools; empty when the environment has none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<RegionStatus>,
}

/// One region of an environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionStatus {
    /// Region name.
    pub name: String,
    /// Every pool's switch was read and its active member is healthy.
    pub healthy: bool,
    /// No instance of the region answered at all: why (the first reason seen).
    pub down: Option<String>,
    /// Pools in file order.
    pub pools: Vec<PoolStatus>,
}

impl RegionStatus {
    fn judge(name: String, pools: Vec<PoolStatus>) -> Self {
        let members = || pools.iter().flat_map(|p| p.members.iter());
        let down = if members().all(|m| m.down.is_some()) {
            members().find_map(|m| m.down.clone())
        } else {
            None
        };
        let healthy = pools
            .iter()
            .all(|p| p.switch_error.is_none() && p.live_healthy());
        Self {
            name,
            healthy,
            down,
            pools,
        }
    }
}

/// One pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolStatus {
    /// Pool name.
    pub name: String,
    /// The active member, as read from the pool's switch; `None` when it could not be read.
    pub active: Option<String>,
    /// Why the switch could not be read.
    pub switch_error: Option<String>,
    /// Traffic shared out by weight (a canary under way): each member's percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<Split>,
    /// Members in file order.
    pub members: Vec<MemberStatus>,
}

impl PoolStatus {
    /// What takes traffic is healthy: the active member, or in a canary every member
    /// with a share.
    pub fn live_healthy(&self) -> bool {
        let mut live = self.members.iter().filter(|m| m.active).peekable();
        if self.split.is_some() {
            live.peek().is_some() && live.all(|m| m.healthy)
        } else {
            live.any(|m| m.healthy)
        }
    }
}

/// One instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberStatus {
    /// Member name.
    pub name: String,
    /// Takes the pool's traffic (or a share of it, in a canary).
    pub active: bool,
    /// Every check of its recipe passed.
    pub healthy: bool,
    /// No answer at all: the reason.
    pub down: Option<String>,
    /// One line saying what is wrong (see [`Verdict::problem`](crate::steps::health::Verdict::problem)).
    pub problem: Option<String>,
    /// Latency of the answer; `None` when it did not answer.
    #[serde(rename = "latency_ms", with = "opt_millis")]
    pub latency: Option<Duration>,
    /// Version read with the recipe's `version` pointer.
    pub version: Option<String>,
    /// Base URL, with credentials and query values redacted.
    pub url: String,
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1000.0)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let ms = f64::deserialize(d)?;
        Duration::try_from_secs_f64(ms / 1000.0).map_err(serde::de::Error::custom)
    }
}

mod opt_millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_secs_f64() * 1000.0)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        match Option::<f64>::deserialize(d)? {
            Some(ms) => Duration::try_from_secs_f64(ms / 1000.0)
                .map(Some)
                .map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

/// Probes every instance of `env` (all environments when `None`) and reads every
/// switch, all at once; each probe has its own timeout. An unknown `env` gives an
/// empty status.
pub(crate) async fn gather(ctx: &Ctx<'_>, env: Option<&str>) -> PlatformStatus {
    shared(ctx, env, None).await
}

/// [`gather_at`], shared by everyone who asks for the same scope within
/// `settings.status_cache` (one round at a time).
pub(crate) async fn shared(
    ctx: &Ctx<'_>,
    env: Option<&str>,
    region: Option<&str>,
) -> PlatformStatus {
    let ttl = ctx.config().settings.status_cache;
    ctx.backends
        .status_cache
        .clone()
        .get(env, region, ttl, || gather_at(ctx, env, region))
        .await
}

/// Like [`gather`], limited to one `region` of the environment when given. Every
/// probe and switch read of every region runs at once, each with its own timeout, so
/// a region that hangs costs the others nothing.
pub(crate) async fn gather_at(
    ctx: &Ctx<'_>,
    env: Option<&str>,
    region: Option<&str>,
) -> PlatformStatus {
    let config = ctx.config();
    let envs: Vec<_> = config
        .environments
        .iter()
        .filter(|e| env.is_none_or(|n| e.name == n))
        .collect();
    let sites: Vec<(&Environment, Site<'_>)> = envs
        .iter()
        .flat_map(|e| {
            e.sites()
                .into_iter()
                .filter(|s| region.is_none() || s.region_name() == region)
                .map(move |s| (*e, s))
        })
        .collect();
    let probes = futures::future::join_all(
        sites
            .iter()
            .flat_map(|(_, s)| s.pools.iter().flat_map(|p| p.members.iter()))
            .map(|m| probe(ctx, m)),
    );
    let pools: Vec<PoolAt> = sites
        .iter()
        .flat_map(|(e, s)| {
            s.pools.iter().map(|p| {
                (
                    e.name.clone(),
                    s.region_name().map(str::to_owned),
                    p.name.clone(),
                )
            })
        })
        .collect();
    let (verdicts, mut actives) = tokio::join!(probes, ctx.actives_at(pools));
    let total = verdicts.len();
    let mut verdicts = verdicts.into_iter();
    let mut healthy = 0usize;
    let mut environments: Vec<EnvStatus> = Vec::with_capacity(envs.len());
    for (e, site) in &sites {
        let mut pools = Vec::with_capacity(site.pools.len());
        for p in site.pools {
            let key = (
                e.name.clone(),
                site.region_name().map(str::to_owned),
                p.name.clone(),
            );
            let (active, switch_error) = match actives.remove(&key) {
                Some(Ok(a)) => (Some(a), None),
                Some(Err(err)) => (None, Some(err.to_string())),
                None => (None, None),
            };
            // No one active member: traffic may be shared out by weight.
            let split = match &switch_error {
                Some(_) => shared_out(ctx, e, p).await,
                None => None,
            };
            let switch_error = if split.is_some() { None } else { switch_error };
            let mut members = Vec::with_capacity(p.members.len());
            for m in &p.members {
                let Some(v) = verdicts.next() else { break };
                if v.healthy {
                    healthy += 1;
                }
                members.push(MemberStatus {
                    name: m.name.clone(),
                    active: active.as_deref() == Some(m.name.as_str())
                        || split.as_ref().is_some_and(|s| s.share(&m.name) > 0),
                    healthy: v.healthy,
                    problem: v.problem(),
                    latency: if v.down.is_none() { v.latency } else { None },
                    down: v.down,
                    version: v.version,
                    url: redact_url(&m.url),
                });
            }
            pools.push(PoolStatus {
                name: p.name.clone(),
                active,
                switch_error,
                split,
                members,
            });
        }
        if environments.last().is_none_or(|last| last.name != e.name) {
            environments.push(EnvStatus {
                name: e.name.clone(),
                protected: e.protected,
                pools: Vec::new(),
                regions: Vec::new(),
            });
        }
        let Some(out) = environments.last_mut() else {
            continue;
        };
        match site.region_name() {
            Some(r) => out.regions.push(RegionStatus::judge(r.to_owned(), pools)),
            None => out.pools = pools,
        }
    }
    PlatformStatus {
        environments,
        healthy,
        total,
        probe_timeout: config.settings.probe_timeout,
    }
}

fn icon(m: &MemberStatus) -> &'static str {
    if m.healthy {
        ":large_green_circle:"
    } else if m.down.is_some() {
        ":red_circle:"
    } else {
        ":warning:"
    }
}

/// The chat reply for a status, of one region when `region` is given.
pub(crate) fn render_at(status: &PlatformStatus, env: Option<&str>, region: Option<&str>) -> Reply {
    let mut reply = Reply::new(Outcome::Info).header(match (env, region) {
        (Some(e), Some(r)) => format!("Status of {e} {r}"),
        (Some(e), None) => format!("Status of {e}"),
        _ => "Platform status".to_owned(),
    });
    for e in &status.environments {
        let regions = if e.regions.is_empty() {
            String::new()
        } else {
            format!(
                " — {}/{} regions healthy",
                e.regions.iter().filter(|r| r.healthy).count(),
                e.regions.len()
            )
        };
        let mut lines = vec![format!(
            "*{}*{}{regions}",
            e.name,
            if e.protected { " (protected)" } else { "" }
        )];
        for p in &e.pools {
            pool_lines(p, "  ", &mut lines);
        }
        for r in &e.regions {
            if let Some(why) = &r.down {
                let n: usize = r.pools.iter().map(|p| p.members.len()).sum();
                lines.push(format!(
                    "  :red_circle: *{}* — down: none of its {n} instances answers ({why})",
                    r.name
                ));
                continue;
            }
            let verdict = if r.healthy {
                ":large_green_circle:".to_owned()
            } else {
                ":warning:".to_owned()
            };
            let what = if r.healthy {
                "healthy".to_owned()
            } else {
                let bad: Vec<String> = r
                    .pools
                    .iter()
                    .filter_map(|p| match &p.switch_error {
                        Some(_) => Some(format!("{}: switch unreadable", p.name)),
                        None if !p.live_healthy() => {
                            Some(format!("{}: live member unhealthy", p.name))
                        }
                        None => None,
                    })
                    .collect();
                format!("unhealthy ({})", bad.join(", "))
            };
            lines.push(format!("  {verdict} *{}* — {what}", r.name));
            for p in &r.pools {
                pool_lines(p, "    ", &mut lines);
            }
        }
        reply = reply.text(lines.join("\n"));
    }
    reply.context(format!(
        "{} of {} instances healthy · probe timeout {}",
        status.healthy,
        status.total,
        human(status.probe_timeout)
    ))
}

/// The split in force on a pool whose switch names no one active member, when it
/// reads as traffic shared out by weight (a canary).
async fn shared_out(ctx: &Ctx<'_>, env: &Environment, pool: &Pool) -> Option<Split> {
    let switch = ctx
        .switch_at(&env.name, pool.region.as_deref(), &pool.name)
        .ok()?;
    let timeout = ctx.config().settings.probe_timeout;
    let split = tokio::time::timeout(timeout, switch.split(env, pool))
        .await
        .ok()?
        .ok()?;
    (split.sole().is_none()).then_some(split)
}

/// A pool's line and its members', indented by `indent`.
fn pool_lines(p: &PoolStatus, indent: &str, lines: &mut Vec<String>) {
    let role_note = match (&p.switch_error, &p.split) {
        (Some(err), _) => format!(" — switch: {}", escape(err)),
        (None, Some(split)) => {
            format!(" — :bird: traffic shared out by weight (a canary): {split}")
        }
        (None, None) => String::new(),
    };
    lines.push(format!("{indent}_{}_{role_note}", p.name));
    for m in &p.members {
        let mut facts = Vec::new();
        facts.push(
            m.problem
                .as_deref()
                .map_or_else(|| "healthy".to_owned(), escape),
        );
        if let Some(l) = m.latency {
            facts.push(human(l));
        }
        if let Some(ver) = &m.version {
            facts.push(format!("v{}", escape(ver.trim_start_matches('v'))));
        }
        lines.push(format!(
            "{indent}  {} {}{} — {}",
            icon(m),
            m.name,
            match &p.split {
                Some(split) if m.active => format!(" *← {} %*", split.share(&m.name)),
                Some(_) => String::new(),
                None if m.active => " *← active*".to_owned(),
                None => String::new(),
            },
            facts.join(" · ")
        ));
    }
}

/// `status [env]`.
pub(crate) struct Status;

#[async_trait]
impl Action for Status {
    async fn run(&self, ctx: &Ctx<'_>, cmd: &CommandSpec, inv: Invocation) -> Reply {
        let (env, region) = match &inv.target {
            Target::None => (None, None),
            Target::Env { env, .. } => (Some(env.as_str()), None),
            Target::Region { env, region, .. } => (Some(env.as_str()), Some(region.as_str())),
            other => return Rejection::unsupported(&cmd.name, other).reply(),
        };
        render_at(&shared(ctx, env, region).await, env, region)
    }
}
