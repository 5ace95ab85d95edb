//! The demo's GitHub, Grafana and PagerDuty change-event stand-ins: started on the
//! loopback ports the config names (by default the demo's own), so that a deploy in
//! the demo is a GitHub deployment, an annotation and a change event, and the
//! console's `demo` command shows what each received.

use crossroads_sim::github::SimGithub;
use crossroads_sim::grafana::SimGrafana;
use crossroads_sim::pagerduty::PagerDutyStandIn;

use bot_core::config::Config;

use super::{in_use, port_of};

/// What the demo fills in when a variable of the shipped `github:` and `markers:`
/// is unset or empty: its own stand-ins and made-up tokens.
const DEFAULTS: [(&str, &str); 6] = [
    ("CROSSROADS_GITHUB_URL", "http://127.0.0.1:18093"),
    ("CROSSROADS_GITHUB_TOKEN", "demo-github-token"),
    ("GRAFANA_URL", "http://127.0.0.1:18094"),
    ("GRAFANA_TOKEN", "demo-grafana-token"),
    ("PAGERDUTY_CHANGE_URL", "http://127.0.0.1:18096"),
    (
        "PAGERDUTY_CHANGE_ROUTING_KEY",
        "demo0routing0key0000000000000000",
    ),
];

/// The demo's value of variable `name` when it has none.
pub(super) fn default(name: &str) -> Option<String> {
    DEFAULTS
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| (*v).to_owned())
}

/// The stand-ins running.
#[derive(Default)]
pub(super) struct Shown {
    github: Option<SimGithub>,
    grafana: Option<SimGrafana>,
    pagerduty: Option<PagerDutyStandIn>,
}

/// The loopback port of `url`, or `None` for an address elsewhere (a real service
/// the user pointed the demo at: nothing is simulated for it).
fn local_port(url: &str) -> Option<u16> {
    port_of(url).ok()
}

impl Shown {
    /// Starts a stand-in for each of `config`'s GitHub, Grafana and PagerDuty change
    /// events that is on loopback.
    pub(super) async fn start(config: &Config) -> anyhow::Result<Shown> {
        let mut shown = Shown::default();
        if let Some(port) = config.github.values().find_map(|g| local_port(&g.url)) {
            shown.github = Some(
                SimGithub::start_on(port)
                    .await
                    .map_err(|e| in_use("GitHub", port, e))?,
            );
        }
        if let Some(port) = config
            .markers
            .grafana
            .as_ref()
            .and_then(|g| local_port(&g.url))
        {
            shown.grafana = Some(
                SimGrafana::start_on(port)
                    .await
                    .map_err(|e| in_use("Grafana", port, e))?,
            );
        }
        if let Some(port) = config
            .markers
            .pagerduty
            .as_ref()
            .and_then(|p| local_port(&p.url))
        {
            shown.pagerduty = Some(
                PagerDutyStandIn::start_on(port)
                    .await
                    .map_err(|e| in_use("PagerDuty", port, e))?,
            );
        }
        Ok(shown)
    }

    /// The banner's line: where deploys show up in the demo.
    pub(super) fn banner(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(g) = &self.github {
            parts.push(format!("GitHub deployments ({})", g.url()));
        }
        if let Some(g) = &self.grafana {
            parts.push(format!("Grafana annotations ({})", g.url()));
        }
        if let Some(p) = &self.pagerduty {
            parts.push(format!("PagerDuty change events ({})", p.change_url()));
        }
        if parts.is_empty() {
            return None;
        }
        Some(format!(
            "  Every deploy and rollback shows up in the demo's stand-ins: {}; `demo` lists what they received.",
            parts.join(", ")
        ))
    }

    /// What the stand-ins received, a line each, newest last.
    pub(super) fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(g) = &self.github {
            for d in g.deployments() {
                let states: Vec<&str> = d.statuses.iter().map(|s| s.state.as_str()).collect();
                lines.push(format!(
                    "  GitHub: deployment #{} of {} to {} ({}): {}",
                    d.id,
                    d.git_ref,
                    d.environment,
                    d.task,
                    if states.is_empty() {
                        "no status yet".to_owned()
                    } else {
                        states.join(" → ")
                    }
                ));
            }
        }
        if let Some(g) = &self.grafana {
            for a in g.annotations() {
                lines.push(format!(
                    "  Grafana: annotation [{}] {}",
                    a.tags.join(", "),
                    a.text.lines().next().unwrap_or_default()
                ));
            }
        }
        if let Some(p) = &self.pagerduty {
            for c in p.change_events() {
                lines.push(format!("  PagerDuty: change event \"{}\"", c.summary));
            }
        }
        lines
    }

    /// Stops them.
    pub(super) async fn shutdown(&mut self) {
        if let Some(g) = self.github.take() {
            g.stop_listening().await;
        }
        if let Some(g) = self.grafana.take() {
            g.stop_listening().await;
        }
        if let Some(p) = self.pagerduty.take() {
            p.stop_listening().await;
        }
    }
}
