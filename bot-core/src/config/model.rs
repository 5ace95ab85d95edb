//! The validated configuration model: what the engine works with once
//! `commands.yaml` and `instances.yaml` have been loaded, interpolated and checked.
//!
//! Every collection keeps file order, so help, status and choice buttons list things
//! the way the operator wrote them.

use std::collections::BTreeMap;
use std::time::Duration;

/// Position of a value in a config file, for error messages and `check`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pos {
    /// File name as given to the loader (e.g. `instances.yaml`).
    pub file: String,
    /// 1-based line.
    pub line: u64,
    /// 1-based column.
    pub column: u64,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// The whole configuration: vocabulary plus platform.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Commands from `commands.yaml`, in file order.
    pub commands: Vec<CommandSpec>,
    /// Environments from `instances.yaml`, in file order.
    pub environments: Vec<Environment>,
    /// Words ignored anywhere in a message ("please", "the", "on", ...).
    pub filler: Vec<String>,
    /// Jenkins connection, when configured.
    pub jenkins: Option<JenkinsConfig>,
    /// Toy-database mapping.
    pub toy: Option<ToyConfig>,
    /// Named groups of Slack user ids, used by `allowed` lists.
    pub groups: BTreeMap<String, Vec<String>>,
    /// Named channels for announcements (name → channel id).
    pub channels: BTreeMap<String, String>,
    /// Probe and deploy timings.
    pub settings: Settings,
    /// Four-eyes approval rules.
    pub approval: super::ApprovalRules,
    /// Freeze windows, global and per environment, in file order.
    pub freeze: Vec<super::FreezeWindow>,
    /// The background monitor (`monitor:`); nothing is probed in the background without it.
    pub monitor: Option<MonitorConfig>,
    /// Services that are not instances, probed by the monitor (`checks:`), in file order.
    pub checks: Vec<CheckSpec>,
    /// The post-switch watch of each `(env, pool)` that has one.
    pub watches: BTreeMap<(String, String), Watch>,
    /// Canary deploys per `(environment, pool)`: the pool's `canary:` over its
    /// environment's.
    pub canaries: BTreeMap<(String, String), Canary>,
    /// Where the commits being deployed come from, when configured.
    pub compare: Option<CompareConfig>,
    /// GitHub deployments per environment: its own `github:` over the global one.
    /// An environment without one records no deployments.
    pub github: BTreeMap<String, GithubConfig>,
    /// Change markers (`markers:`).
    pub markers: MarkersConfig,
}

/// `github:`: every deploy, rollout and rollback of an environment recorded as a
/// GitHub deployment, its statuses following the run.
#[derive(Debug, Clone)]
pub struct GithubConfig {
    /// API base, e.g. `https://api.github.com`.
    pub url: String,
    /// `owner/name`.
    pub repo: String,
    /// Token (from `${VAR}` only; never printed).
    pub token: Secret,
    /// The GitHub environment name of each Crossroads environment named here
    /// (others keep their own name).
    pub environments: BTreeMap<String, String>,
    /// The `environment_url` of each Crossroads environment named here.
    pub environment_urls: BTreeMap<String, String>,
    /// Where it was defined.
    pub pos: Pos,
}

impl GithubConfig {
    /// The GitHub environment name of Crossroads environment `env`.
    pub fn environment(&self, env: &str) -> String {
        self.environments
            .get(env)
            .cloned()
            .unwrap_or_else(|| env.to_owned())
    }
}

/// The Change Events endpoint PagerDuty documents.
pub const PAGERDUTY_CHANGE_URL: &str = "https://events.pagerduty.com/v2/change/enqueue";

/// `markers:`: where every change is marked.
#[derive(Debug, Clone, Default)]
pub struct MarkersConfig {
    /// A Grafana annotation for every deploy, rollback, switch and canary step.
    pub grafana: Option<GrafanaConfig>,
    /// A PagerDuty change event for every deploy and rollback.
    pub pagerduty: Option<PagerDutyConfig>,
}

