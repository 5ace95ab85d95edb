//! The simulators speak the documented wire formats.

use std::time::Duration;

use crossroads_sim::instance::{Behaviour, SimInstance};
use crossroads_sim::jenkins::{JenkinsSetup, JobSetup, SimJenkins};
use crossroads_sim::switch::{PoolSetup, SimSwitch};
use serde_json::Value;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn json(resp: reqwest::Response) -> Value {
    resp.json().await.expect("json body")
}

#[tokio::test]
async fn instance_health_tasks_and_behaviours() {
    let inst = SimInstance::start("blue", "1.4.2").await.expect("start");
    let c = client();
    let resp = c
        .get(format!("{}/health", inst.url()))
        .send()
        .await
        .expect("health");
    assert_eq!(resp.status(), 200);
    let v = json(resp).await;
    assert_eq!(v["status"], "ok");
    assert_eq!(v["version"], "1.4.2");
    assert!(v["uptime_s"].is_u64());

    let v = json(
        c.get(format!("{}/tasks", inst.url()))
            .send()
            .await
            .expect("tasks"),
    )
    .await;
    let tasks = v["tasks"].as_array().expect("tasks array");
    assert!(!tasks.is_empty());
    assert!(tasks
        .iter()
        .all(|t| ["running", "queued", "done"].contains(&t["state"].as_str().unwrap_or(""))));

    inst.set_behaviour(Behaviour::Unhealthy);
    let resp = c
        .get(format!("{}/health", inst.url()))
        .send()
        .await
        .expect("health");
    assert_eq!(resp.status(), 503);
    assert_eq!(json(resp).await["status"], "degraded");

    inst.set_behaviour(Behaviour::Slow(Duration::from_millis(300)));
    let started = std::time::Instant::now();
    let resp = c
        .get(format!("{}/health", inst.url()))
        .send()
        .await
        .expect("slow health");
    assert_eq!(resp.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));

    inst.set_behaviour(Behaviour::Hang);
    let r = c
        .get(format!("{}/health", inst.url()))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(r.expect_err("hang must not answer").is_timeout());

    inst.set_behaviour(Behaviour::Healthy);
    assert_eq!(inst.deploy(), "1.4.3");
    let v = json(
        c.get(format!("{}/health", inst.url()))
            .send()
            .await
            .expect("health"),
    )
    .await;
    assert_eq!(v["version"], "1.4.3");

    let url = inst.url();
    inst.shutdown().await;
    let err = c
        .get(format!("{url}/health"))
        .send()
        .await
        .expect_err("down");
    assert!(err.is_connect());
}

#[tokio::test]
async fn free_port_is_refused() {
    let url = crossroads_sim::dead_url().expect("port");
    let err = client()
        .get(format!("{url}/health"))
        .send()
        .await
        .expect_err("nobody listens");
    assert!(err.is_connect());
}

#[tokio::test]
async fn switch_reads_writes_and_rejects_unknown_members() {
    let sw = SimSwitch::start(vec![PoolSetup::new(
        "master",
        "api",
        &["blue", "green"],
        "blue",
    )])
    .await
    .expect("start");
    let c = client();
    let url = format!("{}/pools/master/api", sw.url());
    assert_eq!(
        json(c.get(&url).send().await.expect("get")).await["active"],
        "blue"
    );
    let resp = c
        .post(&url)
        .body(r#"{"active":"green"}"#)
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        json(c.get(&url).send().await.expect("get")).await["active"],
        "green"
    );
    let resp = c
        .post(&url)
        .body(r#"{"active":"pink"}"#)
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 400);
    assert!(json(resp).await["error"]
        .as_str()
        .is_some_and(|e| e.contains("pink")));
    assert_eq!(sw.active("master", "api").as_deref(), Some("green"));
    let resp = c
        .get(format!("{}/pools/master/nope", sw.url()))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 404);
    assert_eq!(sw.calls().iter().filter(|c| c.method == "POST").count(), 2);
}

