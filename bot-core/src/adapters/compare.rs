//! [`CompareClient`]: the [`Compare`] port over a compare endpoint in the shape of
//! GitHub's `GET /repos/{owner}/{repo}/compare/{base}...{head}` or GitLab's
//! `GET /projects/{id}/repository/compare?from=&to=`, with the configured token.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use crate::adapters::redact::redact_url;
use crate::adapters::template::url_component;
use crate::config::{CompareConfig, CompareKind};
use crate::ports::{Commit, Compare, CompareError};

/// Per-request limit: the list is a courtesy, never worth holding a deploy up for.
const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Deserialize)]
struct GithubCompare {
    commits: Vec<GithubCommit>,
}

#[derive(Deserialize)]
struct GithubCommit {
    sha: String,
    commit: GithubCommitDetail,
}

#[derive(Deserialize)]
struct GithubCommitDetail {
    message: String,
    author: Option<GithubAuthor>,
    #[serde(default)]
    committer: Option<GithubAuthor>,
}

#[derive(Deserialize)]
struct GithubAuthor {
    #[serde(default)]
    name: String,
    #[serde(default)]
    date: Option<String>,
}

#[derive(Deserialize)]
struct GitlabCompare {
    commits: Vec<GitlabCommit>,
}

#[derive(Deserialize)]
struct GitlabCommit {
    id: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    author_name: Option<String>,
    #[serde(default)]
    committed_date: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
}

/// An ISO 8601 time from outside; `None` when unreadable (never an error: the
/// commit is listed all the same).
fn when(text: Option<&str>) -> Option<std::time::SystemTime> {
    let ts: jiff::Timestamp = text?.trim().parse().ok()?;
    // Only times a run can save (after 1970, before 2200): anything else is noise.
    let secs = ts.as_second();
    (0..7_258_118_400)
        .contains(&secs)
        .then(|| std::time::SystemTime::from(ts))
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().trim().to_owned()
}

/// The URL asked for the commits between `base` and `head`.
pub fn compare_url(config: &CompareConfig, base: &str, head: &str) -> String {
    let api = config.url.trim_end_matches('/');
    match config.kind {
        CompareKind::Github => format!(
            "{api}/repos/{}/compare/{}...{}",
            config.repo,
            url_component(base),
            url_component(head)
        ),
        CompareKind::Gitlab => format!(
            "{api}/projects/{}/repository/compare?from={}&to={}",
            url_component(&config.repo),
            url_component(base),
            url_component(head)
        ),
    }
}

/// A compare endpoint as configured by `compare:` in `instances.yaml`.
pub struct CompareClient {
    config: CompareConfig,
    http: Option<reqwest::Client>,
}

impl CompareClient {
    /// A client for `config`.
    pub fn new(config: CompareConfig) -> Self {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("crossroads/", env!("CARGO_PKG_VERSION")))
            .build()
            .ok();
        Self { config, http }
    }
}

#[async_trait]
impl Compare for CompareClient {
    async fn compare(&self, base: &str, head: &str) -> Result<Vec<Commit>, CompareError> {
        let Some(http) = &self.http else {
            return Err(CompareError::Unreachable(redact_url(&self.config.url)));
        };
        fetch(http, &self.config, base, head).await
    }

    fn source(&self) -> String {
        match self.config.kind {
            CompareKind::Github => "GitHub compare".to_owned(),
            CompareKind::Gitlab => "GitLab compare".to_owned(),
        }
    }
}

/// The commits between `base` (live) and `head` (to deploy), oldest first, as the
/// endpoint lists them.
async fn fetch(
    http: &reqwest::Client,
    config: &CompareConfig,
    base: &str,
    head: &str,
) -> Result<Vec<Commit>, CompareError> {
    let url = compare_url(config, base, head);
    let token = config.token.expose();
    let req = match config.kind {
        CompareKind::Github => http
            .get(&url)
            .header("accept", "application/vnd.github+json")
            .bearer_auth(token),
        CompareKind::Gitlab => http.get(&url).header("private-token", token),
    };
    let resp = req
        .send()
        .await
        .map_err(|_| CompareError::Unreachable(redact_url(&config.url)))?;
    match resp.status().as_u16() {
        200 => {}
        s @ (401 | 403) => return Err(CompareError::Refused(s)),
        404 => {
            return Err(CompareError::Unknown {
                repo: config.repo.clone(),
                base: base.to_owned(),
                head: head.to_owned(),
            })
        }
        s => return Err(CompareError::Status(s)),
    }
    let body = resp.text().await.map_err(|_| CompareError::Unreadable)?;
    match config.kind {
        CompareKind::Github => {
            let v: GithubCompare =
                serde_json::from_str(&body).map_err(|_| CompareError::Unreadable)?;
            Ok(v.commits
                .into_iter()
                .map(|c| Commit {
                    sha: c.sha,
                    time: when(
                        c.commit
                            .committer
                            .as_ref()
                            .and_then(|a| a.date.as_deref())
                            .or_else(|| c.commit.author.as_ref().and_then(|a| a.date.as_deref())),
                    ),
                    author: c.commit.author.map(|a| a.name).unwrap_or_default(),
                    title: first_line(&c.commit.message),
                })
                .collect())
        }
        CompareKind::Gitlab => {
            let v: GitlabCompare =
                serde_json::from_str(&body).map_err(|_| CompareError::Unreadable)?;
            Ok(v.commits
                .into_iter()
                .map(|c| Commit {
                    title: c
                        .title
                        .or_else(|| c.message.as_deref().map(first_line))
                        .unwrap_or_default(),
                    sha: c.id,
                    time: when(c.committed_date.as_deref().or(c.created_at.as_deref())),
                    author: c.author_name.unwrap_or_default(),
                })
                .collect())
        }
    }
}
