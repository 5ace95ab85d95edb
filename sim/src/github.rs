//! A GitHub deployments stand-in: `POST/GET /repos/{owner}/{repo}/deployments` and their statuses, validated like the real API, recorded and scriptable to fail.
//!
//! Every request needs a `User-Agent` (GitHub refuses requests without one: 403)
//! and `Authorization: Bearer <token>` or `token <token>` (any non-empty token is
//! accepted and recorded; else 401 `{"message":"Bad credentials",…}`). A body that
//! is not JSON answers 400 `Problems parsing JSON`, a missing `ref` or `state` 422
//! `Validation Failed`, an unknown deployment 404 `Not Found`, all in GitHub's
//! `{"message":…,"documentation_url":…}` shape. Deployments and statuses are listed
//! newest first, as GitHub does. Scripted failures: [`Scripted::Status`] answers
//! `{"message":"Server Error",…}` (5xx) or the status's reason,
//! [`Scripted::RateLimited`] a 429 secondary-rate-limit message with `Retry-After`,
//! [`Scripted::Error`] a 422 naming the error; none of them records anything.
//! [`SimGithub::fail_all`] holds GitHub down (every request 500) until switched off.
//! `auto_inactive` is recorded but not acted on: earlier deployments get no
//! `inactive` status from the stand-in.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json, Router};
use serde_json::{json, Map, Value};
use tokio::time::Instant;

use crate::fault::{Dialect, Faults, Scripted};
use crate::listen::{self, Conn, Listener};
use crate::record::{Log, DEFAULT_WAIT};
use crate::wire::{parse_form, percent_decode};
use crate::{epoch_ms, StandInError};

const KEY: &str = "github";
const DOCS: &str = "https://docs.github.com/rest";
const DOCS_DEPLOYMENTS: &str = "https://docs.github.com/rest/deployments/deployments";
const DOCS_STATUSES: &str = "https://docs.github.com/rest/deployments/statuses";
const STATES: &[&str] = &[
    "error",
    "failure",
    "inactive",
    "in_progress",
    "queued",
    "pending",
    "success",
];
/// The login the stand-in creates deployments and statuses as.
const CREATOR: &str = "crossroads[bot]";

const GITHUB: Dialect = Dialect {
    status: |status| {
        let message = if status.is_server_error() {
            "Server Error"
        } else {
            status.canonical_reason().unwrap_or("Error")
        };
        error_body(status, message, DOCS)
    },
    rate_limited: || {
        error_body(
            StatusCode::TOO_MANY_REQUESTS,
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
        )
    },
    error: |e| error_body(StatusCode::UNPROCESSABLE_ENTITY, e, DOCS),
};

/// GitHub's error shape: `{"message":…,"documentation_url":…,"status":"…"}`.
fn error_body(status: StatusCode, message: &str, docs: &str) -> Response {
    (
        status,
        Json(json!({
            "message": message,
            "documentation_url": docs,
            "status": status.as_str(),
        })),
    )
        .into_response()
}

/// 422 `Validation Failed` naming `resource.field` and the `code` (`missing_field`, `invalid`).
fn validation_failed(resource: &str, field: &str, code: &str, docs: &str) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({
            "message": "Validation Failed",
            "errors": [{"resource": resource, "field": field, "code": code}],
            "documentation_url": docs,
            "status": "422",
        })),
    )
        .into_response()
}

fn not_found(docs: &str) -> Response {
    error_body(StatusCode::NOT_FOUND, "Not Found", docs)
}

/// One status a deployment received, as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentStatus {
    /// The status id answered.
    pub id: u64,
    /// `state`: `error`, `failure`, `inactive`, `in_progress`, `queued`, `pending` or `success`.
    pub state: String,
    /// `log_url`, as sent.
    pub log_url: Option<String>,
    /// `target_url` (GitHub's older name for `log_url`), as sent.
    pub target_url: Option<String>,
    /// `environment_url`, as sent.
    pub environment_url: Option<String>,
    /// `description`, as sent.
    pub description: Option<String>,
    /// `environment`, as sent (the deployment's stays as it was).
    pub environment: Option<String>,
    /// `auto_inactive`, as sent.
    pub auto_inactive: Option<bool>,
}