#[tokio::test]
async fn jenkins_queue_build_lifecycle() {
    let jenkins = SimJenkins::start(
        JenkinsSetup::new("bot", "tok").job(
            "platform/deploy-api",
            JobSetup::new()
                .queue_time(Duration::from_millis(200))
                .build_duration(Duration::from_millis(300)),
        ),
    )
    .await
    .expect("start");
    let c = client();
    let trigger = format!(
        "{}/job/platform/job/deploy-api/buildWithParameters",
        jenkins.url()
    );
    let resp = c
        .post(&trigger)
        .basic_auth("bot", Some("tok"))
        .form(&[("COLOUR", "green"), ("REF", "feature/x y")])
        .send()
        .await
        .expect("trigger");
    assert_eq!(resp.status(), 201);
    let location = resp.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(location, format!("{}/queue/item/1/", jenkins.url()));

    // Same parameters while still queued: 303 to the same item.
    let resp = c
        .post(&trigger)
        .basic_auth("bot", Some("tok"))
        .form(&[("COLOUR", "green"), ("REF", "feature/x y")])
        .send()
        .await
        .expect("trigger again");
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], location.as_str());

    let item = json(
        c.get(format!("{location}api/json"))
            .basic_auth("bot", Some("tok"))
            .send()
            .await
            .expect("item"),
    )
    .await;
    assert_eq!(item["_class"], "hudson.model.Queue$WaitingItem");
    assert!(item["why"].is_string());

    tokio::time::sleep(Duration::from_millis(300)).await;
    let item = json(
        c.get(format!("{location}api/json"))
            .basic_auth("bot", Some("tok"))
            .send()
            .await
            .expect("item"),
    )
    .await;
    assert_eq!(item["_class"], "hudson.model.Queue$LeftItem");
    assert_eq!(item["cancelled"], false);
    assert_eq!(item["executable"]["number"], 1);
    let build_url = item["executable"]["url"].as_str().expect("url").to_owned();
    assert_eq!(
        build_url,
        format!("{}/job/platform/job/deploy-api/1/", jenkins.url())
    );

    let build = json(
        c.get(format!("{build_url}api/json"))
            .basic_auth("bot", Some("tok"))
            .send()
            .await
            .expect("build"),
    )
    .await;
    assert_eq!(build["building"], true);
    assert!(build["result"].is_null());
    assert_eq!(build["estimatedDuration"], 300);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let build = json(
        c.get(format!("{build_url}api/json"))
            .basic_auth("bot", Some("tok"))
            .send()
            .await
            .expect("build"),
    )
    .await;
    assert_eq!(build["building"], false);
    assert_eq!(build["result"], "SUCCESS");
    assert!(build["duration"].as_u64().is_some_and(|d| d >= 300));

    let triggers = jenkins.triggers();
    assert_eq!(
        triggers[0].params,
        vec![
            ("COLOUR".into(), "green".into()),
            ("REF".into(), "feature/x y".into())
        ]
    );
    assert_eq!(triggers[0].user.as_deref(), Some("bot"));
}

#[tokio::test]
async fn jenkins_auth_unknown_jobs_and_crumbs() {
    let jenkins = SimJenkins::start(
        JenkinsSetup::new("bot", "tok")
            .job("a", JobSetup::new())
            .require_crumb(true),
    )
    .await
    .expect("start");
    let c = client();
    let build = format!("{}/job/a/build", jenkins.url());
    assert_eq!(
        c.post(&build)
            .basic_auth("bot", Some("bad"))
            .send()
            .await
            .expect("post")
            .status(),
        401
    );
    assert_eq!(
        c.post(&build)
            .basic_auth("bot", Some("tok"))
            .send()
            .await
            .expect("post")
            .status(),
        403
    );
    let resp = c
        .get(format!("{}/crumbIssuer/api/json", jenkins.url()))
        .basic_auth("bot", Some("tok"))
        .send()
        .await
        .expect("crumb");
    let cookie = resp.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("kv")
        .to_owned();
    let crumb = json(resp).await;
    let resp = c
        .post(&build)
        .basic_auth("bot", Some("tok"))
        .header("Cookie", cookie)
        .header(
            crumb["crumbRequestField"].as_str().expect("field"),
            crumb["crumb"].as_str().expect("crumb"),
        )
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 201);
    let resp = c
        .post(format!("{}/job/nope/build", jenkins.url()))
        .basic_auth("bot", Some("tok"))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 403, "crumb is checked before the job lookup");
    jenkins.set_require_crumb(false);
    let resp = c
        .post(format!("{}/job/nope/build", jenkins.url()))
        .basic_auth("bot", Some("tok"))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 404);
    let resp = c
        .get(format!("{}/crumbIssuer/api/json", jenkins.url()))
        .basic_auth("bot", Some("tok"))
        .send()
        .await
        .expect("crumb");
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn jenkins_names_its_configured_root_url() {
    let jenkins = SimJenkins::start(
        JenkinsSetup::new("bot", "tok")
            .job("a", JobSetup::new().queue_time(Duration::from_millis(20)))
            .root_url("https://ci.invalid/"),
    )
    .await
    .expect("start");
    let c = client();
    let resp = c
        .post(format!("{}/job/a/build", jenkins.url()))
        .basic_auth("bot", Some("tok"))
        .send()
        .await
        .expect("trigger");
    assert_eq!(resp.status(), 201);
    assert_eq!(
        resp.headers()["location"],
        "https://ci.invalid/queue/item/1/"
    );
    // It still answers where it listens.
    let item = c
        .get(format!("{}/queue/item/1/api/json", jenkins.url()))
        .basic_auth("bot", Some("tok"))
        .send()
        .await
        .expect("queue item");
    assert_eq!(item.status(), 200);
    let item = json(item).await;
    assert_eq!(item["task"]["url"], "https://ci.invalid/job/a/");
}
