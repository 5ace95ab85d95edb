//! Running Jenkins jobs: the real client against the simulated Jenkins' wire format.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use bot_core::adapters::jenkins::JenkinsClient;
use bot_core::config::{JenkinsConfig, Secret};
use bot_core::ports::{BuildProgress, BuildResult, Ci, CiError};
use crossroads_sim::jenkins::{JenkinsSetup, JobSetup, SimJenkins};

const USER: &str = "crossroads";
const TOKEN: &str = "11d2f6a0c3-api-token";

fn config(url: &str, timeout: Duration) -> JenkinsConfig {
    JenkinsConfig {
        url: url.to_owned(),
        user: USER.to_owned(),
        token: Secret::new(TOKEN),
        timeout,
        poll_interval: Duration::from_millis(20),
    }
}

fn client(url: &str) -> JenkinsClient {
    JenkinsClient::new(config(url, Duration::from_secs(20)))
}

fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A progress callback that records everything it is told.
fn recorder() -> (
    Arc<Mutex<Vec<BuildProgress>>>,
    impl Fn(BuildProgress) + Send + Sync,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    (seen, move |p| sink.lock().expect("recorder lock").push(p))
}

fn ignore(_: BuildProgress) {}

async fn jenkins(jobs: &[(&str, JobSetup)]) -> SimJenkins {
    let mut setup = JenkinsSetup::new(USER, TOKEN);
    for (path, job) in jobs {
        setup = setup.job(path, job.clone());
    }
    SimJenkins::start(setup)
        .await
        .expect("start simulated Jenkins")
}

#[tokio::test]
async fn a_successful_build_sends_the_parameters_and_reports_queued_then_building() {
    let sim = jenkins(&[(
        "platform/deploy-api",
        JobSetup::new()
            .queue_time(Duration::from_millis(200))
            .build_duration(Duration::from_millis(600)),
    )])
    .await;
    let sent = params(&[
        ("ENVIRONMENT", "staging"),
        ("COLOUR", "green"),
        ("REF", "feature/login page&more=1"),
        ("REQUESTED_BY", "U0DEMO"),
    ]);
    let (seen, progress) = recorder();
    let outcome = client(&sim.url())
        .run_job("platform/deploy-api", &sent, &progress)
        .await
        .expect("build succeeds");

    assert_eq!(outcome.result, BuildResult::Success);
    assert_eq!(outcome.number, 1);
    let build_url = format!("{}/job/platform/job/deploy-api/1/", sim.url());
    assert_eq!(outcome.url, build_url);
    assert_eq!(outcome.console_url, format!("{build_url}console"));
    assert!(
        outcome.duration >= Duration::from_millis(600),
        "{:?}",
        outcome.duration
    );

    let triggers = sim.triggers();
    assert_eq!(triggers.len(), 1);
    assert_eq!(triggers[0].job, "platform/deploy-api");
    assert_eq!(triggers[0].endpoint, "buildWithParameters");
    assert_eq!(triggers[0].params, sent);
    assert_eq!(triggers[0].user.as_deref(), Some(USER));

    let seen = seen.lock().expect("lock").clone();
    let first_building = seen
        .iter()
        .position(|p| matches!(p, BuildProgress::Building { .. }))
        .expect("building reported");
    assert!(
        matches!(seen.first(), Some(BuildProgress::Queued { why: Some(_) })),
        "queued with Jenkins' reason first: {seen:?}"
    );
    assert!(seen[first_building..]
        .iter()
        .all(|p| matches!(p, BuildProgress::Building { number: 1, .. })));
    let percents: Vec<u8> = seen
        .iter()
        .filter_map(|p| match p {
            BuildProgress::Building {
                percent: Some(p), ..
            } => Some(*p),
            _ => None,
        })
        .collect();
    assert!(
        percents.iter().any(|p| *p > 0),
        "percent from estimatedDuration: {seen:?}"
    );
    assert!(percents.iter().all(|p| *p <= 99));
    assert!(percents.windows(2).all(|w| w[0] <= w[1]), "{percents:?}");
}

#[tokio::test]
async fn a_job_without_parameters_uses_plain_build() {
    let sim = jenkins(&[("ops/cleanup", JobSetup::new())]).await;
    let outcome = client(&sim.url())
        .run_job("ops/cleanup", &[], &ignore)
        .await
        .expect("build succeeds");
    assert_eq!(outcome.result, BuildResult::Success);
    assert_eq!(sim.triggers()[0].endpoint, "build");
}

#[tokio::test]
async fn a_failed_build_is_an_outcome_not_an_error() {
    let sim = jenkins(&[("platform/deploy-api", JobSetup::new().result("FAILURE"))]).await;
    let outcome = client(&sim.url())
        .run_job(
            "platform/deploy-api",
            &params(&[("COLOUR", "green")]),
            &ignore,
        )
        .await
        .expect("a result");
    assert_eq!(outcome.result, BuildResult::Failure);
    assert!(!outcome.result.is_success());
    assert!(outcome
        .console_url
        .ends_with("/job/platform/job/deploy-api/1/console"));
}

