//! The background monitor of a serving replica: one per platform (a lease in the
//! store), every target probed once an interval with its own timeout (a slot of
//! targets at a time, see [`prober`]), results kept in
//! the probe log when they change and once per [`SAMPLE`] otherwise ([`Sampler`]),
//! written a batch at a time, changes confirmed by [`Tracker`]s and announced
//! through the outbox (Slack) with PagerDuty and webhook events beside them (the
//! `hooks` transport, see [`hooks`]). Replicas that do not run it feed their board
//! from the probe log. Without a `monitor:` section nothing runs.

pub mod board;
pub mod hooks;
mod prober;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use bot_core::config::{Config, MonitorConfig};
use bot_core::monitor::{targets, words, Change, ChangeKind, Sampler, Target, Tracker, SAMPLE};
use bot_core::ports::store::{Lock, LockOutcome};
use bot_core::ports::watch::ProbeRecord;
use bot_core::ports::Store;
use bot_core::Bot;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinSet;

use crate::slack::courier::TRANSPORT as SLACK;
use crate::slack::delivery::Destination;
pub use board::Board;

/// The lock key of the monitor lease (no environment can be called this).
pub const LEASE_KEY: &str = "~monitor";
/// How often probes older than the retention are pruned.
const PRUNE: Duration = Duration::from_secs(300);
/// Most probe results taken from the probes at once, and most written in one batch.
const BATCH: usize = 1024;
/// How long a result to write waits for others to share its transaction.
const FLUSH: Duration = Duration::from_secs(1);
/// Probe-log rows kept while the store refuses them: four minutes of 5,000 targets'
/// points.
const KEPT: usize = 20_000;

/// What the monitor needs from its replica.
#[derive(Clone)]
pub struct Monitor {
    bot: Bot,
    board: Board,
    /// Wakes the Slack courier after an announcement is written.
    slack_outbox: Arc<Notify>,
    /// Wakes the hook courier after an event is written.
    hooks_outbox: Arc<Notify>,
    /// The outbox transport announcements go to.
    announce_via: String,
}

/// `monitor` config and targets, compared to notice a reload that changes them.
fn fingerprint(config: &Config) -> Option<String> {
    let m = config.monitor.as_ref()?;
    Some(format!(
        "{:?}|{}|{}|{:?}|{:?}",
        m.every,
        m.confirm,
        m.channel,
        m.timeout,
        targets(config)
    ))
}

impl Monitor {
    /// A monitor for `bot`'s platform, showing on `board`.
    pub fn new(
        bot: Bot,
        board: Board,
        slack_outbox: Arc<Notify>,
        hooks_outbox: Arc<Notify>,
    ) -> Self {
        Self {
            bot,
            board,
            slack_outbox,
            hooks_outbox,
            announce_via: SLACK.to_owned(),
        }
    }

    /// Announces through outbox transport `transport` instead of Slack (`console`
    /// in a demo without Slack).
    pub fn announce_via(mut self, transport: impl Into<String>) -> Self {
        self.announce_via = transport.into();
        self
    }

