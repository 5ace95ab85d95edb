//! Load benchmark: signed `message.im` deliveries to `/slack/events` over loopback,
//! 64 connections, against the real Crossroads server on each state store (memory,
//! SQLite in a temporary file, PostgreSQL in a fresh database) and, as baselines, a
//! bare axum route that only checks the HMAC and — when `bot-server/benches/bolt` has
//! its `node_modules` — Slack's Bolt for JavaScript answering every DM. Each server
//! runs in its own child process (this binary re-executed, or `node`) so its resident
//! memory is measured alone; the load generator and the Slack Web API stand-in run in
//! this process.
//!
//! Rows: the ack path with the inbox write (the bot's work is held up so deliveries
//! only pile up in the inbox), the ack path of deliveries that need no work (the bot's
//! own posts echoed back), and every DM answered end to end.
//!
//! Run: `cargo bench -p bot-server --bench slack_load` (`BENCH_SECS`, `BENCH_CONNS`
//! override the 10 s / 64 connections; `BENCH_STORES=memory,sqlite` picks stores,
//! `BENCH_MODES=answer` rows among `ack,echo,answer`; `BENCH_BOLT=0` leaves Bolt out).

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use bot_core::config::{
    ActionKind, CommandSpec, Config, Environment, Instance, Pool, Pos, Secret, SwitchSpec,
    TargetKind,
};
use bot_core::ports::{HttpSnapshot, Probe, ProbeError};
use bot_core::slack::verify;
use bot_core::Bot;
use bot_server::{AppState, ServeConfig, Server};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

const SECRET: &str = "bench-signing-secret";

// ------------------------------------------------------------- children

struct AlwaysHealthy;

#[async_trait]
impl Probe for AlwaysHealthy {
    async fn get(&self, _url: &str, _t: Duration) -> Result<HttpSnapshot, ProbeError> {
        Ok(HttpSnapshot {
            status: 200,
            body: r#"{"status":"ok"}"#.into(),
            latency: Duration::from_millis(1),
        })
    }
}

fn config() -> Config {
    let instance = |name: &str| Instance {
        name: name.into(),
        aliases: vec![],
        emoji: vec![],
        url: "http://127.0.0.1:9".into(),
        health: Default::default(),
        tasks: None,
        restart: None,
        pos: Pos::default(),
    };
    Config {
        commands: vec![CommandSpec {
            name: "status".into(),
            phrases: vec!["status".into()],
            action: ActionKind::Builtin("status".into()),
            target: TargetKind::Environment,
            target_optional: true,
            takes_args: false,
            confirm: false,
            allowed: vec![],
            help: "status".into(),
            examples: vec![],
            params: vec![],
            freeze_exempt: false,
            pos: Pos::default(),
        }],
        environments: vec![Environment {
            name: "staging".into(),
            aliases: vec!["staging".into()],
            emoji: vec![],
            protected: false,
            allowed: vec![],
            pools: vec![Pool {
                name: "api".into(),
                aliases: vec!["api".into()],
                switch: SwitchSpec::Memory {
                    initial: "blue".into(),
                },
                deploy: None,
                members: vec![instance("blue"), instance("green")],
                region: None,
                pos: Pos::default(),
            }],
            regions: Vec::new(),
            rollout: Default::default(),
            pos: Pos::default(),
        }],
        ..Config::default()
    }
}

async fn baseline(headers: HeaderMap, body: Bytes) -> StatusCode {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    match verify::verify(
        SECRET,
        h(verify::TIMESTAMP_HEADER),
        h(verify::SIGNATURE_HEADER),
        &body,
    ) {
        Ok(()) => StatusCode::OK,
        Err(_) => StatusCode::UNAUTHORIZED,
    }
}

/// A probe that never answers: holds up the bot's work so only the ack path runs.
struct Stuck;

#[async_trait]
impl Probe for Stuck {
    async fn get(&self, _url: &str, _t: Duration) -> Result<HttpSnapshot, ProbeError> {
        std::future::pending().await
    }
}

