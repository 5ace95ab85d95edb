//! `crossroads serve` SIGKILLed right after an approver's click is acknowledged: after
//! the restart the approved deploy runs exactly once, as the requester, and its
//! message says it deployed. Wherever the kill lands — before the vote, between the
//! vote and the deploy's start, or after — the inbox, the vote's pending run and the
//! run itself hand over to each other in single writes.

use crate::common;

use std::time::Duration;

use common::serve::{button, click_on, config_dir, message_text, Serve};
use crossroads_sim::instance::SimInstance;
use crossroads_sim::jenkins::{JenkinsSetup, JobSetup, SimJenkins};
use crossroads_sim::slack::{SlackSetup, SlackStandIn};
use crossroads_sim::switch::{PoolSetup, SimSwitch};

const REQUESTER: &str = "U0DEPLOYER";
const APPROVER: &str = "U0ADMIN";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_acknowledged_then_killed_deploys_exactly_once_after_the_restart() {
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
                .queue_time(Duration::from_millis(50))
                .build_duration(Duration::from_millis(500)),
        ),
    )
    .await
    .expect("jenkins");
    let slack = SlackStandIn::start_with(SlackSetup::new().wait_timeout(Duration::from_secs(30)))
        .await
        .expect("slack");
    let sw = switch.url();
    let dir = config_dir(&format!(
        r#"
settings:
  probe_timeout: 1s
  gate: {{ consecutive: 1, interval: 50ms, timeout: 10s }}
  lease: 1s
jenkins: {{ url: "{}", user: crossroads, token: t0ken, poll_interval: 50ms }}
groups:
  deployers: [{REQUESTER}, {APPROVER}]
environments:
  staging:
    approval: {{ from: [deployers], count: 1, expires: 10m, channel: C0APPROVALS }}
    pools:
      api:
        switch:
          type: http
          set: {{ method: POST, url: "{sw}/pools/staging/api", body: '{{"active": "{{colour}}"}}' }}
          get: "{sw}/pools/staging/api"
          pointer: /active
        deploy: {{ job: platform/deploy-api, parameters: {{ COLOUR: "{{colour}}", REQUESTED_BY: "{{user}}" }} }}
        members:
          blue: {{ url: "{}" }}
          green: {{ url: "{}" }}
"#,
        jenkins.url(),
        blue.url(),
        green.url()
    ));
    let state = tempfile::tempdir().expect("state");
    let serve = Serve {
        config_dir: dir.path().to_owned(),
        database_url: format!("sqlite://{}", state.path().join("state.db").display()),
        slack_api: slack.api_url(),
        extra_env: vec![],
    };
    let mut first = serve.start(state.path()).await;
    first
        .event(&slack.message_event("D0REQ", REQUESTER, "deploy staging"))
        .await;
    let card = slack
        .wait_for_one("chat.postMessage", |c| {
            c.arg("channel") == Some("C0APPROVALS")
                && message_text(&c.body).contains("Approval needed")
        })
        .await;
    let ts = slack.wait_for_message("C0APPROVALS").await.ts;
    let approve = button(&card.body, |t| t == "Approve");
    let click = click_on(&slack, APPROVER, "C0APPROVALS", &ts, &approve);
    assert_eq!(first.interaction(&click).await, 200, "acknowledged");
    first.kill();

    let _second = serve.start(state.path()).await;
    slack
        .wait_for_one("chat.update", |c| {
            message_text(&c.body).contains("Deployed")
        })
        .await;
    // Long enough for any second start (the lease is 1 s) to have shown itself.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let deploys = jenkins.triggers();
    assert_eq!(
        deploys.len(),
        1,
        "the approved deploy ran exactly once: {deploys:?}"
    );
    assert!(
        deploys[0]
            .params
            .iter()
            .any(|(k, v)| k == "REQUESTED_BY" && v == REQUESTER),
        "as the requester: {deploys:?}"
    );
    assert_eq!(switch.active("staging", "api").as_deref(), Some("green"));
    let said: Vec<String> = slack
        .messages()
        .iter()
        .map(|m| message_text(&m.message))
        .filter(|t| t.contains("Deployed"))
        .collect();
    assert_eq!(said.len(), 1, "one message says it deployed: {said:?}");
}
