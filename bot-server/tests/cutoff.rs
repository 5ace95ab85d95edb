//! A replica cut off from the database stops before its next external step: two
//! `crossroads serve` replicas share one PostgreSQL; replica A reaches the database
//! through a TCP proxy the test controls and its traffic switch through a second one
//! that records what A sends. A starts a deploy, and is cut from the database
//! mid-build while it can still reach Jenkins and the switch. B takes the run over
//! after the lease, re-attaches to the same build and finishes it on the same Slack
//! message; A sends nothing to the switch after the cut, and does not come back to
//! the finished run once the database is reachable again. Under `CI=true` a missing
//! PostgreSQL fails the test.

use crate::common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::serve::{config_dir, message_text, through, Serve};
use crossroads_sim::instance::SimInstance;
use crossroads_sim::jenkins::{JenkinsSetup, JobSetup, SimJenkins};
use crossroads_sim::proxy::TcpProxy;
use crossroads_sim::slack::{SlackSetup, SlackStandIn};
use crossroads_sim::switch::{PoolSetup, SimSwitch};

const DEPLOYER: &str = "U0DEPLOYER";

fn instances(jenkins: &str, switch: &str, blue: &str, green: &str) -> String {
    format!(
        r#"
settings:
  probe_timeout: 1s
  gate: {{ consecutive: 2, interval: 100ms, timeout: 20s }}
  lease: 2s
jenkins: {{ url: "{jenkins}", user: crossroads, token: t0ken, poll_interval: 100ms }}
groups:
  deployers: [{DEPLOYER}]
environments:
  staging:
    pools:
      api:
        switch:
          type: http
          set: {{ method: POST, url: "{switch}/pools/staging/api", body: '{{"active": "{{colour}}"}}' }}
          get: "{switch}/pools/staging/api"
          pointer: /active
        deploy: {{ job: platform/deploy-api, parameters: {{ COLOUR: "{{colour}}" }} }}
        members:
          blue: {{ url: "{blue}" }}
          green: {{ url: "{green}" }}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_cut_from_the_database_stops_and_the_other_finishes_its_deploy() {
    let Some(db) = crossroads_sim::postgres::fresh_database("cutoff").await else {
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
                .build_duration(Duration::from_secs(6)),
        ),
    )
    .await
    .expect("jenkins");
    let slack = SlackStandIn::start_with(SlackSetup::new().wait_timeout(Duration::from_secs(40)))
        .await
        .expect("slack");
    let db_addr: SocketAddr = {
        let u = url::Url::parse(&db.url).expect("url");
        format!(
            "{}:{}",
            u.host_str().expect("host"),
            u.port().unwrap_or(5432)
        )
        .parse()
        .expect("loopback address")
    };
    let db_line = TcpProxy::start(db_addr).await.expect("database proxy");
    let switch_line = TcpProxy::start(switch.addr()).await.expect("switch proxy");
    let a_dir = config_dir(&instances(
        &jenkins.url(),
        &format!("http://{}", switch_line.addr()),
        &blue.url(),
        &green.url(),
    ));
    let b_dir = config_dir(&instances(
        &jenkins.url(),
        &switch.url(),
        &blue.url(),
        &green.url(),
    ));
    let logs = tempfile::tempdir().expect("logs");
    let serve = |dir: &tempfile::TempDir, url: String| Serve {
        config_dir: dir.path().to_owned(),
        database_url: url,
        slack_api: slack.api_url(),
        extra_env: vec![],
    };
    let a = serve(&a_dir, through(&db.url, db_line.addr()))
        .start(logs.path())
        .await;
    let b = serve(&b_dir, db.url.clone()).start(logs.path()).await;

    assert_eq!(
        a.event(&slack.message_event("D0DEPLOY", DEPLOYER, "deploy staging"))
            .await,
        200
    );
    let number = jenkins.wait_until_building("platform/deploy-api").await;
    slack.wait_for("chat.postMessage", 1).await;
    // Let A record where the build is, then cut it from the database.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !switch_line.sent().is_empty(),
        "A read its switch through the recording proxy"
    );
    let cut = Instant::now();
    db_line.cut();

    // B takes the run over after the lease and finishes it on the same message.
    let done = slack
        .wait_for_one("chat.update", |c| {
            message_text(&c.body).contains("Deployed")
        })
        .await;
    let message = slack.wait_for_message("D0DEPLOY").await;
    assert_eq!(
        done.arg("ts"),
        Some(message.ts.as_str()),
        "the same message"
    );
    assert_eq!(
        jenkins.trigger_count("platform/deploy-api"),
        1,
        "Jenkins saw one trigger"
    );
    assert_eq!(
        jenkins.builds("platform/deploy-api").len(),
        1,
        "B re-attached to #{number}"
    );
    assert_eq!(switch.active("staging", "api").as_deref(), Some("green"));
    let after_cut = |sent: &[crossroads_sim::proxy::Sent]| {
        sent.iter()
            .filter(|s| s.at > cut)
            .map(|s| s.text.lines().next().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        after_cut(&switch_line.sent()),
        Vec::<String>::new(),
        "A sent nothing to the switch after it lost the database; its log:\n{}",
        a.log()
    );
    assert!(
        a.log().contains("stops here") || a.log().contains("stopping before"),
        "A says in its log that it stopped: {}",
        a.log()
    );

    // The database comes back: A does not resume the finished run.
    db_line.restore();
    let updates = slack.calls("chat.update").len();
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        after_cut(&switch_line.sent()),
        Vec::<String>::new(),
        "A still sent nothing to the switch"
    );
    assert_eq!(jenkins.trigger_count("platform/deploy-api"), 1);
    assert_eq!(
        slack.calls("chat.update").len(),
        updates,
        "nobody edits the finished message again"
    );
    assert!(
        !a.log().contains("taking over a run"),
        "A took nothing over: {}",
        a.log()
    );
    drop(b);
}
