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
    let config = bot_core::load_dir_with_env(Path::new(ROOT), &no_env)
        .unwrap_or_else(|e| panic!("shipped config must load:\n{e}"));

    let summary = config.summary();
    assert_eq!(summary.environments, 2);
    // master's two pools in each of its two regions, staging's two.
    assert_eq!(summary.pools, 6);
    assert_eq!(summary.instances, 12);
    assert_eq!(summary.commands, 30);
    assert_eq!(config.commands.len(), 30);

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
    let regions: Vec<&str> = master.regions.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(regions, ["eu", "us"]);
    assert_eq!(master.regions[0].aliases, ["eu", "europe", "frankfurt"]);
    assert_eq!(master.regions[1].aliases, ["us", "us-east", "virginia"]);
    assert_eq!(
        master.rollout.stages,
        [vec!["eu".to_owned()], vec!["us".to_owned()]]
    );
    assert_eq!(master.pools[0].aliases, ["api", "web", "app"]);

    let staging = config.env("staging").expect("staging");
    assert!(!staging.protected);
    assert_eq!(staging.aliases, ["staging", "stage", "stg", "preprod"]);
}

#[test]
fn shipped_instances_have_urls_health_tasks_and_restart() {
    let config = bot_core::load_dir_with_env(Path::new(ROOT), &no_env).expect("loads");
    let blue = config
        .instance(&InstanceRef {
            env: "master".into(),
            pool: "api".into(),
            member: "blue".into(),
            region: None,
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
                    ("INSTANCE".to_owned(), "{pool}-{colour}".to_owned()),
                    // master's region adds its own parameter.
                    ("REGION".to_owned(), "eu".to_owned())
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
            weights: None,
        } => {
            assert_eq!(set.method, "POST");
            // master is in regions: `{region}` is filled in for eu.
            assert_eq!(set.url, "http://127.0.0.1:18070/pools/master-eu/api");
            assert_eq!(set.body.as_deref(), Some(r#"{"active": "{colour}"}"#));
            assert_eq!(get_url, "http://127.0.0.1:18070/pools/master-eu/api");
            assert_eq!(pointer, "/active");
        }
        other => panic!("expected an http switch, got {other:?}"),
    }
    assert_eq!(
        api.deploy.as_ref().map(|d| d.job.as_str()),
        Some("platform/deploy-api")
    );
    let urls: Vec<String> = config.instances().map(|(_, i)| i.url.clone()).collect();
    assert_eq!(urls.len(), 12, "master's instances in both regions");
    assert!(urls.iter().all(|u| u.starts_with("http://127.0.0.1:")));
}

#[test]
fn shipped_commands_vocabulary() {
    let config = bot_core::load_dir_with_env(Path::new(ROOT), &no_env).expect("loads");
    let force = config.command("force restart").expect("force restart");
    assert!(force.confirm);
    assert_eq!(force.action, ActionKind::Builtin("force_restart".into()));
    assert_eq!(force.target, TargetKind::Instance);
    assert_eq!(
        force.phrases,
        ["force restart", "force reboot", "restart force"]
    );
    assert_eq!(force.allowed, ["deployers"]);
    assert_eq!(force.pos.line, 112);

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
    let config = bot_core::load_dir_with_env(Path::new(ROOT), &no_env).expect("loads");
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
    assert_eq!(s.lock_lease, Duration::from_secs(7 * 24 * 3600));
    assert_eq!(s.lease, Duration::from_secs(30));
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
    let config = bot_core::load_strs_with_env(&c, &i, &env).expect("loads");
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
    let config = bot_core::load_dir_with_env(Path::new(ROOT), &no_env).expect("loads");
    let summary = config.summary();
    // master: 7 names + 2 emoji; staging: 4 + 1; pools api/web/app, cron/crons/jobs/worker;
    // members blue green purple yellow; member emoji 4×3; instance aliases 6 + 6;
    // master's regions eu and us: 3 names and 1 emoji each.
    assert_eq!(summary.aliases, 7 + 2 + 4 + 1 + 3 + 4 + 4 + 12 + 6 + 6 + 8);
}

// ---- errors -----------------------------------------------------------------------

const COMMANDS: &str = "\
filler: [please, the]
commands:
  deploy:
    phrases: [deploy, ship]
    action: deploy
    target: environment
    allowed: [deployers]
  restart:
    phrases: [restart, bounce]
    action: restart
    target: instance
";

const INSTANCES: &str = "\
groups:
  deployers: [U1]
environments:
  master:
    aliases: [prod, roi hunter]
    pools:
      api:
        switch: { type: memory, initial: blue }
        members:
          blue: { url: \"http://127.0.0.1:1\" }
          green: { url: \"http://127.0.0.1:2\" }
";

fn load_with(
    commands: &str,
    instances: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<config::Config, ConfigErrors> {
    bot_core::load_strs_with_env(commands, instances, env)
}

/// Every error, rendered as the user sees it.
fn errors(commands: &str, instances: &str) -> Vec<String> {
    match load_with(commands, instances, &no_env) {
        Ok(_) => panic!("expected errors, the config loaded"),
        Err(ConfigErrors(errors)) => errors.iter().map(ConfigError::to_string).collect(),
    }
}

/// The only error.
fn error(commands: &str, instances: &str) -> String {
    let all = errors(commands, instances);
    assert_eq!(all.len(), 1, "expected exactly one error, got {all:#?}");
    all[0].clone()
}

#[test]
fn the_minimal_fixtures_are_valid() {
    let config = load_with(COMMANDS, INSTANCES, &no_env).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.summary().instances, 2);
    let master = config.env("master").expect("master");
    assert_eq!(master.aliases, ["master", "prod", "roi hunter"]);
    assert_eq!(
        master.pools[0].switch,
        SwitchSpec::Memory {
            initial: "blue".into()
        }
    );
}

#[test]
fn yaml_syntax_error_has_its_position() {
    let bad = INSTANCES.replace("[prod, roi hunter]", "[prod, roi hunter]]");
    assert_eq!(
        error(COMMANDS, &bad),
        "instances.yaml:5:32: misplaced bracket"
    );
}

#[test]
fn both_files_syntax_errors_are_reported_together() {
    let c = COMMANDS.replace("action: deploy", "action: [deploy");
    let i = INSTANCES.replace("  deployers: [U1]", "  deployers: [U1]]");
    let all = errors(&c, &i);
    assert_eq!(all.len(), 2, "{all:#?}");
    assert!(all[0].starts_with("commands.yaml:5:"), "{all:#?}");
    assert!(all[1].starts_with("instances.yaml:2:"), "{all:#?}");
}

#[test]
fn invalid_utf8_names_the_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("commands.yaml"), COMMANDS).expect("write");
    let mut bytes = INSTANCES.as_bytes().to_vec();
    let at = INSTANCES.find("U1").expect("U1");
    bytes[at + 1] = 0xff; // line 2, `U\xff`
    std::fs::write(dir.path().join("instances.yaml"), bytes).expect("write");
    let err = bot_core::load_dir_with_env(dir.path(), &no_env).expect_err("not UTF-8");
    let file = dir.path().join("instances.yaml").display().to_string();
    assert_eq!(err.0.len(), 1);
    assert_eq!(
        err.to_string(),
        format!("{file}:2:16: `{file}` is not valid UTF-8 (save the file as UTF-8)")
    );
}

#[test]
fn missing_file_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("commands.yaml"), COMMANDS).expect("write");
    let err = bot_core::load_dir_with_env(dir.path(), &no_env).expect_err("missing");
    let text = err.to_string();
    assert!(text.contains("instances.yaml"), "{text}");
    assert!(text.starts_with("cannot read"), "{text}");
}

