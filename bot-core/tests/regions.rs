//! Regions: an environment in several regions, each with its own switches and member
//! URLs — the config and its errors with positions, status fanned out over regions,
//! and deploys rolled out region by region through real HAProxies.

use crate::common;

use bot_core::config::{ConfigError, ConfigErrors, OnFailure, SwitchSpec};
use bot_core::testing::TWO_REGIONS_YAML;

fn no_env(_: &str) -> Option<String> {
    None
}

const COMMANDS: &str = include_str!("../../commands.yaml");

fn errors(instances: &str) -> Vec<String> {
    match bot_core::load_strs_with_env(COMMANDS, instances, &no_env) {
        Ok(_) => panic!("expected errors, the config loaded"),
        Err(ConfigErrors(errors)) => errors.iter().map(ConfigError::to_string).collect(),
    }
}

/// The line and column where `needle` starts in `text` (1-based), for error positions.
fn at(text: &str, needle: &str) -> String {
    let offset = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in text"));
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = offset - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    format!("instances.yaml:{line}:{column}")
}

// ---- config -------------------------------------------------------------------------

#[test]
fn regions_each_have_their_switches_urls_and_parameters() {
    let config = bot_core::load_strs_with_env(COMMANDS, TWO_REGIONS_YAML, &no_env)
        .unwrap_or_else(|e| panic!("{e}"));
    let master = config.env("master").expect("master");
    let names: Vec<&str> = master.regions.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["eu", "us"]);
    let us = master.region("us").expect("us");
    assert_eq!(us.aliases, ["us", "us-east", "virginia"]);
    assert_eq!(
        us.parameters,
        [("REGION".to_owned(), "us-east-1".to_owned())]
    );
    assert_eq!(us.pools[0].members[1].url, "http://127.0.0.1:28092");
    assert_eq!(
        us.pools[0].switch,
        SwitchSpec::Memory {
            initial: "blue".into()
        }
    );
    assert_eq!(
        master.rollout.stages,
        [vec!["eu".to_owned()], vec!["us".to_owned()]]
    );
    assert_eq!(master.rollout.on_failure, OnFailure::Halt);
    // Instances are listed once per region; staging, without regions, as before.
    assert_eq!(config.summary().instances, 10);
    let staging = config.env("staging").expect("staging");
    assert!(staging.regions.is_empty());
    assert_eq!(staging.sites().len(), 1);
}

#[test]
fn canary_goes_first_then_the_rest_together_and_region_templates_fill_in() {
    let yaml = TWO_REGIONS_YAML
        .replace("      order: [eu, us]\n      on_failure: halt", "      canary: us\n      on_failure: rollback")
        .replace(
            "      api:\n        aliases: [web, app]\n        members:",
            "      api:\n        aliases: [web, app]\n        deploy:\n          job: platform/deploy-api\n          parameters: { TARGET: \"{env}-{region}\", COLOUR: \"{colour}\" }\n        members:",
        );
    let config =
        bot_core::load_strs_with_env(COMMANDS, &yaml, &no_env).unwrap_or_else(|e| panic!("{e}"));
    let master = config.env("master").expect("master");
    assert_eq!(
        master.rollout.stages,
        [vec!["us".to_owned()], vec!["eu".to_owned()]]
    );
    assert_eq!(master.rollout.on_failure, OnFailure::Rollback);
    let job = master.region("eu").expect("eu").pools[0]
        .deploy
        .clone()
        .expect("deploy job");
    assert_eq!(
        job.parameters,
        [
            ("TARGET".to_owned(), "{env}-eu".to_owned()),
            ("COLOUR".to_owned(), "{colour}".to_owned()),
            ("REGION".to_owned(), "eu-central-1".to_owned()),
        ]
    );
}

#[test]
fn a_region_without_a_switch_for_a_pool_is_reported_where_the_pool_is() {
    let yaml = TWO_REGIONS_YAML.replacen(
        "            switch: { type: memory, initial: purple }\n",
        "",
        2,
    );
    let all = errors(&yaml);
    // Both regions lose cron's switch.
    assert_eq!(all.len(), 2, "{all:#?}");
    assert!(
        all[0].ends_with(
            "region `eu` has no switch for pool `cron` (add `switch:` with type haproxy, http, jenkins or memory)"
        ),
        "{all:#?}"
    );
    assert!(all[0].starts_with("instances.yaml:"), "{all:#?}");
    assert!(
        all[1].contains("region `us` has no switch for pool `cron`"),
        "{all:#?}"
    );
}

