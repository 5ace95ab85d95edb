//! When probes add up to a change: `confirm` agreeing probes that differ from the
//! confirmed state. A target that flaps back before that changes nothing.

use std::time::{Duration, SystemTime};

use crate::ports::watch::{Health, Incident, ProbeRecord, Watch};

/// What a confirmed change means for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    /// Confirmed not ok: an incident opens and is announced.
    Down,
    /// Confirmed ok after an incident: it is resolved, with the downtime.
    Recovered {
        /// From the first failing probe to the first ok one.
        downtime: Duration,
    },
    /// Any other confirmed change (the first state seen, pending and back): recorded
    /// and sent to webhooks, not announced.
    Quiet,
}

/// A confirmed change of one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The state before (`None`: never confirmed before).
    pub from: Option<Health>,
    /// The state now, as saved.
    pub watch: Watch,
    /// What it means.
    pub kind: ChangeKind,
    /// The incident it opened or resolved, when it did.
    pub incident: Option<Incident>,
}

/// The run of agreeing probes that differ from the confirmed state.
#[derive(Debug, Clone)]
struct Streak {
    health: Health,
    since: SystemTime,
    reason: Option<String>,
    count: u32,
}

/// One target's confirmed state and the probes that may change it.
#[derive(Debug, Clone)]
pub struct Tracker {
    target: String,
    confirmed: Option<Watch>,
    streak: Option<Streak>,
}

impl Tracker {
    /// A tracker starting from the stored state (`None`: nothing confirmed yet).
    pub fn new(target: impl Into<String>, confirmed: Option<Watch>) -> Self {
        Self {
            target: target.into(),
            confirmed,
            streak: None,
        }
    }

    /// The confirmed state.
    pub fn confirmed(&self) -> Option<&Watch> {
        self.confirmed.as_ref()
    }

    /// Takes one probe; returns the change when it is the `confirm`-th agreeing one.
    /// `incident_message` names the announcement of an incident this change opens.
    pub fn observe(
        &mut self,
        probe: &ProbeRecord,
        confirm: u32,
        incident_message: impl FnOnce(SystemTime) -> String,
    ) -> Option<Change> {
        if self.confirmed.as_ref().map(|w| w.health) == Some(probe.health) {
            self.streak = None;
            return None;
        }
        let streak = match self.streak.take() {
            Some(mut s) if s.health == probe.health => {
                s.count += 1;
                s.reason = probe.reason.clone().or(s.reason);
                s
            }
            _ => Streak {
                health: probe.health,
                since: probe.at,
                reason: probe.reason.clone(),
                count: 1,
            },
        };
        if streak.count < confirm.max(1) {
            self.streak = Some(streak);
            return None;
        }
        let before = self.confirmed.take();
        let from = before.as_ref().map(|w| w.health);
        let open = before.and_then(|w| w.incident);
        let (kind, incident, keep) = match (streak.health, open) {
            (Health::NotOk, None) => {
                let incident = Incident {
                    message: incident_message(streak.since),
                    since: streak.since,
                    reason: streak.reason.clone().unwrap_or_else(|| "not ok".into()),
                };
                (ChangeKind::Down, Some(incident.clone()), Some(incident))
            }
            (Health::Ok, Some(open)) => {
                let downtime = streak.since.duration_since(open.since).unwrap_or_default();
                (ChangeKind::Recovered { downtime }, Some(open), None)
            }
            // Pending during an incident keeps it open; not ok again keeps it too.
            (_, Some(open)) => (ChangeKind::Quiet, None, Some(open)),
            (_, None) => (ChangeKind::Quiet, None, None),
        };
        let watch = Watch {
            target: self.target.clone(),
            health: streak.health,
            since: streak.since,
            reason: streak.reason,
            incident: keep,
        };
        self.confirmed = Some(watch.clone());
        Some(Change {
            from,
            watch,
            kind,
            incident,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(at: u64, health: Health) -> ProbeRecord {
        ProbeRecord {
            target: "instance:staging/api/green".into(),
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(at),
            health,
            latency: None,
            status: None,
            version: None,
            reason: (health == Health::NotOk).then(|| "down: connection refused".into()),
            count: 1,
        }
    }

    fn run(tracker: &mut Tracker, probes: &[(u64, Health)]) -> Vec<Change> {
        probes
            .iter()
            .filter_map(|(at, h)| tracker.observe(&probe(*at, *h), 3, |s| format!("m{s:?}")))
            .collect()
    }

    #[test]
    fn three_agreeing_probes_confirm_a_change_once() {
        use Health::*;
        let mut t = Tracker::new("x", None);
        let changes = run(&mut t, &[(0, Ok), (10, Ok), (20, Ok), (30, Ok)]);
        assert_eq!(changes.len(), 1);
        assert_eq!(
            changes[0].kind,
            ChangeKind::Quiet,
            "the first state is not news"
        );
        let changes = run(
            &mut t,
            &[
                (40, NotOk),
                (50, NotOk),
                (60, NotOk),
                (70, NotOk),
                (80, NotOk),
            ],
        );
        assert_eq!(changes.len(), 1, "one announcement");
        assert_eq!(changes[0].kind, ChangeKind::Down);
        assert_eq!(
            changes[0].watch.since,
            SystemTime::UNIX_EPOCH + Duration::from_secs(40),
            "down since the first failing probe"
        );
        let changes = run(&mut t, &[(90, Ok), (100, Ok), (110, Ok)]);
        assert_eq!(
            changes.iter().map(|c| c.kind.clone()).collect::<Vec<_>>(),
            vec![ChangeKind::Recovered {
                downtime: Duration::from_secs(50)
            }]
        );
    }

    #[test]
    fn flapping_below_the_threshold_changes_nothing() {
        use Health::*;
        let mut t = Tracker::new("x", None);
        run(&mut t, &[(0, Ok), (1, Ok), (2, Ok)]);
        let changes = run(
            &mut t,
            &[
                (3, NotOk),
                (4, NotOk),
                (5, Ok),
                (6, NotOk),
                (7, Ok),
                (8, NotOk),
                (9, NotOk),
                (10, Ok),
            ],
        );
        assert!(changes.is_empty(), "{changes:?}");
    }

    #[test]
    fn pending_during_an_incident_keeps_it_open() {
        use Health::*;
        let mut t = Tracker::new("x", None);
        run(&mut t, &[(0, NotOk), (1, NotOk), (2, NotOk)]);
        let changes = run(&mut t, &[(3, Pending), (4, Pending), (5, Pending)]);
        assert_eq!(changes[0].kind, ChangeKind::Quiet);
        assert!(changes[0].watch.incident.is_some());
        let changes = run(&mut t, &[(6, Ok), (7, Ok), (8, Ok)]);
        assert_eq!(
            changes[0].kind,
            ChangeKind::Recovered {
                downtime: Duration::from_secs(6)
            }
        );
    }
}
