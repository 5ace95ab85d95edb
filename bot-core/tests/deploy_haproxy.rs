//! End to end with a real HAProxy: `deploy master` builds the inactive colour in
//! (simulated) Jenkins, health-gates it, switches HAProxy's backend, and real requests
//! through HAProxy reach the new build; `rollback master` moves them back. A runtime
//! API nobody answers stops the deploy with a clear reply and nothing recorded.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use bot_core::adapters::store::memory::MemoryStore;
use bot_core::ports::{AuditLog, Locks};
use bot_core::{Bot, Outcome};
use common::haproxy::{require_haproxy, traffic_reaches, Haproxy};
use common::{click, load, say};
use crossroads_sim::instance::SimInstance;
use crossroads_sim::jenkins::{JenkinsSetup, JobSetup, SimJenkins};

const USER: &str = "U0DEPLOYER";

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
  master:
    aliases: [prod, rh, roi hunter]
    protected: true
    allowed: [deployers]
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
async fn deploy_master_moves_real_traffic_through_haproxy_and_rollback_moves_it_back() {
    if !require_haproxy() {
        return;
    }
    let blue = SimInstance::start("blue", "1.0.0").await.expect("blue");
    let green = SimInstance::start("green", "0.9.0").await.expect("green");
    let haproxy = Haproxy::start(&[("blue", blue.addr()), ("green", green.addr())]);
    traffic_reaches(&haproxy.frontend, "1.0.0").await;

    // A successful build of a colour installs version 2.0.0 on that instance.
    let (blue_ctl, green_ctl) = (blue.control(), green.control());
    let job = JobSetup::new()
        .queue_time(Duration::from_millis(100))
        .build_duration(Duration::from_millis(400))
        .estimated_duration(Some(Duration::from_millis(400)))
        .on_success(move |params| {
            let colour = params
                .iter()
                .find(|(k, _)| k == "COLOUR")
                .map(|(_, v)| v.as_str());
            match colour {
                Some("green") => green_ctl.set_version("2.0.0"),
                Some("blue") => blue_ctl.set_version("2.0.0"),
                _ => {}
            }
        });
    let jenkins =
        SimJenkins::start(JenkinsSetup::new("crossroads", "t0ken").job("platform/deploy-api", job))
            .await
            .expect("jenkins");
    let bot = Bot::builder(load(
        INSTANCES,
        &[
            ("JENKINS_URL", jenkins.url()),
            ("JENKINS_TOKEN", "t0ken".into()),
            ("HAPROXY_ADMIN", haproxy.admin.clone()),
            ("BLUE_URL", blue.url()),
            ("GREEN_URL", green.url()),
        ],
    ))
    .build();

    // Production asks first.
    let ask = say(&bot, USER, "deploy master release-42").await;
    assert_eq!(ask.outcome, Outcome::Confirm, "{}", ask.to_plain_text());
    let done = click(&bot, USER, &ask, "Yes").await;
    let text = done.to_plain_text();
    assert_eq!(done.outcome, Outcome::Done, "{text}");
    assert!(text.contains("api: blue → *green*"), "{text}");

    let triggers = jenkins.triggers();
    assert_eq!(triggers.len(), 1);
    assert_eq!(triggers[0].endpoint, "buildWithParameters");
    assert!(
        triggers[0]
            .params
            .contains(&("COLOUR".into(), "green".into())),
        "{:?}",
        triggers[0].params
    );
    assert!(triggers[0]
        .params
        .contains(&("REF".into(), "release-42".into())));
    assert!(
        green.control().health_hits() >= 2,
        "the gate probed the new instance"
    );
    traffic_reaches(&haproxy.frontend, "2.0.0").await;
    let health = say(&bot, USER, "health master active")
        .await
        .to_plain_text();
    assert!(
        health.contains("master api green"),
        "the switch is read back: {health}"
    );
    if let Some(timing) = text.lines().find(|l| l.starts_with("build ")) {
        eprintln!("deploy timings: {timing}");
    }

    let ask = say(&bot, USER, "rollback rh").await;
    assert_eq!(ask.outcome, Outcome::Confirm, "{}", ask.to_plain_text());
    let back = click(&bot, USER, &ask, "Yes").await;
    assert_eq!(back.outcome, Outcome::Done, "{}", back.to_plain_text());
    assert!(
        back.to_plain_text().contains("green → *blue*"),
        "{}",
        back.to_plain_text()
    );
    traffic_reaches(&haproxy.frontend, "1.0.0").await;
    assert_eq!(jenkins.triggers().len(), 1, "rollback builds nothing");
}

#[tokio::test]
async fn an_unreachable_haproxy_stops_the_deploy_and_records_no_switch() {
    let blue = SimInstance::start("blue", "1.0.0").await.expect("blue");
    let green = SimInstance::start("green", "0.9.0").await.expect("green");
    let jenkins = SimJenkins::start(
        JenkinsSetup::new("crossroads", "t0ken").job("platform/deploy-api", JobSetup::new()),
    )
    .await
    .expect("jenkins");
    let dead = crossroads_sim::free_port().expect("port");
    let store = Arc::new(MemoryStore::new());
    let bot = Bot::builder(load(
        INSTANCES,
        &[
            ("JENKINS_URL", jenkins.url()),
            ("JENKINS_TOKEN", "t0ken".into()),
            ("HAPROXY_ADMIN", format!("127.0.0.1:{dead}")),
            ("BLUE_URL", blue.url()),
            ("GREEN_URL", green.url()),
        ],
    ))
    .store(store.clone())
    .build();

    let ask = say(&bot, USER, "deploy master").await;
    let reply = click(&bot, USER, &ask, "Yes").await;
    let text = reply.to_plain_text();
    assert_eq!(reply.outcome, Outcome::Failed, "{text}");
    assert!(text.contains("cannot reach the traffic switch"), "{text}");
    assert!(
        text.contains(&format!("127.0.0.1:{dead}")),
        "names where it tried: {text}"
    );
    assert!(
        jenkins.triggers().is_empty(),
        "nothing is built when the switch cannot be read"
    );
    let history = store.history(Some("master"), 0, 5).await.expect("history");
    assert!(history[0].outcome.starts_with("failed"), "{history:?}");
    assert!(
        store
            .lock_of("master", bot.now())
            .await
            .expect("lock")
            .is_none(),
        "the lock is released"
    );
}
