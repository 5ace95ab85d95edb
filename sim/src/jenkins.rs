//! A simulated Jenkins speaking the remote API's real shapes: trigger
//! (`buildWithParameters` / `build` → `201` + `Location`), queue items
//! (`WaitingItem` → `BuildableItem` → `LeftItem`), builds, crumbs and Basic auth.
//!
//! Builds take real time (each trigger runs a small tokio task), so clients see
//! the same sequence of states they would see on a real Jenkins.
//!
//! A job may carry a git change set ([`JobSetup::changes`]); its builds report it
//! where Jenkins does: a Pipeline job's builds (`WorkflowRun`, [`JobSetup::pipeline`])
//! in the `changeSets` array, a freestyle job's builds (`FreeStyleBuild`, the
//! default) in the single `changeSet` object. Each is a
//! `hudson.plugins.git.GitChangeSetList` whose `items` are `GitChangeSet`s
//! (`commitId`, `msg` = first line, `comment` = full message, `author.fullName`,
//! `authorEmail`, `timestamp`).

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::wire::{basic_credentials, parse_form, percent_decode};
use crate::{epoch_ms, ServerHandle, DEFAULT_WAIT};

/// Called after a successful build with the build's parameters (e.g. to bump a
/// simulated instance's version so a demo deploy visibly changes it).
pub type Hook = Arc<dyn Fn(&[(String, String)]) + Send + Sync>;

/// Name of the session cookie handed out with crumbs.
pub const SESSION_COOKIE: &str = "JSESSIONID.sim";

/// Kind of Jenkins job, which decides the build's `_class` and where its change
/// set is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JobKind {
    /// `FreeStyleProject` / `FreeStyleBuild`: changes in `changeSet` (one object).
    #[default]
    Freestyle,
    /// `WorkflowJob` / `WorkflowRun`: changes in `changeSets` (an array).
    Pipeline,
}

/// One commit in a job's change set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Author's full name.
    pub author: String,
    /// Author's e-mail.
    pub author_email: String,
    /// Commit id (sha).
    pub commit_id: String,
    /// Full commit message (first line is `msg`).
    pub message: String,
    /// Commit time, epoch milliseconds.
    pub timestamp_ms: u64,
}

/// How one simulated job behaves.
#[derive(Clone)]
pub struct JobSetup {
    /// Time spent in the queue (first half `WaitingItem`, second half `BuildableItem`).
    pub queue_time: Duration,
    /// Time the build runs.
    pub build_duration: Duration,
    /// Final result: `SUCCESS`, `UNSTABLE`, `FAILURE`, `ABORTED`, `NOT_BUILT`.
    pub result: String,
    /// `estimatedDuration`; `None` reports `-1` (unknown).
    pub estimated_duration: Option<Duration>,
    /// The queue item is cancelled instead of building.
    pub cancel_in_queue: bool,
    /// The trigger answers this status and body instead of queueing.
    pub trigger_error: Option<(u16, String)>,
    /// Run after a `SUCCESS` build.
    pub on_success: Option<Hook>,
    /// Freestyle or Pipeline.
    pub kind: JobKind,
    /// Commits every build of this job reports, oldest first.
    pub changes: Vec<Change>,
}

impl Default for JobSetup {
    fn default() -> Self {
        Self {
            queue_time: Duration::from_millis(100),
            build_duration: Duration::from_millis(300),
            result: "SUCCESS".into(),
            estimated_duration: Some(Duration::from_millis(300)),
            cancel_in_queue: false,
            trigger_error: None,
            on_success: None,
            kind: JobKind::Freestyle,
            changes: Vec::new(),
        }
    }
}

impl fmt::Debug for JobSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobSetup")
            .field("queue_time", &self.queue_time)
            .field("build_duration", &self.build_duration)
            .field("result", &self.result)
            .field("estimated_duration", &self.estimated_duration)
            .field("cancel_in_queue", &self.cancel_in_queue)
            .field("trigger_error", &self.trigger_error)
            .field("on_success", &self.on_success.as_ref().map(|_| "hook"))
            .field("kind", &self.kind)
            .field("changes", &self.changes)
            .finish()
    }
}

