//! One status round at a time per scope, its result shared for `settings.status_cache`:
//! a crowd asking `status` (in chat or on `/api/v1/status`) costs the platform one
//! probe of each instance and one read of each switch, not one per asker.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// `(environment, region)`; `None` for all of them.
type Scope = (Option<String>, Option<String>);
/// The last round of one scope (whatever the status action makes of it), if any,
/// and when it ended.
type Slot = Arc<tokio::sync::Mutex<Option<(Instant, Arc<dyn Any + Send + Sync>)>>>;

/// The shared rounds, per scope.
#[derive(Default)]
pub struct StatusCache {
    slots: Mutex<HashMap<Scope, Slot>>,
    /// Bumped when traffic moves: rounds from before it are not shared after it.
    moved: Mutex<Option<Instant>>,
}

impl StatusCache {
    /// The status of `scope`: the last round's, when it ended less than `ttl` ago and
    /// no traffic moved since, else a new round from `round` (one at a time: askers
    /// meanwhile wait for it and share it).
    pub async fn get<T, F, Fut>(
        &self,
        env: Option<&str>,
        region: Option<&str>,
        ttl: Duration,
        round: F,
    ) -> T
    where
        T: Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        if ttl.is_zero() {
            return round().await;
        }
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            slots
                .entry((env.map(str::to_owned), region.map(str::to_owned)))
                .or_default()
                .clone()
        };
        let mut last = slot.lock().await;
        let moved = *self.moved.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, status)) = last.as_ref() {
            if at.elapsed() < ttl && moved.is_none_or(|m| m < *at) {
                if let Some(status) = status.downcast_ref::<T>() {
                    return status.clone();
                }
            }
        }
        let status = round().await;
        *last = Some((Instant::now(), Arc::new(status.clone())));
        status
    }

    /// Traffic moved: no round from before now is shared any more.
    pub fn moved(&self) {
        *self.moved.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn empty() -> String {
        "4 of 4 instances healthy".to_owned()
    }

    #[tokio::test]
    async fn a_crowd_shares_one_round_until_traffic_moves() {
        let cache = Arc::new(StatusCache::default());
        let rounds = Arc::new(AtomicU32::new(0));
        let ask = || {
            let cache = cache.clone();
            let rounds = rounds.clone();
            async move {
                cache
                    .get(Some("staging"), None, Duration::from_secs(60), || async {
                        rounds.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        empty()
                    })
                    .await
            }
        };
        futures::future::join_all((0..50).map(|_| ask())).await;
        assert_eq!(rounds.load(Ordering::SeqCst), 1, "one round for 50 askers");
        cache.moved();
        ask().await;
        assert_eq!(
            rounds.load(Ordering::SeqCst),
            2,
            "a move starts a new round"
        );
    }
}
