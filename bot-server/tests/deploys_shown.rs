//! Where deploys show up, through `crossroads serve`: every deploy and rollback is a
//! GitHub deployment whose statuses follow the run, a Grafana annotation and a
//! PagerDuty change event. The stand-ins speak GitHub's REST deployments API,
//! Grafana's annotations API and PagerDuty's Change Events API, and record what
//! they receive. A GitHub that answers 500 never fails a deploy: its statuses arrive
//! once it is back.

use crate::common;

use std::time::{Duration, Instant};

use common::serve::{config_dir, message_text, Serve, Served};
use common::staging::{Staging, DEPLOYER};
use crossroads_sim::github::{Deployment, SimGithub};
use crossroads_sim::grafana::SimGrafana;
use crossroads_sim::pagerduty::PagerDutyStandIn;
use crossroads_sim::slack::{SlackSetup, SlackStandIn};

const GITHUB_TOKEN: &str = "ghs-process-token";
const GRAFANA_TOKEN: &str = "glsa-process-token";
const ROUTING_KEY: &str = "R0UTINGKEY0000000000000000000000";

/// Where the deploys show up, from the variables the test sets.
const SHOWN: &str = r#"
github:
  url: ${GITHUB_API_URL}
  repo: acme/app
  token: ${GITHUB_TOKEN}
  environments: { staging: stage }
  environment_urls: { staging: "http://127.0.0.1:18000/staging" }
markers:
  grafana: { url: "${GRAFANA_URL}", token: "${GRAFANA_TOKEN}", dashboard_uid: deploys }
  pagerduty: { url: "${PAGERDUTY_CHANGE_URL}", routing_key: "${PAGERDUTY_CHANGE_ROUTING_KEY}" }
"#;

struct World {
    staging: Staging,
    slack: SlackStandIn,
    github: SimGithub,
    grafana: SimGrafana,
    pagerduty: PagerDutyStandIn,
    _state: tempfile::TempDir,
    _dir: tempfile::TempDir,
    served: Served,
}

impl World {
    async fn start(result: &str) -> World {
        let staging = Staging::start(result).await;
        let slack =
            SlackStandIn::start_with(SlackSetup::new().wait_timeout(Duration::from_secs(30)))
                .await
                .expect("slack");
        let github = SimGithub::start().await.expect("github");
        let grafana = SimGrafana::start().await.expect("grafana");
        let pagerduty = PagerDutyStandIn::start().await.expect("pagerduty");
        let dir = config_dir(&staging.instances("", SHOWN));
        let state = tempfile::tempdir().expect("state");
        let mut serve = Serve::on_sqlite(dir.path(), state.path(), slack.api_url());
        serve.extra_env = vec![
            ("GITHUB_API_URL".into(), github.url()),
            ("GITHUB_TOKEN".into(), GITHUB_TOKEN.into()),
            ("GRAFANA_URL".into(), grafana.url()),
            ("GRAFANA_TOKEN".into(), GRAFANA_TOKEN.into()),
            ("PAGERDUTY_CHANGE_URL".into(), pagerduty.change_url()),
            ("PAGERDUTY_CHANGE_ROUTING_KEY".into(), ROUTING_KEY.into()),
        ];
        let served = serve.start(state.path()).await;
        World {
            staging,
            slack,
            github,
            grafana,
            pagerduty,
            _state: state,
            _dir: dir,
            served,
        }
    }

    async fn say(&self, channel: &str, text: &str) {
        let event = self.slack.message_event(channel, DEPLOYER, text);
        assert_eq!(self.served.event(&event).await, 200, "{text}");
    }