#[test]
fn a_rollout_naming_an_unknown_region_says_which_exist() {
    let yaml = TWO_REGIONS_YAML.replace("order: [eu, us]", "order: [eu, usa]");
    let all = errors(&yaml);
    assert_eq!(
        all,
        [
            format!(
                "{}: the rollout of `master` leaves out region `us` (list every region under `order:`)",
                at(&yaml, "order: [eu, usa]")
            ),
            format!(
                "{}: rollout of `master` names region `usa`, which `master` does not have (did you mean `us`?)",
                at(&yaml, "usa]")
            ),
        ]
    );
}

#[test]
fn region_mistakes_each_have_their_position() {
    // A pool the environment does not have, a member URL left out, a pool-level switch.
    let yaml = TWO_REGIONS_YAML
        .replacen(
            "          cron:\n            switch: { type: memory, initial: purple }",
            "          crom:\n            switch: { type: memory, initial: purple }",
            1,
        )
        .replace(
            "              green: { url: \"http://127.0.0.1:28092\" }\n",
            "",
        );
    let all = errors(&yaml);
    assert!(
        all.iter().any(|e| e
            == &format!(
                "{}: region `eu` names pool `crom`, which `master` does not have (did you mean `cron`?)",
                at(&yaml, "crom:")
            )),
        "{all:#?}"
    );
    assert!(
        all.iter()
            .any(|e| e.contains("instance `master us api green` has no `url`")),
        "{all:#?}"
    );
    let pool_switch = TWO_REGIONS_YAML.replace(
        "      api:\n        aliases: [web, app]\n        members:",
        "      api:\n        aliases: [web, app]\n        switch: { type: memory }\n        members:",
    );
    let all = errors(&pool_switch);
    assert_eq!(all.len(), 1, "{all:#?}");
    assert!(
        all[0].contains("pool `api` of an environment with regions has a switch of its own"),
        "{all:#?}"
    );
}

#[test]
fn environments_without_regions_have_one_site_and_no_rollout() {
    let config = bot_core::load_dir_with_env(
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")),
        &no_env,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let staging = config.env("staging").expect("staging");
    assert!(staging.regions.is_empty());
    assert!(staging.rollout.stages.is_empty());
}

// ---- status, health and tasks fanned out over regions ---------------------------------

use std::sync::Arc;
use std::time::Duration;

use bot_core::adapters::store::memory::MemoryStore;
use bot_core::ports::AuditLog;
use bot_core::{Bot, Outcome};
use common::{click, labels, load, say};
use crossroads_sim::haproxy::{require_haproxy, traffic_reaches, Haproxy};
use crossroads_sim::instance::{Behaviour, InstanceControl, SimInstance};
use crossroads_sim::jenkins::{JenkinsSetup, JobSetup, SimJenkins, Trigger};

const USER: &str = "U0DEPLOYER";

/// Two regions with memory switches, instances at `${EU_BLUE}` … `${US_GREEN}`.
const STATUS: &str = r#"
settings:
  probe_timeout: 400ms
defaults:
  tasks: /tasks
groups:
  deployers: [U0DEPLOYER]
environments:
  master:
    aliases: [prod]
    pools:
      api:
        members:
          blue: { health: { version: /version } }
          green: { health: { version: /version } }
    regions:
      eu:
        aliases: [europe, frankfurt]
        pools:
          api:
            switch: { type: memory, initial: blue }
            members: { blue: { url: "${EU_BLUE}" }, green: { url: "${EU_GREEN}" } }
      us:
        aliases: [us-east, virginia]
        pools:
          api:
            switch: { type: memory, initial: blue }
            members: { blue: { url: "${US_BLUE}" }, green: { url: "${US_GREEN}" } }
  staging:
    pools:
      api:
        switch: { type: memory, initial: blue }
        members: { blue: { url: "${EU_BLUE}" }, green: { url: "${EU_GREEN}" } }
"#;

struct Four {
    eu_blue: SimInstance,
    eu_green: SimInstance,
    us_blue: SimInstance,
    us_green: SimInstance,
}

impl Four {
    async fn start(version: &str) -> Self {
        Self {
            eu_blue: SimInstance::start("eu-blue", version).await.expect("sim"),
            eu_green: SimInstance::start("eu-green", version).await.expect("sim"),
            us_blue: SimInstance::start("us-blue", version).await.expect("sim"),
            us_green: SimInstance::start("us-green", version).await.expect("sim"),
        }
    }

    fn vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("EU_BLUE", self.eu_blue.url()),
            ("EU_GREEN", self.eu_green.url()),
            ("US_BLUE", self.us_blue.url()),
            ("US_GREEN", self.us_green.url()),
        ]
    }
}

