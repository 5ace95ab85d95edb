//! One probe of one target, judged: ok, pending or "not ok, because …".

use std::time::{Duration, SystemTime};

use crate::config::CheckSpec;
use crate::monitor::{Recipe, Target};
use crate::ports::watch::{Health, ProbeRecord};
use crate::ports::{HttpSnapshot, Probe, ProbeError};
use crate::steps::health::evaluate;

/// Probes `target` once with `timeout` (always returns by then) and judges the answer.
pub async fn judge(
    probe: &dyn Probe,
    target: &Target,
    timeout: Duration,
    at: SystemTime,
) -> ProbeRecord {
    let answer = match tokio::time::timeout(timeout, probe.get(&target.url, timeout)).await {
        Ok(a) => a,
        Err(_) => Err(ProbeError::Timeout(timeout)),
    };
    let (health, reason, version) = match &target.recipe {
        Recipe::Instance(recipe) => {
            let verdict = evaluate(recipe, &answer);
            let health = if verdict.healthy {
                Health::Ok
            } else {
                Health::NotOk
            };
            (health, verdict.problem(), verdict.version)
        }
        Recipe::Check(check) => {
            let (health, reason) = judge_check(check, &answer);
            (health, reason, None)
        }
    };
    let latency = match &answer {
        Ok(s) => Some(s.latency),
        Err(ProbeError::Timeout(d)) => Some(*d),
        Err(_) => None,
    };
    ProbeRecord {
        target: target.id.clone(),
        at,
        health,
        latency,
        status: answer.as_ref().ok().map(|s| s.status),
        version,
        reason,
        count: 1,
    }
}

fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A check's recipe applied to an answer: the status code first, then the field
/// `pointer` names against the `ok` and `pending` lists.
pub fn judge_check(
    check: &CheckSpec,
    answer: &Result<HttpSnapshot, ProbeError>,
) -> (Health, Option<String>) {
    let snap = match answer {
        Ok(s) => s,
        Err(e) => return (Health::NotOk, Some(format!("down: {e}"))),
    };
    if snap.status != check.status {
        return (
            Health::NotOk,
            Some(format!(
                "status {} (expected {})",
                snap.status, check.status
            )),
        );
    }
    let Some(pointer) = &check.pointer else {
        return (Health::Ok, None);
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&snap.body) else {
        return (Health::NotOk, Some("the answer is not JSON".into()));
    };
    let Some(found) = json.pointer(pointer).map(text) else {
        return (Health::NotOk, Some(format!("`{pointer}` is missing")));
    };
    if check.ok.contains(&found) {
        (Health::Ok, None)
    } else if check.pending.contains(&found) {
        (Health::Pending, Some(format!("`{pointer}` is `{found}`")))
    } else {
        (Health::NotOk, Some(format!("`{pointer}` is `{found}`")))
    }
}
