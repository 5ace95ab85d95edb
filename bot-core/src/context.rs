//! What every action stands on: the [`Ctx`] of one request (configuration generation,
//! backends, who is asking, where progress goes), the clock, and the [`ActionDef`]
//! shape of a registry row.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::config::{CommandSpec, Config};
use crate::failure::told;
use crate::ports::store::{ButtonSet, Run};
use crate::ports::{
    AuditRecord, Ci, Compare, HttpAction, Probe, Progress, Store, StoreError, SwitchError,
    TrafficSwitch,
};
use crate::rejection::Rejection;
use crate::reply::{Button, ButtonAction, ButtonStyle, Confirm, Invocation, Outcome, Reply};
use crate::resolve::Index;

/// Source of the current time (a parameter so tests can move it).
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Safety rules of an action, read by the policy and the invocation pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Changes something: the environment's `allowed` groups apply, and it is audited.
    pub mutating: bool,
    /// Refused while its environment is locked (for actions that do not take the lock
    /// themselves: restarts, YAML jobs).
    pub respects_locks: bool,
    /// Takes the environment lock itself for its whole run (deploy, rollback, switch),
    /// so it is refused while someone else holds it.
    pub takes_lock: bool,
    /// Asks for a confirmation click on a protected environment.
    pub confirm_on_protected: bool,
    /// Refused during a freeze window (unless overridden).
    pub frozen: bool,
}

impl Rules {
    /// Reads only: no permission beyond the command's own, no audit, no lock.
    pub const READ: Rules = Rules {
        mutating: false,
        respects_locks: false,
        takes_lock: false,
        confirm_on_protected: false,
        frozen: false,
    };
}

/// What an action does; one implementation per action, in its own file.
#[async_trait::async_trait]
pub trait Action: Send + Sync {
    /// Checks the arguments before confirmation and before anything runs.
    fn check(&self, _config: &Config, _inv: &Invocation) -> Result<(), Rejection> {
        Ok(())
    }
    /// The confirmation question, when the action words it itself.
    fn question(&self, _config: &Config, _inv: &Invocation) -> Option<String> {
        None
    }
    /// What the invocation would ship, for its confirmation and approval card (a
    /// deploy's commits, and the commit it pins); `None` when there is nothing to say.
    async fn changes(&self, _ctx: &Ctx<'_>, _inv: &Invocation) -> Option<Shipping> {
        None
    }
    /// Runs an authorised, confirmed invocation of `cmd`.
    async fn run(&self, ctx: &Ctx<'_>, cmd: &CommandSpec, inv: Invocation) -> Reply;
    /// Goes on with `run` (an invocation of `cmd` started by a replica that died),
    /// from where its state says. Actions that are not runs never get here.
    async fn resume(&self, ctx: &Ctx<'_>, cmd: &CommandSpec, inv: Invocation, run: Run) -> Reply {
        let _ = (ctx, cmd, inv, run);
        Reply::message(
            Outcome::Failed,
            "I cannot go on with this after a restart; nothing more was done.",
        )
    }
}

/// What an invocation would ship: a few lines of mrkdwn, and the commit it pins (the
/// head of the ref as shown, which is then exactly what ships).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipping {
    /// What is said.
    pub text: String,
    /// The commit shown, when the commits could be listed.
    pub pin: Option<crate::reply::Pin>,
}

/// One row of the action registry: everything the bot knows about an action, in one
/// place. `commands.yaml` names a row with `action:`.
pub struct ActionDef {
    /// The name `commands.yaml` uses (`deploy`, `force_restart`, `job`).
    pub name: &'static str,
    /// Safety rules.
    pub rules: Rules,
    /// What it does.
    pub action: &'static dyn Action,
}

/// Everything the engine needs for one configuration generation: the config, its
/// alias index, each pool's switch and each command's registry row.
pub struct Generation {
    /// The configuration.
    pub config: Config,
    /// Its alias index.
    pub index: Index,
    /// The switch of each `(env, pool)` (in an environment with regions: its first region's).
    pub switches: HashMap<(String, String), Arc<dyn TrafficSwitch>>,
    /// The switch of each `(env, region, pool)` of environments with regions.
    pub region_switches: HashMap<(String, String, String), Arc<dyn TrafficSwitch>>,
    /// The registry row of each command, by canonical name.
    pub actions: HashMap<String, &'static ActionDef>,
    /// Where the commits a deploy ships are listed, when anywhere.
    pub compare: Option<Arc<dyn Compare>>,
}

