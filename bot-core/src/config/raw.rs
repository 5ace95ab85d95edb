//! Raw, position-keeping mirror of the two YAML files, as serde-saphyr reads them.
//!
//! Every value a later check needs to point at is a [`Spanned`]; every mapping whose
//! keys are names is an [`OMap`], which keeps file order and the position of each key.
//! Nothing here is interpolated or validated yet: that is `build.rs`'s job.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_saphyr::Spanned;

/// A value with its position.
pub(crate) type S<T> = Spanned<T>;

/// A YAML mapping kept as an ordered list of (spanned key, value).
pub(crate) struct OMap<V>(pub(crate) Vec<(S<String>, V)>);

impl<V> Default for OMap<V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<V>(PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
            type Value = OMap<V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<S<String>>()? {
                    let value = map.next_value::<V>()?;
                    entries.push((key, value));
                }
                Ok(OMap(entries))
            }
        }

        deserializer.deserialize_map(MapVisitor(PhantomData))
    }
}

/// `commands.yaml`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CommandsFile {
    #[serde(default)]
    pub filler: Vec<S<String>>,
    #[serde(default)]
    pub commands: OMap<RawCommand>,
}

/// One command.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCommand {
    #[serde(default)]
    pub phrases: Vec<S<String>>,
    pub action: S<String>,
    pub target: Option<S<String>>,
    #[serde(default)]
    pub optional: bool,
    #[serde(default)]
    pub args: bool,
    #[serde(default)]
    pub confirm: bool,
    #[serde(default)]
    pub allowed: Vec<S<String>>,
    pub help: Option<S<String>>,
    #[serde(default)]
    pub examples: Vec<S<String>>,
    /// `action: job`.
    pub job: Option<S<String>>,
    /// `action: job`.
    pub parameters: Option<OMap<S<String>>>,
    /// `action: http`.
    pub method: Option<S<String>>,
    /// `action: http`.
    pub url: Option<S<String>>,
    /// `action: http`.
    pub headers: Option<OMap<S<String>>>,
    /// `action: http`.
    pub body: Option<S<String>>,
    /// Four-eyes approval wherever the command runs.
    pub approval: Option<S<RawApproval>>,
    /// `key=value` words a YAML command takes.
    #[serde(default)]
    pub params: Vec<S<String>>,
    /// `freeze: exempt`.
    pub freeze: Option<S<String>>,
}

/// `approval: { from: [group], count: 1, expires: 30m, channel: C… }`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApproval {
    #[serde(default)]
    pub from: Vec<S<String>>,
    pub count: Option<S<u32>>,
    pub expires: Option<S<String>>,
    pub channel: Option<S<String>>,
    pub valid_for: Option<S<String>>,
}

/// `freeze: { windows: [...], override: [group] }`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFreeze {
    #[serde(default)]
    pub windows: Vec<S<String>>,
    #[serde(default, rename = "override")]
    pub overriders: Vec<S<String>>,
}

/// `instances.yaml`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InstancesFile {
    pub settings: Option<RawSettings>,
    pub defaults: Option<RawDefaults>,
    pub jenkins: Option<S<RawJenkins>>,
    #[serde(default)]
    pub groups: OMap<Vec<S<String>>>,
    #[serde(default)]
    pub channels: OMap<S<String>>,
    pub toy: Option<S<RawToy>>,
    #[serde(default)]
    pub environments: OMap<RawEnvironment>,
    /// Freeze windows for every environment.
    pub freeze: Option<S<RawFreeze>>,
    /// Where the commits being deployed come from.
    pub compare: Option<S<RawCompare>>,
    pub monitor: Option<S<RawMonitor>>,
    #[serde(default)]
    pub checks: OMap<S<RawCheck>>,
    /// GitHub deployments for every environment (an environment's own wins).
    pub github: Option<S<RawGithub>>,
    /// Change markers: Grafana annotations and PagerDuty change events.
    pub markers: Option<S<RawMarkers>>,
}

/// `github:`: GitHub deployments and their statuses.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGithub {
    pub url: Option<S<String>>,
    pub repo: Option<S<String>>,
    pub token: Option<S<String>>,
    /// Crossroads environment → GitHub environment name.
    #[serde(default)]
    pub environments: OMap<S<String>>,
    /// Crossroads environment → the URL its deployments show.
    #[serde(default)]
    pub environment_urls: OMap<S<String>>,
}

