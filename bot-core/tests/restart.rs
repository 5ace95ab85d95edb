//! Restarting instances: the live one is refused with a force restart on offer; an inactive one runs its job.

use crate::common;

use bot_core::Outcome;
use common::{click, labels, param, say, Platform, TOKEN, USER};

#[tokio::test]
async fn restart_refuses_the_live_instance_and_offers_force_restart() {
    let p = Platform::start(TOKEN).await;
    let reply = say(&p.bot, USER, "restart staging active").await;
    let text = reply.to_plain_text();
    assert_eq!(reply.outcome, Outcome::Rejected, "{text}");
    assert!(
        text.contains("*staging api blue* is taking traffic"),
        "{text}"
    );
    assert_eq!(labels(&reply), vec!["Force restart staging api blue"]);
    assert!(
        p.triggers("platform/restart").is_empty(),
        "nothing triggered"
    );

    let confirm = click(&p.bot, USER, &reply, "Force restart").await;
    assert_eq!(
        confirm.outcome,
        Outcome::Confirm,
        "{}",
        confirm.to_plain_text()
    );
    assert!(
        confirm
            .to_plain_text()
            .contains("*staging api blue* is LIVE"),
        "{}",
        confirm.to_plain_text()
    );
    assert!(
        p.triggers("platform/restart").is_empty(),
        "the confirmation itself runs nothing"
    );

    // Someone else's click is told whose question it is, and uses nothing up.
    let other = click(&p.bot, "U0ADMIN", &confirm, "Yes").await;
    assert_eq!(
        other.outcome,
        Outcome::Rejected,
        "{}",
        other.to_plain_text()
    );
    assert!(other.ephemeral, "only the clicker sees it");
    assert!(
        other
            .to_plain_text()
            .contains("This is <@U0DEPLOYER>'s question"),
        "{}",
        other.to_plain_text()
    );
    assert!(
        p.triggers("platform/restart").is_empty(),
        "their click runs nothing"
    );
    // The person asked: two clicks at once run it once.
    let (a, b) = tokio::join!(
        click(&p.bot, USER, &confirm, "Yes"),
        click(&p.bot, USER, &confirm, "Yes")
    );
    let outcomes = [a.outcome, b.outcome];
    assert!(outcomes.contains(&Outcome::Done), "{outcomes:?}");
    assert!(outcomes.contains(&Outcome::Stale), "{outcomes:?}");
    let triggers = p.triggers("platform/restart");
    assert_eq!(triggers.len(), 1, "triggered exactly once");
    assert_eq!(param(&triggers[0], "INSTANCE"), Some("api-blue"));
}

#[tokio::test]
async fn restart_of_an_inactive_instance_runs_its_restart_job() {
    let p = Platform::start(TOKEN).await;
    let reply = say(&p.bot, USER, "restart stage green").await;
    assert_eq!(reply.outcome, Outcome::Done, "{}", reply.to_plain_text());
    let triggers = p.triggers("platform/restart");
    assert_eq!(triggers.len(), 1);
    assert_eq!(param(&triggers[0], "ENVIRONMENT"), Some("staging"));
    assert_eq!(param(&triggers[0], "INSTANCE"), Some("api-green"));
}
