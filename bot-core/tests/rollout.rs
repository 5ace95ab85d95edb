//! Rollouts stage by stage on one shared run: `canary: eu` deploys eu first, then
//! the other regions side by side (their builds run at the same time), each region
//! watched after its switch; a region that turns unhealthy in its watch is moved back
//! and stops the rollout before the next stage. Also `rollback` returns a pool to the
//! member the last move took it from, and the post-switch watch honours its window.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bot_core::adapters::memory_switch::MemorySwitch;
use bot_core::adapters::store::memory::MemoryStore;
use bot_core::ports::TrafficSwitch;
use bot_core::{Bot, Outcome};
use common::{load, param, say, USER};
use crossroads_sim::instance::{Behaviour, SimInstance};
use crossroads_sim::jenkins::{JenkinsSetup, JobSetup, SimJenkins};

const REGIONS: [&str; 3] = ["eu", "us", "ap"];

fn instances(jenkins: &str, urls: &[(String, String)]) -> String {
    let mut regions = String::new();
    for (r, (blue, green)) in REGIONS.iter().zip(urls) {
        regions.push_str(&format!(
            "      {r}:\n        pools:\n          api:\n            switch: {{ type: memory, initial: blue }}\n            members: {{ blue: {{ url: \"{blue}\" }}, green: {{ url: \"{green}\" }} }}\n"
        ));
    }
    format!(
        r#"
settings:
  probe_timeout: 1s
  gate: {{ consecutive: 1, interval: 50ms, timeout: 10s }}
jenkins: {{ url: "{jenkins}", user: crossroads, token: t0ken, poll_interval: 30ms }}
groups:
  deployers: [{USER}]
environments:
  master:
    pools:
      api:
        watch: 1s
        watch_every: 100ms
        auto_rollback: true
        deploy: {{ job: platform/deploy-api, parameters: {{ COLOUR: "{{colour}}", REGION: "{{region}}" }} }}
        members: {{ blue: {{}}, green: {{}} }}
    regions:
{regions}    rollout:
      canary: eu
"#
    )
}

struct World {
    bot: Bot,
    switch: Arc<MemorySwitch>,
    jenkins: SimJenkins,
    sims: Vec<(SimInstance, SimInstance)>,
}

impl World {
    async fn start() -> World {
        let job = JobSetup::new()
            .queue_time(Duration::from_millis(20))
            .build_duration(Duration::from_millis(700));
        let jenkins = SimJenkins::start(
            JenkinsSetup::new("crossroads", "t0ken").job("platform/deploy-api", job),
        )
        .await
        .expect("jenkins");
        let mut sims = Vec::new();
        for _ in REGIONS {
            sims.push((
                SimInstance::start("blue", "1.0.0").await.expect("blue"),
                SimInstance::start("green", "1.0.0").await.expect("green"),
            ));
        }
        let urls: Vec<(String, String)> = sims.iter().map(|(b, g)| (b.url(), g.url())).collect();
        let config = load(&instances(&jenkins.url(), &urls), &[]);
        let switch = Arc::new(MemorySwitch::new());
        let bot = Bot::builder(config)
            .store(Arc::new(MemoryStore::new()))
            .switch_all(switch.clone())
            .build();
        World {
            bot,
            switch,
            jenkins,
            sims,
        }
    }

    async fn active(&self, region: &str) -> String {
        let config = self.bot.config();
        let env = config.env("master").expect("master");
        let pool = config.pool_in("master", Some(region), "api").expect("pool");
        self.switch.active(env, pool).await.expect("active")
    }

