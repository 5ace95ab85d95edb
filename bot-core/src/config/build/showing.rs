//! `github:` (global and per environment) and `markers:` → where deploys show up,
//! every problem reported at its line and column. An empty `url` (an unset
//! `${VAR:-}`) turns the integration off.

use super::super::raw::{InstancesFile, RawGithub, RawGrafana, RawPagerDuty, S};
use super::super::{
    Config, GithubConfig, GrafanaConfig, MarkersConfig, PagerDutyConfig, Secret,
    PAGERDUTY_CHANGE_URL,
};
use super::Builder;

/// A secret written as one variable reference (`${VAR}` or `${VAR:-…}`), never as
/// the secret itself.
fn is_reference(raw: &str) -> bool {
    let t = raw.trim();
    let Some(inner) = t.strip_prefix("${").and_then(|r| r.strip_suffix('}')) else {
        return false;
    };
    // A default would be the secret written in the file; only an empty one (off
    // until set) is allowed.
    let name = inner.strip_suffix(":-").unwrap_or(inner);
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `url` with PagerDuty's change-events path when it has no path of its own.
fn with_change_path(url: String) -> String {
    match url::Url::parse(&url) {
        Ok(u) if u.path() == "/" || u.path().is_empty() => {
            format!("{}/v2/change/enqueue", url.trim_end_matches('/'))
        }
        _ => url,
    }
}

impl Builder<'_> {
    /// Reads `github:` (global, then each environment's) and `markers:`.
    pub(crate) fn showing(&mut self, raw: &InstancesFile, config: &mut Config) {
        let global = raw.github.as_ref().and_then(|g| self.github(g));
        for (name, env) in &raw.environments.0 {
            let env_name = name.value.trim().to_owned();
            let own = env.github.as_ref().map(|g| self.github(g));
            let chosen = match own {
                Some(own) => own,
                None => global.clone(),
            };
            if let Some(g) = chosen {
                config.github.insert(env_name, g);
            }
        }
        if let Some(m) = &raw.markers {
            config.markers = MarkersConfig {
                grafana: m.value.grafana.as_ref().and_then(|g| self.grafana(g)),
                pagerduty: m
                    .value
                    .pagerduty
                    .as_ref()
                    .and_then(|p| self.change_events(p)),
            };
        }
    }

    /// A URL that may be empty (the integration is off): `None` then.
    fn url_or_off(&mut self, raw: &S<String>) -> Option<String> {
        let text = self.try_text(raw)?;
        if text.trim().is_empty() {
            return None;
        }
        Some(self.url(raw))
    }

    /// A token, which must come from a variable.
    fn token(
        &mut self,
        raw: &Option<S<String>>,
        within: &S<impl Sized>,
        what: &str,
        var: &str,
    ) -> Secret {
        match raw {
            Some(t) if !is_reference(&t.value) => {
                self.error(
                    &t.referenced,
                    format!("the `{what}` token is written in the file"),
                    Some(format!(
                        "write `${{{var}}}` and set the variable; never the token itself"
                    )),
                );
                Secret::default()
            }
            Some(t) => Secret::new(self.text(t)),
            None => {
                self.error(
                    &within.referenced,
                    format!("`{what}` has no `token`"),
                    Some(format!("add `token: ${{{var}}}`")),
                );
                Secret::default()
            }
        }
    }

    fn github(&mut self, raw: &S<RawGithub>) -> Option<GithubConfig> {
        let g = &raw.value;
        let Some(url) = &g.url else {
            self.error(
                &raw.referenced,
                "`github` has no `url`",
                Some("add `url: ${GITHUB_API_URL:-https://api.github.com}`".into()),
            );
            return None;
        };
        let url = self.url_or_off(url);
        let repo = match &g.repo {
            Some(r) => {
                let repo = self.text(r);
                let parts: Vec<&str> = repo.split('/').collect();
                if parts.len() != 2 || parts.iter().any(|p| p.trim().is_empty()) {
                    self.error(
                        &r.referenced,
                        format!("`{repo}` is not a repository"),
                        Some("write `owner/name`".into()),
                    );
                }
                repo
            }
            None => {
                self.error(
                    &raw.referenced,
                    "`github` has no `repo`",
                    Some("add `repo: owner/name`".into()),
                );
                String::new()
            }
        };
        let token = self.token(&g.token, raw, "github", "GITHUB_TOKEN");
        let environments = g
            .environments
            .0
            .iter()
            .map(|(k, v)| (k.value.trim().to_owned(), self.text(v)))
            .collect();
        let environment_urls = g
            .environment_urls
            .0
            .iter()
            .map(|(k, v)| (k.value.trim().to_owned(), self.url(v)))
            .collect();
        let pos = self.pos(&raw.referenced);
        if url.is_some()
            && token.expose().is_empty()
            && g.token.as_ref().is_some_and(|t| is_reference(&t.value))
        {
            self.error(
                &raw.referenced,
                "`github` has a `url` but its `token` is empty",
                Some("set the token's variable, or leave the URL empty to turn GitHub deployments off".into()),
            );
        }
        Some(GithubConfig {
            url: url?.trim_end_matches('/').to_owned(),
            repo,
            token,
            environments,
            environment_urls,
            pos,
        })
    }

    fn grafana(&mut self, raw: &S<RawGrafana>) -> Option<GrafanaConfig> {
        let g = &raw.value;
        let Some(url) = &g.url else {
            self.error(
                &raw.referenced,
                "`grafana` has no `url`",
                Some("add `url: ${GRAFANA_URL}`".into()),
            );
            return None;
        };
        let url = self.url_or_off(url);
        let token = self.token(&g.token, raw, "grafana", "GRAFANA_TOKEN");
        if url.is_some()
            && token.expose().is_empty()
            && g.token.as_ref().is_some_and(|t| is_reference(&t.value))
        {
            self.error(
                &raw.referenced,
                "`grafana` has a `url` but its `token` is empty",
                Some(
                    "set the token's variable, or leave the URL empty to turn annotations off"
                        .into(),
                ),
            );
        }
        let dashboard_uid = self
            .opt_text(&g.dashboard_uid)
            .filter(|d| !d.trim().is_empty());
        Some(GrafanaConfig {
            url: url?.trim_end_matches('/').to_owned(),
            token,
            dashboard_uid,
        })
    }

    fn change_events(&mut self, raw: &S<RawPagerDuty>) -> Option<PagerDutyConfig> {
        let p = &raw.value;
        // PagerDuty's events base alone means its change-events endpoint.
        let url = match &p.url {
            Some(u) => with_change_path(self.url_or_off(u)?),
            None => PAGERDUTY_CHANGE_URL.to_owned(),
        };
        let routing_key = match &p.routing_key {
            Some(k) if !is_reference(&k.value) => {
                self.error(
                    &k.referenced,
                    "the PagerDuty routing key is written in the file",
                    Some("write `${PAGERDUTY_CHANGE_ROUTING_KEY}` and set the variable".into()),
                );
                return None;
            }
            Some(k) => self.text(k),
            None => {
                self.error(
                    &raw.referenced,
                    "`pagerduty` has no `routing_key`",
                    Some("add `routing_key: ${PAGERDUTY_CHANGE_ROUTING_KEY}`".into()),
                );
                return None;
            }
        };
        if routing_key.trim().is_empty() {
            if p.url.is_some() {
                self.error(
                    &raw.referenced,
                    "`pagerduty` has a `url` but its `routing_key` is empty",
                    Some("set the routing key's variable, or leave the URL empty to turn change events off".into()),
                );
            }
            return None;
        }
        Some(PagerDutyConfig {
            routing_key: Secret::new(routing_key),
            url,
        })
    }
}
