//! The monitor, as the people in the channel and the incident tools see it: a
//! confirmed down is announced once (what, since when, why), its recovery edits the
//! announcement with the downtime, PagerDuty gets a trigger then a resolve with one
//! dedup_key, webhooks hear both; flapping below `confirm` says nothing; a hung
//! instance does not hold the others' probes back; an unchanged instance is a few
//! rows of the probe log that count every probe; two replicas run one monitor.

use crate::common;

use std::time::{Duration, Instant, SystemTime};

use axum::http::StatusCode;
use axum::routing::get;
use bot_core::config::InstanceRef;
use bot_core::ports::watch::{instance_target, Health};
use common::watched::{Timing, Watched, CHANNEL, ROUTING_KEY};
use crossroads_sim::instance::Behaviour;

fn text(call: &common::Call) -> String {
    call.body
        .get("text")
        .and_then(|t| t.as_str())
        .unwrap_or_default()
        .to_owned()
        + &common::block_text(&call.body)
}

async fn until<T>(what: &str, within: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "waited {within:?} for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn target(env: &str, member: &str) -> String {
    instance_target(&InstanceRef {
        env: env.into(),
        pool: "api".into(),
        member: member.into(),
        region: None,
    })
}

/// Probes of `target` recorded since `since`.
async fn probes(w: &Watched, target: &str, since: SystemTime) -> Vec<bot_core::ports::ProbeRecord> {
    w.bot
        .store()
        .probes(
            target,
            since,
            SystemTime::now() + Duration::from_secs(60),
            10_000,
        )
        .await
        .expect("read the probe log")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_instance_is_announced_once_and_its_recovery_edits_it_with_the_downtime() {
    let w = Watched::start(Timing::default()).await;
    let every = w.timing.every;
    // Everything is confirmed ok first: nothing to say about that.
    tokio::time::sleep(every * 6).await;
    assert!(
        w.slack.calls("chat.postMessage").is_empty(),
        "healthy targets are not announced"
    );

    w.instance("staging", "green")
        .control()
        .set_behaviour(Behaviour::Unhealthy);
    let posted = w.slack.wait_for("chat.postMessage", 1).await;
    let announcement = text(&posted[0]);
    assert_eq!(
        posted[0].body["channel"], CHANNEL,
        "announced in the monitor's channel"
    );
    assert!(
        announcement.contains("staging api green"),
        "says what: {announcement}"
    );
    assert!(
        announcement.contains("not ok since"),
        "says since when: {announcement}"
    );
    assert!(announcement.contains("UTC"), "since a time: {announcement}");
    assert!(
        announcement.contains("status 200"),
        "says why (the recipe's verdict): {announcement}"
    );
    assert!(
        !announcement.contains("127.0.0.1"),
        "no URL in Slack: {announcement}"
    );

    // It stays down for a while: still one announcement.
    tokio::time::sleep(every * 8).await;
    assert_eq!(
        w.slack.calls("chat.postMessage").len(),
        1,
        "announced exactly once"
    );

    w.instance("staging", "green")
        .control()
        .set_behaviour(Behaviour::Healthy);
    let updated = w.slack.wait_for("chat.update", 1).await;
    let recovery = text(&updated[0]);
    assert!(
        recovery.contains("staging api green recovered after")
            || recovery.contains("*staging api green* recovered after"),
        "{recovery}"
    );
    assert_eq!(
        updated[0].body["ts"], "1700000000.000001",
        "the announcement itself is edited"
    );
    tokio::time::sleep(every * 6).await;
    assert_eq!(
        w.slack.calls("chat.postMessage").len(),
        1,
        "no second announcement"
    );
    assert_eq!(
        w.slack.calls("chat.update").len(),
        1,
        "one recovery message"
    );

    // PagerDuty: a trigger, then a resolve, one dedup_key.
    let events = w.pagerduty.wait_for_accepted(2).await;
    let actions: Vec<&str> = events.iter().filter_map(|e| e.action()).collect();
    assert_eq!(actions, ["trigger", "resolve"]);
    assert_eq!(
        events[0].body["dedup_key"], events[1].body["dedup_key"],
        "one dedup_key per target"
    );
    assert_eq!(events[0].body["routing_key"], ROUTING_KEY);
    assert!(events[0]
        .summary()
        .unwrap_or_default()
        .contains("staging api green"));

    // Webhooks: a JSON event on each confirmed change.
    let hooks = w.webhook.wait_for(2).await;
    let kinds: Vec<&str> = hooks
        .iter()
        .filter_map(|d| d.body["event"].as_str())
        .collect();
    assert_eq!(kinds, ["down", "recovered"]);
    assert_eq!(hooks[1].body["name"], "staging api green");
    assert!(hooks[1].body["downtime_secs"].is_u64());
    assert!(
        hooks.iter().all(|d| !d
            .raw
            .windows(ROUTING_KEY.len())
            .any(|x| x == ROUTING_KEY.as_bytes())),
        "the routing key goes to PagerDuty only"
    );
}

/// An instance whose health answers 503 twice, then 200 twice, forever: it never
/// fails three probes in a row.
async fn flapping() -> (String, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use std::sync::atomic::{AtomicU64, Ordering};
    let hits = std::sync::Arc::new(AtomicU64::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().route(
        "/health",
        get(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                if n % 4 < 2 {
                    (StatusCode::SERVICE_UNAVAILABLE, r#"{"status":"degraded"}"#)
                } else {
                    (StatusCode::OK, r#"{"status":"ok","version":"1.0.0"}"#)
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_flapping_below_the_threshold_says_nothing() {
    let (url, hits) = flapping().await;
    let extra = format!("checks:\n  flaky:\n    url: \"{url}/health\"\n");
    let w = Watched::start_with(Timing::default(), &extra, None).await;
    let id = bot_core::ports::watch::check_target("flaky");
    let since = SystemTime::now() - Duration::from_secs(1);
    until(
        "twenty probes of the flapping target",
        Duration::from_secs(10),
        || (hits.load(std::sync::atomic::Ordering::SeqCst) >= 20).then_some(()),
    )
    .await;
    let seen = probes(&w, &id, since).await;
    assert!(
        seen.iter().any(|p| p.health == Health::NotOk),
        "it did fail probes"
    );
    tokio::time::sleep(w.timing.every * 2).await;
    assert!(
        w.slack.calls("chat.postMessage").is_empty(),
        "no announcement for flapping"
    );
    assert!(w.pagerduty.events().is_empty(), "no page for flapping");
    let watch = w.bot.store().watch_of(&id).await.expect("read watch");
    assert_ne!(
        watch.map(|w| w.health),
        Some(Health::NotOk),
        "never confirmed down"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_instance_does_not_delay_the_others() {
    let timing = Timing {
        every: Duration::from_millis(100),
        confirm: 3,
        timeout: Duration::from_secs(3),
    };
    let w = Watched::start(timing).await;
    w.instance("master", "blue")
        .control()
        .set_behaviour(Behaviour::Hang);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let since = SystemTime::now();
    let green = w.instance("master", "green").control();
    let hits_before = green.health_hits();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let hits = green.health_hits() - hits_before;
    // Results are written within a second or so (a batch at a time).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let hung = probes(&w, &target("master", "blue"), since).await;
    let other = probes(&w, &target("master", "green"), since).await;
    assert!(
        hung.len() <= 1,
        "the hung instance answers nothing within its 3 s timeout: {hung:?}"
    );
    assert!(
        hits >= 8,
        "its neighbour was probed every 100 ms meanwhile ({hits} probes in 1.5 s)"
    );
    assert!(
        other.iter().all(|p| p.health == Health::Ok),
        "and found ok each time: {other:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_log_keeps_a_few_rows_of_an_unchanged_instance_and_counts_every_probe() {
    let mut w = Watched::start(Timing::default()).await;
    let since = SystemTime::now() - Duration::from_secs(60);
    let green = w.instance("staging", "green").control();
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Stopping writes what was held back.
    w.stop().await;
    let hits = green.health_hits();
    let kept = probes(&w, &target("staging", "green"), since).await;
    let counted: u64 = kept.iter().map(|p| u64::from(p.count)).sum();
    assert!(
        kept.len() <= 3,
        "an instance that keeps answering ok is a row a minute, not a row a probe: {kept:?}"
    );
    assert!(
        counted >= 15 && counted <= hits,
        "the rows count the probes (uptime charts add them up): {counted} counted, {hits} probes"
    );
    assert!(kept.iter().all(|p| p.health == Health::Ok));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_target_is_not_ok_because_of_why() {
    let extra = "checks:\n  status-page:\n    url: \"http://127.0.0.1:9/status\"\n";
    let w = Watched::start_with(Timing::default(), extra, None).await;
    let posted = w.slack.wait_for("chat.postMessage", 1).await;
    let t = text(&posted[0]);
    assert!(
        t.contains("status-page") && t.contains("connection refused"),
        "{t}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_database_run_one_monitor_between_them() {
    let db = crossroads_sim::postgres::fresh_database("one_monitor").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = match &db {
        Some(db) => db.url.clone(),
        None => format!("sqlite://{}", dir.path().join("state.db").display()),
    };
    let store = bot_core::adapters::store::connect(&url, true)
        .await
        .expect("store");
    let mut w = Watched::start_with(Timing::default(), "", Some(store)).await;
    // A second replica of the same platform on the same database.
    let second_store = bot_core::adapters::store::connect(&url, false)
        .await
        .expect("store");
    let second = bot_core::Bot::builder(w.bot.config())
        .store(second_store)
        .owner("replica-two")
        .build();
    let (_addr, _stop, _server) = common::watched::serve(second, &w.slack).await;

    tokio::time::sleep(w.timing.every * 5).await;
    w.instance("staging", "blue")
        .control()
        .set_behaviour(Behaviour::Unhealthy);
    w.slack.wait_for("chat.postMessage", 1).await;
    tokio::time::sleep(w.timing.every * 8).await;
    assert_eq!(
        w.slack.calls("chat.postMessage").len(),
        1,
        "one announcement, not one per replica"
    );
    assert_eq!(w.pagerduty.events().len(), 1, "one trigger");

    // The replica running the monitor stops: the other takes over within the lease
    // and announces the recovery once.
    w.stop().await;
    w.instance("staging", "blue")
        .control()
        .set_behaviour(Behaviour::Healthy);
    let updated = w.slack.wait_for("chat.update", 1).await;
    assert!(
        text(&updated[0]).contains("recovered after"),
        "{}",
        text(&updated[0])
    );
    let events = w.pagerduty.wait_for_accepted(2).await;
    assert_eq!(events[1].action(), Some("resolve"));
    assert_eq!(events[0].body["dedup_key"], events[1].body["dedup_key"]);
}

#[test]
fn a_bad_monitor_section_is_refused_with_file_line_and_column() {
    let yaml = "channels:\n  ops: C0OPS\nmonitor:\n  every: 10s\n  confirm: 0\n  channel: opps\n\
                checks:\n  ci:\n    url: \"http://127.0.0.1:1/builds\"\n    pointer: /0/status\n";
    let errors = bot_core::load_strs_with_env(common::watched::COMMANDS, yaml, &|_| None)
        .expect_err("refused")
        .to_string();
    assert!(
        errors.contains("instances.yaml:5:12: `confirm` must be at least 1"),
        "{errors}"
    );
    assert!(
        errors.contains("instances.yaml:6:12: unknown channel `opps` (did you mean `ops`?"),
        "{errors}"
    );
    assert!(
        errors.contains("reads `pointer` but lists no `ok` values"),
        "{errors}"
    );
}
