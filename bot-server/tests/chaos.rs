//! A chaos run loses nothing: two `crossroads serve` replicas on one PostgreSQL take a
//! mixed load of DMs, deploys and confirmation clicks while one of them is SIGKILLed
//! and started again every few seconds and replica A's database connection is cut now
//! and then. Afterwards every acknowledged DM was answered exactly once, every deploy
//! triggered Jenkins exactly once and its message ended in success or failure, no lock
//! is left behind, and `crossroads audit verify` passes.

use crate::common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::serve::{
    button, click_on, config_dir, interaction_form, message_text, post_signed, through, Serve,
    Served, BIN,
};
use crossroads_sim::instance::SimInstance;
use crossroads_sim::jenkins::{JenkinsSetup, JobSetup, SimJenkins};
use crossroads_sim::proxy::TcpProxy;
use crossroads_sim::slack::{SlackSetup, SlackStandIn};
use crossroads_sim::switch::{PoolSetup, SimSwitch};
use serde_json::Value;
use tokio::sync::Mutex;

const DEPLOYER: &str = "U0DEPLOYER";
const ENVS: [&str; 3] = ["staging", "qa", "dev"];
/// DMs sent over the run.
const DMS: usize = 120;
/// DMs sent at once.
const BURST: usize = 6;
/// How long the load and the kills go on.
const LOAD: Duration = Duration::from_secs(36);
/// `settings.lease` of the run.
const LEASE: Duration = Duration::from_secs(2);
/// A reply claimed by a killed replica is held at least this long (one Slack call's
/// timeout and a margin), then sent by the other.
const REPLY_HOLD: Duration = Duration::from_secs(12);

fn instances(jenkins: &str, switch: &str, blue: &str, green: &str) -> String {
    let mut envs = String::new();
    for env in ENVS {
        envs.push_str(&format!(
            r#"  {env}:
{protected}    pools:
      api:
        switch:
          type: http
          set: {{ method: POST, url: "{switch}/pools/{env}/api", body: '{{"active": "{{colour}}"}}' }}
          get: "{switch}/pools/{env}/api"
          pointer: /active
        deploy: {{ job: platform/deploy-api, parameters: {{ ENV: "{{env}}", REF: "{{ref}}", COLOUR: "{{colour}}" }} }}
        members:
          blue: {{ url: "{blue}" }}
          green: {{ url: "{green}" }}
"#,
            protected = if env == "dev" {
                "    protected: true\n"
            } else {
                ""
            },
        ));
    }
    format!(
        r#"
settings:
  probe_timeout: 1s
  lease: {}s
  gate: {{ consecutive: 1, interval: 100ms, timeout: 20s }}
jenkins: {{ url: "{jenkins}", user: crossroads, token: t0ken, poll_interval: 100ms }}
groups:
  deployers: [{DEPLOYER}]
environments:
{envs}"#,
        LEASE.as_secs()
    )
}

/// The two replicas; either may be down for a moment.
struct Replicas {
    serve: [Serve; 2],
    running: [Option<Served>; 2],
    logs: std::path::PathBuf,
}

impl Replicas {
    /// A live replica's address, preferring `i`.
    fn addr(&self, i: usize) -> Option<SocketAddr> {
        self.running[i % 2]
            .as_ref()
            .or(self.running[(i + 1) % 2].as_ref())
            .map(|s| s.addr)
    }
}

