//! Probing every target once an interval: the targets are spread over slots a
//! [`SLOT`] apart, and a slot's probes run together (each with its own timeout), so
//! 5,000 targets wake the process ten times a second rather than five hundred.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bot_core::monitor::{judge, Target};
use bot_core::ports::watch::ProbeRecord;
use bot_core::Bot;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

/// A result, with the index of its target in the list probed.
pub type Probed = (usize, ProbeRecord);

/// How far apart the slots of an interval start (shorter intervals have one slot).
pub const SLOT: Duration = Duration::from_millis(100);

/// How many slots an interval of `every` has for `targets` targets (at least one,
/// at most one per target).
fn slots(every: Duration, targets: usize) -> usize {
    let by_time = every.as_millis() / SLOT.as_millis().max(1);
    usize::try_from(by_time)
        .unwrap_or(usize::MAX)
        .clamp(1, targets.max(1))
}

/// Probes `targets` every `every` with `timeout` each, sending every result to `tx`
/// until `tx` closes or the task is dropped (which ends the probes in flight too). A
/// target still being probed when its turn comes again (hung, slower than `every`)
/// is skipped that turn; the others are not held back by it.
pub async fn probe_all(
    bot: Bot,
    targets: Arc<[Target]>,
    every: Duration,
    timeout: Duration,
    tx: mpsc::Sender<Probed>,
) {
    let busy: Arc<[AtomicBool]> = targets.iter().map(|_| AtomicBool::new(false)).collect();
    let slots = slots(every, targets.len());
    let mut tick = tokio::time::interval(every / u32::try_from(slots).unwrap_or(u32::MAX));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let probe = bot.probe();
    let mut rounds = JoinSet::new();
    let mut slot = 0;
    loop {
        tick.tick().await;
        if tx.is_closed() {
            return;
        }
        while rounds.try_join_next().is_some() {}
        let at = bot.now();
        let round: FuturesUnordered<_> = (slot..targets.len())
            .step_by(slots)
            .filter(|&i| busy.get(i).is_some_and(|b| !b.swap(true, Ordering::AcqRel)))
            .map(|i| {
                let (targets, busy, probe) = (targets.clone(), busy.clone(), probe.clone());
                async move {
                    let record = match targets.get(i) {
                        Some(target) => Some((i, judge(&*probe, target, timeout, at).await)),
                        None => None,
                    };
                    if let Some(b) = busy.get(i) {
                        b.store(false, Ordering::Release);
                    }
                    record
                }
            })
            .collect();
        slot = (slot + 1) % slots;
        if round.is_empty() {
            continue;
        }
        let tx = tx.clone();
        rounds.spawn(async move {
            let mut round = round;
            while let Some(record) = round.next().await {
                if let Some(record) = record {
                    if tx.send(record).await.is_err() {
                        return;
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interval_is_cut_into_slots_a_tenth_of_a_second_apart() {
        assert_eq!(slots(Duration::from_secs(10), 5000), 100);
        assert_eq!(slots(Duration::from_secs(10), 3), 3, "no empty slots");
        assert_eq!(slots(Duration::from_millis(100), 10), 1);
        assert_eq!(slots(Duration::from_millis(10), 10), 1);
        assert_eq!(slots(Duration::from_secs(10), 0), 1);
    }
}
