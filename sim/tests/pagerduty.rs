//! The PagerDuty stand-in validates and answers like Events API v2.

use crossroads_sim::pagerduty::AlertState;
use crossroads_sim::{PagerDutyStandIn, Scripted};
use serde_json::{json, Value};

const KEY: &str = "0123456789abcdef0123456789abcdef";

async fn enqueue(pd: &PagerDutyStandIn, body: &Value) -> (u16, Value) {
    let resp = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .post(pd.enqueue_url())
        .json(body)
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json"))
}

#[tokio::test]
async fn trigger_acknowledge_resolve() {
    let pd = PagerDutyStandIn::start().await.expect("start");
    let trigger = json!({
        "routing_key": KEY,
        "event_action": "trigger",
        "payload": {
            "summary": "Deploy of api to prod failed",
            "source": "crossroads",
            "severity": "critical",
            "component": "api",
            "group": "prod",
            "class": "deploy",
            "custom_details": {"build": 42},
        },
        "client": "Crossroads",
        "client_url": "http://example.invalid/deploys/42",
        "links": [{"href": "http://example.invalid/job/42", "text": "Jenkins"}],
    });
    let (status, v) = enqueue(&pd, &trigger).await;
    assert_eq!(status, 202);
    assert_eq!(v["status"], "success");
    assert_eq!(v["message"], "Event processed");
    let dedup = v["dedup_key"].as_str().expect("dedup key").to_owned();
    assert!(!dedup.is_empty());
    assert_eq!(pd.alert(&dedup), Some(AlertState::Triggered));

    let (status, v) = enqueue(
        &pd,
        &json!({"routing_key": KEY, "event_action": "acknowledge", "dedup_key": dedup}),
    )
    .await;
    assert_eq!(
        (status, v["dedup_key"].as_str()),
        (202, Some(dedup.as_str()))
    );
    assert_eq!(pd.alert(&dedup), Some(AlertState::Acknowledged));
    let (status, _) = enqueue(
        &pd,
        &json!({"routing_key": KEY, "event_action": "resolve", "dedup_key": dedup}),
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(pd.alert(&dedup), Some(AlertState::Resolved));

    // A given dedup_key is kept.
    let mut mine = trigger.clone();
    mine["dedup_key"] = json!("deploy-api-prod");
    assert_eq!(enqueue(&pd, &mine).await.1["dedup_key"], "deploy-api-prod");

    let accepted = pd.wait_for_accepted(4).await;
    assert_eq!(accepted[0].summary(), Some("Deploy of api to prod failed"));
    assert_eq!(accepted[1].action(), Some("acknowledge"));
    assert_eq!(accepted[0].headers["content-type"], "application/json");
}

#[tokio::test]
async fn invalid_events_are_refused_with_reasons() {
    let pd = PagerDutyStandIn::start().await.expect("start");
    let cases = [
        (
            json!({"routing_key": "short", "event_action": "trigger", "payload": {"summary": "s", "source": "x", "severity": "info"}}),
            "routing_key",
        ),
        (
            json!({"routing_key": KEY, "event_action": "trigger", "payload": {"source": "x", "severity": "info"}}),
            "payload.summary",
        ),
        (
            json!({"routing_key": KEY, "event_action": "trigger", "payload": {"summary": "s", "severity": "info"}}),
            "payload.source",
        ),
        (
            json!({"routing_key": KEY, "event_action": "trigger", "payload": {"summary": "s", "source": "x", "severity": "fatal"}}),
            "payload.severity",
        ),
        (
            json!({"routing_key": KEY, "event_action": "resolve"}),
            "dedup_key",
        ),
        (
            json!({"routing_key": KEY, "event_action": "acknowledge", "dedup_key": ""}),
            "dedup_key",
        ),
        (
            json!({"routing_key": KEY, "event_action": "explode"}),
            "event_action",
        ),
    ];
    for (body, field) in cases {
        let (status, v) = enqueue(&pd, &body).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(v["status"], "invalid event");
        assert_eq!(v["message"], "Event object is invalid");
        let errors = v["errors"].as_array().expect("errors");
        assert!(
            errors
                .iter()
                .any(|e| e.as_str().is_some_and(|e| e.contains(field))),
            "{field} not named in {errors:?}"
        );
    }
    assert!(pd.events().iter().all(|e| e.status == 400));
}

#[tokio::test]
async fn scripted_failures() {
    let pd = PagerDutyStandIn::start().await.expect("start");
    pd.script([
        Scripted::Status(500),
        Scripted::RateLimited {
            retry_after_secs: 3,
        },
        Scripted::Drop,
    ]);
    let body = json!({"routing_key": KEY, "event_action": "trigger", "payload": {"summary": "s", "source": "x", "severity": "error"}});
    let c = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let send = || c.post(pd.enqueue_url()).json(&body).send();

    assert_eq!(send().await.expect("500").status(), 500);
    let resp = send().await.expect("429");
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "3");
    assert!(send().await.is_err());
    assert_eq!(send().await.expect("default").status(), 202);

    let statuses: Vec<u16> = pd
        .wait_for_events(4)
        .await
        .iter()
        .map(|e| e.status)
        .collect();
    assert_eq!(statuses, [500, 429, 0, 202]);
}