/// POSTs a signed payload the way Slack does, retrying (same payload, same
/// `event_id`) on another replica until one acknowledges it; when it was acknowledged.
async fn deliver(
    replicas: &Arc<Mutex<Replicas>>,
    i: usize,
    payload: &Value,
    event: bool,
) -> Instant {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(3))
        .build()
        .expect("client");
    for attempt in 0..60 {
        let addr = replicas.lock().await.addr(i + attempt);
        if let Some(addr) = addr {
            let (path, content_type, body) = if event {
                ("/slack/events", "application/json", payload.to_string())
            } else {
                (
                    "/slack/interactions",
                    "application/x-www-form-urlencoded",
                    interaction_form(payload),
                )
            };
            if post_signed(&http, addr, path, content_type, body).await == Some(200) {
                return Instant::now();
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("no replica acknowledged delivery {i}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chaos_run_loses_nothing() {
    let Some(db) = crossroads_sim::postgres::fresh_database("chaos").await else {
        return;
    };
    let blue = SimInstance::start("blue", "1.0.0").await.expect("blue");
    let green = SimInstance::start("green", "1.0.0").await.expect("green");
    let switch = SimSwitch::start(
        ENVS.iter()
            .map(|e| PoolSetup::new(e, "api", &["blue", "green"], "blue"))
            .collect(),
    )
    .await
    .expect("switch");
    let jenkins = SimJenkins::start(
        JenkinsSetup::new("crossroads", "t0ken").job(
            "platform/deploy-api",
            JobSetup::new()
                .queue_time(Duration::from_millis(100))
                .build_duration(Duration::from_millis(1500)),
        ),
    )
    .await
    .expect("jenkins");
    let slack = Arc::new(
        SlackStandIn::start_with(SlackSetup::new().wait_timeout(Duration::from_secs(60)))
            .await
            .expect("slack"),
    );
    let db_addr: SocketAddr = {
        let u = url::Url::parse(&db.url).expect("url");
        format!(
            "{}:{}",
            u.host_str().expect("host"),
            u.port().unwrap_or(5432)
        )
        .parse()
        .expect("loopback address")
    };
    let db_line = Arc::new(TcpProxy::start(db_addr).await.expect("database proxy"));
    let dir = config_dir(&instances(
        &jenkins.url(),
        &switch.url(),
        &blue.url(),
        &green.url(),
    ));
    let logs = tempfile::tempdir().expect("logs");
    let serve = |url: String| Serve {
        config_dir: dir.path().to_owned(),
        database_url: url,
        slack_api: slack.api_url(),
        extra_env: vec![],
    };
    let serve = [
        serve(through(&db.url, db_line.addr())),
        serve(db.url.clone()),
    ];
    let running = [
        Some(serve[0].start(logs.path()).await),
        Some(serve[1].start(logs.path()).await),
    ];
    let replicas = Arc::new(Mutex::new(Replicas {
        serve,
        running,
        logs: logs.path().to_owned(),
    }));

    // Chaos: a SIGKILL and a restart every 3 s, alternating; A's database line cut
    // for 1.5 s every 7 s.
    let chaos = tokio::spawn({
        let replicas = replicas.clone();
        let db_line = db_line.clone();
        async move {
            let started = Instant::now();
            let mut kills = 0usize;
            let mut cuts = 0usize;
            let mut next_cut = Duration::from_secs(5);
            while started.elapsed() < LOAD {
                tokio::time::sleep(Duration::from_secs(3)).await;
                let victim = kills % 2;
                let (serve, logs) = {
                    let mut r = replicas.lock().await;
                    if let Some(mut s) = r.running[victim].take() {
                        s.kill();
                    }
                    (r.serve[victim].clone(), r.logs.clone())
                };
                kills += 1;
                let again = serve.start(&logs).await;
                replicas.lock().await.running[victim] = Some(again);
                if started.elapsed() >= next_cut {
                    db_line.cut();
                    tokio::time::sleep(Duration::from_millis(1500)).await;
                    db_line.restore();
                    cuts += 1;
                    next_cut += Duration::from_secs(7);
                }
            }
            (kills, cuts)
        }
    });

    // The load: DMs throughout, a deploy of each environment early and late, the
    // protected one confirmed with a click.
    let mut acked: BTreeMap<String, Instant> = BTreeMap::new();
    let mut deploys: Vec<String> = Vec::new();
    let started = Instant::now();
    let every = LOAD.mul_f64(0.8) / DMS as u32;
    for i in 0..DMS {
        // DMs arrive in bursts of BURST at once, so kills land on work in flight.
        if i % BURST == 0 {
            let burst: Vec<(String, Value)> = (i..(i + BURST).min(DMS))
                .map(|k| {
                    let channel = format!("D0DM{k:04}");
                    let payload = slack.message_event(&channel, DEPLOYER, "help");
                    (channel, payload)
                })
                .collect();
            let acks = futures::future::join_all(
                burst
                    .iter()
                    .enumerate()
                    .map(|(n, (_, p))| deliver(&replicas, i + n, p, true)),
            )
            .await;
            for ((channel, _), at) in burst.into_iter().zip(acks) {
                acked.insert(channel, at);
            }
        }
        if i % 20 == 5 {
            let j = deploys.len();
            let env = ENVS[j % ENVS.len()];
            let channel = format!("D0DEPLOY{j}");
            let text = format!("deploy {env} r{j}");
            let payload = slack.message_event(&channel, DEPLOYER, &text);
            deliver(&replicas, i, &payload, true).await;
            if env == "dev" {
                let asked = slack
                    .wait_for_one("chat.postMessage", |c| {
                        c.arg("channel") == Some(channel.as_str())
                            && message_text(&c.body).contains("Really deploy")
                    })
                    .await;
                let ts = slack.wait_for_message(&channel).await.ts;
                let yes = button(&asked.body, |t| t.starts_with("Yes"));
                let click = click_on(&slack, DEPLOYER, &channel, &ts, &yes);
                deliver(&replicas, i, &click, false).await;
            }
            deploys.push(channel);
        }
        let due = every * (i as u32 + 1);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
    let (kills, cuts) = chaos.await.expect("chaos");

    // Every acknowledged DM is answered, each within the reply hold plus a few
    // seconds of its acknowledgement.
    let answered_within = REPLY_HOLD + Duration::from_secs(8);
    let deadline = Instant::now() + answered_within + Duration::from_secs(10);
    let answers = |channel: &str| {
        slack
            .calls("chat.postMessage")
            .into_iter()
            .filter(|c| c.arg("channel") == Some(channel))
            .collect::<Vec<_>>()
    };
    loop {
        let missing = acked.keys().filter(|c| answers(c).is_empty()).count();
        if missing == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut slowest = Duration::ZERO;
    for (channel, at) in &acked {
        let got = answers(channel);
        assert!(!got.is_empty(), "{channel} was answered");
        // What the person sees: one answer in the conversation. A post whose sender
        // was killed before it recorded Slack's answer is found again and edited.
        let shown: Vec<Value> = slack
            .messages()
            .into_iter()
            .filter(|m| m.channel == *channel)
            .map(|m| m.message)
            .collect();
        assert_eq!(
            shown.len(),
            1,
            "{channel} was answered exactly once: {shown:?}"
        );
        let took = got[0].at.saturating_duration_since(*at);
        slowest = slowest.max(took);
        assert!(
            took <= answered_within,
            "{channel} was answered {took:?} after its acknowledgement"
        );
    }

    // Every deploy ends on its message; each built once.
    let ended = |channel: &str| {
        slack
            .calls("chat.postMessage")
            .into_iter()
            .chain(slack.calls("chat.update"))
            .filter(|c| c.arg("channel") == Some(channel))
            .map(|c| message_text(&c.body))
            .any(|t| t.contains("Deployed") || t.contains(":x:"))
    };
    let deadline = Instant::now() + Duration::from_secs(40);
    while deploys.iter().any(|c| !ended(c)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (j, channel) in deploys.iter().enumerate() {
        assert!(ended(channel), "deploy {j} ended on its message");
        let builds = jenkins
            .triggers()
            .iter()
            .filter(|t| {
                t.params
                    .iter()
                    .any(|(k, v)| k == "REF" && *v == format!("r{j}"))
            })
            .count();
        assert_eq!(builds, 1, "deploy {j} triggered Jenkins exactly once");
    }

    // No lock is left behind, and the audit holds.
    let store = bot_core::adapters::store::connect(&db.url, false)
        .await
        .expect("store");
    for env in ENVS {
        let lock = store
            .lock_of(env, std::time::SystemTime::now())
            .await
            .expect("lock");
        assert!(lock.is_none(), "{env} is left locked: {lock:?}");
    }
    let verify = Command::new(BIN)
        .args(["audit", "verify"])
        .env("CROSSROADS_DATABASE_URL", &db.url)
        .env_remove("RUST_LOG")
        .output()
        .expect("audit verify");
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let taken_over: usize = std::fs::read_dir(logs.path())
        .expect("logs")
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .map(|log| log.matches("taking over a run").count())
        .sum();
    let found_again: usize = std::fs::read_dir(logs.path())
        .expect("logs")
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .map(|log| {
            log.matches("an earlier attempt had posted this reply")
                .count()
        })
        .sum();
    eprintln!(
        "chaos: {} DMs acknowledged and answered exactly once ({found_again} posts of a killed or unanswered send found and edited; slowest first answer {slowest:?}), {} deploys each built once ({taken_over} runs taken over), {kills} SIGKILLs, {cuts} database cuts, no lock left, audit intact",
        acked.len(),
        deploys.len()
    );
}
