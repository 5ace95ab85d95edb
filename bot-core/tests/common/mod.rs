//! Shared helpers for the integration tests: the shipped config with overrides,
//! a recording probe, a bot with in-memory switch state, and the shipped platform
//! running against simulated Jenkins and instances.
#![allow(dead_code)]

pub mod haproxy;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bot_core::adapters::memory_switch::MemorySwitch;
use bot_core::ports::{HttpSnapshot, Probe, ProbeError, TrafficSwitch};
use bot_core::{Bot, Config, Progress, Reply, Request};
use crossroads_sim::instance::SimInstance;
use crossroads_sim::jenkins::{JenkinsSetup, JobSetup, SimJenkins, Trigger};

pub const COMMANDS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../commands.yaml"));
pub const INSTANCES: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../instances.yaml"));

/// The variables naming each shipped instance's URL: the first eight in config order
/// (master's in its first region, eu), then master's in region us.
pub const INSTANCE_URL_VARS: [&str; 12] = [
    "MASTER_API_BLUE_URL",
    "MASTER_API_GREEN_URL",
    "MASTER_CRON_PURPLE_URL",
    "MASTER_CRON_YELLOW_URL",
    "STAGING_API_BLUE_URL",
    "STAGING_API_GREEN_URL",
    "STAGING_CRON_PURPLE_URL",
    "STAGING_CRON_YELLOW_URL",
    "MASTER_US_API_BLUE_URL",
    "MASTER_US_API_GREEN_URL",
    "MASTER_US_CRON_PURPLE_URL",
    "MASTER_US_CRON_YELLOW_URL",
];

pub use crossroads_sim::yaml::without_canaries;

/// The shipped commands with `instances` (YAML text), `${VAR}`s taken from `vars`.
pub fn load(instances: &str, vars: &[(&str, String)]) -> Config {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let lookup = move |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    bot_core::load_strs_with_env(COMMANDS, instances, &lookup)
        .unwrap_or_else(|e| panic!("test config must load: {e}"))
}

/// The repository's config (its canaries left out) with `${VAR}`s taken from `vars`
/// (defaults otherwise).
pub fn shipped(vars: &[(&str, String)]) -> Config {
    load(&without_canaries(INSTANCES), vars)
}

/// Answers every GET with a healthy JSON body and remembers the URLs asked.
#[derive(Default)]
pub struct RecordingProbe {
    pub urls: Mutex<Vec<String>>,
}