/// Backends shared across configuration reloads.
pub struct Backends {
    /// Health, status and tasks probes, and the deploy gate.
    pub probe: Arc<dyn Probe>,
    /// Builds, restarts, toy refreshes and YAML jobs.
    pub ci: Arc<dyn Ci>,
    /// Durable state.
    pub store: Arc<dyn Store>,
    /// HTTP restart actions and YAML HTTP commands.
    pub http: Arc<dyn HttpAction>,
    /// The time.
    pub clock: Clock,
    /// Switches given explicitly per `(env, pool)`.
    pub switch_overrides: HashMap<(String, String), Arc<dyn TrafficSwitch>>,
    /// A compare client given explicitly, instead of the one `compare:` describes.
    pub compare_override: Option<Arc<dyn Compare>>,
    /// What the chat platform knows of people (their time zones).
    pub people: Arc<dyn crate::ports::People>,
    /// A switch for every pool without an explicit one.
    pub switch_all: Option<Arc<dyn TrafficSwitch>>,
    /// The state of every `type: memory` switch.
    pub memory_switch: Arc<dyn TrafficSwitch>,
    /// This replica's name in leases (runs, deliveries).
    pub owner: String,
    /// The status round everyone asking at once shares.
    pub status_cache: Arc<crate::status_cache::StatusCache>,
}

/// What one request runs with.
pub struct Ctx<'a> {
    /// The configuration generation in force when the request arrived.
    pub generation: &'a Generation,
    /// The backends.
    pub backends: &'a Backends,
    /// Slack user id of whoever asked (or clicked).
    pub user: &'a str,
    /// The conversation the request came from, when known.
    pub channel: Option<&'a str>,
    /// The inbox delivery the request came from, when it was taken durably.
    pub delivery: Option<&'a str>,
    /// The outbox message the request's answers go to, when they go through it.
    pub reply_to: Option<&'a str>,
    /// Where a long action's progress goes.
    pub progress: &'a dyn Progress,
    /// The operating-system user and host, when the request comes from a shell
    /// (`crossroads run`, `console`) rather than from Slack: `alice@build-01`.
    pub shell: Option<&'a str>,
}

