//! [`MemorySwitch`]: a traffic switch kept in memory, for demos and tests.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::config::{Environment, Pool, SwitchSpec};
use crate::ports::{Split, SwitchError, TrafficSwitch};

/// Where one pool's traffic goes.
#[derive(Debug, Clone)]
enum Traffic {
    /// All on one member.
    On(String),
    /// Shared out by weight.
    Split(Split),
}

/// Remembers the active member (or the split) per pool; starts from the pool's
/// `initial`.
#[derive(Default)]
pub struct MemorySwitch {
    pools: Mutex<HashMap<crate::context::PoolAt, Traffic>>,
}

impl MemorySwitch {
    /// A switch with no pool switched yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn traffic(&self, env: &Environment, pool: &Pool) -> Result<Traffic, SwitchError> {
        let map = self
            .pools
            .lock()
            .map_err(|_| SwitchError::Unknown("switch state poisoned".into()))?;
        if let Some(t) = map.get(&(env.name.clone(), pool.region.clone(), pool.name.clone())) {
            return Ok(t.clone());
        }
        match &pool.switch {
            SwitchSpec::Memory { initial } => Ok(Traffic::On(initial.clone())),
            _ => pool
                .members
                .first()
                .map(|m| Traffic::On(m.name.clone()))
                .ok_or_else(|| SwitchError::Unknown(format!("pool {} has no members", pool.name))),
        }
    }

    fn set(&self, env: &Environment, pool: &Pool, traffic: Traffic) -> Result<(), SwitchError> {
        let mut map = self
            .pools
            .lock()
            .map_err(|_| SwitchError::Unknown("switch state poisoned".into()))?;
        map.insert(
            (env.name.clone(), pool.region.clone(), pool.name.clone()),
            traffic,
        );
        Ok(())
    }
}

#[async_trait]
impl TrafficSwitch for MemorySwitch {
    async fn active(&self, env: &Environment, pool: &Pool) -> Result<String, SwitchError> {
        match self.traffic(env, pool)? {
            Traffic::On(m) => Ok(m),
            Traffic::Split(s) => s.sole().map(str::to_owned).ok_or_else(|| {
                SwitchError::Unknown(format!(
                    "traffic is shared out by weight ({s}): a canary is under way or was left part-way"
                ))
            }),
        }
    }

    async fn switch_to(
        &self,
        env: &Environment,
        pool: &Pool,
        member: &str,
    ) -> Result<(), SwitchError> {
        crate::ports::refuse_non_member(env, pool, member)?;
        self.set(env, pool, Traffic::On(member.to_owned()))
    }

    fn weighted(&self) -> bool {
        true
    }

    async fn set_split(
        &self,
        env: &Environment,
        pool: &Pool,
        split: &Split,
    ) -> Result<(), SwitchError> {
        split.refuse_non_members(env, pool)?;
        self.set(env, pool, Traffic::Split(split.over(pool)))
    }

    async fn split(&self, env: &Environment, pool: &Pool) -> Result<Split, SwitchError> {
        Ok(match self.traffic(env, pool)? {
            Traffic::On(m) => Split::all_on(pool, &m),
            Traffic::Split(s) => s,
        })
    }
}
