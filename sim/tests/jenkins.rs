//! The simulated Jenkins reports change sets, trigger counts, and builds that take a chosen time.

use std::time::Duration;

use crossroads_sim::jenkins::{JenkinsSetup, JobSetup, SimJenkins};
use serde_json::Value;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn get(j: &SimJenkins, path: &str) -> Value {
    client()
        .get(format!("{}{path}", j.url()))
        .basic_auth("bot", Some("tok"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json")
}

async fn trigger(j: &SimJenkins, job_path: &str) -> u16 {
    client()
        .post(format!("{}{job_path}/build", j.url()))
        .basic_auth("bot", Some("tok"))
        .send()
        .await
        .expect("trigger")
        .status()
        .as_u16()
}

fn changes() -> Vec<(&'static str, &'static str, &'static str)> {
    vec![
        (
            "Ada Lovelace",
            "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678",
            "Fix login\n\nThe cookie expired too early.",
        ),
        (
            "Grace Hopper",
            "b1b2c3d4e5f60718293a4b5c6d7e8f9012345678",
            "Bump version",
        ),
    ]
}

#[tokio::test]
async fn pipeline_builds_carry_change_sets() {
    let j = SimJenkins::start(
        JenkinsSetup::new("bot", "tok").job(
            "platform/deploy-api",
            JobSetup::new()
                .queue_time(Duration::from_millis(10))
                .build_duration(Duration::from_millis(10))
                .pipeline()
                .changes(changes()),
        ),
    )
    .await
    .expect("start");
    assert_eq!(trigger(&j, "/job/platform/job/deploy-api").await, 201);
    let n = j.wait_until_building("platform/deploy-api").await;
    assert_eq!(
        j.wait_until_finished("platform/deploy-api", n).await,
        "SUCCESS"
    );

    let b = get(&j, &format!("/job/platform/job/deploy-api/{n}/api/json")).await;
    assert_eq!(
        b["_class"],
        "org.jenkinsci.plugins.workflow.job.WorkflowRun"
    );
    assert!(b.get("changeSet").is_none());
    let set = &b["changeSets"][0];
    assert_eq!(set["_class"], "hudson.plugins.git.GitChangeSetList");
    assert_eq!(set["kind"], "git");
    let first = &set["items"][0];
    assert_eq!(first["_class"], "hudson.plugins.git.GitChangeSet");
    assert_eq!(
        first["commitId"],
        "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
    );
    assert_eq!(first["msg"], "Fix login");
    assert_eq!(
        first["comment"],
        "Fix login\n\nThe cookie expired too early.\n"
    );
    assert_eq!(first["author"]["fullName"], "Ada Lovelace");
    assert_eq!(first["authorEmail"], "ada.lovelace@example.com");
    let (t0, t1) = (
        first["timestamp"].as_u64().expect("ts"),
        set["items"][1]["timestamp"].as_u64().expect("ts"),
    );
    assert_eq!(t1 - t0, 60_000);
    assert_eq!(set["items"][1]["date"], "2024-05-01 12:00:00 +0000");
}

#[tokio::test]
async fn freestyle_builds_use_change_set() {
    let j = SimJenkins::start(
        JenkinsSetup::new("bot", "tok")
            .job(
                "with",
                JobSetup::new()
                    .queue_time(Duration::ZERO)
                    .build_duration(Duration::ZERO)
                    .changes(changes()),
            )
            .job(
                "without",
                JobSetup::new()
                    .queue_time(Duration::ZERO)
                    .build_duration(Duration::ZERO),
            )
            .job(
                "pipeline-without",
                JobSetup::new()
                    .queue_time(Duration::ZERO)
                    .build_duration(Duration::ZERO)
                    .pipeline(),
            ),
    )
    .await
    .expect("start");
    for job in ["with", "without", "pipeline-without"] {
        assert_eq!(trigger(&j, &format!("/job/{job}")).await, 201);
        j.wait_until_finished(job, 1).await;
    }
    let b = get(&j, "/job/with/1/api/json").await;
    assert_eq!(b["_class"], "hudson.model.FreeStyleBuild");
    assert_eq!(b["changeSet"]["items"][1]["msg"], "Bump version");
    assert!(b.get("changeSets").is_none());
    let b = get(&j, "/job/without/1/api/json").await;
    assert_eq!(b["changeSet"]["items"], Value::Array(vec![]));
    let b = get(&j, "/job/pipeline-without/1/api/json").await;
    assert_eq!(b["changeSets"], Value::Array(vec![]));
}

#[tokio::test]
async fn counts_triggers_and_holds_long_builds() {
    let j = SimJenkins::start(
        JenkinsSetup::new("bot", "tok").job(
            "deploy",
            JobSetup::new()
                .queue_time(Duration::from_millis(10))
                .build_duration(Duration::from_secs(3600)),
        ),
    )
    .await
    .expect("start");
    assert_eq!(trigger(&j, "/job/deploy").await, 201);
    let n = j.wait_until_building("deploy").await;
    // Still building: a test could stop its client here.
    let b = get(&j, &format!("/job/deploy/{n}/api/json")).await;
    assert_eq!(b["building"], true);
    assert_eq!(b["result"], Value::Null);
    assert_eq!(trigger(&j, "/job/deploy").await, 201);
    assert_eq!(trigger(&j, "/job/missing").await, 404);
    assert_eq!(j.trigger_count("deploy"), 2);
    assert_eq!(j.trigger_count("missing"), 1);
    assert_eq!(j.trigger_counts().get("deploy"), Some(&2));
}
