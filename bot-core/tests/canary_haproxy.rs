//! Canary deploys end to end with a real HAProxy and a real Prometheus: requests sent
//! through HAProxy reach the new member in the share each step gives it, and a new
//! member answering errors is caught by Prometheus and aborted on its own, with every
//! request back on the old member.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bot_core::adapters::haproxy::HaproxySwitch;
use bot_core::config::{Environment, Pool};
use bot_core::ports::{Split, TrafficSwitch};
use bot_core::{Bot, Outcome, Reply};
use common::haproxy::{require_haproxy, traffic_reaches, Haproxy};
use common::{say, COMMANDS, INSTANCES, USER};
use crossroads_sim::instance::SimInstance;
use crossroads_sim::jenkins::{JenkinsSetup, JobSetup, SimJenkins};
use crossroads_sim::prometheus::{prometheus_installed, RealPrometheus, ScrapeTarget};

/// The token the simulated Jenkins takes.
const TOKEN: &str = "t0ken";
/// How often the canary reads its query.
const INTERVAL: Duration = Duration::from_secs(1);
/// Failing readings in a row that abort it.
const FAILURES: u32 = 2;
/// How far the new member's share of the sampled requests may be from its weight.
const SHARE_TOLERANCE: f64 = 8.0;

/// The tests share two cores: one stand (HAProxy, Prometheus, sampler) at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `true` when the test should go on; panics in CI when Prometheus is missing.
fn require_prometheus() -> bool {
    if prometheus_installed() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "prometheus is not installed but CI=true: install it (apt-get install -y prometheus)"
        );
    }
    eprintln!("skipped: prometheus not installed (apt-get install -y prometheus)");
    false
}

/// Staging api's switch and canary for these tests: HAProxy's backend, and steps of
/// 10, 50 and 100 % judged by the new member's error rate as Prometheus reads it
/// (`PAUSE`, `INTERVAL` and `FAILURES` are filled in).
const HAPROXY_AND_CANARY: &str = r#"        switch:
          type: haproxy
          address: ${HAPROXY_ADMIN}
          backend: be_app
          off_state: maint
        canary:
          steps: [10, 50, 100]
          pause: PAUSE
          analysis:
            prometheus: ${PROMETHEUS_URL}
            interval: INTERVAL
            failures: FAILURES
            no_data: fail
            queries:
              - name: error rate
                query: 'sum(rate(http_requests_total{pool="{pool}",member="{member}",code=~"5.."}[5s])) / sum(rate(http_requests_total{pool="{pool}",member="{member}"}[5s]))'
                max: 0.02
"#;

/// The shipped `instances.yaml` with staging api's `switch:` and `canary:`, whatever
/// the shipped file says there, replaced by [`HAPROXY_AND_CANARY`] with each step
/// held `pause`.
fn staging_api_canary(shipped: &str, pause: &str) -> String {
    let block = HAPROXY_AND_CANARY
        .replace("PAUSE", pause)
        .replace("INTERVAL", &format!("{}ms", INTERVAL.as_millis()))
        .replace("FAILURES", &FAILURES.to_string());
    let indent = |l: &str| l.len() - l.trim_start().len();
    let lines: Vec<&str> = shipped.lines().collect();
    let staging = lines
        .iter()
        .position(|l| *l == "  staging:")
        .expect("the shipped file has environment staging");
    let api = staging
        + lines[staging..]
            .iter()
            .position(|l| *l == "      api:")
            .expect("the shipped staging has pool api");
    let mut out: Vec<&str> = lines[..=api].to_vec();
    out.extend(block.lines());
    // Within the pool (indented past it), its own `switch:` and `canary:` go.
    let (mut in_pool, mut skipping) = (true, false);
    for line in &lines[api + 1..] {
        let blank = line.trim().is_empty();
        if in_pool && !blank && indent(line) <= 6 {
            in_pool = false;
        }
        if skipping && (blank || indent(line) > 8) {
            continue;
        }
        skipping = in_pool
            && indent(line) == 8
            && ["switch:", "canary:"].contains(&line.trim_end().trim_start());
        if !skipping {
            out.push(line);
        }
    }
    out.join("\n") + "\n"
}