#[tokio::test]
async fn a_build_cancelled_in_the_queue_is_reported() {
    let sim = jenkins(&[("platform/deploy-api", JobSetup::new().cancel_in_queue())]).await;
    let err = client(&sim.url())
        .run_job(
            "platform/deploy-api",
            &params(&[("COLOUR", "green")]),
            &ignore,
        )
        .await
        .expect_err("cancelled");
    assert_eq!(
        err,
        CiError::Cancelled {
            job: "platform/deploy-api".into()
        }
    );
}

#[tokio::test]
async fn an_unknown_job_is_no_such_job() {
    let sim = jenkins(&[("platform/deploy-api", JobSetup::new())]).await;
    let err = client(&sim.url())
        .run_job(
            "platform/deploy-apj",
            &params(&[("COLOUR", "green")]),
            &ignore,
        )
        .await
        .expect_err("404");
    assert_eq!(
        err,
        CiError::NoSuchJob {
            job: "platform/deploy-apj".into()
        }
    );
}

#[tokio::test]
async fn a_wrong_token_is_unauthorized_and_never_shown() {
    let sim = jenkins(&[("platform/deploy-api", JobSetup::new())]).await;
    let mut cfg = config(&sim.url(), Duration::from_secs(5));
    cfg.token = Secret::new("wrong-token-123");
    let client = JenkinsClient::new(cfg);
    let err = client
        .run_job(
            "platform/deploy-api",
            &params(&[("COLOUR", "green")]),
            &ignore,
        )
        .await
        .expect_err("401");
    assert_eq!(
        err,
        CiError::Unauthorized {
            job: "platform/deploy-api".into(),
            status: 401
        }
    );
    assert!(!err.to_string().contains("wrong-token-123"));
    assert!(!format!("{client:?}").contains("wrong-token-123"));
    assert!(sim.builds("platform/deploy-api").is_empty());
}

#[tokio::test]
async fn a_trigger_refused_for_want_of_a_crumb_is_retried_with_one() {
    let sim = SimJenkins::start(
        JenkinsSetup::new(USER, TOKEN)
            .job("platform/deploy-api", JobSetup::new())
            .require_crumb(true),
    )
    .await
    .expect("start");
    let outcome = client(&sim.url())
        .run_job(
            "platform/deploy-api",
            &params(&[("COLOUR", "blue")]),
            &ignore,
        )
        .await
        .expect("build succeeds after the crumb retry");
    assert_eq!(outcome.result, BuildResult::Success);
    let statuses: Vec<u16> = sim.triggers().iter().map(|t| t.status).collect();
    assert_eq!(statuses, vec![403, 201]);
}

#[tokio::test]
async fn a_403_without_a_crumb_issuer_is_unauthorized() {
    // CSRF off (crumb issuer 404) but the trigger still refused: credentials.
    let app = axum::Router::new().route("/job/x/build", post(|| async { StatusCode::FORBIDDEN }));
    let (url, _server) = serve(app).await;
    let err = client(&url)
        .run_job("x", &[], &ignore)
        .await
        .expect_err("403");
    assert_eq!(
        err,
        CiError::Unauthorized {
            job: "x".into(),
            status: 403
        }
    );
}