impl JobSetup {
    /// A job that queues 100 ms, builds 300 ms and succeeds (estimate 300 ms).
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the time in the queue.
    pub fn queue_time(mut self, d: Duration) -> Self {
        self.queue_time = d;
        self
    }
    /// Sets the build time (and the estimate to match, unless set later).
    pub fn build_duration(mut self, d: Duration) -> Self {
        self.build_duration = d;
        self.estimated_duration = Some(d);
        self
    }
    /// Sets the final result (Jenkins spelling).
    pub fn result(mut self, result: &str) -> Self {
        self.result = result.to_owned();
        self
    }
    /// Sets `estimatedDuration` (`None` → `-1`).
    pub fn estimated_duration(mut self, d: Option<Duration>) -> Self {
        self.estimated_duration = d;
        self
    }
    /// Cancels the queue item instead of building.
    pub fn cancel_in_queue(mut self) -> Self {
        self.cancel_in_queue = true;
        self
    }
    /// Makes the trigger answer `status` with `body`.
    pub fn trigger_error(mut self, status: u16, body: &str) -> Self {
        self.trigger_error = Some((status, body.to_owned()));
        self
    }
    /// Makes this a Pipeline job (`WorkflowRun` builds, changes in `changeSets`).
    pub fn pipeline(mut self) -> Self {
        self.kind = JobKind::Pipeline;
        self
    }
    /// Gives every build this change set: `(author, commit_id, message)`, oldest
    /// first. E-mails are `{author}@example.com` (lower-cased, spaces as dots);
    /// commits are a minute apart, the last one at 2024-05-01 12:00:00 UTC.
    pub fn changes<S: Into<String>>(
        mut self,
        changes: impl IntoIterator<Item = (S, S, S)>,
    ) -> Self {
        let changes: Vec<(String, String, String)> = changes
            .into_iter()
            .map(|(a, c, m)| (a.into(), c.into(), m.into()))
            .collect();
        let n = changes.len() as u64;
        self.changes = changes
            .into_iter()
            .enumerate()
            .map(|(i, (author, commit_id, message))| Change {
                author_email: format!(
                    "{}@example.com",
                    author.to_ascii_lowercase().replace(' ', ".")
                ),
                author,
                commit_id,
                message,
                timestamp_ms: LAST_CHANGE_MS - (n - 1 - i as u64) * 60_000,
            })
            .collect();
        self
    }
    /// Runs `hook` with the parameters after each successful build.
    pub fn on_success(
        mut self,
        hook: impl Fn(&[(String, String)]) + Send + Sync + 'static,
    ) -> Self {
        self.on_success = Some(Arc::new(hook));
        self
    }
}

/// The simulated Jenkins' configuration.
#[derive(Debug, Clone)]
pub struct JenkinsSetup {
    /// User accepted by Basic auth.
    pub user: String,
    /// API token (password) accepted by Basic auth.
    pub token: String,
    /// Triggers need a crumb from `/crumbIssuer/api/json` plus its session cookie
    /// (403 otherwise); when off, the crumb issuer answers 404.
    pub require_crumb: bool,
    /// Jobs by path (`platform/deploy-api`).
    pub jobs: Vec<(String, JobSetup)>,
    /// How long a left queue item stays readable (Jenkins: about 5 minutes).
    pub left_item_ttl: Duration,
    /// The root URL Jenkins believes it has ("Jenkins URL" in its system settings),
    /// used in `Location` and in every `url` it answers; `None`: where it listens.
    /// A Jenkins behind a TLS proxy often has this wrong (`http://…`).
    pub root_url: Option<String>,
}

impl JenkinsSetup {
    /// Accepts `user:token`, no jobs yet.
    pub fn new(user: &str, token: &str) -> Self {
        Self {
            user: user.to_owned(),
            token: token.to_owned(),
            require_crumb: false,
            jobs: Vec::new(),
            left_item_ttl: Duration::from_secs(300),
            root_url: None,
        }
    }
    /// Adds a job.
    pub fn job(mut self, path: &str, setup: JobSetup) -> Self {
        self.jobs.push((path.to_owned(), setup));
        self
    }
    /// Sets the root URL Jenkins names in its answers (no trailing slash needed).
    pub fn root_url(mut self, url: &str) -> Self {
        self.root_url = Some(url.trim_end_matches('/').to_owned());
        self
    }
    /// Requires a crumb on triggers.
    pub fn require_crumb(mut self, on: bool) -> Self {
        self.require_crumb = on;
        self
    }
}