/// `markers:`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMarkers {
    pub grafana: Option<S<RawGrafana>>,
    pub pagerduty: Option<S<RawPagerDuty>>,
}

/// `markers.grafana:`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGrafana {
    pub url: Option<S<String>>,
    pub token: Option<S<String>>,
    pub dashboard_uid: Option<S<String>>,
}

/// `compare:`: a GitHub- or GitLab-shaped compare endpoint.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCompare {
    #[serde(rename = "type")]
    pub kind: Option<S<String>>,
    pub url: Option<S<String>>,
    pub repo: Option<S<String>>,
    pub token: Option<S<String>>,
}

/// `monitor:`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMonitor {
    pub every: Option<S<String>>,
    pub confirm: Option<S<u32>>,
    pub channel: Option<S<String>>,
    pub timeout: Option<S<String>>,
    pub retention: Option<S<String>>,
    pub pagerduty: Option<S<RawPagerDuty>>,
    #[serde(default)]
    pub webhooks: Vec<S<String>>,
}

/// `monitor.pagerduty:`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPagerDuty {
    pub routing_key: Option<S<String>>,
    pub url: Option<S<String>>,
}

/// One entry of `checks:`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCheck {
    pub url: Option<S<String>>,
    pub status: Option<S<u16>>,
    pub pointer: Option<S<String>>,
    #[serde(default)]
    pub ok: Vec<S<serde_json::Value>>,
    #[serde(default)]
    pub pending: Vec<S<serde_json::Value>>,
    pub group: Option<S<String>>,
}

/// `settings:`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSettings {
    pub probe_timeout: Option<S<String>>,
    pub gate: Option<RawGate>,
    pub lock_lease: Option<S<String>>,
    pub lease: Option<S<String>>,
    pub button_ttl: Option<S<String>>,
    pub status_cache: Option<S<String>>,
    pub retention: Option<S<String>>,
}

/// `settings.gate:`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGate {
    pub consecutive: Option<S<u32>>,
    pub interval: Option<S<String>>,
    pub timeout: Option<S<String>>,
}

/// `defaults:`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDefaults {
    pub health: Option<RawHealth>,
    pub tasks: Option<S<String>>,
}

/// A health recipe; every field optional so instances can override a few.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHealth {
    pub path: Option<S<String>>,
    pub expect_status: Option<S<u16>>,
    pub json: Option<OMap<S<serde_json::Value>>>,
    pub contains: Option<Vec<S<String>>>,
    pub max_latency: Option<S<String>>,
    pub version: Option<S<String>>,
}

/// `jenkins:`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawJenkins {
    pub url: Option<S<String>>,
    pub user: Option<S<String>>,
    pub token: Option<S<String>>,
    pub timeout: Option<S<String>>,
    pub poll_interval: Option<S<String>>,
}

/// `toy:`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawToy {
    pub job: Option<S<String>>,
    pub parameters: Option<OMap<S<String>>>,
    #[serde(default)]
    pub users: OMap<S<String>>,
}

/// One environment.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEnvironment {
    #[serde(default)]
    pub aliases: Vec<S<String>>,
    #[serde(default)]
    pub emoji: Vec<S<String>>,
    #[serde(default)]
    pub protected: bool,
    #[serde(default)]
    pub allowed: Vec<S<String>>,
    #[serde(default)]
    pub pools: OMap<RawPool>,
    /// Four-eyes approval for mutating actions here.
    pub approval: Option<S<RawApproval>>,
    /// Freeze windows for this environment.
    pub freeze: Option<S<RawFreeze>>,
    /// Post-switch watch: how long the new active member is probed.
    pub watch: Option<S<String>>,
    /// Post-switch watch: pause between probes.
    pub watch_every: Option<S<String>>,
    /// Post-switch watch: failed probes in a row that count as unhealthy.
    pub watch_failures: Option<S<u32>>,
    /// Post-switch watch: move traffic back when the new member turns unhealthy.
    pub auto_rollback: Option<S<bool>>,
    /// Regions: each gives the pools' switches and member URLs there.
    #[serde(default)]
    pub regions: OMap<RawRegion>,
    pub rollout: Option<S<RawRollout>>,
    /// Canary deploys for every pool here (a pool's own `canary:` wins).
    pub canary: Option<S<RawCanary>>,
    /// GitHub deployments of this environment (over the global `github:`).
    pub github: Option<S<RawGithub>>,
}

