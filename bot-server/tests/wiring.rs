//! Every port through the wiring `crossroads serve` really uses (its counting Jenkins
//! client, its compare client, its HTTP sender), not the bare adapters the library
//! tests use: a deploy's progress lists the commits from Jenkins' `changeSets`, or
//! from the configured compare endpoint; a YAML `http` command reaches its endpoint.

use crate::common;

use std::time::Duration;

use common::serve::{message_text, Serve, COMMANDS};
use crossroads_sim::compare::{CompareStandIn, GitCommit};
use crossroads_sim::instance::SimInstance;
use crossroads_sim::jenkins::{JenkinsSetup, JobSetup, SimJenkins};
use crossroads_sim::slack::{SlackSetup, SlackStandIn};
use crossroads_sim::switch::{PoolSetup, SimSwitch};
use crossroads_sim::WebhookStandIn;

const DEPLOYER: &str = "U0DEPLOYER";
const TOKEN: &str = "ghp_w1r1ng";

struct Platform {
    _blue: SimInstance,
    _green: SimInstance,
    switch: SimSwitch,
    jenkins: SimJenkins,
    slack: SlackStandIn,
}

async fn platform(job: JobSetup) -> Platform {
    Platform {
        _blue: SimInstance::start("blue", "1.0.0").await.expect("blue"),
        _green: SimInstance::start("green", "1.0.0").await.expect("green"),
        switch: SimSwitch::start(vec![PoolSetup::new(
            "staging",
            "api",
            &["blue", "green"],
            "blue",
        )])
        .await
        .expect("switch"),
        jenkins: SimJenkins::start(
            JenkinsSetup::new("crossroads", "t0ken").job("platform/deploy-api", job),
        )
        .await
        .expect("jenkins"),
        slack: SlackStandIn::start_with(SlackSetup::new().wait_timeout(Duration::from_secs(30)))
            .await
            .expect("slack"),
    }
}

fn instances(p: &Platform, blue: &str, green: &str, extra: &str) -> String {
    format!(
        r#"
settings:
  probe_timeout: 1s
  gate: {{ consecutive: 1, interval: 50ms, timeout: 10s }}
jenkins: {{ url: "{}", user: crossroads, token: t0ken, poll_interval: 50ms }}
groups:
  deployers: [{DEPLOYER}]
{extra}
environments:
  staging:
    pools:
      api:
        switch:
          type: http
          set: {{ method: POST, url: "{sw}/pools/staging/api", body: '{{"active": "{{colour}}"}}' }}
          get: "{sw}/pools/staging/api"
          pointer: /active
        deploy: {{ job: platform/deploy-api, parameters: {{ COLOUR: "{{colour}}", REF: "{{ref}}" }} }}
        members:
          blue: {{ url: "{blue}", health: {{ version: /version }} }}
          green: {{ url: "{green}", health: {{ version: /version }} }}
"#,
        p.jenkins.url(),
        sw = p.switch.url(),
    )
}

/// Starts `crossroads serve` on a fresh SQLite file with `instances` and `commands`.
async fn serve(
    p: &Platform,
    instances: &str,
    commands: &str,
    env: Vec<(String, String)>,
) -> (common::serve::Served, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("commands.yaml"), commands).expect("commands");
    std::fs::write(dir.path().join("instances.yaml"), instances).expect("instances");
    let served = Serve {
        config_dir: dir.path().to_owned(),
        database_url: format!("sqlite://{}", dir.path().join("state.db").display()),
        slack_api: p.slack.api_url(),
        extra_env: env,
    }
    .start(dir.path())
    .await;
    (served, dir)
}