/// One trigger the simulated Jenkins received (accepted or not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    /// Job path, folders joined with `/`.
    pub job: String,
    /// `build` or `buildWithParameters`.
    pub endpoint: String,
    /// Parameters from the query and the form body, in order.
    pub params: Vec<(String, String)>,
    /// The Basic-auth user, when credentials were sent.
    pub user: Option<String>,
    /// HTTP status answered.
    pub status: u16,
    /// Queue item id, when queued.
    pub queue_id: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QueueState {
    Waiting,
    Buildable,
    Left { build: Option<u64> },
}

struct QueueItem {
    job: String,
    params: Vec<(String, String)>,
    since: SystemTime,
    state: QueueState,
    left_at: Option<Instant>,
}

struct Build {
    kind: JobKind,
    changes: Vec<Change>,
    queue_id: u64,
    started: SystemTime,
    building: bool,
    result: Option<String>,
    duration_ms: u64,
    estimated_ms: i64,
    params: Vec<(String, String)>,
}

struct JobState {
    setup: JobSetup,
    next_number: u64,
}

struct Inner {
    base: String,
    user: String,
    token: String,
    require_crumb: bool,
    left_item_ttl: Duration,
    jobs: BTreeMap<String, JobState>,
    queue: BTreeMap<u64, QueueItem>,
    builds: BTreeMap<(String, u64), Build>,
    next_queue_id: u64,
    next_session: u64,
    sessions: BTreeMap<String, String>,
    triggers: Vec<Trigger>,
    /// Bumped whenever a build starts or finishes, for the `wait_until…` helpers.
    progress: watch::Sender<u64>,
}

type Shared = Arc<Mutex<Inner>>;

fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    inner.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running simulated Jenkins.
pub struct SimJenkins {
    inner: Shared,
    server: ServerHandle,
}

impl SimJenkins {
    /// Starts on a free loopback port.
    pub async fn start(setup: JenkinsSetup) -> io::Result<Self> {
        Self::start_on(0, setup).await
    }

    /// Starts on `127.0.0.1:port` (0 = any free port).
    pub async fn start_on(port: u16, setup: JenkinsSetup) -> io::Result<Self> {
        let listener = ServerHandle::bind(port).await?;
        let base = match setup.root_url {
            Some(root) => root,
            None => format!("http://{}", listener.local_addr()?),
        };
        let inner = Arc::new(Mutex::new(Inner {
            base,
            user: setup.user,
            token: setup.token,
            require_crumb: setup.require_crumb,
            left_item_ttl: setup.left_item_ttl,
            jobs: setup
                .jobs
                .into_iter()
                .map(|(path, setup)| {
                    (
                        path,
                        JobState {
                            setup,
                            next_number: 1,
                        },
                    )
                })
                .collect(),
            queue: BTreeMap::new(),
            builds: BTreeMap::new(),
            next_queue_id: 1,
            next_session: 1,
            sessions: BTreeMap::new(),
            triggers: Vec::new(),
            progress: watch::channel(0).0,
        }));
        let (stop, _) = watch::channel(false);
        let router = Router::new().fallback(handle).with_state(inner.clone());
        let server = ServerHandle::spawn(listener, router, stop)?;
        Ok(Self { inner, server })
    }

    /// Bound address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Base URL, e.g. `http://127.0.0.1:18090`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Every trigger received so far, oldest first.
    pub fn triggers(&self) -> Vec<Trigger> {
        lock(&self.inner).triggers.clone()
    }

    /// How many trigger requests `job` received (any answer: queued, merged into a
    /// waiting item with `303`, or refused).
    pub fn trigger_count(&self, job: &str) -> usize {
        lock(&self.inner)
            .triggers
            .iter()
            .filter(|t| t.job == job)
            .count()
    }

