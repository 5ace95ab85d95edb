//! The [`Bot`]: ties grammar, resolution, policy, actions and rendering together.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use crate::actions;
use crate::actions::status::PlatformStatus;
use crate::backends::jenkins::{JenkinsClient, NoCi};
use crate::backends::memory::MemorySwitch;
use crate::backends::probe::{HttpProbe, ReqwestAction};
use crate::backends::store::memory::MemoryStore;
use crate::backends::{Ci, Claim, HttpAction, Probe, Store, SwitchError, TrafficSwitch};
use crate::config::{ActionKind, CommandSpec, Config, InstanceRef, TargetKind};
use crate::grammar;
use crate::policy;
use crate::reply::{
    Button, ButtonAction, ButtonStyle, ButtonValue, Input, Invocation, Outcome, Reply, Request,
    Target,
};
use crate::resolve::{Candidates, CommandMatch, Index, Parsed, Qualifier};

/// Receives the in-place updates of a long action's progress message
/// (queued → building n% → gate → switched). Transports render each update by
/// editing one message (`chat.update`); the console prints them.
#[async_trait]
pub trait Progress: Send + Sync {
    /// The progress message changed.
    async fn update(&self, reply: &Reply);
}

/// A [`Progress`] that drops every update.
pub struct NoProgress;

#[async_trait]
impl Progress for NoProgress {
    async fn update(&self, _reply: &Reply) {}
}

/// Source of the current time (a parameter so tests can move it).
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Everything the engine needs for one configuration generation.
pub(crate) struct Engine {
    pub(crate) config: Config,
    pub(crate) index: Index,
    pub(crate) switches: HashMap<(String, String), Arc<dyn TrafficSwitch>>,
}

/// Backends shared across configuration reloads.
pub(crate) struct Backends {
    pub(crate) probe: Arc<dyn Probe>,
    pub(crate) ci: Arc<dyn Ci>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) http: Arc<dyn HttpAction>,
    pub(crate) clock: Clock,
    switch_overrides: HashMap<(String, String), Arc<dyn TrafficSwitch>>,
    switch_all: Option<Arc<dyn TrafficSwitch>>,
    memory_switch: Arc<MemorySwitch>,
}

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
    engine: Arc<RwLock<Arc<Engine>>>,
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
    /// Uses `probe` for status, health, tasks and the deploy health gate.
    pub fn probe(mut self, probe: Arc<dyn Probe>) -> Self {
        self.probe = Some(probe);
        self
    }
    /// Uses `ci` for builds, restarts, toy refreshes and YAML-defined jobs.
    pub fn ci(mut self, ci: Arc<dyn Ci>) -> Self {
        self.ci = Some(ci);
        self
    }
    /// Uses `store` for locks, buttons, events and the audit log.
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }
    /// Uses `http` for HTTP restart actions and YAML-defined HTTP commands.
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
        let engine = Engine::new(self.config, &backends);
        Bot {
            engine: Arc::new(RwLock::new(Arc::new(engine))),
            backends: Arc::new(backends),
        }
    }
}

impl Engine {
    fn new(config: Config, b: &Backends) -> Self {
        let index = Index::build(&config);
        let mut switches = HashMap::new();
        for env in &config.environments {
            for pool in &env.pools {
                let key = (env.name.clone(), pool.name.clone());
                let sw = b
                    .switch_overrides
                    .get(&key)
                    .cloned()
                    .or_else(|| b.switch_all.clone())
                    .unwrap_or_else(|| {
                        crate::backends::switch_for(
                            &pool.switch,
                            b.ci.clone(),
                            b.memory_switch.clone(),
                        )
                    });
                switches.insert(key, sw);
            }
        }
        Self {
            config,
            index,
            switches,
        }
    }
}

/// Context handed to actions.
pub(crate) struct Ctx<'a> {
    pub(crate) engine: &'a Engine,
    pub(crate) b: &'a Backends,
    pub(crate) user: &'a str,
    pub(crate) progress: &'a dyn Progress,
}