#[tokio::test]
async fn status_groups_by_region_and_a_hung_region_is_one_line_delaying_no_other() {
    let four = Four::start("1.0.0").await;
    // us hangs: it accepts connections and never answers.
    four.us_blue.control().set_behaviour(Behaviour::Hang);
    four.us_green.control().set_behaviour(Behaviour::Hang);
    let bot = Bot::builder(load(STATUS, &four.vars())).build();

    let reply = say(&bot, USER, "status master").await;
    let text = reply.to_plain_text();
    assert!(text.contains("*master* — 1/2 regions healthy"), "{text}");
    let us: Vec<&str> = text.lines().filter(|l| l.contains("*us*")).collect();
    assert_eq!(us.len(), 1, "a region entirely down is one line: {text}");
    assert!(
        us[0].contains("down: none of its 2 instances answers"),
        "{text}"
    );
    // eu's probes were not held up by us: both answered, well within the timeout
    // the hung ones ran into.
    let eu = text.split("*us*").next().expect("eu part comes first");
    assert!(eu.contains("eu* — healthy"), "{text}");
    assert_eq!(eu.matches("— healthy ·").count(), 2, "{text}");
    assert!(!eu.contains("timed out"), "{text}");

    // The whole platform: environments without regions are as before.
    let all = say(&bot, USER, "status").await.to_plain_text();
    assert!(all.contains("*master* — 1/2 regions healthy"), "{all}");
    assert!(all.contains("*staging*\n  _api_"), "{all}");

    // One region by name, typo and all.
    let eu = say(&bot, USER, "status frankfrut").await.to_plain_text();
    assert!(eu.contains("Status of master eu"), "{eu}");
    assert!(eu.contains("1/1 regions healthy"), "{eu}");
    assert!(!eu.contains("us*"), "{eu}");
}

#[tokio::test]
async fn health_and_tasks_take_a_region_and_ask_which_when_none_is_named() {
    let four = Four::start("1.0.0").await;
    four.us_green.control().set_version("1.1.0");
    let bot = Bot::builder(load(STATUS, &four.vars())).build();

    let health = say(&bot, USER, "health blue virginia master").await;
    assert_eq!(health.outcome, Outcome::Info, "{}", health.to_plain_text());
    assert!(health
        .to_plain_text()
        .contains("master us api blue* is healthy"));
    assert!(health.to_plain_text().contains(&four.us_blue.url()));

    let green = say(&bot, USER, "health prod us green")
        .await
        .to_plain_text();
    assert!(green.contains("version 1.1.0"), "{green}");

    let tasks = say(&bot, USER, "show tasks master eu green").await;
    assert_ne!(
        tasks.outcome,
        Outcome::Rejected,
        "{}",
        tasks.to_plain_text()
    );

    // No region named: a button per region.
    let ask = say(&bot, USER, "health master blue").await;
    assert_eq!(ask.outcome, Outcome::Choices, "{}", ask.to_plain_text());
    assert_eq!(
        labels(&ask),
        ["master eu api blue (active)", "master us api blue (active)"]
    );
    let chosen = click(&bot, USER, &ask, "master us api blue").await;
    assert!(chosen
        .to_plain_text()
        .contains("master us api blue* is healthy"));
}

// ---- rollouts through two real HAProxies ---------------------------------------------

const ROLLOUT: &str = r#"
settings:
  probe_timeout: 1s
  gate: { consecutive: 2, interval: 100ms, timeout: 1500ms }
jenkins:
  url: ${JENKINS_URL}
  user: crossroads
  token: ${JENKINS_TOKEN}
  poll_interval: 50ms
groups:
  deployers: [U0DEPLOYER]
environments:
  master:
    aliases: [prod, rh]
    allowed: [deployers]
    pools:
      api:
        deploy:
          job: platform/deploy-api
          parameters: { COLOUR: "{colour}", REF: "{ref}", TARGET: "{env}-{region}" }
        members:
          blue: { health: { version: /version } }
          green: { health: { version: /version } }
    regions:
      eu:
        aliases: [europe, frankfurt]
        parameters: { REGION: eu }
        pools:
          api:
            switch: { type: haproxy, address: "${EU_HAPROXY}", backend: be_app, off_state: maint }
            members: { blue: { url: "${EU_BLUE}" }, green: { url: "${EU_GREEN}" } }
      us:
        aliases: [us-east, virginia]
        parameters: { REGION: us }
        pools:
          api:
            switch: { type: haproxy, address: "${US_HAPROXY}", backend: be_app, off_state: maint }
            members: { blue: { url: "${US_BLUE}" }, green: { url: "${US_GREEN}" } }
    rollout:
      order: [eu, us]
      on_failure: ${ON_FAILURE}
