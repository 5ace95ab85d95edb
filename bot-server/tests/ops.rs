//! Operating the server: `/healthz`, `/readyz`, JSON 404s and request counts in `/metrics`.

use crate::common;

use common::*;

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
