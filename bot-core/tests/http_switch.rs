//! Switching traffic with an HTTP request or a Jenkins job, verified by reading back.

use std::sync::Arc;
use std::time::Duration;

use bot_core::adapters::http_switch::{HttpSwitch, JenkinsSwitch};
use bot_core::adapters::jenkins::{JenkinsClient, NoCi};
use bot_core::adapters::memory_switch::MemorySwitch;
use bot_core::adapters::probe::{HttpProbe, ReqwestAction};
use bot_core::adapters::{switch_for, SwitchParts};
use bot_core::config::{
    Environment, HealthRecipe, HttpRequestSpec, Instance, JenkinsConfig, JobSpec, Pool, Pos,
    Secret, SwitchSpec,
};
use bot_core::ports::{Ci, CiError, SwitchError, TrafficSwitch};
use crossroads_sim::jenkins::{JenkinsSetup, JobSetup, SimJenkins};
use crossroads_sim::switch::{PoolSetup, SimSwitch, WriteMode};
use serde_json::json;

fn member(name: &str) -> Instance {
    Instance {
        name: name.into(),
        aliases: vec![],
        emoji: vec![],
        url: "http://127.0.0.1:1".into(),
        health: HealthRecipe::default(),
        tasks: None,
        restart: None,
        pos: Pos::default(),
    }
}

/// The HTTP switch a `type: http` spec describes, on the real probe and sender.
fn http_switch(spec: &SwitchSpec) -> HttpSwitch {
    match spec {
        SwitchSpec::Http {
            set,
            get_url,
            pointer,
            ..
        } => HttpSwitch::new(
            set.clone(),
            get_url.clone(),
            pointer.clone(),
            Arc::new(HttpProbe::new()),
            Arc::new(ReqwestAction::new()),
        ),
        other => panic!("not an http spec: {other:?}"),
    }
}

/// The Jenkins switch a `type: jenkins` spec describes, running its job on `ci`.
fn jenkins_switch(spec: &SwitchSpec, ci: Arc<dyn Ci>) -> JenkinsSwitch {
    match spec {
        SwitchSpec::Jenkins {
            job,
            get_url,
            pointer,
        } => JenkinsSwitch::new(
            job.clone(),
            ci,
            get_url.clone(),
            pointer.clone(),
            Arc::new(HttpProbe::new()),
        ),
        other => panic!("not a jenkins spec: {other:?}"),
    }
}

fn env_and_pool(spec: SwitchSpec) -> (Environment, Pool) {
    let pool = Pool {
        name: "api".into(),
        aliases: vec!["api".into()],
        switch: spec,
        deploy: None,
        members: vec![member("blue"), member("green")],
        region: None,
        pos: Pos::default(),
    };
    let env = Environment {
        name: "staging".into(),
        aliases: vec!["staging".into()],
        emoji: vec![],
        protected: false,
        allowed: vec![],
        pools: vec![pool.clone()],
        regions: Vec::new(),
        rollout: Default::default(),
        pos: Pos::default(),
    };
    (env, pool)
}

