//! Which probe results the probe log keeps: one that differs from its target's last
//! written result at once, and otherwise one point per target per sampling period
//! that stands for the probes since ([`ProbeRecord::count`]).
//!
//! So 5,000 targets that keep saying the same cost a row per target per period, and
//! charts still count every probe: `chart uptime` adds the counts up, `chart latency`
//! weighs each point by its count, and a change (health, status, version or reason)
//! is in the log as soon as it is seen, with the run before it closed by its last probe.

use std::time::{Duration, SystemTime};

use crate::ports::watch::{Health, ProbeRecord};

/// The sampling period of the probe log: a target that keeps saying the same is
/// written once a minute (every probe when probed less often).
pub const SAMPLE: Duration = Duration::from_secs(60);

/// A latency this far from the written one (and more than twice or less than half
/// of it) is news too: a spike is its own point on `chart latency`.
const LATENCY_STEP: Duration = Duration::from_millis(100);

/// What a written result said, to tell whether the next one says something else.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Said {
    health: Health,
    status: Option<u16>,
    version: Option<String>,
    reason: Option<String>,
    latency: Option<Duration>,
}

impl Said {
    fn of(p: &ProbeRecord) -> Self {
        Self {
            health: p.health,
            status: p.status,
            version: p.version.clone(),
            reason: p.reason.clone(),
            latency: p.latency,
        }
    }

    fn same(&self, p: &ProbeRecord) -> bool {
        self.health == p.health
            && self.status == p.status
            && self.version == p.version
            && self.reason == p.reason
            && !far_apart(self.latency, p.latency)
    }
}

/// Whether two latencies differ by more than [`LATENCY_STEP`] and by more than twice.
fn far_apart(a: Option<Duration>, b: Option<Duration>) -> bool {
    let (Some(a), Some(b)) = (a, b) else {
        return false;
    };
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    high.saturating_sub(low) > LATENCY_STEP && high > low.saturating_mul(2)
}

/// One target's place in the probe log: what was written last and when, and the
/// newest probe not written yet with how many it stands for.
#[derive(Debug, Clone, Default)]
pub struct Sampler {
    written: Option<(Said, SystemTime)>,
    held: Option<ProbeRecord>,
}

impl Sampler {
    /// A target nothing is written of yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the target's next probe; pushes onto `out` what the log records now
    /// (nothing, the probe, or the run it ends and the probe), with `period` between
    /// points of a target that keeps saying the same.
    pub fn take(&mut self, mut probe: ProbeRecord, period: Duration, out: &mut Vec<ProbeRecord>) {
        probe.count = probe.count.max(1);
        match &mut self.written {
            Some((said, at)) if said.same(&probe) => {
                if let Some(held) = self.held.take() {
                    probe.count = probe.count.saturating_add(held.count);
                }
                if probe.at.duration_since(*at).unwrap_or_default() >= period {
                    *at = probe.at;
                    out.push(probe);
                } else {
                    self.held = Some(probe);
                }
            }
            _ => {
                // Something else: the run before ends with its last probe.
                out.extend(self.held.take());
                self.written = Some((Said::of(&probe), probe.at));
                out.push(probe);
            }
        }
    }

    /// Pushes the probe held back, if any (when the monitor stops).
    pub fn flush(&mut self, out: &mut Vec<ProbeRecord>) {
        out.extend(self.held.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(at: u64, health: Health, latency: u64) -> ProbeRecord {
        ProbeRecord {
            target: "instance:staging/api/green".into(),
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(at),
            health,
            latency: Some(Duration::from_millis(latency)),
            status: Some(200),
            version: Some("1.0.0".into()),
            reason: (health == Health::NotOk).then(|| "status 503".into()),
            count: 1,
        }
    }

    /// `(at, health, count)` of what is written for probes every 10 s.
    fn written(probes: &[(u64, Health)]) -> Vec<(u64, Health, u32)> {
        let mut s = Sampler::new();
        let mut out = Vec::new();
        for (at, h) in probes {
            s.take(probe(*at, *h, 20), SAMPLE, &mut out);
        }
        s.flush(&mut out);
        out.iter()
            .map(|p| {
                let at =
                    p.at.duration_since(SystemTime::UNIX_EPOCH)
                        .unwrap_or_default();
                (at.as_secs(), p.health, p.count)
            })
            .collect()
    }

    #[test]
    fn a_target_that_keeps_saying_the_same_is_written_once_a_period() {
        use Health::*;
        let probes: Vec<(u64, Health)> = (0..=18).map(|i| (i * 10, Ok)).collect();
        assert_eq!(
            written(&probes),
            vec![(0, Ok, 1), (60, Ok, 6), (120, Ok, 6), (180, Ok, 6)],
            "a point a minute, each counting the probes since the one before"
        );
    }

    #[test]
    fn a_change_is_written_at_once_after_the_run_it_ends() {
        use Health::*;
        assert_eq!(
            written(&[
                (0, Ok),
                (10, Ok),
                (20, Ok),
                (30, NotOk),
                (40, NotOk),
                (50, Ok)
            ]),
            vec![
                (0, Ok, 1),
                (20, Ok, 2),
                (30, NotOk, 1),
                (40, NotOk, 1),
                (50, Ok, 1)
            ],
            "every probe is counted once, and each change is its own point"
        );
    }

    #[test]
    fn a_new_version_is_written_at_once() {
        let mut s = Sampler::new();
        let mut out = Vec::new();
        s.take(probe(0, Health::Ok, 1), SAMPLE, &mut out);
        s.take(probe(10, Health::Ok, 1), SAMPLE, &mut out);
        let mut newer = probe(20, Health::Ok, 1);
        newer.version = Some("1.0.1".into());
        s.take(newer, SAMPLE, &mut out);
        assert_eq!(
            out.iter().map(|p| p.version.as_deref()).collect::<Vec<_>>(),
            vec![Some("1.0.0"), Some("1.0.0"), Some("1.0.1")]
        );
    }

    #[test]
    fn a_latency_spike_is_its_own_point() {
        let mut s = Sampler::new();
        let mut out = Vec::new();
        for (at, ms) in [(0, 20), (10, 25), (20, 900), (30, 22), (40, 30)] {
            s.take(probe(at, Health::Ok, ms), SAMPLE, &mut out);
        }
        let latencies: Vec<u64> = out
            .iter()
            .filter_map(|p| p.latency.map(|l| l.as_millis() as u64))
            .collect();
        assert_eq!(
            latencies,
            vec![20, 25, 900, 22],
            "the spike and the return from it are written at once; a few ms either way is not news"
        );
    }

    #[test]
    fn targets_probed_less_often_than_the_period_are_written_every_time() {
        use Health::*;
        assert_eq!(
            written(&[(0, Ok), (60, Ok), (120, Ok)]),
            vec![(0, Ok, 1), (60, Ok, 1), (120, Ok, 1)]
        );
    }
}