#[test]
fn unknown_key_suggests_the_closest() {
    let bad = INSTANCES.replace("    aliases: [prod", "    alias: [prod");
    assert_eq!(
        error(COMMANDS, &bad),
        "instances.yaml:5:5: unknown key `alias` (did you mean `aliases`?)"
    );
    let bad = COMMANDS.replace("    target: instance", "    targte: instance");
    assert_eq!(
        error(&bad, INSTANCES),
        "commands.yaml:11:5: unknown key `targte` (did you mean `target`?)"
    );
}

#[test]
fn every_unknown_key_is_reported_at_once() {
    let bad = INSTANCES
        .replace("groups:", "github_app:\n  id: 1\n  key: x\ngroups:")
        .replace("environments:", "enviroments_extra: 2\nenvironments:")
        .replace("    aliases: [prod", "    alias: [prod");
    let all = errors(COMMANDS, &bad);
    assert_eq!(all.len(), 3, "{all:#?}");
    assert!(
        all[0].starts_with("instances.yaml:1:1: unknown key `github_app`"),
        "{all:#?}"
    );
    assert!(
        all[1].starts_with("instances.yaml:6:1: unknown key `enviroments_extra`"),
        "{all:#?}"
    );
    assert!(
        all[2].starts_with("instances.yaml:9:5: unknown key `alias`"),
        "{all:#?}"
    );
}