/// What one request through HAProxy got.
#[derive(Debug, Clone)]
struct Sample {
    sent: Instant,
    answered: Instant,
    /// The member that answered (its `x-instance` header), `None` without an answer.
    member: Option<String>,
    status: Option<u16>,
}

/// One read of the split in force: the new member's share, and when it was asked
/// and answered (the switch was in that state somewhere in between).
#[derive(Debug, Clone, Copy)]
struct Seen {
    asked: Instant,
    read: Instant,
    green: u8,
}

/// HAProxy in front of blue and green, Prometheus scraping them, a simulated Jenkins
/// whose build of green installs 2.0.0, and the bot with the shipped config edited.
struct Stand {
    bot: Bot,
    blue: SimInstance,
    green: SimInstance,
    haproxy: Haproxy,
    prometheus: RealPrometheus,
    _jenkins: SimJenkins,
    switch: HaproxySwitch,
    env: Environment,
    pool: Pool,
}

impl Stand {
    /// Starts it all, or `None` (after saying why) when HAProxy or Prometheus is
    /// missing outside CI.
    async fn start(pause: &str) -> Option<Self> {
        if !require_haproxy() || !require_prometheus() {
            return None;
        }
        let blue = SimInstance::start("blue", "1.0.0").await.expect("blue");
        let green = SimInstance::start("green", "1.0.0").await.expect("green");
        let haproxy = Haproxy::start(&[("blue", blue.addr()), ("green", green.addr())]);
        let prometheus = RealPrometheus::start(&[
            ScrapeTarget::new("api", "blue", blue.addr()),
            ScrapeTarget::new("api", "green", green.addr()),
        ])
        .await
        .expect("prometheus starts");
        traffic_reaches(&haproxy.frontend, "1.0.0").await;
        prometheus
            .wait_until_scraped(Duration::from_secs(20))
            .await
            .expect("prometheus scrapes blue and green");

        let green_ctl = green.control();
        let job = JobSetup::new()
            .queue_time(Duration::from_millis(50))
            .build_duration(Duration::from_millis(200))
            .estimated_duration(Some(Duration::from_millis(200)))
            .on_success(move |params| {
                if params.iter().any(|(k, v)| k == "COLOUR" && v == "green") {
                    green_ctl.set_version("2.0.0");
                }
            });
        let jenkins = SimJenkins::start(
            JenkinsSetup::new("crossroads", TOKEN).job("platform/deploy-api", job),
        )
        .await
        .expect("jenkins");
        let vars = [
            ("JENKINS_URL", jenkins.url()),
            ("JENKINS_TOKEN", TOKEN.to_owned()),
            ("STAGING_API_BLUE_URL", blue.url()),
            ("STAGING_API_GREEN_URL", green.url()),
            ("HAPROXY_ADMIN", haproxy.admin.clone()),
            ("PROMETHEUS_URL", prometheus.url()),
        ];
        let lookup = move |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        };
        let instances = staging_api_canary(INSTANCES, pause);
        let mut config = bot_core::load_strs_with_env(COMMANDS, &instances, &lookup)
            .unwrap_or_else(|e| panic!("the edited shipped config loads: {e}\n{instances}"));
        assert_eq!(
            config.canary("staging", "api").map(|c| c.steps.clone()),
            Some(vec![10, 50, 100]),
            "staging api deploys by canary"
        );
        config.settings.gate_consecutive = 2;
        config.settings.gate_interval = Duration::from_millis(100);
        config.settings.gate_timeout = Duration::from_secs(10);
        if let Some(j) = config.jenkins.as_mut() {
            j.poll_interval = Duration::from_millis(50);
            j.timeout = Duration::from_secs(30);
        }
        let env = config.env("staging").expect("env").clone();
        let pool = config.pool("staging", "api").expect("pool").clone();
        let bot = Bot::builder(config).build();
        // A switch of its own reading the same runtime API, to watch the weights.
        let switch = HaproxySwitch::new(haproxy.admin.clone(), "be_app", vec![], "maint");
        Some(Self {
            bot,
            blue,
            green,
            haproxy,
            prometheus,
            _jenkins: jenkins,
            switch,
            env,
            pool,
        })
    }

    /// Sends requests through HAProxy one after another until `stop`, recording
    /// which member answered each.
    fn sampler(&self, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<Sample>> {
        let url = format!("{}/tasks", self.haproxy.frontend);
        tokio::spawn(async move {
            // A new connection per request: HAProxy picks a server for each.
            let client = reqwest::Client::builder()
                .no_proxy()
                .pool_max_idle_per_host(0)
                .timeout(Duration::from_secs(2))
                .build()
                .expect("client");
            let mut samples = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let sent = Instant::now();
                let answer = client.get(&url).send().await;
                let answered = Instant::now();
                let (member, status) = match answer {
                    Ok(resp) => (
                        resp.headers()
                            .get("x-instance")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned),
                        Some(resp.status().as_u16()),
                    ),
                    Err(_) => (None, None),
                };
                samples.push(Sample {
                    sent,
                    answered,
                    member,
                    status,
                });
                tokio::time::sleep(Duration::from_millis(4)).await;
            }
            samples
        })
    }

    /// Green's share of the split HAProxy reports, with when it was asked and read.
    async fn seen(&self) -> Option<Seen> {
        let asked = Instant::now();
        let split = self.switch.split(&self.env, &self.pool).await.ok()?;
        Some(Seen {
            asked,
            read: Instant::now(),
            green: split.share("green"),
        })
    }

    async fn split(&self) -> Split {
        self.switch
            .split(&self.env, &self.pool)
            .await
            .expect("HAProxy reports the split")
    }

    async fn active(&self) -> String {
        self.switch
            .active(&self.env, &self.pool)
            .await
            .expect("HAProxy says who is active")
    }
}

