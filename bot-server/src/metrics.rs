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
    shed: Counter,
    outbox_given_up: Counter,
    in_flight: Gauge,
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
        let shed = Counter::default();
        let outbox_given_up = Counter::default();
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
                shed,
                outbox_given_up,
                in_flight,
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
    }

    /// Counts a duplicate event delivery.
    pub fn deduplicated(&self) {
        self.inner.deduplicated.inc();
    }

    /// Counts an outbox message given up after its last attempt failed.
    pub fn outbox_given_up(&self) {
        self.inner.outbox_given_up.inc();
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
