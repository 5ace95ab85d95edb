//! Every long action survives its replica dying mid-run: a deploy, a rollout, a plain
//! and a regional rollback, a switch (also between moving the pool and saving that it
//! did), a restart, a forced restart, a toy refresh, a YAML job and the post-switch
//! watch are each started through `crossroads serve` on SQLite, the process is
//! SIGKILLed mid-run and started again. Each run ends as it would have (one trigger,
//! traffic where it belongs), its Slack message is edited to the end state, its lock
//! is released, and a deploy right after is not refused as locked.

use crate::common;

use std::time::Duration;

use common::serve::{config_dir, message_text, Serve, Served};
use crossroads_sim::instance::{Behaviour, SimInstance};
use crossroads_sim::jenkins::{JenkinsSetup, JobSetup, SimJenkins};
use crossroads_sim::slack::{SlackSetup, SlackStandIn};
use crossroads_sim::switch::{PoolSetup, SimSwitch, WriteMode};

const DEPLOYER: &str = "U0DEPLOYER";
const JOB: Duration = Duration::from_secs(3);

/// A platform on loopback, a Slack stand-in and `crossroads serve` on a SQLite file.
struct World {
    green: SimInstance,
    us_blue: SimInstance,
    /// Kept alive for the world's lifetime.
    _others: [SimInstance; 2],
    switch: SimSwitch,
    jenkins: SimJenkins,
    slack: SlackStandIn,
    serve: Serve,
    state: tempfile::TempDir,
    _dir: tempfile::TempDir,
    served: Option<Served>,
}

fn instances(w: (&str, &str, &str, &str, &str, &str)) -> String {
    let (jenkins, switch, blue, green, us_blue, us_green) = w;
    format!(
        r#"
settings:
  probe_timeout: 2s
  gate: {{ consecutive: 2, interval: 100ms, timeout: 20s }}
  lease: 1s
jenkins: {{ url: "{jenkins}", user: crossroads, token: t0ken, poll_interval: 100ms }}
groups:
  deployers: [{DEPLOYER}]
toy:
  job: toy/refresh-database
  parameters: {{ DATABASE: "{{database}}" }}
  users: {{ {DEPLOYER}: toy_deployer }}
environments:
  staging:
    pools:
      api:
        watch: 3s
        watch_every: 300ms
        auto_rollback: true
        switch:
          type: http
          set: {{ method: POST, url: "{switch}/pools/staging/api", body: '{{"active": "{{colour}}"}}' }}
          get: "{switch}/pools/staging/api"
          pointer: /active
        deploy: {{ job: platform/deploy-api, parameters: {{ COLOUR: "{{colour}}" }} }}
        restart: {{ job: platform/restart, parameters: {{ INSTANCE: "{{pool}}-{{colour}}" }} }}
        members:
          blue: {{ url: "{blue}" }}
          green: {{ url: "{green}" }}
  master:
    pools:
      api:
        deploy: {{ job: platform/deploy-api, parameters: {{ COLOUR: "{{colour}}", REGION: "{{region}}" }} }}
        members:
          blue: {{}}
          green: {{}}
      cron:
        deploy: {{ job: platform/deploy-cron, parameters: {{ COLOUR: "{{colour}}" }} }}
        members:
          blue: {{}}
          green: {{}}
    regions:
      eu:
        pools:
          api:
            switch:
              type: http
              set: {{ method: POST, url: "{switch}/pools/master-eu/api", body: '{{"active": "{{colour}}"}}' }}
              get: "{switch}/pools/master-eu/api"
              pointer: /active
            members: {{ blue: {{ url: "{blue}" }}, green: {{ url: "{green}" }} }}
          cron:
            switch:
              type: http
              set: {{ method: POST, url: "{switch}/pools/master-eu/cron", body: '{{"active": "{{colour}}"}}' }}
              get: "{switch}/pools/master-eu/cron"
              pointer: /active
            members: {{ blue: {{ url: "{us_blue}" }}, green: {{ url: "{us_green}" }} }}
      us:
        pools:
          api:
            switch:
              type: http
              set: {{ method: POST, url: "{switch}/pools/master-us/api", body: '{{"active": "{{colour}}"}}' }}
              get: "{switch}/pools/master-us/api"
              pointer: /active
            members: {{ blue: {{ url: "{us_blue}" }}, green: {{ url: "{us_green}" }} }}
          cron:
            switch:
              type: http
              set: {{ method: POST, url: "{switch}/pools/master-us/cron", body: '{{"active": "{{colour}}"}}' }}
              get: "{switch}/pools/master-us/cron"
              pointer: /active
            members: {{ blue: {{ url: "{us_blue}" }}, green: {{ url: "{us_green}" }} }}
    rollout:
      order: [eu, us]
"#
    )
}

