//! A commit-comparison stand-in speaking GitHub's `compare/{base}...{head}` and GitLab's `repository/compare?from=&to=` with the commits a test sets.
//!
//! - GitHub: `GET /repos/{owner}/{repo}/compare/{base}...{head}` with
//!   `Authorization: Bearer <token>` or `token <token>` (else 401 `Bad credentials`)
//!   and a `User-Agent` (GitHub refuses requests without one: 403). An unknown
//!   repository or pair of refs answers 404 `{"message":"Not Found"}`. API base:
//!   [`CompareStandIn::url`].
//! - GitLab: `GET /api/v4/projects/{id}/repository/compare?from=&to=` with
//!   `PRIVATE-TOKEN` (or `Authorization: Bearer`; else 401 `{"message":"401 Unauthorized"}`).
//!   `{id}` is the project path (URL-encoded, `group%2Fproject`) or whatever id the
//!   test registered. An unknown project answers 404 `{"message":"404 Project Not Found"}`;
//!   an unknown pair of refs in a known project answers 200 with no commits, as
//!   GitLab does. API base: [`CompareStandIn::gitlab_api_url`].
//!
//! Commits are listed oldest first in both, as both services do.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json, Router};
use serde_json::{json, Value};

use crate::fault::{Dialect, Faults, Scripted};
use crate::listen::{self, Conn, Listener};
use crate::record::header_map;
use crate::wire::{parse_form, percent_decode};
use crate::StandInError;

const KEY: &str = "compare";

const COMPARE: Dialect = Dialect {
    status: |status| {
        Json(json!({"message": status.canonical_reason().unwrap_or("Error")})).into_response()
    },
    rate_limited: || {
        Json(json!({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}))
            .into_response()
    },
    error: |e| {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"message": e})),
        )
            .into_response()
    },
};

/// One commit as a test describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitCommit {
    /// Full 40-hex sha (any string is accepted).
    pub sha: String,
    /// Author name.
    pub author_name: String,
    /// Author e-mail.
    pub author_email: String,
    /// GitHub login of the author (`author: null` on GitHub when `None`).
    pub author_login: Option<String>,
    /// Author date, ISO 8601 (`2024-05-01T12:00:00Z`).
    pub date: String,
    /// Full message: first line, blank line, body.
    pub message: String,
}

impl GitCommit {
    /// A commit by `author_name` (e-mail `{name}@example.com` lower-cased, login the
    /// same, dated 2024-05-01T12:00:00Z).
    pub fn new(sha: &str, author_name: &str, message: &str) -> Self {
        let login = author_name.to_ascii_lowercase().replace(' ', "-");
        Self {
            sha: sha.to_owned(),
            author_name: author_name.to_owned(),
            author_email: format!("{login}@example.com"),
            author_login: Some(login),
            date: "2024-05-01T12:00:00Z".to_owned(),
            message: message.to_owned(),
        }
    }
    /// Sets the e-mail.
    pub fn email(mut self, email: &str) -> Self {
        self.author_email = email.to_owned();
        self
    }
    /// Sets (or clears) the GitHub login.
    pub fn login(mut self, login: Option<&str>) -> Self {
        self.author_login = login.map(str::to_owned);
        self
    }
    /// Sets the date (ISO 8601).
    pub fn date(mut self, date: &str) -> Self {
        self.date = date.to_owned();
        self
    }
    fn title(&self) -> &str {
        self.message.lines().next().unwrap_or("")
    }
}

/// One request the stand-in answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompareRequest {
    /// `github` or `gitlab` (or `unknown`).
    pub api: &'static str,
    /// Path and query.
    pub path: String,
    /// Headers, names lower-cased.
    pub headers: BTreeMap<String, String>,
    /// When it arrived.
    pub at: Instant,
}

type Pairs = BTreeMap<(String, String, String), Vec<GitCommit>>;

