//! Every Slack route refuses unsigned, stale, malformed and oversized requests with a one-line JSON reason.

use crate::common;

use common::*;

const ROUTES: [(&str, &str); 3] = [
    ("/slack/events", "application/json"),
    ("/slack/interactions", "application/x-www-form-urlencoded"),
    ("/slack/commands", "application/x-www-form-urlencoded"),
];

#[tokio::test]
async fn a_bad_signature_is_401_on_every_route() {
    let app = TestApp::start().await;
    for (route, ct) in ROUTES {
        let body = dm("Ev1", "U1", "status");
        let mut headers = signed(&now_ts(), &body);
        headers[1].1 = bot_core::slack::verify::sign("wrong-secret", &now_ts(), body.as_bytes());
        let (status, reason) = json_error(app.post(route, ct, headers, body).await).await;
        assert_eq!(status, 401, "{route}");
        assert!(reason.contains("signature"), "{route}: {reason}");
    }
    app.settle().await;
    assert!(app.slack.all_calls().is_empty());
}

#[tokio::test]
async fn a_stale_or_future_timestamp_is_401() {
    let app = TestApp::start().await;
    let now: u64 = now_ts().parse().expect("number");
    for ts in [now - 301, now + 301] {
        let body = dm("Ev2", "U1", "status");
        let res = app
            .post(
                "/slack/events",
                "application/json",
                signed(&ts.to_string(), &body),
                body,
            )
            .await;
        let (status, reason) = json_error(res).await;
        assert_eq!(status, 401);
        assert!(reason.contains("timestamp"), "{reason}");
    }
}

#[tokio::test]
async fn missing_headers_are_401_naming_the_header() {
    let app = TestApp::start().await;
    for (route, ct) in ROUTES {
        let (status, reason) = json_error(app.post(route, ct, vec![], "x=1".into()).await).await;
        assert_eq!(status, 401, "{route}");
        assert!(reason.contains("X-Slack-Request-Timestamp"), "{reason}");
        let ts = now_ts();
        let (status, reason) = json_error(
            app.post(
                route,
                ct,
                vec![("x-slack-request-timestamp", ts)],
                "x=1".into(),
            )
            .await,
        )
        .await;
        assert_eq!(status, 401, "{route}");
        assert!(reason.contains("X-Slack-Signature"), "{reason}");
    }
}

#[tokio::test]
async fn malformed_bodies_are_400() {
    let app = TestApp::start().await;
    let cases = [
        (
            "/slack/events",
            "application/json",
            "{\"type\": event_callback",
        ),
        (
            "/slack/interactions",
            "application/x-www-form-urlencoded",
            "payload=%7Bnot-json",
        ),
        (
            "/slack/interactions",
            "application/x-www-form-urlencoded",
            "nopayload=1",
        ),
        (
            "/slack/commands",
            "application/x-www-form-urlencoded",
            "command=%2Fcrossroads",
        ),
    ];
    for (route, ct, body) in cases {
        let res = app
            .post(route, ct, signed(&now_ts(), body), body.to_owned())
            .await;
        let (status, reason) = json_error(res).await;
        assert_eq!(status, 400, "{route} {body}");
        assert!(!reason.is_empty());
    }
}

#[tokio::test]
async fn a_body_over_one_mib_is_413() {
    let app = TestApp::start().await;
    let body = format!(
        r#"{{"type":"event_callback","event_id":"Ev3","pad":"{}"}}"#,
        "x".repeat(1024 * 1024)
    );
    let res = app
        .post(
            "/slack/events",
            "application/json",
            signed(&now_ts(), &body),
            body,
        )
        .await;
    let (status, reason) = json_error(res).await;
    assert_eq!(status, 413);
    assert!(reason.contains("larger"), "{reason}");
}