impl World {
    async fn start() -> World {
        let blue = SimInstance::start("blue", "1.0.0").await.expect("blue");
        let green = SimInstance::start("green", "1.0.0").await.expect("green");
        let us_blue = SimInstance::start("blue", "1.0.0").await.expect("us blue");
        let us_green = SimInstance::start("green", "1.0.0")
            .await
            .expect("us green");
        let switch = SimSwitch::start(vec![
            PoolSetup::new("staging", "api", &["blue", "green"], "blue"),
            PoolSetup::new("master-eu", "api", &["blue", "green"], "blue"),
            PoolSetup::new("master-eu", "cron", &["blue", "green"], "blue"),
            PoolSetup::new("master-us", "api", &["blue", "green"], "blue"),
            PoolSetup::new("master-us", "cron", &["blue", "green"], "blue"),
        ])
        .await
        .expect("switch");
        let job = || {
            JobSetup::new()
                .queue_time(Duration::from_millis(100))
                .build_duration(JOB)
        };
        let jenkins = SimJenkins::start(
            JenkinsSetup::new("crossroads", "t0ken")
                .job("platform/deploy-api", job())
                .job("platform/deploy-cron", job())
                .job("platform/restart", job())
                .job("platform/clear-cache", job())
                .job("toy/refresh-database", job()),
        )
        .await
        .expect("jenkins");
        let slack =
            SlackStandIn::start_with(SlackSetup::new().wait_timeout(Duration::from_secs(40)))
                .await
                .expect("slack");
        let dir = config_dir(&instances((
            &jenkins.url(),
            &switch.url(),
            &blue.url(),
            &green.url(),
            &us_blue.url(),
            &us_green.url(),
        )));
        let state = tempfile::tempdir().expect("state");
        let serve = Serve {
            config_dir: dir.path().to_owned(),
            database_url: format!("sqlite://{}", state.path().join("state.db").display()),
            slack_api: slack.api_url(),
            extra_env: vec![],
        };
        let served = Some(serve.start(state.path()).await);
        World {
            green,
            us_blue,
            _others: [blue, us_green],
            switch,
            jenkins,
            slack,
            serve,
            state,
            _dir: dir,
            served,
        }
    }

    fn served(&self) -> &Served {
        self.served.as_ref().expect("serving")
    }

    /// A DM from the deployer in `channel`.
    async fn say(&self, channel: &str, text: &str) {
        let event = self.slack.message_event(channel, DEPLOYER, text);
        assert_eq!(self.served().event(&event).await, 200, "{text}");
    }

    /// SIGKILL, then start again on the same store.
    async fn crash(&mut self) {
        if let Some(mut s) = self.served.take() {
            s.kill();
        }
        self.served = Some(self.serve.start(self.state.path()).await);
    }

