//! Canary deploys end to end with a real HAProxy and a real Prometheus: requests sent
//! through HAProxy reach the new member in the share each step gives it, and a new
//! member answering errors is caught by Prometheus and aborted on its own, with every
//! request back on the old member. Steered from chat, HAProxy's weights follow: abort
//! (typed or clicked) puts every request back on the old member, promote moves them all
//! to the new one at once, and pause holds the step's weights until continue.

use crate::common;

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

// ------------------------------------------------- steering from chat, on HAProxy

/// Remembers every progress update of a deploy as sent (buttons and all).
#[derive(Default)]
struct Updates(std::sync::Mutex<Vec<Reply>>);

#[async_trait::async_trait]
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

    /// Waits (at most `within`) for an update with a button labelled `label` whose
    /// text contains `text`.
    async fn wait_for(&self, label: &str, text: &str, within: Duration) -> Reply {
        let deadline = Instant::now() + within;
        loop {
            if let Some(r) = self
                .with_button(label)
                .filter(|r| r.to_plain_text().contains(text))
            {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "no progress update with {label:?} showing {text:?} within {within:?}; the newest: {:?}",
                self.0
                    .lock()
                    .ok()
                    .and_then(|v| v.last().map(Reply::to_plain_text))
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// `deploy staging api` under way, its progress recorded in `updates`.
struct Deploying {
    handle: tokio::task::JoinHandle<(Reply, Instant)>,
    updates: Arc<Updates>,
}

impl Deploying {
    /// Starts `deploy staging api` and returns once HAProxy reports `percent` % on
    /// green, with the read that first showed it.
    async fn until(stand: &Stand, percent: u8) -> (Self, Seen) {
        let updates = Arc::new(Updates::default());
        let bot = stand.bot.clone();
        let progress = updates.clone();
        let handle = tokio::spawn(async move {
            let reply = bot
                .handle_with(
                    bot_core::Request::text(USER, "deploy staging api"),
                    progress.as_ref(),
                )
                .await;
            (reply, Instant::now())
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = stand.seen().await.filter(|s| s.green == percent) {
                return (Self { handle, updates }, s);
            }
            if handle.is_finished() {
                let (reply, _) = handle.await.expect("the deploy ran");
                panic!(
                    "the deploy ended before HAProxy showed {percent} % on green: {}",
                    reply.to_plain_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "HAProxy never showed {percent} % on green"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The deploy's reply and when it came, at most `within` from now.
    async fn reply(self, within: Duration, why: &str) -> (Reply, Instant) {
        tokio::time::timeout(within, self.handle)
            .await
            .unwrap_or_else(|_| panic!("{why}: no reply within {within:?}"))
            .expect("the deploy ran")
    }
}

impl Stand {
    /// Reloads the bot's configuration with staging api's steps held `pause` each
    /// (as editing `instances.yaml` and reloading would); deploys begun after it use it.
    fn set_pause(&self, pause: Duration) {
        let mut config = self.bot.config();
        config
            .canaries
            .get_mut(&("staging".to_owned(), "api".to_owned()))
            .expect("staging api deploys by canary")
            .pause = pause;
        self.bot.reload(config);
    }

    /// All traffic on `member` as HAProxy reports it: the split, the active member,
    /// and `show servers state` (every server at its configured weight, the other
    /// member in maintenance).
    async fn assert_all_on(&self, member: &str) {
        assert_eq!(
            self.split().await,
            Split::all_on(&self.pool, member),
            "HAProxy's split is all on {member}"
        );
        assert_eq!(self.active().await, member);
        let states = self
            .switch
            .servers_state()
            .await
            .expect("show servers state");
        for s in &states {
            assert_eq!(
                s.weight, s.initial_weight,
                "{} has its configured weight back: {states:?}",
                s.name
            );
            assert_eq!(
                s.in_maint(),
                s.name != member,
                "only {member} is out of maintenance: {states:?}"
            );
        }
    }
}

/// Checks the samples sent in `from..to`: at least one, each answered 200 by `member`.
fn all_answered_by(samples: &[Sample], from: Instant, to: Instant, member: &str, when: &str) {
    let within: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.sent > from && s.sent < to)
        .collect();
    assert!(!within.is_empty(), "requests were sampled {when}");
    let others: Vec<&&Sample> = within
        .iter()
        .filter(|s| s.member.as_deref() != Some(member) || s.status != Some(200))
        .collect();
    assert!(
        others.is_empty(),
        "{when}, every request reaches {member} and succeeds; of {}, these did not: {others:?}",
        within.len()
    );
}

/// Types `text` (an order to the canary at step 1) and checks the answer: Done,
/// naming the canary and its step. Returns when it was answered.
async fn order(stand: &Stand, text: &str, doing: &str) -> Instant {
    let reply = say(&stand.bot, USER, text).await;
    let at = Instant::now();
    let plain = reply.to_plain_text();
    assert_eq!(reply.outcome, Outcome::Done, "`{text}`: {plain}");
    assert!(
        plain.contains(&format!(
            "{doing} the canary of *staging api* (at 10 % on green)"
        )),
        "`{text}`: {plain}"
    );
    at
}

/// Checks `reply` is that of a canary aborted by `USER` at step 1 with all traffic
/// back on blue, and that HAProxy says so too.
async fn assert_aborted(stand: &Stand, reply: &Reply, how: &str) {
    let text = reply.to_plain_text();
    assert_eq!(reply.outcome, Outcome::Failed, "{how}: {text}");
    assert!(
        text.contains("canary was aborted at step 1/3 (10 %)")
            && text.contains(&format!("aborted by <@{USER}>"))
            && text.contains("All traffic is back on blue"),
        "{how}: the reply says who aborted it at which step, and where traffic is: {text}"
    );
    stand.assert_all_on("blue").await;
}

/// Steering a canary from chat on real HAProxy, one stand for all (each deploy begins
/// where the one before left traffic), requests sampled through the frontend all along:
/// 1. `abort staging` typed at step 1 (10 %) puts every request back on blue;
/// 2. so does the Abort button of the progress message;
/// 3. `promote staging` at step 1 of steps held 10 minutes moves every request to
///    green at once;
/// 4. (back on blue, steps held 2 s) `pause staging` at step 1 keeps 10 % on green
///    well past the step's pause, and after `continue staging` the canary goes on
///    through 50 % to all on green.
#[cfg_attr(
    not(haproxy),
    ignore = "haproxy not installed (apt-get install haproxy)"
)]
#[tokio::test]
async fn a_canary_steered_from_chat_moves_real_traffic_abort_promote_pause_continue() {
    let _one = ONE_AT_A_TIME.lock().await;
    // A pause far longer than the test: only steering ends step 1.
    let Some(stand) = Stand::start("10m").await else {
        return;
    };
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = stand.sampler(stop.clone());
    // How long an order may take to end the canary, on a loaded machine (it takes
    // about a quarter of a second: the deploy looks for orders every 250 ms).
    let promptly = Duration::from_secs(20);
    // How long requests are sampled after each deploy.
    let settle = Duration::from_millis(500);

    // 1. `abort staging`, typed.
    let (deploy, _) = Deploying::until(&stand, 10).await;
    let ordered = order(&stand, "abort staging", "Aborting").await;
    let (reply, typed) = deploy
        .reply(promptly, "an aborted canary ends at once")
        .await;
    eprintln!("abort typed: reply {:?} after the order", typed - ordered);
    assert_aborted(&stand, &reply, "abort typed").await;
    tokio::time::sleep(settle).await;
    let typed_checked = Instant::now();

    // 2. The Abort button of the progress message.
    let (deploy, _) = Deploying::until(&stand, 10).await;
    let shown = deploy
        .updates
        .wait_for(
            "Abort",
            "canary step 1/3: *10 %* on green",
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(
        common::labels(&shown),
        ["Pause", "Promote", "Abort"],
        "{}",
        shown.to_plain_text()
    );
    let clicked = common::click(&stand.bot, USER, &shown, "Abort").await;
    let clicked_at = Instant::now();
    assert_eq!(
        clicked.outcome,
        Outcome::Done,
        "{}",
        clicked.to_plain_text()
    );
    let (reply, clicked_replied) = deploy
        .reply(promptly, "a canary aborted by its button ends at once")
        .await;
    eprintln!(
        "abort clicked: reply {:?} after the click",
        clicked_replied - clicked_at
    );
    assert_aborted(&stand, &reply, "Abort button").await;
    tokio::time::sleep(settle).await;
    let clicked_checked = Instant::now();

    // 3. `promote staging`: all on green, without waiting out the steps.
    let (deploy, _) = Deploying::until(&stand, 10).await;
    let ordered = order(&stand, "promote staging", "Promoting").await;
    let (reply, promoted) = deploy
        .reply(
            promptly,
            "a promoted canary ends without waiting out its steps",
        )
        .await;
    eprintln!("promote: reply {:?} after the order", promoted - ordered);
    assert_eq!(reply.outcome, Outcome::Done, "{}", reply.to_plain_text());
    stand.assert_all_on("green").await;
    tokio::time::sleep(settle).await;
    let promoted_checked = Instant::now();

    // 4. Back on blue, with steps held 2 s: pause, then continue.
    let switched = say(&stand.bot, USER, "switch staging api blue").await;
    assert_eq!(
        switched.outcome,
        Outcome::Done,
        "{}",
        switched.to_plain_text()
    );
    stand.assert_all_on("blue").await;
    let pause = Duration::from_secs(2);
    stand.set_pause(pause);
    let (deploy, at_10) = Deploying::until(&stand, 10).await;
    order(&stand, "pause staging", "Pausing").await;
    // Once the deploy took the order, its progress message says so and offers
    // Continue: at step 1, or the order came too late to show anything.
    let shown = deploy
        .updates
        .wait_for(
            "Continue",
            &format!("paused by <@{USER}>"),
            Duration::from_secs(10),
        )
        .await;
    eprintln!("pause: shown {:?} after 10 % took", at_10.read.elapsed());
    assert!(
        shown
            .to_plain_text()
            .contains("canary step 1/3: *10 %* on green"),
        "paused at step 1: {}",
        shown.to_plain_text()
    );
    assert_eq!(
        common::labels(&shown),
        ["Continue", "Promote", "Abort"],
        "{}",
        shown.to_plain_text()
    );
    // The weights, read well past the step's pause, stay at step 1's.
    let until = (at_10.read + pause * 2).max(Instant::now() + pause);
    let mut held = Vec::new();
    while Instant::now() < until {
        if let Some(s) = stand.seen().await {
            held.push(s);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let last = held.last().map_or(at_10.read, |s| s.asked);
    eprintln!(
        "paused: {} reads of the split over {:?} after 10 % took (pause {pause:?})",
        held.len(),
        last - at_10.read
    );
    assert!(
        held.len() >= 10 && last - at_10.read > pause + pause / 2,
        "the split was read well past the pause: {} reads over {:?}",
        held.len(),
        last - at_10.read
    );
    assert_eq!(describe(&held), [10], "a paused canary keeps 10 % on green");
    assert!(!deploy.handle.is_finished(), "a paused canary does not end");
    let resumed = order(&stand, "continue staging", "Continuing").await;
    let mut after = Vec::new();
    while !deploy.handle.is_finished() {
        if let Some(s) = stand.seen().await {
            after.push(s);
        }
        assert!(
            resumed.elapsed() < Duration::from_secs(30),
            "the canary did not end after continue: {:?}",
            describe(&after)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (reply, done) = deploy
        .reply(Duration::from_secs(1), "the deploy ended")
        .await;
    eprintln!(
        "continue: reply {:?} after the order, green's share read {:?}",
        done - resumed,
        describe(&after)
    );
    assert_eq!(reply.outcome, Outcome::Done, "{}", reply.to_plain_text());
    let (from, to) = window(&after, 50).unwrap_or_else(|| {
        panic!(
            "after continue the canary went on to step 2 (50 %): {:?}",
            describe(&after)
        )
    });
    assert!(
        to - from >= pause / 2,
        "step 2 was held for its pause: {:?}",
        to - from
    );
    stand.assert_all_on("green").await;
    tokio::time::sleep(settle).await;
    stop.store(true, Ordering::SeqCst);
    let samples = sampler.await.expect("sampler");

    all_answered_by(
        &samples,
        typed,
        typed_checked,
        "blue",
        "after the typed abort",
    );
    all_answered_by(
        &samples,
        clicked_replied,
        clicked_checked,
        "blue",
        "after the Abort button",
    );
    all_answered_by(
        &samples,
        promoted,
        promoted_checked,
        "green",
        "after the promote",
    );
    all_answered_by(&samples, done, Instant::now(), "green", "after continue");
    // While paused, green kept its share of the requests.
    let paused: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.sent >= at_10.read && s.answered <= last)
        .collect();
    let on_green = paused
        .iter()
        .filter(|s| s.member.as_deref() == Some("green"))
        .count();
    let share = 100.0 * on_green as f64 / paused.len().max(1) as f64;
    eprintln!(
        "paused: {on_green} of {} requests on green ({share:.1} %)",
        paused.len()
    );
    assert!(
        paused.len() >= 40 && (share - 10.0).abs() <= SHARE_TOLERANCE,
        "while paused, green answered {share:.1} % of {} requests",
        paused.len()
    );
    let lost: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.status != Some(200) || s.member.is_none())
        .collect();
    assert!(
        lost.is_empty(),
        "no request was lost while the canary was steered: {lost:?}"
    );
}
