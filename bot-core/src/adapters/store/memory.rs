//! In-memory [`Store`]: for tests and embedders that keep no state. Nothing survives
//! a restart; everything else behaves as the durable stores do.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde_json::Value;

use crate::ports::approvals::{vote_on, Approval, Approvals, Decision, Vote};
use crate::ports::store::{
    chain_hash, Admitted, Attempt, AuditLog, AuditRecord, ButtonSet, Buttons, ChainedRecord, Claim,
    DeployQueue, Inbound, Inbox, Lock, LockOutcome, Locks, Outbox, Outgoing, Queued, Run, RunOrder,
    RunStatus, Runs, Store, StoreError, Unlocked, GENESIS,
};
use crate::ports::watch::{ProbeLog, ProbeRecord, Watch, Watches};

/// How long processed delivery keys are remembered (Slack retries at once, after ~1
/// and ~5 minutes).
const DELIVERY_MEMORY: Duration = Duration::from_secs(15 * 60);
/// At most this many processed keys are remembered (about 12 MiB); the oldest go first.
const MAX_DELIVERIES: usize = 250_000;
/// At most this many delivered (or given-up) messages are kept for reading back; the
/// oldest go first, so a store under load stays bounded.
const MAX_FINISHED: usize = 1_000;
/// Past this many button sets, expired ones are pruned.
const BUTTON_SETS_BEFORE_PRUNING: usize = 10_240;

/// A fixed-size key for a delivery key: two independently keyed 64-bit hashes, so
/// keys take 16 bytes however long they are and a false "duplicate" is out of reach.
fn short_key(key: &str) -> u128 {
    use std::hash::{BuildHasher, Hasher};
    let hash = |seed: u64| {
        let mut h =
            std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
                .build_hasher();
        h.write_u64(seed);
        h.write(key.as_bytes());
        h.finish()
    };
    (u128::from(hash(0x9e37_79b9_7f4a_7c15)) << 64) | u128::from(hash(0xc2b2_ae3d_27d4_eb4f))
}

struct Pending {
    item: Inbound,
    owner: String,
    lease_until: SystemTime,
    /// Its place in `pending_order`.
    seq: u64,
}

struct Message {
    out: Outgoing,
    lease: Option<(String, SystemTime)>,
    changed: SystemTime,
    /// Its place in `undelivered`, while it is there.
    queued: Option<u64>,
}

#[derive(Default)]
struct State {
    /// Deliveries not yet processed, and the order they came in.
    pending: HashMap<String, Pending>,
    pending_order: std::collections::BTreeMap<u64, String>,
    /// The next place in `pending_order` or `undelivered`.
    seq: u64,
    /// Processed keys, and the same keys oldest first for O(1) expiry.
    done: HashSet<u128>,
    done_order: VecDeque<(SystemTime, u128)>,
    messages: HashMap<String, Message>,
    /// Messages with a version to deliver, oldest first (each once).
    undelivered: std::collections::BTreeMap<u64, String>,
    /// Messages delivered to the end (or given up), oldest first, for pruning.
    finished: VecDeque<String>,
    buttons: HashMap<String, (ButtonSet, Option<String>)>,
    locks: HashMap<String, Lock>,
    runs: HashMap<String, Run>,
    run_order: Vec<String>,
    /// Orders left for running runs, oldest first.
    orders: Vec<(String, RunOrder)>,
    orders_seq: u64,
    audit: Vec<ChainedRecord>,
    /// Probes per target, oldest first.
    probes: HashMap<String, VecDeque<ProbeRecord>>,
    watches: HashMap<String, Watch>,
    /// Deploys in line, by place.
    queue: std::collections::BTreeMap<u64, Queued>,
    queue_seq: u64,
}

