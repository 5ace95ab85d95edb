//! `dora staging 30d` after a scripted week, on a clock set to each day (time runs on
//! from there, so the post-switch watch ends): five deploys with known commit times
//! (from a GitHub-shaped compare endpoint), one rolled back by hand half an hour
//! later, one followed by a confirmed monitor incident that recovered in half an hour,
//! and one whose new member turned unhealthy right after the switch (the watch moved
//! it back). The four keys come out exactly, each with its count and band.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bot_core::adapters::memory_switch::MemorySwitch;
use bot_core::ports::TrafficSwitch;
use bot_core::ports::{Health, ProbeRecord, Store};
use bot_core::{Bot, Outcome};
use common::{load, quick, say};
use crossroads_sim::instance::{Behaviour, SimInstance};
use crossroads_sim::jenkins::{JenkinsSetup, SimJenkins};
use crossroads_sim::{CompareStandIn, GitCommit};

const USER: &str = "U0DEPLOYER";
const TOKEN: &str = "ghp_s3cret";

const INSTANCES: &str = r#"
settings:
  probe_timeout: 1s
  gate: { consecutive: 1, interval: 50ms, timeout: 5s }
jenkins: { url: "${JENKINS_URL}", user: crossroads, token: t0ken, poll_interval: 50ms }
compare: { type: github, url: "${GITHUB_API_URL}", repo: acme/api, token: "${GITHUB_TOKEN}" }
groups:
  deployers: [U0DEPLOYER]
environments:
  staging:
    pools:
      api:
        switch: { type: memory, initial: blue }
        watch: 1s
        watch_every: 100ms
        watch_failures: 1
        auto_rollback: true
        deploy: { job: platform/deploy-api, parameters: { COLOUR: "{colour}" } }
        members:
          blue: { url: "${BLUE_URL}", health: { version: /version } }
          green: { url: "${GREEN_URL}", health: { version: /version } }
"#;

/// Monday 2 November 2026 00:00 UTC, plus `days` and `hh:mm`.
fn at(days: u64, hh: u64, mm: u64) -> SystemTime {
    let base = humantime::parse_rfc3339("2026-11-02T00:00:00Z").expect("time");
    base + Duration::from_secs(days * 86_400 + hh * 3600 + mm * 60)
}

