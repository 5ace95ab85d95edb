//! The [`Bot`]: wiring (builder, backends, configuration reload) and the entry points
//! transports call. The engine's loop is `carry`: it does what each answer asks next,
//! and starts pending runs (approved requests, the first deploy in line, scheduled
//! deploys) as their requesters, with `pending` reading what they start. Text entry
//! is in `understand`, the button protocol in `buttons`, running an invocation in
//! `invoke`, the gates it passes first in `gates` (the deploy queue's step in
//! `queue`), and taking the first deploy in line out in `queued`.

mod buttons;
mod carry;
mod gates;
mod invoke;
mod pending;
mod queue;
mod queued;
mod understand;

pub use queued::Reach;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use crate::actions;
use crate::actions::status::PlatformStatus;
use crate::adapters::compare::CompareClient;
use crate::adapters::jenkins::{JenkinsClient, NoCi};
use crate::adapters::memory_switch::MemorySwitch;
use crate::adapters::outbox_progress::OutboxProgress;
use crate::adapters::probe::{HttpProbe, ReqwestAction};
use crate::adapters::store::memory::MemoryStore;
use crate::adapters::{switch_for, SwitchParts};
use crate::config::Config;
use crate::context::{Backends, Clock, Ctx, Generation};
use crate::ports::store::{Run, RunStatus};
use crate::ports::{Ci, Compare, HttpAction, Probe, Store, StoreError, TrafficSwitch};
use crate::ports::{NoProgress, Progress};
use crate::rejection::Rejection;
use crate::reply::{Input, Invocation, Next, Outcome, Reply, Request};
use crate::resolve::Index;
use futures::future::BoxFuture;

/// [`Bot::platform_status`] was asked for an environment that is not configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("there is no environment `{name}` (known: {})", known.join(", "))]
pub struct UnknownEnv {
    /// The name asked for.
    pub name: String,
    /// The configured environments.
    pub known: Vec<String>,
}

/// The chat bot: build it from a [`Config`] and backends, then [`Bot::handle`] requests.
///
/// Cheap to clone; clones share state.
#[derive(Clone)]
pub struct Bot {
    generation: Arc<RwLock<Arc<Generation>>>,
    backends: Arc<Backends>,
}

/// Builds a [`Bot`]; every backend defaults to its real implementation
/// (HTTP probe, Jenkins from config, switches from config, in-memory store).
pub struct BotBuilder {
    config: Config,
    probe: Option<Arc<dyn Probe>>,
    ci: Option<Arc<dyn Ci>>,
    store: Option<Arc<dyn Store>>,
    http: Option<Arc<dyn HttpAction>>,
    clock: Option<Clock>,
    switch_overrides: HashMap<(String, String), Arc<dyn TrafficSwitch>>,
    switch_all: Option<Arc<dyn TrafficSwitch>>,
    compare: Option<Arc<dyn Compare>>,
    people: Option<Arc<dyn crate::ports::People>>,
    owner: Option<String>,
}

/// A name for this process in leases: host, pid and a random part.
pub fn replica_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "crossroads".into());
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &random[..6])
}

impl BotBuilder {
    /// Names this replica in leases (default: host, pid and a random part).
    pub fn owner(mut self, name: impl Into<String>) -> Self {
        self.owner = Some(name.into());
        self
    }
    /// Uses `probe` for status, health, tasks, the deploy health gate and the
    /// read-back of HTTP and Jenkins switches.
    pub fn probe(mut self, probe: Arc<dyn Probe>) -> Self {
        self.probe = Some(probe);
        self
    }
    /// Uses `ci` for builds, restarts, toy refreshes, YAML-defined jobs and Jenkins switches.
    pub fn ci(mut self, ci: Arc<dyn Ci>) -> Self {
        self.ci = Some(ci);
        self
    }
    /// Uses `store` for locks, buttons, events and the audit log.
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }
    /// Uses `http` for HTTP restart actions, YAML-defined HTTP commands and the
    /// requests of HTTP switches.
    pub fn http_action(mut self, http: Arc<dyn HttpAction>) -> Self {
        self.http = Some(http);
        self
    }
    /// Uses `switch` for one pool instead of the one its config describes.
    pub fn switch(mut self, env: &str, pool: &str, switch: Arc<dyn TrafficSwitch>) -> Self {
        self.switch_overrides
            .insert((env.to_owned(), pool.to_owned()), switch);
        self
    }
    /// Uses `switch` for every pool without an explicit override.
    pub fn switch_all(mut self, switch: Arc<dyn TrafficSwitch>) -> Self {
        self.switch_all = Some(switch);
        self
    }
    /// Uses `compare` to list the commits a deploy ships, instead of the compare
    /// endpoint `compare:` in `instances.yaml` describes.
    pub fn compare(mut self, compare: Arc<dyn Compare>) -> Self {
        self.compare = Some(compare);
        self
    }
    /// Uses `people` for what the chat platform knows of people (time zones for
    /// `deploy … at 18:00`); without it every such time is UTC.
    pub fn people(mut self, people: Arc<dyn crate::ports::People>) -> Self {
        self.people = Some(people);
        self
    }
    /// Uses `clock` instead of the system clock.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Builds the bot.
    pub fn build(self) -> Bot {
        let ci: Arc<dyn Ci> = match (self.ci, &self.config.jenkins) {
            (Some(ci), _) => ci,
            (None, Some(j)) => Arc::new(JenkinsClient::new(j.clone())),
            (None, None) => Arc::new(NoCi),
        };
        let backends = Backends {
            probe: self.probe.unwrap_or_else(|| Arc::new(HttpProbe::new())),
            ci,
            store: self.store.unwrap_or_else(|| Arc::new(MemoryStore::new())),
            http: self.http.unwrap_or_else(|| Arc::new(ReqwestAction::new())),
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemTime::now)),
            switch_overrides: self.switch_overrides,
            switch_all: self.switch_all,
            compare_override: self.compare,
            people: self
                .people
                .unwrap_or_else(|| Arc::new(crate::ports::NoPeople)),
            memory_switch: Arc::new(MemorySwitch::new()),
            owner: self.owner.unwrap_or_else(replica_name),
            status_cache: Arc::default(),
        };
        let generation = generation(self.config, &backends);
        Bot {
            generation: Arc::new(RwLock::new(Arc::new(generation))),
            backends: Arc::new(backends),
        }
    }
}