    /// The bot's message in `channel`, once it says `end` (posted so, or edited).
    async fn ends(&self, channel: &str, end: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(40);
        loop {
            let said = self
                .slack
                .messages()
                .into_iter()
                .filter(|m| m.channel == channel)
                .map(|m| message_text(&m.message))
                .find(|t| t.contains(end));
            if let Some(text) = said {
                return text;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the message in {channel} never said {end:?}: {:?}\n{}",
                self.slack
                    .messages()
                    .iter()
                    .map(|m| message_text(&m.message))
                    .collect::<Vec<_>>(),
                self.served().log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A deploy of `env` right after is not refused as locked: it starts.
    async fn deploy_is_free(&self, env: &str) {
        let channel = format!("D0NEXT{}", env.to_uppercase());
        let before = self.jenkins.trigger_count("platform/deploy-api");
        self.say(&channel, &format!("deploy {env} api")).await;
        let first = self
            .slack
            .wait_for_one("chat.postMessage", |c| {
                c.arg("channel") == Some(channel.as_str())
            })
            .await;
        let text = message_text(&first.body);
        assert!(!text.contains("is locked"), "refused as locked: {text}");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while self.jenkins.trigger_count("platform/deploy-api") == before {
            assert!(
                std::time::Instant::now() < deadline,
                "the next deploy never started"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `pred` holds.
    async fn until(&self, what: &str, pred: impl Fn(&World) -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !pred(self) {
            assert!(std::time::Instant::now() < deadline, "never: {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn posts_to(&self, path: &str) -> usize {
        self.switch
            .calls()
            .iter()
            .filter(|c| c.method == "POST" && format!("{}/{}", c.env, c.pool) == path)
            .count()
    }
}

/// Kills mid-build a run that follows one Jenkins job, and checks it ends as built.
async fn job_survives(mut w: World, job: &str, ask: &str, end: &str, env: &str) {
    w.say("D0RUN", ask).await;
    w.jenkins.wait_until_building(job).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    w.crash().await;
    let done = w.ends("D0RUN", "succeeded in").await;
    assert!(done.contains(end), "{done}");
    assert_eq!(w.jenkins.trigger_count(job), 1, "one trigger");
    assert_eq!(
        w.jenkins.builds(job).len(),
        1,
        "the same build, followed again"
    );
    w.deploy_is_free(env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_killed_mid_build_ends_on_the_same_message() {
    let mut w = World::start().await;
    w.say("D0RUN", "deploy staging").await;
    w.jenkins.wait_until_building("platform/deploy-api").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    w.crash().await;
    let killed = w.slack.calls("chat.update").len();
    let done = w.ends("D0RUN", "Deployed").await;
    assert!(done.contains("stayed healthy"), "{done}");
    let after: Vec<String> = w.slack.calls("chat.update")[killed..]
        .iter()
        .map(|c| message_text(&c.body))
        .collect();
    assert!(
        !after
            .iter()
            .any(|t| t.contains(":hourglass_flowing_sand: queued")),
        "the message never steps back from building to queued: {after:?}"
    );
    assert_eq!(w.jenkins.trigger_count("platform/deploy-api"), 1);
    assert_eq!(w.switch.active("staging", "api").as_deref(), Some("green"));
    w.deploy_is_free("staging").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_post_switch_watch_goes_on_counting_after_a_kill() {
    let mut w = World::start().await;
    w.say("D0RUN", "deploy staging").await;
    w.until("traffic moved", |w| {
        w.switch.active("staging", "api").as_deref() == Some("green")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(900)).await;
    let probed = w.green.health_hits();
    w.crash().await;
    let done = w.ends("D0RUN", "Deployed").await;
    let text = done;
    assert!(text.contains("stayed healthy for 3.0s"), "{text}");
    // The watch's probes before the kill are counted, not started again from 1.
    let counted: u64 = text
        .split("probes)")
        .next()
        .and_then(|s| s.rsplit('(').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_default();
    assert!(
        counted >= 6,
        "probes counted across the kill: {text} ({probed} hits before)"
    );
    assert_eq!(w.switch.active("staging", "api").as_deref(), Some("green"));
    w.deploy_is_free("staging").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_killed_in_its_second_region_finishes_every_region() {
    let mut w = World::start().await;
    w.say("D0RUN", "deploy master api").await;
    w.until("the second region builds", |w| {
        w.jenkins.trigger_count("platform/deploy-api") == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    w.crash().await;
    let done = w.ends("D0RUN", "Deployed `main` to *master*").await;
    assert!(done.contains("eu, us"), "{done}");
    assert_eq!(
        w.jenkins.trigger_count("platform/deploy-api"),
        2,
        "one build per region"
    );
    assert_eq!(
        w.switch.active("master-eu", "api").as_deref(),
        Some("green")
    );
    assert_eq!(
        w.switch.active("master-us", "api").as_deref(),
        Some("green")
    );
    w.deploy_is_free("master").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_rollback_killed_in_its_watch_is_taken_over() {
    let mut w = World::start().await;
    w.switch.set_active("staging", "api", "green");
    w.say("D0RUN", "rollback staging").await;
    w.until("traffic moved back", |w| {
        w.switch.active("staging", "api").as_deref() == Some("blue")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    w.crash().await;
    let done = w.ends("D0RUN", "stayed healthy").await;
    assert!(done.contains("Rolled back *staging*"), "{done}");
    assert_eq!(w.posts_to("staging/api"), 1, "moved once");
    assert_eq!(w.switch.active("staging", "api").as_deref(), Some("blue"));
    w.deploy_is_free("staging").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regional_rollback_killed_between_pools_moves_the_rest() {
    let mut w = World::start().await;
    w.switch.set_active("master-eu", "api", "green");
    w.switch.set_active("master-eu", "cron", "green");
    // Its second destination answers slowly: the kill lands between the two moves.
    w.us_blue
        .set_behaviour(Behaviour::Slow(Duration::from_millis(1500)));
    w.say("D0RUN", "rollback master eu").await;
    w.until("the first pool moved back", |w| {
        w.posts_to("master-eu/api") == 1
    })
    .await;
    w.crash().await;
    w.us_blue.set_behaviour(Behaviour::Healthy);
    let done = w.ends("D0RUN", "Rolled back *master* in eu").await;
    let text = done;
    assert!(text.contains("eu cron"), "{text}");
    assert_eq!(w.switch.active("master-eu", "api").as_deref(), Some("blue"));
    assert_eq!(
        w.switch.active("master-eu", "cron").as_deref(),
        Some("blue")
    );
    assert_eq!(w.posts_to("master-eu/api"), 1, "the first pool moved once");
    w.deploy_is_free("master").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_killed_in_its_watch_is_taken_over() {
    let mut w = World::start().await;
    w.say("D0RUN", "switch staging api green").await;
    w.until("traffic moved", |w| {
        w.switch.active("staging", "api").as_deref() == Some("green")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    w.crash().await;
    let done = w.ends("D0RUN", "stayed healthy").await;
    assert!(done.contains("Switched *staging*"), "{done}");
    assert_eq!(w.posts_to("staging/api"), 1);
    w.deploy_is_free("staging").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_killed_after_moving_the_pool_does_not_move_it_back() {
    let mut w = World::start().await;
    // The switch takes the change at once and confirms it 2 s later: the kill lands
    // after the pool moved and before the run could save that it did.
    w.switch
        .set_write_mode(WriteMode::ApplySlowly(Duration::from_secs(2)));
    w.say("D0RUN", "switch staging api").await;
    w.until("traffic moved", |w| {
        w.switch.active("staging", "api").as_deref() == Some("green")
    })
    .await;
    w.crash().await;
    w.switch.set_write_mode(WriteMode::Apply);
    let done = w.ends("D0RUN", "stayed healthy").await;
    assert!(done.contains("blue → *green*"), "{done}");
    assert_eq!(
        w.switch.active("staging", "api").as_deref(),
        Some("green"),
        "the replica that took over did not move it on (back to blue)"
    );
    assert_eq!(w.posts_to("staging/api"), 1, "the pool moved once");
    w.deploy_is_free("staging").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_killed_mid_build_is_taken_over() {
    let w = World::start().await;
    job_survives(
        w,
        "platform/restart",
        "restart staging api green",
        "Restarting",
        "staging",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_restart_killed_mid_build_is_taken_over() {
    let mut w = World::start().await;
    w.say("D0RUN", "force restart staging api blue").await;
    let question = w
        .slack
        .wait_for_one("chat.postMessage", |c| c.arg("channel") == Some("D0RUN"))
        .await;
    let ts = w.slack.wait_for_message("D0RUN").await.ts;
    let yes = common::serve::button(&question.body, |t| t.starts_with("Yes"));
    let click = common::serve::click_on(&w.slack, DEPLOYER, "D0RUN", &ts, &yes);
    assert_eq!(w.served().interaction(&click).await, 200);
    w.jenkins.wait_until_building("platform/restart").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    w.crash().await;
    let done = w.ends("D0RUN", "succeeded in").await;
    assert!(done.contains("Force restarting"), "{done}");
    assert_eq!(w.jenkins.trigger_count("platform/restart"), 1);
    w.deploy_is_free("staging").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_toy_refresh_killed_mid_build_is_taken_over() {
    let w = World::start().await;
    job_survives(
        w,
        "toy/refresh-database",
        "toy",
        "Refreshing toy database",
        "staging",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_yaml_job_killed_mid_build_is_taken_over() {
    let w = World::start().await;
    job_survives(
        w,
        "platform/clear-cache",
        "clear cache staging",
        "clear cache staging",
        "staging",
    )
    .await;
}
