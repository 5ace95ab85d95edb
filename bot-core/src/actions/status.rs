//! `status [env]`: every instance probed concurrently, one report grouped by
//! environment and pool, active member marked, with latency and version.
//! [`gather`] builds the [`PlatformStatus`] that both the chat reply and the
//! HTTP status endpoint render.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use async_trait::async_trait;

use crate::actions::health::probe;
use crate::adapters::redact::redact_url;
use crate::config::CommandSpec;
use crate::context::{Action, Ctx};
use crate::rejection::Rejection;
use crate::reply::{Invocation, Outcome, Reply, Target};
use crate::text::human;

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
    /// Pools in file order.
    pub pools: Vec<PoolStatus>,
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
    /// Members in file order.
    pub members: Vec<MemberStatus>,
}

/// One instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberStatus {
    /// Member name.
    pub name: String,
    /// Takes the pool's traffic.
    pub active: bool,
    /// Every check of its recipe passed.
    pub healthy: bool,
    /// No answer at all: the reason.
    pub down: Option<String>,
    /// One line saying what is wrong (see [`Verdict::problem`](crate::actions::health::Verdict::problem)).
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
    let config = ctx.config();
    let envs: Vec<_> = config
        .environments
        .iter()
        .filter(|e| env.is_none_or(|n| e.name == n))
        .collect();
    let probes = futures::future::join_all(
        envs.iter()
            .flat_map(|e| e.pools.iter().flat_map(|p| p.members.iter()))
            .map(|m| probe(ctx, m)),
    );
    let pools: Vec<(String, String)> = envs
        .iter()
        .flat_map(|e| e.pools.iter().map(|p| (e.name.clone(), p.name.clone())))
        .collect();
    let (verdicts, mut actives) = tokio::join!(probes, ctx.actives(pools));
    let total = verdicts.len();
    let mut verdicts = verdicts.into_iter();
    let mut healthy = 0usize;
    let mut environments = Vec::with_capacity(envs.len());
    for e in &envs {
        let mut pools = Vec::with_capacity(e.pools.len());
        for p in &e.pools {
            let (active, switch_error) = match actives.remove(&(e.name.clone(), p.name.clone())) {
                Some(Ok(a)) => (Some(a), None),
                Some(Err(err)) => (None, Some(err.to_string())),
                None => (None, None),
            };
            let mut members = Vec::with_capacity(p.members.len());
            for m in &p.members {
                let Some(v) = verdicts.next() else { break };
                if v.healthy {
                    healthy += 1;
                }
                members.push(MemberStatus {
                    name: m.name.clone(),
                    active: active.as_deref() == Some(m.name.as_str()),
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
                members,
            });
        }
        environments.push(EnvStatus {
            name: e.name.clone(),
            protected: e.protected,
            pools,
        });
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

/// The chat reply for a status.
pub(crate) fn render(status: &PlatformStatus, env: Option<&str>) -> Reply {
    let mut reply = Reply::new(Outcome::Info).header(match env {
        Some(e) => format!("Status of {e}"),
        None => "Platform status".to_owned(),
    });
    for e in &status.environments {
        let mut lines = vec![format!(
            "*{}*{}",
            e.name,
            if e.protected { " (protected)" } else { "" }
        )];
        for p in &e.pools {
            let role_note = match &p.switch_error {
                Some(err) => format!(" — switch: {err}"),
                None => String::new(),
            };
            lines.push(format!("  _{}_{role_note}", p.name));
            for m in &p.members {
                let mut facts = Vec::new();
                facts.push(m.problem.clone().unwrap_or_else(|| "healthy".to_owned()));
                if let Some(l) = m.latency {
                    facts.push(human(l));
                }
                if let Some(ver) = &m.version {
                    facts.push(format!("v{}", ver.trim_start_matches('v')));
                }
                lines.push(format!(
                    "    {} {}{} — {}",
                    icon(m),
                    m.name,
                    if m.active { " *← active*" } else { "" },
                    facts.join(" · ")
                ));
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

/// `status [env]`.
pub(crate) struct Status;

#[async_trait]
impl Action for Status {
    async fn run(&self, ctx: &Ctx<'_>, cmd: &CommandSpec, inv: Invocation) -> Reply {
        let env = match &inv.target {
            Target::None => None,
            Target::Env { env, .. } => Some(env.as_str()),
            other => return Rejection::unsupported(&cmd.name, other).reply(),
        };
        render(&gather(ctx, env).await, env)
    }
}
