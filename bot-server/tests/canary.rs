//! Canary deploys through `crossroads serve`, the way a team runs them: DMs in over
//! signed Slack events, the traffic switch and Jenkins over real HTTP, state in a
//! SQLite file. SIGKILLed mid-canary and started again, the run goes on at the step
//! it was in, with the same weights, neither repeating nor skipping a step; `abort`
//! typed in chat puts the weights back.

use crate::common;

use std::time::{Duration, Instant};

use common::serve::{config_dir, message_text, Serve, Served};
use crossroads_sim::instance::SimInstance;
use crossroads_sim::jenkins::{JenkinsSetup, JobSetup, SimJenkins};
use crossroads_sim::slack::{SlackSetup, SlackStandIn};
use crossroads_sim::switch::{PoolSetup, SimSwitch};

const DEPLOYER: &str = "U0DEPLOYER";
/// How long each canary step is held.
const PAUSE: Duration = Duration::from_secs(3);

fn instances(jenkins: &str, switch: &str, blue: &str, green: &str) -> String {
    format!(
        r#"
settings:
  probe_timeout: 2s
  gate: {{ consecutive: 1, interval: 100ms, timeout: 20s }}
  lease: 1s
jenkins: {{ url: "{jenkins}", user: crossroads, token: t0ken, poll_interval: 100ms }}
groups:
  deployers: [{DEPLOYER}]
environments:
  staging:
    pools:
      api:
        switch:
          type: http
          set: {{ method: POST, url: "{switch}/pools/staging/api", body: '{{"active": "{{colour}}"}}' }}
          get: "{switch}/pools/staging/api"
          pointer: /active
          weights: {{ method: POST, url: "{switch}/pools/staging/api/weights", body: '{{weights}}' }}
          weights_pointer: /weights
        canary:
          steps: [10, 50, 100]
          pause: {pause}ms
        deploy: {{ job: platform/deploy-api, parameters: {{ COLOUR: "{{colour}}" }} }}
        members:
          blue: {{ url: "{blue}" }}
          green: {{ url: "{green}" }}
"#,
        pause = PAUSE.as_millis()
    )
}

struct World {
    _instances: [SimInstance; 2],
    switch: SimSwitch,
    jenkins: SimJenkins,
    slack: SlackStandIn,
    serve: Serve,
    state: tempfile::TempDir,
    _dir: tempfile::TempDir,
    served: Option<Served>,
}

