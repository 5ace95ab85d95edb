//! What a confirmed change says: the Slack announcement and its recovery edit, the
//! PagerDuty Events API v2 trigger and resolve, and the webhook event.

use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use crate::monitor::{Change, ChangeKind, Target};
use crate::ports::watch::{Health, Incident};
use crate::reply::{Outcome, Reply};

/// A downtime as people say it: `12s`, `4m 12s`, `2h 5m`, `3d 4h`.
pub fn downtime(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// A time in RFC 3339, to the second, UTC.
pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// `15:03:12 UTC` (with the date when it is not `now`'s day).
fn clock(t: SystemTime, now: SystemTime) -> String {
    let full = timestamp(t);
    let today = timestamp(now);
    let (date, time) = full.split_once('T').unwrap_or((&full, ""));
    let time = time.trim_end_matches('Z');
    if today.starts_with(date) {
        format!("{time} UTC")
    } else {
        format!("{date} {time} UTC")
    }
}

/// The announcement of an incident: what, since when, why.
pub fn announcement(target: &Target, incident: &Incident, now: SystemTime) -> Reply {
    Reply::message(
        Outcome::Failed,
        format!(
            ":red_circle: *{}* is not ok since {}: {}",
            target.name,
            clock(incident.since, now),
            crate::text::escape(&incident.reason)
        ),
    )
}

/// The announcement edited on recovery, with the downtime.
pub fn recovery(
    target: &Target,
    incident: &Incident,
    downtime_: Duration,
    now: SystemTime,
) -> Reply {
    Reply::message(
        Outcome::Done,
        format!(
            ":large_green_circle: *{}* recovered after {} (not ok since {}: {})",
            target.name,
            downtime(downtime_),
            clock(incident.since, now),
            crate::text::escape(&incident.reason)
        ),
    )
}

/// PagerDuty's `dedup_key` for a target: one per target, so a trigger and its resolve meet.
pub fn dedup_key(target: &Target) -> String {
    format!("crossroads:{}", target.id)
}

/// The PagerDuty Events API v2 event for a change (`trigger` on down, `resolve` on
/// recovery), without `routing_key` (added when it is sent, so the key is never stored).
pub fn pagerduty_event(target: &Target, change: &Change) -> Option<Value> {
    match &change.kind {
        ChangeKind::Down => {
            let incident = change.incident.as_ref()?;
            Some(json!({
                "event_action": "trigger",
                "dedup_key": dedup_key(target),
                "payload": {
                    "summary": format!("{} is not ok: {}", target.name, incident.reason),
                    "source": "crossroads",
                    "severity": "critical",
                    "timestamp": timestamp(incident.since),
                    "component": target.name,
                    "group": target.group,
                    "custom_details": { "reason": incident.reason, "target": target.id },
                },
            }))
        }
        ChangeKind::Recovered { .. } => Some(json!({
            "event_action": "resolve",
            "dedup_key": dedup_key(target),
        })),
        ChangeKind::Quiet => None,
    }
}

/// The webhook event for a confirmed change.
pub fn webhook_event(target: &Target, change: &Change) -> Value {
    let event = match change.kind {
        ChangeKind::Down => "down",
        ChangeKind::Recovered { .. } => "recovered",
        ChangeKind::Quiet => "changed",
    };
    let downtime_secs = match change.kind {
        ChangeKind::Recovered { downtime } => Some(downtime.as_secs()),
        _ => None,
    };
    json!({
        "event": event,
        "target": target.id,
        "name": target.name,
        "group": target.group,
        "state": change.watch.health.as_str(),
        "previous": change.from.map(Health::as_str),
        "since": timestamp(change.watch.since),
        "reason": change.watch.reason,
        "downtime_secs": downtime_secs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downtimes_read_like_people_say_them() {
        assert_eq!(downtime(Duration::from_secs(12)), "12s");
        assert_eq!(downtime(Duration::from_secs(252)), "4m 12s");
        assert_eq!(downtime(Duration::from_secs(7500)), "2h 5m");
        assert_eq!(
            downtime(Duration::from_secs(3 * 86_400 + 4 * 3600)),
            "3d 4h"
        );
    }
}
