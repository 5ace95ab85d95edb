//! Slow and half-open clients cannot starve the server: `crossroads serve` under a
//! 1,024 open-file limit holds 1,100 connections that send half a request head, half
//! a body or nothing at all, and `/healthz` and `/slack/events` still answer at once;
//! the half-open connections are closed by the header and body timeouts.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crossroads_sim::SlackStandIn;

const BIN: &str = env!("CARGO_BIN_EXE_crossroads");
const SECRET: &str = "slow-client-test-secret";
/// Connections the slow clients hold, more than the server's open files.
const HELD: usize = 1100;
/// How fast `/healthz` must answer meanwhile (the issue's bound).
const HEALTHZ_WITHIN: Duration = Duration::from_millis(100);

/// The server process; killed when dropped.
struct Served {
    child: Child,
    log: std::path::PathBuf,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// `crossroads serve` on `port`, with at most 1,024 open files, like the issue's machine.
fn serve(port: u16, slack: &SlackStandIn, dir: &Path) -> Served {
    let log = dir.join("serve.log");
    let stderr = std::fs::File::create(&log).expect("log file");
    let child = Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -n 1024 && exec "$0" serve --listen "$1""#)
        .arg(BIN)
        .arg(format!("127.0.0.1:{port}"))
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .env("SLACK_SIGNING_SECRET", SECRET)
        .env("SLACK_BOT_TOKEN", slack.bot_token())
        .env("CROSSROADS_DATABASE_URL", "memory:")
        .env("SLACK_API_URL", slack.api_url())
        .env("CROSSROADS_HEADER_TIMEOUT", "2")
        .env("CROSSROADS_BODY_TIMEOUT", "2")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("start crossroads serve");
    Served { child, log }
}

/// GETs `path` with a fresh connection from a real client; status and time taken.
async fn timed_get(port: u16, path: &str) -> (u16, Duration) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let started = Instant::now();
    let res = client
        .get(format!("http://127.0.0.1:{port}{path}"))
        .send()
        .await
        .expect("the server answers");
    (res.status().as_u16(), started.elapsed())
}

/// What each held connection sends before it stops.
fn half_request(i: usize) -> &'static [u8] {
    match i % 3 {
        0 => b"",
        1 => b"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty",
        _ => b"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{\"type\":\"event_",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_while_1100_half_open_connections_are_held() {
    // This test holds 1,100 sockets itself.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).expect("getrlimit");
    assert!(
        soft >= 2 * HELD as u64,
        "the test needs {} open files, the limit is {soft}",
        2 * HELD
    );
    let slack = SlackStandIn::start().await.expect("Slack stand-in");
    let dir = tempfile::tempdir().expect("tempdir");
    let port = crossroads_sim::free_port().expect("a free port");
    let server = serve(port, &slack, dir.path());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(res) = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await {
            if res.status() == 200 {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "serve did not start: {}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let held = tokio::task::spawn_blocking(move || {
        (0..HELD)
            .map(|i| {
                let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
                s.write_all(half_request(i)).expect("write");
                s
            })
            .collect::<Vec<_>>()
    })
    .await
    .expect("held connections");
    assert_eq!(held.len(), HELD);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let (status, took) = timed_get(port, "/healthz").await;
    eprintln!("/healthz answered {status} in {took:?} with {HELD} half-open connections held");
    assert_eq!(status, 200);
    assert!(
        took < HEALTHZ_WITHIN,
        "/healthz took {took:?} with {HELD} half-open connections held"
    );
    let body = r#"{"type":"url_verification","challenge":"still-here"}"#;
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        .to_string();
    let res = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/slack/events"))
        .header("content-type", "application/json")
        .header("x-slack-request-timestamp", &ts)
        .header(
            "x-slack-signature",
            bot_core::slack::verify::sign(SECRET, &ts, body.as_bytes()),
        )
        .body(body)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("/slack/events answers");
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.expect("body"), "still-here");

    // Every held connection is closed by the server: made room for others, or timed
    // out (2 s for a head, 2 s for a body; a late body is answered 408).
    let closed = tokio::task::spawn_blocking(move || {
        let mut answers_408 = 0;
        for (i, mut s) in held.into_iter().enumerate() {
            s.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            let mut got = Vec::new();
            match s.read_to_end(&mut got) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
                Err(e) => panic!("connection {i} still open after 10 s: {e}"),
            }
            if got.starts_with(b"HTTP/1.1 408") {
                answers_408 += 1;
            }
        }
        answers_408
    })
    .await
    .expect("reads");
    assert!(closed > 0, "some late bodies were answered 408");
    let (status, _) = timed_get(port, "/healthz").await;
    assert_eq!(status, 200);
    let log = server.log();
    assert!(
        !log.contains("Too many open files"),
        "the server ran out of file descriptors: {log}"
    );
    assert!(
        log.contains("fewer HTTP connections than configured fit the open-file limit"),
        "{log}"
    );
}