/// `markers.grafana:`.
#[derive(Debug, Clone)]
pub struct GrafanaConfig {
    /// Grafana's base URL.
    pub url: String,
    /// A service account token (from `${VAR}` only; never printed).
    pub token: Secret,
    /// The dashboard the annotations belong to; organisation-wide without one.
    pub dashboard_uid: Option<String>,
}

/// The API shape of a compare endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareKind {
    /// `GET {url}/repos/{repo}/compare/{base}...{head}`, `Authorization: Bearer`.
    Github,
    /// `GET {url}/projects/{repo}/repository/compare?from=&to=`, `PRIVATE-TOKEN`.
    Gitlab,
}

/// `compare:` in `instances.yaml`: the commits between the live version and the ref
/// to deploy, from a GitHub- or GitLab-shaped compare API.
#[derive(Debug, Clone)]
pub struct CompareConfig {
    /// API shape.
    pub kind: CompareKind,
    /// API base, e.g. `https://api.github.com` or `https://gitlab.example.com/api/v4`.
    pub url: String,
    /// `owner/name` on GitHub; the project path or id on GitLab.
    pub repo: String,
    /// Token (from `${VAR}`; never printed).
    pub token: Secret,
}

/// The Events API v2 endpoint PagerDuty documents.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// `monitor:`: what the background monitor does.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    /// Probe interval.
    pub every: Duration,
    /// Consecutive agreeing probes before a change counts.
    pub confirm: u32,
    /// Channel id announcements go to (an alias of `channels:` resolved).
    pub channel: String,
    /// Per-probe timeout (default: `settings.probe_timeout`).
    pub timeout: Duration,
    /// How long probe results are kept.
    pub retention: Duration,
    /// PagerDuty Events API v2, when configured.
    pub pagerduty: Option<PagerDutyConfig>,
    /// URLs that get a JSON event on every confirmed change.
    pub webhooks: Vec<String>,
    /// Where it was defined.
    pub pos: Pos,
}

/// `monitor.pagerduty:`.
#[derive(Debug, Clone)]
pub struct PagerDutyConfig {
    /// The integration's routing key (never printed).
    pub routing_key: Secret,
    /// The enqueue URL (default [`PAGERDUTY_EVENTS_URL`], or
    /// [`PAGERDUTY_CHANGE_URL`] for change markers).
    pub url: String,
}

/// One entry of `checks:`: a service that is not an instance, and its recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSpec {
    /// Its name (the key under `checks:`).
    pub name: String,
    /// URL probed with GET.
    pub url: String,
    /// Status code that must be answered (default 200).
    pub status: u16,
    /// JSON pointer to the field whose value decides, when any.
    pub pointer: Option<String>,
    /// Values of that field meaning ok.
    pub ok: Vec<String>,
    /// Values meaning pending (neither ok nor broken).
    pub pending: Vec<String>,
    /// Where the board shows it (default `checks`).
    pub group: String,
    /// Where it was defined.
    pub pos: Pos,
}

/// The post-switch watch of a pool (`watch:` and friends, on its environment or on
/// the pool itself): after traffic moves, the new active member is probed for
/// `duration`; `failures` failed probes in a row count as unhealthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    /// How long the new member is watched (`watch: 2m`).
    pub duration: Duration,
    /// Pause between probes (`watch_every`, default 5s).
    pub every: Duration,
    /// Failed probes in a row that count as unhealthy (`watch_failures`, default 2).
    pub failures: u32,
    /// Move traffic back to the previous member when it turns unhealthy.
    pub auto_rollback: bool,
}

/// A pool's canary: a deploy moves traffic to the new member step by step.
#[derive(Debug, Clone, PartialEq)]
pub struct Canary {
    /// Percent of the pool's traffic on the new member at each step, rising, the last
    /// 100.
    pub steps: Vec<u8>,
    /// Time at each step before it goes on.
    pub pause: Duration,
    /// What judges each step: Prometheus queries, or (`None`) the pool's health recipe.
    pub analysis: Option<Analysis>,
    /// Time between readings at each step (`analysis.interval`, default 10s; without
    /// an analysis, the pool's `watch_every`, or the health gate's interval).
    pub interval: Duration,
    /// Failing readings in a row that abort the canary (`analysis.failures`, default
    /// 2; without an analysis, the pool's `watch_failures`, or 2).
    pub failures: u32,
}

