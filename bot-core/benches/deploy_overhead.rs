//! How much time the bot adds to a deploy on top of Jenkins.
//!
//! Runs real deploys (simulated Jenkins and instances over loopback HTTP, traffic
//! switch in memory) and reports, side by side, Jenkins' own time (queue + build, as
//! configured in the simulator) and the bot's wall-clock deploy time. The difference
//! is what the bot adds: polling lag, the one-probe health gate, the switch and its
//! read-back, locking, audit and rendering.
//!
//! `cargo bench -p bot-core --bench deploy_overhead`

use std::sync::Arc;
use std::time::{Duration, Instant};

use bot_core::adapters::memory_switch::MemorySwitch;
use bot_core::{Bot, Outcome, Request};
use crossroads_sim::instance::SimInstance;
use crossroads_sim::jenkins::{JenkinsSetup, JobSetup, SimJenkins};

const COMMANDS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../commands.yaml"));
const INSTANCES: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../instances.yaml"));
const QUEUE: Duration = Duration::from_millis(500);
const BUILD: Duration = Duration::from_secs(3);
const RUNS: usize = 5;

async fn measure(poll: Duration) -> Vec<Duration> {
    let job = JobSetup::new()
        .queue_time(QUEUE)
        .build_duration(BUILD)
        .estimated_duration(Some(BUILD));
    let jenkins =
        SimJenkins::start(JenkinsSetup::new("crossroads", "tok").job("platform/deploy-api", job))
            .await
            .expect("jenkins");
    let blue = SimInstance::start("blue", "1").await.expect("blue");
    let green = SimInstance::start("green", "1").await.expect("green");
    let vars = [
        ("JENKINS_URL", jenkins.url()),
        ("JENKINS_TOKEN", "tok".to_owned()),
        ("STAGING_API_BLUE_URL", blue.url()),
        ("STAGING_API_GREEN_URL", green.url()),
    ];
    let lookup = |n: &str| vars.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone());
    let mut cfg = bot_core::load_strs_with_env(COMMANDS, INSTANCES, &lookup).expect("config");
    cfg.settings.gate_consecutive = 1;
    if let Some(j) = cfg.jenkins.as_mut() {
        j.poll_interval = poll;
    }
    let bot = Bot::builder(cfg)
        .switch_all(Arc::new(MemorySwitch::new()))
        .build();
    let mut added = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let reply = bot
            .handle(Request::text("U0DEPLOYER", "deploy staging api"))
            .await;
        let total = started.elapsed();
        assert_eq!(reply.outcome, Outcome::Done, "{}", reply.to_plain_text());
        added.push(total.saturating_sub(QUEUE + BUILD));
    }
    added.sort();
    added
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    println!(
        "Jenkins time per deploy (queue + build): {}",
        ms(QUEUE + BUILD)
    );
    println!(
        "{:<22} {:>10} {:>10} {:>10}",
        "poll_interval", "min added", "median", "max"
    );
    for poll in [Duration::from_millis(500), Duration::from_millis(100)] {
        let added = measure(poll).await;
        println!(
            "{:<22} {:>10} {:>10} {:>10}",
            format!(
                "{} ({})",
                ms(poll),
                if poll.as_millis() == 500 {
                    "shipped"
                } else {
                    "tuned"
                }
            ),
            ms(added[0]),
            ms(added[added.len() / 2]),
            ms(added[added.len() - 1])
        );
    }
}
