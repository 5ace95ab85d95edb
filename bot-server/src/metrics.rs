//! Prometheus metrics: HTTP requests by route and status, Slack Web API calls and
//! failures by method and error code, deduplicated and shed events, and messages the
//! outbox gave up on.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabels {
    task: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    method: String,
    error: String,
}

/// The server's counters; cheap to clone (clones share the counters).
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    requests: Family<RouteLabels, Counter>,
    api_calls: Family<MethodLabels, Counter>,
    api_failures: Family<FailureLabels, Counter>,
    deduplicated: Counter,
    foreign: Counter,
    rate_limited: Counter,
    shed: Counter,
    outbox_given_up: Counter,
    restarts: Family<TaskLabels, Counter>,
    hook_failures: Family<KindLabels, Counter>,
    in_flight: Gauge,
    stats: std::sync::Mutex<Stats>,
}

/// The counters of `GET /api/v1/stats`, for people who do not run Prometheus.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Stats {
    /// Messages (events, slash commands, clicks, console lines) taken for processing.
    pub received: u64,
    /// Messages the engine finished with.
    pub processed: u64,
    /// Final replies delivered.
    pub replied: u64,
    /// Commands by outcome (`done`, `failed`, `rejected`, `info` …).
    pub commands: std::collections::BTreeMap<String, u64>,
    /// Slack Web API errors by kind (Slack's error code, or an HTTP reason).
    pub slack_errors: std::collections::BTreeMap<String, u64>,
    /// Jenkins errors by kind (`unreachable`, `unauthorized`, `no_such_job` …).
    pub jenkins_errors: std::collections::BTreeMap<String, u64>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Fresh counters, all at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("crossroads");
        let requests = Family::<RouteLabels, Counter>::default();
        let api_calls = Family::<MethodLabels, Counter>::default();
        let api_failures = Family::<FailureLabels, Counter>::default();
        let deduplicated = Counter::default();
        let foreign = Counter::default();
        let rate_limited = Counter::default();
        let shed = Counter::default();
        let outbox_given_up = Counter::default();
        let restarts = Family::<TaskLabels, Counter>::default();
        let hook_failures = Family::<KindLabels, Counter>::default();
        let in_flight = Gauge::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route and status",
            requests.clone(),
        );
        registry.register(
            "slack_api_calls",
            "Slack Web API and response_url calls attempted, by method",
            api_calls.clone(),
        );
        registry.register(
            "slack_api_failures",
            "Slack Web API and response_url calls that failed, by method and Slack error code",
            api_failures.clone(),
        );
        registry.register(
            "slack_events_deduplicated",
            "Event deliveries dropped because their event_id was already handled",
            deduplicated.clone(),
        );
        registry.register(
            "slack_deliveries_foreign",
            "Deliveries from a workspace not in SLACK_TEAM_ID (Slack Connect users of another organisation included), acknowledged and ignored",
            foreign.clone(),
        );
        registry.register(
            "chat_rate_limited",
            "Messages, commands and clicks over CROSSROADS_CHAT_RATE_LIMIT, not run",
            rate_limited.clone(),
        );
        registry.register(
            "slack_events_shed",
            "Deliveries refused with 503 because too much work was in flight",
            shed.clone(),
        );
        registry.register(
            "outbox_given_up",
            "Messages (replies, progress, announcements) given up after their last delivery attempt failed",
            outbox_given_up.clone(),
        );
        registry.register(
            "background_task_restarts",
            "Background tasks (courier, hooks, monitor, sweeper …) that panicked or ended before shutdown and were started again, by task",
            restarts.clone(),
        );
        registry.register(
            "hook_failures",
            "Incident hooks and change records (GitHub deployments, Grafana annotations, PagerDuty events, webhooks) whose sending failed, by kind",
            hook_failures.clone(),
        );
        registry.register(
            "background_tasks_in_flight",
            "Requests being processed after their acknowledgement",
            in_flight.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                registry,
                requests,
                api_calls,
                api_failures,
                deduplicated,
                foreign,
                rate_limited,
                shed,
                outbox_given_up,
                restarts,
                hook_failures,
                in_flight,
                stats: std::sync::Mutex::new(Stats::default()),
            }),
        }
    }

    /// Counts an answered HTTP request.
    pub fn request(&self, route: &'static str, status: u16) {
        self.inner
            .requests
            .get_or_create(&RouteLabels { route, status })
            .inc();
    }

    /// Counts a Web API call attempt.
    pub fn api_call(&self, method: &str) {
        self.inner
            .api_calls
            .get_or_create(&MethodLabels {
                method: method.to_owned(),
            })
            .inc();
    }

    /// Counts a failed Web API call attempt with Slack's error code (or an HTTP reason).
    pub fn api_failure(&self, method: &str, error: &str) {
        self.inner
            .api_failures
            .get_or_create(&FailureLabels {
                method: method.to_owned(),
                error: error.to_owned(),
            })
            .inc();
        self.with_stats(|s| *s.slack_errors.entry(error.to_owned()).or_default() += 1);
    }

    fn with_stats(&self, f: impl FnOnce(&mut Stats)) {
        match self.inner.stats.lock() {
            Ok(mut s) => f(&mut s),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// Counts a message taken for processing.
    pub fn received(&self) {
        self.with_stats(|s| s.received += 1);
    }

    /// Counts a message processed, with its command's outcome.
    pub fn processed(&self, outcome: bot_core::Outcome) {
        let name = format!("{outcome:?}").to_lowercase();
        self.with_stats(|s| {
            s.processed += 1;
            *s.commands.entry(name).or_default() += 1;
        });
    }

    /// Counts a final reply delivered.
    pub fn replied(&self) {
        self.with_stats(|s| s.replied += 1);
    }

    /// Counts a Jenkins error of `kind`.
    pub fn jenkins_error(&self, kind: &str) {
        self.with_stats(|s| *s.jenkins_errors.entry(kind.to_owned()).or_default() += 1);
    }

    /// The counters of `GET /api/v1/stats`.
    pub fn stats(&self) -> Stats {
        let mut out = Stats::default();
        self.with_stats(|s| out = s.clone());
        out
    }

    /// Counts a duplicate event delivery.
    pub fn deduplicated(&self) {
        self.inner.deduplicated.inc();
    }

    /// Counts a delivery from a workspace not served.
    pub fn foreign(&self) {
        self.inner.foreign.inc();
    }

    /// Counts a message over the chat rate limit.
    pub fn rate_limited(&self) {
        self.inner.rate_limited.inc();
    }

    /// Counts an outbox message given up after its last attempt failed.
    pub fn outbox_given_up(&self) {
        self.inner.outbox_given_up.inc();
    }

    /// Counts a hook or change record whose sending failed (`kind`: `github`,
    /// `grafana`, `pagerduty_change`, `pagerduty`, `webhook`).
    pub fn hook_failed(&self, kind: &str) {
        self.inner
            .hook_failures
            .get_or_create(&KindLabels {
                kind: kind.to_owned(),
            })
            .inc();
    }

    /// A background task was started again.
    pub fn task_restarted(&self, task: &'static str) {
        self.inner
            .restarts
            .get_or_create(&TaskLabels { task })
            .inc();
    }

    /// Counts work refused for lack of room.
    pub fn shed(&self) {
        self.inner.shed.inc();
    }

    /// Tracks background tasks.
    pub(crate) fn in_flight(&self, delta: i64) {
        self.inner.in_flight.inc_by(delta);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry) {
            tracing::error!(error = %e, "could not encode metrics");
        }
        out
    }
}

