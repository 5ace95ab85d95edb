//! Deploying blue/green: build the inactive member, health-gate it, switch; any failure stops before the switch.

use crate::common;

use bot_core::{Bot, Outcome, Request};
use common::{click, param, quick, say, Platform, Recorder, TOKEN, USER};
use crossroads_sim::instance::Behaviour;

#[tokio::test]
async fn deploy_builds_the_inactive_member_gates_it_and_switches() {
    let p = Platform::start(TOKEN).await;
    let progress = Recorder::default();
    let reply = p
        .bot
        .handle_with(
            Request::text(USER, "deploy staging api Feature/Login-42"),
            &progress,
        )
        .await;
    let text = reply.to_plain_text();
    assert_eq!(reply.outcome, Outcome::Done, "{text}");
    assert!(
        text.contains("Deployed `Feature/Login-42` to *staging*"),
        "{text}"
    );
    assert!(text.contains("api: blue → *green*"), "{text}");

    let triggers = p.triggers("platform/deploy-api");
    assert_eq!(triggers.len(), 1);
    let t = &triggers[0];
    assert_eq!(t.endpoint, "buildWithParameters");
    assert_eq!(t.user.as_deref(), Some("crossroads"));
    assert_eq!(param(t, "ENVIRONMENT"), Some("staging"));
    assert_eq!(param(t, "COLOUR"), Some("green"));
    assert_eq!(
        param(t, "REF"),
        Some("Feature/Login-42"),
        "git refs keep their case"
    );
    assert_eq!(param(t, "REQUESTED_BY"), Some(USER));
    assert!(
        p.triggers("platform/deploy-cron").is_empty(),
        "only the named pool is deployed"
    );

    assert_eq!(p.active("staging", "api").await, "green");
    assert_eq!(p.active("staging", "cron").await, "purple");
    assert!(
        p.sim("STAGING_API_GREEN_URL").control().health_hits() >= 2,
        "the gate probes the new member"
    );

    let updates = progress.0.lock().expect("updates").clone();
    assert!(updates.iter().any(|u| u.contains("queued")), "{updates:#?}");
    assert!(
        updates.iter().any(|u| u.contains("building")),
        "{updates:#?}"
    );
    assert!(
        updates.iter().any(|u| u.contains("health gate 2/2")),
        "{updates:#?}"
    );

    // The lock is released: a second deploy goes through, back to blue.
    let reply = say(&p.bot, USER, "deploy staging api").await;
    assert_eq!(reply.outcome, Outcome::Done, "{}", reply.to_plain_text());
    assert_eq!(p.active("staging", "api").await, "blue");

    let history = say(&p.bot, USER, "history staging").await.to_plain_text();
    assert!(history.contains("`deploy staging api` · ok"), "{history}");
}

#[tokio::test]
async fn a_protected_environment_asks_first() {
    let p = Platform::start(TOKEN).await;
    let reply = say(&p.bot, USER, "deploy prod").await;
    assert_eq!(reply.outcome, Outcome::Confirm, "{}", reply.to_plain_text());
    assert!(
        p.jenkins.triggers().is_empty(),
        "nothing runs before the confirmation"
    );
    let done = click(&p.bot, USER, &reply, "Yes").await;
    assert_eq!(done.outcome, Outcome::Done, "{}", done.to_plain_text());
    assert_eq!(p.active("master", "api").await, "green");
    assert_eq!(p.active("master", "cron").await, "yellow");
}

#[tokio::test]
async fn a_failed_build_stops_before_the_switch() {
    let p = Platform::start(TOKEN).await;
    p.jenkins
        .set_job("platform/deploy-api", quick().result("FAILURE"));
    let reply = say(&p.bot, USER, "deploy staging").await;
    let text = reply.to_plain_text();
    assert_eq!(reply.outcome, Outcome::Failed, "{text}");
    assert!(text.contains("step 2/4 (build) failed"), "{text}");
    assert!(text.contains("ended FAILURE"), "{text}");
    assert!(
        text.contains("/console|Console>"),
        "the console link is given: {text}"
    );
    assert!(text.contains("Traffic stays on blue"), "{text}");
    assert_eq!(p.active("staging", "api").await, "blue");
    assert!(
        p.triggers("platform/deploy-cron").is_empty(),
        "the deploy stops at the first failure"
    );
}

#[tokio::test]
async fn a_health_gate_that_never_passes_stops_before_the_switch() {
    let p = Platform::start(TOKEN).await;
    p.sim("STAGING_API_GREEN_URL")
        .control()
        .set_behaviour(Behaviour::Unhealthy);
    let reply = say(&p.bot, USER, "deploy staging api").await;
    let text = reply.to_plain_text();
    assert_eq!(reply.outcome, Outcome::Failed, "{text}");
    assert!(text.contains("step 3/4 (health gate) failed"), "{text}");
    assert!(
        text.contains("got 503"),
        "the last verdict is shown: {text}"
    );
    assert_eq!(p.active("staging", "api").await, "blue");
}