impl World {
    async fn start() -> World {
        let blue = SimInstance::start("blue", "1.0.0").await.expect("blue");
        let green = SimInstance::start("green", "1.0.0").await.expect("green");
        let switch = SimSwitch::start(vec![PoolSetup::new(
            "staging",
            "api",
            &["blue", "green"],
            "blue",
        )])
        .await
        .expect("switch");
        let jenkins = SimJenkins::start(
            JenkinsSetup::new("crossroads", "t0ken").job(
                "platform/deploy-api",
                JobSetup::new()
                    .queue_time(Duration::from_millis(100))
                    .build_duration(Duration::from_millis(300)),
            ),
        )
        .await
        .expect("jenkins");
        let slack =
            SlackStandIn::start_with(SlackSetup::new().wait_timeout(Duration::from_secs(40)))
                .await
                .expect("slack");
        let dir = config_dir(&instances(
            &jenkins.url(),
            &switch.url(),
            &blue.url(),
            &green.url(),
        ));
        let state = tempfile::tempdir().expect("state");
        let serve = Serve::on_sqlite(dir.path(), state.path(), slack.api_url());
        let served = Some(serve.start(state.path()).await);
        World {
            _instances: [blue, green],
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

    async fn say(&self, channel: &str, text: &str) {
        let event = self.slack.message_event(channel, DEPLOYER, text);
        assert_eq!(self.served().event(&event).await, 200, "{text}");
    }

    /// Green's weight now.
    fn green(&self) -> u64 {
        self.switch
            .weights("staging", "api")
            .and_then(|w| w.get("green").copied())
            .unwrap_or_default()
    }

    /// Green's weight in every weights request the switch received, in order.
    fn weight_requests(&self) -> Vec<u64> {
        self.weights_set()
            .into_iter()
            .map(|(green, _)| green)
            .collect()
    }

    /// Green's weight in every weights request, with when the switch received it.
    fn weights_set(&self) -> Vec<(u64, Instant)> {
        self.switch
            .calls()
            .into_iter()
            .filter_map(|c| {
                let green = c.body?.get("green")?.as_u64()?;
                Some((green, c.at))
            })
            .collect()
    }

    /// When the switch received the request that set green to `percent`.
    fn set_at(&self, percent: u64) -> Instant {
        self.weights_set()
            .into_iter()
            .find(|(green, _)| *green == percent)
            .map(|(_, at)| at)
            .unwrap_or_else(|| panic!("green was never set to {percent} %"))
    }

    async fn until(&self, what: &str, pred: impl Fn(&World) -> bool) -> Instant {
        let deadline = Instant::now() + Duration::from_secs(40);
        while !pred(self) {
            assert!(
                Instant::now() < deadline,
                "never: {what}\n{}",
                self.served().log()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Instant::now()
    }

    /// The bot's message in `channel`, once it says `end`.
    async fn ends(&self, channel: &str, end: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(40);
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
                Instant::now() < deadline,
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
}

#[tokio::test]
async fn a_canary_killed_mid_step_goes_on_at_that_step_with_the_same_weights() {
    let mut w = World::start().await;
    w.say("D0CANARY", "deploy staging api").await;
    w.until("the canary is at 50 %", |w| w.green() == 50).await;
    // A second into the step (saved by then), the replica dies.
    tokio::time::sleep(Duration::from_secs(1)).await;
    if let Some(mut s) = w.served.take() {
        s.kill();
    }
    assert_eq!(w.green(), 50, "the weights stay as they were");
    let restarted = Instant::now();
    w.served = Some(w.serve.start(w.state.path()).await);
    w.until("the canary is at 100 %", |w| w.green() == 100)
        .await;
    let text = w.ends("D0CANARY", "Deployed").await;
    assert!(text.contains("api: blue → *green*"), "{text}");
    assert_eq!(
        w.switch.active("staging", "api").as_deref(),
        Some("green"),
        "all traffic on green"
    );
    assert_eq!(
        w.weight_requests(),
        [10, 50, 100],
        "each step's weights set once, in order, none skipped (the replica taking over did not set 50 % again)"
    );
    // Timed by the switch, from the request that set 50 % to the one that set 100 %:
    // the test's own polling can see either weight late. The bot keeps its clock in
    // whole milliseconds, so the hold may come out up to a millisecond short.
    let at_100 = w.set_at(100);
    let held = at_100 - w.set_at(50);
    assert!(
        held + Duration::from_millis(1) >= PAUSE,
        "the 50 % step was held for its whole pause across the restart: {held:?}"
    );
    eprintln!(
        "50 % held {held:?}, of which {:?} after the restart",
        at_100 - restarted
    );
    assert!(
        at_100 - restarted < PAUSE,
        "its clock went on from where it was, not from the restart: {:?} after it",
        at_100 - restarted
    );
    assert_eq!(
        w.jenkins.trigger_count("platform/deploy-api"),
        1,
        "built once"
    );
}

#[tokio::test]
async fn abort_typed_in_chat_puts_the_weights_back() {
    let w = World::start().await;
    w.say("D0ABORT", "deploy staging api").await;
    w.until("the canary is at 10 %", |w| w.green() == 10).await;
    w.say("D0STEER", "abort staging").await;
    let said = w.ends("D0STEER", "Aborting the canary").await;
    assert!(said.contains("*staging api*"), "{said}");
    let text = w.ends("D0ABORT", "canary was aborted").await;
    assert!(
        text.contains(&format!("aborted by <@{DEPLOYER}>"))
            && text.contains("All traffic is back on blue"),
        "{text}"
    );
    assert_eq!(w.switch.active("staging", "api").as_deref(), Some("blue"));
    assert_eq!(w.green(), 0);
}
