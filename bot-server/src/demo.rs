//! `crossroads demo`: zero-setup playground. Starts simulated instances, a simulated
//! HTTP traffic switch and a simulated Jenkins on the loopback ports the config
//! names, so every command works against real HTTP.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use bot_core::config::{self, Config, SwitchSpec};
use crossroads_sim::instance::{Behaviour, InstanceControl, SimInstance, Task, TaskState};
use crossroads_sim::jenkins::{JenkinsSetup, JobSetup, SimJenkins};
use crossroads_sim::switch::{PoolSetup, SimSwitch};

/// The repository's shipped config, built into the binary so `demo` works from anywhere.
const COMMANDS_YAML: &str = include_str!("../../commands.yaml");
const INSTANCES_YAML: &str = include_str!("../../instances.yaml");

/// The simulated platform; dropping it stops nothing, call [`Demo::shutdown`].
pub struct Demo {
    /// The config the simulators were started for.
    pub config: Config,
    instances: Vec<SimInstance>,
    switch: Option<SimSwitch>,
    jenkins: Option<SimJenkins>,
    /// Instances left down on purpose.
    pub down: Vec<String>,
}

/// Loads the config for the demo: `dir` if given, else `./` when it holds both files,
/// else the copies built into the binary.
pub fn load_config(dir: Option<&Path>) -> anyhow::Result<Config> {
    let dir: Option<PathBuf> = match dir {
        Some(d) => Some(d.to_owned()),
        None if Path::new("commands.yaml").exists() && Path::new("instances.yaml").exists() => {
            Some(PathBuf::from("."))
        }
        None => None,
    };
    match dir {
        Some(d) => bot_core::load_dir(&d).map_err(|e| anyhow!("{e}")),
        None => bot_core::load_strs_with_env(COMMANDS_YAML, INSTANCES_YAML, &config::process_env)
            .map_err(|e| anyhow!("{e}")),
    }
}

fn port_of(url: &str) -> anyhow::Result<u16> {
    let parsed = url::Url::parse(url).with_context(|| format!("bad URL {url}"))?;
    let host = parsed.host_str().unwrap_or_default();
    if !(host == "localhost" || host.starts_with("127.") || host == "[::1]") {
        anyhow::bail!("the demo only simulates loopback addresses, and {url} is not one");
    }
    parsed
        .port_or_known_default()
        .ok_or_else(|| anyhow!("no port in {url}"))
}

fn in_use(what: &str, port: u16, e: std::io::Error) -> anyhow::Error {
    anyhow!("cannot start the simulated {what} on 127.0.0.1:{port}: {e} (is another demo running?)")
}

impl Demo {
    /// Starts every simulator. One instance is slow and one is down, on purpose.
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        let mut instances = Vec::new();
        let mut controls: HashMap<(String, String, String), InstanceControl> = HashMap::new();
        let mut down = Vec::new();
        let mut switch_port = None;
        let mut pools = Vec::new();
        for env in &config.environments {
            for pool in &env.pools {
                let members: Vec<&str> = pool.members.iter().map(|m| m.name.as_str()).collect();
                let first = members.first().copied().unwrap_or_default();
                match &pool.switch {
                    SwitchSpec::Http { get_url, .. } | SwitchSpec::Jenkins { get_url, .. } => {
                        switch_port = Some(port_of(get_url)?);
                        pools.push(PoolSetup::new(&env.name, &pool.name, &members, first));
                    }
                    _ => {}
                }
                for (i, m) in pool.members.iter().enumerate() {
                    let label = format!("{} {} {}", env.name, pool.name, m.name);
                    // Show every state: the last member of the last pool of the first
                    // environment is down, the second member of the last environment's first pool is slow.
                    let is_down = env.name == config.environments[0].name
                        && pool.name
                            == env.pools.last().map(|p| p.name.clone()).unwrap_or_default()
                        && i + 1 == pool.members.len();
                    if is_down {
                        down.push(label);
                        continue;
                    }
                    let port = port_of(&m.url)?;
                    let version = if i == 0 { "1.4.2" } else { "1.4.1" };
                    let sim = SimInstance::start_on(port, &label, version)
                        .await
                        .map_err(|e| in_use("instance", port, e))?;
                    let control = sim.control();
                    let last_env = config
                        .environments
                        .last()
                        .map(|e| e.name.clone())
                        .unwrap_or_default();
                    if env.name == last_env && pool.name == env.pools[0].name && i == 1 {
                        control.set_behaviour(Behaviour::Slow(Duration::from_millis(700)));
                    }
                    control.set_tasks(vec![
                        Task::new(
                            1,
                            format!("nightly-report-{}", env.name),
                            TaskState::Running,
                            40 + (i as u8) * 20,
                        ),
                        Task::new(2, "cache-warmup", TaskState::Queued, 0),
                        Task::new(3, "invoice-sync", TaskState::Done, 100),
                    ]);
                    controls.insert(
                        (env.name.clone(), pool.name.clone(), m.name.clone()),
                        control,
                    );
                    instances.push(sim);
                }
            }
        }
        let switch = match switch_port {
            Some(port) => Some(
                SimSwitch::start_on(port, pools)
                    .await
                    .map_err(|e| in_use("switch", port, e))?,
            ),
            None => None,
        };
        let jenkins = match &config.jenkins {
            Some(j) => {
                let port = port_of(&j.url)?;
                let setup = jenkins_setup(
                    &config,
                    j.user.clone(),
                    j.token.expose().to_owned(),
                    Arc::new(controls),
                );
                Some(
                    SimJenkins::start_on(port, setup)
                        .await
                        .map_err(|e| in_use("Jenkins", port, e))?,
                )
            }
            None => None,
        };
        Ok(Self {
            config,
            instances,
            switch,
            jenkins,
            down,
        })
    }

    /// Stops every simulator.
    pub async fn shutdown(self) {
        for i in self.instances {
            i.shutdown().await;
        }
        if let Some(s) = self.switch {
            s.shutdown().await;
        }
        if let Some(j) = self.jenkins {
            j.shutdown().await;
        }
    }
}

