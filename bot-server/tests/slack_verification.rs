//! Every Slack route refuses unsigned, stale, malformed and oversized requests with
//! a status code and a one-line JSON reason; ops routes answer.

mod common;

use common::*;

async fn json_error(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    let text = res.text().await.expect("body");
    assert!(!text.contains('\n'), "one line: {text}");
    assert!(!text.contains(SECRET), "no secret: {text}");
    let v: serde_json::Value = serde_json::from_str(&text).expect("JSON error body");
    (status, v["error"].as_str().expect("error field").to_owned())
}

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

#[tokio::test]
async fn ops_routes_answer_and_metrics_count_requests() {
    let app = TestApp::start().await;
    let health = app
        .http
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.expect("body"), r#"{"ok":true}"#);
    let ready = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200);
    let body = dm("Ev4", "U1", "status");
    let mut headers = signed(&now_ts(), &body);
    headers[1].1 = "v0=00".into();
    app.post("/slack/events", "application/json", headers, body)
        .await;
    let (status, _) =
        json_error(app.http.get(app.url("/nowhere")).send().await.expect("404")).await;
    assert_eq!(status, 404);
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains(r#"crossroads_http_requests_total{route="/slack/events",status="401"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"crossroads_http_requests_total{route="/healthz",status="200"} 1"#),
        "{metrics}"
    );
}
