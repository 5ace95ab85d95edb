//! Every acknowledged DM is answered exactly once, even when a post reached Slack but
//! its answer never came back: Slack took `chat.postMessage` and the connection was cut
//! before it answered, or `crossroads serve` was SIGKILLed while it waited. The next
//! attempt finds the post by its metadata (`conversations.history`, or
//! `conversations.replies` in a thread) and edits it instead of posting a second answer.

use crate::common;

use std::time::Duration;

use common::serve::{config_dir, message_text, Serve};
use crossroads_sim::instance::SimInstance;
use crossroads_sim::slack::{SlackSetup, SlackStandIn};
use crossroads_sim::Scripted;
use serde_json::Value;

const DEPLOYER: &str = "U0DEPLOYER";

fn instances(blue: &str, green: &str) -> String {
    format!(
        r#"
settings:
  probe_timeout: 1s
  lease: 2s
groups:
  deployers: [{DEPLOYER}]
environments:
  staging:
    pools:
      api:
        switch: {{ type: memory, initial: blue }}
        members:
          blue: {{ url: "{blue}" }}
          green: {{ url: "{green}" }}
"#
    )
}

struct World {
    slack: SlackStandIn,
    _blue: SimInstance,
    _green: SimInstance,
    _dir: tempfile::TempDir,
    state: tempfile::TempDir,
    serve: Serve,
}

async fn world() -> World {
    // A dead sender's hold (at least 12 s) lapses before another sends: wait longer.
    let slack = SlackStandIn::start_with(SlackSetup::new().wait_timeout(Duration::from_secs(45)))
        .await
        .expect("slack");
    let blue = SimInstance::start("blue", "1.0.0").await.expect("blue");
    let green = SimInstance::start("green", "1.0.0").await.expect("green");
    let dir = config_dir(&instances(&blue.url(), &green.url()));
    let state = tempfile::tempdir().expect("state dir");
    let serve = Serve::on_sqlite(dir.path(), state.path(), slack.api_url());
    World {
        slack,
        _blue: blue,
        _green: green,
        _dir: dir,
        state,
        serve,
    }
}

/// The bot's posts in `channel`, as Slack holds them now.
fn posts(slack: &SlackStandIn, channel: &str) -> Vec<Value> {
    slack
        .messages()
        .into_iter()
        .filter(|m| m.channel == channel)
        .map(|m| m.message)
        .collect()
}

/// Waits until the post in `channel` reads `want` (the reply reached its post).
async fn wait_for_text(slack: &SlackStandIn, channel: &str, want: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if posts(slack, channel)
            .iter()
            .any(|m| message_text(m).contains(want))
        {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no post in {channel} reads {want:?}: {:?}",
            posts(slack, channel)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_whose_answer_was_lost_is_edited_not_posted_again() {
    let w = world().await;
    let served = w.serve.start(w.state.path()).await;

    // In a DM: the post goes through, its answer is lost.
    w.slack.script("chat.postMessage", [Scripted::Lost]);
    let dm = w
        .slack
        .message_event("D0ONCE", DEPLOYER, "health staging api blue");
    assert_eq!(served.event(&dm).await, 200);
    wait_for_text(&w.slack, "D0ONCE", "staging api blue").await;
    let found = w
        .slack
        .wait_for_one("chat.update", |c| c.arg("channel") == Some("D0ONCE"))
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let dm_posts = posts(&w.slack, "D0ONCE");
    assert_eq!(dm_posts.len(), 1, "answered once: {dm_posts:?}");
    assert_eq!(
        found.arg("ts"),
        dm_posts[0]["ts"].as_str(),
        "the lost post is the one edited"
    );
    assert!(
        dm_posts[0]["metadata"]["event_payload"]["outbox"].is_string(),
        "the post names its outbox message: {}",
        dm_posts[0]
    );
    assert!(
        w.slack
            .calls("conversations.history")
            .iter()
            .any(|c| c.arg("channel") == Some("D0ONCE")),
        "the bot looked for its post"
    );

    // In a thread: the same, looked up among the thread's replies.
    w.slack.script("chat.postMessage", [Scripted::Lost]);
    let mut threaded = w
        .slack
        .message_event("D0THREAD", DEPLOYER, "health staging api green");
    threaded["event"]["thread_ts"] = Value::from("1699999999.000100");
    assert_eq!(served.event(&threaded).await, 200);
    wait_for_text(&w.slack, "D0THREAD", "staging api green").await;
    w.slack
        .wait_for_one("conversations.replies", |c| {
            c.arg("channel") == Some("D0THREAD") && c.arg("ts") == Some("1699999999.000100")
        })
        .await;
    w.slack
        .wait_for_one("chat.update", |c| c.arg("channel") == Some("D0THREAD"))
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let thread_posts = posts(&w.slack, "D0THREAD");
    assert_eq!(thread_posts.len(), 1, "answered once: {thread_posts:?}");
    assert_eq!(thread_posts[0]["thread_ts"], "1699999999.000100");

    // A post that failed plainly (Slack said no) is simply posted again: no lookup.
    let looked = w.slack.calls("conversations.history").len();
    w.slack.script("chat.postMessage", [Scripted::Status(503)]);
    let plain = w
        .slack
        .message_event("D0PLAIN", DEPLOYER, "health staging api blue");
    assert_eq!(served.event(&plain).await, 200);
    wait_for_text(&w.slack, "D0PLAIN", "staging api blue").await;
    assert_eq!(posts(&w.slack, "D0PLAIN").len(), 1);
    assert_eq!(
        w.slack.calls("conversations.history").len(),
        looked,
        "a refused post leaves nothing to look for"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_posted_by_a_killed_process_is_not_posted_again() {
    let w = world().await;
    let mut first = w.serve.start(w.state.path()).await;
    // Slack takes the post and answers only after the process is gone.
    w.slack.script(
        "chat.postMessage",
        [Scripted::Late(Duration::from_secs(60))],
    );
    let dm = w
        .slack
        .message_event("D0KILLED", DEPLOYER, "health staging api blue");
    assert_eq!(first.event(&dm).await, 200);
    wait_for_text(&w.slack, "D0KILLED", "staging api blue").await;
    first.kill();
    w.slack.clear_scripts();

    let _second = w.serve.start(w.state.path()).await;
    // The dead sender's hold lapses; the next one finds the post and edits it.
    let edit = w
        .slack
        .wait_for_one("chat.update", |c| c.arg("channel") == Some("D0KILLED"))
        .await;
    let killed_posts = posts(&w.slack, "D0KILLED");
    assert_eq!(killed_posts.len(), 1, "answered once: {killed_posts:?}");
    assert_eq!(edit.arg("ts"), killed_posts[0]["ts"].as_str());
    assert_eq!(
        w.slack
            .calls("chat.postMessage")
            .iter()
            .filter(|c| c.arg("channel") == Some("D0KILLED"))
            .count(),
        1,
        "posted once"
    );
}