impl Ctx<'_> {
    pub(crate) fn config(&self) -> &Config {
        &self.engine.config
    }
    pub(crate) fn now(&self) -> SystemTime {
        (self.b.clock)()
    }
    /// The live active member of a pool, read from its switch.
    pub(crate) async fn active(&self, env: &str, pool: &str) -> Result<String, SwitchError> {
        let (Some(e), Some(p)) = (self.config().env(env), self.config().pool(env, pool)) else {
            return Err(SwitchError::Unknown(format!("no pool {env} {pool}")));
        };
        let sw = self
            .engine
            .switches
            .get(&(env.to_owned(), pool.to_owned()))
            .ok_or_else(|| SwitchError::Unknown(format!("no switch for {env} {pool}")))?;
        let timeout = self.config().settings.probe_timeout;
        match tokio::time::timeout(timeout, sw.active(e, p)).await {
            Ok(r) => r,
            Err(_) => Err(SwitchError::Unknown(format!(
                "the switch of {env} {pool} did not answer within {}ms",
                timeout.as_millis()
            ))),
        }
    }
    /// Live active members of several pools, read concurrently.
    pub(crate) async fn actives(
        &self,
        pools: impl IntoIterator<Item = (String, String)>,
    ) -> BTreeMap<(String, String), Result<String, SwitchError>> {
        let futs = pools.into_iter().map(|(e, p)| async move {
            let r = self.active(&e, &p).await;
            ((e, p), r)
        });
        futures::future::join_all(futs).await.into_iter().collect()
    }
    /// Registers a button set and returns its id.
    pub(crate) async fn button_set(&self) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let expires = self.now() + self.config().settings.button_ttl;
        if let Err(e) = self.b.store.issue_buttons(&id, expires).await {
            tracing::warn!(error = %e, "could not record buttons");
        }
        id
    }
    /// A button that runs `action` when clicked.
    pub(crate) fn button(
        set: &str,
        label: impl Into<String>,
        action: ButtonAction,
        style: ButtonStyle,
    ) -> Button {
        let value = ButtonValue {
            set: set.to_owned(),
            action,
        };
        Button {
            label: label.into(),
            value: serde_json::to_string(&value).unwrap_or_default(),
            style,
            confirm: None,
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
        }
    }

    fn engine(&self) -> Arc<Engine> {
        match self.engine.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> Config {
        self.engine().config.clone()
    }

    /// Replaces the configuration (e.g. after a reload); requests in flight finish on the old one.
    pub fn reload(&self, config: Config) {
        let engine = Arc::new(Engine::new(config, &self.backends));
        match self.engine.write() {
            Ok(mut g) => *g = engine,
            Err(poisoned) => *poisoned.into_inner() = engine,
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
        let engine = self.engine();
        if let Some(name) = env {
            if engine.config.env(name).is_none() {
                return Err(UnknownEnv {
                    name: name.to_owned(),
                    known: engine
                        .config
                        .environments
                        .iter()
                        .map(|e| e.name.clone())
                        .collect(),
                });
            }
        }
        let ctx = Ctx {
            engine: &engine,
            b: &self.backends,
            user: "",
            progress: &NoProgress,
        };
        Ok(crate::actions::status::gather(&ctx, env).await)
    }

    /// Handles a request, ignoring progress updates of long actions.
    pub async fn handle(&self, request: Request) -> Reply {
        self.handle_with(request, &NoProgress).await
    }

    /// Handles a request; long actions report progress through `progress`.
    pub async fn handle_with(&self, request: Request, progress: &dyn Progress) -> Reply {
        let engine = self.engine();
        let ctx = Ctx {
            engine: &engine,
            b: &self.backends,
            user: &request.user,
            progress,
        };
        match &request.input {
            Input::Text(text) => handle_text(&ctx, text).await,
            Input::Button(value) => handle_button(&ctx, value).await,
        }
    }
}

fn code(s: &str) -> String {
    format!("`{}`", s.replace('`', "'"))
}

/// Longest message read as a command. Commands are short; the limit also keeps every
/// button value (which carries the command) under Slack's 2,000 characters.
pub const MAX_COMMAND_CHARS: usize = 1000;

async fn handle_text(ctx: &Ctx<'_>, text: &str) -> Reply {
    let length = text.chars().count();
    if length > MAX_COMMAND_CHARS {
        return Reply::message(
            Outcome::Rejected,
            format!(
                "That is {length} characters: too long to be a command (I read at most {MAX_COMMAND_CHARS}). Try `help`."
            ),
        );
    }
    let tokens = grammar::tokenize(text);
    match ctx.engine.index.parse(ctx.config(), &tokens) {
        Parsed::Empty => Reply::message(
            Outcome::Rejected,
            "Tell me what to do, e.g. `status`, `health rh blue` or `deploy staging`. `help` lists everything.",
        ),
        Parsed::NotACommand { word } => Reply::message(
            Outcome::Rejected,
            format!(
                "I don't know the command {}. Try `help` to see what I can do.",
                code(&word)
            ),
        ),
        Parsed::Misspelt {
            typed, corrected, ..
        } => {
            let words: Vec<String> = corrected.split_whitespace().map(str::to_owned).collect();
            let corrected = restore_case(text, &words).join(" ");
            let set = ctx.button_set().await;
            Reply::message(
                Outcome::Suggestion,
                format!(
                    "I don't know {}. Did you mean {}?",
                    code(&typed),
                    code(&corrected)
                ),
            )
            .buttons(vec![
                Ctx::button(&set, corrected.clone(), ButtonAction::Text(corrected), ButtonStyle::Primary),
                Ctx::button(&set, "Cancel", ButtonAction::Cancel, ButtonStyle::Default),
            ])
        }
        Parsed::Command(mut m) => {
            m.rest = restore_case(text, &m.rest);
            resolve_and_run(ctx, m).await
        }
    }
}

/// The grammar folds case; arguments (git refs, lock reasons) keep the case typed.
fn restore_case(text: &str, words: &[String]) -> Vec<String> {
    words
        .iter()
        .map(|word| {
            text.split_whitespace()
                .find_map(|chunk| {
                    let lower = chunk.to_lowercase();
                    let at = lower.find(word.as_str())?;
                    // Slicing by the folded string's offsets is only safe when folding kept byte lengths.
                    (lower.len() == chunk.len()).then(|| chunk.get(at..at + word.len()))?
                })
                .map(str::to_owned)
                .unwrap_or_else(|| word.clone())
        })
        .collect()
}

/// Turns a recognised command into one invocation, or a reply asking to choose.
async fn resolve_and_run(ctx: &Ctx<'_>, m: CommandMatch) -> Reply {
    let config = ctx.config();
    let Some(cmd) = config.commands.get(m.command) else {
        return Reply::message(Outcome::Failed, "internal error: unknown command index");
    };
    if !cmd.takes_args && !m.rest.is_empty() {
        let words: Vec<String> = m.rest.iter().map(|w| code(w)).collect();
        return Reply::message(
            Outcome::Rejected,
            format!(
                "I didn't understand {} in `{}`. {}",
                words.join(", "),
                cmd.name,
                what_exists(config, cmd)
            ),
        );
    }
    let instances = match ctx.engine.index.candidates(config, &m.selectors) {
        Candidates::Conflict(msg) => return Reply::message(Outcome::Rejected, msg),
        Candidates::Instances(list) => list,
    };
    let named_something = !m.selectors.is_empty() || m.qualifier.is_some();
    let instances = match m.qualifier {
        None => instances,
        Some(q) => {
            // `master active` without a pool means the environment's main pool: its first.
            let instances = if named_pool(&m) {
                instances
            } else {
                main_pools_only(config, instances)
            };
            match filter_by_qualifier(ctx, instances, q).await {
                Ok(list) => list,
                Err(reply) => return reply,
            }
        }
    };
    if instances.is_empty() && named_something {
        return Reply::message(
            Outcome::Rejected,
            "Nothing matches that: no instance fits all of those words.",
        );
    }
    let corrections: Vec<String> = m
        .selectors
        .iter()
        .filter_map(|s| {
            s.corrected
                .as_ref()
                .map(|c| format!("{} → {}", code(&s.words), code(c)))
        })
        .collect();
    let targets = project(cmd, &instances, named_something, &m);
    let base = |target: Target| Invocation {
        command: cmd.name.clone(),
        target,
        args: m.rest.clone(),
        params: m.params.clone(),
        confirmed: false,
    };
    let mut reply = match targets.len() {
        0 => Reply::message(
            Outcome::Rejected,
            format!(
                "`{}` needs a target. {}",
                cmd.name,
                what_exists(config, cmd)
            ),
        ),
        1 => {
            let target = targets.into_iter().next().unwrap_or(Target::None);
            run_invocation(ctx, base(target)).await
        }
        _ => choices(ctx, cmd, targets.into_iter().map(base).collect()).await,
    };
    if !corrections.is_empty() {
        reply = reply.context(format!("Read {}.", corrections.join(", ")));
    }
    reply
}

/// What the user can name, for "needs a target" and "didn't understand" replies.
fn what_exists(config: &Config, cmd: &CommandSpec) -> String {
    match cmd.target {
        TargetKind::Nothing => format!("`{}` takes no arguments.", cmd.name),
        TargetKind::Environment => format!(
            "Environments: {}.",
            config
                .environments
                .iter()
                .map(|e| code(&e.name))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        TargetKind::Pool | TargetKind::Instance => {
            let names: Vec<String> = config
                .environments
                .iter()
                .map(|e| {
                    let pools: Vec<String> = e
                        .pools
                        .iter()
                        .map(|p| {
                            format!(
                                "{} ({})",
                                p.name,
                                p.members
                                    .iter()
                                    .map(|m| m.name.as_str())
                                    .collect::<Vec<_>>()
                                    .join("/")
                            )
                        })
                        .collect();
                    format!("{}: {}", code(&e.name), pools.join(", "))
                })
                .collect();
            format!("Known: {}.", names.join("; "))
        }
    }
}

async fn filter_by_qualifier(
    ctx: &Ctx<'_>,
    instances: Vec<InstanceRef>,
    q: Qualifier,
) -> Result<Vec<InstanceRef>, Reply> {
    let pools: Vec<(String, String)> =
        dedup(instances.iter().map(|r| (r.env.clone(), r.pool.clone())));
    let actives = ctx.actives(pools).await;
    let mut out = Vec::new();
    for r in instances {
        match actives.get(&(r.env.clone(), r.pool.clone())) {
            Some(Ok(active)) => {
                let is_active = *active == r.member;
                if is_active == (q == Qualifier::Active) {
                    out.push(r);
                }
            }
            Some(Err(e)) => {
                return Err(Reply::message(
                    Outcome::Failed,
                    format!(
                        "I can't tell which member of {} {} is active: {e}",
                        r.env, r.pool
                    ),
                ))
            }
            None => {}
        }
    }
    Ok(out)
}

/// Keeps only instances of each environment's first pool (its main pool).
fn main_pools_only(config: &Config, instances: Vec<InstanceRef>) -> Vec<InstanceRef> {
    instances
        .into_iter()
        .filter(|r| {
            config
                .env(&r.env)
                .and_then(|e| e.pools.first())
                .is_some_and(|p| p.name == r.pool)
        })
        .collect()
}

fn dedup<T: Ord + Clone>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut seen = std::collections::BTreeSet::new();
    items
        .into_iter()
        .filter(|i| seen.insert(i.clone()))
        .collect()
}

/// Projects matching instances onto the command's target kind.
fn project(
    cmd: &CommandSpec,
    instances: &[InstanceRef],
    named: bool,
    m: &CommandMatch,
) -> Vec<Target> {
    match cmd.target {
        TargetKind::Nothing => vec![Target::None],
        TargetKind::Instance => instances.iter().cloned().map(Target::Instance).collect(),
        TargetKind::Pool => {
            let pools = dedup(instances.iter().map(|r| (r.env.clone(), r.pool.clone())));
            pools
                .into_iter()
                .map(|(env, pool)| {
                    let members: Vec<&InstanceRef> = instances
                        .iter()
                        .filter(|r| r.env == env && r.pool == pool)
                        .collect();
                    // A member is named only when the words singled one out.
                    let member = (members.len() == 1 && (named_member(m) || m.qualifier.is_some()))
                        .then(|| members[0].member.clone());
                    Target::Pool { env, pool, member }
                })
                .collect()
        }
        TargetKind::Environment => {
            if !named && cmd.target_optional {
                return vec![Target::None];
            }
            let envs = dedup(instances.iter().map(|r| r.env.clone()));
            envs.into_iter()
                .map(|env| {
                    let pools = if named_pool(m) {
                        dedup(
                            instances
                                .iter()
                                .filter(|r| r.env == env)
                                .map(|r| r.pool.clone()),
                        )
                    } else {
                        Vec::new()
                    };
                    Target::Env { env, pools }
                })
                .collect()
        }
    }
}

fn named_member(m: &CommandMatch) -> bool {
    m.selectors.iter().any(|s| {
        s.matches
            .iter()
            .any(|r| matches!(r, crate::resolve::Referent::Instance(..)))
    })
}

fn named_pool(m: &CommandMatch) -> bool {
    m.selectors.iter().any(|s| {
        s.matches.iter().any(|r| {
            matches!(
                r,
                crate::resolve::Referent::Pool(..) | crate::resolve::Referent::Instance(..)
            )
        })
    })
}

/// One button per candidate, grouped by environment, active members marked.
async fn choices(ctx: &Ctx<'_>, cmd: &CommandSpec, invocations: Vec<Invocation>) -> Reply {
    let pools: Vec<(String, String)> = dedup(invocations.iter().filter_map(|i| match &i.target {
        Target::Instance(r) => Some((r.env.clone(), r.pool.clone())),
        _ => None,
    }));
    let actives = ctx.actives(pools).await;
    let set = ctx.button_set().await;
    let mut reply = Reply::message(
        Outcome::Choices,
        format!("Which one do you mean for `{}`?", cmd.name),
    );
    let mut by_env: Vec<(String, Vec<Button>)> = Vec::new();
    for inv in invocations {
        let env = inv.target.env().unwrap_or("").to_owned();
        let label = match &inv.target {
            Target::Instance(r) => {
                let active = matches!(actives.get(&(r.env.clone(), r.pool.clone())), Some(Ok(a)) if *a == r.member);
                format!(
                    "{} {} {}{}",
                    r.env,
                    r.pool,
                    r.member,
                    if active { " (active)" } else { "" }
                )
            }
            other => other.to_string(),
        };
        let button = Ctx::button(&set, label, ButtonAction::Run(inv), ButtonStyle::Default);
        match by_env.iter_mut().find(|(e, _)| *e == env) {
            Some((_, list)) => list.push(button),
            None => by_env.push((env, vec![button])),
        }
    }
    let grouped = by_env.len() > 1 && by_env.iter().any(|(_, b)| b.len() > 1);
    for (env, buttons) in by_env {
        if grouped {
            reply = reply.context(format!("*{env}*"));
        }
        reply = reply.buttons(buttons);
    }
    reply
}

async fn handle_button(ctx: &Ctx<'_>, value: &str) -> Reply {
    let Ok(value) = serde_json::from_str::<ButtonValue>(value) else {
        return Reply::message(Outcome::Rejected, "That button is not one of mine.").ephemeral();
    };
    // Someone who may not run the command must not use up the buttons of those who may.
    if let ButtonAction::Run(inv) = &value.action {
        if let Some(cmd) = ctx.config().command(&inv.command) {
            if let Err(refusal) = policy::permitted(ctx.config(), cmd, &inv.target, ctx.user) {
                return Reply::message(Outcome::Rejected, refusal).ephemeral();
            }
        }
    }
    let claim = match ctx
        .b
        .store
        .claim_buttons(&value.set, ctx.user, ctx.now())
        .await
    {
        Ok(c) => c,
        Err(e) => {
            return Reply::message(
                Outcome::Failed,
                format!("I could not record the click: {e}"),
            )
            .ephemeral()
        }
    };
    match claim {
        Claim::Claimed => {}
        Claim::AlreadyUsed { by } => {
            return Reply::message(Outcome::Stale, format!("Already handled by <@{by}>."))
                .ephemeral()
        }
        Claim::Expired => {
            return Reply::message(Outcome::Stale, "These buttons have expired; ask me again.")
                .ephemeral()
        }
        Claim::Unknown => {
            return Reply::message(
                Outcome::Stale,
                "I no longer know these buttons (they may predate a restart); ask me again.",
            )
            .ephemeral()
        }
    }
    let user = ctx.user;
    match value.action {
        ButtonAction::Cancel => Reply::message(Outcome::Done, format!("Cancelled by <@{user}>.")),
        ButtonAction::Text(text) => {
            let chosen = format!("<@{user}> chose {}", code(&text));
            let progress = Chosen {
                inner: ctx.progress,
                chosen: &chosen,
            };
            let ctx = Ctx {
                progress: &progress,
                ..*ctx
            };
            let reply = Box::pin(handle_text(&ctx, &text)).await;
            prepend(reply, chosen.clone())
        }
        ButtonAction::Run(inv) => {
            let chosen = format!("<@{user}> chose {}", code(&inv.as_text()));
            let progress = Chosen {
                inner: ctx.progress,
                chosen: &chosen,
            };
            let ctx = Ctx {
                progress: &progress,
                ..*ctx
            };
            let reply = Box::pin(run_invocation(&ctx, inv)).await;
            prepend(reply, chosen.clone())
        }
    }
}

/// Progress of an action started by a click: every update keeps saying who chose what,
/// since it replaces the message that held the buttons.
struct Chosen<'a> {
    inner: &'a dyn Progress,
    chosen: &'a str,
}

