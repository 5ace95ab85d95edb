//! How much time the bot adds to a deploy on top of Jenkins, and to each canary step
//! on top of its pause.
//!
//! Runs real deploys (simulated Jenkins and instances over loopback HTTP, traffic
//! switch in memory) and reports, side by side in one run:
//! - a plain deploy: Jenkins' own time (queue + build, as configured in the
//!   simulator) against the bot's wall-clock deploy time; the difference is polling
//!   lag, the one-probe health gate, the switch and its read-back, locking, audit and
//!   rendering;
//! - a canary deploy (10, 50, 100 %, each step held for its pause and judged every
//!   200 ms by a query to a Prometheus query API stand-in): the time from one step's
//!   weights taking to the next one's, beyond the pause, and the whole deploy beyond
//!   Jenkins and the pauses.
//!
//! `cargo bench -p bot-core --bench deploy_overhead`

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bot_core::adapters::memory_switch::MemorySwitch;
use bot_core::config::{Environment, Pool};
use bot_core::ports::{Split, SwitchError, TrafficSwitch};
use bot_core::{Bot, Outcome, Request};
use crossroads_sim::instance::SimInstance;
use crossroads_sim::jenkins::{JenkinsSetup, JobSetup, SimJenkins};
use crossroads_sim::prometheus::SimPrometheus;
use crossroads_sim::yaml::without_canaries;

const COMMANDS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../commands.yaml"));
const INSTANCES: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../instances.yaml"));
const QUEUE: Duration = Duration::from_millis(500);
const BUILD: Duration = Duration::from_secs(3);
const RUNS: usize = 5;
/// Each canary step is held this long.
const PAUSE: Duration = Duration::from_secs(1);
const STEPS: [u8; 3] = [10, 50, 100];

/// The memory switch, noting when each split took.
#[derive(Default)]
struct Timed {
    inner: MemorySwitch,
    splits: Mutex<Vec<Instant>>,
}

#[async_trait]
impl TrafficSwitch for Timed {
    async fn active(&self, env: &Environment, pool: &Pool) -> Result<String, SwitchError> {
        self.inner.active(env, pool).await
    }
    async fn switch_to(
        &self,
        env: &Environment,
        pool: &Pool,
        member: &str,
    ) -> Result<(), SwitchError> {
        self.inner.switch_to(env, pool, member).await
    }
    fn weighted(&self) -> bool {
        true
    }
    async fn set_split(
        &self,
        env: &Environment,
        pool: &Pool,
        split: &Split,
    ) -> Result<(), SwitchError> {
        let done = self.inner.set_split(env, pool, split).await;
        if let Ok(mut s) = self.splits.lock() {
            s.push(Instant::now());
        }
        done
    }
    async fn split(&self, env: &Environment, pool: &Pool) -> Result<Split, SwitchError> {
        self.inner.split(env, pool).await
    }
}

struct Measured {
    /// Whole deploy beyond Jenkins (and, for a canary, its pauses).
    added: Vec<Duration>,
    /// Each canary step beyond its pause.
    steps: Vec<Duration>,
}

async fn measure(poll: Duration, canary: Option<&SimPrometheus>) -> Measured {
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
    let mut vars = vec![
        ("JENKINS_URL", jenkins.url()),
        ("JENKINS_TOKEN", "tok".to_owned()),
        ("STAGING_API_BLUE_URL", blue.url()),
        ("STAGING_API_GREEN_URL", green.url()),
        ("STAGING_CANARY_PAUSE", format!("{}ms", PAUSE.as_millis())),
    ];
    let instances = match canary {
        Some(p) => {
            vars.push(("PROMETHEUS_URL", p.url()));
            INSTANCES
                .replace("steps: [25, 50, 100]", "steps: [10, 50, 100]")
                .replace("interval: 2s", "interval: 200ms")
        }
        None => without_canaries(INSTANCES),
    };
    let lookup = |n: &str| vars.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone());
    let mut cfg = bot_core::load_strs_with_env(COMMANDS, &instances, &lookup).expect("config");
    cfg.settings.gate_consecutive = 1;
    if let Some(j) = cfg.jenkins.as_mut() {
        j.poll_interval = poll;
    }
    let switch = Arc::new(Timed::default());
    let bot = Bot::builder(cfg).switch_all(switch.clone()).build();
    let pauses = if canary.is_some() {
        PAUSE * u32::try_from(STEPS.len() - 1).unwrap_or(0)
    } else {
        Duration::ZERO
    };
    let mut measured = Measured {
        added: Vec::new(),
        steps: Vec::new(),
    };
    for _ in 0..RUNS {
        if let Ok(mut s) = switch.splits.lock() {
            s.clear();
        }
        let started = Instant::now();
        let reply = bot
            .handle(Request::text("U0DEPLOYER", "deploy staging api"))
            .await;
        let total = started.elapsed();
        assert_eq!(reply.outcome, Outcome::Done, "{}", reply.to_plain_text());
        measured
            .added
            .push(total.saturating_sub(QUEUE + BUILD + pauses));
        let splits = switch.splits.lock().map(|s| s.clone()).unwrap_or_default();
        for pair in splits.windows(2) {
            measured
                .steps
                .push((pair[1] - pair[0]).saturating_sub(PAUSE));
        }
    }
    measured.added.sort();
    measured.steps.sort();
    measured
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn row(what: &str, v: &[Duration]) {
    if v.is_empty() {
        return;
    }
    println!(
        "{:<44} {:>10} {:>10} {:>10}",
        what,
        ms(v[0]),
        ms(v[v.len() / 2]),
        ms(v[v.len() - 1])
    );
}

#[tokio::main]
async fn main() {
    println!(
        "Jenkins time per deploy (queue + build): {}; canary steps {STEPS:?}, {} each",
        ms(QUEUE + BUILD),
        ms(PAUSE)
    );
    println!("{:<44} {:>10} {:>10} {:>10}", "", "min", "median", "max");
    let prometheus = SimPrometheus::start(Some(0.001)).await.expect("prometheus");
    for poll in [Duration::from_millis(500), Duration::from_millis(100)] {
        let which = if poll.as_millis() == 500 {
            "shipped"
        } else {
            "tuned"
        };
        let plain = measure(poll, None).await;
        let canary = measure(poll, Some(&prometheus)).await;
        row(
            &format!("plain deploy, added (poll {} {which})", ms(poll)),
            &plain.added,
        );
        row(
            &format!("canary deploy, added beyond pauses (poll {})", ms(poll)),
            &canary.added,
        );
        row("canary step, added beyond its pause", &canary.steps);
    }
}
