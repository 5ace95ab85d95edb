//! What the monitor probes: every instance with its health recipe, and every
//! `checks:` entry with its own, in file order.

use crate::config::{CheckSpec, Config, HealthRecipe};
use crate::ports::watch::{check_target, instance_target};

/// How a target's answer is judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipe {
    /// An instance's health recipe, probed at `url`.
    Instance(HealthRecipe),
    /// A check's recipe.
    Check(CheckSpec),
}

/// One thing the monitor probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Its id in the probe log (`instance:env/pool/member`, `check:name`).
    pub id: String,
    /// How people name it: `master api blue`, `ci`.
    pub name: String,
    /// The board group: the environment, or the check's group.
    pub group: String,
    /// The pool, for instances.
    pub pool: Option<String>,
    /// The URL probed (never shown on the board or in messages).
    pub url: String,
    /// How its answer is judged.
    pub recipe: Recipe,
}

/// Every target of `config`: instances first (environment, pool, member order), then checks.
pub fn targets(config: &Config) -> Vec<Target> {
    let mut out: Vec<Target> = config
        .instances()
        .map(|(r, instance)| Target {
            id: instance_target(&r),
            name: r.to_string(),
            group: r.env.clone(),
            pool: Some(r.pool.clone()),
            url: crate::steps::health::health_url(instance),
            recipe: Recipe::Instance(instance.health.clone()),
        })
        .collect();
    out.extend(config.checks.iter().map(|c| Target {
        id: check_target(&c.name),
        name: c.name.clone(),
        group: c.group.clone(),
        pool: None,
        url: c.url.clone(),
        recipe: Recipe::Check(c.clone()),
    }));
    out
}