type Controls = Arc<HashMap<(String, String, String), InstanceControl>>;

fn param<'a>(params: &'a [(String, String)], names: &[&str]) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| names.iter().any(|n| k.eq_ignore_ascii_case(n)))
        .map(|(_, v)| v.as_str())
}

/// Jobs of the shipped config: deploys bump the built instance's version, restarts
/// restart it, the toy refresh succeeds, and `clear cache` fails (to show a failure).
fn jenkins_setup(config: &Config, user: String, token: String, controls: Controls) -> JenkinsSetup {
    let mut setup = JenkinsSetup::new(&user, &token);
    let mut seen = std::collections::BTreeSet::new();
    for env in &config.environments {
        for pool in &env.pools {
            if let Some(job) = &pool.deploy {
                if seen.insert(job.job.clone()) {
                    let controls = controls.clone();
                    let pool_name = pool.name.clone();
                    setup = setup.job(
                        &job.job,
                        JobSetup::new()
                            .queue_time(Duration::from_millis(800))
                            .build_duration(Duration::from_secs(4))
                            .estimated_duration(Some(Duration::from_secs(4)))
                            .on_success(move |params| {
                                let env = param(params, &["ENVIRONMENT", "ENV"])
                                    .unwrap_or_default()
                                    .to_owned();
                                let colour = param(params, &["COLOUR", "COLOR"])
                                    .unwrap_or_default()
                                    .to_owned();
                                if let Some(c) = controls.get(&(env, pool_name.clone(), colour)) {
                                    c.deploy();
                                }
                            }),
                    );
                }
            }
            for m in &pool.members {
                if let Some(bot_core::config::ActionSpec::Job(job)) = &m.restart {
                    if seen.insert(job.job.clone()) {
                        let controls = controls.clone();
                        setup = setup.job(
                            &job.job,
                            JobSetup::new()
                                .build_duration(Duration::from_secs(2))
                                .on_success(move |params| {
                                    let env =
                                        param(params, &["ENVIRONMENT", "ENV"]).unwrap_or_default();
                                    let instance = param(params, &["INSTANCE"]).unwrap_or_default();
                                    for ((e, p, m), c) in controls.iter() {
                                        if e == env && instance == format!("{p}-{m}") {
                                            c.restart();
                                        }
                                    }
                                }),
                        );
                    }
                }
            }
        }
    }
    if let Some(toy) = &config.toy {
        setup = setup.job(
            &toy.job.job,
            JobSetup::new().build_duration(Duration::from_secs(3)),
        );
    }
    for cmd in &config.commands {
        if let bot_core::config::ActionKind::Job(job) = &cmd.action {
            if seen.insert(job.job.clone()) {
                setup = setup.job(
                    &job.job,
                    JobSetup::new()
                        .build_duration(Duration::from_secs(2))
                        .result("FAILURE"),
                );
            }
        }
    }
    setup
}
