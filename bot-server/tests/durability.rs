//! Nothing is lost when `crossroads serve` dies: on SQLite, a deploy whose Jenkins
//! build is running when the process gets SIGKILL is taken over after the restart —
//! the same build followed (Jenkins sees one trigger), the same Slack message edited
//! to success, one complete history record — while a delivery acknowledged but not yet
//! processed is answered once; a reply Slack could not take is delivered after the
//! restart.

use crate::common;

use std::time::Duration;

use common::serve::{config_dir, message_text, Serve};
use crossroads_sim::instance::SimInstance;
use crossroads_sim::jenkins::{JenkinsSetup, JobSetup, SimJenkins};
use crossroads_sim::slack::SlackStandIn;
use crossroads_sim::switch::{PoolSetup, SimSwitch};

const DEPLOYER: &str = "U0DEPLOYER";
const ADMIN: &str = "U0ADMIN";

fn instances(jenkins: &str, switch: &str, blue: &str, green: &str) -> String {
    format!(
        r#"
settings:
  probe_timeout: 1s
  gate: {{ consecutive: 2, interval: 100ms, timeout: 20s }}
  lease: 2s
jenkins:
  url: {jenkins}
  user: crossroads
  token: t0ken
  poll_interval: 100ms
groups:
  deployers: [{DEPLOYER}, {ADMIN}]
environments:
  staging:
    pools:
      api:
        switch:
          type: http
          set:
            method: POST
            url: {switch}/pools/staging/api
            body: '{{"active": "{{colour}}"}}'
          get: {switch}/pools/staging/api
          pointer: /active
        deploy:
          job: platform/deploy-api
          parameters: {{ COLOUR: "{{colour}}", REF: "{{ref}}" }}
        members:
          blue: {{ url: "{blue}" }}
          green: {{ url: "{green}" }}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_killed_mid_build_finishes_after_the_restart_on_the_same_message() {
    let blue = SimInstance::start("blue", "1.0.0").await.expect("blue");
    let green = SimInstance::start("green", "1.0.0").await.expect("green");
    let switch = SimSwitch::start(vec![PoolSetup::new(
        "staging",
        "api",
        &["blue", "green"],
        "blue",
    )])
    .await
    .expect("switch");
    let jenkins = SimJenkins::start(
        JenkinsSetup::new("crossroads", "t0ken").job(
            "platform/deploy-api",
            JobSetup::new()
                .queue_time(Duration::from_millis(100))
                .build_duration(Duration::from_secs(4)),
        ),
    )
    .await
    .expect("jenkins");
    let slack = SlackStandIn::start().await.expect("slack");
    let dir = config_dir(&instances(
        &jenkins.url(),
        &switch.url(),
        &blue.url(),
        &green.url(),
    ));
    let state = tempfile::tempdir().expect("state dir");
    let serve = Serve {
        config_dir: dir.path().to_owned(),
        database_url: format!("sqlite://{}", state.path().join("state.db").display()),
        slack_api: slack.api_url(),
        // One request at a time: the second DM waits in the inbox.
        extra_env: vec![("CROSSROADS_MAX_IN_FLIGHT".into(), "1".into())],
    };

    let mut first = serve.start(state.path()).await;
    assert_eq!(
        first
            .event(&slack.message_event("D0DEPLOY", DEPLOYER, "deploy staging"))
            .await,
        200
    );
    let number = jenkins.wait_until_building("platform/deploy-api").await;
    // The deploy's message is up; a status request is acknowledged and waits its turn.
    slack.wait_for("chat.postMessage", 1).await;
    assert_eq!(
        first
            .event(&slack.message_event("D0WAITER", ADMIN, "status staging"))
            .await,
        200,
        "acknowledged, kept in the inbox"
    );
    // Let the run record where its build is, then kill the process outright.
    tokio::time::sleep(Duration::from_millis(500)).await;
    first.kill();
    let posted_before = slack.calls("chat.postMessage").len();

    let second = serve.start(state.path()).await;
    // Right after the restart the environment is still held by the deploy's run.
    assert_eq!(
        second
            .event(&slack.message_event("D0ADMIN", ADMIN, "deploy staging"))
            .await,
        200
    );
    let refused = slack
        .wait_for_one("chat.postMessage", |c| c.arg("channel") == Some("D0ADMIN"))
        .await;
    let refused = message_text(&refused.body);
    assert!(
        refused.contains(&format!("locked by <@{DEPLOYER}>")),
        "{refused}"
    );

    // The run is taken over: the same build is followed, and the same message edited.
    let done = slack
        .wait_for_one("chat.update", |c| {
            message_text(&c.body).contains("Deployed")
        })
        .await;
    let deployed = slack.wait_for_message("D0DEPLOY").await;
    assert_eq!(
        done.arg("ts"),
        Some(deployed.ts.as_str()),
        "the same message is edited"
    );
    assert_eq!(
        slack
            .calls("chat.postMessage")
            .iter()
            .filter(|c| c.arg("channel") == Some("D0DEPLOY"))
            .count(),
        1,
        "never posted twice"
    );
    assert_eq!(
        jenkins.trigger_count("platform/deploy-api"),
        1,
        "Jenkins saw exactly one deploy trigger; the refused deploy triggered nothing"
    );
    assert_eq!(
        jenkins.builds("platform/deploy-api").len(),
        1,
        "exactly one build: the taken-over run re-attached to #{number}"
    );
    assert_eq!(switch.active("staging", "api").as_deref(), Some("green"));

    // The delivery that was acknowledged but not processed is answered, once.
    let waiter = slack
        .wait_for_one("chat.postMessage", |c| c.arg("channel") == Some("D0WAITER"))
        .await;
    assert!(
        message_text(&waiter.body).contains("staging"),
        "{}",
        waiter.body
    );

    // History has one complete record, with the build link.
    assert_eq!(
        second
            .event(&slack.message_event("D0HIST", DEPLOYER, "history staging"))
            .await,
        200
    );
    let history = slack
        .wait_for_one("chat.postMessage", |c| c.arg("channel") == Some("D0HIST"))
        .await;
    let history = message_text(&history.body);
    let deploys: Vec<&str> = history
        .lines()
        .filter(|l| l.contains("`deploy staging`"))
        .collect();
    assert_eq!(deploys.len(), 2, "the deploy and the refusal: {history}");
    assert!(
        deploys
            .iter()
            .any(|l| l.contains("· ok ·") && l.contains("/job/")),
        "one complete record with its build link: {history}"
    );
    assert!(
        slack.calls("chat.postMessage").len() > posted_before,
        "answers came from the restarted process"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        slack
            .calls("chat.postMessage")
            .iter()
            .filter(|c| c.arg("channel") == Some("D0WAITER"))
            .count(),
        1,
        "answered once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_slack_could_not_take_arrives_after_a_restart() {
    let slack = SlackStandIn::start().await.expect("slack");
    let blue = SimInstance::start("blue", "1.0.0").await.expect("blue");
    let green = SimInstance::start("green", "1.0.0").await.expect("green");
    let dir = config_dir(&instances(
        &crossroads_sim::dead_url().expect("url"),
        &crossroads_sim::dead_url().expect("url"),
        &blue.url(),
        &green.url(),
    ));
    let state = tempfile::tempdir().expect("state dir");
    let serve = Serve {
        config_dir: dir.path().to_owned(),
        database_url: format!("sqlite://{}", state.path().join("state.db").display()),
        slack_api: slack.api_url(),
        extra_env: vec![],
    };
    let mut first = serve.start(state.path()).await;
    slack.stop_listening().await;
    assert_eq!(
        first
            .event(&slack.message_event("D0LOST", DEPLOYER, "health staging api blue"))
            .await,
        200
    );
    // The reply is written, Slack does not answer, the process dies.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    first.kill();
    slack.listen_again().await.expect("Slack back");
    let _second = serve.start(state.path()).await;
    let reply = slack
        .wait_for_one("chat.postMessage", |c| c.arg("channel") == Some("D0LOST"))
        .await;
    assert!(
        message_text(&reply.body).contains("staging api blue"),
        "{}",
        reply.body
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        slack
            .calls("chat.postMessage")
            .iter()
            .filter(|c| c.arg("channel") == Some("D0LOST"))
            .count(),
        1,
        "delivered once"
    );
}
