//! `status`, `health` and `show tasks` over real HTTP against simulated instances:
//! concurrent probes, per-probe timeout, down instances with their reason, recipe verdicts.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bot_core::adapters::memory_switch::MemorySwitch;
use bot_core::{Bot, Outcome};
use common::{say, shipped, INSTANCE_URL_VARS};
use crossroads_sim::instance::{Behaviour, SimInstance, Task, TaskState};

struct Platform {
    bot: Bot,
    sims: Vec<SimInstance>,
}

/// Starts one simulated instance per configured instance; `refused` gets a dead port.
async fn platform(timeout: Duration, refused: &str) -> Platform {
    let mut sims = Vec::new();
    let mut vars = Vec::new();
    for (i, var) in INSTANCE_URL_VARS.iter().enumerate() {
        if *var == refused {
            vars.push((*var, crossroads_sim::dead_url().expect("dead url")));
            continue;
        }
        let sim = SimInstance::start(var, &format!("2.{i}.0"))
            .await
            .expect("sim");
        vars.push((*var, sim.url()));
        sims.push(sim);
    }
    let mut config = shipped(&vars);
    config.settings.probe_timeout = timeout;
    let bot = Bot::builder(config)
        .switch_all(Arc::new(MemorySwitch::new()))
        .build();
    Platform { bot, sims }
}

#[tokio::test]
async fn status_reports_hung_and_refusing_instances_within_the_probe_timeout() {
    let timeout = Duration::from_millis(500);
    let p = platform(timeout, "STAGING_CRON_YELLOW_URL").await;
    // master api green hangs: accepts the connection and never answers.
    p.sims[1].control().set_behaviour(Behaviour::Hang);

    let started = Instant::now();
    let reply = say(&p.bot, "U0DEMO", "status").await;
    let took = started.elapsed();
    let text = reply.to_plain_text();

    assert!(
        took < timeout + Duration::from_millis(100),
        "status took {took:?}"
    );
    assert_eq!(reply.outcome, Outcome::Info);
    assert!(
        text.contains("green — down: no answer within 500ms"),
        "{text}"
    );
    assert!(text.contains("yellow — down: connection refused"), "{text}");
    assert!(text.contains("blue *← active* — healthy"), "{text}");
    assert!(text.contains("v2.0.0"), "versions are shown: {text}");
    assert!(text.contains("10 of 12 instances healthy"), "{text}");
    // Grouped by environment, then region (master runs in eu and us), then pool.
    assert!(
        text.contains("*master* (protected) — 2/2 regions healthy"),
        "{text}"
    );
    let master = text.find("*master*").expect("master");
    let staging = text.find("*staging*").expect("staging");
    assert!(master < staging);
    assert!(text[master..staging].contains("_api_") && text[master..staging].contains("_cron_"));
}

#[tokio::test]
async fn status_of_one_environment_probes_only_it() {
    let p = platform(Duration::from_secs(2), "").await;
    let reply = say(&p.bot, "U0DEMO", "status stg").await;
    let text = reply.to_plain_text();
    assert!(text.contains("Status of staging"), "{text}");
    assert!(!text.contains("*master*"), "{text}");
    assert_eq!(p.sims[0].control().health_hits(), 0, "master was probed");
    assert!(
        p.sims[4].control().health_hits() > 0,
        "staging was not probed"
    );
}

#[tokio::test]
async fn health_shows_each_check_and_why_it_failed() {
    let p = platform(Duration::from_secs(2), "").await;
    p.sims[0].control().set_behaviour(Behaviour::Unhealthy);
    let healthy = say(&p.bot, "U0DEMO", "health rh green eu").await;
    assert_eq!(
        healthy.outcome,
        Outcome::Info,
        "{}",
        healthy.to_plain_text()
    );
    let reply = say(&p.bot, "U0DEMO", "health rh blue europe").await;
    let text = reply.to_plain_text();
    assert_eq!(reply.outcome, Outcome::Failed, "a failed check: {text}");
    assert!(text.contains("*master eu api blue* is unhealthy"), "{text}");
    assert!(text.contains(":x: status 200 — got 503"), "{text}");
    assert!(
        text.contains(":x: /status = \"ok\" — got \"degraded\""),
        "{text}"
    );
    assert!(text.contains("active (taking traffic)"), "{text}");

    p.sims[0]
        .control()
        .set_behaviour(Behaviour::Slow(Duration::from_millis(1600)));
    let reply = say(&p.bot, "U0DEMO", "health rh blue eu").await;
    assert!(
        reply.to_plain_text().contains(":x: latency ≤ 1.5s"),
        "{}",
        reply.to_plain_text()
    );
}

#[tokio::test]
async fn show_tasks_lists_the_tasks_endpoint() {
    let p = platform(Duration::from_secs(2), "MASTER_CRON_YELLOW_URL").await;
    // staging cron purple is the 6th simulated instance (master cron yellow is down).
    p.sims[5].control().set_tasks(vec![
        Task::new(7, "nightly-report", TaskState::Running, 40),
        Task::new(8, "cache-warmup", TaskState::Queued, 0),
    ]);
    let reply = say(&p.bot, "U0DEMO", "show tasks staging purple").await;
    let text = reply.to_plain_text();
    assert_eq!(reply.outcome, Outcome::Info, "{text}");
    assert!(
        text.starts_with("Tasks on *staging cron purple* (2)"),
        "{text}"
    );
    assert!(
        text.contains("*nightly-report* — running · 40% · #7"),
        "{text}"
    );
    assert!(text.contains("*cache-warmup* — queued"), "{text}");

    let reply = say(&p.bot, "U0DEMO", "tasks rh yellow eu").await;
    assert_eq!(reply.outcome, Outcome::Failed);
    assert!(
        reply.to_plain_text().contains("connection refused"),
        "{}",
        reply.to_plain_text()
    );
}
