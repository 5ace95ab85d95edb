//! Progress of long actions: posted once, then edited in place; `response_url`
//! answers stay within Slack's five uses and always deliver the final reply.

mod common;

use std::time::Duration;

use bot_core::config::Secret;
use bot_core::{Outcome, Progress, Reply};
use bot_server::dispatch::{Sink, Target};
use bot_server::{Metrics, WebApi};
use common::*;

fn web(slack: &StandIn) -> WebApi {
    WebApi::new(
        &slack.api_url(),
        Secret::new(TOKEN),
        Metrics::new(),
        Duration::from_secs(5),
        3,
    )
    .expect("client")
}

#[tokio::test]
async fn progress_is_posted_once_then_updated_in_place() {
    let slack = StandIn::start().await;
    let sink = Sink::new(
        web(&slack),
        Target::Channel {
            channel: "D1".into(),
            thread_ts: None,
            user: "U1".into(),
        },
    );
    for pct in [10, 50, 90] {
        sink.update(&Reply::message(
            Outcome::Progress,
            format!("building {pct}%"),
        ))
        .await;
    }
    sink.finish(&Reply::message(Outcome::Done, "switched to green"))
        .await;
    let posts = slack.calls("chat.postMessage");
    let updates = slack.calls("chat.update");
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].body["text"], "building 10%");
    assert_eq!(updates.len(), 3);
    for u in &updates {
        assert_eq!(u.body["channel"], "D1");
        assert_eq!(
            u.body["ts"], "1700000000.000001",
            "edits the posted message"
        );
    }
    assert_eq!(updates[2].body["text"], "switched to green");
}

#[tokio::test]
async fn a_click_sink_keeps_the_last_response_url_use_for_the_final_reply() {
    let slack = StandIn::start().await;
    let sink = Sink::new(
        web(&slack),
        Target::ResponseUrl {
            url: slack.response_url("p"),
            slash: false,
        },
    );
    for i in 0..8 {
        sink.update(&Reply::message(Outcome::Progress, format!("step {i}")))
            .await;
    }
    sink.finish(&Reply::message(Outcome::Done, "done")).await;
    let calls = slack.calls("response/p");
    assert_eq!(calls.len(), 5, "Slack allows five uses");
    assert!(calls.iter().all(|c| c.body["replace_original"] == true));
    assert_eq!(calls[4].body["text"], "done");
}

#[tokio::test]
async fn a_slash_sink_posts_first_then_replaces() {
    let slack = StandIn::start().await;
    let sink = Sink::new(
        web(&slack),
        Target::ResponseUrl {
            url: slack.response_url("s"),
            slash: true,
        },
    );
    sink.update(&Reply::message(Outcome::Progress, "queued"))
        .await;
    sink.finish(&Reply::message(Outcome::Done, "done")).await;
    let calls = slack.calls("response/s");
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].body["replace_original"], false);
    assert_eq!(calls[0].body["response_type"], "in_channel");
    assert_eq!(calls[1].body["replace_original"], true);
}