/// Runs `deploy staging api` while `watch` reads the split every 20 ms (and may act on
/// it); returns the reply, when it arrived, and every read of the split.
async fn deploy_watching(
    stand: &Stand,
    mut watch: impl FnMut(&Seen),
) -> (Reply, Instant, Vec<Seen>) {
    let bot = stand.bot.clone();
    let deploy = tokio::spawn(async move {
        let reply = say(&bot, USER, "deploy staging api").await;
        (reply, Instant::now())
    });
    let mut seen = Vec::new();
    while !deploy.is_finished() {
        if let Some(s) = stand.seen().await {
            watch(&s);
            seen.push(s);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (reply, at) = deploy.await.expect("the deploy ran");
    if let Some(s) = stand.seen().await {
        seen.push(s);
    }
    (reply, at, seen)
}

/// The stretch of time green's share was certainly `share`: from the answer of the
/// first read showing it to the question of the last one.
fn window(seen: &[Seen], share: u8) -> Option<(Instant, Instant)> {
    let first = seen.iter().position(|s| s.green == share)?;
    let last = first
        + seen[first..]
            .iter()
            .take_while(|s| s.green == share)
            .count()
        - 1;
    Some((seen[first].read, seen[last].asked))
}

fn describe(seen: &[Seen]) -> Vec<u8> {
    let mut shares: Vec<u8> = seen.iter().map(|s| s.green).collect();
    shares.dedup();
    shares
}

#[cfg_attr(
    not(haproxy),
    ignore = "haproxy not installed (apt-get install haproxy)"
)]
#[tokio::test]
async fn each_canary_step_sends_its_share_of_real_requests_to_the_new_member() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Some(stand) = Stand::start("3s").await else {
        return;
    };
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = stand.sampler(stop.clone());
    let (reply, replied, seen) = deploy_watching(&stand, |_| {}).await;
    // A little more sampling: every request now goes to green.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    let samples = sampler.await.expect("sampler");

    let text = reply.to_plain_text();
    assert_eq!(reply.outcome, Outcome::Done, "{text}");
    let shares = describe(&seen);
    assert!(
        shares.starts_with(&[0]) && shares.ends_with(&[100]),
        "the split went from blue to green: {shares:?}"
    );
    for step in [10u8, 50] {
        let (from, to) = window(&seen, step)
            .unwrap_or_else(|| panic!("HAProxy never reported {step} % on green: {shares:?}"));
        let within: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.sent >= from && s.answered <= to)
            .collect();
        let on_green = within
            .iter()
            .filter(|s| s.member.as_deref() == Some("green"))
            .count();
        assert!(
            within.len() >= 40,
            "enough requests to judge step {step} %: {} in {:?}",
            within.len(),
            to - from
        );
        let share = 100.0 * on_green as f64 / within.len() as f64;
        eprintln!(
            "step {step} %: {on_green} of {} requests on green ({share:.1} %) over {:?}",
            within.len(),
            to - from
        );
        assert!(
            (share - f64::from(step)).abs() <= SHARE_TOLERANCE,
            "at step {step} %, green answered {share:.1} % of {} requests",
            within.len()
        );
    }
    let lost: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.status != Some(200) || s.member.is_none())
        .collect();
    assert!(
        lost.is_empty(),
        "every request was answered by blue or green: {lost:?}"
    );
    assert_eq!(stand.active().await, "green");
    assert_eq!(stand.split().await, Split::all_on(&stand.pool, "green"));
    let after: Vec<&Sample> = samples.iter().filter(|s| s.sent > replied).collect();
    assert!(!after.is_empty(), "requests were sampled after the deploy");
    assert!(
        after.iter().all(|s| s.member.as_deref() == Some("green")),
        "after the deploy every request reaches green: {after:?}"
    );
    assert_eq!(stand.blue.answered(500) + stand.green.answered(500), 0);
}