    /// Trigger requests received, by job.
    pub fn trigger_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for t in &lock(&self.inner).triggers {
            *counts.entry(t.job.clone()).or_insert(0) += 1;
        }
        counts
    }

    /// Waits until a build of `job` is running (one already running counts) and
    /// returns its number; panics after 10 s. With a long
    /// [`JobSetup::build_duration`], a test can then stop its client mid-build.
    pub async fn wait_until_building(&self, job: &str) -> u64 {
        self.wait(job, "a running build", |builds| {
            builds.iter().find(|(_, r)| r.is_none()).map(|(n, _)| *n)
        })
        .await
    }

    /// Waits until build `number` of `job` has finished and returns its result;
    /// panics after 10 s.
    pub async fn wait_until_finished(&self, job: &str, number: u64) -> String {
        self.wait(job, &format!("build #{number} to finish"), |builds| {
            builds
                .iter()
                .find(|(n, _)| *n == number)
                .and_then(|(_, r)| r.clone())
        })
        .await
    }

    async fn wait<R>(
        &self,
        job: &str,
        what: &str,
        found: impl Fn(&[(u64, Option<String>)]) -> Option<R>,
    ) -> R {
        let mut rx = lock(&self.inner).progress.subscribe();
        let deadline = tokio::time::Instant::now() + DEFAULT_WAIT;
        loop {
            let builds = self.builds(job);
            if let Some(r) = found(&builds) {
                return r;
            }
            if !matches!(
                tokio::time::timeout_at(deadline, rx.changed()).await,
                Ok(Ok(()))
            ) {
                panic!("timed out waiting for {what} of {job}; builds: {builds:?}");
            }
        }
    }

    /// Adds or replaces a job; its build numbers carry on.
    pub fn set_job(&self, path: &str, setup: JobSetup) {
        let mut inner = lock(&self.inner);
        match inner.jobs.get_mut(path) {
            Some(job) => job.setup = setup,
            None => {
                inner.jobs.insert(
                    path.to_owned(),
                    JobState {
                        setup,
                        next_number: 1,
                    },
                );
            }
        }
    }

    /// Turns crumb checking on or off.
    pub fn set_require_crumb(&self, on: bool) {
        lock(&self.inner).require_crumb = on;
    }

    /// Builds of `job` so far: `(number, result)`, result `None` while running.
    pub fn builds(&self, job: &str) -> Vec<(u64, Option<String>)> {
        lock(&self.inner)
            .builds
            .iter()
            .filter(|((j, _), _)| j == job)
            .map(|((_, n), b)| (*n, b.result.clone()))
            .collect()
    }

    /// Stops the server (builds in flight finish in the background).
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

/// Percent-encodes one path segment.
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn job_url(base: &str, job: &str) -> String {
    let mut url = base.to_owned();
    for seg in job.split('/') {
        url.push_str("/job/");
        url.push_str(&encode_segment(seg));
    }
    url.push('/');
    url
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (status, body.into()).into_response()
}

fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "Not Found")
}

/// Splits `/job/a/job/b/rest…` into (`a/b`, rest).
fn split_job_path(segments: &[String]) -> Option<(String, Vec<String>)> {
    let mut names = Vec::new();
    let mut i = 0;
    while i + 1 < segments.len() && segments[i] == "job" {
        names.push(segments[i + 1].clone());
        i += 2;
    }
    if names.is_empty() {
        return None;
    }
    Some((names.join("/"), segments[i..].to_vec()))
}

async fn handle(
    State(inner): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let segments: Vec<String> = uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode(s, false))
        .collect();

    // Authentication, as Jenkins with anonymous read disabled.
    let creds = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(basic_credentials);
    let user = creds.as_ref().map(|(u, _)| u.clone());
    let auth_status = {
        let inner = lock(&inner);
        match &creds {
            None => Some((StatusCode::FORBIDDEN, "Authentication required".to_owned())),
            Some((u, p)) if *u == inner.user && *p == inner.token => None,
            Some((u, _)) => Some((
                StatusCode::UNAUTHORIZED,
                format!("Invalid password/token for user: {u}"),
            )),
        }
    };

    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (method.clone(), seg.as_slice()) {
        (Method::GET, ["crumbIssuer", "api", "json"]) => {
            if let Some((status, msg)) = auth_status {
                return text(status, msg);
            }
            return crumb(&inner);
        }
        (Method::GET, ["queue", "item", id, "api", "json"]) => {
            if let Some((status, msg)) = auth_status {
                return text(status, msg);
            }
            return match id.parse::<u64>() {
                Ok(id) => queue_item(&inner, id),
                Err(_) => not_found(),
            };
        }
        _ => {}
    }

    let Some((job, rest)) = split_job_path(&segments) else {
        return not_found();
    };
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    match (method, rest.as_slice()) {
        (Method::POST, [endpoint @ ("build" | "buildWithParameters")]) => {
            let mut params = parse_form(uri.query().unwrap_or(""));
            let is_form = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
            if is_form {
                params.extend(parse_form(&String::from_utf8_lossy(&body)));
            }
            trigger(&inner, &job, endpoint, params, user, auth_status, &headers)
        }
        (_, ["build" | "buildWithParameters"]) => {
            text(StatusCode::METHOD_NOT_ALLOWED, "This URL requires POST")
        }
        (Method::GET, rest) => {
            if let Some((status, msg)) = auth_status {
                return text(status, msg);
            }
            get_under_job(&inner, &job, rest)
        }
        _ => not_found(),
    }
}