fn iso(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

fn commit(n: u8, when: SystemTime) -> GitCommit {
    GitCommit::new(
        &format!("{n}").repeat(40),
        "Ada Lovelace",
        &format!("Change {n}"),
    )
    .date(&iso(when))
}

#[tokio::test]
async fn the_four_keys_of_a_scripted_week_come_out_exactly() {
    let blue = SimInstance::start("blue", "1.0.0").await.expect("blue");
    let green = Arc::new(SimInstance::start("green", "0.9.0").await.expect("green"));
    let jenkins = SimJenkins::start(
        JenkinsSetup::new("crossroads", "t0ken").job("platform/deploy-api", quick()),
    )
    .await
    .expect("jenkins");
    let cmp = CompareStandIn::start(TOKEN).await.expect("compare");
    // What each deploy ships, from the version live then (blue 1.0.0, green 0.9.0).
    cmp.set_commits(
        "acme/api",
        "1.0.0",
        "r1",
        vec![commit(1, at(1, 8, 0)), commit(2, at(1, 9, 0))],
    );
    cmp.set_commits("acme/api", "0.9.0", "r2", vec![commit(3, at(2, 10, 0))]);
    cmp.set_commits("acme/api", "0.9.0", "r3", vec![commit(4, at(5, 6, 0))]);
    cmp.set_commits("acme/api", "1.0.0", "r5", vec![commit(6, at(6, 9, 0))]);
    cmp.set_commits("acme/api", "1.0.0", "r4", vec![commit(5, at(7, 9, 30))]);
    let config = load(
        INSTANCES,
        &[
            ("JENKINS_URL", jenkins.url()),
            ("GITHUB_API_URL", cmp.url()),
            ("GITHUB_TOKEN", TOKEN.into()),
            ("BLUE_URL", blue.url()),
            ("GREEN_URL", green.url()),
        ],
    );
    // The clock: the day the test sets, plus the time run since it was set.
    let now = Arc::new(Mutex::new((at(0, 0, 0), Instant::now())));
    let clock = now.clone();
    let store: Arc<dyn Store> = Arc::new(bot_core::adapters::store::memory::MemoryStore::new());
    let switch = Arc::new(MemorySwitch::new());
    let bot = Bot::builder(config)
        .store(store.clone())
        .switch_all(switch.clone())
        .clock(Arc::new(move || {
            let (day, set) = *clock.lock().expect("clock");
            day + set.elapsed()
        }))
        .build();
    let set = |t: SystemTime| *now.lock().expect("clock") = (t, Instant::now());
    let deploy = |bot: &Bot, r: &'static str| {
        let bot = bot.clone();
        async move {
            let reply = say(&bot, USER, &format!("deploy staging {r}")).await;
            assert_eq!(
                reply.outcome,
                Outcome::Done,
                "{r}: {}",
                reply.to_plain_text()
            );
        }
    };

    // Day 1: blue → green, two commits made 2 h and 1 h before.
    set(at(1, 10, 0));
    deploy(&bot, "r1").await;
    // Day 3: green → blue, a commit a day old; rolled back by hand 30 min later.
    set(at(3, 10, 0));
    deploy(&bot, "r2").await;
    // (A few seconds on: the deploy itself took a second or two of running time.)
    set(at(3, 10, 30) + Duration::from_secs(5));
    let back = say(&bot, USER, "rollback staging").await;
    assert_eq!(back.outcome, Outcome::Done, "{}", back.to_plain_text());
    // Day 5: green → blue, a commit 4 h old; the monitor confirms blue down from
    // 10:10 and up again at 10:40.
    set(at(5, 10, 0));
    deploy(&bot, "r3").await;
    let probe = |minute: u64, health: Health| ProbeRecord {
        target: "instance:staging/api/blue".to_owned(),
        at: at(5, 10, minute),
        health,
        latency: None,
        status: None,
        version: None,
        reason: None,
        count: 1,
    };
    store
        .record_probes(&[
            probe(5, Health::Ok),
            probe(10, Health::NotOk),
            probe(11, Health::NotOk),
            probe(40, Health::Ok),
        ])
        .await
        .expect("probes");
    // Day 6: blue → green, a commit an hour old; green turns unhealthy as soon as
    // traffic is on it, and the watch moves it back to blue.
    set(at(6, 10, 0));
    let flip = {
        let config = bot.config();
        let switch = switch.clone();
        let green = green.clone();
        tokio::spawn(async move {
            let env = config.env("staging").expect("staging").clone();
            let pool = env.pools[0].clone();
            loop {
                if switch.active(&env, &pool).await.ok().as_deref() == Some("green") {
                    green.set_behaviour(Behaviour::Unhealthy);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let failed = say(&bot, USER, "deploy staging r5").await;
    flip.await.expect("flipped");
    assert!(
        failed.to_plain_text().contains("then rolled back"),
        "{}",
        failed.to_plain_text()
    );
    green.set_behaviour(Behaviour::Healthy);
    // Day 7: blue → green, a commit 30 min old.
    set(at(7, 10, 0));
    deploy(&bot, "r4").await;

    set(at(7, 12, 0));
    let reply = say(&bot, USER, "dora staging 30d").await;
    let text = reply.to_plain_text();
    assert_eq!(reply.outcome, Outcome::Info, "{text}");
    // 5 deploys in 30 days: 0.17 a day, more than once a week: high.
    assert!(
        text.contains("Deployment frequency:* 0.17 a day — 5 deploys in the last 30 days · *high*"),
        "{text}"
    );
    // Lead times 30 min, 1 h, 1 h, 2 h, 4 h, 24 h: median 1 h 30 min, p90 24 h
    // (nearest rank).
    assert!(
        text.contains(
            "Lead time for changes:* median 1h 30m, p90 1d — from 6 commits with a known time · *elite*"
        ),
        "{text}"
    );
    // The rollback by hand, the incident and the watch's rollback: 3 of 5.
    assert!(
        text.contains("Change failure rate:* 60 % — 3 of 5 deploys · *low*"),
        "{text}"
    );
    // Restored in 30 min, 30 min and under a second: median 30 min.
    assert!(
        text.contains("Time to restore:* median 30m — 3 of 3 failures restored · *elite*"),
        "{text}"
    );
    assert!(
        reply
            .all_buttons()
            .any(|b| b.label == "How these are measured"),
        "the definitions are one click away"
    );
    // The weekly trend, as a chart that renders to a PNG that is not blank.
    let chart = say(&bot, USER, "chart dora staging 30d").await;
    let summary = chart.to_plain_text();
    assert!(
        summary.contains(
            "5 deploys; change failure rate 60 %; median lead time 1h 30m; median time to restore 30m"
        ),
        "{summary}"
    );
    let spec = chart.charts().next().expect("a chart");
    let weekly: Vec<f64> = spec.datasets[0]
        .data
        .iter()
        .map(|d| d.unwrap_or(0.0))
        .collect();
    assert_eq!(
        weekly.iter().sum::<f64>(),
        5.0,
        "every deploy in a week: {weekly:?}"
    );
    let png = bot_core::chart::render(spec).expect("renders");
    let decoder = png::Decoder::new(std::io::Cursor::new(&png));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("a size")];
    let info = reader.next_frame(&mut pixels).expect("a frame");
    let colours: std::collections::HashSet<&[u8]> =
        pixels[..info.buffer_size()].chunks(3).collect();
    assert!(colours.len() > 8, "not blank: {} colours", colours.len());

    let window = say(&bot, USER, "dora staging 1d").await.to_plain_text();
    assert!(
        window.contains("1 deploy in the last day"),
        "a shorter window holds only day 7's deploy: {window}"
    );
}
