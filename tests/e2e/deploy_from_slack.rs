//! A deploy asked for in a Slack DM, end to end: the signed event reaches the real
//! server, the engine builds the idle colour in the Jenkins stand-in, health-gates it,
//! moves a real HAProxy's traffic, and the progress message in the Slack stand-in is
//! edited to the result; a choice of buttons is answered by a signed click.

use std::time::Duration;

use crossroads_sim::haproxy::{require_haproxy, traffic_reaches, Haproxy};
use crossroads_sim::instance::SimInstance;
use crossroads_sim::jenkins::{JenkinsSetup, JobSetup, SimJenkins};
use crossroads_tests::{config, message_text, Stack};

const DEPLOYER: &str = "U0DEPLOYER";
const DM: &str = "D0DEPLOYER";

const INSTANCES: &str = r#"
settings:
  probe_timeout: 1s
  gate: { consecutive: 2, interval: 100ms, timeout: 10s }
jenkins:
  url: ${JENKINS_URL}
  user: crossroads
  token: ${JENKINS_TOKEN}
  poll_interval: 50ms
groups:
  deployers: [U0DEPLOYER]
environments:
  staging:
    aliases: [stage]
    pools:
      api:
        switch:
          type: haproxy
          address: ${HAPROXY_ADMIN}
          backend: be_app
          off_state: maint
        deploy:
          job: platform/deploy-api
          parameters: { ENVIRONMENT: "{env}", COLOUR: "{colour}", REF: "{ref}", REQUESTED_BY: "{user}" }
        members:
          blue:
            url: ${BLUE_URL}
            health: { version: /version }
          green:
            url: ${GREEN_URL}
            health: { version: /version }
"#;

#[cfg_attr(
    not(haproxy),
    ignore = "haproxy not installed (apt-get install haproxy)"
)]
#[tokio::test]
async fn a_dm_deploys_through_jenkins_and_haproxy_and_the_message_tells_the_story() {
    if !require_haproxy() {
        return;
    }
    let blue = SimInstance::start("blue", "1.0.0").await.expect("blue");
    let green = SimInstance::start("green", "0.9.0").await.expect("green");
    let haproxy =
        Haproxy::start(&[("blue", blue.addr()), ("green", green.addr())]).expect("haproxy");
    traffic_reaches(&haproxy.frontend, "1.0.0").await;
    let green_ctl = green.control();
    let job = JobSetup::new()
        .queue_time(Duration::from_millis(100))
        .build_duration(Duration::from_millis(300))
        .on_success(move |params| {
            if params.iter().any(|(k, v)| k == "COLOUR" && v == "green") {
                green_ctl.set_version("2.0.0");
            }
        });
    let jenkins =
        SimJenkins::start(JenkinsSetup::new("crossroads", "t0ken").job("platform/deploy-api", job))
            .await
            .expect("jenkins");
    let stack = Stack::start(config(
        INSTANCES,
        &[
            ("JENKINS_URL", jenkins.url()),
            ("JENKINS_TOKEN", "t0ken".into()),
            ("HAPROXY_ADMIN", haproxy.admin.clone()),
            ("BLUE_URL", blue.url()),
            ("GREEN_URL", green.url()),
        ],
    ))
    .await;

    let ack = stack
        .event(
            &stack
                .slack
                .message_event(DM, DEPLOYER, "deploy stage feature/login"),
        )
        .await;
    assert_eq!(
        ack.status(),
        200,
        "Slack's delivery is acknowledged at once"
    );

    let done = stack
        .slack
        .wait_for_one("chat.update", |c| {
            message_text(&c.body).contains("Deployed")
        })
        .await;
    let text = message_text(&done.body);
    assert!(
        text.contains("Deployed `feature/login` to *staging*"),
        "{text}"
    );
    assert!(text.contains("api: blue → *green*"), "{text}");
    let posted = stack.slack.calls("chat.postMessage");
    assert_eq!(posted.len(), 1, "one progress message, edited in place");
    assert_eq!(posted[0].arg("channel"), Some(DM));
    let message = &stack.slack.wait_for_message(DM).await;
    assert_eq!(
        done.arg("ts"),
        Some(message.ts.as_str()),
        "the posted message is the one edited"
    );

    let triggers = jenkins.triggers();
    assert_eq!(triggers.len(), 1, "{triggers:?}");
    let params = &triggers[0].params;
    for (k, v) in [
        ("COLOUR", "green"),
        ("REF", "feature/login"),
        ("REQUESTED_BY", DEPLOYER),
    ] {
        assert!(
            params.contains(&(k.into(), v.into())),
            "{k}={v} in {params:?}"
        );
    }
    traffic_reaches(&haproxy.frontend, "2.0.0").await;
}

#[tokio::test]
async fn a_choice_of_instances_is_answered_by_a_signed_click() {
    let blue = SimInstance::start("blue", "1.0.0").await.expect("blue");
    let green = SimInstance::start("green", "1.1.0").await.expect("green");
    let instances = r#"
groups:
  deployers: [U0DEPLOYER]
environments:
  staging:
    pools:
      api:
        switch: { type: memory, initial: blue }
        members:
          blue: { url: "${BLUE_URL}", health: { version: /version } }
          green: { url: "${GREEN_URL}", health: { version: /version } }
"#;
    let stack = Stack::start(config(
        instances,
        &[("BLUE_URL", blue.url()), ("GREEN_URL", green.url())],
    ))
    .await;

    stack
        .event(&stack.slack.message_event(DM, DEPLOYER, "health staging"))
        .await;
    let question = stack.slack.wait_for("chat.postMessage", 1).await.remove(0);
    let ts = stack.slack.wait_for_message(DM).await.ts;
    let button = question.body["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .find(|e| {
            e["text"]["text"]
                .as_str()
                .is_some_and(|t| t.contains("green"))
        })
        .expect("a button for green");
    let click = stack.slack.block_actions(
        DEPLOYER,
        DM,
        &ts,
        button["action_id"].as_str().expect("action_id"),
        button["value"].as_str().expect("value"),
    );
    assert_eq!(stack.interaction(&click).await.status(), 200);

    let answer = stack
        .slack
        .wait_for_one("chat.update", |c| {
            message_text(&c.body).contains("is healthy")
        })
        .await;
    let text = message_text(&answer.body);
    assert!(text.contains("*staging api green* is healthy"), "{text}");
    assert!(text.contains("version 1.1.0"), "{text}");
    assert_eq!(
        answer.arg("ts"),
        Some(ts.as_str()),
        "the question is edited into the answer"
    );
}