/// Keeps everything in a mutex-guarded map; nothing survives a restart.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    /// Signs the audit chain (`CROSSROADS_AUDIT_KEY`), once set.
    audit_key: std::sync::OnceLock<Vec<u8>>,
    /// Requests for approval, by id.
    approvals: Mutex<HashMap<String, Approval>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Signs every audit record appended from now on with `key` (HMAC-SHA256); a key
    /// already set stays.
    pub fn set_audit_key(&self, key: &[u8]) {
        let _ = self.audit_key.set(key.to_vec());
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> Result<T, StoreError> {
        let mut guard = self
            .state
            .lock()
            .map_err(|_| StoreError::Failed("the memory store is poisoned".into()))?;
        Ok(f(&mut guard))
    }
}

impl State {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Keeps at most [`MAX_FINISHED`] finished messages, dropping the oldest.
    fn retire(&mut self, id: &str) {
        self.finished.push_back(id.to_owned());
        while self.finished.len() > MAX_FINISHED {
            let Some(old) = self.finished.pop_front() else {
                break;
            };
            let done = self.messages.get(&old).is_some_and(|m| {
                m.queued.is_none()
                    && m.lease.is_none()
                    && (m.out.given_up || (m.out.last && m.out.delivered >= m.out.version))
            });
            if done {
                self.messages.remove(&old);
            }
        }
    }

    fn remember_done(&mut self, key: &str, at: SystemTime) {
        while let Some((when, k)) = self.done_order.front() {
            let expired = at.duration_since(*when).unwrap_or_default() >= DELIVERY_MEMORY;
            if !expired && self.done_order.len() < MAX_DELIVERIES {
                break;
            }
            self.done.remove(k);
            self.done_order.pop_front();
        }
        let k = short_key(key);
        if self.done.insert(k) {
            self.done_order.push_back((at, k));
        }
    }
}

#[async_trait]
impl Inbox for MemoryStore {
    async fn admit(
        &self,
        item: &Inbound,
        owner: &str,
        lease_until: SystemTime,
    ) -> Result<Admitted, StoreError> {
        self.with(|s| {
            if s.pending.contains_key(&item.key) || s.done.contains(&short_key(&item.key)) {
                return Admitted::Duplicate;
            }
            let seq = s.next_seq();
            s.pending.insert(
                item.key.clone(),
                Pending {
                    item: item.clone(),
                    owner: owner.to_owned(),
                    lease_until,
                    seq,
                },
            );
            s.pending_order.insert(seq, item.key.clone());
            Admitted::New
        })
    }

    async fn lease_inbound(
        &self,
        owner: &str,
        now: SystemTime,
        lease_until: SystemTime,
        limit: usize,
    ) -> Result<Vec<Inbound>, StoreError> {
        self.with(|s| {
            let State {
                pending,
                pending_order,
                ..
            } = s;
            let mut out = Vec::new();
            for key in pending_order.values() {
                if out.len() >= limit {
                    break;
                }
                if let Some(p) = pending.get_mut(key) {
                    if p.lease_until <= now {
                        p.owner = owner.to_owned();
                        p.lease_until = lease_until;
                        out.push(p.item.clone());
                    }
                }
            }
            out
        })
    }

    async fn renew_inbound(
        &self,
        key: &str,
        owner: &str,
        lease_until: SystemTime,
    ) -> Result<bool, StoreError> {
        self.with(|s| match s.pending.get_mut(key) {
            Some(p) if p.owner == owner => {
                p.lease_until = lease_until;
                true
            }
            _ => false,
        })
    }

    async fn complete_inbound(&self, key: &str) -> Result<(), StoreError> {
        self.with(|s| {
            if let Some(p) = s.pending.remove(key) {
                s.pending_order.remove(&p.seq);
                s.remember_done(key, p.item.received);
            }
        })
    }

    async fn prune_inbox(&self, before: SystemTime) -> Result<u64, StoreError> {
        self.with(|s| {
            let mut pruned = 0;
            while let Some((when, k)) = s.done_order.front() {
                if *when >= before {
                    break;
                }
                s.done.remove(k);
                s.done_order.pop_front();
                pruned += 1;
            }
            pruned
        })
    }
}