/// One deployment the stand-in created, with the statuses it received since.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    /// The id answered (1, 2, … across all repositories).
    pub id: u64,
    /// `owner/name`.
    pub repo: String,
    /// `ref`.
    pub git_ref: String,
    /// `environment` (`production` when not sent).
    pub environment: String,
    /// `task` (`deploy` when not sent).
    pub task: String,
    /// `payload` as sent (an object, or a string); `{}` when not sent.
    pub payload: Value,
    /// `auto_merge`, as sent.
    pub auto_merge: Option<bool>,
    /// `required_contexts`, as sent.
    pub required_contexts: Option<Vec<String>>,
    /// `description`, as sent.
    pub description: Option<String>,
    /// `production_environment`, as sent.
    pub production_environment: Option<bool>,
    /// `transient_environment`, as sent.
    pub transient_environment: Option<bool>,
    /// The token from `Authorization`.
    pub token: String,
    /// Statuses received for it, oldest first.
    pub statuses: Vec<DeploymentStatus>,
}

/// A deployment with what the API shows of it and of its statuses (oldest first).
#[derive(Debug, Clone)]
struct Entry {
    deployment: Deployment,
    json: Value,
    status_json: Vec<Value>,
}

struct Shared {
    base: String,
    entries: Log<Entry>,
    faults: Faults,
    fail_all: AtomicBool,
    requests: AtomicUsize,
    next_status: AtomicU64,
    wait_timeout: Duration,
}

/// A running GitHub deployments stand-in.
pub struct SimGithub {
    shared: Arc<Shared>,
    server: Listener,
}

impl SimGithub {
    /// Starts on a free loopback port.
    pub async fn start() -> Result<Self, StandInError> {
        Self::start_on(0).await
    }

    /// Starts on `127.0.0.1:port` (0 = any free port).
    pub async fn start_on(port: u16) -> Result<Self, StandInError> {
        let (server, shared) = listen::start(port, |addr| {
            let shared = Arc::new(Shared {
                base: format!("http://{addr}"),
                entries: Log::default(),
                faults: Faults::default(),
                fail_all: AtomicBool::new(false),
                requests: AtomicUsize::new(0),
                next_status: AtomicU64::new(1),
                wait_timeout: DEFAULT_WAIT,
            });
            let router = Router::new().fallback(handle).with_state(shared.clone());
            (router, shared)
        })
        .await?;
        Ok(Self { shared, server })
    }

    /// Bound address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `http://127.0.0.1:port`, the API base (GitHub's is `https://api.github.com`).
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Every deployment created so far, oldest first, each with its statuses.
    pub fn deployments(&self) -> Vec<Deployment> {
        self.shared
            .entries
            .all()
            .into_iter()
            .map(|e| e.deployment)
            .collect()
    }

    /// Waits (at most [`DEFAULT_WAIT`]) until `n` deployments were created; returns
    /// all there are then, possibly fewer than `n`.
    pub async fn wait_for_deployments(&self, n: usize) -> Vec<Deployment> {
        poll(&self.shared.entries, self.shared.wait_timeout, |all| {
            all.len() >= n
        })
        .await
        .into_iter()
        .map(|e| e.deployment)
        .collect()
    }

    /// Waits (at most [`DEFAULT_WAIT`]) until deployment `deployment_id` received `n`
    /// statuses; returns its statuses then, oldest first, possibly fewer than `n`
    /// (none for an unknown deployment).
    pub async fn wait_for_statuses(&self, deployment_id: u64, n: usize) -> Vec<DeploymentStatus> {
        let statuses = |all: &[Entry]| {
            all.iter()
                .find(|e| e.deployment.id == deployment_id)
                .map(|e| e.deployment.statuses.clone())
                .unwrap_or_default()
        };
        let all = poll(&self.shared.entries, self.shared.wait_timeout, |all| {
            statuses(all).len() >= n
        })
        .await;
        statuses(&all)
    }

    /// How many requests arrived, whatever they were answered (scripted failures included).
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Queues scripted answers (any endpoint), used in order before the default.
    pub fn script(&self, answers: impl IntoIterator<Item = Scripted>) {
        self.shared.faults.push(KEY, answers);
    }

    /// While `true`, every request is answered 500 `Server Error` (scripted answers wait).
    pub fn fail_all(&self, on: bool) {
        self.shared.fail_all.store(on, Ordering::SeqCst);
    }