"#;

/// Two regions, each behind its own HAProxy, a Jenkins whose successful build of a
/// colour installs 2.0.0 on that colour in the build's region.
struct Regions {
    bot: Bot,
    store: Arc<MemoryStore>,
    jenkins: SimJenkins,
    four: Four,
    eu: Haproxy,
    us: Haproxy,
}

fn param<'a>(t: &'a Trigger, name: &str) -> Option<&'a str> {
    t.params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

impl Regions {
    async fn start(on_failure: &str) -> Self {
        let four = Four::start("1.0.0").await;
        let eu = Haproxy::start(&[
            ("blue", four.eu_blue.addr()),
            ("green", four.eu_green.addr()),
        ])
        .expect("haproxy eu");
        let us = Haproxy::start(&[
            ("blue", four.us_blue.addr()),
            ("green", four.us_green.addr()),
        ])
        .expect("haproxy us");
        let controls: Vec<(&str, &str, InstanceControl)> = vec![
            ("eu", "blue", four.eu_blue.control()),
            ("eu", "green", four.eu_green.control()),
            ("us", "blue", four.us_blue.control()),
            ("us", "green", four.us_green.control()),
        ];
        let job = JobSetup::new()
            .queue_time(Duration::from_millis(30))
            .build_duration(Duration::from_millis(120))
            .estimated_duration(Some(Duration::from_millis(120)))
            .on_success(move |params| {
                let get = |k: &str| params.iter().find(|(p, _)| p == k).map(|(_, v)| v.clone());
                let (region, colour) = (get("REGION"), get("COLOUR"));
                for (r, c, ctl) in &controls {
                    if region.as_deref() == Some(*r) && colour.as_deref() == Some(*c) {
                        ctl.set_version("2.0.0");
                    }
                }
            });
        let jenkins = SimJenkins::start(
            JenkinsSetup::new("crossroads", "t0ken").job("platform/deploy-api", job),
        )
        .await
        .expect("jenkins");
        let mut vars = four.vars();
        vars.extend([
            ("JENKINS_URL", jenkins.url()),
            ("JENKINS_TOKEN", "t0ken".to_owned()),
            ("EU_HAPROXY", eu.admin.clone()),
            ("US_HAPROXY", us.admin.clone()),
            ("ON_FAILURE", on_failure.to_owned()),
        ]);
        let store = Arc::new(MemoryStore::new());
        let bot = Bot::builder(load(ROLLOUT, &vars))
            .store(store.clone())
            .build();
        traffic_reaches(&eu.frontend, "1.0.0").await;
        traffic_reaches(&us.frontend, "1.0.0").await;
        Self {
            bot,
            store,
            jenkins,
            four,
            eu,
            us,
        }
    }

    /// The regions built, in the order Jenkins was asked.
    fn built(&self) -> Vec<String> {
        self.jenkins
            .triggers()
            .iter()
            .map(|t| {
                format!(
                    "{}/{}",
                    param(t, "REGION").unwrap_or("?"),
                    param(t, "COLOUR").unwrap_or("?")
                )
            })
            .collect()
    }

    async fn last_outcome(&self) -> String {
        let history = self
            .store
            .history(Some("master"), 0, 1)
            .await
            .expect("history");
        history[0].outcome.clone()
    }
}