/// A configuration generation: its alias index, a switch per pool (an explicit one,
/// else the one its config describes, built on the bot's own probe, HTTP sender and
/// CI) and each command's registry row.
fn generation(config: Config, b: &Backends) -> Generation {
    let index = Index::build(&config);
    let parts = SwitchParts {
        probe: b.probe.clone(),
        http: b.http.clone(),
        ci: b.ci.clone(),
        memory: b.memory_switch.clone(),
    };
    let mut switches = HashMap::new();
    for env in &config.environments {
        for pool in &env.pools {
            let key = (env.name.clone(), pool.name.clone());
            let sw = b
                .switch_overrides
                .get(&key)
                .cloned()
                .or_else(|| b.switch_all.clone())
                .unwrap_or_else(|| switch_for(&pool.switch, &parts));
            switches.insert(key, sw);
        }
    }
    let mut region_switches = HashMap::new();
    for env in &config.environments {
        for region in &env.regions {
            for pool in &region.pools {
                let sw = b
                    .switch_all
                    .clone()
                    .unwrap_or_else(|| switch_for(&pool.switch, &parts));
                region_switches.insert(
                    (env.name.clone(), region.name.clone(), pool.name.clone()),
                    sw,
                );
            }
        }
    }
    let actions = config
        .commands
        .iter()
        .filter_map(|c| Some((c.name.clone(), actions::find(c.action.name())?)))
        .collect();
    let compare = b.compare_override.clone().or_else(|| {
        config
            .compare
            .clone()
            .map(|c| Arc::new(CompareClient::new(c)) as Arc<dyn Compare>)
    });
    Generation {
        config,
        index,
        switches,
        region_switches,
        actions,
        compare,
    }
}

/// Goes on with `run`, taken over: its action resumes it from its typed state.
async fn resume(ctx: &Ctx<'_>, run: Run) -> Reply {
    let inv = serde_json::from_value::<Invocation>(run.invocation.clone());
    let found = inv.as_ref().ok().and_then(|inv| {
        let cmd = ctx.config().command(&inv.command)?;
        Some((cmd, ctx.action(cmd)?))
    });
    match (inv, found) {
        (Ok(inv), Some((cmd, action))) => action.action.resume(ctx, cmd, inv, run).await,
        (inv, _) => {
            let reply = match inv {
                Ok(inv) => Rejection::CommandGone {
                    command: inv.command,
                }
                .reply(),
                Err(_) => Reply::message(
                    Outcome::Failed,
                    "A run could not be continued: its saved request is unreadable.",
                ),
            };
            if let Err(e) = ctx
                .backends
                .store
                .finish_run(&run.id, run.fence, &run.state, RunStatus::Failed)
                .await
            {
                tracing::warn!(run = %run.id, error = %e, "could not end a run that cannot go on");
            }
            reply
        }
    }
}

impl Bot {
    /// Starts building a bot for `config`.
    pub fn builder(config: Config) -> BotBuilder {
        BotBuilder {
            config,
            probe: None,
            ci: None,
            store: None,
            http: None,
            clock: None,
            switch_overrides: HashMap::new(),
            switch_all: None,
            compare: None,
            people: None,
            owner: None,
        }
    }

