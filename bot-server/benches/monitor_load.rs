//! Monitor benchmark: `crossroads serve` (the real binary, in its own process, on a
//! SQLite store) watching a generated platform of 5,000 instances probed every 10 s,
//! against the same binary with the same platform and no `monitor:` section (an idle
//! bot) as the baseline, side by side in one run. Reports each process' CPU share
//! (user + system time over the window, from /proc) and resident memory, and the
//! board page's weight. The 5,000 instances are one HTTP responder in this process
//! (`/i/{n}/health`), so the bot's probes are real HTTP requests.
//!
//! Run: `cargo bench -p bot-server --bench monitor_load` (`BENCH_INSTANCES`,
//! `BENCH_EVERY_SECS`, `BENCH_SECS` override 5,000 / 10 s / 40 s; `BENCH_BIN` measures
//! another build of `crossroads`, e.g. an older commit's, with the same platform).

use std::fmt::Write as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::routing::{get, post};
use axum::Router;

const BIN: &str = env!("CARGO_BIN_EXE_crossroads");

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `instances.yaml` with `n` instances (50 environments of pools of 2 members) at
/// `base/i/{k}`, and a monitor every `every` s when `monitor`.
fn platform(n: u64, base: &str, every: u64, monitor: bool) -> String {
    let mut y = String::from("settings:\n  probe_timeout: 2s\nchannels:\n  ops: C0OPS\n");
    if monitor {
        let _ = write!(
            y,
            "monitor:\n  every: {every}s\n  confirm: 3\n  channel: ops\n"
        );
    }
    y.push_str("groups:\n  deployers: [U0DEPLOYER]\nenvironments:\n");
    let envs = 50;
    let per_env = n.div_ceil(envs);
    let mut k = 0;
    for e in 0..envs {
        if k >= n {
            break;
        }
        let _ = writeln!(y, "  env{e}:\n    pools:");
        let mut p = 0;
        while p * 2 < per_env && k < n {
            let _ = writeln!(
                y,
                "      pool{p}:\n        switch: {{ type: memory, initial: m0 }}\n        members:"
            );
            for m in 0..2 {
                if k < n {
                    let _ = writeln!(y, "          m{m}: {{ url: \"{base}/i/{k}\" }}");
                    k += 1;
                }
            }
            p += 1;
        }
    }
    y
}

/// `(utime + stime)` in clock ticks, and VmRSS in KiB.
fn sample(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = fields
        .get(11)
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (ticks, rss)
}

struct Server {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(yaml: &str, slack: &str) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("instances.yaml"), yaml).expect("write instances.yaml");
    std::fs::write(
        dir.path().join("commands.yaml"),
        include_str!("../../commands.yaml"),
    )
    .expect("write commands.yaml");
    let port = crossroads_sim::free_port().expect("a free port");
    let addr = format!("127.0.0.1:{port}");
    let bin = std::env::var("BENCH_BIN").unwrap_or_else(|_| BIN.to_owned());
    let child = Command::new(bin)
        .args(["serve", "--config-dir"])
        .arg(dir.path())
        .args(["--listen", &addr])
        .env("SLACK_SIGNING_SECRET", "bench")
        .env("SLACK_BOT_TOKEN", "xoxb-bench")
        .env("SLACK_API_URL", slack)
        .env(
            "CROSSROADS_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("state.db").display()),
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start crossroads serve");
    Server {
        child,
        addr,
        _dir: dir,
    }
}

async fn ready(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let url = format!("http://{addr}/healthz");
    while !reqwest::get(&url)
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::main]
async fn main() {
    let n = env_num("BENCH_INSTANCES", 5000);
    let every = env_num("BENCH_EVERY_SECS", 10);
    let window = Duration::from_secs(env_num("BENCH_SECS", 40));

    // The instances (and a Slack Web API that says ok to everything).
    let app = Router::new()
        .route(
            "/i/{n}/health",
            get(|| async { r#"{"status":"ok","version":"1.0.0"}"# }),
        )
        .route(
            "/api/{method}",
            post(|| async { axum::Json(serde_json::json!({"ok": true, "ts": "1.1", "channel": "C0OPS", "user_id": "UBOT"})) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let slack = format!("{base}/api/");

    let idle = start(&platform(n, &base, every, false), &slack);
    let watching = start(&platform(n, &base, every, true), &slack);
    ready(&idle.addr).await;
    ready(&watching.addr).await;
    // Let the monitor spread its targets over one interval before measuring.
    tokio::time::sleep(Duration::from_secs(every + 2)).await;

    let ticks = 100.0; // USER_HZ on Linux
    let (i0, _) = sample(idle.child.id());
    let (w0, _) = sample(watching.child.id());
    let started = Instant::now();
    tokio::time::sleep(window).await;
    let secs = started.elapsed().as_secs_f64();
    let (i1, irss) = sample(idle.child.id());
    let (w1, wrss) = sample(watching.child.id());
    let cpu = |a: u64, b: u64| (b.saturating_sub(a)) as f64 / ticks / secs * 100.0;
    let (icpu, wcpu) = (cpu(i0, i1), cpu(w0, w1));

    let page = reqwest::get(format!("http://{}/board", watching.addr))
        .await
        .expect("GET /board")
        .bytes()
        .await
        .expect("page");
    let snapshot_bytes = {
        let mut res = reqwest::get(format!("http://{}/api/v1/events", watching.addr))
            .await
            .expect("GET events");
        let mut got = Vec::new();
        while let Ok(Ok(Some(chunk))) =
            tokio::time::timeout(Duration::from_millis(500), res.chunk()).await
        {
            got.extend_from_slice(&chunk);
            if got.ends_with(b"\n\n") {
                break;
            }
        }
        got.len()
    };

    println!(
        "monitor_load: {n} instances, every {every}s, measured over {secs:.0}s (CPU % of one core){}",
        std::env::var("BENCH_BIN")
            .map(|b| format!(", binary {b}"))
            .unwrap_or_default()
    );
    println!("{:<34} {:>8} {:>10}", "process", "CPU %", "RSS MiB");
    println!(
        "{:<34} {:>8.2} {:>10.1}",
        "idle bot (no monitor, baseline)",
        icpu,
        irss as f64 / 1024.0
    );
    println!(
        "{:<34} {:>8.2} {:>10.1}",
        "monitor",
        wcpu,
        wrss as f64 / 1024.0
    );
    println!(
        "monitor / idle: CPU {:.1}x, RSS {:.2}x; probes per second: {:.0}",
        if icpu > 0.0 {
            wcpu / icpu
        } else {
            f64::INFINITY
        },
        wrss as f64 / irss.max(1) as f64,
        n as f64 / every as f64
    );
    println!(
        "board page: {} bytes (no external requests); first event (snapshot of {n} boxes): {} bytes",
        page.len(),
        snapshot_bytes
    );
}