#[test]
fn an_unknown_key_owning_a_block_sequence_goes_with_it() {
    let bad = INSTANCES.replace(
        "    aliases: [prod, roi hunter]",
        "    alias:\n    - prod\n    - roi hunter",
    );
    let all = errors(COMMANDS, &bad);
    assert_eq!(all.len(), 1, "no second, misleading error: {all:#?}");
    assert!(all[0].contains("unknown key `alias`"), "{all:#?}");
}

#[test]
fn unknown_key_far_from_everything_lists_the_keys() {
    let bad = INSTANCES.replace("groups:", "zzzzzzzz: 1\ngroups:");
    let e = error(COMMANDS, &bad);
    assert!(
        e.starts_with("instances.yaml:1:1: unknown key `zzzzzzzz` (expected one of `settings`"),
        "{e}"
    );
}

#[test]
fn wrong_type_has_its_position() {
    let bad = INSTANCES.replace("    aliases:", "    protected: maybe\n    aliases:");
    assert_eq!(
        error(COMMANDS, &bad),
        "instances.yaml:5:16: invalid boolean (write `true` or `false`)"
    );
}

#[test]
fn bad_duration() {
    let bad = format!("settings:\n  probe_timeout: 2 seconds\n  lock_lease: 1h\n{INSTANCES}");
    assert_eq!(
        error(COMMANDS, &bad),
        "instances.yaml:2:18: `2 seconds` is not a duration \
         (write a number and a unit, e.g. `1500ms`, `2s`, `30m`, `1h`)"
    );
    let ok = format!("settings:\n  probe_timeout: 1500ms\n  lock_lease: 1h\n{INSTANCES}");
    let config = load_with(COMMANDS, &ok, &no_env).expect("valid durations");
    assert_eq!(config.settings.probe_timeout, Duration::from_millis(1500));
    assert_eq!(config.settings.lock_lease, Duration::from_secs(3600));
}

#[test]
fn unknown_switch_type_action_and_target() {
    let bad = INSTANCES.replace("type: memory", "type: memroy");
    assert_eq!(
        error(COMMANDS, &bad),
        "instances.yaml:8:25: unknown switch type `memroy` (did you mean `memory`?)"
    );
    let bad = COMMANDS.replace("action: restart", "action: restrat");
    assert_eq!(
        error(&bad, INSTANCES),
        "commands.yaml:10:13: unknown action `restrat` (did you mean `restart`?)"
    );
    let bad = COMMANDS.replace("target: instance", "target: box");
    assert_eq!(
        error(&bad, INSTANCES),
        "commands.yaml:11:13: unknown target `box` \
         (expected one of `nothing`, `environment`, `pool`, `instance`)"
    );
}