    /// The regions whose builds are running now.
    fn building(&self) -> Vec<String> {
        let triggers = self.jenkins.triggers();
        self.jenkins
            .builds("platform/deploy-api")
            .into_iter()
            .filter(|(_, result)| result.is_none())
            .filter_map(|(n, _)| {
                let t = triggers.get(usize::try_from(n).ok()?.checked_sub(1)?)?;
                param(t, "REGION").map(str::to_owned)
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_canary_goes_first_then_the_other_regions_side_by_side() {
    let w = Arc::new(World::start().await);
    let seen: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let sampler = tokio::spawn({
        let (w, seen) = (w.clone(), seen.clone());
        async move {
            loop {
                let mut now = w.building();
                now.sort();
                if !now.is_empty() {
                    let mut seen = seen.lock().expect("seen");
                    if seen.last() != Some(&now) {
                        seen.push(now);
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });
    let reply = say(&w.bot, USER, "deploy master").await;
    sampler.abort();
    let text = reply.to_plain_text();
    assert_eq!(reply.outcome, Outcome::Done, "{text}");
    let seen = seen.lock().expect("seen").clone();
    assert_eq!(
        seen.first(),
        Some(&vec!["eu".to_owned()]),
        "the canary builds alone first: {seen:?}"
    );
    assert!(
        seen.contains(&vec!["ap".to_owned(), "us".to_owned()]),
        "us and ap build side by side: {seen:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|s| s.contains(&"eu".to_owned()) && s.len() > 1),
        "nothing builds beside the canary: {seen:?}"
    );
    for r in REGIONS {
        assert_eq!(w.active(r).await, "green", "{r} switched");
        assert!(
            text.contains(&format!("{r} api: green stayed healthy")),
            "{r} watched: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_unhealthy_after_its_switch_is_moved_back_and_stops_the_rollout() {
    let w = Arc::new(World::start().await);
    // eu's new member fails right after traffic reaches it.
    let breaker = tokio::spawn({
        let w = w.clone();
        async move {
            while w.active("eu").await != "green" {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            w.sims[0].1.set_behaviour(Behaviour::Unhealthy);
        }
    });
    let reply = say(&w.bot, USER, "deploy master").await;
    breaker.abort();
    let text = reply.to_plain_text();
    assert_eq!(reply.outcome, Outcome::Failed, "{text}");
    assert!(
        text.contains("*eu* — :rewind: switched, then rolled back"),
        "{text}"
    );
    assert!(
        text.contains("moved traffic back to *blue* automatically"),
        "{text}"
    );
    assert!(text.contains("*us* — :white_circle: waiting"), "{text}");
    assert_eq!(w.active("eu").await, "blue", "eu is back on blue");
    assert_eq!(w.active("us").await, "blue", "us never started");
    assert_eq!(w.jenkins.triggers().len(), 1, "only the canary was built");
}

/// A pool of three members: a deploy from `a` builds `b`; `rollback` returns to `a`
/// (where the deploy took it from), not to `c` (the member after `b`).
#[tokio::test]
async fn rollback_returns_to_the_member_the_last_move_took_the_pool_from() {
    let jenkins = SimJenkins::start(JenkinsSetup::new("crossroads", "t0ken").job(
        "platform/deploy-api",
        JobSetup::new().build_duration(Duration::from_millis(50)),
    ))
    .await
    .expect("jenkins");
    let sims = [
        SimInstance::start("a", "1.0.0").await.expect("a"),
        SimInstance::start("b", "1.0.0").await.expect("b"),
        SimInstance::start("c", "1.0.0").await.expect("c"),
    ];
    let config = load(
        &format!(
            r#"
settings:
  gate: {{ consecutive: 1, interval: 20ms, timeout: 5s }}
jenkins: {{ url: "{}", user: crossroads, token: t0ken, poll_interval: 20ms }}
groups:
  deployers: [{USER}]
environments:
  staging:
    pools:
      api:
        switch: {{ type: memory, initial: a }}
        deploy: {{ job: platform/deploy-api }}
        members: {{ a: {{ url: "{}" }}, b: {{ url: "{}" }}, c: {{ url: "{}" }} }}
"#,
            jenkins.url(),
            sims[0].url(),
            sims[1].url(),
            sims[2].url()
        ),
        &[],
    );
    let bot = Bot::builder(config)
        .store(Arc::new(MemoryStore::new()))
        .build();
    let deployed = say(&bot, USER, "deploy staging").await;
    assert!(
        deployed.to_plain_text().contains("a → *b*"),
        "{}",
        deployed.to_plain_text()
    );
    let back = say(&bot, USER, "rollback staging").await;
    let text = back.to_plain_text();
    assert_eq!(back.outcome, Outcome::Done, "{text}");
    assert!(
        text.contains("api: b → *a*"),
        "back where the deploy came from: {text}"
    );
    // After a switch by hand, rollback undoes that switch.
    say(&bot, USER, "switch staging api c").await;
    let back = say(&bot, USER, "rollback staging").await;
    assert!(
        back.to_plain_text().contains("api: c → *a*"),
        "{}",
        back.to_plain_text()
    );
}

/// `watch: 2s` with the default `watch_every: 5s` and `watch_failures: 2`: the
/// probes are spaced so that two failures fit in the window, and an unhealthy
/// member is moved back within it.
#[tokio::test]
async fn the_watch_notices_within_its_window() {
    let blue = SimInstance::start("blue", "1.0.0").await.expect("blue");
    let green = SimInstance::start("green", "1.0.0").await.expect("green");
    green.set_behaviour(Behaviour::Unhealthy);
    let config = load(
        &format!(
            r#"
groups:
  deployers: [{USER}]
environments:
  staging:
    pools:
      api:
        watch: 2s
        auto_rollback: true
        switch: {{ type: memory, initial: blue }}
        members: {{ blue: {{ url: "{}" }}, green: {{ url: "{}" }} }}
"#,
            blue.url(),
            green.url()
        ),
        &[],
    );
    let bot = Bot::builder(config)
        .store(Arc::new(MemoryStore::new()))
        .build();
    // The switch itself checks health first: let green pass that one probe.
    green.set_behaviour(Behaviour::Healthy);
    let flip = tokio::spawn({
        let green = green.control();
        async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            green.set_behaviour(Behaviour::Unhealthy);
        }
    });
    let reply = say(&bot, USER, "switch staging api green").await;
    flip.await.expect("flip");
    let text = reply.to_plain_text();
    assert_eq!(reply.outcome, Outcome::Failed, "{text}");
    let after = text
        .split("green turned unhealthy ")
        .nth(1)
        .and_then(|s| s.split(" after").next())
        .unwrap_or_default()
        .to_owned();
    let ms = if let Some(s) = after.strip_suffix("ms") {
        s.parse::<f64>().unwrap_or(f64::MAX)
    } else if let Some(s) = after.strip_suffix('s') {
        s.parse::<f64>().unwrap_or(f64::MAX) * 1000.0
    } else {
        f64::MAX
    };
    assert!(
        ms < 2000.0,
        "noticed within the 2s window, not after 10s: {text}"
    );
    assert!(text.contains("moved traffic back to *blue*"), "{text}");
}
