//! The commit-comparison stand-in answers GitHub's and GitLab's compare APIs.

use crossroads_sim::{CompareStandIn, GitCommit, Scripted};
use serde_json::Value;

const TOKEN: &str = "ghp_simtoken";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .user_agent("crossroads-test")
        .build()
        .expect("client")
}

fn commits() -> Vec<GitCommit> {
    vec![
        GitCommit::new(
            "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678",
            "Ada Lovelace",
            "Fix login\n\nThe session cookie expired too early.",
        ),
        GitCommit::new(
            "b1b2c3d4e5f60718293a4b5c6d7e8f9012345678",
            "Grace Hopper",
            "Bump version",
        )
        .email("grace@navy.example")
        .login(None),
    ]
}

#[tokio::test]
async fn github_compare() {
    let cmp = CompareStandIn::start(TOKEN).await.expect("start");
    cmp.set_commits("acme/api", "v1.4.2", "main", commits());
    let url = format!("{}/repos/acme/api/compare/v1.4.2...main", cmp.url());

    for auth in [format!("Bearer {TOKEN}"), format!("token {TOKEN}")] {
        let resp = client()
            .get(&url)
            .header("authorization", auth)
            .send()
            .await
            .expect("get");
        assert_eq!(resp.status(), 200);
        let v: Value = resp.json().await.expect("json");
        assert_eq!(v["status"], "ahead");
        assert_eq!(v["ahead_by"], 2);
        assert_eq!(v["behind_by"], 0);
        assert_eq!(v["total_commits"], 2);
        let first = &v["commits"][0];
        assert_eq!(first["sha"], "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678");
        assert_eq!(first["commit"]["author"]["name"], "Ada Lovelace");
        assert_eq!(
            first["commit"]["author"]["email"],
            "ada-lovelace@example.com"
        );
        assert_eq!(
            first["commit"]["message"],
            "Fix login\n\nThe session cookie expired too early."
        );
        assert_eq!(first["author"]["login"], "ada-lovelace");
        assert!(first["html_url"].as_str().is_some_and(
            |u| u.ends_with("/acme/api/commit/a1b2c3d4e5f60718293a4b5c6d7e8f9012345678")
        ));
        assert_eq!(v["commits"][1]["author"], Value::Null);
        assert_eq!(
            v["commits"][1]["commit"]["author"]["email"],
            "grace@navy.example"
        );
    }

    let resp = client().get(&url).send().await.expect("get");
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.json::<Value>().await.expect("json")["message"],
        "Bad credentials"
    );
    let resp = client()
        .get(&url)
        .bearer_auth("wrong")
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 401);

    let resp = client()
        .get(format!("{}/repos/acme/api/compare/v0...main", cmp.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.json::<Value>().await.expect("json")["message"],
        "Not Found"
    );

    // GitHub refuses requests without a User-Agent.
    let bare = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let resp = bare.get(&url).bearer_auth(TOKEN).send().await.expect("get");
    assert_eq!(resp.status(), 403);

    // Refs with slashes, encoded or not.
    cmp.set_commits("acme/api", "release/1.4", "feature/login", commits());
    for path in [
        "release/1.4...feature/login",
        "release%2F1.4...feature%2Flogin",
    ] {
        let resp = client()
            .get(format!("{}/repos/acme/api/compare/{path}", cmp.url()))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("get");
        assert_eq!(resp.status(), 200, "{path}");
    }
    assert_eq!(cmp.requests().len(), 8);
    assert!(cmp.requests().iter().all(|r| r.api == "github"));
}

#[tokio::test]
async fn gitlab_compare() {
    let cmp = CompareStandIn::start(TOKEN).await.expect("start");
    cmp.set_commits("acme/api", "v1.4.2", "main", commits());
    let url = format!(
        "{}/projects/acme%2Fapi/repository/compare?from=v1.4.2&to=main",
        cmp.gitlab_api_url()
    );

    let resp = client()
        .get(&url)
        .header("PRIVATE-TOKEN", TOKEN)
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["compare_timeout"], false);
    assert_eq!(v["compare_same_ref"], false);
    assert_eq!(v["diffs"], Value::Array(vec![]));
    let first = &v["commits"][0];
    assert_eq!(first["id"], "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678");
    assert_eq!(first["short_id"], "a1b2c3d4");
    assert_eq!(first["title"], "Fix login");
    assert_eq!(
        first["message"],
        "Fix login\n\nThe session cookie expired too early."
    );
    assert_eq!(first["author_name"], "Ada Lovelace");
    assert_eq!(first["author_email"], "ada-lovelace@example.com");
    assert_eq!(first["created_at"], "2024-05-01T12:00:00Z");
    assert_eq!(v["commit"]["id"], v["commits"][1]["id"]);

    let resp = client().get(&url).send().await.expect("get");
    assert_eq!(resp.status(), 401);
    let resp = client()
        .get(format!(
            "{}/projects/nope%2Fnope/repository/compare?from=a&to=b",
            cmp.gitlab_api_url()
        ))
        .header("PRIVATE-TOKEN", TOKEN)
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 404);
    // Unknown refs in a known project: no commits.
    let v: Value = client()
        .get(format!(
            "{}/projects/acme%2Fapi/repository/compare?from=x&to=y",
            cmp.gitlab_api_url()
        ))
        .header("PRIVATE-TOKEN", TOKEN)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(v["commits"], Value::Array(vec![]));
    assert_eq!(v["commit"], Value::Null);
}

#[tokio::test]
async fn scripted_failures() {
    let cmp = CompareStandIn::start(TOKEN).await.expect("start");
    cmp.set_commits("acme/api", "a", "b", commits());
    cmp.script([Scripted::Status(502), Scripted::Drop]);
    let url = format!("{}/repos/acme/api/compare/a...b", cmp.url());
    let get = || client().get(&url).bearer_auth(TOKEN).send();
    assert_eq!(get().await.expect("502").status(), 502);
    assert!(get().await.is_err());
    assert_eq!(get().await.expect("ok").status(), 200);
}
