//! Two `crossroads serve` replicas on one PostgreSQL database: a delivery that reaches
//! both is answered once; two simultaneous deploys run one and refuse the other naming
//! the holder; a button offered by one replica works when clicked through the other;
//! and when the replica running a deploy dies, the other finishes it once the lease
//! lapses. Under `CI=true` a missing PostgreSQL fails the test.

use crate::common;

use std::time::Duration;

use common::serve::{config_dir, message_text, Serve};
use crossroads_sim::instance::SimInstance;
use crossroads_sim::jenkins::{JenkinsSetup, JobSetup, SimJenkins};
use crossroads_sim::slack::SlackStandIn;
use crossroads_sim::switch::{PoolSetup, SimSwitch};

const DEPLOYER: &str = "U0DEPLOYER";
const ADMIN: &str = "U0ADMIN";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_deliveries_locks_buttons_and_runs() {
    let Some(db) = crossroads_sim::postgres::fresh_database("replicas").await else {
        return;
    };
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
    let (sw, jk) = (switch.url(), jenkins.url());
    let instances = format!(
        r#"
settings:
  probe_timeout: 1s
  gate: {{ consecutive: 2, interval: 100ms, timeout: 20s }}
  lease: 2s
jenkins: {{ url: "{jk}", user: crossroads, token: t0ken, poll_interval: 100ms }}
groups:
  deployers: [{DEPLOYER}, {ADMIN}]
environments:
  staging:
    pools:
      api:
        switch:
          type: http
          set: {{ method: POST, url: "{sw}/pools/staging/api", body: '{{"active": "{{colour}}"}}' }}
          get: "{sw}/pools/staging/api"
          pointer: /active
        deploy: {{ job: platform/deploy-api, parameters: {{ COLOUR: "{{colour}}" }} }}
        members:
          blue: {{ url: "{}" }}
          green: {{ url: "{}" }}
"#,
        blue.url(),
        green.url()
    );
    let dir = config_dir(&instances);
    let logs = tempfile::tempdir().expect("logs");
    let serve = Serve {
        config_dir: dir.path().to_owned(),
        database_url: db.url.clone(),
        slack_api: slack.api_url(),
        extra_env: vec![],
    };
    let a = serve.start(logs.path()).await;
    let b = serve.start(logs.path()).await;
    let posted_to = |channel: &str| {
        slack
            .calls("chat.postMessage")
            .into_iter()
            .filter(|c| c.arg("channel") == Some(channel))
            .count()
    };

    // 1. Slack delivers the same event to both replicas (a retry landing elsewhere).
    let event = slack.message_event("D0TWICE", DEPLOYER, "status staging");
    let (sa, sb) = tokio::join!(a.event(&event), b.event(&event));
    assert_eq!((sa, sb), (200, 200));
    slack
        .wait_for_one("chat.postMessage", |c| c.arg("channel") == Some("D0TWICE"))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(posted_to("D0TWICE"), 1, "answered once");

    // 2. A button offered through A works when clicked through B.
    a.event(&slack.message_event("D0CHOICE", DEPLOYER, "health staging"))
        .await;
    let question = slack
        .wait_for_one("chat.postMessage", |c| c.arg("channel") == Some("D0CHOICE"))
        .await;
    let ts = slack.wait_for_message("D0CHOICE").await.ts;
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
    let click = slack.block_actions(
        DEPLOYER,
        "D0CHOICE",
        &ts,
        button["action_id"].as_str().expect("action_id"),
        button["value"].as_str().expect("value"),
    );
    assert_eq!(b.interaction(&click).await, 200);
    let answer = slack
        .wait_for_one("chat.update", |c| {
            message_text(&c.body).contains("is healthy")
        })
        .await;
    assert_eq!(answer.arg("ts"), Some(ts.as_str()));

    // 3. Simultaneous deploys through both: one runs, the other names the holder.
    let (ea, eb) = (
        slack.message_event("D0A", DEPLOYER, "deploy staging"),
        slack.message_event("D0B", ADMIN, "deploy staging"),
    );
    let (da, db_) = tokio::join!(a.event(&ea), b.event(&eb));
    assert_eq!((da, db_), (200, 200));
    let refusal = slack
        .wait_for_one("chat.postMessage", |c| {
            matches!(c.arg("channel"), Some("D0A") | Some("D0B"))
                && message_text(&c.body).contains("is locked by")
        })
        .await;
    let refused_in = refusal.arg("channel").expect("channel").to_owned();
    let (winner, running_channel, holder) = if refused_in == "D0B" {
        (a, "D0A", DEPLOYER)
    } else {
        (b, "D0B", ADMIN)
    };
    assert!(
        message_text(&refusal.body).contains(&format!("locked by <@{holder}>")),
        "{}",
        refusal.body
    );
    jenkins.wait_until_building("platform/deploy-api").await;
    assert_eq!(
        jenkins.trigger_count("platform/deploy-api"),
        1,
        "one deploy runs"
    );

    // 4. The replica running it dies mid-build; the other finishes it after the lease.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut winner = winner;
    winner.kill();
    let done = slack
        .wait_for_one("chat.update", |c| {
            message_text(&c.body).contains("Deployed")
        })
        .await;
    let message = slack.wait_for_message(running_channel).await;
    assert_eq!(
        done.arg("ts"),
        Some(message.ts.as_str()),
        "the same message, finished by the survivor"
    );
    assert_eq!(
        jenkins.builds("platform/deploy-api").len(),
        1,
        "the same build, followed again"
    );
    assert_eq!(switch.active("staging", "api").as_deref(), Some("green"));
}
