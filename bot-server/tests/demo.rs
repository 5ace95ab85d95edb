//! The demo keeps its promises: every command the README suggests runs in the demo,
//! in order, and so does every example in `commands.yaml` (what `help` shows: those
//! for master after the README's, the others in a demo of their own beside it), each
//! ending without a failure, except where the banner announced something broken on
//! purpose; the console controls break and heal things.

use std::path::Path;

use bot_core::{Bot, Outcome, Reply, Request};
use bot_server::demo::{load_config_with_env, Demo};

const USER: &str = "U0DEMO";

/// Every URL the shipped config reads from the environment.
const PORT_VARS: [&str; 18] = [
    "CROSSROADS_GITHUB_URL",
    "GRAFANA_URL",
    "PAGERDUTY_CHANGE_URL",
    "PROMETHEUS_URL",
    "JENKINS_URL",
    "SWITCH_URL",
    "MASTER_API_BLUE_URL",
    "MASTER_API_GREEN_URL",
    "MASTER_CRON_PURPLE_URL",
    "MASTER_CRON_YELLOW_URL",
    "STAGING_API_BLUE_URL",
    "STAGING_API_GREEN_URL",
    "STAGING_CRON_PURPLE_URL",
    "STAGING_CRON_YELLOW_URL",
    "MASTER_US_API_BLUE_URL",
    "MASTER_US_API_GREEN_URL",
    "MASTER_US_CRON_PURPLE_URL",
    "MASTER_US_CRON_YELLOW_URL",
];

/// The commands the README's "Two commands" section tells a newcomer to try.
const README_TRIES: [&str; 9] = [
    "status",
    "health rh blue",
    "show tasks staging purple",
    "deploy staging",
    "rollback staging",
    "restart staging inactive",
    "force restart staging blue",
    "toy",
    "history",
];

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The repository's config with every port moved to a free one (no clash with a
/// demo someone is running), its canary steps quicker.
fn config() -> bot_core::Config {
    config_paced("1s", "250ms")
}