#[async_trait]
impl Outbox for MemoryStore {
    async fn open_message(
        &self,
        id: &str,
        transport: &str,
        route: &Value,
        about: &str,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        self.with(|s| {
            if s.messages.contains_key(id) {
                return;
            }
            s.messages.insert(
                id.to_owned(),
                Message {
                    out: Outgoing {
                        id: id.to_owned(),
                        transport: transport.to_owned(),
                        route: route.clone(),
                        about: about.to_owned(),
                        body: Value::Null,
                        version: 0,
                        last: false,
                        delivered: 0,
                        state: Value::Null,
                        attempts: 0,
                        next_at: now,
                        given_up: false,
                        in_doubt: false,
                    },
                    lease: None,
                    changed: now,
                    queued: None,
                },
            );
        })
    }

    async fn put_message(&self, id: &str, body: &Value, last: bool) -> Result<(), StoreError> {
        self.with(|s| {
            if let Some(m) = s.messages.get_mut(id) {
                if !m.out.last {
                    m.out.body = body.clone();
                    m.out.version += 1;
                    m.out.last = last;
                    if last {
                        // A retry meant for older progress does not hold back the reply.
                        m.out.attempts = 0;
                    }
                    if m.queued.is_none() && !m.out.given_up {
                        s.seq += 1;
                        m.queued = Some(s.seq);
                        s.undelivered.insert(s.seq, id.to_owned());
                    }
                }
            }
        })
    }

    async fn lease_messages(
        &self,
        transport: &str,
        owner: &str,
        now: SystemTime,
        lease_until: SystemTime,
        limit: usize,
    ) -> Result<Vec<Outgoing>, StoreError> {
        self.with(|s| {
            let State {
                messages,
                undelivered,
                ..
            } = s;
            let mut out = Vec::new();
            for id in undelivered.values() {
                if out.len() >= limit {
                    break;
                }
                let Some(m) = messages.get_mut(id) else {
                    continue;
                };
                let free = m.lease.as_ref().is_none_or(|(_, until)| *until <= now);
                let due = m.out.version > m.out.delivered
                    && (m.out.next_at <= now || (m.out.last && m.out.attempts == 0));
                if m.out.transport == transport && free && due && !m.out.given_up {
                    // A lease still held here lapsed: its attempt was never recorded.
                    m.out.in_doubt |= m.lease.is_some();
                    m.lease = Some((owner.to_owned(), lease_until));
                    out.push(m.out.clone());
                }
            }
            out
        })
    }

    async fn record_attempt(
        &self,
        id: &str,
        owner: &str,
        attempt: &Attempt,
    ) -> Result<(), StoreError> {
        self.with(|s| {
            let Some(m) = s.messages.get_mut(id) else {
                return;
            };
            if m.lease.as_ref().is_some_and(|(o, _)| o != owner) {
                return;
            }
            m.lease = None;
            let done = match attempt {
                Attempt::Delivered {
                    version,
                    state,
                    next_at,
                } => {
                    m.out.delivered = m.out.delivered.max(*version);
                    m.out.state = state.clone();
                    m.out.attempts = 0;
                    m.out.next_at = *next_at;
                    m.out.in_doubt = false;
                    m.changed = *next_at;
                    m.out.delivered >= m.out.version
                }
                Attempt::Failed { retry_at } => {
                    m.out.attempts += 1;
                    match retry_at {
                        Some(at) => m.out.next_at = *at,
                        None => m.out.given_up = true,
                    }
                    m.out.given_up
                }
                Attempt::Unsure { retry_at } => {
                    m.out.attempts += 1;
                    m.out.next_at = *retry_at;
                    m.out.in_doubt = true;
                    false
                }
            };
            if done {
                if let Some(seq) = m.queued.take() {
                    s.undelivered.remove(&seq);
                }
                s.retire(id);
            }
        })
    }

    async fn message(&self, id: &str) -> Result<Option<Outgoing>, StoreError> {
        self.with(|s| s.messages.get(id).map(|m| m.out.clone()))
    }

    async fn undelivered(&self, transport: &str) -> Result<u64, StoreError> {
        self.with(|s| {
            s.messages
                .values()
                .filter(|m| {
                    m.out.transport == transport
                        && m.out.version > m.out.delivered
                        && !m.out.given_up
                })
                .count() as u64
        })
    }

