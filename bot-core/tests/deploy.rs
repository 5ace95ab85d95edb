//! Deploying blue/green for real through the engine: Jenkins (simulated, real REST
//! shapes over HTTP), health gate over HTTP, switch read-back; every failure stops
//! before the switch; the environment lock; the restart guard; toy.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bot_core::adapters::memory_switch::MemorySwitch;
use bot_core::ports::TrafficSwitch;
use bot_core::{Bot, Outcome, Progress, Reply, Request};
use common::{click, labels, say, shipped, INSTANCE_URL_VARS};
use crossroads_sim::instance::{Behaviour, SimInstance};
use crossroads_sim::jenkins::{JenkinsSetup, JobSetup, SimJenkins, Trigger};

const USER: &str = "U0DEPLOYER";
const TOKEN: &str = "s3cret-token";

fn quick() -> JobSetup {
    JobSetup::new()
        .queue_time(Duration::from_millis(40))
        .build_duration(Duration::from_millis(150))
        .estimated_duration(Some(Duration::from_millis(150)))
}

struct Platform {
    bot: Bot,
    jenkins: SimJenkins,
    switch: Arc<MemorySwitch>,
    sims: Vec<SimInstance>,
}

impl Platform {
    async fn start(token_in_config: &str) -> Self {
        let setup = JenkinsSetup::new("crossroads", TOKEN)
            .job("platform/deploy-api", quick())
            .job("platform/deploy-cron", quick())
            .job("platform/restart", quick())
            .job("toy/refresh-database", quick());
        let jenkins = SimJenkins::start(setup).await.expect("jenkins");
        let mut vars = vec![
            ("JENKINS_URL", jenkins.url()),
            ("JENKINS_TOKEN", token_in_config.to_owned()),
        ];
        let mut sims = Vec::new();
        for var in INSTANCE_URL_VARS {
            let sim = SimInstance::start(var, "1.0.0").await.expect("instance");
            vars.push((var, sim.url()));
            sims.push(sim);
        }
        let mut config = shipped(&vars);
        config.settings.gate_consecutive = 2;
        config.settings.gate_interval = Duration::from_millis(30);
        config.settings.gate_timeout = Duration::from_millis(600);
        if let Some(j) = config.jenkins.as_mut() {
            j.poll_interval = Duration::from_millis(20);
            j.timeout = Duration::from_secs(10);
        }
        let switch = Arc::new(MemorySwitch::new());
        let bot = Bot::builder(config).switch_all(switch.clone()).build();
        Self {
            bot,
            jenkins,
            switch,
            sims,
        }
    }

    async fn active(&self, env: &str, pool: &str) -> String {
        let cfg = self.bot.config();
        let e = cfg.env(env).expect("env");
        let p = cfg.pool(env, pool).expect("pool");
        self.switch.active(e, p).await.expect("active")
    }

    /// Starts `deploy staging api` with a slow build and returns once Jenkins has queued
    /// it, i.e. once the deploy holds the lock.
    async fn deploy_in_background(&self) -> tokio::task::JoinHandle<Reply> {
        self.jenkins.set_job(
            "platform/deploy-api",
            quick().build_duration(Duration::from_millis(800)),
        );
        let bot = self.bot.clone();
        let deploy = tokio::spawn(async move { say(&bot, USER, "deploy staging api").await });
        for _ in 0..100 {
            if !self.triggers("platform/deploy-api").is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        deploy
    }

    fn triggers(&self, job: &str) -> Vec<Trigger> {
        self.jenkins
            .triggers()
            .into_iter()
            .filter(|t| t.job == job)
            .collect()
    }

    fn sim(&self, var: &str) -> &SimInstance {
        let i = INSTANCE_URL_VARS
            .iter()
            .position(|v| *v == var)
            .expect("known var");
        &self.sims[i]
    }
}

fn param<'a>(t: &'a Trigger, name: &str) -> Option<&'a str> {
    t.params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Remembers every progress update.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

#[async_trait]
impl Progress for Recorder {
    async fn update(&self, reply: &Reply) {
        if let Ok(mut v) = self.0.lock() {
            v.push(reply.to_plain_text());
        }
    }
}

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

    let (a, b) = tokio::join!(
        click(&p.bot, USER, &confirm, "Yes"),
        click(&p.bot, "U0ADMIN", &confirm, "Yes")
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
    assert_eq!(labels(&deploy).len(), 0, "no confirmation button");
    for command in [
        "rollback master",
        "switch master api",
        "restart master blue",
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
async fn a_click_by_someone_not_allowed_leaves_the_buttons_to_those_who_are() {
    let p = Platform::start(TOKEN).await;
    let ask = say(&p.bot, USER, "deploy prod").await;
    assert_eq!(ask.outcome, Outcome::Confirm);
    let stranger = click(&p.bot, "U0STRANGER", &ask, "Yes").await;
    assert_eq!(stranger.outcome, Outcome::Rejected);
    assert!(stranger.ephemeral, "the refusal is for the stranger only");
    let done = click(&p.bot, USER, &ask, "Yes").await;
    assert_eq!(done.outcome, Outcome::Done, "{}", done.to_plain_text());
}

#[tokio::test]
async fn progress_of_a_clicked_deploy_keeps_saying_who_chose_it() {
    let p = Platform::start(TOKEN).await;
    let ask = say(&p.bot, USER, "deploy prod api").await;
    let yes = ask
        .all_buttons()
        .find(|b| b.label.starts_with("Yes"))
        .expect("confirmation button")
        .value
        .clone();
    let progress = Recorder::default();
    let done = p
        .bot
        .handle_with(Request::button(USER, yes), &progress)
        .await;
    assert_eq!(done.outcome, Outcome::Done, "{}", done.to_plain_text());
    let updates = progress.0.lock().expect("updates").clone();
    assert!(!updates.is_empty());
    for update in &updates {
        assert!(
            update.starts_with(&format!("<@{USER}> chose `deploy master api`")),
            "{update}"
        );
    }
}