/// `canary:` of a pool or an environment.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCanary {
    pub steps: Option<Vec<S<u32>>>,
    pub pause: Option<S<String>>,
    pub analysis: Option<S<RawAnalysis>>,
}

/// `analysis:` of a canary.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAnalysis {
    pub prometheus: Option<S<String>>,
    pub interval: Option<S<String>>,
    pub failures: Option<S<u32>>,
    pub no_data: Option<S<String>>,
    #[serde(default)]
    pub queries: Vec<S<RawQuery>>,
}

/// One query of a canary's analysis.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawQuery {
    pub name: Option<S<String>>,
    pub query: Option<S<String>>,
    pub max: Option<S<f64>>,
}

/// One region of an environment.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRegion {
    #[serde(default)]
    pub aliases: Vec<S<String>>,
    #[serde(default)]
    pub emoji: Vec<S<String>>,
    /// Extra Jenkins parameters for every job run in this region.
    pub parameters: Option<OMap<S<String>>>,
    #[serde(default)]
    pub pools: OMap<RawRegionPool>,
}

/// A pool as it is in one region: its switch and its members' URLs.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRegionPool {
    pub switch: Option<S<RawSwitch>>,
    #[serde(default)]
    pub members: OMap<RawRegionMember>,
}

/// A member as it is in one region.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRegionMember {
    pub url: Option<S<String>>,
}

/// `rollout:` of an environment with regions.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRollout {
    /// One region after another.
    pub order: Option<Vec<S<String>>>,
    /// This region first, then every other one side by side.
    pub canary: Option<S<String>>,
    /// `halt` or `rollback`.
    pub on_failure: Option<S<String>>,
}

/// One pool.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPool {
    #[serde(default)]
    pub aliases: Vec<S<String>>,
    pub switch: Option<S<RawSwitch>>,
    pub deploy: Option<S<RawAction>>,
    pub restart: Option<S<RawAction>>,
    #[serde(default)]
    pub members: OMap<RawMember>,
    /// Post-switch watch: how long the new active member is probed.
    pub watch: Option<S<String>>,
    /// Post-switch watch: pause between probes.
    pub watch_every: Option<S<String>>,
    /// Post-switch watch: failed probes in a row that count as unhealthy.
    pub watch_failures: Option<S<u32>>,
    /// Post-switch watch: move traffic back when the new member turns unhealthy.
    pub auto_rollback: Option<S<bool>>,
    /// Deploys move traffic step by step.
    pub canary: Option<S<RawCanary>>,
}

/// A traffic switch: the union of every type's fields, checked per type later.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSwitch {
    #[serde(rename = "type")]
    pub kind: Option<S<String>>,
    /// haproxy.
    pub address: Option<S<String>>,
    /// haproxy.
    pub backend: Option<S<String>>,
    /// haproxy: member → server name.
    pub servers: Option<OMap<S<String>>>,
    /// haproxy: `drain` or `maint`.
    pub off_state: Option<S<String>>,
    /// http.
    pub set: Option<S<RawAction>>,
    /// http, jenkins.
    pub get: Option<S<String>>,
    /// http, jenkins.
    pub pointer: Option<S<String>>,
    /// jenkins.
    pub job: Option<S<String>>,
    /// jenkins.
    pub parameters: Option<OMap<S<String>>>,
    /// memory.
    pub initial: Option<S<String>>,
    /// http: the request that shares traffic out by weight (`{weights}`).
    pub weights: Option<S<RawAction>>,
    /// http: JSON pointer to the weights in force, in the `get` answer.
    pub weights_pointer: Option<S<String>>,
}

/// A Jenkins job (`job`, `parameters`) or an HTTP request (`method`, `url`, `headers`, `body`).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAction {
    pub job: Option<S<String>>,
    pub parameters: Option<OMap<S<String>>>,
    pub method: Option<S<String>>,
    pub url: Option<S<String>>,
    pub headers: Option<OMap<S<String>>>,
    pub body: Option<S<String>>,
}

/// One pool member.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMember {
    #[serde(default)]
    pub aliases: Vec<S<String>>,
    #[serde(default)]
    pub emoji: Vec<S<String>>,
    pub url: Option<S<String>>,
    pub health: Option<RawHealth>,
    pub tasks: Option<S<String>>,
    pub restart: Option<S<RawAction>>,
}
