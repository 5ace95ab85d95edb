//! `health <instance>`: runs an instance's recipe and shows each check's verdict.
//! [`evaluate`] is also what `status` and the deploy health gate use.

use std::time::Duration;

use async_trait::async_trait;

use crate::config::{CommandSpec, HealthRecipe, Instance, InstanceRef};
use crate::context::{Action, Ctx};
use crate::ports::{HttpSnapshot, ProbeError};
use crate::rejection::Rejection;
use crate::reply::{Invocation, Outcome, Reply};
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

/// `health <instance>`.
pub(crate) struct Health;

#[async_trait]
impl Action for Health {
    async fn run(&self, ctx: &Ctx<'_>, cmd: &CommandSpec, inv: Invocation) -> Reply {
        match inv.target.instance() {
            Some(r) => health(ctx, r).await,
            None => Rejection::unsupported(&cmd.name, &inv.target).reply(),
        }
    }
}

async fn health(ctx: &Ctx<'_>, r: &InstanceRef) -> Reply {
    let Some(instance) = ctx.config().instance(r) else {
        return Rejection::NoSuchInstance(r.clone()).reply();
    };
    let (verdict, active) = tokio::join!(
        probe(ctx, instance),
        ctx.active_at(&r.env, r.region.as_deref(), &r.pool)
    );
    let role = match active {
        Ok(a) if a == r.member => "active (taking traffic)".to_owned(),
        Ok(a) => format!("inactive ({a} is active)"),
        Err(e) => format!("role unknown: {e}"),
    };
    let headline = if verdict.healthy {
        format!(":white_check_mark: *{r}* is healthy")
    } else if let Some(reason) = &verdict.down {
        format!(":red_circle: *{r}* is down: {reason}")
    } else {
        format!(":warning: *{r}* is unhealthy")
    };
    let lines: Vec<String> = verdict
        .checks
        .iter()
        .map(|c| {
            format!(
                "{} {} — {}",
                if c.ok { ":white_check_mark:" } else { ":x:" },
                c.name,
                c.detail
            )
        })
        .collect();
    let mut facts = vec![role, health_url(instance)];
    if let Some(v) = &verdict.version {
        facts.push(format!("version {v}"));
    }
    if let Some(l) = verdict.latency {
        facts.push(human(l));
    }
    // An unhealthy verdict is a failed check: scripts (`crossroads run`) see it.
    let outcome = if verdict.healthy {
        Outcome::Info
    } else {
        Outcome::Failed
    };
    Reply::message(outcome, headline)
        .text(lines.join("\n"))
        .context(facts.join(" · "))
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
