//! In-memory [`Store`]: for tests, the demo and embedders that keep no state.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::backends::{AuditRecord, Claim, Lock, LockOutcome, Store, StoreError};

/// How long processed event ids are remembered (Slack retries for ~5 minutes).
const EVENT_MEMORY: Duration = Duration::from_secs(60 * 60);

#[derive(Default)]
struct State {
    events: HashMap<String, SystemTime>,
    buttons: HashMap<String, (SystemTime, Option<String>)>,
    locks: HashMap<String, Lock>,
    audit: Vec<AuditRecord>,
    active: HashMap<(String, String), String>,
}

/// Keeps everything in a mutex-guarded map; nothing survives a restart.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> Result<T, StoreError> {
        let mut guard = self
            .state
            .lock()
            .map_err(|_| StoreError("memory store poisoned".into()))?;
        Ok(f(&mut guard))
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn first_delivery(&self, event_id: &str, now: SystemTime) -> Result<bool, StoreError> {
        self.with(|s| {
            if s.events.len() > 100_000 {
                s.events
                    .retain(|_, at| now.duration_since(*at).unwrap_or_default() < EVENT_MEMORY);
            }
            s.events.insert(event_id.to_owned(), now).is_none()
        })
    }

    async fn issue_buttons(&self, set_id: &str, expires: SystemTime) -> Result<(), StoreError> {
        self.with(|s| {
            s.buttons.insert(set_id.to_owned(), (expires, None));
        })
    }

    async fn claim_buttons(
        &self,
        set_id: &str,
        user: &str,
        now: SystemTime,
    ) -> Result<Claim, StoreError> {
        self.with(|s| match s.buttons.get_mut(set_id) {
            None => Claim::Unknown,
            Some((_, Some(by))) => Claim::AlreadyUsed { by: by.clone() },
            Some((expires, _)) if now > *expires => Claim::Expired,
            Some((_, used)) => {
                *used = Some(user.to_owned());
                Claim::Claimed
            }
        })
    }

    async fn try_lock(&self, lock: Lock, now: SystemTime) -> Result<LockOutcome, StoreError> {
        self.with(|s| match s.locks.get(&lock.env) {
            Some(held) if held.expires > now => LockOutcome::HeldBy(held.clone()),
            _ => {
                s.locks.insert(lock.env.clone(), lock);
                LockOutcome::Acquired
            }
        })
    }

    async fn unlock(&self, env: &str) -> Result<Option<Lock>, StoreError> {
        self.with(|s| s.locks.remove(env))
    }

    async fn lock_of(&self, env: &str, now: SystemTime) -> Result<Option<Lock>, StoreError> {
        self.with(|s| s.locks.get(env).filter(|l| l.expires > now).cloned())
    }

    async fn audit(&self, record: AuditRecord) -> Result<(), StoreError> {
        self.with(|s| s.audit.push(record))
    }

    async fn history(
        &self,
        env: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.with(|s| {
            s.audit
                .iter()
                .rev()
                .filter(|r| env.is_none() || r.env.as_deref() == env)
                .take(limit)
                .cloned()
                .collect()
        })
    }

    async fn set_last_active(&self, env: &str, pool: &str, member: &str) -> Result<(), StoreError> {
        self.with(|s| {
            s.active
                .insert((env.to_owned(), pool.to_owned()), member.to_owned());
        })
    }

    async fn last_active(&self, env: &str, pool: &str) -> Result<Option<String>, StoreError> {
        self.with(|s| s.active.get(&(env.to_owned(), pool.to_owned())).cloned())
    }
}