/// The shape shipped in instances.yaml, pointed at `base`.
fn http_spec(base: &str) -> SwitchSpec {
    SwitchSpec::Http {
        set: HttpRequestSpec {
            method: "POST".into(),
            url: format!("{base}/pools/{{env}}/{{pool}}"),
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: Some(r#"{"active": "{colour}"}"#.into()),
        },
        get_url: format!("{base}/pools/{{env}}/{{pool}}"),
        pointer: "/active".into(),
        weights: None,
    }
}

async fn sim_switch(members: &[&str]) -> SimSwitch {
    SimSwitch::start(vec![PoolSetup::new("staging", "api", members, "blue")])
        .await
        .expect("start simulated switch")
}

#[tokio::test]
async fn http_switch_moves_traffic_and_reads_it_back() {
    let sim = sim_switch(&["blue", "green"]).await;
    let spec = http_spec(&sim.url());
    let (env, pool) = env_and_pool(spec.clone());
    let switch = http_switch(&spec);

    assert_eq!(switch.active(&env, &pool).await.expect("active"), "blue");
    switch
        .switch_to(&env, &pool, "green")
        .await
        .expect("switch to green");
    assert_eq!(sim.active("staging", "api").as_deref(), Some("green"));
    assert_eq!(switch.active(&env, &pool).await.expect("active"), "green");

    let posts: Vec<_> = sim
        .calls()
        .into_iter()
        .filter(|c| c.method == "POST")
        .collect();
    assert_eq!(posts.len(), 1);
    assert_eq!(
        (posts[0].env.as_str(), posts[0].pool.as_str()),
        ("staging", "api")
    );
    assert_eq!(posts[0].body, Some(json!({"active": "green"})));
}

#[tokio::test]
async fn a_switch_that_answers_ok_but_does_not_move_is_not_applied() {
    let sim = sim_switch(&["blue", "green"]).await;
    sim.set_write_mode(WriteMode::Ignore);
    let spec = http_spec(&sim.url());
    let (env, pool) = env_and_pool(spec.clone());
    let err = http_switch(&spec)
        .switch_to(&env, &pool, "green")
        .await
        .expect_err("not applied");
    assert!(
        matches!(&err, SwitchError::NotApplied(m) if m.contains("green") && m.contains("blue")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_switch_error_answer_is_a_refusal_with_its_reason() {
    let sim = sim_switch(&["blue", "green"]).await;
    sim.set_write_mode(WriteMode::Fail);
    let spec = http_spec(&sim.url());
    let (env, pool) = env_and_pool(spec.clone());
    let switch = http_switch(&spec);
    let err = switch
        .switch_to(&env, &pool, "green")
        .await
        .expect_err("500");
    assert!(
        matches!(&err, SwitchError::Refused(m) if m.contains("HTTP 500") && m.contains("switch backend failure")),
        "{err:?}"
    );

    // The switch itself does not know the member: its 400 reason comes through.
    let sim = sim_switch(&["blue", "teal"]).await;
    let spec = http_spec(&sim.url());
    let err = http_switch(&spec)
        .switch_to(&env, &pool, "green")
        .await
        .expect_err("400");
    assert!(
        matches!(&err, SwitchError::Refused(m) if m.contains("HTTP 400") && m.contains("not a member")),
        "{err:?}"
    );
    assert_eq!(sim.active("staging", "api").as_deref(), Some("blue"));
}

#[tokio::test]
async fn a_member_outside_the_pool_is_refused_without_calling_the_switch() {
    let sim = sim_switch(&["blue", "green"]).await;
    let spec = http_spec(&sim.url());
    let (env, pool) = env_and_pool(spec.clone());
    let err = http_switch(&spec)
        .switch_to(&env, &pool, "purple")
        .await
        .expect_err("not a member");
    assert!(matches!(err, SwitchError::Refused(_)), "{err:?}");
    assert!(sim.calls().is_empty());
}

#[tokio::test]
async fn a_switch_that_is_down_is_unreachable() {
    let spec = http_spec(&crossroads_sim::dead_url().expect("port"));
    let (env, pool) = env_and_pool(spec.clone());
    let switch = http_switch(&spec);
    let err = switch.active(&env, &pool).await.expect_err("down");
    assert!(matches!(err, SwitchError::Unreachable { .. }), "{err:?}");
    let err = switch
        .switch_to(&env, &pool, "green")
        .await
        .expect_err("down");
    assert!(matches!(err, SwitchError::Unreachable { .. }), "{err:?}");
}

#[tokio::test]
async fn a_read_back_naming_a_stranger_is_unknown() {
    let sim = sim_switch(&["blue", "green"]).await;
    sim.set_active("staging", "api", "magenta");
    let spec = http_spec(&sim.url());
    let (env, pool) = env_and_pool(spec.clone());
    let err = http_switch(&spec)
        .active(&env, &pool)
        .await
        .expect_err("stranger");
    assert!(
        matches!(&err, SwitchError::Unknown(m) if m.contains("magenta")),
        "{err:?}"
    );
}

// ---------------------------------------------------------------- Jenkins switch

fn jenkins_client(url: &str) -> Arc<dyn Ci> {
    Arc::new(JenkinsClient::new(JenkinsConfig {
        url: url.into(),
        user: "crossroads".into(),
        token: Secret::new("demo-token"),
        timeout: Duration::from_secs(10),
        poll_interval: Duration::from_millis(20),
    }))
}

fn jenkins_spec(base: &str) -> SwitchSpec {
    SwitchSpec::Jenkins {
        job: JobSpec {
            job: "platform/switch".into(),
            parameters: vec![
                ("ENVIRONMENT".into(), "{env}".into()),
                ("POOL".into(), "{pool}".into()),
                ("COLOUR".into(), "{colour}".into()),
            ],
        },
        get_url: format!("{base}/pools/{{env}}/{{pool}}"),
        pointer: "/active".into(),
    }
}

/// A simulated Jenkins whose switch job moves the simulated switch on success.
async fn jenkins_moving(sim: &Arc<SimSwitch>, result: &str, moves: bool) -> SimJenkins {
    let target = sim.clone();
    let job = JobSetup::new()
        .queue_time(Duration::from_millis(20))
        .build_duration(Duration::from_millis(50))
        .result(result)
        .on_success(move |params| {
            let get = |k: &str| {
                params
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            if moves {
                target.set_active(&get("ENVIRONMENT"), &get("POOL"), &get("COLOUR"));
            }
        });
    SimJenkins::start(JenkinsSetup::new("crossroads", "demo-token").job("platform/switch", job))
        .await
        .expect("start simulated Jenkins")
}

#[tokio::test]
async fn jenkins_switch_runs_the_job_with_templated_parameters_and_reads_back() {
    let sim = Arc::new(sim_switch(&["blue", "green"]).await);
    let jenkins = jenkins_moving(&sim, "SUCCESS", true).await;
    let spec = jenkins_spec(&sim.url());
    let (env, pool) = env_and_pool(spec.clone());
    let switch = jenkins_switch(&spec, jenkins_client(&jenkins.url()));

    switch
        .switch_to(&env, &pool, "green")
        .await
        .expect("switch to green");
    assert_eq!(switch.active(&env, &pool).await.expect("active"), "green");
    let triggers = jenkins.triggers();
    assert_eq!(triggers.len(), 1);
    assert_eq!(
        triggers[0].params,
        vec![
            ("ENVIRONMENT".to_owned(), "staging".to_owned()),
            ("POOL".to_owned(), "api".to_owned()),
            ("COLOUR".to_owned(), "green".to_owned()),
        ]
    );
}

#[tokio::test]
async fn a_failed_switch_job_is_refused_with_its_console_link() {
    let sim = Arc::new(sim_switch(&["blue", "green"]).await);
    let jenkins = jenkins_moving(&sim, "FAILURE", true).await;
    let spec = jenkins_spec(&sim.url());
    let (env, pool) = env_and_pool(spec.clone());
    let err = jenkins_switch(&spec, jenkins_client(&jenkins.url()))
        .switch_to(&env, &pool, "green")
        .await
        .expect_err("failed job");
    assert!(
        matches!(&err, SwitchError::Refused(m) if m.contains("FAILURE") && m.contains("/console")),
        "{err:?}"
    );
    assert_eq!(sim.active("staging", "api").as_deref(), Some("blue"));
}

#[tokio::test]
async fn a_successful_switch_job_that_moved_nothing_is_not_applied() {
    let sim = Arc::new(sim_switch(&["blue", "green"]).await);
    let jenkins = jenkins_moving(&sim, "SUCCESS", false).await;
    let spec = jenkins_spec(&sim.url());
    let (env, pool) = env_and_pool(spec.clone());
    let err = jenkins_switch(&spec, jenkins_client(&jenkins.url()))
        .switch_to(&env, &pool, "green")
        .await
        .expect_err("not applied");
    assert!(matches!(err, SwitchError::NotApplied(_)), "{err:?}");
}

#[tokio::test]
async fn a_jenkins_switch_without_jenkins_is_refused() {
    let sim = sim_switch(&["blue", "green"]).await;
    let spec = jenkins_spec(&sim.url());
    let (env, pool) = env_and_pool(spec.clone());
    let err = jenkins_switch(&spec, Arc::new(NoCi))
        .switch_to(&env, &pool, "green")
        .await
        .expect_err("no CI");
    assert!(
        matches!(&err, SwitchError::Refused(m) if m.contains("no Jenkins is configured")),
        "{err:?}"
    );
}

// ---------------------------------------------------------------- switch_for

#[tokio::test]
async fn switch_for_builds_the_configured_kind() {
    let memory = Arc::new(MemorySwitch::new());
    let ci: Arc<dyn Ci> = Arc::new(NoCi);
    let parts = SwitchParts {
        probe: Arc::new(HttpProbe::new()),
        http: Arc::new(ReqwestAction::new()),
        ci: ci.clone(),
        memory: memory.clone(),
    };

    let spec = SwitchSpec::Memory {
        initial: "blue".into(),
    };
    let built = switch_for(&spec, &parts);
    assert_eq!(
        Arc::as_ptr(&built).cast::<()>(),
        Arc::as_ptr(&memory).cast::<()>(),
        "memory pools share the one memory switch"
    );

    let sim = sim_switch(&["blue", "green"]).await;
    let spec = http_spec(&sim.url());
    let (env, pool) = env_and_pool(spec.clone());
    let built = switch_for(&spec, &parts);
    built
        .switch_to(&env, &pool, "green")
        .await
        .expect("http switch");
    assert_eq!(sim.active("staging", "api").as_deref(), Some("green"));

    let port = crossroads_sim::free_port().expect("port");
    let spec = SwitchSpec::Haproxy {
        address: format!("127.0.0.1:{port}"),
        backend: "be_app".into(),
        servers: vec![],
        off_state: "drain".into(),
    };
    let (env, pool) = env_and_pool(spec.clone());
    let err = switch_for(&spec, &parts)
        .active(&env, &pool)
        .await
        .expect_err("no haproxy there");
    assert!(
        matches!(&err, SwitchError::Unreachable { address, .. } if address.ends_with(&port.to_string())),
        "{err:?}"
    );

    let spec = jenkins_spec(&sim.url());
    let (env, pool) = env_and_pool(spec.clone());
    let err = switch_for(&spec, &parts)
        .switch_to(&env, &pool, "blue")
        .await
        .expect_err("NoCi");
    assert!(matches!(err, SwitchError::Refused(_)), "{err:?}");
}

// ---------------------------------------------------------------- secrets in URLs

/// The HTTP switch's URLs with a password and a token in the query.
fn http_spec_with_secrets(base: &str) -> SwitchSpec {
    let base = base.replace("http://", "http://ops:pa55word@");
    let url = format!("{base}/pools/{{env}}/{{pool}}?token=t0k3n");
    SwitchSpec::Http {
        set: HttpRequestSpec {
            method: "POST".into(),
            url: url.clone(),
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: Some(r#"{"active": "{colour}"}"#.into()),
        },
        get_url: url,
        pointer: "/active".into(),
        weights: None,
    }
}

fn assert_redacted(err: &SwitchError) {
    let text = err.to_string();
    assert!(
        !text.contains("pa55word") && !text.contains("t0k3n"),
        "secret in `{text}`"
    );
    assert!(text.contains("token=***"), "still says where: `{text}`");
}

/// Credentials in a switch URL (userinfo, a token in the query) never reach chat or
/// the audit log through an error message.
#[tokio::test]
async fn switch_errors_never_show_credentials_from_urls() {
    let (env, pool) = env_and_pool(http_spec(
        crossroads_sim::dead_url().expect("port").as_str(),
    ));

    // Refused: the switch answers 500.
    let sim = sim_switch(&["blue", "green"]).await;
    sim.set_write_mode(WriteMode::Fail);
    let switch = http_switch(&http_spec_with_secrets(&sim.url()));
    let err = switch
        .switch_to(&env, &pool, "green")
        .await
        .expect_err("500");
    assert!(matches!(err, SwitchError::Refused(_)), "{err:?}");
    assert_redacted(&err);

    // Unknown: the read-back names a stranger.
    sim.set_active("staging", "api", "magenta");
    let err = switch.active(&env, &pool).await.expect_err("stranger");
    assert!(matches!(err, SwitchError::Unknown(_)), "{err:?}");
    assert_redacted(&err);

    // Unreachable: nobody listens.
    let dead = crossroads_sim::dead_url().expect("port");
    let switch = http_switch(&http_spec_with_secrets(&dead));
    let err = switch.active(&env, &pool).await.expect_err("down");
    assert!(matches!(err, SwitchError::Unreachable { .. }), "{err:?}");
    assert_redacted(&err);
    let err = switch
        .switch_to(&env, &pool, "green")
        .await
        .expect_err("down");
    assert!(matches!(err, SwitchError::Unreachable { .. }), "{err:?}");
    assert_redacted(&err);
}

/// A CI backend whose errors carry a URL with credentials.
struct LeakyCi(CiError);

#[async_trait::async_trait]
impl Ci for LeakyCi {
    async fn run_job(
        &self,
        _job: &str,
        _params: &[(String, String)],
        _progress: &(dyn Fn(bot_core::ports::BuildProgress) + Send + Sync),
    ) -> Result<bot_core::ports::BuildOutcome, CiError> {
        Err(self.0.clone())
    }

    async fn trigger(
        &self,
        _job: &str,
        _params: &[(String, String)],
    ) -> Result<Option<bot_core::ports::BuildRef>, CiError> {
        Err(self.0.clone())
    }

    async fn reattach(
        &self,
        _job: &str,
        _at: &bot_core::ports::BuildRef,
        _progress: &(dyn Fn(bot_core::ports::BuildProgress) + Send + Sync),
    ) -> Result<bot_core::ports::BuildOutcome, CiError> {
        Err(self.0.clone())
    }

    async fn changes(
        &self,
        _job: &str,
        _url: &str,
    ) -> Result<Option<Vec<bot_core::ports::Commit>>, CiError> {
        Err(self.0.clone())
    }
}

#[tokio::test]
async fn jenkins_switch_errors_never_show_credentials_from_urls() {
    let leaky = "http://ops:pa55word@127.0.0.1:1/queue/item/7/?token=t0k3n";
    for ci_err in [
        CiError::Unreachable {
            url: leaky.into(),
            reason: format!("error sending request for url ({leaky})"),
        },
        CiError::Protocol(format!("HTTP 404 at {leaky}")),
    ] {
        let spec = jenkins_spec("http://127.0.0.1:1");
        let (env, pool) = env_and_pool(spec.clone());
        let switch = jenkins_switch(&spec, Arc::new(LeakyCi(ci_err)));
        let err = switch
            .switch_to(&env, &pool, "green")
            .await
            .expect_err("CI failed");
        assert_redacted(&err);
    }
}