impl RecordingProbe {
    pub fn urls(&self) -> Vec<String> {
        self.urls.lock().map(|u| u.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl Probe for RecordingProbe {
    async fn get(&self, url: &str, _timeout: Duration) -> Result<HttpSnapshot, ProbeError> {
        if let Ok(mut u) = self.urls.lock() {
            u.push(url.to_owned());
        }
        Ok(HttpSnapshot {
            status: 200,
            body: r#"{"status":"ok","version":"1.0.0"}"#.into(),
            latency: Duration::from_millis(2),
        })
    }
}

/// The shipped config with a recording probe and traffic state in memory
/// (first member of each pool active).
pub fn recording_bot() -> (Bot, Arc<RecordingProbe>, Arc<MemorySwitch>) {
    let probe = Arc::new(RecordingProbe::default());
    let switch = Arc::new(MemorySwitch::new());
    // The shipped vocabulary and platform as one region each (the shipped file puts
    // master in two regions; `tests/regions.rs` covers that).
    let bot = Bot::builder(bot_core::testing::shipped_like_config())
        .probe(probe.clone())
        .switch_all(switch.clone())
        .build();
    (bot, probe, switch)
}

/// Sends a message as `user`.
pub async fn say(bot: &Bot, user: &str, text: &str) -> Reply {
    bot.handle(Request::text(user, text)).await
}

/// Clicks the button of `reply` whose label contains `label`.
pub async fn click(bot: &Bot, user: &str, reply: &Reply, label: &str) -> Reply {
    let value = reply
        .all_buttons()
        .find(|b| b.label.contains(label))
        .unwrap_or_else(|| panic!("no button labelled {label:?} in {}", reply.to_plain_text()))
        .value
        .clone();
    bot.handle(Request::button(user, value)).await
}

/// Labels of every button of a reply.
pub fn labels(reply: &Reply) -> Vec<String> {
    reply.all_buttons().map(|b| b.label.clone()).collect()
}

// ------------------------------------------------- the shipped platform, simulated

/// The person deploying in the platform tests (one of the shipped `deployers`).
pub const USER: &str = "U0DEPLOYER";
/// The Jenkins API token the simulated Jenkins accepts.
pub const TOKEN: &str = "s3cret-token";

/// A job that queues and builds in a fraction of a second.
pub fn quick() -> JobSetup {
    JobSetup::new()
        .queue_time(Duration::from_millis(40))
        .build_duration(Duration::from_millis(150))
        .estimated_duration(Some(Duration::from_millis(150)))
}

/// The shipped config running against a simulated Jenkins (every shipped job) and a
/// simulated instance per member, with traffic state in memory and short gate timings.
pub struct Platform {
    pub bot: Bot,
    pub jenkins: SimJenkins,
    pub switch: Arc<MemorySwitch>,
    pub sims: Vec<SimInstance>,
}

impl Platform {
    /// Starts it all; the config gives Jenkins `token_in_config` as its token.
    pub async fn start(token_in_config: &str) -> Self {
        Self::start_edited(token_in_config, &|s| s.to_owned()).await
    }

    /// Like [`Platform::start`], with the shipped `instances.yaml` changed by `edit`
    /// first.
    pub async fn start_edited(token_in_config: &str, edit: &dyn Fn(&str) -> String) -> Self {
        let setup = JenkinsSetup::new("crossroads", TOKEN)
            .job("platform/deploy-api", quick())
            .job("platform/deploy-cron", quick())
            .job("platform/restart", quick())
            .job("toy/refresh-database", quick());
        let jenkins = SimJenkins::start(setup).await.expect("jenkins");
        let mut vars = vec![
            ("JENKINS_URL", jenkins.url()),
            ("JENKINS_TOKEN", token_in_config.to_owned()),
        ];
        let mut sims = Vec::new();
        for var in INSTANCE_URL_VARS {
            let sim = SimInstance::start(var, "1.0.0").await.expect("instance");
            vars.push((var, sim.url()));
            sims.push(sim);
        }
        let mut config = load(&edit(&without_canaries(INSTANCES)), &vars);
        config.settings.gate_consecutive = 2;
        config.settings.gate_interval = Duration::from_millis(30);
        config.settings.gate_timeout = Duration::from_millis(600);
        if let Some(j) = config.jenkins.as_mut() {
            j.poll_interval = Duration::from_millis(20);
            j.timeout = Duration::from_secs(10);
        }
        let switch = Arc::new(MemorySwitch::new());
        let bot = Bot::builder(config).switch_all(switch.clone()).build();
        Self {
            bot,
            jenkins,
            switch,
            sims,
        }
    }

    /// The member of `env`/`pool` taking traffic.
    pub async fn active(&self, env: &str, pool: &str) -> String {
        let cfg = self.bot.config();
        let e = cfg.env(env).expect("env");
        let p = cfg.pool(env, pool).expect("pool");
        self.switch.active(e, p).await.expect("active")
    }

    /// Starts `deploy staging api` with a slow build and returns once Jenkins has queued
    /// it, i.e. once the deploy holds the lock.
    pub async fn deploy_in_background(&self) -> tokio::task::JoinHandle<Reply> {
        self.jenkins.set_job(
            "platform/deploy-api",
            quick().build_duration(Duration::from_millis(800)),
        );
        let bot = self.bot.clone();
        let deploy = tokio::spawn(async move { say(&bot, USER, "deploy staging api").await });
        for _ in 0..100 {
            if !self.triggers("platform/deploy-api").is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        deploy
    }

    /// Every trigger of `job` so far.
    pub fn triggers(&self, job: &str) -> Vec<Trigger> {
        self.jenkins
            .triggers()
            .into_iter()
            .filter(|t| t.job == job)
            .collect()
    }

    /// The simulated instance whose URL is in variable `var`.
    pub fn sim(&self, var: &str) -> &SimInstance {
        let i = INSTANCE_URL_VARS
            .iter()
            .position(|v| *v == var)
            .expect("known var");
        &self.sims[i]
    }
}

/// The value of parameter `name` in a Jenkins trigger.
pub fn param<'a>(t: &'a Trigger, name: &str) -> Option<&'a str> {
    t.params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Remembers every progress update.
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<String>>);

#[async_trait]
impl Progress for Recorder {
    async fn update(&self, reply: &Reply) {
        if let Ok(mut v) = self.0.lock() {
            v.push(reply.to_plain_text());
        }
    }
}

/// The repository's config with its `instances.yaml` text changed by `edit` first
/// (to add a section a test needs), `${VAR}`s taken from `vars`.
pub fn shipped_with(vars: &[(&str, String)], edit: impl Fn(&str) -> String) -> Config {
    let plain = without_canaries(INSTANCES);
    let instances = edit(&plain);
    assert_ne!(instances, plain, "the edit changed nothing");
    load(&instances, vars)
}
