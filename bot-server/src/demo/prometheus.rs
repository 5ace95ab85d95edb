//! The demo's canary traffic and Prometheus: requests sent to each canary pool's
//! members in the shares its switch holds, each member's `/metrics` scraped every
//! second, and Prometheus' instant query API answered for those counters, so a
//! canary in the demo is judged as it would be against a real Prometheus.
//!
//! The query API understands what the shipped config asks:
//! `sum(rate(http_requests_total{label="…",…}[window]))`, optionally with
//! `code=~"5.."` and `or vector(0)`, and the ratio of two of them. Anything else is answered as
//! Prometheus answers a query it cannot run (`400`, `bad_data`), in plain words.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

/// Requests per second sent to each canary pool.
const TRAFFIC_PER_SECOND: u64 = 20;
/// How often each member's `/metrics` is scraped.
const SCRAPE: Duration = Duration::from_secs(1);
/// How much history is kept per member.
const KEEP: Duration = Duration::from_secs(600);

/// One canary pool the demo sends traffic to and scrapes.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// Labels the scrape adds, as a real scrape config would.
    pub env: String,
    pub pool: String,
    /// The pool as the demo's switch knows it (`env`, `pool` in its URL).
    pub switch_pool: (String, String),
    /// `(member, base URL)`.
    pub members: Vec<(String, String)>,
}

/// One scrape: when, all requests so far, 5xx answers so far.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    total: u64,
    errors: u64,
}

type Series = BTreeMap<(String, String, String), VecDeque<Sample>>;

/// The weights the demo's switch holds for a pool.
pub(crate) type Weights = dyn Fn(&str, &str) -> Option<BTreeMap<String, u64>> + Send + Sync;

/// Runs the traffic, the scrapes and the query API on `port` until the returned
/// handle is dropped.
pub(crate) async fn start(
    port: u16,
    targets: Vec<Target>,
    weights: Weak<Weights>,
) -> std::io::Result<Running> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let series: Arc<Mutex<Series>> = Arc::default();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .map_err(std::io::Error::other)?;
    let mut tasks = Vec::new();
    let router = Router::new()
        .route("/api/v1/query", get(query))
        .route(
            "/-/ready",
            get(|| async { "Prometheus Server is Ready.\n" }),
        )
        .with_state(series.clone());
    tasks.push(tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    }));
    for target in targets {
        tasks.push(tokio::spawn(traffic(
            target.clone(),
            weights.clone(),
            http.clone(),
        )));
        tasks.push(tokio::spawn(scrape(target, series.clone(), http.clone())));
    }
    Ok(Running(tasks))
}

/// The demo's Prometheus while it runs; dropping it stops everything.
pub(crate) struct Running(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Running {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// Sends requests to the pool's members in the shares the switch holds.
async fn traffic(target: Target, weights: Weak<Weights>, http: reqwest::Client) {
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / TRAFFIC_PER_SECOND));
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        let Some(weights) = weights.upgrade() else {
            return;
        };
        let (env, pool) = &target.switch_pool;
        let Some(w) = weights(env, pool) else {
            continue;
        };
        let total: u64 = w.values().sum();
        if total == 0 {
            continue;
        }
        // Deterministic weighted round robin: request n goes where n falls.
        let slot = n % total;
        n = n.wrapping_add(1);
        let mut upto = 0;
        let Some(member) = w.iter().find_map(|(m, weight)| {
            upto += weight;
            (slot < upto).then_some(m)
        }) else {
            continue;
        };
        if let Some((_, url)) = target.members.iter().find(|(m, _)| m == member) {
            let _ = http.get(format!("{url}/tasks")).send().await;
        }
    }
}

