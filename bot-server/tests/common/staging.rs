//! A staging `api` pool on real HTTP, as `crossroads serve` meets it: blue and green
//! instances, an HTTP traffic switch with blue live, and a Jenkins whose deploy job
//! ends as asked; [`Staging::instances`] is its `instances.yaml`, with room for more.

use std::time::Duration;

use crossroads_sim::instance::SimInstance;
use crossroads_sim::jenkins::{JenkinsSetup, JobSetup, SimJenkins};
use crossroads_sim::switch::{PoolSetup, SimSwitch};

/// The one who deploys (in group `deployers`).
pub const DEPLOYER: &str = "U0DEPLOYER";
/// The deploy job.
pub const JOB: &str = "platform/deploy-api";

/// The platform.
pub struct Staging {
    pub blue: SimInstance,
    pub green: SimInstance,
    pub switch: SimSwitch,
    pub jenkins: SimJenkins,
}

impl Staging {
    /// Starts it; each build ends `result` (`SUCCESS`, `FAILURE` …).
    pub async fn start(result: &str) -> Staging {
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
                JOB,
                JobSetup::new()
                    .queue_time(Duration::from_millis(50))
                    .build_duration(Duration::from_millis(200))
                    .result(result),
            ),
        )
        .await
        .expect("jenkins");
        Staging {
            blue,
            green,
            switch,
            jenkins,
        }
    }

    /// Its `instances.yaml`: `top` added at the top level, `settings` under
    /// `settings:`.
    pub fn instances(&self, settings: &str, top: &str) -> String {
        let (jenkins, switch) = (self.jenkins.url(), self.switch.url());
        let (blue, green) = (self.blue.url(), self.green.url());
        format!(
            r#"
settings:
  probe_timeout: 2s
  gate: {{ consecutive: 1, interval: 100ms, timeout: 20s }}
{settings}
jenkins: {{ url: "{jenkins}", user: crossroads, token: t0ken, poll_interval: 100ms }}
groups:
  deployers: [{DEPLOYER}]
{top}
environments:
  staging:
    pools:
      api:
        switch:
          type: http
          set: {{ method: POST, url: "{switch}/pools/staging/api", body: '{{"active": "{{colour}}"}}' }}
          get: "{switch}/pools/staging/api"
          pointer: /active
        deploy: {{ job: {JOB}, parameters: {{ COLOUR: "{{colour}}" }} }}
        members:
          blue: {{ url: "{blue}" }}
          green: {{ url: "{green}" }}
"#
        )
    }

    /// The page of build `n`.
    pub fn build_url(&self, n: u64) -> String {
        format!("{}/job/platform/job/deploy-api/{n}/", self.jenkins.url())
    }

    /// The live member of staging api.
    pub fn live(&self) -> Option<String> {
        self.switch.active("staging", "api")
    }
}
