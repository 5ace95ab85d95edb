//! Who may run what: a command limited to a group refuses everyone else before anything runs.

use crate::common;

use bot_core::Outcome;
use common::{say, Platform, TOKEN};

#[tokio::test]
async fn only_deployers_may_deploy() {
    let p = Platform::start(TOKEN).await;
    let reply = say(&p.bot, "U0STRANGER", "deploy staging").await;
    assert_eq!(reply.outcome, Outcome::Rejected);
    assert!(
        reply.to_plain_text().contains("limited to `deployers`"),
        "{}",
        reply.to_plain_text()
    );
    assert!(p.jenkins.triggers().is_empty());
}
