//! Post-switch watch against a real HAProxy: after a deploy switches traffic, the new
//! colour is probed for the pool's `watch:`. When it turns unhealthy a second after
//! the switch, real traffic through HAProxy is back on the old colour well within the
//! watch and the reply says why; a healthy watch ends "done" with a one-click
//! rollback, and the environment stays locked until the watch is over.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bot_core::adapters::store::memory::MemoryStore;
use bot_core::ports::AuditLog;
use bot_core::{Bot, Outcome, Progress, Reply, Request};
use common::{click, labels, load, say};
use crossroads_sim::haproxy::{traffic_reaches, version_through, Haproxy};
use crossroads_sim::instance::{Behaviour, InstanceControl, SimInstance};
use crossroads_sim::jenkins::{JenkinsSetup, JobSetup, SimJenkins};

const USER: &str = "U0DEPLOYER";

fn instances(watch: &str) -> String {
    format!(
        r#"
settings:
  probe_timeout: 1s
  gate: {{ consecutive: 2, interval: 100ms, timeout: 10s }}
jenkins:
  url: ${{JENKINS_URL}}
  user: crossroads
  token: ${{JENKINS_TOKEN}}
  poll_interval: 50ms
groups:
  deployers: [U0DEPLOYER]
environments:
  staging:
    allowed: [deployers]
{watch}
    pools:
      api:
        switch:
          type: haproxy
          address: ${{HAPROXY_ADMIN}}
          backend: be_app
          off_state: maint
        deploy:
          job: platform/deploy-api
          parameters: {{ COLOUR: "{{colour}}", REF: "{{ref}}" }}
        members:
          blue:
            url: ${{BLUE_URL}}
            health: {{ version: /version }}
          green:
            url: ${{GREEN_URL}}
            health: {{ version: /version }}
"#
    )
}

/// HAProxy in front of blue (1.0.0, live) and green (0.9.0), a Jenkins whose build
/// of a colour installs 2.0.0 on it, and a bot with `watch` keys on the environment.
struct Rig {
    bot: Bot,
    store: Arc<MemoryStore>,
    haproxy: Haproxy,
    green: InstanceControl,
    _sims: (SimInstance, SimInstance),
    _jenkins: SimJenkins,
}

async fn rig(watch: &str) -> Option<Rig> {
    if !crossroads_sim::haproxy::require_haproxy() {
        return None;
    }
    let blue = SimInstance::start("blue", "1.0.0").await.expect("blue");
    let green = SimInstance::start("green", "0.9.0").await.expect("green");
    let haproxy =
        Haproxy::start(&[("blue", blue.addr()), ("green", green.addr())]).expect("haproxy");
    traffic_reaches(&haproxy.frontend, "1.0.0").await;
    let (blue_ctl, green_ctl) = (blue.control(), green.control());
    let job = JobSetup::new()
        .queue_time(Duration::from_millis(50))
        .build_duration(Duration::from_millis(200))
        .on_success(move |params| {
            match params
                .iter()
                .find(|(k, _)| k == "COLOUR")
                .map(|(_, v)| v.as_str())
            {
                Some("green") => green_ctl.set_version("2.0.0"),
                Some("blue") => blue_ctl.set_version("2.0.0"),
                _ => {}
            }
        });
    let jenkins =
        SimJenkins::start(JenkinsSetup::new("crossroads", "t0ken").job("platform/deploy-api", job))
            .await
            .expect("jenkins");
    let store = Arc::new(MemoryStore::new());
    let bot = Bot::builder(load(
        &instances(watch),
        &[
            ("JENKINS_URL", jenkins.url()),
            ("JENKINS_TOKEN", "t0ken".into()),
            ("HAPROXY_ADMIN", haproxy.admin.clone()),
            ("BLUE_URL", blue.url()),
            ("GREEN_URL", green.url()),
        ],
    ))
    .store(store.clone())
    .build();
    Some(Rig {
        bot,
        store,
        haproxy,
        green: green.control(),
        _sims: (blue, green),
        _jenkins: jenkins,
    })
}