fn crumb(inner: &Shared) -> Response {
    let mut inner = lock(inner);
    if !inner.require_crumb {
        return not_found();
    }
    let n = inner.next_session;
    inner.next_session += 1;
    let session = format!("node0sim{n:04}");
    let crumb = format!("{:016x}", n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    inner.sessions.insert(session.clone(), crumb.clone());
    let mut resp = Json(json!({
        "_class": "hudson.security.csrf.DefaultCrumbIssuer",
        "crumb": crumb,
        "crumbRequestField": "Jenkins-Crumb",
    }))
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("{SESSION_COOKIE}={session}; Path=/; HttpOnly")) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

fn session_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_owned())
}

fn trigger(
    shared: &Shared,
    job: &str,
    endpoint: &str,
    params: Vec<(String, String)>,
    user: Option<String>,
    auth_status: Option<(StatusCode, String)>,
    headers: &HeaderMap,
) -> Response {
    let mut inner = lock(shared);
    let mut record = Trigger {
        job: job.to_owned(),
        endpoint: endpoint.to_owned(),
        params: params.clone(),
        user,
        status: 0,
        queue_id: None,
    };
    let answer = |inner: &mut Inner, record: &mut Trigger, status: StatusCode, body: String| {
        record.status = status.as_u16();
        inner.triggers.push(record.clone());
        text(status, body)
    };
    if let Some((status, msg)) = auth_status {
        return answer(&mut inner, &mut record, status, msg);
    }
    if inner.require_crumb {
        let sent = headers.get("Jenkins-Crumb").and_then(|v| v.to_str().ok());
        let expected = session_of(headers).and_then(|s| inner.sessions.get(&s).cloned());
        if sent.is_none() || sent != expected.as_deref() {
            return answer(
                &mut inner,
                &mut record,
                StatusCode::FORBIDDEN,
                "No valid crumb was included in the request".into(),
            );
        }
    }
    let Some(setup) = inner.jobs.get(job).map(|j| j.setup.clone()) else {
        return answer(
            &mut inner,
            &mut record,
            StatusCode::NOT_FOUND,
            "Not Found".into(),
        );
    };
    if let Some((status, body)) = &setup.trigger_error {
        let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return answer(&mut inner, &mut record, status, body.clone());
    }
    let base = inner.base.clone();
    // An identical item still waiting: Jenkins answers 303 to it.
    let existing = inner
        .queue
        .iter()
        .find(|(_, q)| {
            q.job == job && q.params == params && !matches!(q.state, QueueState::Left { .. })
        })
        .map(|(id, _)| *id);
    let (status, id) = match existing {
        Some(id) => (StatusCode::SEE_OTHER, id),
        None => {
            let id = inner.next_queue_id;
            inner.next_queue_id += 1;
            inner.queue.insert(
                id,
                QueueItem {
                    job: job.to_owned(),
                    params: params.clone(),
                    since: SystemTime::now(),
                    state: QueueState::Waiting,
                    left_at: None,
                },
            );
            tokio::spawn(run_item(shared.clone(), id, job.to_owned(), setup));
            (StatusCode::CREATED, id)
        }
    };
    record.queue_id = Some(id);
    record.status = status.as_u16();
    inner.triggers.push(record);
    let mut resp = status.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("{base}/queue/item/{id}/")) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// Moves one queue item through its life: waiting, buildable, left (+ build).