#[async_trait]
impl Progress for Chosen<'_> {
    async fn update(&self, reply: &Reply) {
        self.inner
            .update(&prepend(reply.clone(), self.chosen.to_owned()))
            .await;
    }
}

fn prepend(mut reply: Reply, context: String) -> Reply {
    reply.parts.insert(0, crate::reply::Part::Context(context));
    reply
}

/// Checks that an invocation still names something that exists (buttons outlive reloads).
fn validate(config: &Config, inv: &Invocation) -> Result<(), String> {
    let missing = match &inv.target {
        Target::None => false,
        Target::Env { env, pools } => {
            config.env(env).is_none() || pools.iter().any(|p| config.pool(env, p).is_none())
        }
        Target::Pool { env, pool, member } => match config.pool(env, pool) {
            None => true,
            Some(p) => member
                .as_ref()
                .is_some_and(|m| !p.members.iter().any(|x| &x.name == m)),
        },
        Target::Instance(r) => config.instance(r).is_none(),
    };
    if missing {
        return Err(format!(
            "{} no longer exists in the configuration.",
            inv.target
        ));
    }
    Ok(())
}

/// Runs a resolved invocation: permission, confirmation, action.
pub(crate) async fn run_invocation(ctx: &Ctx<'_>, inv: Invocation) -> Reply {
    let config = ctx.config();
    let Some(cmd) = config.command(&inv.command) else {
        return Reply::message(
            Outcome::Rejected,
            format!("There is no command `{}` any more.", inv.command),
        );
    };
    if let Err(msg) = validate(config, &inv) {
        return Reply::message(Outcome::Rejected, msg);
    }
    if let Err(refusal) = policy::permitted(config, cmd, &inv.target, ctx.user) {
        audit(ctx, &inv, &format!("refused: {refusal}"), None).await;
        return Reply::message(Outcome::Rejected, refusal);
    }
    if let Err(reply) = actions::check(config, cmd, &inv) {
        return reply;
    }
    if policy::needs_confirmation(config, cmd, &inv.target) && !inv.confirmed {
        return confirmation(ctx, cmd, inv).await;
    }
    actions::dispatch(ctx, cmd, inv).await
}