/// The deploy's message, once it says `Deployed`.
async fn deployed(p: &Platform, channel: &str) -> String {
    let done = p
        .slack
        .wait_for_one("chat.update", |c| {
            c.arg("channel") == Some(channel) && message_text(&c.body).contains("Deployed")
        })
        .await;
    message_text(&done.body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jenkins_change_sets_are_listed_through_the_real_server() {
    let job = JobSetup::new()
        .queue_time(Duration::from_millis(50))
        .build_duration(Duration::from_millis(300))
        .pipeline()
        .changes([
            (
                "Ada Lovelace",
                "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678",
                "Fix the login redirect",
            ),
            (
                "Grace Hopper",
                "b2c3d4e5f60718293a4b5c6d7e8f9012345678a1",
                "Cache the price list",
            ),
        ]);
    let p = platform(job).await;
    let instances = instances(&p, &p._blue.url(), &p._green.url(), "");
    let (server, _dir) = serve(&p, &instances, COMMANDS, vec![]).await;
    assert_eq!(
        server
            .event(&p.slack.message_event("D0CHG", DEPLOYER, "deploy staging"))
            .await,
        200
    );
    let text = deployed(&p, "D0CHG").await;
    assert!(
        text.contains("the change set of Jenkins build #1"),
        "the commits come from Jenkins' changeSets: {text}"
    );
    assert!(text.contains("Fix the login redirect"), "{text}");
    assert!(text.contains("Cache the price list"), "{text}");
    assert!(!text.contains("not available"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compare_endpoint_is_listed_through_the_real_server() {
    let p = platform(
        JobSetup::new()
            .queue_time(Duration::from_millis(50))
            .build_duration(Duration::from_millis(300)),
    )
    .await;
    let cmp = CompareStandIn::start(TOKEN).await.expect("compare");
    cmp.set_commits(
        "acme/api",
        "1.0.0",
        "feature/x",
        vec![GitCommit::new(
            "c3d4e5f60718293a4b5c6d7e8f9012345678a1b2",
            "Ada Lovelace",
            "Add the export button",
        )],
    );
    let extra = "compare: { type: github, url: \"${GITHUB_API_URL}\", repo: acme/api, token: \"${GITHUB_TOKEN}\" }";
    let instances = instances(&p, &p._blue.url(), &p._green.url(), extra);
    let (server, _dir) = serve(
        &p,
        &instances,
        COMMANDS,
        vec![
            ("GITHUB_API_URL".into(), cmp.url()),
            ("GITHUB_TOKEN".into(), TOKEN.into()),
        ],
    )
    .await;
    server
        .event(
            &p.slack
                .message_event("D0CMP", DEPLOYER, "deploy staging feature/x"),
        )
        .await;
    let text = deployed(&p, "D0CMP").await;
    assert!(
        text.contains("GitHub compare `1.0.0...feature/x`"),
        "{text}"
    );
    assert!(text.contains("Add the export button"), "{text}");
    let asked = cmp.requests();
    assert_eq!(
        asked
            .first()
            .and_then(|r| r.headers.get("authorization"))
            .map(String::as_str),
        Some("Bearer ghp_w1r1ng")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_yaml_http_command_reaches_its_endpoint_through_the_real_server() {
    let p = platform(JobSetup::new()).await;
    let hook = WebhookStandIn::start().await.expect("hook");
    let commands = format!(
        "{COMMANDS}\n  purge edge:\n    phrases: [purge edge]\n    action: http\n    method: POST\n    url: \"{}/purge/{{env}}\"\n    body: '{{\"by\": \"{{user}}\"}}'\n    target: environment\n    allowed: [deployers]\n    help: Purge the edge cache.\n    examples: [\"purge edge staging\"]\n",
        hook.url()
    );
    let instances = instances(&p, &p._blue.url(), &p._green.url(), "");
    let (server, _dir) = serve(&p, &instances, &commands, vec![]).await;
    server
        .event(
            &p.slack
                .message_event("D0HTTP", DEPLOYER, "purge edge staging"),
        )
        .await;
    let sent = hook.wait_for(1).await;
    assert_eq!(sent[0].path, "/purge/staging");
    assert_eq!(sent[0].body["by"], DEPLOYER, "{}", sent[0].body);
    let answer = p
        .slack
        .wait_for_one("chat.postMessage", |c| c.arg("channel") == Some("D0HTTP"))
        .await;
    let mut text = message_text(&answer.body);
    if !text.contains("done") {
        text = message_text(
            &p.slack
                .wait_for_one("chat.update", |c| c.arg("channel") == Some("D0HTTP"))
                .await
                .body,
        );
    }
    assert!(text.contains("done (HTTP 200"), "{text}");
}
