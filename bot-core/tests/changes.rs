//! What is being deployed: the confirmation and the progress message of a deploy list
//! the commits between the live version and the ref — from a GitHub- or
//! GitLab-shaped compare endpoint (the stand-in speaks both) with a token from
//! `${VAR}`, or from the Jenkins build's change set once built — newest first, capped
//! with "and N more"; and say plainly when neither is available.

use crate::common;

use bot_core::{Bot, Outcome};
use common::{click, load, quick, say};
use crossroads_sim::instance::SimInstance;
use crossroads_sim::jenkins::{JenkinsSetup, SimJenkins};
use crossroads_sim::{CompareStandIn, GitCommit};

const USER: &str = "U0DEPLOYER";
const TOKEN: &str = "ghp_s3cret";

fn instances(compare: &str, jenkins: bool) -> String {
    let jenkins = if jenkins {
        "jenkins:\n  url: ${JENKINS_URL}\n  user: crossroads\n  token: t0ken\n  poll_interval: 50ms\n"
    } else {
        ""
    };
    format!(
        r#"
settings:
  probe_timeout: 1s
  gate: {{ consecutive: 1, interval: 50ms, timeout: 5s }}
{jenkins}{compare}
groups:
  deployers: [U0DEPLOYER]
environments:
  master:
    protected: true
    pools:
      api:
        switch: {{ type: memory, initial: blue }}
        deploy:
          job: platform/deploy-api
          parameters: {{ COLOUR: "{{colour}}", REF: "{{ref}}" }}
        members:
          blue: {{ url: "${{BLUE_URL}}", health: {{ version: /version }} }}
          green: {{ url: "${{GREEN_URL}}", health: {{ version: /version }} }}
"#
    )
}

/// Seven commits, oldest first: "Commit 1" … "Commit 7".
fn seven() -> Vec<GitCommit> {
    (1..=7)
        .map(|i| {
            GitCommit::new(
                &format!(
                    "{i}{}",
                    "abcdef0123456789abcdef0123456789abcdef0"
                        .get(..39)
                        .unwrap_or_default()
                ),
                if i % 2 == 0 {
                    "Grace Hopper"
                } else {
                    "Ada Lovelace"
                },
                &format!("Commit {i}\n\nDetails nobody reads."),
            )
        })
        .collect()
}

struct Rig {
    bot: Bot,
    _sims: (SimInstance, SimInstance),
    _jenkins: SimJenkins,
}

async fn rig(
    compare: &str,
    vars: &[(&str, String)],
    job: crossroads_sim::jenkins::JobSetup,
) -> Rig {
    let blue = SimInstance::start("blue", "1.0.0").await.expect("blue");
    let green = SimInstance::start("green", "0.9.0").await.expect("green");
    let jenkins =
        SimJenkins::start(JenkinsSetup::new("crossroads", "t0ken").job("platform/deploy-api", job))
            .await
            .expect("jenkins");
    let mut all = vec![
        ("JENKINS_URL", jenkins.url()),
        ("BLUE_URL", blue.url()),
        ("GREEN_URL", green.url()),
    ];
    all.extend(vars.iter().cloned());
    let bot = Bot::builder(load(&instances(compare, true), &all)).build();
    Rig {
        bot,
        _sims: (blue, green),
        _jenkins: jenkins,
    }
}

fn assert_listed(text: &str, source: &str) {
    assert!(
        text.contains(&format!("*Changes* (7, newest first, from {source}):")),
        "{text}"
    );
    let c7 = text
        .find("• `7abcdef` Commit 7 — Ada Lovelace")
        .unwrap_or_else(|| panic!("{text}"));
    let c3 = text
        .find("• `3abcdef` Commit 3 — Ada Lovelace")
        .unwrap_or_else(|| panic!("{text}"));
    assert!(c7 < c3, "newest first: {text}");
    assert!(
        text.contains("• `6abcdef` Commit 6 — Grace Hopper"),
        "{text}"
    );
    assert!(!text.contains("Commit 2"), "capped at five: {text}");
    assert!(text.contains("…and 2 more"), "{text}");
    assert!(
        !text.contains("Details nobody reads"),
        "first lines only: {text}"
    );
}