async fn run_item(shared: Shared, id: u64, job: String, setup: JobSetup) {
    let half = setup.queue_time / 2;
    tokio::time::sleep(half).await;
    if let Some(q) = lock(&shared).queue.get_mut(&id) {
        q.state = QueueState::Buildable;
    }
    tokio::time::sleep(setup.queue_time.saturating_sub(half)).await;
    let params = {
        let mut inner = lock(&shared);
        if setup.cancel_in_queue {
            if let Some(q) = inner.queue.get_mut(&id) {
                q.state = QueueState::Left { build: None };
                q.left_at = Some(Instant::now());
            }
            return;
        }
        let number = match inner.jobs.get_mut(&job) {
            Some(j) => {
                let n = j.next_number;
                j.next_number += 1;
                n
            }
            None => return,
        };
        let params = inner
            .queue
            .get(&id)
            .map(|q| q.params.clone())
            .unwrap_or_default();
        inner.builds.insert(
            (job.clone(), number),
            Build {
                kind: setup.kind,
                changes: setup.changes.clone(),
                queue_id: id,
                started: SystemTime::now(),
                building: true,
                result: None,
                duration_ms: 0,
                estimated_ms: setup
                    .estimated_duration
                    .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                    .unwrap_or(-1),
                params: params.clone(),
            },
        );
        if let Some(q) = inner.queue.get_mut(&id) {
            q.state = QueueState::Left {
                build: Some(number),
            };
            q.left_at = Some(Instant::now());
        }
        inner.progress.send_modify(|n| *n += 1);
        (number, params)
    };
    let (number, params) = params;
    let started = Instant::now();
    tokio::time::sleep(setup.build_duration).await;
    {
        let mut inner = lock(&shared);
        if let Some(b) = inner.builds.get_mut(&(job.clone(), number)) {
            b.building = false;
            b.result = Some(setup.result.clone());
            b.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        }
        inner.progress.send_modify(|n| *n += 1);
    }
    if setup.result == "SUCCESS" {
        if let Some(hook) = &setup.on_success {
            hook(&params);
        }
    }
}

fn queue_item(shared: &Shared, id: u64) -> Response {
    let inner = lock(shared);
    let Some(q) = inner.queue.get(&id) else {
        return not_found();
    };
    if q.left_at.is_some_and(|t| t.elapsed() > inner.left_item_ttl) {
        return not_found();
    }
    let job_url = job_url(&inner.base, &q.job);
    let name = q.job.rsplit('/').next().unwrap_or(&q.job);
    let kind = inner
        .jobs
        .get(&q.job)
        .map(|j| j.setup.kind)
        .unwrap_or_default();
    let classes = match kind {
        JobKind::Freestyle => (
            "hudson.model.FreeStyleProject",
            "hudson.model.FreeStyleBuild",
        ),
        JobKind::Pipeline => (
            "org.jenkinsci.plugins.workflow.job.WorkflowJob",
            "org.jenkinsci.plugins.workflow.job.WorkflowRun",
        ),
    };
    let mut v = json!({
        "_class": match q.state {
            QueueState::Waiting => "hudson.model.Queue$WaitingItem",
            QueueState::Buildable => "hudson.model.Queue$BuildableItem",
            QueueState::Left { .. } => "hudson.model.Queue$LeftItem",
        },
        "actions": [params_action(&q.params)],
        "blocked": false,
        "buildable": q.state == QueueState::Buildable,
        "id": id,
        "inQueueSince": epoch_ms(q.since),
        "params": q.params.iter().map(|(k, v)| format!("\n{k}={v}")).collect::<String>(),
        "stuck": false,
        "task": {"_class": classes.0, "name": name, "url": job_url, "color": "blue"},
        "url": format!("queue/item/{id}/"),
        "why": match q.state {
            QueueState::Waiting => Value::from("In the quiet period. Expires in 0.1 sec"),
            QueueState::Buildable => Value::from("Waiting for next available executor"),
            QueueState::Left { .. } => Value::Null,
        },
    });
    if let (QueueState::Left { build }, Some(obj)) = (q.state, v.as_object_mut()) {
        obj.insert("cancelled".into(), Value::Bool(build.is_none()));
        obj.insert(
            "executable".into(),
            match build {
                Some(n) => json!({
                    "_class": classes.1,
                    "number": n,
                    "url": format!("{job_url}{n}/"),
                }),
                None => Value::Null,
            },
        );
    }
    Json(v).into_response()
}

fn params_action(params: &[(String, String)]) -> Value {
    json!({
        "_class": "hudson.model.ParametersAction",
        "parameters": params.iter().map(|(k, v)| json!({
            "_class": "hudson.model.StringParameterValue", "name": k, "value": v
        })).collect::<Vec<_>>(),
    })
}

