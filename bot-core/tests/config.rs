//! Loading `commands.yaml` and `instances.yaml`: the shipped files, interpolation, and
//! every class of error with its `file:line:column`.

use std::path::Path;
use std::time::Duration;

use bot_core::config::{
    self, ActionKind, ActionSpec, ConfigError, ConfigErrors, InstanceRef, SwitchSpec, TargetKind,
};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn no_env(_: &str) -> Option<String> {
    None
}

fn shipped() -> (String, String) {
    let read = |name: &str| {
        std::fs::read_to_string(Path::new(ROOT).join(name)).expect("shipped file is readable")
    };
    (read("commands.yaml"), read("instances.yaml"))
}

// ---- the shipped files ------------------------------------------------------------

#[test]
fn shipped_files_load_with_an_empty_environment() {
    let config = config::load_dir_with_env(Path::new(ROOT), &no_env)
        .unwrap_or_else(|e| panic!("shipped config must load:\n{e}"));

    let summary = config.summary();
    assert_eq!(summary.environments, 2);
    assert_eq!(summary.pools, 4);
    assert_eq!(summary.instances, 8);
    assert_eq!(summary.commands, 14);
    assert_eq!(config.commands.len(), 14);

    let master = config.env("master").expect("master");
    assert!(master.protected);
    assert_eq!(master.allowed, ["deployers"]);
    assert_eq!(master.aliases[0], "master", "canonical name comes first");
    for alias in ["production", "prod", "rh", "roih", "roi hunter", "live"] {
        assert!(master.aliases.iter().any(|a| a == alias), "{alias}");
    }
    assert_eq!(master.emoji, ["red_circle", "fire"]);
    let names: Vec<&str> = master.pools.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["api", "cron"]);
    assert_eq!(master.pools[0].aliases, ["api", "web", "app"]);

    let staging = config.env("staging").expect("staging");
    assert!(!staging.protected);
    assert_eq!(staging.aliases, ["staging", "stage", "stg", "preprod"]);
}