#[tokio::test]
async fn github_compare_lists_the_commits_in_the_confirmation_and_the_progress() {
    let cmp = CompareStandIn::start(TOKEN).await.expect("compare");
    cmp.set_commits("acme/api", "1.0.0", "release-7", seven());
    let compare = "compare:\n  type: github\n  url: ${GITHUB_API_URL}\n  repo: acme/api\n  token: ${GITHUB_TOKEN}\n";
    let rig = rig(
        compare,
        &[
            ("GITHUB_API_URL", cmp.url()),
            ("GITHUB_TOKEN", TOKEN.into()),
        ],
        quick(),
    )
    .await;
    let ask = say(&rig.bot, USER, "deploy master release-7").await;
    assert_eq!(ask.outcome, Outcome::Confirm, "{}", ask.to_plain_text());
    assert_listed(&ask.to_plain_text(), "GitHub compare `1.0.0...release-7`");
    let asked = &cmp.requests()[0];
    assert_eq!(asked.path, "/repos/acme/api/compare/1.0.0...release-7");
    assert_eq!(
        asked.headers.get("authorization").map(String::as_str),
        Some("Bearer ghp_s3cret"),
        "the token from ${{GITHUB_TOKEN}}"
    );
    let done = click(&rig.bot, USER, &ask, "Yes").await;
    assert_eq!(done.outcome, Outcome::Done, "{}", done.to_plain_text());
    assert_listed(&done.to_plain_text(), "GitHub compare `1.0.0...release-7`");
}

#[tokio::test]
async fn gitlab_compare_lists_the_commits_too() {
    let cmp = CompareStandIn::start(TOKEN).await.expect("compare");
    cmp.set_commits("platform/api", "1.0.0", "release-7", seven());
    let compare = "compare:\n  type: gitlab\n  url: ${GITLAB_API_URL}\n  repo: platform/api\n  token: ${GITLAB_TOKEN}\n";
    let rig = rig(
        compare,
        &[
            ("GITLAB_API_URL", cmp.gitlab_api_url()),
            ("GITLAB_TOKEN", TOKEN.into()),
        ],
        quick(),
    )
    .await;
    let ask = say(&rig.bot, USER, "deploy master release-7").await;
    assert_listed(&ask.to_plain_text(), "GitLab compare `1.0.0...release-7`");
    let asked = &cmp.requests()[0];
    assert_eq!(
        asked.path,
        "/api/v4/projects/platform%2Fapi/repository/compare?from=1.0.0&to=release-7"
    );
    assert_eq!(
        asked.headers.get("private-token").map(String::as_str),
        Some(TOKEN)
    );
    let done = click(&rig.bot, USER, &ask, "Yes").await;
    assert_listed(&done.to_plain_text(), "GitLab compare `1.0.0...release-7`");
}

#[tokio::test]
async fn without_a_compare_endpoint_the_jenkins_change_set_is_listed_once_built() {
    let changes: Vec<(String, String, String)> = seven()
        .into_iter()
        .map(|c| (c.author_name, c.sha, c.message))
        .collect();
    for job in [
        quick().changes(changes.clone()),
        quick().changes(changes.clone()).pipeline(),
    ] {
        let rig = rig("", &[], job).await;
        let ask = say(&rig.bot, USER, "deploy master release-7").await;
        let text = ask.to_plain_text();
        assert!(
            text.contains("*Changes:* listed once Jenkins has built it (no compare endpoint is configured (`compare:` in instances.yaml))."),
            "{text}"
        );
        let done = click(&rig.bot, USER, &ask, "Yes").await;
        assert_eq!(done.outcome, Outcome::Done, "{}", done.to_plain_text());
        assert_listed(&done.to_plain_text(), "the change set of Jenkins build #1");
    }
}