/// Scrapes each member's `http_requests_total` every second.
async fn scrape(target: Target, series: Arc<Mutex<Series>>, http: reqwest::Client) {
    let mut tick = tokio::time::interval(SCRAPE);
    loop {
        tick.tick().await;
        for (member, url) in &target.members {
            let Ok(answer) = http.get(format!("{url}/metrics")).send().await else {
                continue;
            };
            let Ok(text) = answer.text().await else {
                continue;
            };
            let (total, errors) = counters(&text);
            let now = Instant::now();
            let mut all = series.lock().unwrap_or_else(|p| p.into_inner());
            let samples = all
                .entry((target.env.clone(), target.pool.clone(), member.clone()))
                .or_default();
            samples.push_back(Sample {
                at: now,
                total,
                errors,
            });
            while samples
                .front()
                .is_some_and(|s| now.duration_since(s.at) > KEEP)
            {
                samples.pop_front();
            }
        }
    }
}

/// All requests and the 5xx ones, from `http_requests_total{code="…"} N` lines.
fn counters(text: &str) -> (u64, u64) {
    let mut total = 0;
    let mut errors = 0;
    for line in text
        .lines()
        .filter(|l| l.starts_with("http_requests_total"))
    {
        let Some((labels, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(v) = value.trim().parse::<f64>() else {
            continue;
        };
        let v = v.max(0.0) as u64;
        total += v;
        if label(labels, "code").is_some_and(|c| c.starts_with('5')) {
            errors += v;
        }
    }
    (total, errors)
}

/// The value of `name="…"` (or `name=~"…"`) in a selector or a metrics line.
fn label<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(found) = text.get(from..).and_then(|rest| rest.find(name)) {
        let at = from + found;
        from = at + name.len();
        let before = text[..at].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let after = &text[from..];
        let Some(value) = after
            .strip_prefix("=\"")
            .or_else(|| after.strip_prefix("=~\""))
        else {
            continue;
        };
        return value.split('"').next();
    }
    None
}

/// `[30s]`, `[1m]`, `[2h]` in a query.
fn window(query: &str) -> Option<Duration> {
    let open = query.find('[')?;
    let close = query[open..].find(']')? + open;
    let spec = query[open + 1..close].trim();
    let (n, unit) = if let Some(n) = spec.strip_suffix('s') {
        (n, 1)
    } else if let Some(n) = spec.strip_suffix('m') {
        (n, 60)
    } else if let Some(n) = spec.strip_suffix('h') {
        (n, 3600)
    } else {
        return None;
    };
    let n: u64 = n.parse().ok()?;
    Some(Duration::from_secs(n.checked_mul(unit)?))
}

#[derive(Clone, Copy)]
enum Counted {
    All,
    Errors,
}

/// `sum(rate(http_requests_total{…}[w]))` of one side of a query: requests (or 5xx
/// answers) per second over the window, summed over the members it selects; `None`
/// when no member has two samples in it.
fn rate(series: &Series, selector: &str, now: Instant) -> Option<(f64, Counted)> {
    let w = window(selector)?;
    let counted = match label(selector, "code") {
        Some(c) if c.starts_with('5') => Counted::Errors,
        _ => Counted::All,
    };
    let mut sum = 0.0;
    let mut any = false;
    for ((env, pool, member), samples) in series {
        let wanted = [("env", env), ("pool", pool), ("member", member)];
        if wanted
            .iter()
            .any(|(k, v)| label(selector, k).is_some_and(|want| want != v.as_str()))
        {
            continue;
        }
        let inside: Vec<&Sample> = samples
            .iter()
            .filter(|s| now.duration_since(s.at) <= w)
            .collect();
        let (Some(first), Some(last)) = (inside.first(), inside.last()) else {
            continue;
        };
        let secs = last.at.duration_since(first.at).as_secs_f64();
        if secs <= 0.0 {
            continue;
        }
        let pick = |s: &Sample| match counted {
            Counted::All => s.total,
            Counted::Errors => s.errors,
        };
        any = true;
        sum += pick(last).saturating_sub(pick(first)) as f64 / secs;
    }
    any.then_some((sum, counted))
}

/// The value of a query the demo understands: `Ok(None)` for no data.
fn evaluate(series: &Series, query: &str, now: Instant) -> Result<Option<f64>, String> {
    let understood = "the demo's Prometheus answers sum(rate(http_requests_total{…}[window])) and the ratio of two of them";
    if !query.contains("http_requests_total") || window(query).is_none() {
        return Err(understood.into());
    }
    let sides: Vec<&str> = query.split(") / ").collect();
    // `… or vector(0)`: no series counts as 0.
    let side = |s: &str| {
        rate(series, s, now)
            .map(|(v, _)| v)
            .or_else(|| s.contains("or vector(0)").then_some(0.0))
    };
    match sides.as_slice() {
        [one] => Ok(side(one)),
        [top, bottom] => {
            let (Some(top), Some(bottom)) = (side(top), side(bottom)) else {
                return Ok(None);
            };
            Ok((bottom > 0.0).then_some(top / bottom))
        }
        _ => Err(understood.into()),
    }
}

async fn query(
    State(series): State<Arc<Mutex<Series>>>,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    let Some(q) = params.get("query") else {
        return bad("no query given");
    };
    let answer = {
        let all = series.lock().unwrap_or_else(|p| p.into_inner());
        evaluate(&all, q, Instant::now())
    };
    match answer {
        Ok(value) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64();
            let result = match value {
                Some(v) => json!([{"metric": {}, "value": [now, v.to_string()]}]),
                None => json!([]),
            };
            Json(json!({"status": "success", "data": {"resultType": "vector", "result": result}}))
                .into_response()
        }
        Err(why) => bad(&why),
    }
}