#[test]
fn shipped_instances_have_urls_health_tasks_and_restart() {
    let config = config::load_dir_with_env(Path::new(ROOT), &no_env).expect("loads");
    let blue = config
        .instance(&InstanceRef {
            env: "master".into(),
            pool: "api".into(),
            member: "blue".into(),
        })
        .expect("master api blue");
    assert_eq!(blue.url, "http://127.0.0.1:18081");
    assert_eq!(blue.aliases, ["rh blue", "master blue"]);
    assert_eq!(
        blue.emoji,
        ["large_blue_circle", "blue_circle", "blue_heart"]
    );
    // defaults.health is merged in.
    assert_eq!(blue.health.path, "/health");
    assert_eq!(blue.health.expect_status, 200);
    assert_eq!(
        blue.health.json,
        [("/status".to_owned(), serde_json::json!("ok"))]
    );
    assert_eq!(blue.health.max_latency, Some(Duration::from_millis(1500)));
    assert_eq!(blue.health.version_pointer.as_deref(), Some("/version"));
    // defaults.tasks and the pool's restart are inherited.
    assert_eq!(blue.tasks.as_deref(), Some("/tasks"));
    match &blue.restart {
        Some(ActionSpec::Job(job)) => {
            assert_eq!(job.job, "platform/restart");
            assert_eq!(
                job.parameters,
                [
                    ("ENVIRONMENT".to_owned(), "{env}".to_owned()),
                    ("INSTANCE".to_owned(), "{pool}-{colour}".to_owned())
                ]
            );
        }
        other => panic!("restart should be the pool's job, got {other:?}"),
    }

    let api = config.pool("master", "api").expect("pool");
    match &api.switch {
        SwitchSpec::Http {
            set,
            get_url,
            pointer,
        } => {
            assert_eq!(set.method, "POST");
            assert_eq!(set.url, "http://127.0.0.1:18070/pools/master/api");
            assert_eq!(set.body.as_deref(), Some(r#"{"active": "{colour}"}"#));
            assert_eq!(get_url, "http://127.0.0.1:18070/pools/master/api");
            assert_eq!(pointer, "/active");
        }
        other => panic!("expected an http switch, got {other:?}"),
    }
    assert_eq!(
        api.deploy.as_ref().map(|d| d.job.as_str()),
        Some("platform/deploy-api")
    );
    let urls: Vec<String> = config.instances().map(|(_, i)| i.url.clone()).collect();
    assert_eq!(urls.len(), 8);
    assert!(urls.iter().all(|u| u.starts_with("http://127.0.0.1:")));
}

#[test]
fn shipped_commands_vocabulary() {
    let config = config::load_dir_with_env(Path::new(ROOT), &no_env).expect("loads");
    let force = config.command("force restart").expect("force restart");
    assert!(force.confirm);
    assert_eq!(force.action, ActionKind::ForceRestart);
    assert_eq!(force.target, TargetKind::Instance);
    assert_eq!(
        force.phrases,
        ["force restart", "force reboot", "restart force"]
    );
    assert_eq!(force.allowed, ["deployers"]);
    assert_eq!(force.pos.line, 78);

    let status = config.command("status").expect("status");
    assert!(status.target_optional);
    assert!(!status.confirm);
    let deploy = config.command("deploy").expect("deploy");
    assert!(deploy.takes_args);

    match &config.command("clear cache").expect("clear cache").action {
        ActionKind::Job(job) => {
            assert_eq!(job.job, "platform/clear-cache");
            assert_eq!(job.parameters[0], ("ENVIRONMENT".into(), "{env}".into()));
        }
        other => panic!("expected a job, got {other:?}"),
    }
    assert!(config.filler.iter().any(|w| w == "please"));
    assert!(
        config.filler.iter().any(|w| w == "on"),
        "`on` stays a word, not a boolean"
    );
}

#[test]
fn shipped_jenkins_defaults_and_secret_token() {
    let config = config::load_dir_with_env(Path::new(ROOT), &no_env).expect("loads");
    let jenkins = config.jenkins.as_ref().expect("jenkins");
    assert_eq!(jenkins.url, "http://127.0.0.1:18090");
    assert_eq!(jenkins.user, "crossroads");
    assert_eq!(jenkins.token.expose(), "demo-token");
    assert_eq!(jenkins.timeout, Duration::from_secs(30 * 60));
    assert_eq!(jenkins.poll_interval, Duration::from_millis(500));
    let debug = format!("{config:?}");
    assert!(!debug.contains("demo-token"), "token leaked in Debug");

    let s = &config.settings;
    assert_eq!(s.probe_timeout, Duration::from_secs(2));
    assert_eq!(s.gate_consecutive, 3);
    assert_eq!(s.gate_interval, Duration::from_secs(1));
    assert_eq!(s.gate_timeout, Duration::from_secs(120));
    assert_eq!(s.lock_lease, Duration::from_secs(1800));
    assert_eq!(s.button_ttl, Duration::from_secs(1800));

    assert_eq!(
        config.groups["deployers"],
        ["U0DEPLOYER", "U0ADMIN", "U0DEMO"]
    );
    assert_eq!(config.channels["announcements"], "C0ANNOUNCE");
    let toy = config.toy.as_ref().expect("toy");
    assert_eq!(toy.job.job, "toy/refresh-database");
    assert_eq!(toy.users["U0DEMO"], "toy_demo");
}

#[test]
fn environment_variables_override_defaults() {
    let (c, i) = shipped();
    let env = |name: &str| match name {
        "JENKINS_URL" => Some("http://127.0.0.1:9".to_owned()),
        "JENKINS_TOKEN" => Some("s3cr3t-from-env".to_owned()),
        "MASTER_API_BLUE_URL" => Some(String::new()), // empty: default applies
        _ => None,
    };
    let config = config::from_strs("commands.yaml", &c, "instances.yaml", &i, &env).expect("loads");
    let jenkins = config.jenkins.as_ref().expect("jenkins");
    assert_eq!(jenkins.url, "http://127.0.0.1:9");
    assert_eq!(jenkins.token.expose(), "s3cr3t-from-env");
    assert!(!format!("{config:?}").contains("s3cr3t"));
    let blue = config.pool("master", "api").expect("api").members[0]
        .url
        .clone();
    assert_eq!(blue, "http://127.0.0.1:18081");
}

#[test]
fn summary_counts_distinct_alias_words() {
    let config = config::load_dir_with_env(Path::new(ROOT), &no_env).expect("loads");
    let summary = config.summary();
    // master: 7 names + 2 emoji; staging: 4 + 1; pools api/web/app, cron/crons/jobs/worker;
    // members blue green purple yellow; member emoji 4×3; instance aliases 6 + 6.
    assert_eq!(summary.aliases, 7 + 2 + 4 + 1 + 3 + 4 + 4 + 12 + 6 + 6);
}
