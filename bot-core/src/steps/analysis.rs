//! A canary's readings: each Prometheus query of its analysis asked for its value now
//! (the instant query API), and judged against its limit.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::adapters::redact::redact_url;
use crate::adapters::template::{render_template, url_component};
use crate::config::{Analysis, CanaryQuery};
use crate::context::Ctx;

/// How long one query may take at most (less when readings come more often).
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// One query's reading, as saved with its run and shown in the thread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Reading {
    /// The query's name.
    pub name: String,
    /// What it read (the highest of its series); `None`: no data, or no answer.
    pub value: Option<f64>,
    /// Its limit.
    pub max: f64,
    /// Why there is no value, when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<String>,
    /// Whether this reading fails the step.
    pub failing: bool,
    /// A health probe of the new member (no analysis configured), not a query.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub health: bool,
}

impl Reading {
    /// `error rate 0.004 (max 0.02)`, or why there was no reading.
    pub(crate) fn describe(&self) -> String {
        if self.health {
            return format!(
                "{}: {}",
                self.name,
                self.missing.as_deref().unwrap_or("healthy")
            );
        }
        match (self.value, &self.missing) {
            (Some(v), _) => format!("{} {} (max {})", self.name, number(v), number(self.max)),
            (None, Some(why)) => format!("{}: {why} (max {})", self.name, number(self.max)),
            (None, None) => format!("{}: no data (max {})", self.name, number(self.max)),
        }
    }
}

/// A reading as people read it: up to four decimal places.
pub(crate) fn number(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

/// Reads every query of `analysis` with `vars` filled in (`{env}`, `{region}`,
/// `{pool}`, `{member}`).
/// A query gets at most the interval between readings (and 1 to 5 s), so a slow
/// Prometheus cannot stretch the time to an abort.
pub(crate) async fn read(
    ctx: &Ctx<'_>,
    analysis: &Analysis,
    interval: Duration,
    vars: &[(&str, &str)],
) -> Vec<Reading> {
    let timeout = interval.clamp(Duration::from_secs(1), QUERY_TIMEOUT);
    let mut readings = Vec::with_capacity(analysis.queries.len());
    for q in &analysis.queries {
        readings.push(read_one(ctx, analysis, q, timeout, vars).await);
    }
    readings
}

async fn read_one(
    ctx: &Ctx<'_>,
    analysis: &Analysis,
    q: &CanaryQuery,
    timeout: Duration,
    vars: &[(&str, &str)],
) -> Reading {
    let promql = render_template(&q.query, vars);
    let url = format!(
        "{}/api/v1/query?query={}",
        analysis.prometheus.trim_end_matches('/'),
        url_component(&promql)
    );
    let answer = match ctx.backends.probe.get(&url, timeout).await {
        Ok(snap) if (200..300).contains(&snap.status) => value_of(&snap.body),
        Ok(snap) => Err(format!(
            "Prometheus at {} answered HTTP {}",
            redact_url(&analysis.prometheus),
            snap.status
        )),
        Err(_) => Err(format!(
            "Prometheus at {} did not answer",
            redact_url(&analysis.prometheus)
        )),
    };
    match answer {
        Ok(Some(v)) => Reading {
            name: q.name.clone(),
            value: Some(v),
            max: q.max,
            missing: None,
            failing: v > q.max,
            health: false,
        },
        Ok(None) => Reading {
            name: q.name.clone(),
            value: None,
            max: q.max,
            missing: Some("no data".into()),
            failing: analysis.no_data_fails,
            health: false,
        },
        // Cannot tell: counts against the step, whatever `no_data` says.
        Err(why) => Reading {
            name: q.name.clone(),
            value: None,
            max: q.max,
            missing: Some(why),
            failing: true,
            health: false,
        },
    }
}

/// The value of an instant query's answer: the highest sample of a vector, or the
/// scalar; `Ok(None)` for an empty vector or NaN (a rate over no requests).
pub(crate) fn value_of(body: &str) -> Result<Option<f64>, String> {
    let json: serde_json::Value =
        serde_json::from_str(body).map_err(|_| "Prometheus did not answer JSON".to_owned())?;
    if json.get("status").and_then(|s| s.as_str()) != Some("success") {
        let why = json
            .get("error")
            .and_then(|e| e.as_str())
            .unwrap_or("no reason given");
        // Escaped where it is shown.
        return Err(format!(
            "Prometheus refused the query: {}",
            why.chars().take(200).collect::<String>()
        ));
    }
    let data = json
        .get("data")
        .ok_or("Prometheus answered no data field")?;
    let sample = |v: &serde_json::Value| -> Option<f64> {
        v.get(1)?
            .as_str()?
            .parse::<f64>()
            .ok()
            .filter(|x| !x.is_nan())
    };
    match data.get("resultType").and_then(|t| t.as_str()) {
        Some("vector") => {
            let series = data
                .get("result")
                .and_then(|r| r.as_array())
                .ok_or("Prometheus answered a vector without a result")?;
            Ok(series
                .iter()
                .filter_map(|s| s.get("value").and_then(sample))
                .reduce(f64::max))
        }
        Some("scalar") => Ok(data.get("result").and_then(sample)),
        Some(other) => Err(format!(
            "the query gives a {other}, not one number per series (use an instant vector)"
        )),
        None => Err("Prometheus answered no resultType".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vectors_scalars_and_no_data() {
        let vector = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"member":"green"},"value":[1700000000.1,"0.01"]},
            {"metric":{"member":"blue"},"value":[1700000000.1,"0.25"]}]}}"#;
        assert_eq!(value_of(vector), Ok(Some(0.25)));
        let scalar = r#"{"status":"success","data":{"resultType":"scalar","result":[1.0,"3"]}}"#;
        assert_eq!(value_of(scalar), Ok(Some(3.0)));
        let empty = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert_eq!(value_of(empty), Ok(None));
        let nan = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}}"#;
        assert_eq!(value_of(nan), Ok(None));
        let refused =
            r#"{"status":"error","errorType":"bad_data","error":"parse error at char 3"}"#;
        assert_eq!(
            value_of(refused),
            Err("Prometheus refused the query: parse error at char 3".into())
        );
        assert!(value_of("<html>").is_err());
    }

    #[test]
    fn numbers_read_plainly() {
        assert_eq!(number(0.02), "0.02");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(12.5), "12.5");
        assert_eq!(number(0.123456), "0.1235");
    }
}
