//! `toy`: refreshing the requester's own toy database, and refusing people who have none.

use crate::common;

use bot_core::Outcome;
use common::{param, say, Platform, TOKEN};

#[tokio::test]
async fn toy_refreshes_the_requesters_own_database() {
    let p = Platform::start(TOKEN).await;
    let reply = say(&p.bot, "U0DEMO", "toy").await;
    assert_eq!(reply.outcome, Outcome::Done, "{}", reply.to_plain_text());
    let triggers = p.triggers("toy/refresh-database");
    assert_eq!(triggers.len(), 1);
    assert_eq!(param(&triggers[0], "DATABASE"), Some("toy_demo"));
    assert_eq!(param(&triggers[0], "REQUESTED_BY"), Some("U0DEMO"));

    let reply = say(&p.bot, "U0NOBODY", "toy").await;
    assert_eq!(reply.outcome, Outcome::Rejected);
    assert!(
        reply.to_plain_text().contains("you have no toy database"),
        "{}",
        reply.to_plain_text()
    );
    assert_eq!(
        p.triggers("toy/refresh-database").len(),
        1,
        "nothing triggered for them"
    );
}