async fn change(pd: &PagerDutyStandIn, body: &Value) -> (u16, Value) {
    let resp = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .post(pd.change_url())
        .json(body)
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json"))
}

#[tokio::test]
async fn change_events_are_recorded_apart() {
    let pd = PagerDutyStandIn::start().await.expect("start");
    assert_eq!(pd.change_url(), format!("{}/v2/change/enqueue", pd.url()));
    let (status, v) = change(
        &pd,
        &json!({
            "routing_key": KEY,
            "payload": {
                "summary": "Deployed api 1.5.0 to prod",
                "timestamp": "2024-05-01T12:00:00.000+0000",
                "source": "crossroads",
                "custom_details": {"version": "1.5.0", "by": "ada"},
            },
            "links": [
                {"href": "http://example.invalid/job/42", "text": "Jenkins"},
                {"href": "http://example.invalid/compare"},
            ],
        }),
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(
        v,
        json!({"status": "success", "message": "Change event processed"})
    );
    // Any non-empty routing key, and only a summary, will do.
    let (status, _) = change(
        &pd,
        &json!({"routing_key": "short", "payload": {"summary": "Rolled back api"}}),
    )
    .await;
    assert_eq!(status, 202);

    let events = pd.wait_for_change_events(2).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].routing_key, KEY);
    assert_eq!(events[0].summary, "Deployed api 1.5.0 to prod");
    assert_eq!(
        events[0].timestamp.as_deref(),
        Some("2024-05-01T12:00:00.000+0000")
    );
    assert_eq!(events[0].source.as_deref(), Some("crossroads"));
    assert_eq!(events[0].custom_details["version"], "1.5.0");
    assert_eq!(
        events[0].links,
        [
            (
                "http://example.invalid/job/42".to_owned(),
                Some("Jenkins".to_owned())
            ),
            ("http://example.invalid/compare".to_owned(), None),
        ]
    );
    assert_eq!(events[1].routing_key, "short");
    assert_eq!(events[1].source, None);
    assert_eq!(events[1].custom_details, Value::Null);
    assert!(events[1].links.is_empty());
    // Alert events are untouched.
    assert!(pd.events().is_empty());
    assert_eq!(pd.change_requests(), 2);
}

#[tokio::test]
async fn invalid_change_events_are_refused() {
    let pd = PagerDutyStandIn::start().await.expect("start");
    let cases = [
        (json!({"payload": {"summary": "s"}}), "routing_key"),
        (
            json!({"routing_key": "  ", "payload": {"summary": "s"}}),
            "routing_key",
        ),
        (json!({"routing_key": KEY}), "payload.summary"),
        (
            json!({"routing_key": KEY, "payload": {"summary": ""}}),
            "payload.summary",
        ),
        (
            json!({"routing_key": KEY, "payload": {"summary": "x".repeat(1025)}}),
            "payload.summary",
        ),
        (
            json!({"routing_key": KEY, "payload": {"summary": "s"}, "links": [{"text": "no href"}]}),
            "links[0].href",
        ),
    ];
    for (body, field) in cases {
        let (status, v) = change(&pd, &body).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(v["status"], "invalid event");
        assert_eq!(v["message"], "Event object is invalid");
        let errors = v["errors"].as_array().expect("errors");
        assert!(
            errors
                .iter()
                .any(|e| e.as_str().is_some_and(|e| e.contains(field))),
            "{field} not named in {errors:?}"
        );
    }
    let (_, v) = change(&pd, &json!({"payload": {"summary": "s"}})).await;
    assert_eq!(v["errors"], json!(["'routing_key' is missing or blank"]));
    let resp = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .post(pd.change_url())
        .header("content-type", "application/json")
        .body("{\"routing_key\":")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["status"], "invalid event");

    // 1024 characters is still fine.
    let (status, _) = change(
        &pd,
        &json!({"routing_key": KEY, "payload": {"summary": "x".repeat(1024)}}),
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(pd.change_events().len(), 1);
}

#[tokio::test]
async fn change_events_take_their_own_script() {
    let pd = PagerDutyStandIn::start().await.expect("start");
    let body = json!({"routing_key": KEY, "payload": {"summary": "Deployed api"}});
    // Scripts for alert events leave change events alone, and the other way round.
    pd.script([Scripted::Status(503)]);
    pd.script_change([
        Scripted::Status(500),
        Scripted::RateLimited {
            retry_after_secs: 1,
        },
    ]);
    let (status, v) = change(&pd, &body).await;
    assert_eq!(status, 500);
    assert_eq!(v["status"], "error");
    let (status, _) = change(&pd, &body).await;
    assert_eq!(status, 429);
    assert!(pd.change_events().is_empty(), "failures record nothing");
    let (status, _) = change(&pd, &body).await;
    assert_eq!(status, 202);
    assert_eq!(pd.wait_for_change_events(1).await.len(), 1);
    assert_eq!(pd.change_requests(), 3);

    let trigger = json!({"routing_key": KEY, "event_action": "trigger", "payload": {"summary": "s", "source": "x", "severity": "error"}});
    assert_eq!(enqueue(&pd, &trigger).await.0, 503);
}
