//! Canary deploys: traffic moves to the new member by weight, step by step, each
//! step judged by Prometheus (or the pool's health recipe); failing readings put it
//! all back on the old member; a switch that cannot do weights refuses first.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bot_core::adapters::memory_switch::MemorySwitch;
use bot_core::config::{Environment, Pool};
use bot_core::ports::{Split, SwitchError, TrafficSwitch};
use bot_core::{Bot, Outcome, Reply};
use common::{say, Platform, TOKEN, USER};
use crossroads_sim::instance::Behaviour;
use crossroads_sim::prometheus::SimPrometheus;

const ERROR_RATE: &str =
    "sum(rate(http_requests_total{pool=\"{pool}\",member=\"{member}\",code=~\"5..\"}[1m]))";

/// The shipped config with a canary on staging api: `steps`, a short pause, and
/// (with `prometheus`) an error-rate query against it.
fn with_canary(steps: &str, prometheus: Option<&str>) -> impl Fn(&str) -> String {
    let analysis = prometheus.map_or(String::new(), |url| {
        format!(
            "\n          analysis:\n            prometheus: {url}\n            interval: 80ms\n            failures: 2\n            queries:\n              - name: error rate\n                query: '{ERROR_RATE}'\n                max: 0.02"
        )
    });
    let block = format!(
        "        aliases: [web, app]\n        canary:\n          steps: {steps}\n          pause: 400ms{analysis}\n"
    );
    move |s: &str| {
        let out = s.replacen("        aliases: [web, app]\n", &block, 2);
        // The first occurrence is master's api: put it back.
        out.replacen(&block, "        aliases: [web, app]\n", 1)
    }
}

async fn split(p: &Platform) -> Split {
    let cfg = p.bot.config();
    let e = cfg.env("staging").expect("env");
    let pool = cfg.pool("staging", "api").expect("pool");
    p.switch.split(e, pool).await.expect("split reads")
}

