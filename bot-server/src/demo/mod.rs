//! `crossroads demo`: a zero-setup playground of simulated instances, traffic switch and Jenkins on the loopback ports the config names, with console controls to break and heal things.
//!
//! Every command of the shipped config works against real HTTP. One instance is
//! broken and one slow on purpose, to show every state in `status`; the banner says
//! which ([`Demo::banner`]). The console understands, besides the bot's commands:
//! `break <instance>` (it answers 503), `heal <instance>`, `slow <instance>`,
//! `fail job <command or job>`, `heal job <command or job>` and `demo` (what is
//! broken now). A deploy or restart of a broken instance heals it, as a fresh build
//! would.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Context};
use async_trait::async_trait;
use bot_core::config::{self, ActionKind, ActionSpec, Config, InstanceRef, SwitchSpec, TargetKind};
use bot_core::lexer::tokenize;
use bot_core::resolve::{Candidates, Index, Parsed};
use crossroads_sim::instance::{Behaviour, InstanceControl, SimInstance, Task, TaskState};
use crossroads_sim::jenkins::{JenkinsSetup, JobSetup, SimJenkins};
use crossroads_sim::switch::{PoolSetup, SimSwitch};

mod prometheus;
mod shown;

use crate::console::LocalCommands;

/// The repository's shipped config, built into the binary so `demo` works from anywhere.
const COMMANDS_YAML: &str = include_str!("../../../commands.yaml");
const INSTANCES_YAML: &str = include_str!("../../../instances.yaml");

/// How slow the slow instance is (its health recipe allows 1.5 s).
const SLOW: Duration = Duration::from_millis(700);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Loads the config for the demo: `dir` if given, else `./` when it holds both files,
/// else the copies built into the binary.
pub fn load_config(dir: Option<&Path>) -> anyhow::Result<Config> {
    load_config_with_env(dir, &config::process_env)
}