    async fn prune_outbox(&self, before: SystemTime) -> Result<u64, StoreError> {
        self.with(|s| {
            let before_len = s.messages.len();
            s.messages.retain(|_, m| {
                let finished = m.out.last && m.out.delivered >= m.out.version;
                !((finished || m.out.given_up) && m.changed < before)
            });
            (before_len - s.messages.len()) as u64
        })
    }
}

#[async_trait]
impl Buttons for MemoryStore {
    async fn issue_buttons(&self, set: &ButtonSet) -> Result<(), StoreError> {
        self.with(|s| {
            // Button sets live minutes; once there are many, forget those expired a day
            // before this one (amortised: only every 1,024th set past the threshold).
            if s.buttons.len() >= BUTTON_SETS_BEFORE_PRUNING && s.buttons.len() % 1024 == 0 {
                let horizon = set
                    .expires
                    .checked_sub(Duration::from_secs(24 * 3600))
                    .unwrap_or(set.expires);
                s.buttons.retain(|_, (b, _)| b.expires > horizon);
            }
            s.buttons.insert(set.id.clone(), (set.clone(), None));
        })
    }

    async fn button_set(&self, set_id: &str) -> Result<Option<ButtonSet>, StoreError> {
        self.with(|s| s.buttons.get(set_id).map(|(set, _)| set.clone()))
    }

