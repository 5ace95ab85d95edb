//! Progress of long actions, delivered through the outbox by the courier: the action
//! never waits on Slack; the newest state is posted once, then edited in place at most
//! every interval; the final reply comes last; `response_url` answers stay within
//! Slack's five uses and always deliver the final reply.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bot_core::adapters::outbox_progress::OutboxProgress;
use bot_core::adapters::store::memory::MemoryStore;
use bot_core::config::Secret;
use bot_core::ports::Store;
use bot_core::{Outcome, Progress, Reply};
use bot_server::slack::courier::{Courier, TRANSPORT};
use bot_server::slack::delivery::Destination as Target;
use bot_server::{Metrics, WebApi};
use common::*;
use tokio::sync::Notify;

/// One request's answers going through an outbox message to the Slack stand-in, with
/// a courier delivering them.
struct Sink {
    store: Arc<dyn Store>,
    progress: OutboxProgress,
    stop: Arc<Notify>,
    courier: tokio::task::JoinHandle<()>,
}

impl Sink {
    async fn with_interval(web: WebApi, target: Target, interval: Duration) -> Self {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let wake = Arc::new(Notify::new());
        store
            .open_message(
                "msg",
                TRANSPORT,
                &serde_json::to_value(&target).expect("route"),
                "U1: a long action",
                SystemTime::now(),
            )
            .await
            .expect("open");
        let waker = wake.clone();
        let progress =
            OutboxProgress::new(store.clone(), "msg").waking(Arc::new(move || waker.notify_one()));
        let stop = Arc::new(Notify::new());
        let courier = Courier::for_store(store.clone(), web, interval, wake);
        let stopped = stop.clone();
        let courier =
            tokio::spawn(async move { courier.run(async move { stopped.notified().await }).await });
        Self {
            store,
            progress,
            stop,
            courier,
        }
    }

    async fn new(web: WebApi, target: Target) -> Self {
        Self::with_interval(web, target, bot_server::config::PROGRESS_INTERVAL).await
    }

    async fn update(&self, reply: &Reply) {
        self.progress.update(reply).await;
    }

    /// Writes the final reply and waits until the courier delivered it.
    async fn finish(self, reply: &Reply) {
        self.progress
            .finish(reply)
            .await
            .expect("final reply written");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let m = self
                .store
                .message("msg")
                .await
                .expect("read")
                .expect("message");
            if m.delivered == m.version || m.given_up {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the final reply was never delivered: {m:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.stop.notify_one();
        let _ = self.courier.await;
    }
}

fn web(slack: &StandIn) -> WebApi {
    WebApi::new(
        &slack.api_url(),
        Secret::new(TOKEN),
        Metrics::new(),
        Duration::from_secs(5),
        3,
    )
    .expect("client")
}

fn dm_target() -> Target {
    Target::Channel {
        channel: "D1".into(),
        thread_ts: None,
        user: "U1".into(),
    }
}

fn message_target(slack: &StandIn) -> Target {
    Target::Message {
        channel: "C5".into(),
        ts: CLICKED_TS.into(),
        response_url: slack.response_url("unused"),
    }
}

fn text(call: &Call) -> String {
    call.body["text"].as_str().unwrap_or_default().to_owned()
}

/// The step number of a "step N" progress text.
fn step(call: &Call) -> u32 {
    text(call)
        .strip_prefix("step ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a progress step: {}", call.body))
}

#[tokio::test]
async fn progress_is_posted_once_then_updated_in_place() {
    let slack = StandIn::start().await;
    let sink = Sink::with_interval(web(&slack), dm_target(), Duration::from_millis(20)).await;
    for pct in [10, 50, 90] {
        sink.update(&Reply::message(
            Outcome::Progress,
            format!("building {pct}%"),
        ))
        .await;
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    sink.finish(&Reply::message(Outcome::Done, "switched to green"))
        .await;
    let posts = slack.calls("chat.postMessage");
    let updates = slack.calls("chat.update");
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].body["text"], "building 10%");
    assert!(
        (1..=3).contains(&updates.len()),
        "{} edits for 2 progress updates and the reply",
        updates.len()
    );
    for u in &updates {
        assert_eq!(u.body["channel"], "D1");
        assert_eq!(
            u.body["ts"], "1700000000.000001",
            "edits the posted message"
        );
    }
    assert_eq!(text(&updates[updates.len() - 1]), "switched to green");
}