fn bad(why: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"status": "error", "errorType": "bad_data", "error": why})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = r#"sum(rate(http_requests_total{env="staging",pool="api",member="green",code=~"5.."}[30s])) / sum(rate(http_requests_total{env="staging",pool="api",member="green"}[30s]))"#;

    #[test]
    fn reads_labels_windows_and_counters() {
        assert_eq!(label(SHIPPED, "member"), Some("green"));
        assert_eq!(label(SHIPPED, "code"), Some("5.."));
        assert_eq!(window(SHIPPED), Some(Duration::from_secs(30)));
        assert_eq!(window("x[5µ]"), None, "no panic on a unit of several bytes");
        assert_eq!(window("x[99999999999999999999h]"), None);
        assert_eq!(
            label(r#"x{pool="members",member="green"}"#, "member"),
            Some("green"),
            "a value holding the name does not stop the search"
        );
        let text = "# TYPE http_requests_total counter\nhttp_requests_total{code=\"200\"} 90\nhttp_requests_total{code=\"500\"} 10\nhttp_requests_total{code=\"503\"} 5\n";
        assert_eq!(counters(text), (105, 15));
    }

    #[test]
    fn answers_the_shipped_error_rate() {
        let t0 = Instant::now();
        let mut series = Series::new();
        let sample = |secs: u64, total, errors| Sample {
            at: t0 + Duration::from_secs(secs),
            total,
            errors,
        };
        series.insert(
            ("staging".into(), "api".into(), "green".into()),
            [sample(0, 100, 0), sample(10, 200, 25)].into(),
        );
        series.insert(
            ("staging".into(), "api".into(), "blue".into()),
            [sample(0, 100, 0), sample(10, 900, 0)].into(),
        );
        let now = t0 + Duration::from_secs(10);
        assert_eq!(evaluate(&series, SHIPPED, now), Ok(Some(0.25)));
        let blue = SHIPPED.replace("green", "blue");
        assert_eq!(evaluate(&series, &blue, now), Ok(Some(0.0)));
        let nobody = SHIPPED.replace("green", "purple");
        assert_eq!(evaluate(&series, &nobody, now), Ok(None), "no data");
        assert!(evaluate(&series, "up", now).is_err());
        let with_zero = SHIPPED
            .replace("member=\"green\",code", "member=\"purple\",code")
            .replacen("sum(rate(", "(sum(rate(", 1)
            .replace("[30s])) /", "[30s])) or vector(0)) /");
        assert_eq!(
            evaluate(&series, &with_zero, now),
            Ok(Some(0.0)),
            "no error series, or vector(0): a rate of 0 ({with_zero})"
        );
    }
}