/// A [`Ci`](bot_core::ports::Ci) that counts its errors by kind in [`Metrics`]
/// (for `GET /api/v1/stats`) and otherwise is the CI it wraps.
pub struct CountingCi {
    inner: Arc<dyn bot_core::ports::Ci>,
    metrics: Metrics,
}

impl CountingCi {
    /// Counts `inner`'s errors into `metrics`.
    pub fn new(inner: Arc<dyn bot_core::ports::Ci>, metrics: Metrics) -> Self {
        Self { inner, metrics }
    }

    fn count<T>(
        &self,
        r: Result<T, bot_core::ports::CiError>,
    ) -> Result<T, bot_core::ports::CiError> {
        use bot_core::ports::CiError as E;
        if let Err(e) = &r {
            let kind = match e {
                E::Unreachable { .. } => "unreachable",
                E::Unauthorized { .. } => "unauthorized",
                E::NoSuchJob { .. } => "no_such_job",
                E::Rejected { .. } => "rejected",
                E::Cancelled { .. } => "cancelled",
                E::Timeout { .. } => "timeout",
                E::Protocol(_) => "protocol",
                E::NotConfigured => "not_configured",
                E::CannotReattach => "cannot_reattach",
            };
            self.metrics.jenkins_error(kind);
        }
        r
    }
}

#[async_trait::async_trait]
impl bot_core::ports::Ci for CountingCi {
    async fn run_job(
        &self,
        job: &str,
        params: &[(String, String)],
        progress: &(dyn Fn(bot_core::ports::BuildProgress) + Send + Sync),
    ) -> Result<bot_core::ports::BuildOutcome, bot_core::ports::CiError> {
        self.count(self.inner.run_job(job, params, progress).await)
    }

    async fn trigger(
        &self,
        job: &str,
        params: &[(String, String)],
    ) -> Result<Option<bot_core::ports::BuildRef>, bot_core::ports::CiError> {
        self.count(self.inner.trigger(job, params).await)
    }

    async fn reattach(
        &self,
        job: &str,
        at: &bot_core::ports::BuildRef,
        progress: &(dyn Fn(bot_core::ports::BuildProgress) + Send + Sync),
    ) -> Result<bot_core::ports::BuildOutcome, bot_core::ports::CiError> {
        self.count(self.inner.reattach(job, at, progress).await)
    }

    async fn changes(
        &self,
        job: &str,
        url: &str,
    ) -> Result<Option<Vec<bot_core::ports::Commit>>, bot_core::ports::CiError> {
        self.count(self.inner.changes(job, url).await)
    }
}
