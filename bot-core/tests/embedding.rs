//! What an embedder gives the builder reaches everything: the probe and HTTP sender
//! passed to `Bot::builder` are the ones the configured switches read back and switch
//! with, not private clients of their own.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bot_core::config::HttpRequestSpec;
use bot_core::ports::{HttpAction, HttpSnapshot, Probe, ProbeError};
use bot_core::{Bot, Outcome, Request};

/// One shared picture of the switch: the sender moves it, the probe reads it.
#[derive(Default)]
struct Platform {
    /// Active member per switch URL path (`/pools/staging/api`).
    active: Mutex<Vec<(String, String)>>,
    /// Every URL the probe was asked for.
    probed: Mutex<Vec<String>>,
    /// Every request the sender sent.
    sent: Mutex<Vec<String>>,
}

impl Platform {
    fn active_of(&self, url: &str) -> String {
        let active = self.active.lock().expect("state");
        active
            .iter()
            .rev()
            .find(|(u, _)| url.ends_with(u.as_str()))
            .map(|(_, m)| m.clone())
            .unwrap_or_else(|| {
                if url.contains("/cron") {
                    "purple"
                } else {
                    "blue"
                }
                .to_owned()
            })
    }
}

struct CountingProbe(Arc<Platform>);

#[async_trait]
impl Probe for CountingProbe {
    async fn get(&self, url: &str, _timeout: Duration) -> Result<HttpSnapshot, ProbeError> {
        self.0.probed.lock().expect("state").push(url.to_owned());
        let body = if url.contains("/pools/") {
            // As the shipped switches answer: the active member and the weights in force.
            let active = self.0.active_of(url);
            format!(r#"{{"active":"{active}","weights":{{"{active}":100}}}}"#)
        } else {
            r#"{"status":"ok","version":"2.0.0"}"#.to_owned()
        };
        Ok(HttpSnapshot {
            status: 200,
            body,
            latency: Duration::from_millis(1),
        })
    }
}

struct CountingSender(Arc<Platform>);

#[async_trait]
impl HttpAction for CountingSender {
    async fn send(
        &self,
        req: &HttpRequestSpec,
        _timeout: Duration,
    ) -> Result<HttpSnapshot, ProbeError> {
        self.0
            .sent
            .lock()
            .expect("state")
            .push(format!("{} {}", req.method, req.url));
        let body: serde_json::Value =
            serde_json::from_str(req.body.as_deref().unwrap_or("{}")).unwrap_or_default();
        if let (Some(member), Some(path)) = (body["active"].as_str(), req.url.split("18070").nth(1))
        {
            self.0
                .active
                .lock()
                .expect("state")
                .push((path.to_owned(), member.to_owned()));
        }
        Ok(HttpSnapshot {
            status: 200,
            body: "{}".into(),
            latency: Duration::from_millis(1),
        })
    }
}

#[tokio::test]
async fn the_builders_probe_and_sender_reach_the_switches() {
    let platform = Arc::new(Platform::default());
    // The shipped config: every pool has an HTTP switch on 127.0.0.1:18070, where
    // nothing listens in this test. Only the injected probe and sender can answer.
    let bot = Bot::builder(common::shipped(&[]))
        .probe(Arc::new(CountingProbe(platform.clone())))
        .http_action(Arc::new(CountingSender(platform.clone())))
        .build();

    let reply = bot
        .handle(Request::text("U0DEPLOYER", "switch staging api green"))
        .await;
    let text = reply.to_plain_text();
    assert_eq!(reply.outcome, Outcome::Done, "{text}");
    assert!(text.contains("api: blue → *green*"), "{text}");

    let sent = platform.sent.lock().expect("state").clone();
    assert_eq!(
        sent,
        vec!["POST http://127.0.0.1:18070/pools/staging/api".to_owned()],
        "the switch request went through the builder's sender"
    );
    let reads = platform
        .probed
        .lock()
        .expect("state")
        .iter()
        .filter(|u| u.ends_with("/pools/staging/api"))
        .count();
    assert!(
        reads >= 3,
        "the active member was read, and read back after switching, through the builder's probe ({reads} reads)"
    );

    let status = bot
        .handle(Request::text("U0DEPLOYER", "health staging active"))
        .await;
    assert!(
        status.to_plain_text().contains("staging api green"),
        "{}",
        status.to_plain_text()
    );
}
