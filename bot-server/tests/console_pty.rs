//! The console in a real terminal (a pseudo-terminal): `crossroads demo` runs a
//! `deploy staging` while `status` answers, `yes` confirms a question, Ctrl-C clears
//! the line without stopping the deploy, Ctrl-D leaves, and nothing on the screen is
//! raw Slack markup (`*bold*`, `:emoji:`).

use std::process::Command;
use std::time::Duration;

use expectrl::process::Healthcheck as _;
use expectrl::session::OsSession;
use expectrl::{ControlCode, Eof, Expect, Regex, Session};

const BIN: &str = env!("CARGO_BIN_EXE_crossroads");

/// Every URL the shipped config reads from the environment, on free ports so the
/// test never meets another demo.
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

/// Strips ANSI escape sequences.
fn plain(screen: &str) -> String {
    let mut out = String::new();
    let mut chars = screen.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// Waits for `needle`, adding everything read to `seen`.
fn wait(session: &mut OsSession, seen: &mut String, needle: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    loop {
        match session.expect(needle) {
            Ok(found) => {
                seen.push_str(&String::from_utf8_lossy(found.as_bytes()));
                return;
            }
            // A pty read can come back empty before the demo has written anything
            // (seen once on a loaded machine); only a demo that ended is the end.
            Err(expectrl::Error::Eof)
                if std::time::Instant::now() < deadline && session.is_alive().unwrap_or(false) =>
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("waiting for {needle:?}: {e}\n--- screen so far ---\n{seen}"),
        }
    }
}

/// `crossroads demo` in a pty on free ports, at its prompt. A port picked free can be
/// taken by another process before the demo binds it: then the demo ends at once,
/// and it starts again on other ports (a few times) rather than fail on a race that
/// is not the demo's.
fn start_demo(home: &std::path::Path) -> (OsSession, String) {
    let mut last = String::new();
    for _ in 0..3 {
        let mut cmd = Command::new(BIN);
        cmd.arg("demo")
            // Not the repository: the built-in config, with the ports moved.
            .current_dir(home)
            .env("HOME", home)
            .env("TERM", "xterm-256color")
            .env_remove("NO_COLOR")
            .env_remove("SLACK_SIGNING_SECRET")
            .env_remove("RUST_LOG")
            // The shipped canary, at a test's pace.
            .env("STAGING_CANARY_PAUSE", "1s")
            .env("STAGING_CANARY_INTERVAL", "250ms");
        for var in PORT_VARS {
            let port = crossroads_sim::free_port().expect("a free port");
            cmd.env(var, format!("http://127.0.0.1:{port}"));
        }
        let mut session = Session::spawn(cmd).expect("spawn the demo in a pty");
        session.set_expect_timeout(Some(Duration::from_secs(40)));
        let deadline = std::time::Instant::now() + Duration::from_secs(40);
        loop {
            match session.expect("U0DEMO> ") {
                Ok(found) => return (session, String::from_utf8_lossy(found.as_bytes()).into()),
                // A pty read can come back empty before the demo has written anything.
                Err(expectrl::Error::Eof)
                    if std::time::Instant::now() < deadline
                        && session.is_alive().unwrap_or(false) =>
                {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) if session.is_alive().unwrap_or(false) => {
                    panic!("waiting for the demo's prompt: {e}")
                }
                // It ended before its prompt: start it again on other ports.
                Err(e) => {
                    last = e.to_string();
                    break;
                }
            }
        }
    }
    panic!("the demo never came to its prompt: {last}")
}

#[test]
fn a_deploy_runs_while_status_answers_and_yes_confirms() {
    let home = tempfile::tempdir().expect("home");
    let (mut session, mut seen) = start_demo(home.path());
    session.send_line("deploy staging").expect("type");
    wait(&mut session, &mut seen, "building");

    // While the deploy runs, status answers.
    session.send_line("status").expect("type");
    wait(&mut session, &mut seen, "11 of 12 instances healthy");
    assert!(
        !plain(&seen).contains("Deployed"),
        "status answered only after the deploy:\n{seen}"
    );

    // Ctrl-C clears the line and stops nothing.
    session.send("stat").expect("type");
    session.send(ControlCode::EndOfText).expect("Ctrl-C");
    wait(&mut session, &mut seen, "Ctrl-C clears the line");

    // A question answered with `yes`.
    session
        .send_line("force restart master eu active")
        .expect("type");
    wait(&mut session, &mut seen, "or yes / no)");
    session.send_line("yes").expect("type");
    wait(&mut session, &mut seen, "restart/1/) succeeded");

    // The deploy went on through all of it.
    wait(&mut session, &mut seen, "✅ Deployed");
    wait(&mut session, &mut seen, "U0DEMO> ");
    assert!(
        plain(&seen).contains("✅ Deployed main to staging"),
        "{seen}"
    );

    // The deploy shows up where people look: the demo's GitHub, Grafana and
    // PagerDuty stand-ins received it (sent from the outbox, so give them a moment).
    assert!(
        plain(&seen).contains("`demo` lists what they received"),
        "the banner says where deploys show up:\n{seen}"
    );
    // Sent from the outbox within a poll or two of the deploy's end.
    std::thread::sleep(Duration::from_secs(3));
    session.send_line("demo").expect("type");
    wait(&mut session, &mut seen, "PagerDuty: change event");
    wait(&mut session, &mut seen, "U0DEMO> ");
    let shown = plain(&seen);
    assert!(
        shown.contains("GitHub: deployment #1 of main to staging (deploy): in_progress → success")
            && shown.contains("Grafana: annotation [crossroads, staging, api, cron, success]")
            && shown.contains("PagerDuty: change event \"Deployed main to staging"),
        "{shown}"
    );

    // Up recalls history; Ctrl-D leaves.
    session
        .send(ControlCode::EndOfTransmission)
        .expect("Ctrl-D");
    match session.expect(Eof) {
        Ok(found) => seen.push_str(&String::from_utf8_lossy(found.as_bytes())),
        Err(e) => panic!("the console did not leave on Ctrl-D: {e}\n{seen}"),
    }

    let text = plain(&seen);
    assert!(
        seen.contains("\x1b[1m"),
        "bold is drawn with ANSI on a terminal"
    );
    let bold = regex_find(&text, r"\*[A-Za-z][^*\n]*\*");
    assert!(bold.is_none(), "raw *bold* markup: {bold:?}\n{text}");
    let emoji = regex_find(&text, r":[a-z][a-z0-9_+-]*:");
    assert!(emoji.is_none(), "raw :emoji: markup: {emoji:?}\n{text}");
    assert!(text.contains('🚀') || text.contains('✅'), "{text}");
    let history =
        std::fs::read_to_string(home.path().join(".crossroads_history")).expect("history is kept");
    assert!(history.contains("deploy staging"), "{history}");
}

/// The first match of `pattern` in `text`.
fn regex_find(text: &str, pattern: &str) -> Option<String> {
    let needle = Regex(pattern);
    let found = expectrl::Needle::check(&needle, text.as_bytes(), true).ok()?;
    found
        .first()
        .map(|m| String::from_utf8_lossy(&text.as_bytes()[m.start()..m.end()]).into_owned())
}

/// `crossroads run` in a terminal draws bold with ANSI, and `NO_COLOR` turns that off.
#[test]
fn no_color_turns_styles_off_in_a_terminal() {
    let screen = |no_color: bool| {
        let mut cmd = Command::new(BIN);
        cmd.args(["run", "--as", "U0DEMO", "help deploy"])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .env("CROSSROADS_CLI_ACT_AS", "1")
            .env("TERM", "xterm-256color")
            .env("CROSSROADS_DATABASE_URL", "memory:")
            .env_remove("RUST_LOG");
        if no_color {
            cmd.env("NO_COLOR", "1");
        } else {
            cmd.env_remove("NO_COLOR");
        }
        let mut session = Session::spawn(cmd).expect("spawn in a pty");
        session.set_expect_timeout(Some(Duration::from_secs(20)));
        let found = session.expect(Eof).expect("run ends");
        String::from_utf8_lossy(found.as_bytes()).into_owned()
    };
    let styled = screen(false);
    assert!(styled.contains("\x1b[1m"), "{styled:?}");
    assert!(plain(&styled).contains("help: deploy"), "{styled}");
    let unstyled = screen(true);
    assert!(!unstyled.contains('\x1b'), "{unstyled:?}");
    assert!(unstyled.contains("== help: deploy =="), "{unstyled}");
}