/// A canary's Prometheus analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// Prometheus' base URL.
    pub prometheus: String,
    /// Whether a query that returns nothing counts as failing (`no_data: fail`).
    pub no_data_fails: bool,
    /// The queries, each with its limit.
    pub queries: Vec<CanaryQuery>,
}

/// One query of a canary's analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct CanaryQuery {
    /// What it is called in the thread (`error rate`).
    pub name: String,
    /// PromQL; `{env}`, `{region}`, `{pool}` and `{member}` are filled in.
    pub query: String,
    /// The highest reading that passes.
    pub max: f64,
}

/// Timings shared by all instances unless overridden.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Per-probe timeout for `status` and `health`.
    pub probe_timeout: Duration,
    /// Health gate after a build: consecutive healthy probes required.
    pub gate_consecutive: u32,
    /// Pause between gate probes.
    pub gate_interval: Duration,
    /// Give up on the gate after this long.
    pub gate_timeout: Duration,
    /// How long a lock taken by hand with `lock` lasts unless unlocked first.
    pub lock_lease: Duration,
    /// How long a replica holds work — a delivery, a run and the lock it holds —
    /// before another replica may take it over; renewed every third of it while the
    /// work goes on.
    pub lease: Duration,
    /// How long buttons stay usable.
    pub button_ttl: Duration,
    /// How long one status round (every probe, every switch read) is shared by
    /// everyone asking for the same status; zero for none.
    pub status_cache: Duration,
    /// How long expired buttons and approval requests, and finished runs, are kept
    /// (the audit log is kept for ever).
    pub retention: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            probe_timeout: Duration::from_secs(2),
            gate_consecutive: 3,
            gate_interval: Duration::from_secs(1),
            gate_timeout: Duration::from_secs(120),
            lock_lease: Duration::from_secs(7 * 24 * 3600),
            lease: Duration::from_secs(30),
            button_ttl: Duration::from_secs(30 * 60),
            status_cache: Duration::from_secs(2),
            retention: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// What a command does: a built-in action of the registry, or a job or HTTP request
/// defined entirely in `commands.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionKind {
    /// A built-in action, by the name `commands.yaml` gives it (`deploy`, `force_restart`).
    Builtin(String),
    /// A command defined entirely in YAML that runs a Jenkins job.
    Job(JobSpec),
    /// A command defined entirely in YAML that sends an HTTP request.
    Http(HttpRequestSpec),
}

impl ActionKind {
    /// The action's name as `commands.yaml` writes it: `deploy`, `job`, `http`, ….
    pub fn name(&self) -> &str {
        match self {
            ActionKind::Builtin(name) => name,
            ActionKind::Job(_) => "job",
            ActionKind::Http(_) => "http",
        }
    }
}

/// What a command needs to name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// No target (`help`, `toy`, `status` without env).
    Nothing,
    /// An environment, optionally (`status`, `history`) or required (`deploy`).
    Environment,
    /// A pool within an environment.
    Pool,
    /// One instance.
    Instance,
}

/// One command of the vocabulary.
#[derive(Debug, Clone)]
pub struct CommandSpec {
    /// Canonical name, e.g. `force restart`.
    pub name: String,
    /// Phrases that invoke it (lower-case, single spaces), canonical name first.
    pub phrases: Vec<String>,
    /// What it does.
    pub action: ActionKind,
    /// What it targets.
    pub target: TargetKind,
    /// Whether the target may be omitted (`status` alone means every environment).
    pub target_optional: bool,
    /// Whether it takes free arguments (`deploy staging feature/login`, `lock master reason`).
    pub takes_args: bool,
    /// Always ask for a confirmation click before running.
    pub confirm: bool,
    /// Groups allowed to run it; empty means everyone.
    pub allowed: Vec<String>,
    /// One-line help.
    pub help: String,
    /// Example invocations.
    pub examples: Vec<String>,
    /// The `key=value` words a YAML command takes (`params:`); others are refused,
    /// and the template built-ins (`{user}`, `{env}` …) are never set by typed words.
    pub params: Vec<String>,
    /// `freeze: exempt`: a YAML command that runs during a freeze (every other one is
    /// frozen like a deploy).
    pub freeze_exempt: bool,
    /// Where it was defined.
    pub pos: Pos,
}

