//! The background work of a serving replica: the inbox sweeper (deliveries left for
//! later or abandoned by a dead replica), the Slack courier (the outbox), the takeover
//! of runs whose replica died, the start of queued deploys, pruning, and the store's
//! health check behind `/readyz`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::state::AppState;
use crate::supervise::{every, supervised};

/// How often the inbox is swept when nothing wakes the sweeper.
const SWEEP: Duration = Duration::from_millis(500);
/// How often the store is pinged for readiness.
const PING: Duration = Duration::from_secs(2);
/// How long the courier may take on shutdown to send what is due.
const FLUSH: Duration = Duration::from_secs(10);
/// How long the monitor has to end (and write what it held back) on shutdown.
const MONITOR_END: Duration = Duration::from_secs(3);
/// How often processed deliveries and delivered messages (and, past
/// `settings.retention`, buttons, approvals and finished runs) are pruned.
const PRUNE: Duration = Duration::from_secs(300);
/// How long they are kept (deliveries deduplicate Slack's retries meanwhile).
const KEEP: Duration = Duration::from_secs(3600);
/// How often environments with deploys waiting in line are checked for being free.
const QUEUE: Duration = Duration::from_millis(300);

/// Starts the first deploy in line of every environment that is free (one replica
/// takes each out), its progress posted as a new message to whoever queued it.
async fn start_queued(intake: &crate::intake::Intake) {
    if !intake.is_accepting() {
        return;
    }
    let outbox = intake.outbox_changed();
    let wake: std::sync::Arc<dyn Fn() + Send + Sync> =
        std::sync::Arc::new(move || outbox.notify_one());
    let reach: bot_core::Reach = std::sync::Arc::new(|q: &bot_core::ports::Queued| {
        let dest = crate::slack::delivery::Destination::Channel {
            channel: q.channel.clone().unwrap_or_else(|| q.user.clone()),
            thread_ts: None,
            user: q.user.clone(),
        };
        Some((
            crate::slack::courier::TRANSPORT.to_owned(),
            serde_json::to_value(dest).ok()?,
        ))
    });
    match intake.bot().start_queued(Some(reach), Some(wake)).await {
        Ok(started) => {
            for (id, work) in started {
                intake.spawn_answer(format!("queued deploy {id}"), async move {
                    work.await;
                });
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not look at the deploy queue"),
    }
}

/// Takes over the runs of replicas that died and drives them here, tracked like any
/// work (drained on shutdown).
async fn take_over(intake: &crate::intake::Intake) {
    if !intake.is_accepting() {
        return;
    }
    let outbox = intake.outbox_changed();
    let wake: std::sync::Arc<dyn Fn() + Send + Sync> =
        std::sync::Arc::new(move || outbox.notify_one());
    match intake.bot().take_over_runs(16, Some(wake)).await {
        Ok(runs) => {
            for (id, work) in runs {
                intake.spawn_answer(format!("run {id}, taken over"), work);
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not look for runs to take over"),
    }
}

/// The running background tasks.
pub struct Workers {
    stop: watch::Sender<bool>,
    courier: JoinHandle<()>,
    /// The monitor and its hook courier: they end by themselves on `stop`, the
    /// monitor writing the probe results it held back.
    monitor: Vec<JoinHandle<()>>,
    others: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Starts them for `state`, each supervised: one that panics or ends early is
    /// logged, counted and started again.
    pub fn start(state: &AppState) -> Self {
        let (stop, _) = watch::channel(false);
        let intake = state.slack.intake().clone();
        let metrics = intake.metrics().clone();
        let sweeper = supervised("sweeper", metrics.clone(), stop.subscribe(), {
            let intake = intake.clone();
            let stop = stop.subscribe();
            move || {
                let intake = intake.clone();
                let mut stopped = stop.clone();
                async move {
                    // It ends when the replica stops taking work; so does this, later.
                    intake.sweep(SWEEP).await;
                    let _ = stopped.wait_for(|s| *s).await;
                }
            }
        });
        let courier = supervised("courier", metrics.clone(), stop.subscribe(), {
            let courier = state.slack.courier();
            let stop = stop.subscribe();
            move || {
                let courier = courier.clone();
                let mut stopped = stop.clone();
                async move {
                    courier
                        .run(async move {
                            let _ = stopped.wait_for(|s| *s).await;
                        })
                        .await
                }
            }
        });
        let health = every("store health", metrics.clone(), &stop, || PING, {
            let store = intake.bot().store();
            let store_ok = state.store_ok.clone();
            move || {
                let (store, store_ok) = (store.clone(), store_ok.clone());
                async move {
                    let ok = match tokio::time::timeout(PING, store.ping()).await {
                        Ok(Ok(())) => true,
                        Ok(Err(e)) => {
                            tracing::warn!(error = %e, "the state store does not answer");
                            false
                        }
                        Err(_) => {
                            tracing::warn!("the state store did not answer a ping in time");
                            false
                        }
                    };
                    store_ok.store(ok, Ordering::Relaxed);
                }
            }
        });
        let takeover = every(
            "takeover",
            metrics.clone(),
            &stop,
            {
                let bot = intake.bot().clone();
                // At least every second: a deploy scheduled for later is a run whose
                // lease lapses at its time, and it starts within a second of it.
                move || {
                    (bot.settings().lease / 3)
                        .clamp(Duration::from_millis(200), Duration::from_secs(1))
                }
            },
            {
                let intake = intake.clone();
                move || {
                    let intake = intake.clone();
                    async move { take_over(&intake).await }
                }
            },
        );
        let queue = every("deploy queue", metrics.clone(), &stop, || QUEUE, {
            let intake = intake.clone();
            move || {
                let intake = intake.clone();
                async move { start_queued(&intake).await }
            }
        });
        let pruner = supervised("pruner", metrics, stop.subscribe(), {
            let bot = intake.bot().clone();
            let stop = stop.subscribe();
            move || {
                let bot = bot.clone();
                let mut stopped = stop.clone();
                async move {
                    loop {
                        tokio::select! {
                            _ = stopped.wait_for(|s| *s) => return,
                            () = tokio::time::sleep(PRUNE) => {}
                        }
                        let store = bot.store();
                        let before = bot.now() - KEEP;
                        if let Err(e) = store.prune_inbox(before).await {
                            tracing::warn!(error = %e, "could not prune the inbox");
                        }
                        if let Err(e) = store.prune_outbox(before).await {
                            tracing::warn!(error = %e, "could not prune the outbox");
                        }
                        let kept_from = bot
                            .now()
                            .checked_sub(bot.settings().retention)
                            .unwrap_or(std::time::UNIX_EPOCH);
                        match store.prune_history(kept_from).await {
                            Ok(0) => {}
                            Ok(n) => tracing::info!(
                                rows = n,
                                "pruned buttons, approvals and runs past settings.retention"
                            ),
                            Err(e) => {
                                tracing::warn!(error = %e, "could not prune old buttons, approvals and runs")
                            }
                        }
                    }
                }
            }
        });
        let others = vec![sweeper, health, takeover, queue, pruner];
        let monitor = crate::monitor::start(state, &stop);
        Self {
            stop,
            courier,
            monitor,
            others,
        }
    }

    /// Stops them: the courier first sends what is due (bounded).
    pub async fn stop(mut self, store: &std::sync::Arc<dyn bot_core::ports::Store>) {
        // Give the courier a moment to deliver the answers of the work just drained.
        let deadline = tokio::time::Instant::now() + FLUSH;
        while tokio::time::Instant::now() < deadline {
            match store.undelivered(crate::slack::courier::TRANSPORT).await {
                Ok(0) | Err(_) => break,
                Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        let _ = self.stop.send(true);
        if tokio::time::timeout(FLUSH, self.courier).await.is_err() {
            tracing::warn!("the outbox was not flushed before shutdown; another replica or the next start delivers it");
        }
        let monitor = futures::future::join_all(self.monitor.iter_mut());
        if tokio::time::timeout(MONITOR_END, monitor).await.is_err() {
            tracing::warn!(
                "the monitor did not end in time; the probes it held back may not be written"
            );
        }
        for task in self.others.into_iter().chain(self.monitor) {
            task.abort();
        }
    }
}