    /// GitHub becomes unreachable (port closed, connections cut).
    pub async fn stop_listening(&self) {
        self.server.stop().await;
    }

    /// GitHub is back on the same port.
    pub async fn listen_again(&self) -> Result<(), StandInError> {
        self.server.resume().await
    }
}

/// The entries once `done` holds for them, or whatever there is at `timeout`.
async fn poll<T: Clone + std::fmt::Debug>(
    log: &Log<T>,
    timeout: Duration,
    done: impl Fn(&[T]) -> bool,
) -> Vec<T> {
    let deadline = Instant::now() + timeout;
    loop {
        let all = log.all();
        if done(&all) || Instant::now() >= deadline {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `2024-05-01T12:00:00Z` for `ms` since the Unix epoch, as GitHub writes times.
fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = i64::try_from(days).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The token from `Authorization: Bearer …` or `token …`, if any.
fn token(headers: &HeaderMap) -> Option<String> {
    header_str(headers, header::AUTHORIZATION.as_str())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("token "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    Extension(conn): Extension<Conn>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    if shared.fail_all.load(Ordering::SeqCst) {
        return (GITHUB.status)(StatusCode::INTERNAL_SERVER_ERROR);
    }
    if let Some(resp) = shared.faults.apply(KEY, &GITHUB, &conn).await {
        return resp;
    }
    if header_str(&headers, "user-agent").is_none_or(str::is_empty) {
        return (
            StatusCode::FORBIDDEN,
            "Request forbidden by administrative rules. Please make sure your request has a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). Check https://developer.github.com for other possible causes.\n",
        )
            .into_response();
    }
    let Some(token) = token(&headers) else {
        return error_body(StatusCode::UNAUTHORIZED, "Bad credentials", DOCS);
    };
    // /repos/{owner}/{repo}/deployments[/{id}[/statuses]]
    let segments: Vec<String> = uri
        .path()
        .trim_end_matches('/')
        .split('/')
        .skip(1)
        .map(|s| percent_decode(s, false))
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let query = parse_form(uri.query().unwrap_or(""));
    match (&method, segments.as_slice()) {
        (&Method::POST, ["repos", owner, name, "deployments"]) => {
            create_deployment(&shared, &format!("{owner}/{name}"), token, &body)
        }
        (&Method::GET, ["repos", owner, name, "deployments"]) => {
            list_deployments(&shared, &format!("{owner}/{name}"), &query)
        }
        (&Method::GET, ["repos", owner, name, "deployments", id]) => {
            match find(&shared, &format!("{owner}/{name}"), id) {
                Some(entry) => Json(entry.json).into_response(),
                None => not_found(DOCS_DEPLOYMENTS),
            }
        }
        (&Method::POST, ["repos", owner, name, "deployments", id, "statuses"]) => {
            create_status(&shared, &format!("{owner}/{name}"), id, &body)
        }
        (&Method::GET, ["repos", owner, name, "deployments", id, "statuses"]) => {
            match find(&shared, &format!("{owner}/{name}"), id) {
                Some(entry) => {
                    let newest_first: Vec<Value> = entry.status_json.into_iter().rev().collect();
                    Json(page(newest_first, &query)).into_response()
                }
                None => not_found(DOCS_STATUSES),
            }
        }
        _ => not_found(DOCS),
    }
}

/// The deployment `id` of `repo`, if any.
fn find(shared: &Shared, repo: &str, id: &str) -> Option<Entry> {
    let id: u64 = id.parse().ok()?;
    shared
        .entries
        .all()
        .into_iter()
        .find(|e| e.deployment.id == id && e.deployment.repo == repo)
}

/// `per_page` (default 30, at most 100) items of page `page` (from 1).
fn page(items: Vec<Value>, query: &[(String, String)]) -> Vec<Value> {
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.parse::<usize>().ok())
    };
    let per_page = param("per_page").unwrap_or(30).clamp(1, 100);
    let page = param("page").unwrap_or(1).max(1);
    items
        .into_iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .collect()
}

/// JSON types GitHub's request schemas check.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Bool,
    StrArray,
    ObjectOrStr,
}

impl Kind {
    fn accepts(self, v: &Value) -> bool {
        match self {
            Kind::Str => v.is_string(),
            Kind::Bool => v.is_boolean(),
            Kind::StrArray => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            Kind::ObjectOrStr => v.is_object() || v.is_string(),
        }
    }
    fn name(self) -> &'static str {
        match self {
            Kind::Str => "a string",
            Kind::Bool => "a boolean",
            Kind::StrArray => "an array of strings",
            Kind::ObjectOrStr => "an object or a string",
        }
    }
}