/// Template variables Crossroads sets itself; typed `key=value` words never set them.
pub const BUILT_INS: &[&str] = &[
    "user", "env", "region", "pool", "member", "colour", "color", "instance", "ref", "ref_name",
    "args", "database",
];

/// A Jenkins job and its templated parameters (`{env}`, `{pool}`, `{colour}`,
/// `{instance}`, `{ref}`, `{user}`, `{database}`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobSpec {
    /// Job path, folders separated by `/`.
    pub job: String,
    /// Parameters, values are templates.
    pub parameters: Vec<(String, String)>,
}

/// An HTTP request with a templated body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpRequestSpec {
    /// Method, e.g. `POST`.
    pub method: String,
    /// URL template.
    pub url: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body template.
    pub body: Option<String>,
}

/// What restarting an instance does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionSpec {
    /// Trigger a Jenkins job.
    Job(JobSpec),
    /// Send an HTTP request.
    Http(HttpRequestSpec),
}

/// An environment such as `master` or `staging`.
#[derive(Debug, Clone)]
pub struct Environment {
    /// Canonical name.
    pub name: String,
    /// Aliases (lower-case, may be multi-word), canonical name included.
    pub aliases: Vec<String>,
    /// Emoji shortcodes without colons (e.g. `rocket`).
    pub emoji: Vec<String>,
    /// Protected environments ask for confirmation on mutating actions and may restrict who runs them.
    pub protected: bool,
    /// Groups allowed to run mutating actions here; empty means everyone.
    pub allowed: Vec<String>,
    /// Pools in file order. In an environment with regions these are its first
    /// region's pools, so code that knows nothing of regions sees a whole environment;
    /// region-aware code goes through [`Environment::sites`].
    pub pools: Vec<Pool>,
    /// Regions in file order; empty when the environment is in one place.
    pub regions: Vec<Region>,
    /// How `deploy` rolls out over the regions.
    pub rollout: Rollout,
    /// Where it was defined.
    pub pos: Pos,
}

/// One region of an environment: its own switches and member URLs for the
/// environment's pools.
#[derive(Debug, Clone)]
pub struct Region {
    /// Canonical name, e.g. `eu`.
    pub name: String,
    /// Aliases (lower-case, may be multi-word), canonical name included.
    pub aliases: Vec<String>,
    /// Emoji shortcodes without colons.
    pub emoji: Vec<String>,
    /// Extra Jenkins parameters added to every job run in this region.
    pub parameters: Vec<(String, String)>,
    /// The environment's pools as they are in this region (own switch, own URLs).
    pub pools: Vec<Pool>,
    /// Where it was defined.
    pub pos: Pos,
}

/// The order in which `deploy` goes through an environment's regions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rollout {
    /// Stages in order; the regions of one stage deploy side by side. `order: [eu, us]`
    /// is `[[eu], [us]]`; `canary: eu` is `[[eu], [every other region]]`.
    pub stages: Vec<Vec<String>>,
    /// What happens to regions already switched when a later one fails.
    pub on_failure: OnFailure,
}

/// `rollout.on_failure`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnFailure {
    /// Stop; regions already switched stay switched (the reply offers `rollback`).
    #[default]
    Halt,
    /// Stop and move regions already switched back.
    Rollback,
}

/// One place an environment runs: a region, or the environment itself when it has
/// no regions.
#[derive(Debug, Clone, Copy)]
pub struct Site<'a> {
    /// The region, `None` for an environment without regions.
    pub region: Option<&'a Region>,
    /// The pools there.
    pub pools: &'a [Pool],
}

impl Site<'_> {
    /// The region's name, if any.
    pub fn region_name(&self) -> Option<&str> {
        self.region.map(|r| r.name.as_str())
    }
}