#[tokio::test]
async fn a_trigger_rejected_by_jenkins_carries_a_short_reason() {
    let sim = jenkins(&[(
        "platform/deploy-api",
        JobSetup::new().trigger_error(
            500,
            "<html><body><h2>HTTP ERROR 500 java.lang.IllegalStateException: This build is not parameterized!</h2></body></html>",
        ),
    )])
    .await;
    let err = client(&sim.url())
        .run_job(
            "platform/deploy-api",
            &params(&[("COLOUR", "blue")]),
            &ignore,
        )
        .await
        .expect_err("rejected");
    match err {
        CiError::Rejected {
            job,
            status,
            reason,
        } => {
            assert_eq!(job, "platform/deploy-api");
            assert_eq!(status, 500);
            assert!(
                reason.contains("This build is not parameterized!"),
                "{reason}"
            );
            assert!(!reason.contains('<'), "{reason}");
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
}

#[tokio::test]
async fn jenkins_down_is_unreachable_at_once() {
    let url = crossroads_sim::dead_url().expect("free port");
    let started = Instant::now();
    let err = JenkinsClient::new(config(&url, Duration::from_secs(30)))
        .run_job(
            "platform/deploy-api",
            &params(&[("COLOUR", "blue")]),
            &ignore,
        )
        .await
        .expect_err("nobody listens");
    assert!(
        matches!(&err, CiError::Unreachable { url: u, .. } if *u == url),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_build_outlasting_the_timeout_gives_up_on_time() {
    let sim = jenkins(&[(
        "platform/deploy-api",
        JobSetup::new().build_duration(Duration::from_secs(30)),
    )])
    .await;
    let timeout = Duration::from_millis(500);
    let started = Instant::now();
    let err = JenkinsClient::new(config(&sim.url(), timeout))
        .run_job(
            "platform/deploy-api",
            &params(&[("COLOUR", "blue")]),
            &ignore,
        )
        .await
        .expect_err("timeout");
    let took = started.elapsed();
    assert_eq!(
        err,
        CiError::Timeout {
            job: "platform/deploy-api".into(),
            after: timeout
        }
    );
    assert!(
        took >= timeout && took < timeout + Duration::from_millis(500),
        "{took:?}"
    );
}

#[tokio::test]
async fn malformed_json_is_a_protocol_error() {
    let app = axum::Router::new()
        .route(
            "/job/x/build",
            post(|| async {
                (StatusCode::CREATED, [(header::LOCATION, "/queue/item/7/")]).into_response()
            }),
        )
        .route(
            "/queue/item/7/api/json",
            get(|| async { "<html>Jenkins is starting</html>" }),
        );
    let (url, _server) = serve(app).await;
    let err = client(&url)
        .run_job("x", &[], &ignore)
        .await
        .expect_err("protocol");
    assert!(
        matches!(&err, CiError::Protocol(m) if m.contains("queue item")),
        "{err:?}"
    );
}

/// A Jenkins whose root URL names another origin (`http://…` behind a TLS proxy, or
/// a hostile answer) never gets the API token sent there: the client follows the
/// queue item and the build on the configured base, and the build still succeeds.
#[tokio::test]
async fn credentials_only_go_to_the_configured_origin() {
    // Another server, on another loopback address, recording every call it gets.
    let calls: Arc<Mutex<Vec<(String, bool)>>> = Arc::default();
    let record = calls.clone();
    let elsewhere = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let record = record.clone();
        async move {
            record
                .lock()
                .expect("calls lock")
                .push((uri.to_string(), headers.contains_key(header::AUTHORIZATION)));
            StatusCode::NOT_FOUND
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.2:0")
        .await
        .expect("bind 127.0.0.2");
    let other_origin = format!("http://{}", listener.local_addr().expect("addr"));
    let _elsewhere = tokio::spawn(async move {
        let _ = axum::serve(listener, elsewhere).await;
    });

    let sim = SimJenkins::start(
        JenkinsSetup::new(USER, TOKEN)
            .job("platform/deploy-api", JobSetup::new())
            .root_url(&other_origin),
    )
    .await
    .expect("start");
    let outcome = client(&sim.url())
        .run_job(
            "platform/deploy-api",
            &params(&[("COLOUR", "green")]),
            &ignore,
        )
        .await
        .expect("the build is followed on the configured base");
    assert_eq!(outcome.result, BuildResult::Success);
    let calls = calls.lock().expect("calls lock").clone();
    assert!(
        calls.is_empty(),
        "nothing may go to {other_origin}, let alone the token: {calls:?}"
    );
    // The links shown to people are still the ones Jenkins gives.
    assert_eq!(
        outcome.url,
        format!("{other_origin}/job/platform/job/deploy-api/1/")
    );
}

/// Credentials in the configured URL never show in errors or in Debug output.
#[tokio::test]
async fn credentials_in_the_configured_url_never_show() {
    let dead = crossroads_sim::dead_url().expect("free port");
    let with_password = dead.replace("http://", "http://crossroads:pa55word@");
    let client = JenkinsClient::new(config(&with_password, Duration::from_secs(5)));
    let err = client
        .run_job("x", &[], &ignore)
        .await
        .expect_err("nobody listens");
    assert!(matches!(err, CiError::Unreachable { .. }), "{err:?}");
    assert!(!err.to_string().contains("pa55word"), "{err}");
    assert!(
        err.to_string().contains(dead.trim_start_matches("http://")),
        "{err}"
    );
    assert!(!format!("{client:?}").contains("pa55word"));

    // A queue item that vanished: the error names the URL, without the password.
    let app = axum::Router::new().route(
        "/job/x/build",
        post(|| async {
            (StatusCode::CREATED, [(header::LOCATION, "/queue/item/7/")]).into_response()
        }),
    );
    let (url, _server) = serve(app).await;
    let with_password = url.replace("http://", "http://crossroads:pa55word@");
    let err = JenkinsClient::new(config(&with_password, Duration::from_secs(5)))
        .run_job("x", &[], &ignore)
        .await
        .expect_err("404");
    assert!(
        matches!(&err, CiError::Protocol(m) if m.contains("/queue/item/7/") && !m.contains("pa55word")),
        "{err}"
    );
}

/// Serves a hand-written fake on a loopback port.
async fn serve(app: axum::Router) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, task)
}
