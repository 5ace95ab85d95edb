//! The [`Bot`]: wiring (builder, backends, configuration reload) and the entry points
//! transports call. Text entry is in `understand`, the button protocol in `buttons`,
//! the invocation pipeline in `invoke`.

mod buttons;
mod invoke;
mod understand;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use crate::actions;
use crate::actions::status::PlatformStatus;
use crate::adapters::jenkins::{JenkinsClient, NoCi};
use crate::adapters::memory_switch::MemorySwitch;
use crate::adapters::probe::{HttpProbe, ReqwestAction};
use crate::adapters::store::memory::MemoryStore;
use crate::adapters::{switch_for, SwitchParts};
use crate::config::Config;
use crate::context::{Backends, Clock, Ctx, Generation, NoProgress, Progress};
use crate::ports::{Ci, HttpAction, Probe, Store, TrafficSwitch};
use crate::reply::{Input, Reply, Request};
use crate::resolve::Index;

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
}

impl BotBuilder {
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
            memory_switch: Arc::new(MemorySwitch::new()),
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
    let actions = config
        .commands
        .iter()
        .filter_map(|c| Some((c.name.clone(), actions::find(c.action.name())?)))
        .collect();
    Generation {
        config,
        index,
        switches,
        actions,
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
        };
        Ok(actions::status::gather(&ctx, env).await)
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
        };
        match &request.input {
            Input::Text(text) => understand::handle_text(&ctx, text).await,
            Input::Button(value) => buttons::handle_button(&ctx, value).await,
        }
    }
}