impl Environment {
    /// Every place the environment runs: one site per region, or itself.
    pub fn sites(&self) -> Vec<Site<'_>> {
        if self.regions.is_empty() {
            vec![Site {
                region: None,
                pools: &self.pools,
            }]
        } else {
            self.regions
                .iter()
                .map(|r| Site {
                    region: Some(r),
                    pools: &r.pools,
                })
                .collect()
        }
    }

    /// A region by canonical name.
    pub fn region(&self, name: &str) -> Option<&Region> {
        self.regions.iter().find(|r| r.name == name)
    }

    /// The pools of `region` (`None`: the environment's own, or its first region's).
    pub fn pools_in(&self, region: Option<&str>) -> Option<&[Pool]> {
        match region {
            None => Some(&self.pools),
            Some(r) => self.region(r).map(|r| r.pools.as_slice()),
        }
    }
}

/// A blue/green (or more) pool of interchangeable instances behind one switch.
#[derive(Debug, Clone)]
pub struct Pool {
    /// Canonical name, e.g. `api`.
    pub name: String,
    /// Aliases, canonical name included.
    pub aliases: Vec<String>,
    /// How traffic is moved between members.
    pub switch: SwitchSpec,
    /// The build job run by `deploy` for the inactive member.
    pub deploy: Option<JobSpec>,
    /// Members in file order.
    pub members: Vec<Instance>,
    /// The region this copy of the pool is in, when its environment has regions.
    pub region: Option<String>,
    /// Where it was defined.
    pub pos: Pos,
}

/// How a pool's traffic switch is driven.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchSpec {
    /// HAProxy runtime API.
    Haproxy {
        /// `127.0.0.1:9999` (TCP) or `/run/haproxy/admin.sock` (unix socket).
        address: String,
        /// Backend name, e.g. `be_app`.
        backend: String,
        /// Server names per member when they differ from the member names.
        servers: Vec<(String, String)>,
        /// State for the member losing traffic: `drain` or `maint`.
        off_state: String,
    },
    /// A configured HTTP request to switch and a GET + JSON pointer to read.
    Http {
        /// Request that moves traffic; `{colour}` is the new member.
        set: HttpRequestSpec,
        /// URL read to learn the active member.
        get_url: String,
        /// JSON pointer to the active member's name in that answer.
        pointer: String,
        /// How it shares traffic out by weight, when it can (canary deploys).
        weights: Option<WeightsSpec>,
    },
    /// A Jenkins job that switches; the active member is read over HTTP.
    Jenkins {
        /// Switch job.
        job: JobSpec,
        /// URL read to learn the active member.
        get_url: String,
        /// JSON pointer to the active member's name.
        pointer: String,
    },
    /// Kept in the bot's memory (demos and tests); starts on `initial`.
    Memory {
        /// Member active at start.
        initial: String,
    },
}

/// How an HTTP switch shares traffic out by weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightsSpec {
    /// Request that sets the weights; `{weights}` is a JSON object of member → percent.
    pub set: HttpRequestSpec,
    /// JSON pointer, in the switch's `get` answer, to the same object as in force.
    pub pointer: String,
}

/// One instance (pool member).
#[derive(Debug, Clone)]
pub struct Instance {
    /// Member name, usually a colour (`blue`).
    pub name: String,
    /// Aliases unique to this instance (may be multi-word).
    pub aliases: Vec<String>,
    /// Emoji shortcodes without colons.
    pub emoji: Vec<String>,
    /// Base URL, e.g. `http://127.0.0.1:18081`.
    pub url: String,
    /// Health recipe.
    pub health: HealthRecipe,
    /// Tasks endpoint path, e.g. `/tasks`.
    pub tasks: Option<String>,
    /// Restart action.
    pub restart: Option<ActionSpec>,
    /// Where it was defined.
    pub pos: Pos,
}

/// How to decide that an instance is healthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthRecipe {
    /// Path appended to the base URL.
    pub path: String,
    /// Expected HTTP status.
    pub expect_status: u16,
    /// JSON pointer → expected value (compared as JSON, strings as strings).
    pub json: Vec<(String, serde_json::Value)>,
    /// Substrings the body must contain.
    pub contains: Vec<String>,
    /// Slowest acceptable answer.
    pub max_latency: Option<Duration>,
    /// JSON pointer to the version string shown by `status`.
    pub version_pointer: Option<String>,
}