/// Child process: serve until stdin closes; print the address first.
async fn child(kind: &str, api_url: &str, store: &str, mode: &str) -> anyhow::Result<()> {
    let stop = async {
        let _ = tokio::task::spawn_blocking(|| {
            let mut s = String::new();
            let _ = std::io::stdin().read_line(&mut s);
        })
        .await;
    };
    if kind == "baseline" {
        let app = Router::new()
            .route("/slack/events", post(baseline))
            .layer(DefaultBodyLimit::max(1024 * 1024));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("LISTEN {}", listener.local_addr()?);
        std::io::stdout().flush()?;
        axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await?;
        return Ok(());
    }
    let store = bot_core::adapters::store::connect(store, true).await?;
    let probe: Arc<dyn Probe> = if mode == "ack" {
        Arc::new(Stuck)
    } else {
        Arc::new(AlwaysHealthy)
    };
    let bot = Bot::builder(config()).probe(probe).store(store).build();
    let mut sc = ServeConfig::new(
        "127.0.0.1:0".parse()?,
        Secret::new(SECRET),
        Secret::new("xoxb-bench"),
    );
    sc.api_url = api_url.to_owned();
    sc.bot_user_id = Some("UBOT".into());
    // A load test sends each simulated user far more than a person types.
    sc.chat_rate = None;
    if let Some(n) = std::env::var("BENCH_IN_FLIGHT")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        sc.max_in_flight = n;
    }
    if mode == "ack" {
        // One request is worked on (and never ends); every other waits in the inbox.
        // Shutdown does not wait for it (the default drain is 15 minutes).
        sc.max_in_flight = 1;
        sc.admit_wait = std::time::Duration::ZERO;
        sc.drain_timeout = std::time::Duration::from_secs(1);
    }
    let server = Server::bind(sc.listen, AppState::new(&sc, bot)?).await?;
    println!("LISTEN {}", server.local_addr()?);
    std::io::stdout().flush()?;
    server.run_until(stop).await?;
    Ok(())
}

// ------------------------------------------------------------- parent

/// What a run starts: the bare baseline, Bolt, or Crossroads on a store in a mode.
#[derive(Clone)]
enum Kind {
    Baseline,
    Bolt,
    Crossroads { store: String, mode: &'static str },
}

fn spawn_child(kind: &Kind, api_url: &str) -> anyhow::Result<(Child, SocketAddr)> {
    let mut child = match kind {
        Kind::Bolt => Command::new("node")
            .arg("app.js")
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/bolt"))
            .env("SLACK_SIGNING_SECRET", SECRET)
            .env("SLACK_BOT_TOKEN", "xoxb-bench")
            .env("SLACK_API_URL", api_url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?,
        Kind::Baseline => Command::new(std::env::current_exe()?)
            .args(["--child", "baseline", api_url, "", ""])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?,
        Kind::Crossroads { store, mode } => Command::new(std::env::current_exe()?)
            .args(["--child", "crossroads", api_url, store, mode])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?,
    };
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no child stdout"))?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let addr = line
        .trim()
        .strip_prefix("LISTEN ")
        .ok_or_else(|| anyhow::anyhow!("child said {line:?}"))?
        .parse()?;
    Ok((child, addr))
}

fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    ok: u64,
    /// Acknowledged during the warm-up (owed an answer all the same).
    warm_ok: u64,
    shed: u64,
    other: u64,
}

static EVENT_SEQ: AtomicU64 = AtomicU64::new(0);

/// What the load sends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Load {
    /// The bot's own posts coming back (they carry `bot_id`): acknowledged, no work.
    Echo,
    /// `status` DMs: with a probe that never answers, the work never ends.
    Status,
    /// DMs the bot answers at once ("I don't know the command …").
    Chat,
}

/// A `message.im` delivery with a fresh event id.
fn event_body(conn: usize, load: Load) -> String {
    let n = EVENT_SEQ.fetch_add(1, Ordering::Relaxed);
    let bot = if load == Load::Echo {
        r#""bot_id":"B1","#
    } else {
        ""
    };
    let text = if load == Load::Status {
        "status"
    } else {
        "hello there"
    };
    format!(
        r#"{{"token":"t","team_id":"T1","api_app_id":"A1","type":"event_callback","event_id":"Ev{n:012}","event_time":1700000000,"event":{{"type":"message",{bot}"channel_type":"im","channel":"D{conn:04}","user":"U{conn:04}","text":"{text}","ts":"1700000000.{n:06}","event_ts":"1700000000.{n:06}"}}}}"#
    )
}