/// The body as a JSON object, if it is one.
fn object(body: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// GitHub's 400 for a body that is not a JSON object.
fn problems_parsing_json(docs: &str) -> Response {
    error_body(StatusCode::BAD_REQUEST, "Problems parsing JSON", docs)
}

/// Checks the types of the fields present (`null` counts as absent), as GitHub's
/// schema validation does: the 422 `Invalid request.` naming the first wrong one,
/// if any.
fn check_types(obj: &Map<String, Value>, fields: &[(&str, Kind)], docs: &str) -> Option<Response> {
    for (name, kind) in fields {
        match obj.get(*name) {
            None | Some(Value::Null) => {}
            Some(v) if kind.accepts(v) => {}
            Some(v) => {
                let message = format!(
                    "Invalid request.\n\nFor 'properties/{name}', {v} is not {}.",
                    kind.name()
                );
                return Some(error_body(StatusCode::UNPROCESSABLE_ENTITY, &message, docs));
            }
        }
    }
    None
}

fn opt_str(obj: &Map<String, Value>, name: &str) -> Option<String> {
    obj.get(name).and_then(Value::as_str).map(str::to_owned)
}

fn opt_bool(obj: &Map<String, Value>, name: &str) -> Option<bool> {
    obj.get(name).and_then(Value::as_bool)
}

fn create_deployment(shared: &Shared, repo: &str, token: String, body: &[u8]) -> Response {
    let docs = format!("{DOCS_DEPLOYMENTS}#create-a-deployment");
    let Some(obj) = object(body) else {
        return problems_parsing_json(&docs);
    };
    let fields = [
        ("ref", Kind::Str),
        ("task", Kind::Str),
        ("auto_merge", Kind::Bool),
        ("required_contexts", Kind::StrArray),
        ("payload", Kind::ObjectOrStr),
        ("environment", Kind::Str),
        ("description", Kind::Str),
        ("transient_environment", Kind::Bool),
        ("production_environment", Kind::Bool),
    ];
    if let Some(resp) = check_types(&obj, &fields, &docs) {
        return resp;
    }
    let Some(git_ref) = opt_str(&obj, "ref").filter(|r| !r.is_empty()) else {
        return validation_failed("Deployment", "ref", "missing_field", &docs);
    };
    let environment = opt_str(&obj, "environment").unwrap_or_else(|| "production".to_owned());
    let task = opt_str(&obj, "task").unwrap_or_else(|| "deploy".to_owned());
    let payload = obj
        .get("payload")
        .filter(|p| !p.is_null())
        .cloned()
        .unwrap_or_else(|| json!({}));
    let required_contexts = obj
        .get("required_contexts")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        });
    let deployment = Deployment {
        id: 0,
        repo: repo.to_owned(),
        git_ref,
        environment,
        task,
        payload,
        auto_merge: opt_bool(&obj, "auto_merge"),
        required_contexts,
        description: opt_str(&obj, "description"),
        production_environment: opt_bool(&obj, "production_environment"),
        transient_environment: opt_bool(&obj, "transient_environment"),
        token,
        statuses: Vec::new(),
    };
    let now = rfc3339(epoch_ms(SystemTime::now()));
    let mut answer = Value::Null;
    shared.entries.update(|all| {
        let mut deployment = deployment;
        deployment.id = all.len() as u64 + 1;
        let d = &deployment;
        let repo_url = format!("{}/repos/{}", shared.base, d.repo);
        let url = format!("{repo_url}/deployments/{}", d.id);
        answer = json!({
            "url": url,
            "id": d.id,
            "node_id": format!("DE_sim{}", d.id),
            "sha": d.git_ref,
            "ref": d.git_ref,
            "task": d.task,
            "payload": d.payload,
            "original_environment": d.environment,
            "environment": d.environment,
            "description": d.description,
            "creator": creator(),
            "created_at": now,
            "updated_at": now,
            "statuses_url": format!("{url}/statuses"),
            "repository_url": repo_url,
            "transient_environment": d.transient_environment.unwrap_or(false),
            "production_environment": d
                .production_environment
                .unwrap_or(d.environment == "production"),
        });
        all.push(Entry {
            deployment,
            json: answer.clone(),
            status_json: Vec::new(),
        });
    });
    (StatusCode::CREATED, Json(answer)).into_response()
}