    /// Runs until `stop` turns true: leads when the lease is free (probing), follows
    /// otherwise (feeding the board from the probe log); releases the lease on the way out.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let store = self.bot.store();
        loop {
            let config = self.bot.config();
            self.board.set_targets(&targets(&config));
            let Some(monitor) = config.monitor.clone() else {
                self.board.set_monitored(None);
                // No monitor: look again after a reload.
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    () = tokio::time::sleep(Duration::from_secs(5)) => continue,
                }
            };
            self.board.set_monitored(Some(self.bot.now()));
            let lease = self.bot.settings().lease;
            let now = self.bot.now();
            let lock = Lock {
                env: LEASE_KEY.into(),
                holder: self.bot.owner().to_owned(),
                reason: "the monitor".into(),
                since: now,
                expires: now + lease,
                action: Some("monitor".into()),
                run: None,
                fence: 0,
            };
            match store.try_lock(lock.clone(), now).await {
                Ok(LockOutcome::Acquired) => {
                    tracing::info!(owner = %lock.holder, "running the monitor");
                    let stopped = self.lead(&config, &monitor, &lock, &mut stop).await;
                    if stopped {
                        let _ = store.release(&lock).await;
                        return;
                    }
                }
                Ok(LockOutcome::HeldBy(_)) => {
                    self.follow(&*store).await;
                    let wait = (lease / 3)
                        .min(monitor.every)
                        .max(Duration::from_millis(50));
                    tokio::select! {
                        _ = stop.wait_for(|s| *s) => return,
                        () = tokio::time::sleep(wait) => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the monitor could not take its lease");
                    tokio::select! {
                        _ = stop.wait_for(|s| *s) => return,
                        () = tokio::time::sleep(monitor.every) => {}
                    }
                }
            }
        }
    }

    /// A replica that does not run the monitor shows the newest probes.
    async fn follow(&self, store: &dyn Store) {
        match store.latest_probes().await {
            Ok(latest) => {
                for p in &latest {
                    self.board.observe(p);
                }
            }
            Err(e) => tracing::debug!(error = %e, "could not read the probe log"),
        }
    }

    /// Probes while the lease holds; `true` when stopped, `false` when the lease or
    /// the configuration changed under it.
    async fn lead(
        &self,
        config: &Config,
        monitor: &MonitorConfig,
        lock: &Lock,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        let store = self.bot.store();
        let all: Arc<[Target]> = targets(config).into();
        let fp = fingerprint(config);
        let (tx, rx) = mpsc::channel::<prober::Probed>(all.len().clamp(16, BATCH) * 2);
        let mut tasks = JoinSet::new();
        tasks.spawn(prober::probe_all(
            self.bot.clone(),
            all.clone(),
            monitor.every,
            monitor.timeout,
            tx.clone(),
        ));
        drop(tx);
        let processor = tokio::spawn(self.clone().process(all, monitor.clone(), rx));

        let lease = self.bot.settings().lease;
        let mut held = lock.clone();
        let mut pruned = self.bot.now();
        let stopped = loop {
            let every = (lease / 3).max(Duration::from_millis(50));
            tokio::select! {
                _ = stop.wait_for(|s| *s) => break true,
                () = tokio::time::sleep(every) => {}
            }
            let now = self.bot.now();
            match store.renew_lock(&held, now + lease).await {
                Ok(true) => held.expires = now + lease,
                Ok(false) => {
                    tracing::warn!("the monitor lease went to another replica; following");
                    break false;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the monitor lease could not be renewed");
                    if now >= held.expires {
                        break false;
                    }
                }
            }
            if fingerprint(&self.bot.config()) != fp {
                tracing::info!("the monitored targets changed; restarting the monitor");
                let _ = store.release(&held).await;
                break false;
            }
            if now.duration_since(pruned).unwrap_or_default() >= PRUNE {
                pruned = now;
                if let Err(e) = store.prune_probes(now - monitor.retention).await {
                    tracing::warn!(error = %e, "could not prune the probe log");
                }
            }
        };
        tasks.shutdown().await;
        let _ = processor.await;
        if stopped {
            // Hand the lease back at once, for a replica still running.
            let _ = store.release(&held).await;
        }
        stopped
    }

    /// Shows results as they come, acts on confirmed changes, and writes the results
    /// the probe log keeps a batch at a time (at most [`FLUSH`] after the first).
    async fn process(
        self,
        all: Arc<[Target]>,
        monitor: MonitorConfig,
        mut rx: mpsc::Receiver<prober::Probed>,
    ) {
        let store = self.bot.store();
        let mut stored: HashMap<String, bot_core::ports::Watch> = match store.watches().await {
            Ok(w) => w.into_iter().map(|w| (w.target.clone(), w)).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "could not read the monitor's state; starting afresh");
                HashMap::new()
            }
        };
        let mut watched: Vec<Watched> = all
            .iter()
            .map(|target| Watched {
                tracker: Tracker::new(target.id.clone(), stored.remove(&target.id)),
                sampler: Sampler::new(),
            })
            .collect();
        let mut batch = Vec::with_capacity(BATCH);
        let mut rows: Vec<ProbeRecord> = Vec::with_capacity(BATCH);
        let mut due: Option<Instant> = None;
        loop {
            let flush_at = due;
            tokio::select! {
                got = rx.recv_many(&mut batch, BATCH) => {
                    if got == 0 {
                        break;
                    }
                    for (i, record) in batch.drain(..) {
                        self.board.observe(&record);
                        let (Some(target), Some(w)) = (all.get(i), watched.get_mut(i)) else {
                            continue;
                        };
                        let id = &target.id;
                        let change = w.tracker.observe(&record, monitor.confirm, |since| {
                            format!("monitor:{id}:{}", millis(since))
                        });
                        if let Some(change) = change {
                            self.act(&*store, target, &monitor, &change).await;
                        }
                        w.sampler.take(record, SAMPLE, &mut rows);
                    }
                    if rows.len() >= BATCH {
                        record(&*store, &mut rows).await;
                        due = (!rows.is_empty()).then(|| Instant::now() + FLUSH);
                    } else if !rows.is_empty() && due.is_none() {
                        due = Some(Instant::now() + FLUSH);
                    }
                }
                () = tokio::time::sleep_until(flush_at.unwrap_or_else(Instant::now)), if flush_at.is_some() => {
                    record(&*store, &mut rows).await;
                    // What the store refused is tried again a moment later.
                    due = (!rows.is_empty()).then(|| Instant::now() + FLUSH);
                }
            }
        }
        // Stopping: what was held back is written too, so every probe is counted.
        for w in &mut watched {
            w.sampler.flush(&mut rows);
        }
        record(&*store, &mut rows).await;
    }

    /// Writes what a confirmed change owes people and systems, then its new state.
    async fn act(
        &self,
        store: &dyn Store,
        target: &Target,
        monitor: &MonitorConfig,
        change: &Change,
    ) {
        let now = self.bot.now();
        tracing::info!(target = %target.name, state = change.watch.health.as_str(), kind = ?change.kind, "confirmed change");
        let written = async {
            match (&change.kind, &change.incident) {
                (ChangeKind::Down, Some(incident)) => {
                    let route = serde_json::to_value(Destination::Channel {
                        channel: monitor.channel.clone(),
                        thread_ts: None,
                        user: String::new(),
                    })
                    .unwrap_or_default();
                    let body = serde_json::to_value(words::announcement(target, incident, now))
                        .unwrap_or_default();
                    store
                        .open_message(
                            &incident.message,
                            &self.announce_via,
                            &route,
                            &format!("monitor: {} down", target.name),
                            now,
                        )
                        .await?;
                    store.put_message(&incident.message, &body, false).await?;
                }
                (ChangeKind::Recovered { downtime }, Some(incident)) => {
                    let body =
                        serde_json::to_value(words::recovery(target, incident, *downtime, now))
                            .unwrap_or_default();
                    let id = if store.message(&incident.message).await?.is_some() {
                        incident.message.clone()
                    } else {
                        // The announcement is gone: say it in a message of its own.
                        let id = format!("{}:recovered", incident.message);
                        let route = serde_json::to_value(Destination::Channel {
                            channel: monitor.channel.clone(),
                            thread_ts: None,
                            user: String::new(),
                        })
                        .unwrap_or_default();
                        store
                            .open_message(
                                &id,
                                &self.announce_via,
                                &route,
                                &format!("monitor: {} recovered", target.name),
                                now,
                            )
                            .await?;
                        id
                    };
                    store.put_message(&id, &body, true).await?;
                }
                _ => {}
            }
            self.slack_outbox.notify_one();
            let stamp = millis(change.watch.since);
            let event = match change.kind {
                ChangeKind::Down => "down",
                ChangeKind::Recovered { .. } => "recovered",
                ChangeKind::Quiet => "changed",
            };
            if monitor.pagerduty.is_some() {
                if let Some(pd) = words::pagerduty_event(target, change) {
                    let id = format!("hook:pagerduty:{}:{stamp}:{event}", target.id);
                    hooks::enqueue(store, &id, &json!({"kind": "pagerduty"}), &pd, now).await?;
                }
            }
            // Webhooks hear every confirmed change except the first state ever seen.
            if change.from.is_some() || change.kind == ChangeKind::Down {
                let body = words::webhook_event(target, change);
                for (i, url) in monitor.webhooks.iter().enumerate() {
                    let id = format!("hook:webhook{i}:{}:{stamp}:{event}", target.id);
                    hooks::enqueue(
                        store,
                        &id,
                        &json!({"kind": "webhook", "url": url}),
                        &body,
                        now,
                    )
                    .await?;
                }
            }
            self.hooks_outbox.notify_one();
            store.save_watch(&change.watch).await
        };
        if let Err(e) = written.await {
            tracing::warn!(target = %target.name, error = %e, "could not record a confirmed change");
        }
    }
}