#[tokio::test]
async fn jenkins_refusing_the_token_is_a_clear_reply() {
    let p = Platform::start("wrong-token").await;
    let reply = say(&p.bot, USER, "deploy staging").await;
    let text = reply.to_plain_text();
    assert_eq!(reply.outcome, Outcome::Failed, "{text}");
    assert!(
        text.contains("Jenkins refused the credentials (HTTP 401)"),
        "{text}"
    );
    assert!(!text.contains("wrong-token"), "no secret in replies");
    assert_eq!(p.active("staging", "api").await, "blue");
}

#[tokio::test]
async fn a_cancelled_queue_item_is_a_clear_reply() {
    let p = Platform::start(TOKEN).await;
    p.jenkins
        .set_job("platform/deploy-api", quick().cancel_in_queue());
    let reply = say(&p.bot, USER, "deploy staging").await;
    let text = reply.to_plain_text();
    assert_eq!(reply.outcome, Outcome::Failed, "{text}");
    assert!(text.contains("was cancelled in Jenkins"), "{text}");
    assert_eq!(p.active("staging", "api").await, "blue");
}

#[tokio::test]
async fn jenkins_down_is_a_clear_reply() {
    let mut p = Platform::start(TOKEN).await;
    let mut config = p.bot.config();
    if let Some(j) = config.jenkins.as_mut() {
        j.url = crossroads_sim::dead_url().expect("dead url");
    }
    p.bot = Bot::builder(config).switch_all(p.switch.clone()).build();
    let reply = say(&p.bot, USER, "deploy staging").await;
    let text = reply.to_plain_text();
    assert_eq!(reply.outcome, Outcome::Failed, "{text}");
    assert!(text.contains("Jenkins did not answer"), "{text}");
}

#[tokio::test]
async fn the_ref_can_be_given_as_ref_equals_and_extra_words_are_refused() {
    let p = Platform::start(TOKEN).await;
    let reply = say(&p.bot, USER, "deploy staging api ref=Release/2.0").await;
    assert_eq!(reply.outcome, Outcome::Done, "{}", reply.to_plain_text());
    assert_eq!(
        param(&p.triggers("platform/deploy-api")[0], "REF"),
        Some("Release/2.0")
    );

    let reply = say(&p.bot, USER, "deploy staging after lunch").await;
    assert_eq!(
        reply.outcome,
        Outcome::Rejected,
        "{}",
        reply.to_plain_text()
    );
    assert!(
        reply.to_plain_text().contains("`lunch`"),
        "{}",
        reply.to_plain_text()
    );
    assert_eq!(p.jenkins.triggers().len(), 1, "nothing more was built");

    // Production's confirmation names what will be built.
    let ask = say(&p.bot, USER, "deploy prod api v2.1").await;
    assert!(
        ask.to_plain_text()
            .contains("Really deploy `v2.1` to *master* (api)?"),
        "{}",
        ask.to_plain_text()
    );
}

#[tokio::test]
async fn pools_without_a_deploy_job_are_found_before_anything_runs() {
    let p = Platform::start(TOKEN).await;
    let mut config = p.bot.config();
    for env in &mut config.environments {
        for pool in &mut env.pools {
            if pool.name == "cron" {
                pool.deploy = None;
            }
        }
    }
    let bot = Bot::builder(config).switch_all(p.switch.clone()).build();
    let reply = say(&bot, USER, "deploy staging").await;
    assert_eq!(
        reply.outcome,
        Outcome::Rejected,
        "{}",
        reply.to_plain_text()
    );
    assert!(
        reply
            .to_plain_text()
            .contains("No `deploy` job is configured for cron"),
        "{}",
        reply.to_plain_text()
    );
    assert!(
        p.jenkins.triggers().is_empty(),
        "api was not deployed half-way"
    );
    assert_eq!(p.active("staging", "api").await, "blue");
}

#[tokio::test]
async fn a_time_after_deploy_is_never_taken_as_a_ref() {
    let p = Platform::start(TOKEN).await;
    for said in [
        "deploy staging in 30m",
        "deploy staging api at 18:00",
        "deploy staging tomorrow 07:30",
        "deploy stg in 2h",
    ] {
        // Scheduled for later (`tests/schedule.rs`), never deployed now with the
        // time as its ref.
        let reply = say(&p.bot, USER, said).await;
        let text = reply.to_plain_text();
        assert_eq!(reply.outcome, Outcome::Done, "{said}: {text}");
        assert!(
            text.contains("Scheduled `deploy staging") && !text.contains("ref="),
            "{said}: {text}"
        );
    }
    assert!(
        p.jenkins.triggers().is_empty(),
        "nothing was built: {:?}",
        p.jenkins.triggers()
    );
    let reply = say(&p.bot, USER, "deploy staging api ref=30m").await;
    assert_eq!(reply.outcome, Outcome::Done, "{}", reply.to_plain_text());
    let triggers = p.triggers("platform/deploy-api");
    assert_eq!(
        param(&triggers[0], "REF"),
        Some("30m"),
        "ref= still says it"
    );
}