    /// The bot's message in `channel`, once it says `end`.
    async fn ends(&self, channel: &str, end: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let said = self
                .slack
                .messages()
                .into_iter()
                .filter(|m| m.channel == channel)
                .map(|m| message_text(&m.message))
                .find(|t| t.contains(end));
            if let Some(text) = said {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "the message in {channel} never said {end:?}: {:?}\n{}",
                self.slack
                    .messages()
                    .iter()
                    .map(|m| message_text(&m.message))
                    .collect::<Vec<_>>(),
                self.served.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The deployment numbered `n` (from 1) once it has `states` statuses.
    async fn deployment(&self, n: usize, states: usize) -> Deployment {
        let all = self.github.wait_for_deployments(n).await;
        let Some(d) = all.get(n - 1) else {
            panic!(
                "GitHub got {} deployment(s), not {n}\n{}",
                all.len(),
                self.served.log()
            );
        };
        self.github.wait_for_statuses(d.id, states).await;
        self.github
            .deployments()
            .into_iter()
            .find(|x| x.id == d.id)
            .expect("the deployment")
    }

    /// The first build's page.
    fn build_url(&self) -> String {
        self.staging.build_url(1)
    }
}

fn states(d: &Deployment) -> Vec<String> {
    d.statuses.iter().map(|s| s.state.clone()).collect()
}

#[tokio::test]
async fn a_deploy_is_a_github_deployment_an_annotation_and_a_change_event() {
    let w = World::start("SUCCESS").await;
    w.say("D0SHOWN", "deploy staging api").await;
    w.ends("D0SHOWN", "Deployed").await;

    let d = w.deployment(1, 2).await;
    assert_eq!(d.repo, "acme/app");
    assert_eq!(d.git_ref, "main", "the ref deployed");
    assert_eq!(d.environment, "stage", "the GitHub name of staging");
    assert_eq!(d.task, "deploy");
    assert_eq!(d.auto_merge, Some(false));
    assert_eq!(d.required_contexts, Some(vec![]));
    assert_eq!(d.token, GITHUB_TOKEN);
    assert_eq!(d.payload["pool"], "api");
    assert_eq!(d.payload["member"], "green");
    assert_eq!(d.payload["requester"], DEPLOYER);
    assert_eq!(states(&d), ["in_progress", "success"], "in that order");
    let success = &d.statuses[1];
    assert_eq!(
        success.log_url.as_deref(),
        Some(w.build_url().as_str()),
        "the status links the build"
    );
    assert_eq!(
        success.environment_url.as_deref(),
        Some("http://127.0.0.1:18000/staging")
    );

    let notes = w.grafana.wait_for_annotations(1).await;
    assert_eq!(notes.len(), 1, "one annotation per deploy: {notes:?}");
    let note = &notes[0];
    assert_eq!(note.tags, ["crossroads", "staging", "api", "success"]);
    assert!(
        note.text.contains("Deployed main to staging")
            && note.text.contains("blue → green")
            && note.text.contains(DEPLOYER)
            && note.text.contains(&w.build_url()),
        "what, who and the build: {}",
        note.text
    );
    assert!(note.time_end.is_some_and(|end| end >= note.time));
    assert_eq!(note.token, GRAFANA_TOKEN);
    assert_eq!(note.dashboard_uid.as_deref(), Some("deploys"));

    let changes = w.pagerduty.wait_for_change_events(1).await;
    assert_eq!(changes.len(), 1, "one change event per deploy");
    assert_eq!(changes[0].routing_key, ROUTING_KEY);
    assert!(
        changes[0].summary.starts_with("Deployed main to staging"),
        "{}",
        changes[0].summary
    );
    assert!(
        changes[0]
            .links
            .iter()
            .any(|(href, _)| *href == w.build_url()),
        "the change event links the build: {:?}",
        changes[0].links
    );
    let log = w.served.log();
    for secret in [GITHUB_TOKEN, GRAFANA_TOKEN, ROUTING_KEY] {
        assert!(!log.contains(secret), "a secret in the log");
    }

    // Rolled back: the deployment is no longer live, and the rollback is marked.
    w.say("D0BACK", "rollback staging").await;
    w.ends("D0BACK", "Rolled back").await;
    let d = w.deployment(1, 3).await;
    assert_eq!(states(&d), ["in_progress", "success", "inactive"]);
    assert_eq!(w.staging.live().as_deref(), Some("blue"));
    let notes = w.grafana.wait_for_annotations(2).await;
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert_eq!(
        notes[1].tags,
        ["crossroads", "staging", "api", "rolled-back"]
    );
    let changes = w.pagerduty.wait_for_change_events(2).await;
    assert_eq!(changes.len(), 2, "one change event per rollback");
    assert!(
        changes[1].summary.starts_with("Rolled back staging"),
        "{}",
        changes[1].summary
    );
}

#[tokio::test]
async fn a_failed_build_is_a_failed_deployment() {
    let w = World::start("FAILURE").await;
    w.say("D0FAIL", "deploy staging api").await;
    w.ends("D0FAIL", "failed").await;
    let d = w.deployment(1, 2).await;
    assert_eq!(states(&d), ["in_progress", "failure"]);
    assert_eq!(
        d.statuses[1].log_url.as_deref(),
        Some(w.build_url().as_str())
    );
    let notes = w.grafana.wait_for_annotations(1).await;
    assert_eq!(notes[0].tags, ["crossroads", "staging", "api", "failure"]);
    assert_eq!(w.staging.live().as_deref(), Some("blue"));
}

#[tokio::test]
async fn a_github_answering_500_never_fails_the_deploy_and_hears_later() {
    let w = World::start("SUCCESS").await;
    w.github.fail_all(true);
    w.say("D0DOWN", "deploy staging api").await;
    let text = w.ends("D0DOWN", "Deployed").await;
    assert!(text.contains("api: blue → *green*"), "{text}");
    assert_eq!(w.staging.live().as_deref(), Some("green"));
    assert!(w.github.deployments().is_empty());
    assert!(
        w.github.requests() > 0,
        "GitHub was asked while it was down"
    );
    // Said in the deploy's thread, once.
    let noted = w.ends("D0DOWN", "GitHub did not take").await;
    assert!(noted.contains("The deploy is not affected"), "{noted}");
    let all = w.slack.messages();
    let deploy = all
        .iter()
        .find(|m| message_text(&m.message).contains("Deployed"))
        .expect("the deploy's message");
    let note = all
        .iter()
        .find(|m| message_text(&m.message).contains("GitHub did not take"))
        .expect("the note");
    assert_eq!(
        note.message.get("thread_ts").and_then(|t| t.as_str()),
        Some(deploy.ts.as_str()),
        "in the deploy's thread"
    );
    // More refusals come (the create is retried about every second): still one note.
    let seen = w.github.requests();
    let deadline = Instant::now() + Duration::from_secs(20);
    while w.github.requests() < seen + 2 {
        assert!(Instant::now() < deadline, "GitHub was not asked again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        w.slack
            .messages()
            .iter()
            .filter(|m| message_text(&m.message).contains("GitHub did not take"))
            .count(),
        1,
        "noted once, whatever the retries"
    );
    w.github.fail_all(false);
    let d = w.deployment(1, 2).await;
    assert_eq!(
        states(&d),
        ["in_progress", "success"],
        "the statuses arrive once GitHub is back, in order"
    );
    assert_eq!(w.github.deployments().len(), 1, "created once");
}
