//! The board's live picture: one box per target (state, last change, version), kept
//! by whichever replica serves `/board`, and a broadcast of every change for
//! `GET /api/v1/events`. Only states: never URLs, reasons or secrets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bot_core::monitor::words::timestamp;
use bot_core::monitor::Target;
use bot_core::ports::watch::{Health, ProbeRecord};
use serde::Serialize;
use tokio::sync::broadcast;

/// One box of the board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BoardBox {
    /// Target id (`instance:env/pool/member`, `check:name`).
    pub id: String,
    /// How people name it.
    pub name: String,
    /// Environment, or the check's group.
    pub group: String,
    /// Pool, for instances.
    pub pool: Option<String>,
    /// `ok`, `pending`, `not_ok`, or `unknown` before the first probe.
    pub state: &'static str,
    /// When the state last changed (RFC 3339), when known.
    pub changed: Option<String>,
    /// The version the last probe read.
    pub version: Option<String>,
}

/// What `GET /api/v1/events` sends.
#[derive(Debug, Clone)]
pub enum BoardEvent {
    /// Every box (on connect, and when the targets change).
    Snapshot(Vec<BoardBox>),
    /// One box changed.
    Changed(BoardBox),
}

/// The boxes in order, where each target's box is, and since when a monitor feeds them.
#[derive(Default)]
struct Boxes {
    list: Vec<BoardBox>,
    at: HashMap<String, usize>,
    monitored: Option<SystemTime>,
}

struct Inner {
    boxes: Mutex<Boxes>,
    tx: broadcast::Sender<BoardEvent>,
}

/// The board; cheap to clone (clones share it).
#[derive(Clone)]
pub struct Board {
    inner: Arc<Inner>,
}

impl Default for Board {
    fn default() -> Self {
        Self::new()
    }
}

fn state(h: Health) -> &'static str {
    h.as_str()
}

impl Board {
    /// An empty board.
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(1024);
        Self {
            inner: Arc::new(Inner {
                boxes: Mutex::new(Boxes::default()),
                tx,
            }),
        }
    }

    fn boxes(&self) -> std::sync::MutexGuard<'_, Boxes> {
        match self.inner.boxes.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Shows `targets`, in order; boxes of targets still there keep their state.
    pub fn set_targets(&self, targets: &[Target]) {
        let snapshot = {
            let mut guard = self.boxes();
            let old = std::mem::take(&mut guard.list);
            let old_at = std::mem::take(&mut guard.at);
            guard.list = targets
                .iter()
                .map(|t| {
                    let before = old_at.get(&t.id).and_then(|&i| old.get(i));
                    BoardBox {
                        id: t.id.clone(),
                        name: t.name.clone(),
                        group: t.group.clone(),
                        pool: t.pool.clone(),
                        state: before.map_or("unknown", |b| b.state),
                        changed: before.and_then(|b| b.changed.clone()),
                        version: before.and_then(|b| b.version.clone()),
                    }
                })
                .collect();
            guard.at = targets
                .iter()
                .enumerate()
                .map(|(i, t)| (t.id.clone(), i))
                .collect();
            guard.list.clone()
        };
        let _ = self.inner.tx.send(BoardEvent::Snapshot(snapshot));
    }

    /// Takes a probe result; a box whose state or version changed is broadcast.
    pub fn observe(&self, probe: &ProbeRecord) {
        let changed = {
            let mut guard = self.boxes();
            let Some(&i) = guard.at.get(&probe.target) else {
                return;
            };
            let Some(b) = guard.list.get_mut(i) else {
                return;
            };
            let new_state = state(probe.health);
            if b.state == new_state && b.version == probe.version {
                return;
            }
            if b.state != new_state {
                b.state = new_state;
                b.changed = Some(timestamp(probe.at));
            }
            b.version.clone_from(&probe.version);
            b.clone()
        };
        let _ = self.inner.tx.send(BoardEvent::Changed(changed));
    }

    /// Every box, in order.
    pub fn snapshot(&self) -> Vec<BoardBox> {
        self.boxes().list.clone()
    }

    /// Changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<BoardEvent> {
        self.inner.tx.subscribe()
    }

    /// Whether a monitor feeds this board (the page says so when not).
    pub fn monitored(&self) -> bool {
        self.boxes().monitored.is_some()
    }

    /// Records that a monitor feeds the board since `at`.
    pub fn set_monitored(&self, at: Option<SystemTime>) {
        self.boxes().monitored = at;
    }
}