    async fn claim_button(
        &self,
        set_id: &str,
        index: usize,
        user: &str,
        channel: Option<&str>,
        now: SystemTime,
    ) -> Result<Claim, StoreError> {
        self.with(|s| match s.buttons.get_mut(set_id) {
            None => Claim::Unknown,
            Some((set, _)) if index >= set.actions.len() => Claim::Unknown,
            Some((set, _)) if set.channel.is_some() && set.channel.as_deref() != channel => {
                Claim::ElsewhereIssued
            }
            Some((_, Some(by))) => Claim::AlreadyUsed { by: by.clone() },
            Some((set, _)) if now > set.expires => Claim::Expired,
            Some((set, used)) => {
                *used = Some(user.to_owned());
                Claim::Claimed(set.actions[index].clone())
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

    async fn unlock(&self, env: &str, now: SystemTime) -> Result<Unlocked, StoreError> {
        self.with(|s| match s.locks.get(env) {
            None => Unlocked::NotLocked,
            Some(held) if held.run.is_some() && held.expires > now => {
                Unlocked::HeldByRun(held.clone())
            }
            Some(_) => s
                .locks
                .remove(env)
                .map_or(Unlocked::NotLocked, Unlocked::Released),
        })
    }

    async fn release(&self, lock: &Lock) -> Result<bool, StoreError> {
        self.with(|s| match s.locks.get(&lock.env) {
            Some(held) if same_lock(held, lock) && held.fence == lock.fence => {
                s.locks.remove(&lock.env);
                true
            }
            _ => false,
        })
    }

    async fn renew_lock(&self, lock: &Lock, until: SystemTime) -> Result<bool, StoreError> {
        self.with(|s| match s.locks.get_mut(&lock.env) {
            Some(held) if same_lock(held, lock) && held.fence == lock.fence => {
                held.expires = until;
                true
            }
            _ => false,
        })
    }

    async fn reclaim_lock(&self, lock: &Lock) -> Result<bool, StoreError> {
        self.with(|s| match s.locks.get_mut(&lock.env) {
            Some(held) if same_lock(held, lock) && held.run.is_some() && held.run == lock.run => {
                held.fence = lock.fence;
                held.expires = lock.expires;
                true
            }
            _ => false,
        })
    }

    async fn lock_of(&self, env: &str, now: SystemTime) -> Result<Option<Lock>, StoreError> {
        self.with(|s| s.locks.get(env).filter(|l| l.expires > now).cloned())
    }
}

/// Whether a run in `status` is still written to and taken over (not finished).
fn live(status: RunStatus) -> bool {
    matches!(status, RunStatus::Running | RunStatus::Pending)
}

/// Whether `held` is the lock `lock` was taken as (same holder, start and run).
fn same_lock(held: &Lock, lock: &Lock) -> bool {
    held.holder == lock.holder && held.since == lock.since && held.run == lock.run
}

#[async_trait]
impl Runs for MemoryStore {
    async fn start_run(&self, run: &Run, handoff: Option<&str>) -> Result<bool, StoreError> {
        self.with(|s| {
            if s.runs.contains_key(&run.id) {
                return false;
            }
            s.runs.insert(run.id.clone(), run.clone());
            s.run_order.push(run.id.clone());
            if let Some(key) = handoff {
                if let Some(p) = s.pending.remove(key) {
                    s.remember_done(key, p.item.received);
                }
                if let Some(start) = s.runs.get_mut(key) {
                    if start.status == RunStatus::Pending {
                        start.status = RunStatus::Done;
                    }
                }
            }
            true
        })
    }

    async fn finish_run(
        &self,
        id: &str,
        fence: u64,
        state: &Value,
        status: RunStatus,
    ) -> Result<bool, StoreError> {
        self.with(|s| match s.runs.get_mut(id) {
            Some(run) if run.fence == fence && live(run.status) => {
                run.state = state.clone();
                run.status = status;
                s.locks
                    .retain(|_, l| !(l.run.as_deref() == Some(id) && l.fence == fence));
                true
            }
            _ => false,
        })
    }

    async fn save_run(
        &self,
        id: &str,
        fence: u64,
        state: &Value,
        status: RunStatus,
        lease_until: SystemTime,
    ) -> Result<bool, StoreError> {
        self.with(|s| match s.runs.get_mut(id) {
            Some(run) if run.fence == fence && live(run.status) => {
                run.state = state.clone();
                run.status = status;
                run.lease_until = lease_until;
                true
            }
            _ => false,
        })
    }

    async fn take_over_runs(
        &self,
        owner: &str,
        now: SystemTime,
        lease_until: SystemTime,
        limit: usize,
    ) -> Result<Vec<Run>, StoreError> {
        self.with(|s| {
            let mut out = Vec::new();
            for id in &s.run_order {
                if out.len() >= limit {
                    break;
                }
                if let Some(run) = s.runs.get_mut(id) {
                    if live(run.status) && run.lease_until <= now {
                        run.fence += 1;
                        run.owner = owner.to_owned();
                        run.lease_until = lease_until;
                        out.push(run.clone());
                    }
                }
            }
            out
        })
    }

    async fn run(&self, id: &str) -> Result<Option<Run>, StoreError> {
        self.with(|s| s.runs.get(id).cloned())
    }

    async fn recent_runs(&self, env: Option<&str>, limit: usize) -> Result<Vec<Run>, StoreError> {
        self.with(|s| {
            s.run_order
                .iter()
                .rev()
                .filter_map(|id| s.runs.get(id))
                .filter(|r| env.is_none() || r.env.as_deref() == env)
                .take(limit)
                .cloned()
                .collect()
        })
    }

    async fn order_run(
        &self,
        id: &str,
        order: &str,
        user: &str,
        at: SystemTime,
    ) -> Result<Option<u64>, StoreError> {
        self.with(|s| {
            if !s
                .runs
                .get(id)
                .is_some_and(|r| r.status == RunStatus::Running)
            {
                return None;
            }
            // Orders of finished runs are of no use to anyone any more.
            let runs = &s.runs;
            s.orders.retain(|(run, _)| {
                runs.get(run)
                    .is_some_and(|r| r.status == RunStatus::Running)
            });
            s.orders_seq += 1;
            let seq = s.orders_seq;
            s.orders.push((
                id.to_owned(),
                RunOrder {
                    seq,
                    order: order.to_owned(),
                    user: user.to_owned(),
                    at,
                },
            ));
            Some(seq)
        })
    }

    async fn run_orders(&self, id: &str, after: u64) -> Result<Vec<RunOrder>, StoreError> {
        self.with(|s| {
            s.orders
                .iter()
                .filter(|(run, o)| run == id && o.seq > after)
                .map(|(_, o)| o.clone())
                .collect()
        })
    }
}

#[async_trait]
impl DeployQueue for MemoryStore {
    async fn enqueue(&self, item: &Queued) -> Result<u64, StoreError> {
        self.with(|s| {
            let seq = if item.seq == 0 {
                s.queue_seq += 1;
                s.queue_seq
            } else {
                s.queue_seq = s.queue_seq.max(item.seq);
                item.seq
            };
            s.queue.insert(
                seq,
                Queued {
                    seq,
                    ..item.clone()
                },
            );
            seq
        })
    }

    async fn queued(&self, env: Option<&str>) -> Result<Vec<Queued>, StoreError> {
        self.with(|s| {
            s.queue
                .values()
                .filter(|q| env.is_none_or(|e| q.env == e))
                .cloned()
                .collect()
        })
    }

    async fn dequeue(&self, id: &str, start: Option<&Run>) -> Result<Option<Queued>, StoreError> {
        self.with(|s| {
            let seq = s.queue.values().find(|q| q.id == id).map(|q| q.seq)?;
            let item = s.queue.remove(&seq)?;
            if let Some(run) = start {
                if !s.runs.contains_key(&run.id) {
                    s.runs.insert(run.id.clone(), run.clone());
                    s.run_order.push(run.id.clone());
                }
            }
            Some(item)
        })
    }
}

#[async_trait]
impl AuditLog for MemoryStore {
    async fn append(&self, record: AuditRecord) -> Result<(), StoreError> {
        self.with(|s| {
            let seq = s.audit.len() as u64 + 1;
            let prev_hash = s
                .audit
                .last()
                .map_or_else(|| GENESIS.to_owned(), |r| r.hash.clone());
            let hash = chain_hash(
                self.audit_key.get().map(Vec::as_slice),
                seq,
                &prev_hash,
                &record,
            );
            s.audit.push(ChainedRecord {
                seq,
                record,
                prev_hash,
                hash,
            });
        })
    }

    async fn history(
        &self,
        env: Option<&str>,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.with(|s| {
            s.audit
                .iter()
                .rev()
                .map(|r| &r.record)
                .filter(|r| env.is_none() || r.env.as_deref() == env)
                .skip(offset)
                .take(limit)
                .cloned()
                .collect()
        })
    }

    async fn chain(&self, from: u64, limit: usize) -> Result<Vec<ChainedRecord>, StoreError> {
        self.with(|s| {
            s.audit
                .iter()
                .skip(from.saturating_sub(1) as usize)
                .take(limit)
                .cloned()
                .collect()
        })
    }

    async fn head(&self) -> Result<Option<(u64, String)>, StoreError> {
        self.with(|s| s.audit.last().map(|r| (r.seq, r.hash.clone())))
    }
}

#[async_trait]
impl ProbeLog for MemoryStore {
    async fn record_probes(&self, records: &[ProbeRecord]) -> Result<(), StoreError> {
        self.with(|s| {
            for r in records {
                let log = s.probes.entry(r.target.clone()).or_default();
                // Rounds arrive in order; keep the log sorted if one does not.
                let at = log.partition_point(|p| p.at <= r.at);
                log.insert(at, r.clone());
            }
        })
    }

    async fn probes(
        &self,
        target: &str,
        since: SystemTime,
        until: SystemTime,
        limit: usize,
    ) -> Result<Vec<ProbeRecord>, StoreError> {
        self.with(|s| {
            s.probes
                .get(target)
                .map(|log| {
                    log.iter()
                        .filter(|p| p.at >= since && p.at < until)
                        .take(limit)
                        .cloned()
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    async fn latest_probes(&self) -> Result<Vec<ProbeRecord>, StoreError> {
        self.with(|s| {
            // Newest by probe time: what a replica held back can be written late.
            s.probes
                .values()
                .filter_map(|l| l.iter().max_by_key(|p| p.at).cloned())
                .collect()
        })
    }

    async fn prune_probes(&self, before: SystemTime) -> Result<u64, StoreError> {
        self.with(|s| {
            let mut gone = 0;
            for log in s.probes.values_mut() {
                while log.front().is_some_and(|p| p.at < before) {
                    log.pop_front();
                    gone += 1;
                }
            }
            s.probes.retain(|_, log| !log.is_empty());
            gone
        })
    }
}

#[async_trait]
impl Watches for MemoryStore {
    async fn watch_of(&self, target: &str) -> Result<Option<Watch>, StoreError> {
        self.with(|s| s.watches.get(target).cloned())
    }

    async fn watches(&self) -> Result<Vec<Watch>, StoreError> {
        self.with(|s| s.watches.values().cloned().collect())
    }

    async fn save_watch(&self, watch: &Watch) -> Result<(), StoreError> {
        self.with(|s| {
            s.watches.insert(watch.target.clone(), watch.clone());
        })
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.with(|_| ())
    }

    async fn prune_history(&self, before: SystemTime) -> Result<u64, StoreError> {
        let mut gone = self.with(|s| {
            let buttons = s.buttons.len();
            s.buttons.retain(|_, (set, _)| set.expires >= before);
            // The newest finished run of each environment and action stays.
            let mut newest: HashMap<(Option<String>, String), (SystemTime, String)> =
                HashMap::new();
            for r in s.runs.values() {
                if matches!(r.status, RunStatus::Done | RunStatus::Failed) {
                    let key = (r.env.clone(), r.action.clone());
                    let entry = newest
                        .entry(key)
                        .or_insert_with(|| (r.started, r.id.clone()));
                    if r.started > entry.0 {
                        *entry = (r.started, r.id.clone());
                    }
                }
            }
            let keep: HashSet<String> = newest.into_values().map(|(_, id)| id).collect();
            let runs = s.runs.len();
            s.runs.retain(|id, r| {
                !matches!(r.status, RunStatus::Done | RunStatus::Failed)
                    || r.started >= before
                    || keep.contains(id)
            });
            (buttons - s.buttons.len() + runs - s.runs.len()) as u64
        })?;
        gone += self.with_approvals(|a| {
            let n = a.len();
            a.retain(|_, r| r.expires >= before);
            (n - a.len()) as u64
        })?;
        Ok(gone)
    }
}

impl MemoryStore {
    fn with_approvals<T>(
        &self,
        f: impl FnOnce(&mut HashMap<String, Approval>) -> T,
    ) -> Result<T, StoreError> {
        let mut guard = self
            .approvals
            .lock()
            .map_err(|_| StoreError::Failed("the memory store is poisoned".into()))?;
        Ok(f(&mut guard))
    }
}

#[async_trait]
impl Approvals for MemoryStore {
    async fn request_approval(&self, approval: &Approval) -> Result<(), StoreError> {
        self.with_approvals(|a| {
            if a.contains_key(&approval.id) {
                return Err(StoreError::Failed("that approval id is taken".into()));
            }
            a.insert(approval.id.clone(), approval.clone());
            Ok(())
        })?
    }

    async fn approval(&self, id: &str) -> Result<Option<Approval>, StoreError> {
        self.with_approvals(|a| a.get(id).cloned())
    }

    async fn vote(
        &self,
        id: &str,
        user: &str,
        decision: &Decision,
        now: SystemTime,
        start: Option<&Run>,
    ) -> Result<Vote, StoreError> {
        self.with_approvals(|a| {
            let Some(current) = a.get(id) else {
                return Ok(Vote::Unknown);
            };
            let (vote, next) = vote_on(current, user, decision, now);
            if let (Vote::Approved(_), Some(run)) = (&vote, start) {
                // The request and the run that carries it out change together.
                self.with(|s| {
                    if !s.runs.contains_key(&run.id) {
                        s.runs.insert(run.id.clone(), run.clone());
                        s.run_order.push(run.id.clone());
                    }
                })?;
            }
            if let Some(next) = next {
                a.insert(id.to_owned(), next);
            }
            Ok(vote)
        })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inbound(key: &str, at: SystemTime) -> Inbound {
        Inbound {
            key: key.into(),
            transport: "slack".into(),
            payload: Value::Null,
            received: at,
        }
    }

    #[tokio::test]
    async fn under_load_the_outbox_keeps_what_is_owed_and_only_the_newest_delivered() {
        let store = MemoryStore::new();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let route = serde_json::json!({"channel": "D1"});
        let n = MAX_FINISHED + 500;
        for i in 0..n {
            let id = format!("m{i}");
            store
                .open_message(&id, "slack", &route, "U1: help", t0)
                .await
                .expect("open");
            store
                .put_message(&id, &serde_json::json!({"text": "help"}), true)
                .await
                .expect("put");
        }
        // One message still owed, behind every other.
        store
            .open_message("owed", "slack", &route, "U1: help", t0)
            .await
            .expect("open");
        store
            .put_message("owed", &serde_json::json!({"text": "help"}), true)
            .await
            .expect("put");
        let mut sent = 0;
        loop {
            let due = store
                .lease_messages("slack", "a", t0, t0 + Duration::from_secs(30), 256)
                .await
                .expect("lease");
            let Some(last) = due.last().map(|m| m.id.clone()) else {
                break;
            };
            for m in due {
                if m.id == "owed" {
                    continue;
                }
                let done = Attempt::Delivered {
                    version: m.version,
                    state: Value::Null,
                    next_at: t0,
                };
                store
                    .record_attempt(&m.id, "a", &done)
                    .await
                    .expect("record");
                sent += 1;
            }
            if last == "owed" {
                break;
            }
        }
        assert_eq!(sent, n);
        let kept = store
            .with(|s| (s.messages.len(), s.undelivered.len()))
            .expect("state");
        assert_eq!(
            kept,
            (MAX_FINISHED + 1, 1),
            "the newest delivered messages and the one still owed are kept"
        );
        assert!(store.message("owed").await.expect("read").is_some());
        assert!(
            store.message("m0").await.expect("read").is_none(),
            "the oldest went"
        );
        let newest = format!("m{}", n - 1);
        assert!(store.message(&newest).await.expect("read").is_some());
    }

    #[tokio::test]
    async fn a_processed_delivery_is_remembered_until_its_window_passes() {
        let store = MemoryStore::new();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let lease = t0 + Duration::from_secs(60);
        assert_eq!(
            store.admit(&inbound("Ev1", t0), "a", lease).await,
            Ok(Admitted::New)
        );
        store.complete_inbound("Ev1").await.expect("complete");
        assert_eq!(
            store.admit(&inbound("Ev1", t0), "a", lease).await,
            Ok(Admitted::Duplicate)
        );
        // Once the window has passed Ev1 is forgotten (Slack stopped retrying long before).
        let later = t0 + DELIVERY_MEMORY + Duration::from_secs(1);
        store
            .admit(&inbound("Ev2", later), "a", later)
            .await
            .expect("admit");
        store.complete_inbound("Ev2").await.expect("complete");
        assert_eq!(
            store.admit(&inbound("Ev1", later), "a", later).await,
            Ok(Admitted::New)
        );
    }

    #[tokio::test]
    async fn the_oldest_keys_go_first_when_the_cap_is_reached() {
        let store = MemoryStore::new();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        for i in 0..=MAX_DELIVERIES {
            let key = format!("Ev{i}");
            store
                .admit(&inbound(&key, t0), "a", t0)
                .await
                .expect("admit");
            store.complete_inbound(&key).await.expect("complete");
        }
        let newest = format!("Ev{MAX_DELIVERIES}");
        assert_eq!(
            store.admit(&inbound(&newest, t0), "a", t0).await,
            Ok(Admitted::Duplicate),
            "recent keys stay"
        );
        assert_eq!(
            store.admit(&inbound("Ev0", t0), "a", t0).await,
            Ok(Admitted::New),
            "the oldest was evicted"
        );
    }
}
