//! [`MemorySwitch`]: a traffic switch kept in memory, for demos and tests.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::config::{Environment, Pool, SwitchSpec};
use crate::ports::{SwitchError, TrafficSwitch};

/// Remembers the active member per pool; starts from the pool's `initial`.
#[derive(Default)]
pub struct MemorySwitch {
    active: Mutex<HashMap<crate::context::PoolAt, String>>,
}

impl MemorySwitch {
    /// A switch with no pool switched yet.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl TrafficSwitch for MemorySwitch {
    async fn active(&self, env: &Environment, pool: &Pool) -> Result<String, SwitchError> {
        let map = self
            .active
            .lock()
            .map_err(|_| SwitchError::Unknown("switch state poisoned".into()))?;
        if let Some(m) = map.get(&(env.name.clone(), pool.region.clone(), pool.name.clone())) {
            return Ok(m.clone());
        }
        match &pool.switch {
            SwitchSpec::Memory { initial } => Ok(initial.clone()),
            _ => {
                pool.members.first().map(|m| m.name.clone()).ok_or_else(|| {
                    SwitchError::Unknown(format!("pool {} has no members", pool.name))
                })
            }
        }
    }

    async fn switch_to(
        &self,
        env: &Environment,
        pool: &Pool,
        member: &str,
    ) -> Result<(), SwitchError> {
        crate::ports::refuse_non_member(env, pool, member)?;
        let mut map = self
            .active
            .lock()
            .map_err(|_| SwitchError::Unknown("switch state poisoned".into()))?;
        map.insert(
            (env.name.clone(), pool.region.clone(), pool.name.clone()),
            member.to_owned(),
        );
        Ok(())
    }
}
