//! Deploys scheduled for later, through `crossroads serve`: `deploy staging api in
//! 20s` DMed over signed Slack events is said back in the requester's zone (from
//! Slack's `users.info`), and 20 seconds later Jenkins is triggered once — also when
//! the replica that took the request was SIGKILLed and another started in between.
//! The requester is told when it starts and how it ended.

use crate::common;

use std::time::{Duration, Instant};

use common::serve::{config_dir, message_text, Serve, Served};
use common::staging::{Staging, DEPLOYER, JOB};
use crossroads_sim::slack::{SlackSetup, SlackStandIn};

const DM: &str = "D0LATER";
/// How far ahead the deploy is asked for.
const LATER: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_deploy_for_later_fires_once_on_time_across_a_sigkill() {
    let staging = Staging::start("SUCCESS").await;
    let slack = SlackStandIn::start_with(
        SlackSetup::new()
            .wait_timeout(Duration::from_secs(40))
            .user_tz(DEPLOYER, "Europe/Prague"),
    )
    .await
    .expect("slack");
    let dir = config_dir(&staging.instances("  lease: 3s", ""));
    let state = tempfile::tempdir().expect("state");
    let serve = Serve::on_sqlite(dir.path(), state.path(), slack.api_url());
    let mut served: Served = serve.start(state.path()).await;

    let asked = Instant::now();
    let event = slack.message_event(DM, DEPLOYER, "deploy staging api in 20s");
    assert_eq!(served.event(&event).await, 200);
    let scheduled = said(&slack, "Scheduled", &served).await;
    assert!(
        scheduled.contains("Scheduled `deploy staging api` for")
            && scheduled.contains("(Europe/Prague"),
        "said back in the requester's zone, from users.info: {scheduled}"
    );
    assert!(
        !slack.calls("users.info").is_empty(),
        "the zone came from Slack"
    );

    // The replica that took it dies; another starts on the same store.
    tokio::time::sleep(Duration::from_secs(5)).await;
    served.kill();
    assert_eq!(staging.jenkins.trigger_count(JOB), 0);
    let served = serve.start(state.path()).await;

    let deadline = asked + LATER + Duration::from_secs(15);
    let fired = loop {
        if staging.jenkins.trigger_count(JOB) > 0 {
            break Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "never triggered\n{}",
            served.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let after = fired - asked;
    eprintln!("asked for in 20 s; Jenkins triggered after {after:?}");
    assert!(
        after >= LATER - Duration::from_secs(2) && after <= LATER + Duration::from_secs(2),
        "triggered {after:?} after it was asked, not 20 s (± 2 s)"
    );
    let ended = said(&slack, "Deployed", &served).await;
    assert!(ended.contains("api: blue → *green*"), "{ended}");
    assert!(
        ended.contains(&format!("Scheduled by <@{DEPLOYER}> for")),
        "the requester is told how the scheduled deploy ended: {ended}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(staging.jenkins.trigger_count(JOB), 1, "it fired once");
}

/// The bot's message in the DM that says `what`, once it does.
async fn said(slack: &SlackStandIn, what: &str, served: &Served) -> String {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        if let Some(text) = slack
            .messages()
            .into_iter()
            .filter(|m| m.channel == DM)
            .map(|m| message_text(&m.message))
            .find(|t| t.contains(what))
        {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "never said {what:?}: {:?}\n{}",
            slack
                .messages()
                .iter()
                .map(|m| message_text(&m.message))
                .collect::<Vec<_>>(),
            served.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
