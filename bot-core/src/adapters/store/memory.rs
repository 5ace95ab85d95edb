//! In-memory [`Store`]: for tests, the demo and embedders that keep no state.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::ports::store::{
    AuditLog, AuditRecord, Buttons, Claim, Deliveries, Lock, LockOutcome, Locks, StoreError,
};

/// How long processed event ids are remembered (Slack retries at once, after ~1 and ~5 minutes).
const EVENT_MEMORY: Duration = Duration::from_secs(15 * 60);
/// At most this many event ids are remembered (about 12 MiB); the oldest go first.
const MAX_EVENTS: usize = 250_000;

/// Past this many button sets, expired ones are pruned.
const BUTTON_SETS_BEFORE_PRUNING: usize = 10_240;

/// A fixed-size key for an event id: two independently keyed 64-bit hashes, so ids
/// take 16 bytes however long they are and a false "duplicate" is out of reach.
fn event_key(event_id: &str) -> u128 {
    use std::hash::{BuildHasher, Hasher};
    let hash = |seed: u64| {
        let mut h =
            std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
                .build_hasher();
        h.write_u64(seed);
        h.write(event_id.as_bytes());
        h.finish()
    };
    (u128::from(hash(0x9e37_79b9_7f4a_7c15)) << 64) | u128::from(hash(0xc2b2_ae3d_27d4_eb4f))
}

#[derive(Default)]
struct State {
    /// Ids seen, and the same ids oldest first for O(1) expiry.
    events: HashSet<u128>,
    event_order: VecDeque<(SystemTime, u128)>,
    buttons: HashMap<String, (SystemTime, Option<String>)>,
    locks: HashMap<String, Lock>,
    audit: Vec<AuditRecord>,
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
impl Deliveries for MemoryStore {
    async fn first_delivery(&self, event_id: &str, now: SystemTime) -> Result<bool, StoreError> {
        self.with(|s| {
            while let Some((at, id)) = s.event_order.front() {
                let expired = now.duration_since(*at).unwrap_or_default() >= EVENT_MEMORY;
                if !expired && s.event_order.len() < MAX_EVENTS {
                    break;
                }
                s.events.remove(id);
                s.event_order.pop_front();
            }
            let key = event_key(event_id);
            if !s.events.insert(key) {
                return false;
            }
            s.event_order.push_back((now, key));
            true
        })
    }
}

#[async_trait]
impl Buttons for MemoryStore {
    async fn issue_buttons(&self, set_id: &str, expires: SystemTime) -> Result<(), StoreError> {
        self.with(|s| {
            // Button sets live minutes; once there are many, forget those expired a day
            // before this one (amortised: only every 1,024th set past the threshold).
            if s.buttons.len() >= BUTTON_SETS_BEFORE_PRUNING && s.buttons.len() % 1024 == 0 {
                let horizon = expires
                    .checked_sub(Duration::from_secs(24 * 3600))
                    .unwrap_or(expires);
                s.buttons.retain(|_, (exp, _)| *exp > horizon);
            }
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
}

#[async_trait]
impl Locks for MemoryStore {
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

    async fn release(&self, lock: &Lock) -> Result<bool, StoreError> {
        self.with(|s| match s.locks.get(&lock.env) {
            Some(held) if held.holder == lock.holder && held.since == lock.since => {
                s.locks.remove(&lock.env);
                true
            }
            _ => false,
        })
    }

    async fn lock_of(&self, env: &str, now: SystemTime) -> Result<Option<Lock>, StoreError> {
        self.with(|s| s.locks.get(env).filter(|l| l.expires > now).cloned())
    }
}

#[async_trait]
impl AuditLog for MemoryStore {
    async fn append(&self, record: AuditRecord) -> Result<(), StoreError> {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_repeated_event_is_seen_once_until_it_expires() {
        let store = MemoryStore::new();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(store.first_delivery("Ev1", t0).await, Ok(true));
        assert_eq!(
            store
                .first_delivery("Ev1", t0 + Duration::from_secs(300))
                .await,
            Ok(false)
        );
        assert_eq!(
            store
                .first_delivery("Ev2", t0 + Duration::from_secs(1))
                .await,
            Ok(true)
        );
        // Once the window has passed Ev1 is forgotten (Slack stopped retrying long before).
        assert_eq!(
            store
                .first_delivery("Ev1", t0 + EVENT_MEMORY + Duration::from_secs(1))
                .await,
            Ok(true)
        );
    }

    #[tokio::test]
    async fn the_oldest_ids_go_first_when_the_cap_is_reached() {
        let store = MemoryStore::new();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        for i in 0..=MAX_EVENTS {
            assert_eq!(store.first_delivery(&format!("Ev{i}"), t0).await, Ok(true));
        }
        let newest = format!("Ev{MAX_EVENTS}");
        assert_eq!(
            store.first_delivery(&newest, t0).await,
            Ok(false),
            "recent ids stay"
        );
        assert_eq!(
            store.first_delivery("Ev0", t0).await,
            Ok(true),
            "the oldest was evicted"
        );
    }

    #[tokio::test]
    async fn release_frees_only_the_lock_it_names() {
        let store = MemoryStore::new();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let lock = |holder: &str, since: SystemTime| Lock {
            env: "master".into(),
            holder: holder.into(),
            reason: "deploy".into(),
            since,
            expires: since + Duration::from_secs(60),
            action: Some("deploy".into()),
        };
        let first = lock("U1", t0);
        assert_eq!(
            store.try_lock(first.clone(), t0).await,
            Ok(LockOutcome::Acquired)
        );
        // The first lease lapses and someone else takes the environment.
        let later = t0 + Duration::from_secs(120);
        let second = lock("U2", later);
        assert_eq!(
            store.try_lock(second.clone(), later).await,
            Ok(LockOutcome::Acquired)
        );
        assert_eq!(
            store.release(&first).await,
            Ok(false),
            "the lapsed holder frees nothing"
        );
        assert_eq!(
            store.lock_of("master", later).await,
            Ok(Some(second.clone()))
        );
        assert_eq!(store.release(&second).await, Ok(true));
        assert_eq!(store.lock_of("master", later).await, Ok(None));
    }
}
