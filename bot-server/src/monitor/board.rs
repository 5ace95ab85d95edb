//! The board's live picture: one box per target (state, last change, version), kept
//! by whichever replica serves `/board`, and a broadcast of every change for
//! `GET /api/v1/events`. Only states: never URLs, reasons or secrets.

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

struct Inner {
    boxes: Mutex<(Vec<BoardBox>, Option<SystemTime>)>,
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
                boxes: Mutex::new((Vec::new(), None)),
                tx,
            }),
        }
    }

    fn boxes(&self) -> std::sync::MutexGuard<'_, (Vec<BoardBox>, Option<SystemTime>)> {
        match self.inner.boxes.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Shows `targets`, in order; boxes of targets still there keep their state.
    pub fn set_targets(&self, targets: &[Target]) {
        let snapshot = {
            let mut guard = self.boxes();
            let old = std::mem::take(&mut guard.0);
            guard.0 = targets
                .iter()
                .map(|t| {
                    let before = old.iter().find(|b| b.id == t.id);
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
            guard.0.clone()
        };
        let _ = self.inner.tx.send(BoardEvent::Snapshot(snapshot));
    }

    /// Takes a probe result; a box whose state or version changed is broadcast.
    pub fn observe(&self, probe: &ProbeRecord) {
        let changed = {
            let mut guard = self.boxes();
            let Some(b) = guard.0.iter_mut().find(|b| b.id == probe.target) else {
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
        self.boxes().0.clone()
    }

    /// Changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<BoardEvent> {
        self.inner.tx.subscribe()
    }

    /// Whether a monitor feeds this board (the page says so when not).
    pub fn monitored(&self) -> bool {
        self.boxes().1.is_some()
    }

    /// Records that a monitor feeds the board since `at`.
    pub fn set_monitored(&self, at: Option<SystemTime>) {
        self.boxes().1 = at;
    }
}
