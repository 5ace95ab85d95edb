//! The demo watches its platform: `crossroads demo` shows the status board's URL in
//! its banner, `break staging green` in the console gets the monitor's announcement
//! printed there and turns the board's box red, and `heal staging green` gets the
//! recovery with its downtime.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use expectrl::session::OsSession;
use expectrl::{Expect, Regex, Session};

const BIN: &str = env!("CARGO_BIN_EXE_crossroads");

/// Every URL the shipped config reads from the environment, on free ports.
const PORT_VARS: [&str; 13] = [
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
];

fn wait(session: &mut OsSession, seen: &mut String, needle: &str) -> String {
    match session.expect(Regex(needle)) {
        Ok(found) => {
            let text = String::from_utf8_lossy(found.as_bytes()).into_owned();
            seen.push_str(&String::from_utf8_lossy(found.before()));
            seen.push_str(&text);
            text
        }
        Err(e) => panic!("waiting for {needle:?}: {e}\n--- screen so far ---\n{seen}"),
    }
}

/// Reads the board's event stream until `needle` shows up (or 10 s pass).
fn events_until(addr: &str, needle: &str) -> bool {
    let Ok(mut conn) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_millis(500)));
    let _ = write!(
        conn,
        "GET /api/v1/events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    let mut buf = [0u8; 8192];
    while Instant::now() < deadline {
        if let Ok(n) = conn.read(&mut buf) {
            seen.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&seen).contains(needle) {
                return true;
            }
        }
    }
    false
}

#[test]
fn break_in_the_demo_is_announced_and_turns_the_board_red() {
    let home = tempfile::tempdir().expect("home");
    let board = format!(
        "127.0.0.1:{}",
        crossroads_sim::free_port().expect("a free port")
    );
    let mut cmd = Command::new(BIN);
    cmd.arg("demo")
        .args(["--listen", &board])
        .current_dir(home.path())
        .env("HOME", home.path())
        .env("TERM", "dumb")
        .env("NO_COLOR", "1")
        .env("CROSSROADS_MONITOR_EVERY", "200ms")
        .env_remove("SLACK_SIGNING_SECRET")
        .env_remove("RUST_LOG");
    for var in PORT_VARS {
        let port = crossroads_sim::free_port().expect("a free port");
        cmd.env(var, format!("http://127.0.0.1:{port}"));
    }
    let mut session = Session::spawn(cmd).expect("spawn the demo in a pty");
    session.set_expect_timeout(Some(Duration::from_secs(30)));
    let mut seen = String::new();

    // The prompt comes first, then the banner with the board's URL.
    wait(&mut session, &mut seen, &format!("http://{board}/board"));
    let green =
        r#""id":"instance:staging/api/green","name":"staging api green","pool":"api","state":"#;
    assert!(
        events_until(&board, &format!("{green}\"ok\"")),
        "the board shows staging green ok"
    );

    session.send_line("break staging green").expect("type");
    wait(
        &mut session,
        &mut seen,
        "staging api green.{0,12} is not ok since",
    );
    assert!(
        events_until(&board, &format!("{green}\"not_ok\"")),
        "the board shows staging green not ok"
    );

    session.send_line("heal staging green").expect("type");
    wait(
        &mut session,
        &mut seen,
        r"staging api green.{0,12} recovered after \d+",
    );
    session.send_line("quit").expect("type");
}
