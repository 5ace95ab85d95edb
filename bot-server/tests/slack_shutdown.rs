//! Graceful shutdown: not ready at once, no new Slack work, and the work in
//! flight (a deploy, a build) is awaited up to the drain timeout.

use crate::common;

use std::time::Duration;

use common::*;

/// Polls (bounded) until `GET /readyz` answers `status`.
async fn readyz_becomes(app: &TestApp, status: u16) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let got = app.get_status("/readyz").await;
        if got == status {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/readyz still {got}, expected {status}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn shutdown_turns_not_ready_at_once_and_waits_for_a_running_build() {
    let mut app = TestApp::start().await;
    assert_eq!(app.get_status("/readyz").await, 200);
    app.ci.hold();
    app.event(&dm("Ev800", "U1", "build")).await;
    app.ci.wait_started(1).await;

    app.begin_shutdown();
    readyz_becomes(&app, 503).await;
    assert_eq!(app.get_status("/healthz").await, 200, "still alive");
    // New Slack work is refused so Slack delivers it again elsewhere or later.
    let refused = app.event(&dm("Ev801", "U1", "status")).await;
    assert_eq!(refused.status(), 503);
    let server = app.server();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!server.is_finished(), "the build in flight is awaited");

    app.ci.release();
    let ended = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server stops once the build is done");
    ended.expect("server task").expect("server result");
    let updates = app.slack.calls("chat.update");
    let last = &updates[updates.len() - 1];
    assert!(
        block_text(&last.body).contains("succeeded"),
        "the build's result was delivered: {}",
        last.body
    );
    let posts = app.slack.calls("chat.postMessage");
    assert_eq!(posts.len(), 1, "the refused DM got no answer: {posts:?}");
}

#[tokio::test]
async fn the_drain_ends_at_its_timeout_and_names_what_is_still_running() {
    let mut app = TestApp::start_with(|c| c.drain_timeout = Duration::from_millis(300)).await;
    app.ci.hold();
    app.event(&dm("Ev810", "U1", "build")).await;
    app.ci.wait_started(1).await;
    app.begin_shutdown();
    let server = app.server();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("gives up after the drain timeout")
        .expect("server task")
        .expect("server result");
    let running = app.dispatcher.intake().in_flight();
    assert_eq!(running.len(), 1, "{running:?}");
    assert_eq!(running[0].what, "message from U1 in D1: `build`");
    app.ci.release();
}