fn creator() -> Value {
    json!({"login": CREATOR, "id": 1, "type": "Bot"})
}

fn list_deployments(shared: &Shared, repo: &str, query: &[(String, String)]) -> Response {
    let wanted = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let matches = |field: &str, value: &str| wanted(field).is_none_or(|w| w == value);
    let newest_first: Vec<Value> = shared
        .entries
        .all()
        .into_iter()
        .rev()
        .filter(|e| {
            let d = &e.deployment;
            d.repo == repo
                && matches("environment", &d.environment)
                && matches("ref", &d.git_ref)
                && matches("sha", &d.git_ref)
                && matches("task", &d.task)
        })
        .map(|e| e.json)
        .collect();
    Json(page(newest_first, query)).into_response()
}

fn create_status(shared: &Shared, repo: &str, id: &str, body: &[u8]) -> Response {
    let docs = format!("{DOCS_STATUSES}#create-a-deployment-status");
    let Some(obj) = object(body) else {
        return problems_parsing_json(&docs);
    };
    let Some(entry) = find(shared, repo, id) else {
        return not_found(&docs);
    };
    let fields = [
        ("state", Kind::Str),
        ("target_url", Kind::Str),
        ("log_url", Kind::Str),
        ("description", Kind::Str),
        ("environment", Kind::Str),
        ("environment_url", Kind::Str),
        ("auto_inactive", Kind::Bool),
    ];
    if let Some(resp) = check_types(&obj, &fields, &docs) {
        return resp;
    }
    let state = match opt_str(&obj, "state") {
        None => return validation_failed("DeploymentStatus", "state", "missing_field", &docs),
        Some(s) if !STATES.contains(&s.as_str()) => {
            return validation_failed("DeploymentStatus", "state", "invalid", &docs)
        }
        Some(s) => s,
    };
    let status = DeploymentStatus {
        id: shared.next_status.fetch_add(1, Ordering::SeqCst),
        state,
        log_url: opt_str(&obj, "log_url"),
        target_url: opt_str(&obj, "target_url"),
        environment_url: opt_str(&obj, "environment_url"),
        description: opt_str(&obj, "description"),
        environment: opt_str(&obj, "environment"),
        auto_inactive: opt_bool(&obj, "auto_inactive"),
    };
    let d = &entry.deployment;
    let repo_url = format!("{}/repos/{}", shared.base, d.repo);
    let deployment_url = format!("{repo_url}/deployments/{}", d.id);
    let now = rfc3339(epoch_ms(SystemTime::now()));
    // `target_url` and `log_url` are one field under two names.
    let log_url = status
        .log_url
        .clone()
        .or_else(|| status.target_url.clone())
        .unwrap_or_default();
    let answer = json!({
        "url": format!("{deployment_url}/statuses/{}", status.id),
        "id": status.id,
        "node_id": format!("DES_sim{}", status.id),
        "state": status.state,
        "creator": creator(),
        "description": status.description.clone().unwrap_or_default(),
        "environment": status.environment.clone().unwrap_or_else(|| d.environment.clone()),
        "target_url": log_url,
        "log_url": log_url,
        "environment_url": status.environment_url.clone().unwrap_or_default(),
        "created_at": now,
        "updated_at": now,
        "deployment_url": deployment_url,
        "repository_url": repo_url,
    });
    let deployment_id = d.id;
    shared.entries.update(|all| {
        if let Some(e) = all.iter_mut().find(|e| e.deployment.id == deployment_id) {
            e.deployment.statuses.push(status);
            e.status_json.push(answer.clone());
        }
    });
    (StatusCode::CREATED, Json(answer)).into_response()
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_714_564_800_999), "2024-05-01T12:00:00Z");
    }
}
