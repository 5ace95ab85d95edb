//! The GitHub stand-in creates deployments and statuses as the REST API does.

use crossroads_sim::{Scripted, SimGithub};
use serde_json::{json, Value};

const TOKEN: &str = "ghs_simtoken";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .user_agent("crossroads-test")
        .build()
        .expect("client")
}

async fn post(url: &str, auth: Option<&str>, body: &Value) -> (u16, Value) {
    let mut req = client().post(url).json(body);
    if let Some(auth) = auth {
        req = req.header("authorization", auth);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json"))
}

async fn get(url: &str) -> (u16, Value) {
    let resp = client()
        .get(url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json"))
}

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

#[tokio::test]
async fn deployments_and_statuses() {
    let gh = SimGithub::start().await.expect("start");
    let deployments = format!("{}/repos/acme/api/deployments", gh.url());

    let (status, d) = post(&deployments, Some(&bearer()), &json!({"ref": "v1.4.2"})).await;
    assert_eq!(status, 201, "{d}");
    assert_eq!(d["id"], 1);
    assert_eq!(d["sha"], "v1.4.2");
    assert_eq!(d["ref"], "v1.4.2");
    assert_eq!(d["task"], "deploy");
    assert_eq!(d["environment"], "production");
    assert_eq!(d["payload"], json!({}));
    assert_eq!(d["description"], Value::Null);
    assert_eq!(d["creator"]["login"], "crossroads[bot]");
    assert!(d["node_id"].as_str().is_some_and(|n| !n.is_empty()));
    let created = d["created_at"].as_str().expect("created_at");
    assert_eq!(created.len(), "2024-05-01T12:00:00Z".len(), "{created}");
    assert!(created.ends_with('Z') && created.as_bytes()[10] == b'T');
    assert_eq!(d["updated_at"], d["created_at"]);
    assert_eq!(d["url"], format!("{deployments}/1"));
    assert_eq!(d["statuses_url"], format!("{deployments}/1/statuses"));
    assert_eq!(d["repository_url"], format!("{}/repos/acme/api", gh.url()));

    let (status, d) = post(
        &deployments,
        Some(&format!("token {TOKEN}")),
        &json!({
            "ref": "main",
            "environment": "staging",
            "auto_merge": false,
            "required_contexts": [],
            "payload": {"build": 42},
            "description": "deploy api 1.5.0 to staging",
            "transient_environment": false,
        }),
    )
    .await;
    assert_eq!(status, 201, "{d}");
    assert_eq!(d["id"], 2);
    assert_eq!(d["environment"], "staging");
    assert_eq!(d["payload"]["build"], 42);
    assert_eq!(d["production_environment"], false);

    let statuses = format!("{deployments}/2/statuses");
    for (state, log_url) in [
        ("queued", None),
        ("in_progress", Some("http://jenkins/job/42")),
        ("success", Some("http://jenkins/job/42")),
    ] {
        let mut body = json!({"state": state, "description": format!("{state}!")});
        if let Some(url) = log_url {
            body["log_url"] = json!(url);
            body["environment_url"] = json!("https://staging.acme.example");
        }
        let (status, s) = post(&statuses, Some(&bearer()), &body).await;
        assert_eq!(status, 201, "{s}");
        assert_eq!(s["state"], state);
        assert_eq!(s["environment"], "staging");
        assert_eq!(s["deployment_url"], format!("{deployments}/2"));
        assert!(s["id"].as_u64().is_some());
        assert!(s["created_at"].as_str().is_some());
    }

    // Oldest first in the record, newest first from the API.
    let recorded = gh.wait_for_statuses(2, 3).await;
    let states: Vec<&str> = recorded.iter().map(|s| s.state.as_str()).collect();
    assert_eq!(states, ["queued", "in_progress", "success"]);
    assert_eq!(recorded[0].log_url, None);
    assert_eq!(
        recorded[2].log_url.as_deref(),
        Some("http://jenkins/job/42")
    );
    assert_eq!(
        recorded[2].environment_url.as_deref(),
        Some("https://staging.acme.example")
    );
    assert_eq!(recorded[1].description.as_deref(), Some("in_progress!"));
    let (status, listed) = get(&statuses).await;
    assert_eq!(status, 200);
    let listed: Vec<&str> = listed
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|s| s["state"].as_str())
        .collect();
    assert_eq!(listed, ["success", "in_progress", "queued"]);

    let all = gh.wait_for_deployments(2).await;
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].git_ref, "v1.4.2");
    assert_eq!(all[0].environment, "production");
    assert_eq!(all[0].auto_merge, None);
    assert!(all[0].statuses.is_empty());
    assert_eq!(all[1].repo, "acme/api");
    assert_eq!(all[1].git_ref, "main");
    assert_eq!(all[1].payload, json!({"build": 42}));
    assert_eq!(all[1].auto_merge, Some(false));
    assert_eq!(all[1].required_contexts, Some(vec![]));
    assert_eq!(
        all[1].description.as_deref(),
        Some("deploy api 1.5.0 to staging")
    );
    assert_eq!(all[1].token, TOKEN);
    assert_eq!(all[1].statuses, recorded);

    // Listing, filtered by environment, newest first.
    let (_, listed) = get(&deployments).await;
    let ids: Vec<u64> = listed
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|d| d["id"].as_u64())
        .collect();
    assert_eq!(ids, [2, 1]);
    let (_, listed) = get(&format!("{deployments}?environment=staging")).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(listed[0]["ref"], "main");
    // Another repository has none of them.
    let (_, listed) = get(&format!("{}/repos/acme/web/deployments", gh.url())).await;
    assert_eq!(listed, json!([]));
    assert_eq!(gh.requests(), 9);
}

