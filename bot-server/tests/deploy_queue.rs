//! The deploy queue through `crossroads serve` on SQLite: while a deploy runs, three
//! more wait in line (`deploy staging when free` twice, and the `Queue me` button of a
//! "locked" refusal), each told its place; the process is killed and restarted, the
//! line is still there in order; each queued deploy starts by itself only when the one
//! before it has ended, announced to its requester with a new message.

use crate::common;

use std::time::Duration;

use common::serve::{config_dir, message_text, Serve};
use crossroads_sim::instance::SimInstance;
use crossroads_sim::jenkins::{JenkinsSetup, JobSetup, SimJenkins};
use crossroads_sim::slack::SlackStandIn;
use crossroads_sim::switch::{PoolSetup, SimSwitch};

const ALICE: &str = "U0ALICE";
const BOB: &str = "U0BOB";
const CAROL: &str = "U0CAROL";
const DAVE: &str = "U0DAVE";

fn instances(jenkins: &str, switch: &str, blue: &str, green: &str) -> String {
    format!(
        r#"
settings:
  probe_timeout: 1s
  gate: {{ consecutive: 1, interval: 100ms, timeout: 20s }}
  lease: 2s
jenkins:
  url: {jenkins}
  user: crossroads
  token: t0ken
  poll_interval: 100ms
groups:
  deployers: [{ALICE}, {BOB}, {CAROL}, {DAVE}]
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
async fn three_queued_deploys_keep_their_order_across_a_restart_and_start_one_after_another() {
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
                .build_duration(Duration::from_millis(1500)),
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
        extra_env: vec![],
    };
    let mut first = serve.start(state.path()).await;
    let said = |channel: &'static str| {
        let slack = &slack;
        async move {
            let call = slack
                .wait_for_one("chat.postMessage", |c| c.arg("channel") == Some(channel))
                .await;
            message_text(&call.body)
        }
    };

    // Alice deploys; Bob and Carol ask to wait in line.
    first
        .event(&slack.message_event("D0ALICE", ALICE, "deploy staging alice-1"))
        .await;
    jenkins.wait_until_building("platform/deploy-api").await;
    first
        .event(&slack.message_event("D0BOB", BOB, "deploy staging bob-2 when free"))
        .await;
    let bob = said("D0BOB").await;
    assert!(
        bob.contains("You're #1 in line for *staging*, after the running `deploy` of <@U0ALICE>"),
        "{bob}"
    );
    first
        .event(&slack.message_event("D0CAROL", CAROL, "deploy stagin carol-3 when free"))
        .await;
    let carol = said("D0CAROL").await;
    assert!(
        carol.contains("You're #2 in line for *staging*, after <@U0BOB>"),
        "typos and all: {carol}"
    );

    // Dave is refused with a `Queue me` button, and clicks it.
    first
        .event(&slack.message_event("D0DAVE", DAVE, "deploy staging dave-4"))
        .await;
    let refusal = slack
        .wait_for_one("chat.postMessage", |c| c.arg("channel") == Some("D0DAVE"))
        .await;
    assert!(
        message_text(&refusal.body).contains("locked by <@U0ALICE>"),
        "{}",
        refusal.body
    );
    let button = refusal.body["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .find(|e| e["text"]["text"].as_str() == Some("Queue me"))
        .expect("a Queue me button");
    let ts = slack.wait_for_message("D0DAVE").await.ts;
    let click = slack.block_actions(
        DAVE,
        "D0DAVE",
        &ts,
        button["action_id"].as_str().expect("action_id"),
        button["value"].as_str().expect("value"),
    );
    assert_eq!(first.interaction(&click).await, 200);
    let queued = slack
        .wait_for_one("chat.update", |c| {
            c.arg("channel") == Some("D0DAVE") && message_text(&c.body).contains("in line")
        })
        .await;
    assert!(
        message_text(&queued.body).contains("You're #3 in line for *staging*, after <@U0CAROL>"),
        "{}",
        queued.body
    );

    // The process dies mid-build; after the restart the line is as it was.
    first.kill();
    let second = serve.start(state.path()).await;
    second
        .event(&slack.message_event("D0LOOK", ALICE, "queue staging"))
        .await;
    let line = said("D0LOOK").await;
    let (b, c, d) = (
        line.find("1. <@U0BOB> — `deploy staging bob-2`"),
        line.find("2. <@U0CAROL> — `deploy staging carol-3`"),
        line.find("3. <@U0DAVE> — `deploy staging dave-4`"),
    );
    assert!(
        b.is_some() && c.is_some() && d.is_some(),
        "the line survives the restart, in order: {line}"
    );

    // Alice's deploy is taken over and finishes; then Bob's, Carol's and Dave's start,
    // each announced to its requester, each only after the one before it ended.
    for (channel, user) in [("D0BOB", BOB), ("D0CAROL", CAROL), ("D0DAVE", DAVE)] {
        let turn = slack
            .wait_for_one("chat.postMessage", |c| {
                c.arg("channel") == Some(channel) && message_text(&c.body).contains("your turn")
            })
            .await;
        assert!(
            message_text(&turn.body).contains(&format!("<@{user}>, your turn: *staging* is free")),
            "{}",
            turn.body
        );
    }
    let done = slack
        .wait_for_one("chat.update", |c| {
            c.arg("channel") == Some("D0DAVE")
                && message_text(&c.body).contains("Deployed `dave-4`")
        })
        .await;
    assert!(
        message_text(&done.body).contains("Queued by <@U0DAVE>"),
        "{}",
        done.body
    );

    let refs: Vec<String> = jenkins
        .triggers()
        .iter()
        .filter_map(|t| {
            t.params
                .iter()
                .find(|(k, _)| k == "REF")
                .map(|(_, v)| v.clone())
        })
        .collect();
    assert_eq!(
        refs,
        ["alice-1", "bob-2", "carol-3", "dave-4"],
        "one build each, in the order of the line"
    );
    // Each started after the previous deploy's final message.
    let calls = slack.all_calls();
    let at = |pred: &dyn Fn(&str) -> bool| {
        calls
            .iter()
            .position(|c| pred(&message_text(&c.body)))
            .unwrap_or_else(|| {
                let texts: Vec<String> = calls.iter().map(|c| message_text(&c.body)).collect();
                panic!("no such call among {texts:#?}")
            })
    };
    for (before, after) in [
        ("Deployed `alice-1`", "<@U0BOB>, your turn"),
        ("Deployed `bob-2`", "<@U0CAROL>, your turn"),
        ("Deployed `carol-3`", "<@U0DAVE>, your turn"),
    ] {
        assert!(
            at(&|t| t.contains(before)) < at(&|t| t.contains(after)),
            "{after} only after {before}"
        );
    }
    second
        .event(&slack.message_event("D0EMPTY", ALICE, "queue"))
        .await;
    let empty = said("D0EMPTY").await;
    assert!(empty.contains("Nobody is waiting"), "{empty}");
}