async fn connection(
    addr: SocketAddr,
    conn: usize,
    load: Load,
    until: Instant,
    record_after: Instant,
) -> anyhow::Result<Tally> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, driver) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await?;
    tokio::spawn(driver);
    let mut tally = Tally::default();
    let host = addr.to_string();
    while Instant::now() < until {
        let body = event_body(conn, load);
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)?
            .as_secs()
            .to_string();
        let sig = verify::sign(SECRET, &ts, body.as_bytes());
        let req = hyper::Request::post("/slack/events")
            .header("host", &host)
            .header("content-type", "application/json")
            .header("x-slack-request-timestamp", ts)
            .header("x-slack-signature", sig)
            .body(Full::new(Bytes::from(body)))?;
        sender.ready().await?;
        let t0 = Instant::now();
        let res = sender.send_request(req).await?;
        let status = res.status();
        res.into_body().collect().await?;
        let took = t0.elapsed();
        if t0 < record_after {
            tally.warm_ok += u64::from(status.as_u16() == 200);
            continue;
        }
        tally
            .latencies_us
            .push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
        match status.as_u16() {
            200 => tally.ok += 1,
            503 => tally.shed += 1,
            _ => tally.other += 1,
        }
    }
    Ok(tally)
}

struct Figures {
    name: String,
    acked_per_s: f64,
    shed_per_s: f64,
    other: u64,
    p50_us: u32,
    p99_us: u32,
    replies_per_s: f64,
    /// Acknowledged DMs still unanswered 5 s after the load stopped (answering loads).
    left: Option<u64>,
    rss_kib: u64,
    peak_kib: u64,
}

#[allow(clippy::too_many_arguments)]
async fn run(
    name: String,
    kind: &Kind,
    load: Load,
    api_url: &str,
    posted: &AtomicU64,
    conns: usize,
    secs: u64,
) -> anyhow::Result<Figures> {
    let (mut child, addr) = spawn_child(kind, api_url)?;
    let warmup = Duration::from_secs(1);
    let start = Instant::now();
    let record_after = start + warmup;
    let until = record_after + Duration::from_secs(secs);
    let posted_before = posted.load(Ordering::Relaxed);
    let tasks: Vec<_> = (0..conns)
        .map(|c| tokio::spawn(connection(addr, c, load, until, record_after)))
        .collect();
    // Sample the server's memory while under load, then once more at the end.
    let mut peak_rss = 0;
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(250)).await;
        peak_rss = peak_rss.max(rss_kib(child.id()).0);
    }
    let mut all = Tally::default();
    for t in tasks {
        let t = t.await??;
        all.latencies_us.extend(t.latencies_us);
        all.ok += t.ok;
        all.warm_ok += t.warm_ok;
        all.shed += t.shed;
        all.other += t.other;
    }
    let posted_during = posted.load(Ordering::Relaxed) - posted_before;
    // Every acknowledged DM is owed one answer: count what is still owed 5 s on.
    let left = if load == Load::Chat && !matches!(kind, Kind::Baseline) {
        let owed = all.ok + all.warm_ok;
        let settle = Instant::now() + Duration::from_secs(5);
        while posted.load(Ordering::Relaxed) - posted_before < owed && Instant::now() < settle {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Some(owed.saturating_sub(posted.load(Ordering::Relaxed) - posted_before))
    } else {
        None
    };
    let (rss, hwm) = rss_kib(child.id());
    drop(child.stdin.take());
    let _ = child.wait();
    all.latencies_us.sort_unstable();
    let pct = |p: f64| {
        let n = all.latencies_us.len();
        if n == 0 {
            return 0;
        }
        all.latencies_us[((n as f64 * p) as usize).min(n - 1)]
    };
    let secs = secs as f64;
    Ok(Figures {
        name,
        acked_per_s: all.ok as f64 / secs,
        shed_per_s: all.shed as f64 / secs,
        other: all.other,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        replies_per_s: posted_during as f64 / (secs + 1.0),
        left,
        rss_kib: rss.max(peak_rss),
        peak_kib: hwm,
    })
}