/// [`load_config`] with a custom variable lookup (tests move the ports).
pub fn load_config_with_env(
    dir: Option<&Path>,
    env: config::EnvLookup<'_>,
) -> anyhow::Result<Config> {
    let dir: Option<PathBuf> = match dir {
        Some(d) => Some(d.to_owned()),
        None if Path::new("commands.yaml").exists() && Path::new("instances.yaml").exists() => {
            Some(PathBuf::from("."))
        }
        None => None,
    };
    // Where deploys show up: the demo's own stand-ins unless told otherwise.
    let with_defaults = |name: &str| {
        env(name)
            .filter(|v| !v.is_empty())
            .or_else(|| shown::default(name))
    };
    let env: config::EnvLookup<'_> = &with_defaults;
    match dir {
        Some(d) => bot_core::load_dir_with_env(&d, env).map_err(|e| anyhow!("{e}")),
        None => bot_core::load_strs_with_env(COMMANDS_YAML, INSTANCES_YAML, env)
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

fn in_use(what: &str, port: u16, e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("cannot start the simulated {what} on 127.0.0.1:{port}: {e} (is another demo running?)")
}

/// `env pool member` (`env region pool member`) of an instance.
fn label(r: &InstanceRef) -> String {
    r.to_string()
}

/// The `(env, pool)` a simulated switch serves at `…/pools/<env>/<pool>`.
fn switch_pool(url: &str) -> Option<(String, String)> {
    let parsed = url::Url::parse(url).ok()?;
    let mut segments = parsed.path_segments()?;
    while let Some(s) = segments.next() {
        if s == "pools" {
            return Some((segments.next()?.to_owned(), segments.next()?.to_owned()));
        }
    }
    None
}

/// One simulated instance's handle and what the demo did to it.
struct Sim {
    control: InstanceControl,
    /// Broken on purpose (answers 503).
    broken: bool,
    /// Slow on purpose.
    slow: bool,
}

/// Simulated instances by address.
#[derive(Default)]
struct Fleet(Mutex<BTreeMap<InstanceRef, Sim>>);

impl Fleet {
    fn set(&self, r: &InstanceRef, broken: bool, slow: bool) -> bool {
        let mut fleet = lock(&self.0);
        let Some(sim) = fleet.get_mut(r) else {
            return false;
        };
        sim.broken = broken;
        sim.slow = slow;
        // Broken answers 503 to its health checks and 500 to its traffic.
        sim.control.set_app_errors(broken);
        sim.control.set_behaviour(match (broken, slow) {
            (true, _) => Behaviour::Unhealthy,
            (false, true) => Behaviour::Slow(SLOW),
            (false, false) => Behaviour::Healthy,
        });
        true
    }

    /// A build or restart of `r` succeeded: it is healthy again.
    fn rebuilt(&self, r: &InstanceRef, deployed: bool) {
        let mut fleet = lock(&self.0);
        if let Some(sim) = fleet.get_mut(r) {
            if deployed {
                sim.control.deploy();
            } else {
                sim.control.restart();
            }
            if sim.broken {
                sim.broken = false;
                sim.control.set_app_errors(false);
                sim.control.set_behaviour(if sim.slow {
                    Behaviour::Slow(SLOW)
                } else {
                    Behaviour::Healthy
                });
            }
        }
    }

    fn broken(&self) -> Vec<String> {
        self.with(|s| s.broken)
    }

    fn slow(&self) -> Vec<String> {
        self.with(|s| s.slow && !s.broken)
    }

    fn with(&self, pick: impl Fn(&Sim) -> bool) -> Vec<String> {
        lock(&self.0)
            .iter()
            .filter(|(_, s)| pick(s))
            .map(|(r, _)| label(r))
            .collect()
    }
}

/// The simulated platform; call [`Demo::shutdown`] to stop it.
pub struct Demo {
    /// The config the simulators were started for.
    pub config: Config,
    instances: Mutex<Vec<SimInstance>>,
    switch: Mutex<Option<SimSwitch>>,
    jenkins: Mutex<Option<SimJenkins>>,
    fleet: Arc<Fleet>,
    /// Jobs of YAML commands (`clear cache`): command name → (job path, its setup).
    jobs: BTreeMap<String, (String, JobSetup)>,
    failing_jobs: Mutex<BTreeSet<String>>,
    index: Index,
    /// Canary traffic and the Prometheus judging it, per port.
    prometheus: Mutex<Vec<prometheus::Running>>,
    /// What the canary traffic reads the switch's weights through.
    weights: Mutex<Option<Arc<prometheus::Weights>>>,
    /// GitHub, Grafana and PagerDuty change-event stand-ins.
    shown: Mutex<shown::Shown>,
}

impl Demo {
    /// Starts every simulator. The last member of the first environment's last pool
    /// is broken (503) and the second member of the last environment's first pool is
    /// slow, on purpose.
    pub async fn start(config: Config) -> anyhow::Result<Arc<Self>> {
        Self::start_paced(config, 1.0).await
    }

    /// [`Demo::start`] with Jenkins' queue and build times multiplied by `pace`
    /// (tests use less than 1).
    pub async fn start_paced(config: Config, pace: f64) -> anyhow::Result<Arc<Self>> {
        let mut instances = Vec::new();
        let fleet = Arc::new(Fleet::default());
        let mut switch_port = None;
        let mut pools = Vec::new();
        let first_env = config.environments.first().map(|e| e.name.clone());
        let last_env = config.environments.last().map(|e| e.name.clone());
        let mut defects = Vec::new();
        for env in &config.environments {
            for (site_no, site) in env.sites().into_iter().enumerate() {
                for (p, pool) in site.pools.iter().enumerate() {
                    let members: Vec<&str> = pool.members.iter().map(|m| m.name.as_str()).collect();
                    let first = members.first().copied().unwrap_or_default();
                    match &pool.switch {
                        SwitchSpec::Http { get_url, .. } | SwitchSpec::Jenkins { get_url, .. } => {
                            switch_port = Some(port_of(get_url)?);
                            let (e, name) = switch_pool(get_url)
                                .unwrap_or_else(|| (env.name.clone(), pool.name.clone()));
                            pools.push(PoolSetup::new(&e, &name, &members, first));
                        }
                        _ => {}
                    }
                    for (i, m) in pool.members.iter().enumerate() {
                        let r = InstanceRef {
                            env: env.name.clone(),
                            pool: pool.name.clone(),
                            member: m.name.clone(),
                            region: site.region_name().map(str::to_owned),
                        };
                        let port = port_of(&m.url)?;
                        let version = if i == 0 { "1.4.2" } else { "1.4.1" };
                        let sim = SimInstance::start_on(port, &label(&r), version)
                            .await
                            .map_err(|e| in_use("instance", port, e))?;
                        let control = sim.control();
                        control.set_tasks(vec![
                            Task::new(
                                1,
                                format!("nightly-report-{}", env.name),
                                TaskState::Running,
                                40 + u8::try_from(i.min(3)).unwrap_or(0) * 20,
                            ),
                            Task::new(2, "cache-warmup", TaskState::Queued, 0),
                            Task::new(3, "invoice-sync", TaskState::Done, 100),
                        ]);
                        lock(&fleet.0).insert(
                            r.clone(),
                            Sim {
                                control,
                                broken: false,
                                slow: false,
                            },
                        );
                        // Broken and slow on purpose: once each, in the first region.
                        let broken = Some(&env.name) == first_env.as_ref()
                            && site_no == 0
                            && p + 1 == site.pools.len()
                            && i + 1 == pool.members.len();
                        let slow = Some(&env.name) == last_env.as_ref()
                            && site_no == 0
                            && p == 0
                            && i == 1;
                        if broken || slow {
                            defects.push((r, broken, slow));
                        }
                        instances.push(sim);
                    }
                }
            }
        }
        for (r, broken, slow) in defects {
            fleet.set(&r, broken, slow);
        }
        let switch = match switch_port {
            Some(port) => Some(
                SimSwitch::start_on(port, pools)
                    .await
                    .map_err(|e| in_use("switch", port, e))?,
            ),
            None => None,
        };
        let (setup, jobs) = match &config.jenkins {
            Some(j) => {
                let (setup, jobs) = jenkins_setup(
                    &config,
                    j.user.clone(),
                    j.token.expose().to_owned(),
                    fleet.clone(),
                    pace,
                );
                (Some((port_of(&j.url)?, setup)), jobs)
            }
            None => (None, BTreeMap::new()),
        };
        let jenkins = match setup {
            Some((port, setup)) => Some(
                SimJenkins::start_on(port, setup)
                    .await
                    .map_err(|e| in_use("Jenkins", port, e))?,
            ),
            None => None,
        };
        let shown = shown::Shown::start(&config).await?;
        let demo = Arc::new(Self {
            shown: Mutex::new(shown),
            index: Index::build(&config),
            config,
            instances: Mutex::new(instances),
            switch: Mutex::new(switch),
            jenkins: Mutex::new(jenkins),
            fleet,
            jobs,
            failing_jobs: Mutex::new(BTreeSet::new()),
            prometheus: Mutex::new(Vec::new()),
            weights: Mutex::new(None),
        });
        demo.start_prometheus().await?;
        Ok(demo)
    }

    /// Sends traffic to every canary pool on the demo's switch and answers its
    /// analysis' Prometheus queries, on the loopback port each names.
    async fn start_prometheus(self: &Arc<Self>) -> anyhow::Result<()> {
        let mut by_port: BTreeMap<u16, Vec<prometheus::Target>> = BTreeMap::new();
        for ((env_name, pool_name), canary) in &self.config.canaries {
            let Some(analysis) = &canary.analysis else {
                continue;
            };
            let Some(env) = self.config.env(env_name) else {
                continue;
            };
            for site in env.sites() {
                let Some(pool) = site.pools.iter().find(|p| &p.name == pool_name) else {
                    continue;
                };
                let SwitchSpec::Http { get_url, .. } = &pool.switch else {
                    continue;
                };
                let Some(switch_pool) = switch_pool(get_url) else {
                    continue;
                };
                by_port
                    .entry(port_of(&analysis.prometheus)?)
                    .or_default()
                    .push(prometheus::Target {
                        env: env.name.clone(),
                        pool: pool.name.clone(),
                        switch_pool,
                        members: pool
                            .members
                            .iter()
                            .map(|m| (m.name.clone(), m.url.trim_end_matches('/').to_owned()))
                            .collect(),
                    });
            }
        }
        if by_port.is_empty() {
            return Ok(());
        }
        let demo = Arc::downgrade(self);
        let weights: Arc<prometheus::Weights> = Arc::new(move |env: &str, pool: &str| {
            let demo = demo.upgrade()?;
            let switch = lock(&demo.switch);
            switch.as_ref()?.weights(env, pool)
        });
        for (port, targets) in by_port {
            let running = prometheus::start(port, targets, Arc::downgrade(&weights))
                .await
                .map_err(|e| in_use("Prometheus", port, e))?;
            lock(&self.prometheus).push(running);
        }
        *lock(&self.weights) = Some(weights);
        Ok(())
    }

    /// Instances broken on purpose now.
    pub fn broken(&self) -> Vec<String> {
        self.fleet.broken()
    }

    /// The banner: what runs, what is broken or slow on purpose, and the controls.
    pub fn banner(&self) -> Vec<String> {
        let count = self.config.instances().count();
        let mut lines = vec![format!(
            "Demo: {count} simulated instances, a traffic switch and Jenkins on 127.0.0.1."
        )];
        for env in self
            .config
            .environments
            .iter()
            .filter(|e| !e.regions.is_empty())
        {
            let regions: Vec<&str> = env.regions.iter().map(|r| r.name.as_str()).collect();
            lines.push(format!(
                "  {} runs in regions {}: `status {}` shows each, `deploy {}` rolls out {}.",
                env.name,
                regions.join(", "),
                env.name,
                env.name,
                regions.join(" then ")
            ));
        }
        for ((env, pool), canary) in &self.config.canaries {
            let steps: Vec<String> = canary.steps.iter().map(|s| s.to_string()).collect();
            let judge = match &canary.analysis {
                Some(a) => format!("judged by the demo's Prometheus at {}", a.prometheus),
                None => "judged by its health recipe".to_owned(),
            };
            let new = self
                .config
                .pool(env, pool)
                .and_then(|p| p.members.get(1))
                .map_or("green", |m| m.name.as_str());
            lines.push(format!(
                "  {env} {pool} deploys as a canary ({} %, {} a step, {judge}): `break {env} {pool} {new}` during one makes it abort by itself; `pause`, `continue`, `promote` and `abort {env}` steer it.",
                steps.join(" → "),
                bot_core::text::human(canary.pause)
            ));
        }
        lines.extend(lock(&self.shown).banner());
        lines.extend(self.state_lines());
        lines.push(
            "Demo controls (typed here, not commands of the bot): `break <instance>`, `slow <instance>`, \
             `heal <instance>`, `fail job <command>`, `heal job <command>`, `demo` (what is broken now, and what the demo's GitHub, Grafana and PagerDuty received)."
                .to_owned(),
        );
        lines
    }

    fn state_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for broken in self.fleet.broken() {
            lines.push(format!(
                "  Broken on purpose: {broken} answers 503 (a deploy or restart of it heals it, or `heal {broken}`)."
            ));
        }
        for slow in self.fleet.slow() {
            lines.push(format!(
                "  Slow on purpose: {slow} answers after {}ms (still within its health recipe).",
                SLOW.as_millis()
            ));
        }
        for job in lock(&self.failing_jobs).iter() {
            lines.push(format!(
                "  Failing on purpose: `{job}` ends FAILURE (`heal job {job}`)."
            ));
        }
        if lines.is_empty() {
            lines.push("  Nothing is broken on purpose now.".to_owned());
        }
        lines.extend(lock(&self.shown).lines());
        lines
    }

    /// The console controls (`break`, `heal`, `slow`, `fail job`, `heal job`, `demo`).
    pub fn controls(self: &Arc<Self>) -> Arc<dyn LocalCommands> {
        Arc::new(Controls(self.clone()))
    }

    /// The one instance `words` name, or why not.
    fn instance(&self, words: &str) -> Result<InstanceRef, String> {
        let Some(cmd) = self
            .config
            .commands
            .iter()
            .find(|c| c.target == TargetKind::Instance)
        else {
            return Err("this configuration has no command on instances".into());
        };
        let phrase = cmd.phrases.first().cloned().unwrap_or_default();
        let tokens = tokenize(&format!("{phrase} {words}"));
        let Parsed::Command(m) = self.index.parse(&self.config, &tokens) else {
            return Err(format!("I cannot read `{words}` as an instance."));
        };
        if let Some(word) = m.rest.first() {
            return Err(format!("I don't know `{word}` here."));
        }
        if m.qualifier.is_some() || m.selectors.is_empty() {
            return Err("Name the instance itself, e.g. `master cron yellow`.".into());
        }
        match self.index.candidates(&self.config, &m.selectors) {
            Candidates::Instances(found) => match found.as_slice() {
                [one] => Ok(one.clone()),
                [] => Err(format!("No instance is `{words}`.")),
                several => Err(format!(
                    "`{words}` could be {}; say which.",
                    several.iter().map(label).collect::<Vec<_>>().join(", ")
                )),
            },
            Candidates::Conflict(why) => Err(why),
        }
    }

    /// The job of a YAML command (or a job path), for `fail job` / `heal job`.
    fn job(&self, words: &str) -> Result<(String, String, JobSetup), String> {
        let wanted = words.trim().to_lowercase();
        self.jobs
            .iter()
            .find(|(name, (path, _))| **name == wanted || *path == wanted)
            .map(|(name, (path, setup))| (name.clone(), path.clone(), setup.clone()))
            .ok_or_else(|| {
                format!(
                    "No job `{words}`; the demo's YAML jobs are: {}.",
                    self.jobs.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            })
    }

    fn set_job(&self, path: &str, setup: JobSetup) {
        if let Some(j) = lock(&self.jenkins).as_ref() {
            j.set_job(path, setup);
        }
    }

    /// Answers a console control line, or `None` when it is none.
    async fn control(&self, line: &str) -> Option<String> {
        let line = line.trim();
        let (verb, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        let verb = verb.to_lowercase();
        let answer = match (verb.as_str(), rest) {
            ("demo", "") => self.state_lines().join("\n"),
            ("fail" | "heal", job) if job.to_lowercase().starts_with("job ") => {
                let fail = verb == "fail";
                match self.job(&job[4..]) {
                    Ok((name, path, setup)) => {
                        if fail {
                            self.set_job(&path, setup.result("FAILURE"));
                            lock(&self.failing_jobs).insert(name.clone());
                            format!(
                                "`{name}` ({path}) now ends FAILURE. `heal job {name}` to undo."
                            )
                        } else {
                            self.set_job(&path, setup);
                            lock(&self.failing_jobs).remove(&name);
                            format!("`{name}` ({path}) succeeds again.")
                        }
                    }
                    Err(e) => e,
                }
            }
            ("break" | "heal" | "slow", words) if !words.is_empty() => match self.instance(words) {
                Ok(r) => {
                    let shown = label(&r);
                    let (broken, slow, said) = match verb.as_str() {
                        "break" => (
                            true,
                            false,
                            format!("{shown} now answers 503 (unhealthy). `heal {shown}` to undo."),
                        ),
                        "slow" => (
                            false,
                            true,
                            format!("{shown} now answers after {}ms.", SLOW.as_millis()),
                        ),
                        _ => (false, false, format!("{shown} is healthy again.")),
                    };
                    self.fleet.set(&r, broken, slow);
                    said
                }
                Err(e) => e,
            },
            _ => return None,
        };
        Some(answer)
    }

    /// Stops every simulator.
    pub async fn shutdown(&self) {
        let mut shown = std::mem::take(&mut *lock(&self.shown));
        shown.shutdown().await;
        lock(&self.prometheus).clear();
        lock(&self.weights).take();
        let instances = std::mem::take(&mut *lock(&self.instances));
        for i in instances {
            i.shutdown().await;
        }
        let switch = lock(&self.switch).take();
        if let Some(s) = switch {
            s.shutdown().await;
        }
        let jenkins = lock(&self.jenkins).take();
        if let Some(j) = jenkins {
            j.shutdown().await;
        }
    }
}

/// The demo's console controls.
struct Controls(Arc<Demo>);

#[async_trait]
impl LocalCommands for Controls {
    async fn handle(&self, line: &str) -> Option<String> {
        self.0.control(line).await
    }
}

fn param<'a>(params: &'a [(String, String)], names: &[&str]) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| names.iter().any(|n| k.eq_ignore_ascii_case(n)))
        .map(|(_, v)| v.as_str())
}

