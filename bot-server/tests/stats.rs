//! `GET /api/v1/stats`, for people who do not run Prometheus: up since, messages
//! received, processed and replied, commands by outcome, Slack errors by kind.

use crate::common;

use common::*;
use serde_json::Value;

async fn stats(app: &TestApp) -> Value {
    let res = app
        .http
        .get(app.url("/api/v1/stats"))
        .send()
        .await
        .expect("GET /api/v1/stats");
    assert_eq!(res.status(), 200);
    res.json().await.expect("JSON")
}

#[tokio::test]
async fn stats_count_messages_outcomes_and_slack_errors() {
    let app = TestApp::start().await;
    let fresh = stats(&app).await;
    assert!(
        fresh["up_since"].as_str().is_some_and(|s| s.ends_with('Z')),
        "{fresh}"
    );
    assert_eq!(fresh["messages"]["received"], 0);

    app.event(&dm("Ev900", "U1", "status")).await;
    app.event(&dm("Ev901", "U1", "stauts")).await;
    app.slack.wait_for("chat.postMessage", 2).await;
    app.settle().await;
    // Slack refuses the next reply for good.
    app.slack
        .script("chat.postMessage", &[Scripted::Error("channel_not_found")]);
    app.event(&dm("Ev902", "U1", "help")).await;
    app.slack.wait_for("chat.postMessage", 3).await;
    app.settle().await;

    let s = stats(&app).await;
    assert_eq!(s["messages"]["received"], 3, "{s}");
    assert_eq!(s["messages"]["processed"], 3, "{s}");
    assert_eq!(
        s["messages"]["replied"], 2,
        "the refused reply is not counted: {s}"
    );
    let commands = s["commands"].as_object().expect("commands by outcome");
    assert_eq!(
        commands.values().filter_map(Value::as_u64).sum::<u64>(),
        3,
        "{s}"
    );
    assert_eq!(s["errors"]["slack"]["channel_not_found"], 1, "{s}");
    assert!(s["errors"]["jenkins"].is_object(), "{s}");
}