#[cfg_attr(
    not(haproxy),
    ignore = "haproxy not installed (apt-get install haproxy)"
)]
#[tokio::test]
async fn deploy_rolls_out_eu_then_us_and_rollback_moves_real_traffic_back_in_both() {
    if !require_haproxy() {
        return;
    }
    let r = Regions::start("halt").await;
    let done = say(&r.bot, USER, "deploy master release-7").await;
    let text = done.to_plain_text();
    assert_eq!(done.outcome, Outcome::Done, "{text}");
    assert_eq!(r.built(), ["eu/green", "us/green"], "eu first, then us");
    assert!(
        r.jenkins
            .triggers()
            .iter()
            .all(|t| param(t, "REF") == Some("release-7")),
        "{:?}",
        r.jenkins.triggers()
    );
    assert_eq!(param(&r.jenkins.triggers()[1], "TARGET"), Some("master-us"));
    assert!(
        text.contains("*eu* — :white_check_mark: switched"),
        "{text}"
    );
    assert!(
        text.contains("*us* — :white_check_mark: switched"),
        "{text}"
    );
    assert!(text.contains("eu switched; us switched"), "{text}");
    traffic_reaches(&r.eu.frontend, "2.0.0").await;
    traffic_reaches(&r.us.frontend, "2.0.0").await;
    assert!(r.last_outcome().await.contains("eu switched; us switched"));

    let back = say(&r.bot, USER, "rollback master").await;
    let text = back.to_plain_text();
    assert_eq!(back.outcome, Outcome::Done, "{text}");
    assert!(text.contains("Rolled back *master* in eu, us"), "{text}");
    traffic_reaches(&r.eu.frontend, "1.0.0").await;
    traffic_reaches(&r.us.frontend, "1.0.0").await;
    assert_eq!(r.built().len(), 2, "rollback builds nothing");
}

#[cfg_attr(
    not(haproxy),
    ignore = "haproxy not installed (apt-get install haproxy)"
)]
#[tokio::test]
async fn a_failing_gate_in_us_halts_leaving_eu_switched_with_a_one_click_rollback() {
    if !require_haproxy() {
        return;
    }
    let r = Regions::start("halt").await;
    r.four
        .us_green
        .control()
        .set_behaviour(Behaviour::Unhealthy);
    let failed = say(&r.bot, USER, "deploy master").await;
    let text = failed.to_plain_text();
    assert_eq!(failed.outcome, Outcome::Failed, "{text}");
    assert!(text.contains("step 3/4 (health gate) failed"), "{text}");
    assert!(
        text.contains("eu switched; us failed (api: health gate failed)"),
        "each region's outcome: {text}"
    );
    // us was never switched; eu stays on the new build.
    traffic_reaches(&r.us.frontend, "1.0.0").await;
    traffic_reaches(&r.eu.frontend, "2.0.0").await;
    assert!(r
        .last_outcome()
        .await
        .starts_with("failed: eu switched; us failed"));

    assert_eq!(labels(&failed), ["Roll back eu"]);
    let back = click(&r.bot, USER, &failed, "Roll back eu").await;
    assert_eq!(back.outcome, Outcome::Done, "{}", back.to_plain_text());
    assert!(back.to_plain_text().contains("Rolled back *master* in eu"));
    traffic_reaches(&r.eu.frontend, "1.0.0").await;
    traffic_reaches(&r.us.frontend, "1.0.0").await;
}

#[cfg_attr(
    not(haproxy),
    ignore = "haproxy not installed (apt-get install haproxy)"
)]
#[tokio::test]
async fn under_on_failure_rollback_eu_goes_back_by_itself_when_us_fails() {
    if !require_haproxy() {
        return;
    }
    let r = Regions::start("rollback").await;
    r.four
        .us_green
        .control()
        .set_behaviour(Behaviour::Unhealthy);
    let failed = say(&r.bot, USER, "deploy master").await;
    let text = failed.to_plain_text();
    assert_eq!(failed.outcome, Outcome::Failed, "{text}");
    assert!(
        text.contains("eu switched, then rolled back; us failed (api: health gate failed)"),
        "{text}"
    );
    assert!(
        labels(&failed).is_empty(),
        "nothing left to roll back: {text}"
    );
    traffic_reaches(&r.eu.frontend, "1.0.0").await;
    traffic_reaches(&r.us.frontend, "1.0.0").await;
    assert_eq!(r.built(), ["eu/green", "us/green"]);
}

#[cfg_attr(
    not(haproxy),
    ignore = "haproxy not installed (apt-get install haproxy)"
)]
#[tokio::test]
async fn deploy_master_us_touches_only_us() {
    if !require_haproxy() {
        return;
    }
    let r = Regions::start("halt").await;
    let done = say(&r.bot, USER, "deploy master us").await;
    let text = done.to_plain_text();
    assert_eq!(done.outcome, Outcome::Done, "{text}");
    assert!(text.contains("to *master* in us ("), "{text}");
    assert_eq!(r.built(), ["us/green"]);
    traffic_reaches(&r.us.frontend, "2.0.0").await;
    traffic_reaches(&r.eu.frontend, "1.0.0").await;
    assert_eq!(
        r.four.eu_green.control().version(),
        "1.0.0",
        "eu was not built"
    );
}