/// Jobs of the config: a deploy rebuilds (and heals) the instance it names, a restart
/// restarts (and heals) it, the toy refresh and YAML jobs succeed. Returns the setup
/// and the YAML commands' jobs (so the console can make them fail).
fn jenkins_setup(
    config: &Config,
    user: String,
    token: String,
    fleet: Arc<Fleet>,
    pace: f64,
) -> (JenkinsSetup, BTreeMap<String, (String, JobSetup)>) {
    let paced = |secs: f64| Duration::from_secs_f64((secs * pace).clamp(0.01, 600.0));
    let mut setup = JenkinsSetup::new(&user, &token);
    let mut seen = std::collections::BTreeSet::new();
    let mut yaml_jobs = BTreeMap::new();
    for env in &config.environments {
        for pool in &env.pools {
            if let Some(job) = &pool.deploy {
                if seen.insert(job.job.clone()) {
                    let fleet = fleet.clone();
                    let pool_name = pool.name.clone();
                    setup = setup.job(
                        &job.job,
                        JobSetup::new()
                            .queue_time(paced(0.8))
                            .build_duration(paced(4.0))
                            .estimated_duration(Some(paced(4.0)))
                            .on_success(move |params| {
                                let env =
                                    param(params, &["ENVIRONMENT", "ENV"]).unwrap_or_default();
                                let colour =
                                    param(params, &["COLOUR", "COLOR"]).unwrap_or_default();
                                fleet.rebuilt(
                                    &InstanceRef {
                                        env: env.to_owned(),
                                        pool: pool_name.clone(),
                                        member: colour.to_owned(),
                                        region: param(params, &["REGION"]).map(str::to_owned),
                                    },
                                    true,
                                );
                            }),
                    );
                }
            }
            for m in &pool.members {
                if let Some(ActionSpec::Job(job)) = &m.restart {
                    if seen.insert(job.job.clone()) {
                        let fleet = fleet.clone();
                        let pools: HashMap<String, Vec<String>> = config
                            .environments
                            .iter()
                            .map(|e| {
                                (
                                    e.name.clone(),
                                    e.pools.iter().map(|p| p.name.clone()).collect(),
                                )
                            })
                            .collect();
                        setup = setup.job(
                            &job.job,
                            JobSetup::new()
                                .build_duration(paced(2.0))
                                .on_success(move |params| {
                                    let env =
                                        param(params, &["ENVIRONMENT", "ENV"]).unwrap_or_default();
                                    let instance = param(params, &["INSTANCE"]).unwrap_or_default();
                                    let region = param(params, &["REGION"]).map(str::to_owned);
                                    for pool in pools.get(env).into_iter().flatten() {
                                        if let Some(member) = instance
                                            .strip_prefix(pool.as_str())
                                            .and_then(|m| m.strip_prefix('-'))
                                        {
                                            fleet.rebuilt(
                                                &InstanceRef {
                                                    env: env.to_owned(),
                                                    pool: pool.clone(),
                                                    member: member.to_owned(),
                                                    region: region.clone(),
                                                },
                                                false,
                                            );
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
        setup = setup.job(&toy.job.job, JobSetup::new().build_duration(paced(3.0)));
    }
    for cmd in &config.commands {
        if let ActionKind::Job(job) = &cmd.action {
            let job_setup = JobSetup::new().build_duration(paced(2.0));
            yaml_jobs.insert(cmd.name.clone(), (job.job.clone(), job_setup.clone()));
            if seen.insert(job.job.clone()) {
                setup = setup.job(&job.job, job_setup);
            }
        }
    }
    (setup, yaml_jobs)
}
