//! Reloading the configuration: a good file takes effect, a bad one is reported with
//! `file:line:column` and the running configuration stays — through the library and
//! through SIGHUP to a running `crossroads serve`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bot_core::{Bot, Outcome, Request};
use bot_server::reload::reload_config;

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// A copy of the shipped config in a temporary directory.
fn config_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for f in ["commands.yaml", "instances.yaml"] {
        std::fs::copy(repo().join(f), dir.path().join(f)).expect("copy");
    }
    dir
}

/// Rewrites instances.yaml with `from` replaced by `to`.
fn edit(dir: &Path, from: &str, to: &str) {
    let path = dir.join("instances.yaml");
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(text.contains(from), "{from:?} not in instances.yaml");
    std::fs::write(path, text.replacen(from, to, 1)).expect("write");
}

const STAGING_ALIASES: &str = "aliases: [stage, stg, preprod]";

#[tokio::test]
async fn a_good_file_takes_effect_and_a_bad_one_keeps_the_old_config() {
    let dir = config_dir();
    let bot = Bot::builder(bot_core::load_dir(dir.path()).expect("config")).build();
    let ask = |bot: Bot| async move { bot.handle(Request::text("U0DEMO", "history pluto")).await };

    assert_eq!(
        ask(bot.clone()).await.outcome,
        Outcome::Rejected,
        "`pluto` means nothing yet"
    );

    edit(
        dir.path(),
        STAGING_ALIASES,
        "aliases: [stage, stg, preprod, pluto]",
    );
    let summary = reload_config(&bot, dir.path()).expect("reload");
    assert_eq!(summary.environments, 2);
    let reply = ask(bot.clone()).await;
    assert_eq!(reply.outcome, Outcome::Info, "{}", reply.to_plain_text());
    assert!(
        reply.to_plain_text().contains("staging"),
        "{}",
        reply.to_plain_text()
    );

    edit(
        dir.path(),
        "probe_timeout: 2s",
        "probe_timeout: 2s\n  probe_timout: 3s",
    );
    let errors = reload_config(&bot, dir.path()).expect_err("a bad file is refused");
    let text = errors.to_string();
    assert!(
        text.contains("instances.yaml:") && text.contains("probe_timout"),
        "{text}"
    );
    assert_eq!(
        ask(bot).await.outcome,
        Outcome::Info,
        "the previous configuration still runs"
    );
}

#[cfg(unix)]
#[test]
fn sighup_reloads_a_running_server_and_survives_a_bad_file() {
    let dir = config_dir();
    let port = crossroads_sim::free_port().expect("port");
    let dead = crossroads_sim::dead_url().expect("dead url");
    let mut child = Command::new(env!("CARGO_BIN_EXE_crossroads"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--config-dir",
        ])
        .arg(dir.path())
        .env("SLACK_SIGNING_SECRET", "test-secret")
        .env("SLACK_BOT_TOKEN", "xoxb-test")
        .env("CROSSROADS_DATABASE_URL", "memory:")
        .env("SLACK_API_URL", format!("{dead}/api/"))
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let wait_for = |needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
                if line.contains(needle) {
                    return line;
                }
            }
        }
        panic!("serve never logged {needle:?}");
    };
    let healthy = || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !healthy() {
        assert!(Instant::now() < deadline, "serve never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    let hup = || {
        let status = Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    };

    edit(
        dir.path(),
        "probe_timeout: 2s",
        "probe_timeout: 2s\n  probe_timout: 3s",
    );
    hup();
    let line = wait_for("keeping the previous configuration");
    assert!(line.contains("reload failed"), "{line}");
    wait_for("probe_timout");
    assert!(healthy(), "a bad file does not stop the server");

    edit(dir.path(), "\n  probe_timout: 3s", "");
    hup();
    wait_for("configuration reloaded");

    let _ = child.kill();
    let _ = child.wait();
}