#[cfg_attr(
    not(haproxy),
    ignore = "haproxy not installed (apt-get install haproxy)"
)]
#[tokio::test]
async fn a_new_member_answering_errors_is_caught_by_prometheus_and_the_canary_aborts_itself() {
    let _one = ONE_AT_A_TIME.lock().await;
    // A pause far longer than the abort may take: it is the readings that end step 1.
    let Some(stand) = Stand::start("10s").await else {
        return;
    };
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = stand.sampler(stop.clone());
    let green = stand.green.control();
    let mut errors_from: Option<Instant> = None;
    let (reply, replied, seen) = deploy_watching(&stand, |s| {
        // Errors begin once step 1 (10 %) is in force.
        if errors_from.is_none() && s.green == 10 {
            green.set_app_errors(true);
            errors_from = Some(Instant::now());
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    let samples = sampler.await.expect("sampler");

    let text = reply.to_plain_text();
    assert_eq!(reply.outcome, Outcome::Failed, "{text}");
    let errors_from = errors_from
        .unwrap_or_else(|| panic!("the canary never reached 10 %: {:?}", describe(&seen)));
    assert!(
        text.contains("canary was aborted at step 1/3 (10 %)")
            && text.contains("error rate ")
            && text.contains("(max 0.02)")
            && !text.contains("no data")
            && text.contains("All traffic is back on blue"),
        "the reply names the step, the query, its reading and its limit: {text}"
    );
    let all_on_blue = seen
        .iter()
        .find(|s| s.asked > errors_from && s.green == 0)
        .map_or(replied, |s| s.read);
    let bound = INTERVAL * FAILURES + stand.prometheus.scrape_interval() + Duration::from_secs(2);
    let took = replied - errors_from;
    eprintln!(
        "abort: reply {took:?}, split all on blue {:?} after the errors began (bound {bound:?})",
        all_on_blue - errors_from
    );
    assert!(
        took <= bound,
        "the canary aborted {took:?} after the errors began, more than {bound:?}"
    );
    assert!(
        stand.green.answered(500) > 0,
        "green answered errors through HAProxy"
    );
    assert_eq!(stand.active().await, "blue");
    assert_eq!(
        stand.split().await,
        Split::all_on(&stand.pool, "blue"),
        "no weight is left on green"
    );
    let after: Vec<&Sample> = samples.iter().filter(|s| s.sent > replied).collect();
    assert!(!after.is_empty(), "requests were sampled after the abort");
    assert!(
        after
            .iter()
            .all(|s| s.member.as_deref() == Some("blue") && s.status == Some(200)),
        "after the abort every request reaches blue and succeeds: {after:?}"
    );
}
