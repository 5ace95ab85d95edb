//! Crossroads stays up when the world misbehaves, through `crossroads serve` as an
//! operator runs it: a webhook answering `429` with a `Retry-After` of 2^64−1 panics
//! nothing and PagerDuty still gets its trigger and resolve, across a restart; a hook
//! answering `307` sends nothing to where it points; a reply claimed by a replica
//! that was SIGKILLed mid-send goes out from the next one within the lease, not a
//! minute later.

use crate::common;

use std::time::{Duration, Instant};

use axum::response::IntoResponse;
use common::serve::{config_dir, Serve};
use crossroads_sim::fault::Scripted;
use crossroads_sim::instance::{Behaviour, SimInstance};
use crossroads_sim::slack::{SlackSetup, SlackStandIn};
use crossroads_sim::{PagerDutyStandIn, WebhookStandIn};

/// A hook endpoint that answers every request with `307` to `to`.
async fn redirector(to: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().fallback(move || {
        let to = to.clone();
        async move {
            (
                axum::http::StatusCode::TEMPORARY_REDIRECT,
                [(axum::http::header::LOCATION, to)],
            )
                .into_response()
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_webhook_switches_nothing_off_and_a_redirect_sends_nothing_elsewhere() {
    let blue = SimInstance::start("blue", "1.0.0").await.expect("blue");
    let green = SimInstance::start("green", "1.0.0").await.expect("green");
    let pagerduty = PagerDutyStandIn::start().await.expect("pagerduty");
    let hostile = WebhookStandIn::start().await.expect("hostile");
    hostile.script((0..50).map(|_| Scripted::RateLimited {
        retry_after_secs: u64::MAX,
    }));
    let elsewhere = WebhookStandIn::start().await.expect("elsewhere");
    let redirect = redirector(format!("{}/stolen", elsewhere.url())).await;
    let slack = SlackStandIn::start_with(SlackSetup::new().wait_timeout(Duration::from_secs(30)))
        .await
        .expect("slack");
    let dir = config_dir(&format!(
        r#"
settings:
  probe_timeout: 300ms
  lease: 1s
groups:
  deployers: [U0DEPLOYER]
channels:
  ops: C0OPS
monitor:
  every: 100ms
  confirm: 2
  channel: ops
  timeout: 300ms
  pagerduty: {{ routing_key: R0UTINGKEY00000000000000000000AB, url: "{pd}/v2/enqueue" }}
  webhooks: ["{hostile}/crossroads", "{redirect}/crossroads"]
environments:
  staging:
    pools:
      api:
        switch: {{ type: memory, initial: blue }}
        members:
          blue: {{ url: "{blue}" }}
          green: {{ url: "{green}" }}
"#,
        pd = pagerduty.url(),
        hostile = hostile.url(),
        blue = blue.url(),
        green = green.url(),
    ));
    let state = tempfile::tempdir().expect("state");
    let serve = Serve {
        config_dir: dir.path().to_owned(),
        database_url: format!("sqlite://{}", state.path().join("state.db").display()),
        slack_api: slack.api_url(),
        extra_env: vec![],
    };
    let mut first = serve.start(state.path()).await;
    tokio::time::sleep(Duration::from_millis(600)).await;

    green.control().set_behaviour(Behaviour::Unhealthy);
    let events = pagerduty.wait_for_accepted(1).await;
    assert_eq!(events[0].action(), Some("trigger"), "{events:?}");
    hostile.wait_for(1).await;
    // The hostile answer has been read (and clamped) before the restart.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log = first.log();
    assert!(!log.contains("panicked"), "no panic: {log}");
    first.kill();

    let second = serve.start(state.path()).await;
    green.control().set_behaviour(Behaviour::Healthy);
    let events = pagerduty.wait_for_accepted(2).await;
    assert_eq!(events[1].action(), Some("resolve"), "{events:?}");
    let log = second.log();
    assert!(
        !log.contains("panicked"),
        "no panic after the restart: {log}"
    );
    assert!(
        elsewhere.deliveries().is_empty(),
        "a redirect is not followed: {:?}",
        elsewhere.deliveries()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_claimed_by_a_killed_replica_goes_out_within_the_lease() {
    let slack = SlackStandIn::start_with(SlackSetup::new().wait_timeout(Duration::from_secs(40)))
        .await
        .expect("slack");
    // The first reply hangs in Slack while its sender is killed.
    slack.script(
        "chat.postMessage",
        [Scripted::Delay(Duration::from_secs(120))],
    );
    let dir = config_dir(
        "settings:\n  lease: 1s\ngroups:\n  deployers: [U0DEPLOYER]\nenvironments:\n  staging:\n    pools:\n      api:\n        switch: { type: memory, initial: blue }\n        members:\n          blue: { url: \"http://127.0.0.1:9/\" }\n          green: { url: \"http://127.0.0.1:9/\" }\n",
    );
    let state = tempfile::tempdir().expect("state");
    let serve = Serve {
        config_dir: dir.path().to_owned(),
        database_url: format!("sqlite://{}", state.path().join("state.db").display()),
        slack_api: slack.api_url(),
        extra_env: vec![],
    };
    let mut first = serve.start(state.path()).await;
    assert_eq!(
        first
            .event(&slack.message_event("D0HELP", "U0DEPLOYER", "help"))
            .await,
        200
    );
    slack.wait_for("chat.postMessage", 1).await;
    let claimed = Instant::now();
    first.kill();

    let _second = serve.start(state.path()).await;
    slack.wait_for("chat.postMessage", 2).await;
    let again = claimed.elapsed();
    assert!(
        again < Duration::from_secs(25),
        "sent again {again:?} after the dead replica claimed it (a fixed claim was 60 s)"
    );
}

/// Opens `n` connections that each hold a request: an event stream being read, or a
/// POST whose body never finishes.
async fn hold(addr: std::net::SocketAddr, n: usize, streams: bool) -> Vec<tokio::net::TcpStream> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut held = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        if streams {
            s.write_all(b"GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
                .await
                .expect("write");
            let mut first = [0u8; 64];
            let read = tokio::time::timeout(Duration::from_secs(5), s.read(&mut first))
                .await
                .expect("the stream starts")
                .unwrap_or_else(|e| panic!("stream {i}: {e}"));
            assert!(
                first[..read].starts_with(b"HTTP/1.1 200"),
                "{}",
                String::from_utf8_lossy(&first[..read])
            );
        } else {
            s.write_all(b"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{\"type\":")
                .await
                .expect("write");
        }
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_client_gets_in_past_64_streams_or_64_trickled_bodies() {
    let slack = SlackStandIn::start_with(SlackSetup::new().wait_timeout(Duration::from_secs(20)))
        .await
        .expect("slack");
    let dir = config_dir(
        "groups:\n  deployers: [U0DEPLOYER]\nenvironments:\n  staging:\n    pools:\n      api:\n        switch: { type: memory, initial: blue }\n        members:\n          blue: { url: \"http://127.0.0.1:9/\" }\n          green: { url: \"http://127.0.0.1:9/\" }\n",
    );
    let state = tempfile::tempdir().expect("state");
    let server = Serve {
        config_dir: dir.path().to_owned(),
        database_url: "memory:".into(),
        slack_api: slack.api_url(),
        extra_env: vec![
            ("CROSSROADS_MAX_CONNECTIONS".into(), "64".into()),
            ("CROSSROADS_BODY_TIMEOUT".into(), "60".into()),
        ],
    }
    .start(state.path())
    .await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    for (streams, what) in [(true, "event streams"), (false, "trickled bodies")] {
        let held = hold(server.addr, 64, streams).await;
        for _ in 0..5 {
            let started = Instant::now();
            let res = client
                .get(format!("http://{}/healthz", server.addr))
                .send()
                .await
                .unwrap_or_else(|e| panic!("/healthz past 64 {what}: {e:?}\n{}", server.log()));
            let took = started.elapsed();
            assert_eq!(res.status(), 200, "past 64 {what}");
            assert!(
                took < Duration::from_secs(1),
                "/healthz took {took:?} past 64 {what}"
            );
        }
        let channel = if streams { "D0STREAMS" } else { "D0BODIES" };
        assert_eq!(
            server
                .event(&slack.message_event(channel, "U0DEPLOYER", "help"))
                .await,
            200,
            "a signed Slack event is acknowledged past 64 {what}"
        );
        slack
            .wait_for_one("chat.postMessage", |c| c.arg("channel") == Some(channel))
            .await;
        drop(held);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_flood_costs_one_round_and_at_most_four_haproxy_connections() {
    if !crossroads_sim::haproxy::require_haproxy() {
        return;
    }
    let blue = SimInstance::start("blue", "1.0.0").await.expect("blue");
    let green = SimInstance::start("green", "1.0.0").await.expect("green");
    let haproxy =
        crossroads_sim::haproxy::Haproxy::start(&[("blue", blue.addr()), ("green", green.addr())])
            .expect("haproxy");
    let admin: std::net::SocketAddr = haproxy
        .admin
        .trim_start_matches("ipv4@")
        .parse()
        .expect("admin address");
    // HAProxy's runtime API, through a proxy that counts connections open at once.
    let stats = crossroads_sim::proxy::TcpProxy::start(admin)
        .await
        .expect("proxy");
    let pools: String = (1..=6)
        .map(|i| {
            format!(
                "      api{i}:\n        switch: {{ type: haproxy, address: \"{}\", backend: be_app }}\n        members:\n          blue: {{ url: \"{}\" }}\n          green: {{ url: \"{}\" }}\n",
                stats.addr(),
                blue.url(),
                green.url()
            )
        })
        .collect();
    let dir = config_dir(&format!(
        "groups:\n  deployers: [U0DEPLOYER]\nenvironments:\n  staging:\n    pools:\n{pools}"
    ));
    let slack = SlackStandIn::start().await.expect("slack");
    let state = tempfile::tempdir().expect("state");
    let server = Serve {
        config_dir: dir.path().to_owned(),
        database_url: "memory:".into(),
        slack_api: slack.api_url(),
        extra_env: vec![("CROSSROADS_STATUS_RATE_LIMIT".into(), "off".into())],
    }
    .start(state.path())
    .await;
    let before = blue.control().health_hits();
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let started = Instant::now();
    let answers = futures::future::join_all((0..500).map(|_| {
        client
            .get(format!("http://{}/api/v1/status", server.addr))
            .send()
    }))
    .await;
    let took = started.elapsed();
    let ok = answers
        .iter()
        .filter(|a| a.as_ref().is_ok_and(|r| r.status() == 200))
        .count();
    assert_eq!(ok, 500, "every status answered");
    let probes = blue.control().health_hits() - before;
    // One round probes blue once per pool; a round is shared for 2 s.
    let rounds = took.as_secs() / 2 + 2;
    assert!(
        probes <= 6 * rounds,
        "{probes} probes of one instance for 500 status requests in {took:?}"
    );
    assert!(stats.peak() >= 1, "the switches were read");
    assert!(
        stats.peak() <= 4,
        "HAProxy's runtime API saw {} connections at once",
        stats.peak()
    );
}
