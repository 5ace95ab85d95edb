//! The webhook receiver records every POST and fails on script.

use crossroads_sim::{Scripted, WebhookStandIn};
use serde_json::{json, Value};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

#[tokio::test]
async fn records_bodies_and_headers_at_any_path() {
    let hook = WebhookStandIn::start().await.expect("start");
    let resp = client()
        .post(format!("{}/hooks/deploys?team=web", hook.url()))
        .header("X-Signature", "sha256=abc")
        .json(&json!({"event": "deploy.finished", "service": "api"}))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.expect("text"), "ok");
    client()
        .post(format!("{}/other", hook.url()))
        .body("not json")
        .send()
        .await
        .expect("post");

    let got = hook.wait_for(2).await;
    assert_eq!(got[0].method, "POST");
    assert_eq!(got[0].path, "/hooks/deploys?team=web");
    assert_eq!(got[0].body["service"], "api");
    assert_eq!(got[0].header("x-signature"), Some("sha256=abc"));
    assert_eq!(got[1].body, Value::Null);
    assert_eq!(got[1].raw, b"not json");

    let found = hook.wait_for_one(|d| d.path == "/other").await;
    assert_eq!(found.raw, b"not json");

    hook.set_answer(204, "");
    let resp = client()
        .post(hook.url())
        .json(&json!({}))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 204);
}

#[tokio::test]
async fn scripted_failures_and_outage() {
    let hook = WebhookStandIn::start().await.expect("start");
    hook.script([
        Scripted::Status(502),
        Scripted::RateLimited {
            retry_after_secs: 1,
        },
        Scripted::Error("bad signature"),
        Scripted::Drop,
    ]);
    let c = client();
    let send = || {
        c.post(format!("{}/h", hook.url()))
            .json(&json!({"n": 1}))
            .send()
    };
    assert_eq!(send().await.expect("502").status(), 502);
    let resp = send().await.expect("429");
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
    let resp = send().await.expect("400");
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<Value>().await.expect("json"),
        json!({"error": "bad signature"})
    );
    assert!(send().await.is_err());
    assert_eq!(send().await.expect("ok").status(), 200);
    assert_eq!(hook.deliveries().len(), 5);

    hook.stop_listening().await;
    assert!(send().await.is_err());
    hook.listen_again().await.expect("back");
    assert_eq!(send().await.expect("ok").status(), 200);
}
