//! Moving traffic by hand: `rollback` and `switch` move a pool to a healthy member and build nothing.

use crate::common;

use bot_core::Outcome;
use common::{say, Platform, TOKEN, USER};
use crossroads_sim::instance::Behaviour;

#[tokio::test]
async fn rollback_moves_traffic_back_after_checking_health() {
    let p = Platform::start(TOKEN).await;
    assert_eq!(
        say(&p.bot, USER, "deploy staging api").await.outcome,
        Outcome::Done
    );
    assert_eq!(p.active("staging", "api").await, "green");

    p.sim("STAGING_API_BLUE_URL")
        .control()
        .set_behaviour(Behaviour::Unhealthy);
    let refused = say(&p.bot, USER, "rollback staging api").await;
    assert_eq!(
        refused.outcome,
        Outcome::Failed,
        "{}",
        refused.to_plain_text()
    );
    assert!(
        refused.to_plain_text().contains("blue is not healthy"),
        "{}",
        refused.to_plain_text()
    );
    assert_eq!(p.active("staging", "api").await, "green");

    p.sim("STAGING_API_BLUE_URL")
        .control()
        .set_behaviour(Behaviour::Healthy);
    let done = say(&p.bot, USER, "rollback staging api").await;
    assert_eq!(done.outcome, Outcome::Done, "{}", done.to_plain_text());
    assert_eq!(p.active("staging", "api").await, "blue");
}

#[tokio::test]
async fn switch_moves_a_pool_to_the_named_or_the_other_member() {
    let p = Platform::start(TOKEN).await;
    let reply = say(&p.bot, USER, "switch staging api green").await;
    assert_eq!(reply.outcome, Outcome::Done, "{}", reply.to_plain_text());
    assert!(
        reply.to_plain_text().contains("api: blue → *green*"),
        "{}",
        reply.to_plain_text()
    );
    assert_eq!(p.active("staging", "api").await, "green");
    assert_eq!(
        p.active("staging", "cron").await,
        "purple",
        "only the named pool moves"
    );

    // Already there: said so, without claiming to have switched anything.
    let reply = say(&p.bot, USER, "switch staging api green").await;
    let text = reply.to_plain_text();
    assert_eq!(reply.outcome, Outcome::Info, "{text}");
    assert!(text.contains("green is already active"), "{text}");
    assert!(!text.contains("Switched"), "{text}");

    // Without a member: the other one, after checking it is healthy.
    p.sim("STAGING_API_BLUE_URL")
        .control()
        .set_behaviour(Behaviour::Unhealthy);
    let refused = say(&p.bot, USER, "flip staging api").await;
    assert_eq!(
        refused.outcome,
        Outcome::Failed,
        "{}",
        refused.to_plain_text()
    );
    assert_eq!(p.active("staging", "api").await, "green");
    assert!(p.jenkins.triggers().is_empty(), "switching builds nothing");
}
