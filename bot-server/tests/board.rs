//! The status board in a real browser (Debian's `chromium` driven through
//! `chromedriver` with fantoccini): every instance and check has a box, grouped by
//! environment; a stopped instance's box turns red within two probe intervals with
//! no reload. Also the page's weight and isolation, and the event stream itself.
//! Without a browser the browser test says it is skipped (and fails under `CI=true`).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::watched::{Timing, Watched};
use serde_json::{json, Value};

/// A check target served by the test: a CI API whose last build succeeded.
async fn ci_api() -> String {
    let app = axum::Router::new().route(
        "/builds",
        axum::routing::get(|| async { axum::Json(json!([{"status": "success"}])) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/builds", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn checks_yaml(url: &str) -> String {
    format!(
        "checks:\n  ci:\n    url: \"{url}\"\n    pointer: /0/status\n    ok: [success, fixed]\n    pending: [running, queued]\n"
    )
}

fn find(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

/// `chromedriver` and `chromium`, or a skip (a failure under `CI=true`).
fn require_browser() -> Option<(PathBuf, PathBuf)> {
    let driver = find("chromedriver");
    let browser = find("chromium").or_else(|| find("chromium-browser"));
    match (driver, browser) {
        (Some(d), Some(b)) => Some((d, b)),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("chromium and chromedriver are required under CI=true (apt-get install chromium chromium-driver)");
            }
            eprintln!("skipped: chromium or chromedriver not installed (apt-get install chromium chromium-driver)");
            None
        }
    }
}

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start_driver(driver: &Path) -> (Driver, String) {
    let port = crossroads_sim::free_port().expect("a free port");
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "chromedriver did not listen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (Driver(child), format!("http://127.0.0.1:{port}"))
}

/// `target id → state` of every box on the page.
async fn boxes(client: &fantoccini::Client) -> Vec<(String, String)> {
    let got = client
        .execute(
            "return Array.from(document.querySelectorAll('.box')).map(b => [b.getAttribute('data-target'), b.getAttribute('data-state')]);",
            vec![],
        )
        .await
        .expect("read the boxes");
    serde_json::from_value(got).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_board_shows_every_target_and_turns_a_stopped_instance_red_without_a_reload() {
    let Some((driver, browser)) = require_browser() else {
        return;
    };
    let timing = Timing {
        every: Duration::from_millis(500),
        confirm: 2,
        timeout: Duration::from_millis(300),
    };
    let ci = ci_api().await;
    let mut w = Watched::start_with(timing, &checks_yaml(&ci), None).await;
    let (_driver, webdriver) = start_driver(&driver).await;
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": browser,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"],
        }),
    );
    // chromedriver listens on loopback over plain HTTP.
    let http = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = fantoccini::ClientBuilder::new(http)
        .capabilities(caps)
        .connect(&webdriver)
        .await
        .expect("a browser session");
    client.goto(&w.url("/board")).await.expect("load /board");

    let expected = [
        "instance:master/api/blue",
        "instance:master/api/green",
        "instance:staging/api/blue",
        "instance:staging/api/green",
        "check:ci",
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = boxes(&client).await;
        let all_ok = seen.len() == expected.len() && seen.iter().all(|(_, s)| s == "ok");
        if all_ok {
            let ids: Vec<&str> = seen.iter().map(|(id, _)| id.as_str()).collect();
            assert_eq!(
                ids, expected,
                "one box per instance and check, in config order"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "every box should turn green: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let groups: Vec<String> = serde_json::from_value(
        client
            .execute(
                "return Array.from(document.querySelectorAll('section h2')).map(h => h.textContent);",
                vec![],
            )
            .await
            .expect("read the groups"),
    )
    .unwrap_or_default();
    assert_eq!(
        groups,
        ["master", "staging", "checks"],
        "grouped by environment"
    );

    let png = client.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
    let artefact = Path::new(env!("CARGO_TARGET_TMPDIR")).join("board.png");
    std::fs::write(&artefact, &png).expect("save the screenshot");
    eprintln!("board screenshot: {}", artefact.display());

    // Mark the page: a reload would lose the mark.
    client
        .execute("window.__sameLoad = true; return true;", vec![])
        .await
        .expect("mark the page");
    w.stop_instance("staging", "green").await;
    let stopped = Instant::now();
    let limit = w.timing.every * 2;
    loop {
        let seen = boxes(&client).await;
        let green = seen
            .iter()
            .find(|(id, _)| id == "instance:staging/api/green")
            .map(|(_, s)| s.clone());
        if green.as_deref() == Some("not_ok") {
            break;
        }
        assert!(
            stopped.elapsed() < limit,
            "the stopped instance's box should turn red within 2 × every ({limit:?}): {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = stopped.elapsed();
    let same = client
        .execute("return window.__sameLoad === true;", vec![])
        .await
        .expect("read the mark");
    assert_eq!(same, Value::Bool(true), "no reload");
    let colour = client
        .execute(
            "return getComputedStyle(document.querySelector('[data-target=\"instance:staging/api/green\"]')).backgroundColor;",
            vec![],
        )
        .await
        .expect("read the colour");
    assert_eq!(colour, json!("rgb(214, 69, 69)"), "red");
    eprintln!("red after {elapsed:?} (every = {:?})", w.timing.every);
    let red = Path::new(env!("CARGO_TARGET_TMPDIR")).join("board-red.png");
    if let Ok(png) = client.screenshot().await {
        let _ = std::fs::write(red, png);
    }
    client.close().await.expect("close the browser");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_small_self_contained_and_shows_no_urls() {
    let ci = ci_api().await;
    let w = Watched::start_with(Timing::default(), &checks_yaml(&ci), None).await;
    let res = reqwest::get(w.url("/board")).await.expect("GET /board");
    assert_eq!(res.status(), 200);
    let csp = res
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    let page = res.text().await.expect("page");
    assert!(page.len() < 50 * 1024, "page weight {} bytes", page.len());
    for external in ["http://", "https://", "//cdn", "@import", "src=\""] {
        assert!(
            !page.contains(external),
            "the page loads nothing else ({external})"
        );
    }

    // The event stream: a snapshot first, states only.
    let res = reqwest::get(w.url("/api/v1/events"))
        .await
        .expect("GET events");
    assert_eq!(
        res.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    let mut res = res;
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !text.contains("\"state\":\"ok\"") {
        assert!(Instant::now() < deadline, "no ok state streamed: {text}");
        if let Ok(Ok(Some(chunk))) = tokio::time::timeout(Duration::from_secs(1), res.chunk()).await
        {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    assert!(text.starts_with("event: snapshot"), "{text}");
    assert!(!text.contains("127.0.0.1"), "no URL in the events: {text}");
    assert!(!text.contains("http"), "no URL in the events: {text}");
}