async fn parent() -> anyhow::Result<()> {
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let conns: usize = std::env::var("BENCH_CONNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    // Slack Web API stand-in: answers every chat.postMessage at once.
    let posted = Arc::new(AtomicU64::new(0));
    let counter = posted.clone();
    let standin = Router::new().route(
        "/api/{method}",
        post(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                (
                    [("content-type", "application/json")],
                    r#"{"ok":true,"channel":"D1","ts":"1700000000.000001"}"#,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api_url = format!("http://{}/api/", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, standin).await;
    });

    println!("slack_load: {conns} connections, {secs}s measured after 1s warm-up, loopback");
    let stores: Vec<String> = std::env::var("BENCH_STORES")
        .unwrap_or_else(|_| "memory,sqlite,postgres".into())
        .split(',')
        .map(|s| s.trim().to_owned())
        .collect();
    let state = tempfile::tempdir()?;
    let mut figures = vec![
        run(
            "bare axum + HMAC (baseline)".into(),
            &Kind::Baseline,
            Load::Chat,
            &api_url,
            &posted,
            conns,
            secs,
        )
        .await?,
    ];
    let bolt = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/bolt/node_modules"
    ));
    if std::env::var("BENCH_BOLT").as_deref() == Ok("0") {
        println!("(Bolt-JS left out: BENCH_BOLT=0)");
    } else if bolt.exists() {
        figures.push(
            run(
                "Bolt-JS, every DM answered".into(),
                &Kind::Bolt,
                Load::Chat,
                &api_url,
                &posted,
                conns,
                secs,
            )
            .await?,
        );
    } else {
        println!("(Bolt-JS not installed: `cd bot-server/benches/bolt && npm ci` to compare)");
    }
    let modes = std::env::var("BENCH_MODES").unwrap_or_else(|_| "ack,echo,answer".into());
    let mut databases = Vec::new();
    let mut files = 0;
    for store in &stores {
        for (what, mode, load) in [
            ("ack + inbox write", "ack", Load::Status),
            ("ack, no work", "echo", Load::Echo),
            ("every DM answered", "answer", Load::Chat),
        ] {
            if !modes.split(',').any(|m| m.trim() == mode) {
                continue;
            }
            // A fresh store for every run: nothing left over from the one before.
            let url = match store.as_str() {
                "memory" => "memory:".to_owned(),
                "sqlite" => {
                    files += 1;
                    format!(
                        "sqlite://{}",
                        state.path().join(format!("run{files}.db")).display()
                    )
                }
                "postgres" => match crossroads_sim::postgres::fresh_database("bench").await {
                    Some(db) => {
                        let url = db.url.clone();
                        databases.push(db);
                        url
                    }
                    None => break,
                },
                other => anyhow::bail!("unknown store {other} in BENCH_STORES"),
            };
            let kind = Kind::Crossroads { store: url, mode };
            figures.push(
                run(
                    format!("crossroads {store}, {what}"),
                    &kind,
                    load,
                    &api_url,
                    &posted,
                    conns,
                    secs,
                )
                .await?,
            );
        }
    }
    let base = figures[0].acked_per_s.max(1.0);
    println!(
        "{:<42} {:>10} {:>6} {:>9} {:>8} {:>8} {:>11} {:>9} {:>9} {:>9}",
        "server",
        "acked/s",
        "×base",
        "shed/s",
        "p50 ms",
        "p99 ms",
        "replies/s",
        "left 5s",
        "RSS MiB",
        "peak MiB"
    );
    for f in &figures {
        println!(
            "{:<42} {:>10.0} {:>6.2} {:>9.0} {:>8.3} {:>8.3} {:>11.0} {:>9} {:>9.1} {:>9.1}",
            f.name,
            f.acked_per_s,
            f.acked_per_s / base,
            f.shed_per_s,
            f.p50_us as f64 / 1000.0,
            f.p99_us as f64 / 1000.0,
            f.replies_per_s,
            f.left.map_or("-".to_owned(), |n| n.to_string()),
            f.rss_kib as f64 / 1024.0,
            f.peak_kib as f64 / 1024.0,
        );
        if f.other > 0 {
            println!("  {} answers were neither 200 nor 503", f.other);
        }
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let arg = |k: usize| args.get(i + k).cloned().unwrap_or_default();
        return rt.block_on(child(&arg(1), &arg(2), &arg(3), &arg(4)));
    }
    rt.block_on(parent())
}
