//! The `crossroads` binary as a user runs it: `check`, `run`, `run --json`, `demo`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_crossroads");

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(repo())
        .env_remove("RUST_LOG")
        .env("CROSSROADS_CLI_ACT_AS", "1")
        .env("CROSSROADS_DATABASE_URL", "memory:")
        .output()
        .expect("run crossroads")
}

fn run_with_store(args: &[&str], url: &str) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(repo())
        .env_remove("RUST_LOG")
        .env("CROSSROADS_CLI_ACT_AS", "1")
        .env("CROSSROADS_DATABASE_URL", url)
        .output()
        .expect("run crossroads")
}

#[test]
fn migrate_creates_the_sqlite_store_and_check_then_finds_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("state.db");
    let url = format!("sqlite://{}", db.display());
    let before = run_with_store(&["check"], &url);
    assert!(before.status.success(), "{}", text(&before.stderr));
    assert!(
        text(&before.stdout).contains("does not exist yet"),
        "{}",
        text(&before.stdout)
    );
    let out = run_with_store(&["migrate"], &url);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(db.exists(), "the database file is created");
    let after = run_with_store(&["check"], &url);
    assert!(after.status.success(), "{}", text(&after.stderr));
    assert!(
        text(&after.stdout).contains("answers"),
        "{}",
        text(&after.stdout)
    );
}

#[test]
fn check_reports_a_store_it_cannot_reach_without_its_password() {
    // Nothing listens on port 1.
    let out = run_with_store(
        &["check"],
        "postgres://crossroads:s3cret@127.0.0.1:1/crossroads",
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("127.0.0.1:1"), "names the store: {stderr}");
    assert!(stderr.contains("unavailable"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "no password: {stderr}");
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn check_summarises_the_shipped_config() {
    let out = run(&["check"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("30 commands, 2 environments, 6 pools, 12 instances"),
        "{stdout}"
    );
}

#[test]
fn check_reports_errors_with_file_line_column_and_exits_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        repo().join("commands.yaml"),
        dir.path().join("commands.yaml"),
    )
    .expect("copy");
    let instances = std::fs::read_to_string(repo().join("instances.yaml")).expect("read");
    // Line 3 (1-based) of the broken file carries a misspelt key.
    let broken = instances
        .replacen(
            "settings:\n  probe_timeout: 2s",
            "settings:\n  probe_timeout: 2s\n  probe_timout: 3s",
            1,
        )
        .replacen("\ngroups:", "\ngroupz: {}\ngroups:", 1);
    let line = broken
        .lines()
        .position(|l| l.contains("probe_timout"))
        .expect("line")
        + 1;
    std::fs::write(dir.path().join("instances.yaml"), &broken).expect("write");

    let out = run(&[
        "check",
        "--config-dir",
        dir.path().to_str().expect("utf-8 path"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("instances.yaml:{line}:3:")),
        "{stderr}"
    );
    assert!(stderr.contains("probe_timout"), "{stderr}");
    assert!(stderr.contains("did you mean `probe_timeout`?"), "{stderr}");
    let second = broken
        .lines()
        .position(|l| l.starts_with("groupz"))
        .expect("line")
        + 1;
    assert!(
        stderr.contains(&format!("instances.yaml:{second}:1: unknown key `groupz`")),
        "every unknown key, not only the first: {stderr}"
    );
}

#[test]
fn run_prints_the_reply_as_text_or_block_kit() {
    let out = run(&["run", "--as", "U0DEMO", "help", "deploy"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("== help: deploy =="),
        "{}",
        text(&out.stdout)
    );

    // Exit 2: the reply asks for a click, which a script cannot give.
    let out = run(&["run", "--as", "U0DEMO", "--json", "health"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let blocks = json["blocks"].as_array().expect("blocks");
    let buttons: usize = blocks
        .iter()
        .filter(|b| b["type"] == "actions")
        .map(|b| b["elements"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(buttons, 12, "one button per instance, both regions: {json}");
}

#[test]
fn run_exits_1_when_the_bot_refuses() {
    let out = run(&["run", "--as", "U0DEMO", "make", "coffee"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("I don't know the command `make`"),
        "{}",
        text(&out.stdout)
    );
}

#[tokio::test]
async fn run_exits_1_for_an_unhealthy_instance_and_0_for_a_healthy_one() {
    use crossroads_sim::instance::{Behaviour, SimInstance};
    let blue = SimInstance::start("master api blue", "1.0.0")
        .await
        .expect("instance");
    let health = |url: String| {
        Command::new(BIN)
            .args(["run", "--as", "U0DEMO", "health rh blue eu"])
            .current_dir(repo())
            .env_remove("RUST_LOG")
            .env("CROSSROADS_CLI_ACT_AS", "1")
            .env("CROSSROADS_DATABASE_URL", "memory:")
            .env("MASTER_API_BLUE_URL", url)
            .output()
            .expect("run crossroads")
    };
    let url = blue.url();
    let out = tokio::task::spawn_blocking(move || health(url))
        .await
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("is healthy"),
        "{}",
        text(&out.stdout)
    );

    blue.control().set_behaviour(Behaviour::Unhealthy);
    let url = blue.url();
    let out = tokio::task::spawn_blocking(move || health(url))
        .await
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("is unhealthy"),
        "{}",
        text(&out.stdout)
    );

    let dead = crossroads_sim::dead_url().expect("a dead url");
    let out = tokio::task::spawn_blocking(move || health(dead))
        .await
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("is down"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn demo_answers_read_only_commands_with_nothing_configured() {
    let mut demo = Command::new(BIN);
    demo.arg("demo").current_dir(std::env::temp_dir()); // not the repository: the built-in config is used
                                                        // Free ports, so this never meets another demo.
    for var in [
        "CROSSROADS_GITHUB_URL",
        "GRAFANA_URL",
        "PAGERDUTY_CHANGE_URL",
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
    ] {
        let port = crossroads_sim::free_port().expect("a free port");
        demo.env(var, format!("http://127.0.0.1:{port}"));
    }
    let mut child = demo
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start demo");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"status\nhealth\n2\nshow tasks staging purple\nquit\n")
        .expect("type");
    let out = child.wait_with_output().expect("demo output");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("Broken on purpose: master eu cron yellow answers 503"),
        "the banner says what is broken: {stdout}"
    );
    assert!(stdout.contains("11 of 12 instances healthy"), "{stdout}");
    assert!(stdout.contains("2/2 regions healthy"), "{stdout}");
    assert!(
        stdout.contains("yellow — unhealthy: status 200 (got 503)"),
        "{stdout}"
    );
    assert!(stdout.contains("[12] staging cron yellow"), "{stdout}");
    assert!(
        stdout.contains("@U0DEMO chose `health master eu api green`") && !stdout.contains("<@"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Tasks on staging cron purple (3)"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("Leaving while"),
        "nothing was left running: {stdout}"
    );
}
