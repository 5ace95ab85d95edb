//! The second half of resolution: the instances the words leave, narrowed by the
//! live switch state (passed in, never fetched here) and projected onto what the
//! command targets — one target, or several to choose from.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::PoolAt;
use crate::config::{CommandSpec, Config, InstanceRef, TargetKind};
use crate::ports::SwitchError;
use crate::reply::Target;
use crate::resolve::{CommandMatch, Qualifier, Referent};
use crate::text::code;

/// The live active member of each `(env, region, pool)` asked about.
pub type Actives = BTreeMap<PoolAt, Result<String, SwitchError>>;

/// A qualifier (`active`, `inactive`) could not be applied: the switch of a pool the
/// words name could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownActive {
    /// The pool's environment.
    pub env: String,
    /// The pool.
    pub pool: String,
    /// Why the switch could not be read.
    pub error: SwitchError,
}

/// The pools of `instances` (each in its region), each once, in order.
pub fn pools_of(instances: &[InstanceRef]) -> Vec<PoolAt> {
    dedup(instances.iter().map(pool_at))
}

/// The pool of one instance, in its region.
pub fn pool_at(r: &InstanceRef) -> PoolAt {
    (r.env.clone(), r.region.clone(), r.pool.clone())
}

/// The instances whose pools the qualifier is about: `master active` without a pool
/// means the environment's main pool, its first.
pub fn qualified_scope(
    config: &Config,
    m: &CommandMatch,
    instances: Vec<InstanceRef>,
) -> Vec<InstanceRef> {
    if named_pool(m) {
        instances
    } else {
        main_pools_only(config, instances)
    }
}

/// Keeps the instances whose live role (active or not, read from `actives`) is `q`.
pub fn filter_by_qualifier(
    instances: Vec<InstanceRef>,
    q: Qualifier,
    actives: &Actives,
) -> Result<Vec<InstanceRef>, UnknownActive> {
    let mut out = Vec::new();
    for r in instances {
        match actives.get(&pool_at(&r)) {
            Some(Ok(active)) if (*active == r.member) == (q == Qualifier::Active) => out.push(r),
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                return Err(UnknownActive {
                    env: r.env,
                    pool: r.pool,
                    error: e.clone(),
                })
            }
            None => {}
        }
    }
    Ok(out)
}

/// Keeps only instances of each environment's first pool (its main pool).
fn main_pools_only(config: &Config, instances: Vec<InstanceRef>) -> Vec<InstanceRef> {
    instances
        .into_iter()
        .filter(|r| {
            config
                .env(&r.env)
                .and_then(|e| e.pools.first())
                .is_some_and(|p| p.name == r.pool)
        })
        .collect()
}

fn dedup<T: Ord + Clone>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut seen = BTreeSet::new();
    items
        .into_iter()
        .filter(|i| seen.insert(i.clone()))
        .collect()
}

/// Projects matching instances onto the command's target kind; `named` says whether
/// the words named anything at all.
pub fn project(
    cmd: &CommandSpec,
    instances: &[InstanceRef],
    named: bool,
    m: &CommandMatch,
) -> Vec<Target> {
    match cmd.target {
        TargetKind::Nothing => vec![Target::None],
        TargetKind::Instance => instances.iter().cloned().map(Target::Instance).collect(),
        TargetKind::Pool => dedup(instances.iter().map(|r| (r.env.clone(), r.pool.clone())))
            .into_iter()
            .map(|(env, pool)| {
                let members: Vec<&InstanceRef> = instances
                    .iter()
                    .filter(|r| r.env == env && r.pool == pool)
                    .collect();
                // A member is named only when the words singled one out.
                let member = (members.len() == 1 && (named_member(m) || m.qualifier.is_some()))
                    .then(|| members[0].member.clone());
                Target::Pool { env, pool, member }
            })
            .collect(),
        TargetKind::Environment => {
            if !named && cmd.target_optional {
                return vec![Target::None];
            }
            // A region is part of the target only when the words named one.
            let region_named = named_region(m);
            let places = dedup(instances.iter().map(|r| {
                (
                    r.env.clone(),
                    if region_named { r.region.clone() } else { None },
                )
            }));
            places
                .into_iter()
                .map(|(env, region)| {
                    let pools = if named_pool(m) {
                        dedup(
                            instances
                                .iter()
                                .filter(|r| {
                                    r.env == env && (region.is_none() || r.region == region)
                                })
                                .map(|r| r.pool.clone()),
                        )
                    } else {
                        Vec::new()
                    };
                    match region {
                        Some(region) => Target::Region { env, region, pools },
                        None => Target::Env { env, pools },
                    }
                })
                .collect()
        }
    }
}

fn named_member(m: &CommandMatch) -> bool {
    m.selectors.iter().any(|s| {
        s.matches
            .iter()
            .any(|r| matches!(r, Referent::Instance(..)))
    })
}

fn named_region(m: &CommandMatch) -> bool {
    m.selectors
        .iter()
        .any(|s| s.matches.iter().any(|r| matches!(r, Referent::Region(..))))
}

fn named_pool(m: &CommandMatch) -> bool {
    m.selectors.iter().any(|s| {
        s.matches
            .iter()
            .any(|r| matches!(r, Referent::Pool(..) | Referent::Instance(..)))
    })
}

/// What the user can name for `cmd`, for "needs a target" and "didn't understand" replies.
pub fn what_exists(config: &Config, cmd: &CommandSpec) -> String {
    match cmd.target {
        TargetKind::Nothing => format!("`{}` takes no arguments.", cmd.name),
        TargetKind::Environment => format!(
            "Environments: {}.",
            config
                .environments
                .iter()
                .map(|e| code(&e.name))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        TargetKind::Pool | TargetKind::Instance => {
            let names: Vec<String> = config
                .environments
                .iter()
                .map(|e| {
                    let pools: Vec<String> = e
                        .pools
                        .iter()
                        .map(|p| {
                            format!(
                                "{} ({})",
                                p.name,
                                p.members
                                    .iter()
                                    .map(|m| m.name.as_str())
                                    .collect::<Vec<_>>()
                                    .join("/")
                            )
                        })
                        .collect();
                    format!("{}: {}", code(&e.name), pools.join(", "))
                })
                .collect();
            format!("Known: {}.", names.join("; "))
        }
    }
}
