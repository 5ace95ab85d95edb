//! Judging an instance by its health recipe: [`evaluate`] turns one probe's answer into
//! a [`Verdict`] (each check, the version, the latency); `probe` asks the instance. The
//! `health` command, `status`, the deploy health gate, the post-switch watch and the
//! monitor all judge the same way.

use std::time::Duration;

use crate::config::{HealthRecipe, Instance};
use crate::context::Ctx;
use crate::ports::{HttpSnapshot, ProbeError};
use crate::text::human;

/// One check of a recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked, e.g. `status 200`, `/status = "ok"`.
    pub name: String,
    /// Passed?
    pub ok: bool,
    /// What was seen.
    pub detail: String,
}

/// The verdict of one probe against a recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Every check passed.
    pub healthy: bool,
    /// No answer at all (timeout, refused): the reason.
    pub down: Option<String>,
    /// Each check.
    pub checks: Vec<Check>,
    /// Version read with the recipe's `version` pointer.
    pub version: Option<String>,
    /// Latency of the answer (or time spent until giving up).
    pub latency: Option<Duration>,
}

impl Verdict {
    /// One line saying what is wrong — `down: …` or `unhealthy: check (seen), …` —
    /// or `None` when healthy.
    pub fn problem(&self) -> Option<String> {
        if self.healthy {
            return None;
        }
        Some(match &self.down {
            Some(reason) => format!("down: {reason}"),
            None => {
                let failed: Vec<String> = self
                    .checks
                    .iter()
                    .filter(|c| !c.ok)
                    .map(|c| format!("{} ({})", c.name, c.detail))
                    .collect();
                format!("unhealthy: {}", failed.join(", "))
            }
        })
    }
}

/// The URL probed for an instance's health.
pub fn health_url(instance: &Instance) -> String {
    join_url(&instance.url, &instance.health.path)
}

/// Joins a base URL and a path without doubling slashes.
pub fn join_url(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Judges a probe result against `recipe`.
pub fn evaluate(recipe: &HealthRecipe, result: &Result<HttpSnapshot, ProbeError>) -> Verdict {
    let snap = match result {
        Err(e) => {
            let latency = match e {
                ProbeError::Timeout(d) => Some(*d),
                _ => None,
            };
            return Verdict {
                healthy: false,
                down: Some(e.to_string()),
                checks: vec![Check {
                    name: "answers".into(),
                    ok: false,
                    detail: e.to_string(),
                }],
                version: None,
                latency,
            };
        }
        Ok(s) => s,
    };
    let mut checks = vec![Check {
        name: format!("status {}", recipe.expect_status),
        ok: snap.status == recipe.expect_status,
        detail: format!("got {}", snap.status),
    }];
    let json: Option<serde_json::Value> = serde_json::from_str(&snap.body).ok();
    for (pointer, expected) in &recipe.json {
        let found = json.as_ref().and_then(|j| j.pointer(pointer));
        let ok = found.is_some_and(|f| f == expected || json_text(f) == json_text(expected));
        checks.push(Check {
            name: format!("{pointer} = {}", expected),
            ok,
            detail: match (&json, found) {
                (None, _) => "body is not JSON".into(),
                (Some(_), None) => "field missing".into(),
                (Some(_), Some(f)) => format!("got {f}"),
            },
        });
    }
    for needle in &recipe.contains {
        checks.push(Check {
            name: format!("body contains {needle:?}"),
            ok: snap.body.contains(needle.as_str()),
            detail: if snap.body.contains(needle.as_str()) {
                "found".into()
            } else {
                "not found".into()
            },
        });
    }
    if let Some(max) = recipe.max_latency {
        checks.push(Check {
            name: format!("latency ≤ {}", human(max)),
            ok: snap.latency <= max,
            detail: human(snap.latency),
        });
    }
    let version = recipe
        .version_pointer
        .as_ref()
        .and_then(|p| json.as_ref()?.pointer(p))
        .map(json_text);
    Verdict {
        healthy: checks.iter().all(|c| c.ok),
        down: None,
        checks,
        version,
        latency: Some(snap.latency),
    }
}

/// Probes one instance with its recipe.
pub(crate) async fn probe(ctx: &Ctx<'_>, instance: &Instance) -> Verdict {
    let timeout = ctx.config().settings.probe_timeout;
    let result = ctx.backends.probe.get(&health_url(instance), timeout).await;
    evaluate(&instance.health, &result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(status: u16, body: &str, ms: u64) -> Result<HttpSnapshot, ProbeError> {
        Ok(HttpSnapshot {
            status,
            body: body.into(),
            latency: Duration::from_millis(ms),
        })
    }

    fn recipe() -> HealthRecipe {
        HealthRecipe {
            json: vec![("/status".into(), serde_json::json!("ok"))],
            contains: vec!["ok".into()],
            max_latency: Some(Duration::from_millis(500)),
            version_pointer: Some("/version".into()),
            ..HealthRecipe::default()
        }
    }

    #[test]
    fn every_check_passes_on_a_good_answer() {
        let v = evaluate(
            &recipe(),
            &snap(200, r#"{"status":"ok","version":"1.2"}"#, 20),
        );
        assert!(v.healthy, "{v:?}");
        assert_eq!(v.version.as_deref(), Some("1.2"));
        assert_eq!(v.checks.len(), 4);
    }

    #[test]
    fn each_failing_check_is_named() {
        let v = evaluate(&recipe(), &snap(503, r#"{"status":"degraded"}"#, 900));
        assert!(!v.healthy);
        let failed: Vec<&str> = v
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            failed,
            vec![
                "status 200",
                "/status = \"ok\"",
                "body contains \"ok\"",
                "latency ≤ 500ms"
            ]
        );
    }

    #[test]
    fn no_answer_is_down_with_reason() {
        let v = evaluate(&recipe(), &Err(ProbeError::Refused));
        assert!(!v.healthy);
        assert_eq!(v.down.as_deref(), Some("connection refused"));
    }

    #[test]
    fn non_json_body_fails_pointer_checks_without_panicking() {
        let v = evaluate(&recipe(), &snap(200, "<html>ok</html>", 5));
        assert!(!v.healthy);
        assert!(v.checks.iter().any(|c| c.detail == "body is not JSON"));
    }
}