/// [`config`] with each canary step held for `pause`, read every `interval`.
fn config_paced(pause: &'static str, interval: &'static str) -> bot_core::Config {
    let ports: Vec<(String, String)> = PORT_VARS
        .iter()
        .map(|v| {
            let port = crossroads_sim::free_port().expect("a free port");
            ((*v).to_owned(), format!("http://127.0.0.1:{port}"))
        })
        .collect();
    let env = move |name: &str| {
        match name {
            // The demo's canary steps, quicker.
            "STAGING_CANARY_PAUSE" => return Some(pause.to_owned()),
            "STAGING_CANARY_INTERVAL" => return Some(interval.to_owned()),
            _ => {}
        }
        ports
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    load_config_with_env(Some(repo()), &env).expect("the shipped config loads")
}

/// Starts the demo at a quarter of its pace on `config()`'s free ports. A port picked
/// free can be taken by another test before the demo binds it: then it starts again
/// on other ports (a few times), rather than failing on a race that is not the demo's.
async fn start(config: impl Fn() -> bot_core::Config) -> (bot_core::Config, std::sync::Arc<Demo>) {
    let mut last = String::new();
    for _ in 0..3 {
        let mut config = config();
        config.settings.gate_interval /= 4;
        match Demo::start_paced(config.clone(), 0.25).await {
            Ok(demo) => return (config, demo),
            Err(e) if e.to_string().contains("in use") => last = e.to_string(),
            Err(e) => panic!("the demo starts: {e}"),
        }
    }
    panic!("the demo starts: {last}")
}

/// Runs `text` as a person would in the console: a confirmation is answered yes, and
/// a choice (`health rh blue` in a platform where master runs in two regions) with its
/// first button.
async fn run(bot: &Bot, text: &str) -> Reply {
    let mut reply = bot.handle(Request::text(USER, text)).await;
    if reply.outcome == Outcome::Choices {
        let first = reply
            .all_buttons()
            .next()
            .map(|b| b.value.clone())
            .expect("a choice has buttons");
        reply = bot.handle(Request::button(USER, first)).await;
    }
    if reply.outcome != Outcome::Confirm {
        return reply;
    }
    let yes = reply
        .all_buttons()
        .next()
        .map(|b| b.value.clone())
        .expect("a confirmation has a yes button");
    bot.handle(Request::button(USER, yes)).await
}

fn ended_well(reply: &Reply) -> bool {
    matches!(reply.outcome, Outcome::Info | Outcome::Done)
}

/// Steering a canary with none under way is answered so: the right answer for the
/// examples of `pause`, `continue`, `promote` and `abort` run on their own.
fn nothing_to_steer(reply: &Reply) -> bool {
    reply.to_plain_text().contains("No canary is under way")
}

/// Every example `help` shows, in `commands.yaml`'s order.
fn examples(config: &bot_core::Config) -> Vec<String> {
    config
        .commands
        .iter()
        .flat_map(|c| c.examples.iter().cloned())
        .collect()
}

/// Whether an example works on master (the platform the demo breaks on purpose).
fn for_master(example: &str) -> bool {
    example
        .split_whitespace()
        .any(|w| matches!(w, "master" | "rh" | "prod"))
}

/// Runs each of `examples` in order; every one ends well, or is about what the banner
/// announced broken.
async fn end_well(bot: &Bot, examples: &[String], announced: &[String]) {
    let mut failed = Vec::new();
    for example in examples {
        let reply = run(bot, example).await;
        let text = reply.to_plain_text();
        if !ended_well(&reply)
            && !nothing_to_steer(&reply)
            && !announced.iter().any(|b| text.contains(b.as_str()))
        {
            failed.push(format!("`{example}` ended {:?}: {text}", reply.outcome));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_of_help_and_the_readme_succeeds_in_the_demo() {
    // The demo's own pace, quicker: the same steps, in a quarter of the time.
    let (config, demo) = start(config).await;
    let announced = demo.broken();
    assert_eq!(announced, ["master eu cron yellow"], "{:?}", demo.banner());
    assert!(
        demo.banner()
            .iter()
            .any(|l| l.contains("Broken on purpose: master eu cron yellow")),
        "{:?}",
        demo.banner()
    );
    let bot = Bot::builder(config.clone()).build();

    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README");
    for tried in README_TRIES {
        assert!(
            readme.contains(&format!("`{tried}`")),
            "README suggests `{tried}`"
        );
    }
    // The README's tries in order, then the examples for master (the other examples
    // run beside this in a demo of their own).
    let examples: Vec<String> = README_TRIES
        .iter()
        .map(|t| (*t).to_owned())
        .chain(examples(&config).into_iter().filter(|e| for_master(e)))
        .collect();
    assert!(examples.len() > 10, "{examples:?}");
    end_well(&bot, &examples, &announced).await;
    assert!(
        demo.broken().is_empty(),
        "`deploy master` rebuilt (and so healed) the broken instance"
    );

    // The console's demo controls.
    let controls = demo.controls();
    let said = controls
        .handle("break rh blue eu")
        .await
        .expect("a control");
    assert!(
        said.contains("master eu api blue now answers 503"),
        "{said}"
    );
    assert!(demo
        .banner()
        .iter()
        .any(|l| l.contains("master eu api blue")));
    assert_eq!(
        run(&bot, "health rh blue eu").await.outcome,
        Outcome::Failed
    );
    let said = controls
        .handle("heal master eu api blue")
        .await
        .expect("a control");
    assert!(said.contains("healthy again"), "{said}");
    assert_eq!(run(&bot, "health rh blue eu").await.outcome, Outcome::Info);
    let said = controls.handle("break blue").await.expect("a control");
    assert!(said.contains("say which"), "{said}");

    controls
        .handle("fail job clear cache")
        .await
        .expect("a control");
    let cleared = run(&bot, "clear cache staging").await;
    assert_eq!(
        cleared.outcome,
        Outcome::Failed,
        "{}",
        cleared.to_plain_text()
    );
    assert!(demo
        .banner()
        .iter()
        .any(|l| l.contains("`clear cache` ends FAILURE")));
    controls
        .handle("heal job clear cache")
        .await
        .expect("a control");
    assert_eq!(
        run(&bot, "clear cache staging").await.outcome,
        Outcome::Done
    );
    assert!(
        controls.handle("status").await.is_none(),
        "bot commands pass through"
    );
    demo.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_other_example_of_help_succeeds_in_a_demo_of_its_own() {
    let (config, demo) = start(config).await;
    let announced = demo.broken();
    let bot = Bot::builder(config.clone()).build();
    let examples: Vec<String> = examples(&config)
        .into_iter()
        .filter(|e| !for_master(e))
        .collect();
    assert!(examples.len() > 15, "{examples:?}");
    end_well(&bot, &examples, &announced).await;
    demo.shutdown().await;
}

/// `deploy staging` in the demo is a canary judged by the demo's Prometheus (traffic
/// by the switch's weights, each member's `/metrics` scraped); `break staging api
/// green` during it makes it abort by itself, all traffic back on blue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaking_the_new_member_during_the_demos_canary_aborts_it() {
    // Steps long enough for a few readings to judge them.
    let (config, demo) = start(|| config_paced("4s", "500ms")).await;
    assert!(
        demo.banner()
            .iter()
            .any(|l| l.contains("staging api deploys as a canary (25 → 50 → 100 %")),
        "{:?}",
        demo.banner()
    );
    let bot = Bot::builder(config.clone()).build();
    // The deploy builds green; break it once it takes a share.
    let prometheus = config
        .canary("staging", "api")
        .and_then(|c| c.analysis.clone())
        .expect("the shipped canary has an analysis")
        .prometheus;
    let deploy = {
        let bot = bot.clone();
        tokio::spawn(async move { run(&bot, "deploy staging api").await })
    };
    let switch = config
        .pool("staging", "api")
        .map(|p| match &p.switch {
            bot_core::config::SwitchSpec::Http { get_url, .. } => get_url.clone(),
            _ => panic!("the shipped staging api switch is http"),
        })
        .expect("pool");
    let http = reqwest::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let state: serde_json::Value = http
            .get(&switch)
            .send()
            .await
            .expect("switch")
            .json()
            .await
            .expect("json");
        if state["weights"]["green"].as_u64() == Some(25) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never at 25 %: {state}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let said = demo
        .controls()
        .handle("break staging api green")
        .await
        .expect("a control");
    assert!(said.contains("staging api green"), "{said}");
    let broken = std::time::Instant::now();
    let reply = deploy.await.expect("the deploy");
    let text = reply.to_plain_text();
    assert_eq!(reply.outcome, Outcome::Failed, "{text}");
    assert!(
        text.contains("canary was aborted at step 1/3 (25 %)")
            && text.contains("error rate")
            && text.contains("All traffic is back on blue"),
        "{text}"
    );
    // Two failing readings 500 ms apart, over scrapes a second apart.
    assert!(
        broken.elapsed() < std::time::Duration::from_secs(4),
        "it aborted by itself within the step: {:?}",
        broken.elapsed()
    );
    // The demo's Prometheus answers the query API for the members' counters.
    let answer: serde_json::Value = http
        .get(format!("{prometheus}/api/v1/query"))
        .query(&[(
            "query",
            "sum(rate(http_requests_total{env=\"staging\",pool=\"api\",member=\"blue\"}[30s]))",
        )])
        .send()
        .await
        .expect("prometheus")
        .json()
        .await
        .expect("json");
    assert_eq!(answer["status"], "success", "{answer}");
    let rate: f64 = answer["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("a rate");
    assert!(
        rate > 5.0,
        "blue takes the traffic again: {rate} requests/s"
    );
    demo.shutdown().await;
}
