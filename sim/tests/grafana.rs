//! The Grafana stand-in saves and lists annotations as the HTTP API does.

use crossroads_sim::{Scripted, SimGrafana};
use serde_json::{json, Value};

const TOKEN: &str = "glsa_simtoken";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

async fn annotate(g: &SimGrafana, token: Option<&str>, body: &Value) -> (u16, Value) {
    let mut req = client()
        .post(format!("{}/api/annotations", g.url()))
        .json(body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json"))
}

#[tokio::test]
async fn saves_and_lists_annotations() {
    let g = SimGrafana::start().await.expect("start");
    let (status, v) = annotate(
        &g,
        Some(TOKEN),
        &json!({
            "time": 1_714_564_800_000_i64,
            "tags": ["crossroads", "deploy", "api"],
            "text": "Deploying api 1.5.0 to prod",
            "dashboardUID": "abc123",
            "panelId": 4,
        }),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(v, json!({"message": "Annotation added", "id": 1}));
    let (status, v) = annotate(
        &g,
        Some(TOKEN),
        &json!({
            "time": 1_714_564_900_000_i64,
            "timeEnd": 1_714_565_000_000_i64,
            "tags": ["crossroads", "switch"],
            "text": "Switched prod to green",
        }),
    )
    .await;
    assert_eq!((status, v["id"].as_u64()), (200, Some(2)));

    let saved = g.wait_for_annotations(2).await;
    assert_eq!(saved.len(), 2);
    assert_eq!(saved[0].id, 1);
    assert_eq!(saved[0].time, 1_714_564_800_000);
    assert_eq!(saved[0].time_end, None);
    assert_eq!(saved[0].tags, ["crossroads", "deploy", "api"]);
    assert_eq!(saved[0].text, "Deploying api 1.5.0 to prod");
    assert_eq!(saved[0].dashboard_uid.as_deref(), Some("abc123"));
    assert_eq!(saved[0].panel_id, Some(4));
    assert_eq!(saved[0].token, TOKEN);
    assert_eq!(saved[1].time_end, Some(1_714_565_000_000));
    assert_eq!(saved[1].dashboard_uid, None);

    let list = |query: &'static str| {
        let url = format!("{}/api/annotations{query}", g.url());
        async move {
            let resp = client()
                .get(url)
                .bearer_auth(TOKEN)
                .send()
                .await
                .expect("get");
            assert_eq!(resp.status(), 200);
            resp.json::<Value>().await.expect("json")
        }
    };
    let all = list("?tags=crossroads").await;
    let ids: Vec<u64> = all
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|a| a["id"].as_u64())
        .collect();
    assert_eq!(ids, [2, 1], "newest first");
    let deploys = list("?tags=crossroads&tags=deploy").await;
    assert_eq!(deploys.as_array().map(Vec::len), Some(1));
    let a = &deploys[0];
    assert_eq!(a["id"], 1);
    assert_eq!(a["time"], 1_714_564_800_000_i64);
    assert_eq!(a["timeEnd"], 1_714_564_800_000_i64);
    assert_eq!(a["tags"], json!(["crossroads", "deploy", "api"]));
    assert_eq!(a["text"], "Deploying api 1.5.0 to prod");
    assert_eq!(a["dashboardUID"], "abc123");
    let any = list("?tags=deploy&tags=switch&matchAny=true").await;
    assert_eq!(any.as_array().map(Vec::len), Some(2));
    assert_eq!(list("?tags=nope").await, json!([]));

    // A missing time is now.
    let (status, _) = annotate(&g, Some(TOKEN), &json!({"text": "now"})).await;
    assert_eq!(status, 200);
    assert!(g.annotations()[2].time > 1_714_564_800_000);
}

#[tokio::test]
async fn refuses_like_grafana() {
    let g = SimGrafana::start().await.expect("start");
    let body = json!({"time": 1, "tags": ["t"], "text": "x"});

    let (status, v) = annotate(&g, None, &body).await;
    assert_eq!(status, 401);
    assert_eq!(v, json!({"message": "Unauthorized"}));
    let resp = client()
        .post(format!("{}/api/annotations", g.url()))
        .basic_auth("admin", Some("admin"))
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 401);

    let (status, v) = annotate(&g, Some(TOKEN), &json!({"time": 1, "tags": ["t"]})).await;
    assert_eq!(status, 400);
    assert_eq!(v["message"], "Failed to save annotation");
    let (status, _) = annotate(&g, Some(TOKEN), &json!({"time": 1, "text": ""})).await;
    assert_eq!(status, 400);
    let (status, v) = annotate(&g, Some(TOKEN), &json!({"tags": "t", "text": "x"})).await;
    assert_eq!(status, 400);
    assert_eq!(v["message"], "bad request data");
    let (status, v) = annotate(&g, Some(TOKEN), &json!({"time": "soon", "text": "x"})).await;
    assert_eq!(
        (status, v["message"].as_str()),
        (400, Some("bad request data"))
    );
    let resp = client()
        .post(format!("{}/api/annotations", g.url()))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("{\"text\":")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["message"], "bad request data");

    assert!(g.annotations().is_empty());
    assert_eq!(g.requests(), 7);
}

#[tokio::test]
async fn scripted_failures_and_outage() {
    let g = SimGrafana::start().await.expect("start");
    let body = json!({"time": 1, "tags": ["deploy"], "text": "x"});

    g.script([Scripted::Status(500), Scripted::Drop]);
    let (status, v) = annotate(&g, Some(TOKEN), &body).await;
    assert_eq!(status, 500);
    assert!(v["message"].as_str().is_some());
    assert!(client()
        .post(format!("{}/api/annotations", g.url()))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .is_err());
    assert!(g.annotations().is_empty(), "failures record nothing");
    let (status, v) = annotate(&g, Some(TOKEN), &body).await;
    assert_eq!((status, v["id"].as_u64()), (200, Some(1)));

    g.fail_all(true);
    for _ in 0..2 {
        assert_eq!(annotate(&g, Some(TOKEN), &body).await.0, 500);
    }
    g.fail_all(false);
    let (status, v) = annotate(&g, Some(TOKEN), &body).await;
    assert_eq!((status, v["id"].as_u64()), (200, Some(2)));
    assert_eq!(g.wait_for_annotations(2).await.len(), 2);
}