#[tokio::test]
async fn refuses_like_github() {
    let gh = SimGithub::start().await.expect("start");
    let deployments = format!("{}/repos/acme/api/deployments", gh.url());

    for auth in [None, Some("Basic Zm9vOmJhcg=="), Some("Bearer ")] {
        let (status, v) = post(&deployments, auth, &json!({"ref": "main"})).await;
        assert_eq!(status, 401, "{auth:?}");
        assert_eq!(v["message"], "Bad credentials");
        assert_eq!(v["documentation_url"], "https://docs.github.com/rest");
    }

    let bare = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let resp = bare
        .post(&deployments)
        .bearer_auth(TOKEN)
        .json(&json!({"ref": "main"}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 403, "no User-Agent");

    let (status, v) = post(
        &deployments,
        Some(&bearer()),
        &json!({"environment": "prod"}),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(v["message"], "Validation Failed");
    assert_eq!(
        v["errors"],
        json!([{"resource": "Deployment", "field": "ref", "code": "missing_field"}])
    );
    assert!(v["documentation_url"].as_str().is_some());

    let (status, v) = post(&deployments, Some(&bearer()), &json!({"ref": 7})).await;
    assert_eq!(status, 422);
    assert!(v["message"]
        .as_str()
        .is_some_and(|m| m.contains("properties/ref")));

    let resp = client()
        .post(&deployments)
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("{\"ref\": ")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["message"], "Problems parsing JSON");

    let (status, v) = post(
        &format!("{deployments}/99/statuses"),
        Some(&bearer()),
        &json!({"state": "success"}),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(v["message"], "Not Found");
    assert!(v["documentation_url"].as_str().is_some());

    let (status, _) = post(&deployments, Some(&bearer()), &json!({"ref": "main"})).await;
    assert_eq!(status, 201);
    let statuses = format!("{deployments}/1/statuses");
    let (status, v) = post(&statuses, Some(&bearer()), &json!({"state": "exploded"})).await;
    assert_eq!(status, 422);
    assert_eq!(v["message"], "Validation Failed");
    assert_eq!(v["errors"][0]["field"], "state");
    let (status, v) = post(&statuses, Some(&bearer()), &json!({"log_url": "x"})).await;
    assert_eq!(status, 422);
    assert_eq!(v["errors"][0]["code"], "missing_field");
    // The deployment belongs to acme/api only.
    let (status, _) = post(
        &format!("{}/repos/acme/web/deployments/1/statuses", gh.url()),
        Some(&bearer()),
        &json!({"state": "success"}),
    )
    .await;
    assert_eq!(status, 404);

    let recorded = gh.deployments();
    assert_eq!(recorded.len(), 1);
    assert!(recorded[0].statuses.is_empty());
}

#[tokio::test]
async fn scripted_failures_and_outage() {
    let gh = SimGithub::start().await.expect("start");
    let deployments = format!("{}/repos/acme/api/deployments", gh.url());
    let body = json!({"ref": "main"});

    gh.script([
        Scripted::Status(500),
        Scripted::RateLimited {
            retry_after_secs: 2,
        },
    ]);
    let (status, v) = post(&deployments, Some(&bearer()), &body).await;
    assert_eq!(status, 500);
    assert_eq!(v["message"], "Server Error");
    assert!(v["documentation_url"].as_str().is_some());
    let resp = client()
        .post(&deployments)
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "2");
    assert!(gh.deployments().is_empty(), "failures record nothing");
    let (status, d) = post(&deployments, Some(&bearer()), &body).await;
    assert_eq!(status, 201);
    assert_eq!(d["id"], 1, "ids are not used up by failures");

    // A scripted failure on a status records no status.
    let statuses = format!("{deployments}/1/statuses");
    gh.script([Scripted::Status(502)]);
    let (status, _) = post(&statuses, Some(&bearer()), &json!({"state": "success"})).await;
    assert_eq!(status, 502);
    assert!(gh.deployments()[0].statuses.is_empty());

    // GitHub down, then back.
    gh.fail_all(true);
    for _ in 0..2 {
        let (status, v) = post(&statuses, Some(&bearer()), &json!({"state": "failure"})).await;
        assert_eq!(status, 500);
        assert_eq!(v["message"], "Server Error");
    }
    gh.fail_all(false);
    let (status, _) = post(&statuses, Some(&bearer()), &json!({"state": "success"})).await;
    assert_eq!(status, 201);
    let states: Vec<String> = gh
        .wait_for_statuses(1, 1)
        .await
        .into_iter()
        .map(|s| s.state)
        .collect();
    assert_eq!(states, ["success"]);
    assert_eq!(gh.requests(), 7);

    // Unreachable, then back on the same port.
    gh.stop_listening().await;
    assert!(client()
        .post(&deployments)
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .is_err());
    gh.listen_again().await.expect("listen again");
    let (status, d) = post(&deployments, Some(&bearer()), &body).await;
    assert_eq!((status, d["id"].as_u64()), (201, Some(2)));
}