async fn confirmation(ctx: &Ctx<'_>, cmd: &CommandSpec, inv: Invocation) -> Reply {
    let set = ctx.button_set().await;
    let text = policy::confirmation_text(ctx, cmd, &inv).await;
    let label = format!("Yes, {}", inv.as_text());
    let confirmed = Invocation {
        confirmed: true,
        ..inv
    };
    let mut yes = Ctx::button(
        &set,
        label,
        ButtonAction::Run(confirmed),
        ButtonStyle::Danger,
    );
    yes.confirm = Some(crate::reply::Confirm {
        title: "Are you sure?".into(),
        text: text.clone(),
        ok: "Do it".into(),
        deny: "Cancel".into(),
    });
    Reply::message(Outcome::Confirm, text).buttons(vec![
        yes,
        Ctx::button(&set, "Cancel", ButtonAction::Cancel, ButtonStyle::Default),
    ])
}

/// Appends an audit record; failures are logged, never shown.
pub(crate) async fn audit(ctx: &Ctx<'_>, inv: &Invocation, outcome: &str, link: Option<String>) {
    let record = crate::backends::AuditRecord {
        at: ctx.now(),
        user: ctx.user.to_owned(),
        command: inv.command.clone(),
        target: inv.target.to_string(),
        env: inv.target.env().map(str::to_owned),
        outcome: outcome.to_owned(),
        link,
    };
    if let Err(e) = ctx.b.store.audit(record).await {
        tracing::error!(error = %e, "audit record lost");
    }
}

/// Whether an action changes anything (permission and audit apply).
pub(crate) fn is_mutating(action: &ActionKind) -> bool {
    !matches!(
        action,
        ActionKind::Help
            | ActionKind::Status
            | ActionKind::Health
            | ActionKind::Tasks
            | ActionKind::History
    )
}

/// Formats a duration for people: `850ms`, `12.3s`, `4m 05s`.
pub(crate) fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 10 {
        format!("{:.1}ms", d.as_secs_f64() * 1000.0)
    } else if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m {:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}