/// Keeps every progress update.
#[derive(Default)]
struct Recorded(Mutex<Vec<String>>);

#[async_trait]
impl Progress for Recorded {
    async fn update(&self, reply: &Reply) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(reply.to_plain_text());
    }
}

/// Waits until real traffic through HAProxy reaches `version`; when it did.
async fn switched_to(frontend: &str, version: &str) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(20);
    while version_through(frontend).await.as_deref() != Some(version) {
        assert!(Instant::now() < deadline, "traffic never reached {version}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Instant::now()
}

#[cfg_attr(
    not(haproxy),
    ignore = "haproxy not installed (apt-get install haproxy)"
)]
#[tokio::test]
async fn a_colour_turning_unhealthy_after_the_switch_sends_real_traffic_back_within_the_watch() {
    let watch =
        "    watch: 8s\n    watch_every: 100ms\n    watch_failures: 2\n    auto_rollback: true";
    let Some(rig) = rig(watch).await else { return };
    let progress = Arc::new(Recorded::default());
    let deploy = tokio::spawn({
        let bot = rig.bot.clone();
        let progress = progress.clone();
        async move {
            bot.handle_with(Request::text(USER, "deploy staging release-7"), &*progress)
                .await
        }
    });

    // The new colour turns unhealthy one second after real traffic reached it.
    let switched = switched_to(&rig.haproxy.frontend, "2.0.0").await;
    let busy = say(&rig.bot, USER, "deploy staging").await;
    assert_eq!(busy.outcome, Outcome::Rejected, "{}", busy.to_plain_text());
    assert!(
        busy.to_plain_text().contains("locked"),
        "the deploy holds the lock during its watch: {}",
        busy.to_plain_text()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    rig.green.set_behaviour(Behaviour::Unhealthy);

    let reply = deploy.await.expect("deploy");
    let text = reply.to_plain_text();
    assert_eq!(reply.outcome, Outcome::Failed, "{text}");
    assert!(text.contains("rolled back"), "{text}");
    assert!(
        text.contains("green turned unhealthy") && text.contains("status 200 (got 503)"),
        "the reply says why: {text}"
    );
    assert!(
        text.contains("moved traffic back to *blue* automatically"),
        "{text}"
    );
    traffic_reaches(&rig.haproxy.frontend, "1.0.0").await;
    assert!(
        switched.elapsed() < Duration::from_secs(8),
        "real traffic is back on blue within the 8 s watch (after {:?})",
        switched.elapsed()
    );
    let seen = progress.0.lock().expect("progress").join("\n---\n");
    assert!(
        seen.contains("watching green"),
        "the progress message shows the watch: {seen}"
    );

    let history = rig
        .store
        .history(Some("staging"), 0, 5)
        .await
        .expect("history");
    assert!(
        history[0]
            .outcome
            .contains("rolled back to blue automatically"),
        "{history:?}"
    );
    // The environment is free again, and the rollback left nothing to undo.
    let health = say(&rig.bot, USER, "health staging active").await;
    assert!(
        health.to_plain_text().contains("staging api blue"),
        "{}",
        health.to_plain_text()
    );
}

#[cfg_attr(
    not(haproxy),
    ignore = "haproxy not installed (apt-get install haproxy)"
)]
#[tokio::test]
async fn a_healthy_watch_ends_done_with_a_one_click_rollback() {
    let watch = "    watch: 1500ms\n    watch_every: 100ms\n    auto_rollback: true";
    let Some(rig) = rig(watch).await else { return };
    let started = Instant::now();
    let reply = say(&rig.bot, USER, "deploy staging").await;
    let text = reply.to_plain_text();
    assert_eq!(reply.outcome, Outcome::Done, "{text}");
    assert!(text.contains("green stayed healthy for 1.5s"), "{text}");
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "done only after the watch"
    );
    assert_eq!(labels(&reply), vec!["Roll back staging api".to_owned()]);
    traffic_reaches(&rig.haproxy.frontend, "2.0.0").await;

    // One click moves real traffic back (after its own watch); a second click is stale.
    let back = click(&rig.bot, USER, &reply, "Roll back").await;
    assert_eq!(back.outcome, Outcome::Done, "{}", back.to_plain_text());
    assert!(
        back.to_plain_text().contains("green → *blue*"),
        "{}",
        back.to_plain_text()
    );
    traffic_reaches(&rig.haproxy.frontend, "1.0.0").await;
    let again = click(&rig.bot, USER, &reply, "Roll back").await;
    assert_eq!(again.outcome, Outcome::Stale, "{}", again.to_plain_text());
}