/// One monitored target's confirmed state and its place in the probe log.
struct Watched {
    tracker: Tracker,
    sampler: Sampler,
}

/// Writes `rows` to the probe log in one batch and empties it. A batch the store
/// refused is kept for the next write (the samplers count on what they handed over
/// being written), up to [`KEPT`] rows; beyond that the oldest are dropped, said so.
async fn record(store: &dyn Store, rows: &mut Vec<ProbeRecord>) {
    if rows.is_empty() {
        return;
    }
    match store.record_probes(rows).await {
        Ok(()) => rows.clear(),
        Err(e) => {
            tracing::warn!(error = %e, probes = rows.len(), "could not record probe results; trying again");
            if rows.len() > KEPT {
                let dropped = rows.len() - KEPT;
                rows.drain(..dropped);
                tracing::error!(
                    dropped,
                    "probe results dropped: the store refused them too long"
                );
            }
        }
    }
}

fn millis(t: SystemTime) -> u128 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
}

/// The board's JSON for a box list (used by the events route).
pub fn boxes_json(boxes: &[board::BoardBox]) -> Value {
    serde_json::to_value(boxes).unwrap_or(Value::Null)
}

/// Starts the monitor and the hook courier of a serving replica; both end when
/// `stop` turns true.
pub fn start(
    state: &crate::state::AppState,
    stop: &watch::Sender<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let intake = state.slack.intake();
    let bot = intake.bot().clone();
    let hooks_wake = Arc::new(Notify::new());
    let monitor = Monitor::new(
        bot.clone(),
        state.board.clone(),
        intake.outbox_changed(),
        hooks_wake.clone(),
    )
    .announce_via(state.announce_via.clone());
    let metrics = intake.metrics().clone();
    let courier = hooks::HookCourier::new(bot, hooks_wake, metrics.clone());
    vec![
        crate::supervise::supervised("monitor", metrics.clone(), stop.subscribe(), {
            let stop = stop.subscribe();
            move || monitor.clone().run(stop.clone())
        }),
        crate::supervise::supervised("hooks", metrics, stop.subscribe(), {
            let stop = stop.subscribe();
            move || courier.clone().run(stop.clone())
        }),
    ]
}