#[tokio::test]
async fn when_neither_is_available_the_reply_says_so_plainly() {
    let blue = SimInstance::start("blue", "1.0.0").await.expect("blue");
    let green = SimInstance::start("green", "0.9.0").await.expect("green");
    let bot = Bot::builder(load(
        &instances("", false),
        &[("BLUE_URL", blue.url()), ("GREEN_URL", green.url())],
    ))
    .build();
    let ask = say(&bot, USER, "deploy master").await;
    assert!(
        ask.to_plain_text().contains(
            "*Changes:* not available — no compare endpoint is configured (`compare:` in instances.yaml), and there is no Jenkins build to read a change set from."
        ),
        "{}",
        ask.to_plain_text()
    );

    // A compare endpoint that refuses the token: said so, without the token, and
    // Jenkins' change set is used once built.
    let cmp = CompareStandIn::start("another-token")
        .await
        .expect("compare");
    let compare = "compare:\n  type: github\n  url: ${GITHUB_API_URL}\n  repo: acme/api\n  token: ${GITHUB_TOKEN}\n";
    let rig = rig(
        compare,
        &[
            ("GITHUB_API_URL", cmp.url()),
            ("GITHUB_TOKEN", TOKEN.into()),
        ],
        quick(),
    )
    .await;
    let ask = say(&rig.bot, USER, "deploy master").await;
    let text = ask.to_plain_text();
    assert!(
        text.contains("*Changes:* listed once Jenkins has built it (the compare endpoint refused the token (HTTP 401))."),
        "{text}"
    );
    assert!(!text.contains(TOKEN), "{text}");
    let done = click(&rig.bot, USER, &ask, "Yes").await;
    assert!(
        done.to_plain_text()
            .contains("*Changes:* none — no new commits (the change set of Jenkins build #1)."),
        "{}",
        done.to_plain_text()
    );
}

#[test]
fn a_compare_section_is_checked_with_positions() {
    let yaml = |compare: &str| {
        format!(
            "{compare}groups:\n  deployers: [U1]\nenvironments:\n  staging:\n    pools:\n      api:\n        switch: {{ type: memory, initial: blue }}\n        members:\n          blue: {{ url: http://127.0.0.1:9 }}\n          green: {{ url: http://127.0.0.1:9 }}\n"
        )
    };
    let errors = bot_core::load_strs_with_env(
        common::COMMANDS,
        &yaml("compare:\n  type: githab\n  url: http://127.0.0.1:9\n  repo: acme/api\n"),
        &|_| None,
    )
    .expect_err("invalid")
    .to_string();
    assert!(
        errors
            .contains("instances.yaml:2:9: unknown compare type `githab` (did you mean `github`?)"),
        "{errors}"
    );
    assert!(errors.contains("`compare` has no `token`"), "{errors}");
    let errors = bot_core::load_strs_with_env(
        common::COMMANDS,
        &yaml("compare:\n  type: gitlab\n  url: http://127.0.0.1:9\n  repo: g/p\n  token: ${GITLAB_TOKEN}\n"),
        &|_| None,
    )
    .expect_err("undefined variable")
    .to_string();
    assert!(errors.contains("GITLAB_TOKEN"), "{errors}");
    let config = bot_core::load_strs_with_env(
        common::COMMANDS,
        &yaml("compare:\n  type: gitlab\n  url: http://127.0.0.1:9\n  repo: g/p\n  token: ${GITLAB_TOKEN}\n"),
        &|v| (v == "GITLAB_TOKEN").then(|| "glpat-x".to_owned()),
    )
    .expect("valid");
    let compare = config.compare.expect("compare");
    assert_eq!(compare.kind, bot_core::config::CompareKind::Gitlab);
    assert_eq!(compare.token.expose(), "glpat-x");
    assert!(!format!("{compare:?}").contains("glpat-x"), "never printed");
}

#[tokio::test]
async fn a_compare_endpoint_that_fails_is_named_as_failing_not_as_missing() {
    let cmp = CompareStandIn::start(TOKEN).await.expect("compare");
    cmp.script([crossroads_sim::fault::Scripted::Status(500)]);
    let compare = "compare:\n  type: github\n  url: ${GITHUB_API_URL}\n  repo: acme/api\n  token: ${GITHUB_TOKEN}\n";
    let rig = rig(
        compare,
        &[
            ("GITHUB_API_URL", cmp.url()),
            ("GITHUB_TOKEN", TOKEN.into()),
        ],
        quick(),
    )
    .await;
    let ask = say(&rig.bot, USER, "deploy master").await;
    let text = ask.to_plain_text();
    assert!(
        text.contains("(the compare endpoint answered HTTP 500)"),
        "{text}"
    );
    assert!(
        !text.contains("no compare endpoint is configured"),
        "{text}"
    );
}