#[tokio::test]
async fn fifty_quick_updates_make_a_few_calls_ending_with_the_final_reply() {
    let slack = StandIn::start().await;
    let sink = Sink::new(web(&slack), message_target(&slack)).await;
    for i in 1..=50 {
        sink.update(&Reply::message(Outcome::Progress, format!("step {i}")))
            .await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    sink.finish(&Reply::message(Outcome::Done, "deployed"))
        .await;
    let calls = slack.all_calls();
    assert!(
        (2..=4).contains(&calls.len()),
        "50 updates within one interval: the first, then the reply; got {}",
        calls.len()
    );
    assert!(calls.iter().all(|c| c.method == "chat.update"));
    assert!(calls.iter().all(|c| c.body["ts"] == CLICKED_TS));
    assert_eq!(text(&calls[calls.len() - 1]), "deployed");
    // Nothing arrives after the final reply.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(slack.all_calls().len(), calls.len());
}

#[tokio::test]
async fn edits_are_spaced_by_the_interval_and_carry_the_newest_state() {
    let slack = StandIn::start().await;
    let every = Duration::from_millis(100);
    let sink = Sink::with_interval(web(&slack), message_target(&slack), every).await;
    for i in 1..=40 {
        sink.update(&Reply::message(Outcome::Progress, format!("step {i}")))
            .await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Everything the action reported has been flushed once the interval passes.
    tokio::time::sleep(every * 3).await;
    let progress = slack.calls("chat.update");
    assert_eq!(
        step(&progress[progress.len() - 1]),
        40,
        "the newest state arrives"
    );
    sink.finish(&Reply::message(Outcome::Done, "deployed"))
        .await;
    let calls = slack.calls("chat.update");
    assert_eq!(
        text(&calls[calls.len() - 1]),
        "deployed",
        "the reply is last"
    );
    let progress = &calls[..calls.len() - 1];
    assert!(
        progress.len() < 40,
        "{} edits for 40 updates",
        progress.len()
    );
    for pair in progress.windows(2) {
        assert!(step(&pair[1]) > step(&pair[0]), "newer states only");
        let gap = pair[1].at - pair[0].at;
        assert!(gap >= every, "two edits {gap:?} apart");
    }
}

#[tokio::test]
async fn a_rate_limited_progress_edit_does_not_hold_up_the_action() {
    let slack = StandIn::start().await;
    slack.script("chat.update", &[Scripted::RateLimitedFor(30)]);
    let sink = Sink::new(web(&slack), message_target(&slack)).await;
    let started = Instant::now();
    for i in 1..=50 {
        sink.update(&Reply::message(Outcome::Progress, format!("step {i}")))
            .await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    sink.finish(&Reply::message(Outcome::Done, "deployed"))
        .await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "the action waited {took:?} on a Retry-After of 30 s"
    );
    let calls = slack.calls("chat.update");
    assert_eq!(calls.len(), 2, "the 429'd edit and the reply: {calls:?}");
    assert_eq!(text(&calls[1]), "deployed");
}

#[tokio::test]
async fn a_response_url_gets_at_most_four_progress_uses_and_always_the_reply() {
    let slack = StandIn::start().await;
    let sink = Sink::with_interval(
        web(&slack),
        Target::ResponseUrl {
            url: slack.response_url("p"),
            slash: false,
            channel: None,
        },
        Duration::from_millis(1),
    )
    .await;
    for i in 1..=20 {
        sink.update(&Reply::message(Outcome::Progress, format!("step {i}")))
            .await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sink.finish(&Reply::message(Outcome::Done, "done")).await;
    let calls = slack.calls("response/p");
    assert!(
        (2..=5).contains(&calls.len()),
        "Slack allows five uses: {}",
        calls.len()
    );
    assert!(calls.iter().all(|c| c.body["replace_original"] == true));
    assert_eq!(text(&calls[calls.len() - 1]), "done");
}

#[tokio::test]
async fn a_slash_sink_posts_first_then_replaces() {
    let slack = StandIn::start().await;
    let sink = Sink::new(
        web(&slack),
        Target::ResponseUrl {
            url: slack.response_url("s"),
            slash: true,
            channel: None,
        },
    )
    .await;
    sink.update(&Reply::message(Outcome::Progress, "queued"))
        .await;
    // The first update goes out at once, not held back by the interval.
    slack.wait_for("response/s", 1).await;
    sink.finish(&Reply::message(Outcome::Done, "done")).await;
    let calls = slack.calls("response/s");
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].body["replace_original"], false);
    assert_eq!(calls[0].body["response_type"], "in_channel");
    assert_eq!(text(&calls[0]), "queued");
    assert_eq!(calls[1].body["replace_original"], true);
    assert_eq!(text(&calls[1]), "done");
}

#[tokio::test]
async fn a_dm_build_with_fifty_progress_steps_makes_a_few_calls() {
    let app = TestApp::start().await;
    app.event(&dm("Ev700", "U1", "build")).await;
    app.slack.wait_for("chat.postMessage", 1).await;
    app.settle().await;
    let calls = app.slack.all_calls();
    assert!(calls.len() <= 4, "{} Web API calls", calls.len());
    assert_eq!(calls[0].method, "chat.postMessage");
    let last = &calls[calls.len() - 1];
    assert_eq!(last.method, "chat.update");
    assert!(text(last).contains("succeeded"), "{}", last.body);
}
