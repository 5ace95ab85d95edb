//! The real Prometheus scrapes simulated instances: each target carries the `pool` and
//! `member` labels its scrape config gives it, and an instance failing its application
//! requests shows as an error rate.

use std::time::Duration;

use crossroads_sim::instance::SimInstance;
use crossroads_sim::prometheus::{prometheus_installed, RealPrometheus, ScrapeTarget};

/// `true` when the test should go on; panics in CI when Prometheus is missing.
fn require_prometheus() -> bool {
    if prometheus_installed() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "prometheus is not installed but CI=true: install it (apt-get install -y prometheus)"
        );
    }
    eprintln!("skipped: prometheus not installed (apt-get install -y prometheus)");
    false
}

#[tokio::test]
async fn prometheus_reads_each_members_error_rate_under_its_pool_and_member_labels() {
    if !require_prometheus() {
        return;
    }
    let blue = SimInstance::start("blue", "1.0.0").await.expect("blue");
    let green = SimInstance::start("green", "1.0.0").await.expect("green");
    let prometheus = RealPrometheus::start(&[
        ScrapeTarget::new("api", "blue", blue.addr()),
        ScrapeTarget::new("api", "green", green.addr()),
    ])
    .await
    .expect("prometheus starts");
    prometheus
        .wait_until_scraped(Duration::from_secs(20))
        .await
        .expect("both targets scraped");

    green.set_app_errors(true);
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let ratio = |member: &str| {
        format!(
            "sum(rate(http_requests_total{{pool=\"api\",member=\"{member}\",code=~\"5..\"}}[5s])) \
             / sum(rate(http_requests_total{{pool=\"api\",member=\"{member}\"}}[5s]))"
        )
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let (mut blue_rate, mut green_rate) = (None, None);
    while std::time::Instant::now() < deadline {
        for sim in [&blue, &green] {
            let _ = client.get(format!("{}/tasks", sim.url())).send().await;
        }
        blue_rate = prometheus.query(&ratio("blue")).await;
        green_rate = prometheus.query(&ratio("green")).await;
        if blue_rate == Some(0.0) && green_rate == Some(1.0) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "Prometheus never read blue at 0 and green at 1: blue {blue_rate:?}, green {green_rate:?}"
    );
}