fn get_under_job(shared: &Shared, job: &str, rest: &[&str]) -> Response {
    let inner = lock(shared);
    let Some(state) = inner.jobs.get(job) else {
        return not_found();
    };
    let job_url = job_url(&inner.base, job);
    match rest {
        ["api", "json"] => Json(json!({
            "_class": match state.setup.kind {
                JobKind::Freestyle => "hudson.model.FreeStyleProject",
                JobKind::Pipeline => "org.jenkinsci.plugins.workflow.job.WorkflowJob",
            },
            "name": job.rsplit('/').next().unwrap_or(job),
            "fullName": job,
            "url": job_url,
            "buildable": true,
            "nextBuildNumber": state.next_number,
        }))
        .into_response(),
        [number, tail @ ..] => {
            let Ok(number) = number.parse::<u64>() else {
                return not_found();
            };
            let Some(b) = inner.builds.get(&(job.to_owned(), number)) else {
                return not_found();
            };
            match tail {
                ["api", "json"] => {
                    Json(build_json(&inner.base, job, &job_url, number, b)).into_response()
                }
                ["console"] | ["consoleText"] => {
                    let mut log = String::from("Started by remote API\n");
                    for (k, v) in &b.params {
                        log.push_str(&format!("  {k}={v}\n"));
                    }
                    match &b.result {
                        Some(r) => log.push_str(&format!("Finished: {r}\n")),
                        None => log.push_str("…\n"),
                    }
                    text(StatusCode::OK, log)
                }
                _ => not_found(),
            }
        }
        _ => not_found(),
    }
}

/// 2024-05-01 12:00:00 UTC in epoch milliseconds: the last commit of a change set.
const LAST_CHANGE_MS: u64 = 1_714_564_800_000;

fn build_json(base: &str, job: &str, job_url: &str, number: u64, b: &Build) -> Value {
    let mut v = json!({
        "_class": match b.kind {
            JobKind::Freestyle => "hudson.model.FreeStyleBuild",
            JobKind::Pipeline => "org.jenkinsci.plugins.workflow.job.WorkflowRun",
        },
        "actions": [params_action(&b.params)],
        "building": b.building,
        "displayName": format!("#{number}"),
        "duration": b.duration_ms,
        "estimatedDuration": b.estimated_ms,
        "fullDisplayName": format!("{} #{number}", job.replace('/', " » ")),
        "id": number.to_string(),
        "inProgress": b.building,
        "number": number,
        "queueId": b.queue_id,
        "result": b.result,
        "timestamp": epoch_ms(b.started),
        "url": format!("{job_url}{number}/"),
    });
    if let Some(obj) = v.as_object_mut() {
        match b.kind {
            JobKind::Pipeline => {
                let sets = if b.changes.is_empty() {
                    Vec::new()
                } else {
                    vec![change_set(base, &b.changes)]
                };
                obj.insert("changeSets".into(), Value::Array(sets));
            }
            JobKind::Freestyle => {
                let set = if b.changes.is_empty() {
                    json!({"_class": "hudson.scm.EmptyChangeLogSet", "items": [], "kind": null})
                } else {
                    change_set(base, &b.changes)
                };
                obj.insert("changeSet".into(), set);
            }
        }
    }
    v
}

/// A `GitChangeSetList` as the git plugin exports it.
fn change_set(base: &str, changes: &[Change]) -> Value {
    let items: Vec<Value> = changes
        .iter()
        .map(|c| {
            let user = encode_segment(&c.author.to_ascii_lowercase().replace(' ', "."));
            json!({
                "_class": "hudson.plugins.git.GitChangeSet",
                "affectedPaths": [],
                "commitId": c.commit_id,
                "timestamp": c.timestamp_ms,
                "author": {"absoluteUrl": format!("{base}/user/{user}"), "fullName": c.author},
                "authorEmail": c.author_email,
                "comment": format!("{}\n", c.message.trim_end_matches('\n')),
                "date": git_date(c.timestamp_ms),
                "id": c.commit_id,
                "msg": c.message.lines().next().unwrap_or(""),
                "paths": [],
            })
        })
        .collect();
    json!({"_class": "hudson.plugins.git.GitChangeSetList", "items": items, "kind": "git"})
}

/// `2024-05-01 12:00:00 +0000`, as the git plugin formats commit dates (in UTC here).
fn git_date(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} +0000",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod change_tests {
    use super::git_date;

    #[test]
    fn formats_git_dates() {
        assert_eq!(git_date(super::LAST_CHANGE_MS), "2024-05-01 12:00:00 +0000");
        assert_eq!(git_date(0), "1970-01-01 00:00:00 +0000");
        assert_eq!(git_date(951_782_400_000), "2000-02-29 00:00:00 +0000");
    }
}