impl Default for HealthRecipe {
    fn default() -> Self {
        Self {
            path: "/health".into(),
            expect_status: 200,
            json: Vec::new(),
            contains: Vec::new(),
            max_latency: None,
            version_pointer: None,
        }
    }
}

/// Jenkins connection settings.
#[derive(Debug, Clone)]
pub struct JenkinsConfig {
    /// Base URL, e.g. `http://127.0.0.1:18090`.
    pub url: String,
    /// User for HTTP Basic auth.
    pub user: String,
    /// API token (never printed).
    pub token: Secret,
    /// Give up waiting for a queued or running build after this long.
    pub timeout: Duration,
    /// First poll interval; polling backs off from here.
    pub poll_interval: Duration,
}

/// Toy-database refresh settings.
#[derive(Debug, Clone)]
pub struct ToyConfig {
    /// Job run with the database as a parameter.
    pub job: JobSpec,
    /// Slack user id → toy database name.
    pub users: BTreeMap<String, String>,
}

/// A string that never prints its value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Address of one instance: environment, pool, member.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct InstanceRef {
    /// Environment name.
    pub env: String,
    /// Pool name.
    pub pool: String,
    /// Member name.
    pub member: String,
    /// Region, when the environment has regions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// A pool in a region: `(env, region, pool)`; the region is `None` in an environment
/// without regions.
pub type PoolAt = (String, Option<String>, String);

impl std::fmt::Display for InstanceRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.region {
            Some(region) => write!(f, "{} {region} {} {}", self.env, self.pool, self.member),
            None => write!(f, "{} {} {}", self.env, self.pool, self.member),
        }
    }
}

impl Config {
    /// Looks up an environment by canonical name.
    pub fn env(&self, name: &str) -> Option<&Environment> {
        self.environments.iter().find(|e| e.name == name)
    }
    /// Looks up a pool.
    pub fn pool(&self, env: &str, pool: &str) -> Option<&Pool> {
        self.env(env)?.pools.iter().find(|p| p.name == pool)
    }
    /// Looks up a pool as it is in `region` (`None`: the environment's own pools).
    pub fn pool_in(&self, env: &str, region: Option<&str>, pool: &str) -> Option<&Pool> {
        self.env(env)?
            .pools_in(region)?
            .iter()
            .find(|p| p.name == pool)
    }
    /// Looks up an instance (in its region, when it names one).
    pub fn instance(&self, r: &InstanceRef) -> Option<&Instance> {
        self.pool_in(&r.env, r.region.as_deref(), &r.pool)?
            .members
            .iter()
            .find(|m| m.name == r.member)
    }
    /// The post-switch watch of a pool, when it has one.
    pub fn watch(&self, env: &str, pool: &str) -> Option<&Watch> {
        self.watches.get(&(env.to_owned(), pool.to_owned()))
    }
    /// The canary of a pool's deploys, when it has one.
    pub fn canary(&self, env: &str, pool: &str) -> Option<&Canary> {
        self.canaries.get(&(env.to_owned(), pool.to_owned()))
    }
    /// Where `env`'s deploys are recorded as GitHub deployments, if anywhere.
    pub fn github(&self, env: &str) -> Option<&GithubConfig> {
        self.github.get(env)
    }
    /// Looks up a command by canonical name.
    pub fn command(&self, name: &str) -> Option<&CommandSpec> {
        self.commands.iter().find(|c| c.name == name)
    }
    /// Every instance with its address, in file order (every region's).
    pub fn instances(&self) -> impl Iterator<Item = (InstanceRef, &Instance)> + '_ {
        self.environments.iter().flat_map(|e| {
            e.sites().into_iter().flat_map(move |site| {
                site.pools.iter().flat_map(move |p| {
                    p.members.iter().map(move |m| {
                        (
                            InstanceRef {
                                env: e.name.clone(),
                                pool: p.name.clone(),
                                member: m.name.clone(),
                                region: site.region_name().map(str::to_owned),
                            },
                            m,
                        )
                    })
                })
            })
        })
    }
}
