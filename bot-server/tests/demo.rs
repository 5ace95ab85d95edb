//! The demo keeps its promises: every example in `commands.yaml` (what `help` shows)
//! and every command the README suggests runs in the demo, in order, and ends without
//! a failure, except where the banner announced something broken on purpose; the
//! console controls break and heal things.

use std::path::Path;

use bot_core::{Bot, Outcome, Reply, Request};
use bot_server::demo::{load_config_with_env, Demo};

const USER: &str = "U0DEMO";

/// Every URL the shipped config reads from the environment.
const PORT_VARS: [&str; 14] = [
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
/// demo someone is running).
fn config() -> bot_core::Config {
    let ports: Vec<(String, String)> = PORT_VARS
        .iter()
        .map(|v| {
            let port = crossroads_sim::free_port().expect("a free port");
            ((*v).to_owned(), format!("http://127.0.0.1:{port}"))
        })
        .collect();
    let env = move |name: &str| {
        ports
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    load_config_with_env(Some(repo()), &env).expect("the shipped config loads")
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_of_help_and_the_readme_succeeds_in_the_demo() {
    let mut config = config();
    // The demo's own pace, quicker: the same steps, in a quarter of the time.
    config.settings.gate_interval /= 4;
    let demo = Demo::start_paced(config.clone(), 0.25)
        .await
        .expect("the demo starts");
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
    let examples: Vec<String> = config
        .commands
        .iter()
        .flat_map(|c| c.examples.iter().cloned())
        .chain(README_TRIES.iter().map(|t| (*t).to_owned()))
        .collect();
    assert!(examples.len() > 20, "{examples:?}");
    let mut failed = Vec::new();
    for example in &examples {
        let reply = run(&bot, example).await;
        let text = reply.to_plain_text();
        if !ended_well(&reply) && !announced.iter().any(|b| text.contains(b.as_str())) {
            failed.push(format!("`{example}` ended {:?}: {text}", reply.outcome));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
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