impl Ctx<'_> {
    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.generation.config
    }

    /// The current time by the bot's clock.
    pub fn now(&self) -> SystemTime {
        (self.backends.clock)()
    }

    /// The registry row of `cmd`.
    pub fn action(&self, cmd: &CommandSpec) -> Option<&'static ActionDef> {
        self.generation.actions.get(&cmd.name).copied()
    }

    /// The live active member of a pool, read from its switch within the probe timeout.
    pub async fn active(&self, env: &str, pool: &str) -> Result<String, SwitchError> {
        let (Some(e), Some(p)) = (self.config().env(env), self.config().pool(env, pool)) else {
            return Err(SwitchError::Unknown(format!("no pool {env} {pool}")));
        };
        let sw = self.switch(env, pool)?;
        let timeout = self.config().settings.probe_timeout;
        match tokio::time::timeout(timeout, sw.active(e, p)).await {
            Ok(r) => r,
            Err(_) => Err(SwitchError::Unknown(format!(
                "the switch of {env} {pool} did not answer within {}ms",
                timeout.as_millis()
            ))),
        }
    }

    /// The switch of a pool.
    pub fn switch(&self, env: &str, pool: &str) -> Result<&Arc<dyn TrafficSwitch>, SwitchError> {
        self.generation
            .switches
            .get(&(env.to_owned(), pool.to_owned()))
            .ok_or_else(|| SwitchError::Unknown(format!("no switch for {env} {pool}")))
    }

    /// The switch of a pool in `region` (`None`: the environment's own pools).
    pub fn switch_at(
        &self,
        env: &str,
        region: Option<&str>,
        pool: &str,
    ) -> Result<&Arc<dyn TrafficSwitch>, SwitchError> {
        let Some(region) = region else {
            return self.switch(env, pool);
        };
        self.generation
            .region_switches
            .get(&(env.to_owned(), region.to_owned(), pool.to_owned()))
            .ok_or_else(|| SwitchError::Unknown(format!("no switch for {env} {region} {pool}")))
    }

    /// The live active member of a pool in `region`, read from its switch within the
    /// probe timeout (`None`: the environment's own pools).
    pub async fn active_at(
        &self,
        env: &str,
        region: Option<&str>,
        pool: &str,
    ) -> Result<String, SwitchError> {
        let (Some(e), Some(p)) = (
            self.config().env(env),
            self.config().pool_in(env, region, pool),
        ) else {
            return Err(SwitchError::Unknown(format!(
                "no pool {env} {}{pool}",
                region.map(|r| format!("{r} ")).unwrap_or_default()
            )));
        };
        let sw = self.switch_at(env, region, pool)?;
        let timeout = self.config().settings.probe_timeout;
        match tokio::time::timeout(timeout, sw.active(e, p)).await {
            Ok(r) => r,
            Err(_) => Err(SwitchError::Unknown(format!(
                "the switch of {env} {}{pool} did not answer within {}ms",
                region.map(|r| format!("{r} ")).unwrap_or_default(),
                timeout.as_millis()
            ))),
        }
    }

    /// Live active members of several pools, each in its region, read concurrently.
    pub async fn actives_at(
        &self,
        pools: impl IntoIterator<Item = PoolAt>,
    ) -> BTreeMap<PoolAt, Result<String, SwitchError>> {
        let futs = pools.into_iter().map(|(e, r, p)| async move {
            let result = self.active_at(&e, r.as_deref(), &p).await;
            ((e, r, p), result)
        });
        futures::future::join_all(futs).await.into_iter().collect()
    }

    /// Live active members of several pools, read concurrently.
    pub async fn actives(
        &self,
        pools: impl IntoIterator<Item = (String, String)>,
    ) -> BTreeMap<(String, String), Result<String, SwitchError>> {
        let futs = pools.into_iter().map(|(e, p)| async move {
            let r = self.active(&e, &p).await;
            ((e, p), r)
        });
        futures::future::join_all(futs).await.into_iter().collect()
    }

    /// Offers buttons: records them as one set (usable once, in this conversation,
    /// until the button lifetime passes) and returns them, each carrying only its
    /// opaque `<set>.<index>` value. What a button does stays in the store. Anyone
    /// permitted in the conversation may click them (a choice, a one-click rollback:
    /// whoever is on call); the command runs as whoever clicks.
    pub async fn offer(&self, offers: Vec<Offer>) -> Result<Vec<Button>, StoreError> {
        self.offer_to(offers, false).await
    }

    /// Offers buttons only this request's user may click: a confirmation answers the
    /// person it asked; anyone else is told whose it is.
    pub async fn offer_personal(&self, offers: Vec<Offer>) -> Result<Vec<Button>, StoreError> {
        self.offer_to(offers, true).await
    }

    async fn offer_to(
        &self,
        offers: Vec<Offer>,
        personal: bool,
    ) -> Result<Vec<Button>, StoreError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let actions = offers
            .iter()
            .map(|o| serde_json::to_value(&o.action).unwrap_or_default())
            .collect();
        let set = ButtonSet {
            id: id.clone(),
            actions,
            channel: self.channel.map(str::to_owned),
            issued_to: self.user.to_owned(),
            expires: self.now() + self.config().settings.button_ttl,
            personal,
        };
        self.backends.store.issue_buttons(&set).await?;
        Ok(offers
            .into_iter()
            .enumerate()
            .map(|(i, o)| Button {
                label: o.label,
                value: format!("{id}.{i}"),
                style: o.style,
                confirm: o.confirm,
            })
            .collect())
    }

    /// Appends an audit record for `inv` as this request's user; failures are logged,
    /// never shown (for records of what already happened or was refused).
    pub async fn audit(&self, inv: &Invocation, outcome: &str) {
        self.audit_run(inv, outcome, Vec::new(), None).await;
    }

    /// Appends the record that must exist before `inv` takes effect (an action about
    /// to run, a freeze override, an approval vote): `Err` with the reply when it
    /// cannot be written, and then nothing may happen (fail closed).
    pub async fn audit_first(&self, inv: &Invocation, outcome: &str) -> Result<(), Reply> {
        match self
            .backends
            .store
            .append(self.record(inv, outcome, Vec::new(), None))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::error!(error = %e, "an audit record could not be written; nothing runs");
                Err(Reply::message(
                    Outcome::Failed,
                    format!(
                        ":x: I could not write the audit record, so I did nothing: {}.",
                        told(&e)
                    ),
                ))
            }
        }
    }

    /// Like [`Ctx::audit`], for something that ran: its build links and how long it took.
    pub async fn audit_run(
        &self,
        inv: &Invocation,
        outcome: &str,
        links: Vec<String>,
        duration: Option<Duration>,
    ) {
        let record = self.record(inv, outcome, links, duration);
        if let Err(e) = self.backends.store.append(record).await {
            tracing::error!(error = %e, "audit record lost");
        }
    }

    /// The audit record of `inv` by this request's user (and, from a shell, the
    /// operating-system user who typed it).
    fn record(
        &self,
        inv: &Invocation,
        outcome: &str,
        links: Vec<String>,
        duration: Option<Duration>,
    ) -> AuditRecord {
        let mut args = inv.args.clone();
        args.extend(inv.params.iter().map(|(k, v)| format!("{k}={v}")));
        if let Some(approved) = &inv.approval {
            args.push(format!(
                "approval={} approved-by={}",
                approved.id,
                approved.by.join(",")
            ));
        }
        if let Some(pin) = &inv.pin {
            args.push(format!("pinned={}", pin.sha));
        }
        if let Some(shell) = self.shell {
            args.push(format!("via=cli:{shell}"));
        }
        AuditRecord {
            at: self.now(),
            user: self.user.to_owned(),
            command: inv.command.clone(),
            target: inv.target.to_string(),
            env: inv.target.env().map(str::to_owned),
            args: args.join(" "),
            outcome: outcome.to_owned(),
            duration,
            links,
        }
    }
}