struct Shared {
    base: String,
    token: String,
    pairs: Mutex<Pairs>,
    requests: Mutex<Vec<CompareRequest>>,
    faults: Faults,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running commit-comparison stand-in.
pub struct CompareStandIn {
    shared: Arc<Shared>,
    server: Listener,
}

impl CompareStandIn {
    /// Starts on a free loopback port, accepting `token`.
    pub async fn start(token: &str) -> Result<Self, StandInError> {
        Self::start_on(0, token).await
    }

    /// Starts on `127.0.0.1:port` (0 = any free port), accepting `token`.
    pub async fn start_on(port: u16, token: &str) -> Result<Self, StandInError> {
        let (server, shared) = listen::start(port, |addr| {
            let shared = Arc::new(Shared {
                base: format!("http://{addr}"),
                token: token.to_owned(),
                pairs: Mutex::new(BTreeMap::new()),
                requests: Mutex::new(Vec::new()),
                faults: Faults::default(),
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

    /// `http://127.0.0.1:port`, the GitHub API base (GitHub's is `https://api.github.com`).
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// `http://127.0.0.1:port/api/v4`, the GitLab API base.
    pub fn gitlab_api_url(&self) -> String {
        format!("{}/api/v4", self.server.url())
    }

    /// Sets the commits between `base` and `head` in `repo` (GitHub `owner/name`, or
    /// a GitLab project path or id), oldest first.
    pub fn set_commits(&self, repo: &str, base: &str, head: &str, commits: Vec<GitCommit>) {
        lock(&self.shared.pairs)
            .insert((repo.to_owned(), base.to_owned(), head.to_owned()), commits);
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<CompareRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Queues scripted answers (both APIs), used in order before the default.
    pub fn script(&self, answers: impl IntoIterator<Item = Scripted>) {
        self.shared.faults.push(KEY, answers);
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    Extension(conn): Extension<Conn>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri.path();
    let api = if path.starts_with("/repos/") {
        "github"
    } else if path.starts_with("/api/v4/") {
        "gitlab"
    } else {
        "unknown"
    };
    lock(&shared.requests).push(CompareRequest {
        api,
        path: uri
            .path_and_query()
            .map_or_else(|| path.to_owned(), |p| p.as_str().to_owned()),
        headers: header_map(&headers),
        at: Instant::now(),
    });
    if let Some(resp) = shared.faults.apply(KEY, &COMPARE, &conn).await {
        return resp;
    }
    if method != Method::GET {
        return (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"}))).into_response();
    }
    match api {
        "github" => github(&shared, path, &headers),
        "gitlab" => gitlab(&shared, path, uri.query().unwrap_or(""), &headers),
        _ => (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"}))).into_response(),
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn github(shared: &Shared, path: &str, headers: &HeaderMap) -> Response {
    let not_found = || {
        (
            StatusCode::NOT_FOUND,
            Json(json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest/commits/commits#compare-two-commits", "status": "404"})),
        )
            .into_response()
    };
    if header_str(headers, "user-agent").is_none_or(str::is_empty) {
        return (
            StatusCode::FORBIDDEN,
            "Request forbidden by administrative rules. Please make sure your request has a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). Check https://developer.github.com for other possible causes.\n",
        )
            .into_response();
    }
    let token = header_str(headers, header::AUTHORIZATION.as_str()).and_then(|v| {
        v.strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("token "))
            .map(str::trim)
    });
    if token != Some(shared.token.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"})),
        )
            .into_response();
    }
    // /repos/{owner}/{repo}/compare/{base}...{head}; refs may contain '/'.
    let rest = path.trim_start_matches("/repos/");
    let mut parts = rest.splitn(4, '/');
    let (Some(owner), Some(name), Some("compare"), Some(basehead)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return not_found();
    };
    let basehead = percent_decode(basehead, false);
    let Some((base, head)) = basehead.split_once("...") else {
        return not_found();
    };
    let repo = format!("{owner}/{name}");
    let Some(commits) = lock(&shared.pairs)
        .get(&(repo.clone(), base.to_owned(), head.to_owned()))
        .cloned()
    else {
        return not_found();
    };
    let api = format!("{}/repos/{repo}", shared.base);
    let html = format!("{}/{repo}", shared.base);
    let entry = |c: &GitCommit| {
        json!({
            "sha": c.sha,
            "node_id": format!("C_sim{}", c.sha.chars().take(12).collect::<String>()),
            "commit": {
                "author": {"name": c.author_name, "email": c.author_email, "date": c.date},
                "committer": {"name": c.author_name, "email": c.author_email, "date": c.date},
                "message": c.message,
                "tree": {"sha": "0".repeat(40), "url": format!("{api}/git/trees/{}", "0".repeat(40))},
                "url": format!("{api}/git/commits/{}", c.sha),
                "comment_count": 0,
            },
            "url": format!("{api}/commits/{}", c.sha),
            "html_url": format!("{html}/commit/{}", c.sha),
            "comments_url": format!("{api}/commits/{}/comments", c.sha),
            "author": c.author_login.as_ref().map(|l| json!({"login": l, "type": "User", "html_url": format!("{}/{l}", shared.base)})),
            "committer": c.author_login.as_ref().map(|l| json!({"login": l, "type": "User"})),
            "parents": [],
        })
    };
    let base_commit = json!({"sha": base, "url": format!("{api}/commits/{base}"), "html_url": format!("{html}/commit/{base}")});
    let n = commits.len();
    Json(json!({
        "url": format!("{api}/compare/{base}...{head}"),
        "html_url": format!("{html}/compare/{base}...{head}"),
        "permalink_url": format!("{html}/compare/{owner}:{base}...{owner}:{head}"),
        "diff_url": format!("{html}/compare/{base}...{head}.diff"),
        "patch_url": format!("{html}/compare/{base}...{head}.patch"),
        "base_commit": base_commit,
        "merge_base_commit": base_commit,
        "status": if n == 0 { "identical" } else { "ahead" },
        "ahead_by": n,
        "behind_by": 0,
        "total_commits": n,
        "commits": commits.iter().map(entry).collect::<Vec<_>>(),
        "files": [],
    }))
    .into_response()
}

fn gitlab(shared: &Shared, path: &str, query: &str, headers: &HeaderMap) -> Response {
    let token = header_str(headers, "private-token").or_else(|| {
        header_str(headers, header::AUTHORIZATION.as_str()).and_then(|v| v.strip_prefix("Bearer "))
    });
    if token.map(str::trim) != Some(shared.token.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "401 Unauthorized"})),
        )
            .into_response();
    }
    let rest = path.trim_start_matches("/api/v4/projects/");
    let Some(project) = rest.strip_suffix("/repository/compare") else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "404 Not Found"})),
        )
            .into_response();
    };
    let project = percent_decode(project, false);
    let params = parse_form(query);
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (from, to) = (param("from"), param("to"));
    let pairs = lock(&shared.pairs);
    if !pairs.keys().any(|(repo, _, _)| *repo == project) {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"message": "404 Project Not Found"})),
        )
            .into_response();
    }
    let commits = pairs
        .get(&(project.clone(), from.clone(), to.clone()))
        .cloned()
        .unwrap_or_default();
    drop(pairs);
    let web = format!("{}/{project}", shared.base);
    let entry = |c: &GitCommit| {
        json!({
            "id": c.sha,
            "short_id": c.sha.chars().take(8).collect::<String>(),
            "created_at": c.date,
            "parent_ids": [],
            "title": c.title(),
            "message": c.message,
            "author_name": c.author_name,
            "author_email": c.author_email,
            "authored_date": c.date,
            "committer_name": c.author_name,
            "committer_email": c.author_email,
            "committed_date": c.date,
            "trailers": {},
            "web_url": format!("{web}/-/commit/{}", c.sha),
        })
    };
    let list: Vec<Value> = commits.iter().map(entry).collect();
    Json(json!({
        "commit": list.last().cloned(),
        "commits": list,
        "diffs": [],
        "compare_timeout": false,
        "compare_same_ref": from == to,
        "web_url": format!("{web}/-/compare/{from}...{to}"),
    }))
    .into_response()
}