/// A second environment with the given alias list and member names.
fn staging(aliases: &str, pool: &str, blue: &str) -> String {
    format!(
        "{INSTANCES}  staging:
    aliases: [{aliases}]
    pools:
      {pool}:
        switch: {{ type: memory }}
        members:
          {blue}: {{ url: \"http://127.0.0.1:3\" }}
          green: {{ url: \"http://127.0.0.1:4\" }}
"
    )
}

#[test]
fn same_pool_and_member_names_across_environments_are_fine() {
    let config = load_with(COMMANDS, &staging("stage", "api", "blue"), &no_env)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.summary().pools, 2);
    // The memory switch starts on the first member when `initial` is omitted.
    assert_eq!(
        config.pool("staging", "api").expect("pool").switch,
        SwitchSpec::Memory {
            initial: "blue".into()
        }
    );
}

#[test]
fn environment_alias_claimed_twice() {
    assert_eq!(
        error(COMMANDS, &staging("stage, PROD", "api", "blue")),
        "instances.yaml:13:22: `prod` (alias of environment `staging`) is already used as the \
         alias of environment `master` (first claimed at instances.yaml:5:15; \
         a word may name only one thing)"
    );
    // The canonical name counts as an alias.
    assert_eq!(
        error(COMMANDS, &staging("master", "api", "blue")),
        "instances.yaml:13:15: `master` (alias of environment `staging`) is already used as the \
         name of environment `master` (first claimed at instances.yaml:4:3; \
         a word may name only one thing)"
    );
}

#[test]
fn word_claimed_by_two_kinds() {
    // A pool named like a member.
    let e = error(COMMANDS, &staging("stage", "blue", "purple"));
    assert_eq!(
        e,
        "instances.yaml:15:7: `blue` (name of pool `staging blue`) is already used as the \
         name of member `master api blue` (first claimed at instances.yaml:10:11; \
         a word may name only one thing)"
    );
    // An environment alias that is also a member name.
    let bad = INSTANCES.replace("[prod, roi hunter]", "[prod, green]");
    assert_eq!(
        error(COMMANDS, &bad),
        "instances.yaml:11:11: `green` (name of member `master api green`) is already used as \
         the alias of environment `master` (first claimed at instances.yaml:5:21; \
         a word may name only one thing)"
    );
}

#[test]
fn instance_alias_and_emoji_conflicts() {
    let bad = INSTANCES
        .replace(
            "blue: { url: \"http://127.0.0.1:1\" }",
            "blue: { url: \"http://127.0.0.1:1\", aliases: [rh one], emoji: [\":star:\"] }",
        )
        .replace(
            "green: { url: \"http://127.0.0.1:2\" }",
            "green: { url: \"http://127.0.0.1:2\", aliases: [RH  one], emoji: [\":Star:\"] }",
        );
    let all = errors(COMMANDS, &bad);
    assert_eq!(
        all,
        [
            "instances.yaml:11:57: `rh one` (alias of instance `master api green`) is already \
             used as the alias of instance `master api blue` (first claimed at \
             instances.yaml:10:56; a word may name only one thing)",
            "instances.yaml:11:75: `star` (emoji of member `master api green`) is already \
             used as the emoji of member `master api blue` (first claimed at \
             instances.yaml:10:73; a word may name only one thing)",
        ]
    );
}

#[test]
fn pool_alias_shared_by_differently_named_pools() {
    let bad = staging("stage", "cron", "blue").replace(
        "    pools:\n      cron:",
        "    pools:\n      cron:\n        aliases: [api]",
    );
    let all = errors(COMMANDS, &bad);
    assert!(
        all.iter().any(|e| e.starts_with(
            "instances.yaml:16:19: `api` (alias of pool `staging cron`) is already used as the name of pool `master api`"
        )),
        "{all:#?}"
    );
}

#[test]
fn command_phrase_conflicts() {
    let bad = COMMANDS.replace("[restart, bounce]", "[restart, ship]");
    assert_eq!(
        error(&bad, INSTANCES),
        "commands.yaml:9:24: phrase `ship` of command `restart` already invokes command `deploy` \
         (first claimed at commands.yaml:4:23; a phrase may invoke only one command)"
    );
    let bad = COMMANDS.replace("[restart, bounce]", "[restart, The]");
    let e = error(&bad, INSTANCES);
    assert!(
        e.starts_with("commands.yaml:9:24: phrase `the` of command `restart` is a filler word ("),
        "{e}"
    );
}

#[test]
fn pool_without_switch() {
    let bad = INSTANCES.replace("        switch: { type: memory, initial: blue }\n", "");
    assert_eq!(
        error(COMMANDS, &bad),
        "instances.yaml:7:7: pool `api` has no traffic switch \
         (add `switch:` with type haproxy, http, jenkins or memory)"
    );
}

#[test]
fn pool_needs_two_members_and_memory_initial_must_be_one() {
    let bad = INSTANCES
        .replace("          green: { url: \"http://127.0.0.1:2\" }\n", "")
        .replace("initial: blue", "initial: red");
    let all = errors(COMMANDS, &bad);
    assert_eq!(all.len(), 2, "{all:#?}");
    assert!(
        all[0].starts_with("instances.yaml:7:7: pool `api` has only one member (blue/green"),
        "{all:#?}"
    );
    assert!(
        all[1].starts_with(
            "instances.yaml:8:42: `initial` member `red` is not a member of pool `api`"
        ),
        "{all:#?}"
    );
}

#[test]
fn undefined_variable_is_named_at_its_value() {
    let bad = INSTANCES.replace("\"http://127.0.0.1:2\"", "\"${GREEN_URL}/x\"");
    assert_eq!(
        error(COMMANDS, &bad),
        "instances.yaml:11:25: environment variable `GREEN_URL` is not set \
         (set it, or give a default: `${GREEN_URL:-value}`)"
    );
    let env = |name: &str| (name == "GREEN_URL").then(|| "http://127.0.0.1:7".to_owned());
    let config = load_with(COMMANDS, &bad, &env).expect("set variable");
    assert_eq!(
        config.pool("master", "api").expect("api").members[1].url,
        "http://127.0.0.1:7/x"
    );
}

#[test]
fn default_applies_when_unset_or_empty_and_double_dollar_escapes() {
    let with_default = INSTANCES
        .replace(
            "\"http://127.0.0.1:2\"",
            "\"${GREEN_URL:-http://127.0.0.1:9}\"",
        )
        .replace("deployers: [U1]", "deployers: [\"$${U1}\"]");
    let unset = load_with(COMMANDS, &with_default, &no_env).expect("default");
    let empty = load_with(COMMANDS, &with_default, &|_| Some(String::new())).expect("default");
    let set = load_with(COMMANDS, &with_default, &|_| {
        Some("http://127.0.0.1:5".to_owned())
    })
    .expect("set");
    let green = |c: &config::Config| c.pool("master", "api").expect("api").members[1].url.clone();
    assert_eq!(green(&unset), "http://127.0.0.1:9");
    assert_eq!(green(&empty), "http://127.0.0.1:9");
    assert_eq!(green(&set), "http://127.0.0.1:5");
    assert_eq!(unset.groups["deployers"], ["${U1}"]);
}

#[test]
fn interpolation_applies_in_commands_too() {
    let bad = COMMANDS.replace(
        "action: restart",
        "action: restart\n    help: \"${HELP_TEXT}\"",
    );
    assert_eq!(
        error(&bad, INSTANCES),
        "commands.yaml:11:11: environment variable `HELP_TEXT` is not set \
         (set it, or give a default: `${HELP_TEXT:-value}`)"
    );
}

#[test]
fn urls_groups_pointers_and_switch_fields_are_checked() {
    let commands = COMMANDS.replace("allowed: [deployers]", "allowed: [deployer]");
    let instances = INSTANCES
        .replace("\"http://127.0.0.1:1\"", "\"ftp://127.0.0.1:1\"")
        .replace("\"http://127.0.0.1:2\"", "\"not a url\"")
        .replace(
            "switch: { type: memory, initial: blue }",
            "switch: { type: http, get: \"http://127.0.0.1:3/active\", pointer: active, initial: blue }",
        );
    let all = errors(&commands, &instances);
    assert_eq!(
        all,
        [
            "commands.yaml:7:15: unknown group `deployer` (did you mean `deployers`? \
             Groups are defined under `groups:` in instances.yaml.)",
            "instances.yaml:8:17: a `http` switch needs `set` \
             (add `set: { method: POST, url: http://…, body: … }`)",
            "instances.yaml:8:74: JSON pointer `active` must start with `/` (write `/active`)",
            "instances.yaml:8:91: `initial` is not used by a `http` switch \
             (it belongs to a memory switch)",
            "instances.yaml:10:24: `ftp://127.0.0.1:1` is not an http(s) URL: scheme `ftp` is \
             not http or https (write a full URL such as `http://127.0.0.1:8080`)",
            "instances.yaml:11:25: `not a url` is not an http(s) URL: relative URL without a base \
             (write a full URL such as `http://127.0.0.1:8080`)",
        ]
    );
}

#[test]
fn several_errors_are_reported_together_in_file_order() {
    let commands = COMMANDS.replace("action: restart", "action: restrat");
    let instances = INSTANCES
        .replace("    aliases: [prod", "    alias_list: [prod")
        .replace("type: memory", "type: memroy");
    // An unknown key does not stop the file: the rest of it is still checked.
    let all = errors(&commands, &instances);
    assert_eq!(all.len(), 3, "{all:#?}");
    assert!(all[1].contains("unknown key `alias_list`"), "{all:#?}");
    assert!(all[2].contains("unknown switch type"), "{all:#?}");

    let instances = INSTANCES
        .replace("type: memory", "type: memroy")
        .replace("\"http://127.0.0.1:2\"", "\"${NOPE}\"");
    let err = load_with(&commands, &instances, &no_env).expect_err("three problems");
    assert_eq!(err.0.len(), 3, "{err}");
    let text = err.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(
        lines[0].starts_with("commands.yaml:10:13: unknown action"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("instances.yaml:8:25: unknown switch type"),
        "{text}"
    );
    assert!(
        lines[2].starts_with("instances.yaml:11:25: environment variable `NOPE`"),
        "{text}"
    );
}

#[test]
fn duplicate_member_is_reported_at_the_second() {
    let bad = INSTANCES.replace(
        "          green:",
        "          blue: { url: \"http://127.0.0.1:3\" }\n          green:",
    );
    assert_eq!(
        error(COMMANDS, &bad),
        "instances.yaml:11:11: `blue` is defined twice (each key may appear only once in a mapping)"
    );
}

#[test]
fn haproxy_and_jenkins_switches_and_instance_overrides() {
    let instances = INSTANCES
        .replace(
            "switch: { type: memory, initial: blue }",
            "switch: { type: haproxy, address: \"127.0.0.1:9999\", backend: be_api, \
             servers: { blue: api_blue }, off_state: maint }",
        )
        .replace(
            "green: { url: \"http://127.0.0.1:2\" }",
            "green: { url: \"http://127.0.0.1:2\", tasks: /jobs, health: { path: /ready }, \
             restart: { method: post, url: \"http://127.0.0.1:2/restart\" } }",
        )
        + "  staging:
    pools:
      api:
        switch:
          type: jenkins
          job: platform/switch
          parameters: { COLOUR: \"{colour}\" }
          get: http://127.0.0.1:5/active
          pointer: /active
        members:
          blue: { url: \"http://127.0.0.1:3\" }
          green: { url: \"http://127.0.0.1:4\" }
defaults:
  health: { expect_status: 204, contains: [up] }
  tasks: /tasks
";
    let config = load_with(COMMANDS, &instances, &no_env).unwrap_or_else(|e| panic!("{e}"));
    let api = config.pool("master", "api").expect("api");
    assert_eq!(
        api.switch,
        SwitchSpec::Haproxy {
            address: "127.0.0.1:9999".into(),
            backend: "be_api".into(),
            servers: vec![("blue".into(), "api_blue".into())],
            off_state: "maint".into(),
        }
    );
    let (blue, green) = (&api.members[0], &api.members[1]);
    assert_eq!(blue.tasks.as_deref(), Some("/tasks"));
    assert_eq!(green.tasks.as_deref(), Some("/jobs"));
    // Field by field: the instance's path, the defaults' status and body check.
    assert_eq!(green.health.path, "/ready");
    assert_eq!(green.health.expect_status, 204);
    assert_eq!(green.health.contains, ["up"]);
    assert_eq!(blue.health.path, "/health");
    assert!(blue.restart.is_none());
    match &green.restart {
        Some(ActionSpec::Http(req)) => {
            assert_eq!(req.method, "POST");
            assert_eq!(req.url, "http://127.0.0.1:2/restart");
        }
        other => panic!("expected an http restart, got {other:?}"),
    }
    match &config.pool("staging", "api").expect("staging api").switch {
        SwitchSpec::Jenkins {
            job,
            get_url,
            pointer,
        } => {
            assert_eq!(job.job, "platform/switch");
            assert_eq!(
                job.parameters,
                [("COLOUR".to_owned(), "{colour}".to_owned())]
            );
            assert_eq!(get_url, "http://127.0.0.1:5/active");
            assert_eq!(pointer, "/active");
        }
        other => panic!("expected a jenkins switch, got {other:?}"),
    }
}

#[test]
fn jenkins_without_token_and_job_command_without_job() {
    let instances = format!("jenkins:\n  url: http://127.0.0.1:18090\n  user: bot\n{INSTANCES}");
    let commands = COMMANDS.replace("action: restart", "action: job");
    let all = errors(&commands, &instances);
    assert_eq!(
        all,
        [
            "commands.yaml:10:13: `action: job` needs `job` \
             (add `job: folder/name`, and `parameters:` if it takes any)",
            "instances.yaml:2:3: `jenkins` has no `token` \
             (add `token: ${JENKINS_TOKEN}`; never write the token itself in the file)",
        ]
    );
}

#[test]
fn an_http_switch_shares_traffic_by_weight_with_a_weights_request_and_pointer() {
    let with = |fields: &str| {
        INSTANCES.replace(
            "switch: { type: memory, initial: blue }",
            &format!(
                "switch: {{ type: http, set: {{ method: POST, url: \"http://127.0.0.1:3/s\", body: '{{\"active\": \"{{colour}}\"}}' }}, get: \"http://127.0.0.1:3/s\", pointer: /active{fields} }}"
            ),
        )
    };
    let config = load_with(
        COMMANDS,
        &with(", weights: { method: POST, url: \"http://127.0.0.1:3/w\", body: '{weights}' }, weights_pointer: /weights"),
        &no_env,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let master = config.env("master").expect("master");
    match &master.pools[0].switch {
        SwitchSpec::Http {
            weights: Some(w), ..
        } => {
            assert_eq!(w.set.url, "http://127.0.0.1:3/w");
            assert_eq!(w.set.body.as_deref(), Some("{weights}"));
            assert_eq!(w.pointer, "/weights");
        }
        other => panic!("expected an http switch with weights, got {other:?}"),
    }
    assert_eq!(
        error(COMMANDS, &with(", weights_pointer: /weights")),
        "instances.yaml:8:179: the switch of pool `api` has `weights_pointer` but no `weights` \
         (add `weights: { method: POST, url: http://…, body: '{weights}' }`)"
    );
    let on_memory = INSTANCES.replace(
        "switch: { type: memory, initial: blue }",
        "switch: { type: memory, initial: blue, weights_pointer: /w }",
    );
    assert_eq!(
        error(COMMANDS, &on_memory),
        "instances.yaml:8:65: `weights_pointer` is not used by a `memory` switch \
         (it belongs to a http switch)"
    );
}

// ---- where deploys show up ----------------------------------------------------------

/// [`INSTANCES`] with a second environment and `extra` at the top level.
fn showing(extra: &str, staging_extra: &str) -> String {
    format!(
        "{extra}\n{INSTANCES}  staging:\n{staging_extra}    pools:\n      api:\n        switch: {{ type: memory, initial: blue }}\n        members:\n          blue: {{ url: \"http://127.0.0.1:3\" }}\n          green: {{ url: \"http://127.0.0.1:4\" }}\n"
    )
}

#[test]
fn github_and_markers_read_with_their_secrets_from_variables() {
    let instances = showing(
        "github:\n  url: ${GITHUB_API_URL}\n  repo: acme/app\n  token: ${GITHUB_TOKEN}\n  environments: {master: production}\nmarkers:\n  grafana: {url: \"http://127.0.0.1:3001\", token: \"${GRAFANA_TOKEN}\"}\n  pagerduty: {url: \"http://127.0.0.1:3002\", routing_key: \"${PD_KEY}\"}\n",
        "    github: {url: \"http://127.0.0.1:3003/\", repo: acme/staging-app, token: \"${STAGING_GITHUB_TOKEN}\"}\n",
    );
    let env = |name: &str| match name {
        "GITHUB_API_URL" => Some("http://127.0.0.1:3000".to_owned()),
        "GITHUB_TOKEN" => Some("ghs-global".to_owned()),
        "STAGING_GITHUB_TOKEN" => Some("ghs-staging".to_owned()),
        "GRAFANA_TOKEN" => Some("glsa".to_owned()),
        "PD_KEY" => Some("key".to_owned()),
        _ => None,
    };
    let config = load_with(COMMANDS, &instances, &env).unwrap_or_else(|e| panic!("{e}"));
    let master = config.github("master").expect("master records deployments");
    assert_eq!(master.url, "http://127.0.0.1:3000");
    assert_eq!(master.repo, "acme/app");
    assert_eq!(master.token.expose(), "ghs-global");
    assert_eq!(master.environment("master"), "production");
    let staging = config.github("staging").expect("staging has its own");
    assert_eq!(staging.url, "http://127.0.0.1:3003", "no trailing slash");
    assert_eq!(staging.repo, "acme/staging-app");
    assert_eq!(staging.token.expose(), "ghs-staging");
    assert_eq!(staging.environment("staging"), "staging");
    assert!(
        !format!("{config:?}").contains("ghs-"),
        "a token never prints"
    );
    let grafana = config.markers.grafana.as_ref().expect("grafana");
    assert_eq!(grafana.url, "http://127.0.0.1:3001");
    let pd = config.markers.pagerduty.as_ref().expect("pagerduty");
    assert_eq!(
        pd.url, "http://127.0.0.1:3002/v2/change/enqueue",
        "PagerDuty's base means its change-events endpoint"
    );
}

#[test]
fn an_empty_url_turns_github_and_markers_off() {
    let instances = showing(
        "github: {url: \"${GITHUB_API_URL:-}\", repo: acme/app, token: \"${GITHUB_TOKEN:-}\"}\nmarkers:\n  grafana: {url: \"${GRAFANA_URL:-}\", token: \"${GRAFANA_TOKEN:-}\"}\n",
        "",
    );
    let config = load_with(COMMANDS, &instances, &no_env).unwrap_or_else(|e| panic!("{e}"));
    assert!(config.github("master").is_none());
    assert!(config.github("staging").is_none());
    assert!(config.markers.grafana.is_none());
}

#[test]
fn a_url_without_its_token_or_a_token_as_a_default_is_an_error() {
    // On (a URL) but no token: every record would be refused, so say it now.
    let instances = showing(
        "github: {url: \"http://127.0.0.1:3000\", repo: acme/app, token: \"${GITHUB_TOKEN:-}\"}\n",
        "",
    );
    let all = errors(COMMANDS, &instances);
    assert_eq!(all.len(), 1, "{all:#?}");
    assert!(
        all[0].contains("has a `url` but its `token` is empty"),
        "{all:#?}"
    );
    // A default is the token written in the file.
    let instances = showing(
        "github: {url: \"http://127.0.0.1:3000\", repo: acme/app, token: \"${GITHUB_TOKEN:-ghp_in_the_file}\"}\n",
        "",
    );
    let all = errors(COMMANDS, &instances);
    assert!(
        all.iter()
            .any(|e| e.contains("token is written in the file") && !e.contains("ghp_in_the_file")),
        "{all:#?}"
    );
}

#[test]
fn a_token_written_in_the_file_or_a_bad_repo_is_an_error_at_its_place() {
    let instances = showing(
        "github: {url: \"http://127.0.0.1:3000\", repo: acme, token: ghp_written_here}\nmarkers:\n  grafana: {url: \"http://127.0.0.1:3001\"}\n",
        "",
    );
    let all = errors(COMMANDS, &instances);
    assert_eq!(all.len(), 3, "{all:#?}");
    assert!(
        all[0].starts_with("instances.yaml:1:") && all[0].contains("`acme` is not a repository"),
        "{all:#?}"
    );
    assert!(
        all[1].starts_with("instances.yaml:1:")
            && all[1].contains("the `github` token is written in the file")
            && !all[1].contains("ghp_written_here"),
        "the error names the place, never the token: {all:#?}"
    );
    assert!(
        all[2].starts_with("instances.yaml:3:") && all[2].contains("`grafana` has no `token`"),
        "{all:#?}"
    );
}