/// Runs `deploy staging api`, sampling the split in force until it answers.
async fn deploy_sampling(p: &Platform) -> (Reply, Vec<Split>) {
    let bot: Bot = p.bot.clone();
    let deploy = tokio::spawn(async move { say(&bot, USER, "deploy staging api").await });
    let mut seen: Vec<Split> = Vec::new();
    while !deploy.is_finished() {
        let now = split(p).await;
        if seen.last() != Some(&now) {
            seen.push(now);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let reply = deploy.await.expect("the deploy ran");
    let last = split(p).await;
    if seen.last() != Some(&last) {
        seen.push(last);
    }
    (reply, seen)
}

fn green_shares(seen: &[Split]) -> Vec<u8> {
    seen.iter().map(|s| s.share("green")).collect()
}

#[tokio::test]
async fn a_canary_moves_traffic_step_by_step_judged_by_prometheus_and_ends_at_100() {
    let prometheus = SimPrometheus::start(Some(0.001)).await.expect("prometheus");
    let p = Platform::start_edited(
        TOKEN,
        &with_canary("[10, 50, 100]", Some(&prometheus.url())),
    )
    .await;
    let (reply, seen) = deploy_sampling(&p).await;
    let text = reply.to_plain_text();
    assert_eq!(reply.outcome, Outcome::Done, "{text}");
    assert!(
        text.contains("healthy, canary 10 → 50 → 100 %, traffic switched")
            && text.contains(" · canary "),
        "the end names the canary and its time: {text}"
    );
    assert_eq!(
        green_shares(&seen),
        [0, 10, 50, 100],
        "the new member's share went up step by step: {seen:?}"
    );
    assert_eq!(p.active("staging", "api").await, "green");
    assert_eq!(split(&p).await.share("green"), 100);
    let queries = prometheus.queries();
    assert!(
        queries.len() >= 4,
        "each step was judged at every interval: {queries:#?}"
    );
    assert!(
        queries
            .iter()
            .all(|q| q.contains("pool=\"api\"") && q.contains("member=\"green\"")),
        "the query names the pool and the new member: {queries:#?}"
    );
}

#[tokio::test]
async fn failing_readings_abort_the_canary_and_put_all_traffic_back() {
    let prometheus = SimPrometheus::start(Some(0.001)).await.expect("prometheus");
    let p = Platform::start_edited(
        TOKEN,
        &with_canary("[10, 50, 100]", Some(&prometheus.url())),
    )
    .await;
    // Errors start once the canary is at its first step.
    let sampler = async {
        for _ in 0..2000 {
            if split(&p).await.share("green") == 10 {
                prometheus.set(Some(0.5));
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the canary never reached 10 %");
    };
    let bot = p.bot.clone();
    let (reply, ()) = tokio::join!(
        async move { say(&bot, USER, "deploy staging api").await },
        sampler
    );
    let text = reply.to_plain_text();
    assert_eq!(reply.outcome, Outcome::Failed, "{text}");
    assert!(
        text.contains("canary was aborted at step 1/3 (10 %)")
            && text.contains("error rate 0.5 (max 0.02)")
            && text.contains("All traffic is back on blue"),
        "the thread names the query, its reading and its limit: {text}"
    );
    assert_eq!(p.active("staging", "api").await, "blue");
    assert_eq!(split(&p).await, {
        let cfg = p.bot.config();
        Split::all_on(cfg.pool("staging", "api").expect("pool"), "blue")
    });
    let history = say(&p.bot, USER, "history staging").await.to_plain_text();
    assert!(
        history.contains("canary was aborted"),
        "the audit records it: {history}"
    );
}

#[tokio::test]
async fn no_data_fails_by_default() {
    let prometheus = SimPrometheus::start(None).await.expect("prometheus");
    let p = Platform::start_edited(TOKEN, &with_canary("[20, 100]", Some(&prometheus.url()))).await;
    let reply = say(&p.bot, USER, "deploy staging api").await;
    let text = reply.to_plain_text();
    assert_eq!(reply.outcome, Outcome::Failed, "{text}");
    assert!(text.contains("error rate: no data"), "{text}");
    assert_eq!(p.active("staging", "api").await, "blue");
}

#[tokio::test]
async fn without_an_analysis_the_pools_health_recipe_judges_each_step() {
    let p = Platform::start_edited(TOKEN, &with_canary("[25, 100]", None)).await;
    let (reply, seen) = deploy_sampling(&p).await;
    assert_eq!(reply.outcome, Outcome::Done, "{}", reply.to_plain_text());
    assert_eq!(green_shares(&seen), [0, 25, 100]);

    // Back to blue next: blue turns unhealthy during its canary step.
    let blue = p.sim("STAGING_API_BLUE_URL").control();
    let bot = p.bot.clone();
    let breaker = async {
        for _ in 0..2000 {
            if split(&p).await.share("blue") == 25 {
                blue.set_behaviour(Behaviour::Unhealthy);
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the canary never reached 25 % on blue");
    };
    let (reply, ()) = tokio::join!(
        async move { say(&bot, USER, "deploy staging api").await },
        breaker
    );
    let text = reply.to_plain_text();
    assert_eq!(reply.outcome, Outcome::Failed, "{text}");
    assert!(text.contains("blue health"), "{text}");
    assert_eq!(p.active("staging", "api").await, "green");
}

/// A switch without weights: the memory switch's moves, no `set_split`.
struct NoWeights(MemorySwitch);

#[async_trait]
impl TrafficSwitch for NoWeights {
    async fn active(&self, env: &Environment, pool: &Pool) -> Result<String, SwitchError> {
        self.0.active(env, pool).await
    }
    async fn switch_to(
        &self,
        env: &Environment,
        pool: &Pool,
        member: &str,
    ) -> Result<(), SwitchError> {
        self.0.switch_to(env, pool, member).await
    }
}

#[tokio::test]
async fn a_switch_without_weights_refuses_a_canary_before_anything_is_built() {
    let p = Platform::start_edited(TOKEN, &with_canary("[10, 100]", None)).await;
    let bot = Bot::builder(p.bot.config())
        .switch_all(Arc::new(NoWeights(MemorySwitch::new())))
        .build();
    let reply = say(&bot, USER, "deploy staging api").await;
    let text = reply.to_plain_text();
    assert_ne!(reply.outcome, Outcome::Done, "{text}");
    assert!(
        text.contains("cannot share traffic out by weight"),
        "it says why: {text}"
    );
    assert!(
        p.jenkins.triggers().is_empty(),
        "nothing was built: {:?}",
        p.jenkins.triggers()
    );
}

/// Remembers every progress update as sent (buttons and all).
#[derive(Default)]
struct Updates(std::sync::Mutex<Vec<Reply>>);

#[async_trait]
impl bot_core::ports::Progress for Updates {
    async fn update(&self, reply: &Reply) {
        if let Ok(mut v) = self.0.lock() {
            v.push(reply.clone());
        }
    }
}

impl Updates {
    /// The newest update with a button labelled `label`.
    fn with_button(&self, label: &str) -> Option<Reply> {
        let all = self.0.lock().ok()?;
        all.iter()
            .rev()
            .find(|r| r.all_buttons().any(|b| b.label == label))
            .cloned()
    }
}

/// Starts `deploy staging api` (its progress into `updates`) and waits until the
/// canary holds green at `percent`.
async fn deploy_until(
    p: &Platform,
    updates: Arc<Updates>,
    percent: u8,
) -> tokio::task::JoinHandle<Reply> {
    let bot = p.bot.clone();
    let deploy = tokio::spawn(async move {
        bot.handle_with(
            bot_core::Request::text(USER, "deploy staging api"),
            updates.as_ref(),
        )
        .await
    });
    for _ in 0..1000 {
        if split(p).await.share("green") == percent {
            return deploy;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the canary never reached {percent} %");
}

#[tokio::test]
async fn pause_stops_the_clock_until_continue() {
    let p = Platform::start_edited(TOKEN, &with_canary("[10, 100]", None)).await;
    let updates = Arc::new(Updates::default());
    let deploy = deploy_until(&p, updates.clone(), 10).await;
    let paused = say(&p.bot, USER, "pause staging").await;
    assert_eq!(paused.outcome, Outcome::Done, "{}", paused.to_plain_text());
    assert!(
        paused
            .to_plain_text()
            .contains("Pausing the canary of *staging api* (at 10 % on green)"),
        "{}",
        paused.to_plain_text()
    );
    // Well past the 400 ms pause: still at its step.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(split(&p).await.share("green"), 10, "a paused canary stays");
    assert!(!deploy.is_finished());
    let status = say(&p.bot, USER, "status staging").await;
    let shown = status.to_plain_text();
    assert!(
        shown.contains("traffic shared out by weight (a canary): blue 90 %, green 10 %")
            && shown.contains("blue *← 90 %*")
            && shown.contains("green *← 10 %*"),
        "status shows the split: {shown}"
    );
    assert_ne!(
        status.outcome,
        Outcome::Failed,
        "a canary is no fault: {shown}"
    );
    let shown = updates
        .with_button("Continue")
        .expect("while paused, the progress message offers Continue");
    assert!(
        shown
            .to_plain_text()
            .contains(&format!("paused by <@{USER}>")),
        "{}",
        shown.to_plain_text()
    );
    let resumed = say(&p.bot, USER, "continue staging").await;
    assert_eq!(
        resumed.outcome,
        Outcome::Done,
        "{}",
        resumed.to_plain_text()
    );
    let reply = deploy.await.expect("deploy");
    assert_eq!(reply.outcome, Outcome::Done, "{}", reply.to_plain_text());
    assert_eq!(p.active("staging", "api").await, "green");
    let history = say(&p.bot, USER, "history staging").await.to_plain_text();
    assert!(
        history.contains("`pause staging` · ok") && history.contains("`continue staging` · ok"),
        "the audit records who steered: {history}"
    );
}

#[tokio::test]
async fn promote_goes_straight_to_100() {
    let edit = with_canary("[10, 50, 100]", None);
    // A pause far longer than the test.
    let p = Platform::start_edited(TOKEN, &|s| edit(s).replace("pause: 400ms", "pause: 10m")).await;
    let updates = Arc::new(Updates::default());
    let deploy = deploy_until(&p, updates.clone(), 10).await;
    let promoted = say(&p.bot, USER, "please promote stg").await;
    assert_eq!(
        promoted.outcome,
        Outcome::Done,
        "{}",
        promoted.to_plain_text()
    );
    let reply = tokio::time::timeout(Duration::from_secs(10), deploy)
        .await
        .expect("a promoted canary ends without waiting out its steps")
        .expect("deploy");
    assert_eq!(reply.outcome, Outcome::Done, "{}", reply.to_plain_text());
    assert!(
        reply.to_plain_text().contains(&format!(
            "healthy, canary promoted by <@{USER}>, traffic switched"
        )),
        "the end says who promoted it: {}",
        reply.to_plain_text()
    );
    assert_eq!(split(&p).await.share("green"), 100);
    assert_eq!(p.active("staging", "api").await, "green");
}

#[tokio::test]
async fn the_abort_button_puts_the_weights_back() {
    let edit = with_canary("[10, 50, 100]", None);
    let p = Platform::start_edited(TOKEN, &|s| edit(s).replace("pause: 400ms", "pause: 10m")).await;
    let updates = Arc::new(Updates::default());
    let deploy = deploy_until(&p, updates.clone(), 10).await;
    let mut shown = None;
    for _ in 0..200 {
        shown = updates.with_button("Abort");
        if shown.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let shown = shown.expect("the progress message offers Abort");
    assert_eq!(
        common::labels(&shown),
        ["Pause", "Promote", "Abort"],
        "{}",
        shown.to_plain_text()
    );
    assert!(
        shown
            .to_plain_text()
            .contains("canary step 1/3: *10 %* on green"),
        "{}",
        shown.to_plain_text()
    );
    // Someone outside the deployers cannot.
    let refused = common::click(&p.bot, "U0STRANGER", &shown, "Abort").await;
    assert_ne!(
        refused.outcome,
        Outcome::Done,
        "{}",
        refused.to_plain_text()
    );
    assert_eq!(split(&p).await.share("green"), 10);
    let clicked = common::click(&p.bot, USER, &shown, "Abort").await;
    assert_eq!(
        clicked.outcome,
        Outcome::Done,
        "{}",
        clicked.to_plain_text()
    );
    let reply = tokio::time::timeout(Duration::from_secs(10), deploy)
        .await
        .expect("an aborted canary ends at once")
        .expect("deploy");
    let text = reply.to_plain_text();
    assert_eq!(reply.outcome, Outcome::Failed, "{text}");
    assert!(
        text.contains(&format!("aborted by <@{USER}>"))
            && text.contains("All traffic is back on blue"),
        "{text}"
    );
    assert_eq!(p.active("staging", "api").await, "blue");
    assert_eq!(split(&p).await.share("blue"), 100);
}

#[tokio::test]
async fn steering_without_a_canary_under_way_says_so_and_help_lists_it() {
    let p = Platform::start_edited(TOKEN, &with_canary("[10, 100]", None)).await;
    let reply = say(&p.bot, USER, "abort staging").await;
    assert_ne!(reply.outcome, Outcome::Done);
    assert!(
        reply
            .to_plain_text()
            .contains("No canary is under way on *staging*"),
        "{}",
        reply.to_plain_text()
    );
    let help = say(&p.bot, USER, "help").await.to_plain_text();
    for word in ["pause", "continue", "promote", "abort"] {
        assert!(help.contains(word), "help lists {word}: {help}");
    }
}

/// The split of master api in `region`.
async fn split_in(p: &Platform, region: &str) -> Split {
    let cfg = p.bot.config();
    let e = cfg.env("master").expect("env");
    let pool = cfg.pool_in("master", Some(region), "api").expect("pool");
    p.switch.split(e, pool).await.expect("split reads")
}

#[tokio::test]
async fn in_a_rollout_each_region_goes_through_its_steps_one_region_after_the_other() {
    let block = "        aliases: [web, app]\n        canary:\n          steps: [50, 100]\n          pause: 300ms\n";
    let p = Platform::start_edited(TOKEN, &|s: &str| {
        // master's api comes first in the file.
        s.replacen("        aliases: [web, app]\n", block, 1)
    })
    .await;
    let asked = say(&p.bot, USER, "deploy master api").await;
    assert_eq!(asked.outcome, Outcome::Confirm, "{}", asked.to_plain_text());
    let bot = p.bot.clone();
    let deploy = tokio::spawn(async move { common::click(&bot, USER, &asked, "Yes").await });
    let mut seen: Vec<(&str, u8)> = Vec::new();
    while !deploy.is_finished() {
        for region in ["eu", "us"] {
            let green = split_in(&p, region).await.share("green");
            if green > 0 && !seen.contains(&(region, green)) {
                seen.push((region, green));
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let reply = deploy.await.expect("deploy");
    assert_eq!(reply.outcome, Outcome::Done, "{}", reply.to_plain_text());
    for region in ["eu", "us"] {
        let green = split_in(&p, region).await.share("green");
        if !seen.contains(&(region, green)) {
            seen.push((region, green));
        }
    }
    assert_eq!(
        seen,
        [("eu", 50), ("eu", 100), ("us", 50), ("us", 100)],
        "eu went through its steps, then us"
    );
}

#[test]
fn a_pause_too_short_for_its_readings_is_a_config_error() {
    let edit = with_canary("[10, 100]", Some("http://127.0.0.1:9"));
    let instances = edit(&common::without_canaries(common::INSTANCES))
        .replace("pause: 400ms", "pause: 15s")
        .replace("interval: 80ms", "interval: 10s");
    let errors = bot_core::load_strs_with_env(common::COMMANDS, &instances, &|_| None)
        .expect_err("a step that could pass before two readings")
        .to_string();
    assert!(
        errors
            .contains("a canary `pause` of 15.0s is shorter than `interval` × `failures` (20.0s)"),
        "{errors}"
    );
    assert!(
        errors.contains("instances.yaml:"),
        "with its position: {errors}"
    );
}