#[cfg_attr(
    not(haproxy),
    ignore = "haproxy not installed (apt-get install haproxy)"
)]
#[tokio::test]
async fn without_auto_rollback_an_unhealthy_colour_keeps_traffic_and_offers_the_rollback() {
    let watch = "    watch: 3s\n    watch_every: 100ms";
    let Some(rig) = rig(watch).await else { return };
    let deploy = tokio::spawn({
        let bot = rig.bot.clone();
        async move { say(&bot, USER, "deploy staging").await }
    });
    switched_to(&rig.haproxy.frontend, "2.0.0").await;
    rig.green.set_behaviour(Behaviour::Unhealthy);
    let reply = deploy.await.expect("deploy");
    let text = reply.to_plain_text();
    assert_eq!(reply.outcome, Outcome::Failed, "{text}");
    assert!(text.contains("no `auto_rollback`"), "{text}");
    assert_eq!(labels(&reply), vec!["Roll back staging api".to_owned()]);
    // (HAProxy's own checks must see green up again before its switch can be read.)
    rig.green.set_behaviour(Behaviour::Healthy);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let back = click(&rig.bot, USER, &reply, "Roll back").await;
    assert_eq!(back.outcome, Outcome::Done, "{}", back.to_plain_text());
    traffic_reaches(&rig.haproxy.frontend, "1.0.0").await;
}

#[test]
fn watch_keys_are_read_per_environment_and_pool_and_checked_with_their_position() {
    let yaml = |env_keys: &str, pool_keys: &str| {
        format!(
            "groups:\n  deployers: [U1]\nenvironments:\n  staging:\n{env_keys}    pools:\n      api:\n{pool_keys}        switch: {{ type: memory, initial: blue }}\n        members:\n          blue: {{ url: http://127.0.0.1:9 }}\n          green: {{ url: http://127.0.0.1:9 }}\n      cron:\n        switch: {{ type: memory, initial: purple }}\n        members:\n          purple: {{ url: http://127.0.0.1:9 }}\n          yellow: {{ url: http://127.0.0.1:9 }}\n"
        )
    };
    let config = bot_core::load_strs_with_env(
        common::COMMANDS,
        &yaml(
            "    watch: 2m\n    auto_rollback: true\n",
            "        watch: 30s\n        watch_every: 250ms\n        watch_failures: 3\n",
        ),
        &|_| None,
    )
    .expect("valid");
    let api = config.watch("staging", "api").expect("api watched");
    assert_eq!(
        api.duration,
        Duration::from_secs(30),
        "the pool's own key wins"
    );
    assert_eq!(api.every, Duration::from_millis(250));
    assert_eq!(api.failures, 3);
    assert!(api.auto_rollback, "inherited from the environment");
    let cron = config.watch("staging", "cron").expect("cron watched");
    assert_eq!(cron.duration, Duration::from_secs(120));
    assert_eq!((cron.every, cron.failures), (Duration::from_secs(5), 2));

    let errors = bot_core::load_strs_with_env(
        common::COMMANDS,
        &yaml("    auto_rollback: true\n", "        watch: soon\n"),
        &|_| None,
    )
    .expect_err("invalid")
    .to_string();
    assert!(
        errors.contains("instances.yaml:5:20: `auto_rollback` has no `watch` to go with"),
        "{errors}"
    );
    assert!(errors.contains("`soon` is not a duration"), "{errors}");
}
