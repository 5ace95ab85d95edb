//! `monitor:` and `checks:` → [`MonitorConfig`] and [`CheckSpec`]s, with every problem
//! reported at its line and column.

use std::time::Duration;

use super::super::raw::{InstancesFile, RawCheck, RawMonitor, S};
use super::super::{
    CheckSpec, Config, MonitorConfig, PagerDutyConfig, Secret, PAGERDUTY_EVENTS_URL,
};
use super::Builder;

/// Defaults of `monitor:`.
const EVERY: Duration = Duration::from_secs(30);
const CONFIRM: u32 = 3;
const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// A value of an `ok:` / `pending:` list as text (`success`, `1`, `true`).
fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Builder<'_> {
    /// Reads `monitor:` and `checks:` (after `channels:` and `settings:`).
    pub(crate) fn monitor_and_checks(&mut self, raw: &InstancesFile, config: &mut Config) {
        if let Some(m) = &raw.monitor {
            config.monitor = self.monitor(m, config);
        }
        for (name, check) in &raw.checks.0 {
            if let Some(c) = self.check(name, check) {
                config.checks.push(c);
            }
        }
        if raw.monitor.is_none() {
            if let Some((name, _)) = raw.checks.0.first() {
                self.error(
                    &name.referenced,
                    "`checks` are probed only by the monitor, and there is no `monitor` section",
                    Some("add `monitor:` with `every`, `confirm` and `channel`".into()),
                );
            }
        }
    }

    fn monitor(&mut self, raw: &S<RawMonitor>, config: &Config) -> Option<MonitorConfig> {
        let m = &raw.value;
        let every = self.duration(&m.every, EVERY);
        if let Some(e) = &m.every {
            if every.is_zero() {
                self.error(
                    &e.referenced,
                    "`every` must be longer than zero",
                    Some("write an interval such as `10s`".into()),
                );
            }
        }
        let confirm = match &m.confirm {
            Some(c) if c.value == 0 => {
                self.error(
                    &c.referenced,
                    "`confirm` must be at least 1",
                    Some("how many probes in a row must agree before a change counts".into()),
                );
                CONFIRM
            }
            Some(c) => c.value,
            None => CONFIRM,
        };
        let channel = match &m.channel {
            Some(c) => self.channel(c, config),
            None => {
                self.error(
                    &raw.referenced,
                    "`monitor` has no `channel`",
                    Some(
                        "add `channel:` with an alias from `channels:` or a channel id (C…)".into(),
                    ),
                );
                String::new()
            }
        };
        let timeout = self.duration(&m.timeout, config.settings.probe_timeout);
        let retention = self.duration(&m.retention, RETENTION);
        let pagerduty = m.pagerduty.as_ref().map(|pd| {
            let routing_key = match &pd.value.routing_key {
                Some(k) => Secret::new(self.text(k)),
                None => {
                    self.error(
                        &pd.referenced,
                        "`pagerduty` has no `routing_key`",
                        Some("add `routing_key: ${PAGERDUTY_ROUTING_KEY}`".into()),
                    );
                    Secret::default()
                }
            };
            let url = match &pd.value.url {
                Some(u) => self.url(u),
                None => PAGERDUTY_EVENTS_URL.to_owned(),
            };
            PagerDutyConfig { routing_key, url }
        });
        let webhooks = m.webhooks.iter().map(|w| self.url(w)).collect();
        Some(MonitorConfig {
            every,
            confirm,
            channel,
            timeout,
            retention,
            pagerduty,
            webhooks,
            pos: self.pos(&raw.referenced),
        })
    }

    /// An alias of `channels:`, or a channel id.
    fn channel(&mut self, raw: &S<String>, config: &Config) -> String {
        let Some(value) = self.try_text(raw) else {
            return String::new();
        };
        let value = value.trim().to_owned();
        if let Some(id) = config.channels.get(&value) {
            return id.clone();
        }
        let is_id = value.len() > 1
            && value.starts_with(['C', 'G'])
            && value
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if !is_id {
            let known: Vec<&str> = config.channels.keys().map(String::as_str).collect();
            let hint = if known.is_empty() {
                "give a channel id (C…), or define an alias under `channels:`".to_owned()
            } else {
                format!(
                    "{}, or give a channel id (C…)",
                    super::suggest(&value, &known)
                )
            };
            self.error(
                &raw.referenced,
                format!("unknown channel `{value}`"),
                Some(hint),
            );
        }
        value
    }

    fn check(&mut self, name: &S<String>, raw: &S<RawCheck>) -> Option<CheckSpec> {
        let c = &raw.value;
        let url = match &c.url {
            Some(u) => self.url(u),
            None => {
                self.error(
                    &raw.referenced,
                    format!("check `{}` has no `url`", name.value),
                    Some("add `url: http://…`".into()),
                );
                return None;
            }
        };
        let status = match &c.status {
            Some(s) if !(100..=599).contains(&s.value) => {
                self.error(
                    &s.referenced,
                    format!("`{}` is not an HTTP status", s.value),
                    Some("use a status between 100 and 599, e.g. 200".into()),
                );
                200
            }
            Some(s) => s.value,
            None => 200,
        };
        let pointer = c.pointer.as_ref().map(|p| self.pointer(p));
        let ok: Vec<String> = c.ok.iter().map(|v| value_text(&v.value)).collect();
        let pending: Vec<String> = c.pending.iter().map(|v| value_text(&v.value)).collect();
        if pointer.is_some() && ok.is_empty() {
            self.error(
                &raw.referenced,
                format!(
                    "check `{}` reads `pointer` but lists no `ok` values",
                    name.value
                ),
                Some("add `ok: [success]` (and `pending: [running]` if it has such states)".into()),
            );
        }
        if pointer.is_none() {
            if let Some(v) = c.ok.first().or(c.pending.first()) {
                self.error(
                    &v.referenced,
                    "`ok` and `pending` are values of the field `pointer` names",
                    Some("add `pointer: /status` (a JSON pointer into the answer)".into()),
                );
            }
        }
        let group = self
            .opt_text(&c.group)
            .unwrap_or_else(|| "checks".to_owned());
        Some(CheckSpec {
            name: name.value.clone(),
            url,
            status,
            pointer,
            ok,
            pending,
            group,
            pos: self.pos(&name.referenced),
        })
    }
}
