//! When the state store goes away, nothing runs half-recorded: `/readyz` turns 503,
//! Slack's deliveries are refused with 503 (so Slack delivers them again later), and
//! a request that reaches the engine anyway is told the store is unavailable and that
//! nothing was done. The store here is a real PostgreSQL database dropped under the
//! running server.

use crate::common;

use std::time::{Duration, Instant};

use bot_core::{Outcome, Request};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_store_makes_the_server_unready_and_refuses_work_plainly() {
    let Some(db) = crossroads_sim::postgres::fresh_database("store_down").await else {
        return;
    };
    let store = bot_core::adapters::store::connect(&db.url, true)
        .await
        .expect("a fresh PostgreSQL store");
    let app = TestApp::start_on(Some(store), |_| {}).await;
    assert_eq!(app.get_status("/readyz").await, 200);
    app.event(&dm("Ev900", "U1", "status")).await;
    app.slack.wait_for("chat.postMessage", 1).await;

    drop(db); // DROP DATABASE … WITH (FORCE): every connection is cut, nothing comes back.

    let deadline = Instant::now() + Duration::from_secs(10);
    while app.get_status("/readyz").await != 503 {
        assert!(
            Instant::now() < deadline,
            "/readyz never said the store is gone"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused = app.event(&dm("Ev901", "U1", "status")).await;
    assert_eq!(refused.status(), 503, "Slack delivers it again later");
    let reason = refused.text().await.expect("body");
    assert!(reason.contains("state store is unavailable"), "{reason}");
    assert!(
        !reason.to_lowercase().contains("sqlx") && !reason.contains("postgres://"),
        "{reason}"
    );

    // A request that reaches the engine directly (the console, `crossroads run`).
    let reply = app.bot.handle(Request::text("U1", "build")).await;
    let text = reply.to_plain_text();
    assert_eq!(reply.outcome, Outcome::Failed, "{text}");
    assert!(
        text.contains("the state store is unavailable, so nothing was done"),
        "{text}"
    );
    assert_eq!(app.ci.started_count(), 0, "nothing was started");
}