/// A pool in a region (defined beside the config's other addresses).
pub use crate::config::PoolAt;

impl Ctx<'_> {
    /// Posts `reply` as a new message in `channel` (an id, or an alias from
    /// `channels:`), through the outbox so it is delivered with retries by whichever
    /// replica is alive. Failures are logged, never shown.
    pub async fn post(&self, channel: &str, reply: &Reply, about: &str) {
        let channel = self
            .config()
            .channels
            .get(channel)
            .cloned()
            .unwrap_or_else(|| channel.to_owned());
        let id = format!("post:{}", uuid::Uuid::new_v4().simple());
        let route = serde_json::json!({
            "to": "channel",
            "channel": channel,
            "thread_ts": null,
            "user": self.user,
        });
        let store = &self.backends.store;
        let written = async {
            let body = serde_json::to_value(reply)
                .map_err(|_| StoreError::Failed("a message could not be serialised".into()))?;
            store
                .open_message(&id, "slack", &route, about, self.now())
                .await?;
            store.put_message(&id, &body, true).await
        }
        .await;
        if let Err(e) = written {
            tracing::error!(error = %e, channel = %channel, about, "a message could not be posted");
        }
    }
}

/// A button to offer: what it says and what it does.
pub struct Offer {
    /// Label.
    pub label: String,
    /// What a click does.
    pub action: ButtonAction,
    /// Visual weight.
    pub style: ButtonStyle,
    /// A native "are you sure?" dialog before the click is sent.
    pub confirm: Option<Confirm>,
}

impl Offer {
    /// A button saying `label` that does `action`.
    pub fn new(label: impl Into<String>, action: ButtonAction, style: ButtonStyle) -> Self {
        Self {
            label: label.into(),
            action,
            style,
            confirm: None,
        }
    }
}

/// The answer when the store did not take what a reply needs (its buttons): nothing
/// can be asked or run without it.
pub(crate) fn store_down(e: &StoreError) -> Reply {
    Reply::message(Outcome::Failed, format!("{}.", told(e)))
}