    fn generation(&self) -> Arc<Generation> {
        match self.generation.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> Config {
        self.generation().config.clone()
    }

    /// The settings in force (timings, leases).
    pub fn settings(&self) -> crate::config::Settings {
        self.generation().config.settings.clone()
    }

    /// Replaces the configuration (e.g. after a reload); requests in flight finish on the old one.
    pub fn reload(&self, config: Config) {
        let generation = Arc::new(generation(config, &self.backends));
        match self.generation.write() {
            Ok(mut g) => *g = generation,
            Err(poisoned) => *poisoned.into_inner() = generation,
        }
    }

    /// The state store (transports use it to deduplicate Slack deliveries).
    pub fn store(&self) -> Arc<dyn Store> {
        self.backends.store.clone()
    }

    /// The probe the bot checks health with (the monitor uses it too).
    pub fn probe(&self) -> Arc<dyn Probe> {
        self.backends.probe.clone()
    }

    /// This replica's name in leases.
    pub fn owner(&self) -> &str {
        &self.backends.owner
    }

    /// The current time by the bot's clock.
    pub fn now(&self) -> SystemTime {
        (self.backends.clock)()
    }

    /// Probes every instance of `env` (every environment when `None`) and reads
    /// every switch, like the chat `status` command, and returns it as data.
    pub async fn platform_status(&self, env: Option<&str>) -> Result<PlatformStatus, UnknownEnv> {
        let generation = self.generation();
        if let Some(name) = env {
            if generation.config.env(name).is_none() {
                return Err(UnknownEnv {
                    name: name.to_owned(),
                    known: generation
                        .config
                        .environments
                        .iter()
                        .map(|e| e.name.clone())
                        .collect(),
                });
            }
        }
        let ctx = Ctx {
            generation: &generation,
            backends: &self.backends,
            user: "",
            channel: None,
            delivery: None,
            reply_to: None,
            progress: &NoProgress,
            shell: None,
        };
        Ok(actions::status::gather(&ctx, env).await)
    }

    /// Takes over up to `limit` runs whose driver died (their lease lapsed), and
    /// runs recorded but never started (an approved request, a deploy taken out of
    /// line) whose replica died first; returns, for each, its id and a future that
    /// drives it on from where it stood: progress and the final reply go to the
    /// outbox message the run was editing (`wake` is called after each write).
    /// Spawn them.
    pub async fn take_over_runs(
        &self,
        limit: usize,
        wake: Option<Arc<dyn Fn() + Send + Sync>>,
    ) -> Result<Vec<(String, BoxFuture<'static, ()>)>, StoreError> {
        let now = self.now();
        let lease = self.settings().lease;
        let runs = self
            .backends
            .store
            .take_over_runs(&self.backends.owner, now, now + lease, limit)
            .await?;
        Ok(runs
            .into_iter()
            .map(|run| {
                let bot = self.clone();
                let wake = wake.clone();
                let id = run.id.clone();
                let work: BoxFuture<'static, ()> = Box::pin(async move {
                    bot.drive_taken(run, wake).await;
                });
                (id, work)
            })
            .collect())
    }

    /// Drives `run`, whose lease is ours: starts it when it is pending, else goes on
    /// from where its state says. Progress and the final reply go to its outbox
    /// message; a driver that lost the run writes nothing.
    async fn drive_taken(&self, run: Run, wake: Option<Arc<dyn Fn() + Send + Sync>>) -> Reply {
        let generation = self.generation();
        let mut outbox = run
            .message
            .as_ref()
            .map(|id| OutboxProgress::new(self.backends.store.clone(), id.clone()));
        if let Some(w) = wake {
            outbox = outbox.map(|o| o.waking(w));
        }
        let progress: &dyn Progress = match &outbox {
            Some(o) => o,
            None => &NoProgress,
        };
        let (user, message) = (run.user.clone(), run.message.clone());
        let ctx = Ctx {
            generation: &generation,
            backends: &self.backends,
            user: &user,
            channel: None,
            delivery: None,
            reply_to: message.as_deref(),
            progress,
            shell: None,
        };
        let reply = if run.status == RunStatus::Pending {
            tracing::info!(run = %run.id, "starting a run recorded before its replica could");
            carry::start(&ctx, run).await
        } else {
            tracing::info!(run = %run.id, action = %run.action, "taking over a run");
            resume(&ctx, run).await
        };
        if let Some(o) = &outbox {
            if let Err(e) = o.finish(&reply).await {
                tracing::error!(error = %e, "a run's reply could not be written");
            }
        }
        reply
    }

    /// Handles a request, ignoring progress updates of long actions.
    pub async fn handle(&self, request: Request) -> Reply {
        self.handle_with(request, &NoProgress).await
    }

    /// Handles a request; long actions report progress through `progress`.
    pub async fn handle_with(&self, request: Request, progress: &dyn Progress) -> Reply {
        let generation = self.generation();
        let ctx = Ctx {
            generation: &generation,
            backends: &self.backends,
            user: &request.user,
            channel: request.channel.as_deref(),
            delivery: request.delivery.as_deref(),
            reply_to: request.reply_to.as_deref(),
            progress,
            shell: request.shell.as_deref(),
        };
        let first = match request.input {
            Input::Text(text) => Next::Read(text),
            Input::Button(value) => Next::Click(value),
        };
        carry::carry(&ctx, first).await
    }
}
