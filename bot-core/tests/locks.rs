//! The environment lock: a running deploy holds it and names its holder; a manual lock freezes work until unlocked.

use crate::common;

use bot_core::Outcome;
use common::{labels, say, Platform, TOKEN, USER};

#[tokio::test]
async fn a_second_deploy_while_one_runs_is_refused_naming_the_holder() {
    let p = Platform::start(TOKEN).await;
    let first = p.deploy_in_background().await;
    let second = say(&p.bot, "U0ADMIN", "deploy staging").await;
    assert_eq!(
        second.outcome,
        Outcome::Rejected,
        "{}",
        second.to_plain_text()
    );
    assert!(
        second
            .to_plain_text()
            .contains(&format!("locked by <@{USER}>")),
        "{}",
        second.to_plain_text()
    );
    let first = first.await.expect("first deploy");
    assert_eq!(first.outcome, Outcome::Done, "{}", first.to_plain_text());
    assert_eq!(p.triggers("platform/deploy-api").len(), 1);
}

#[tokio::test]
async fn a_running_deploy_cannot_be_unlocked_and_blocks_restarts_and_jobs() {
    let p = Platform::start(TOKEN).await;
    let deploy = p.deploy_in_background().await;
    let unlock = say(&p.bot, "U0ADMIN", "unlock staging").await;
    assert_eq!(
        unlock.outcome,
        Outcome::Rejected,
        "{}",
        unlock.to_plain_text()
    );
    assert!(
        unlock.to_plain_text().contains("running `deploy`"),
        "{}",
        unlock.to_plain_text()
    );

    let restart = say(&p.bot, USER, "restart staging green").await;
    assert_eq!(
        restart.outcome,
        Outcome::Rejected,
        "{}",
        restart.to_plain_text()
    );
    assert!(
        restart
            .to_plain_text()
            .contains("locked by you (deploy main, for"),
        "{}",
        restart.to_plain_text()
    );
    assert!(
        restart
            .to_plain_text()
            .contains("Your `deploy` is still running"),
        "{}",
        restart.to_plain_text()
    );
    assert!(
        p.triggers("platform/restart").is_empty(),
        "no restart while traffic may move to it"
    );

    assert_eq!(deploy.await.expect("deploy").outcome, Outcome::Done);
    // Released by the deploy itself: restarts work again.
    let restart = say(&p.bot, USER, "restart staging blue").await;
    assert_eq!(
        restart.outcome,
        Outcome::Done,
        "{}",
        restart.to_plain_text()
    );
}

#[tokio::test]
async fn a_manual_lock_freezes_deploys_and_jobs_until_unlocked() {
    let p = Platform::start(TOKEN).await;
    let locked = say(&p.bot, USER, "lock staging release freeze").await;
    assert_eq!(locked.outcome, Outcome::Done);
    let text = locked.to_plain_text();
    assert!(
        text.contains("are refused until `unlock staging`"),
        "deploys are refused, not queued: {text}"
    );
    assert!(!text.contains("wait"), "{text}");
    let deploy = say(&p.bot, "U0ADMIN", "deploy staging").await;
    assert_eq!(deploy.outcome, Outcome::Rejected);
    let text = deploy.to_plain_text();
    assert!(text.contains("release freeze"), "{text}");
    assert!(
        text.contains("locked by <@U0DEPLOYER>") && text.contains("Ask <@U0DEPLOYER>"),
        "{text}"
    );
    // The holder is not told to ask themselves.
    let own = say(&p.bot, USER, "deploy staging").await;
    assert_eq!(own.outcome, Outcome::Rejected);
    let text = own.to_plain_text();
    assert!(text.contains("locked by you"), "{text}");
    assert!(!text.to_lowercase().contains("ask"), "{text}");
    assert!(text.contains("`unlock staging` first"), "{text}");
    let job = say(&p.bot, "U0ADMIN", "clear cache staging").await;
    assert_eq!(job.outcome, Outcome::Rejected, "{}", job.to_plain_text());
    assert!(p.jenkins.triggers().is_empty());

    assert_eq!(
        say(&p.bot, "U0ADMIN", "unlock staging").await.outcome,
        Outcome::Done
    );
    assert_eq!(
        say(&p.bot, "U0ADMIN", "deploy staging api").await.outcome,
        Outcome::Done
    );
}

#[tokio::test]
async fn a_locked_protected_environment_says_so_before_asking() {
    let p = Platform::start(TOKEN).await;
    assert_eq!(
        say(&p.bot, "U0ADMIN", "lock master incident 42")
            .await
            .outcome,
        Outcome::Done
    );
    let deploy = say(&p.bot, USER, "deploy master").await;
    let text = deploy.to_plain_text();
    assert_eq!(deploy.outcome, Outcome::Rejected, "{text}");
    assert!(
        text.contains("locked by <@U0ADMIN>") && text.contains("incident 42"),
        "{text}"
    );
    assert!(
        !text.contains("Really"),
        "no question whose answer is 'locked': {text}"
    );
    assert_eq!(
        labels(&deploy),
        ["Queue me"],
        "no confirmation button, only the offer to wait in line"
    );
    for command in [
        "rollback master",
        "switch master api",
        "restart master eu blue",
    ] {
        let reply = say(&p.bot, USER, command).await;
        assert_eq!(
            reply.outcome,
            Outcome::Rejected,
            "{command}: {}",
            reply.to_plain_text()
        );
        assert!(!reply.to_plain_text().contains("Really"), "{command}");
    }
    assert_eq!(
        say(&p.bot, "U0ADMIN", "unlock master").await.outcome,
        Outcome::Done
    );
    assert_eq!(
        say(&p.bot, USER, "deploy master").await.outcome,
        Outcome::Confirm,
        "unlocked: asked as usual"
    );
    assert!(p.jenkins.triggers().is_empty());
}

#[tokio::test]
async fn a_misspelt_deploy_put_in_line_still_says_how_its_words_were_read() {
    let p = Platform::start(TOKEN).await;
    let first = p.deploy_in_background().await;
    // No lock check before it runs (it asked to wait): the deploy finds the lock held
    // and is put in line, and the reply still says how the typo was read.
    let queued = say(&p.bot, "U0ADMIN", "deploy stagng api when free").await;
    let text = queued.to_plain_text();
    assert_eq!(queued.outcome, Outcome::Done, "{text}");
    assert!(text.contains("#1 in line for *staging*"), "{text}");
    assert!(text.contains("Read `stagng` → `staging`."), "{text}");
    let first = first.await.expect("first deploy");
    assert_eq!(first.outcome, Outcome::Done, "{}", first.to_plain_text());
}
