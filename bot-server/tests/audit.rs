//! The tamper-evident audit as an auditor uses it: `crossroads audit verify` on the
//! SQLite file the bot wrote (and on the same file after one row is edited with the
//! `sqlite3` CLI), and `GET /api/v1/audit` exporting the chain as JSON Lines.

use crate::common;

use std::path::Path;
use std::process::{Command, Output};

use bot_core::config::Secret;
use bot_core::ports::store::{verify_chain, AuditRecord, ChainedRecord, GENESIS};
use bot_core::{Bot, Request};
use bot_server::{AppState, ServeConfig, Server};
use common::{StandIn, SECRET, TOKEN};
use serde_json::Value;
use tokio::sync::oneshot;

const BIN: &str = env!("CARGO_BIN_EXE_crossroads");
const API_TOKEN: &str = "audit-api-token";

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn crossroads(args: &[&str], url: &str) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(repo())
        .env_remove("RUST_LOG")
        .env("CROSSROADS_CLI_ACT_AS", "1")
        .env("CROSSROADS_DATABASE_URL", url)
        .output()
        .expect("run crossroads")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Whether the `sqlite3` CLI is here: under `CI=true` its absence fails the test,
/// elsewhere the test says it is skipped.
fn require_sqlite3(test: &str) -> bool {
    let found = Command::new("sqlite3")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("the sqlite3 CLI is not installed but CI=true (apt-get install sqlite3)");
        }
        eprintln!("skipped {test}: the sqlite3 CLI is not installed (apt-get install sqlite3)");
    }
    found
}

#[test]
fn verify_passes_on_the_bots_sqlite_audit_and_names_the_row_edited_with_sqlite3() {
    if !require_sqlite3("verify_passes_on_the_bots_sqlite_audit") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("state.db");
    let url = format!("sqlite://{}", db.display());
    // The bot writes its audit as people use it: a lock, a refusal, an unlock.
    for (user, command) in [
        ("U0DEPLOYER", "lock staging maintenance window"),
        ("U0STRANGER", "lock master"),
        ("U0DEPLOYER", "unlock staging"),
    ] {
        let out = crossroads(&["run", "--as", user, command], &url);
        assert!(
            out.status.code().is_some(),
            "`{command}` ran: {}",
            text(&out.stderr)
        );
    }
    let ok = crossroads(&["audit", "verify"], &url);
    assert!(
        ok.status.success(),
        "an untouched audit verifies: {}{}",
        text(&ok.stdout),
        text(&ok.stderr)
    );
    assert!(
        text(&ok.stdout).contains("intact: 5 records"),
        "{}",
        text(&ok.stdout)
    );

    // Each mutating command is recorded as started before it runs, then with its
    // outcome: lock (1, 2), the refusal (3), unlock (4, 5). Someone rewrites who was
    // refused, in place.
    let edit = Command::new("sqlite3")
        .arg(&db)
        .arg("UPDATE audit SET user_id = 'U0DEPLOYER', outcome = 'ok' WHERE seq = 3;")
        .output()
        .expect("run sqlite3");
    assert!(edit.status.success(), "sqlite3: {}", text(&edit.stderr));
    let broken = crossroads(&["audit", "verify"], &url);
    assert_eq!(
        broken.status.code(),
        Some(1),
        "an edited audit fails: {}",
        text(&broken.stdout)
    );
    let said = format!("{}{}", text(&broken.stdout), text(&broken.stderr));
    assert!(said.contains("record 3"), "names the edited record: {said}");
    assert!(
        !said.contains("record 4"),
        "and only the first broken one: {said}"
    );
}

struct App {
    addr: std::net::SocketAddr,
    bot: Bot,
    _slack: StandIn,
    _shutdown: oneshot::Sender<()>,
}

async fn start(url: &str) -> App {
    let slack = StandIn::start().await;
    let config = bot_core::load_dir(repo()).expect("the shipped config loads");
    let store = bot_core::adapters::store::connect(url, true)
        .await
        .expect("SQLite store");
    let bot = Bot::builder(config).store(store).build();
    let mut serve = ServeConfig::new(
        "127.0.0.1:0".parse().expect("addr"),
        Secret::new(SECRET),
        Secret::new(TOKEN),
    );
    serve.api_url = slack.api_url();
    serve.bot_user_id = Some(common::BOT_USER.into());
    serve.api_token = Some(Secret::new(API_TOKEN));
    let state = AppState::new(&serve, bot.clone()).expect("state");
    let server = Server::bind(serve.listen, state).await.expect("bind");
    let addr = server.local_addr().expect("addr");
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(server.run_until(async move {
        let _ = rx.await;
    }));
    App {
        addr,
        bot,
        _slack: slack,
        _shutdown: tx,
    }
}

async fn get(app: &App, path: &str, token: Option<&str>) -> (u16, String, String) {
    let mut req = reqwest::Client::new().get(format!("http://{}{path}", app.addr));
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let res = req.send().await.expect("server answers");
    let status = res.status().as_u16();
    let kind = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, kind, res.text().await.expect("body"))
}

fn chained(line: &Value) -> ChainedRecord {
    let s = |k: &str| line[k].as_str().unwrap_or_default().to_owned();
    ChainedRecord {
        seq: line["seq"].as_u64().expect("seq"),
        record: AuditRecord {
            at: std::time::UNIX_EPOCH
                + std::time::Duration::from_millis(line["at_ms"].as_u64().expect("at_ms")),
            user: s("user"),
            command: s("command"),
            target: s("target"),
            env: line["env"].as_str().map(str::to_owned),
            args: s("args"),
            outcome: s("outcome"),
            duration: line["duration_ms"]
                .as_u64()
                .map(std::time::Duration::from_millis),
            links: serde_json::from_value(line["links"].clone()).expect("links"),
        },
        prev_hash: s("prev_hash"),
        hash: s("hash"),
    }
}

#[tokio::test]
async fn the_api_exports_the_chain_as_json_lines_to_bearers_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("state.db").display());
    let app = start(&url).await;
    for (user, command) in [
        ("U0DEPLOYER", "lock staging maintenance"),
        ("U0STRANGER", "unlock staging"),
        ("U0DEPLOYER", "unlock staging"),
    ] {
        app.bot.handle(Request::text(user, command)).await;
    }

    let (status, _, body) = get(&app, "/api/v1/audit", None).await;
    assert_eq!(status, 401, "{body}");
    let (status, _, body) = get(&app, "/api/v1/audit", Some("wrong")).await;
    assert_eq!(status, 401, "{body}");
    let (status, _, body) = get(&app, "/api/v1/audit?since=yesterday", Some(API_TOKEN)).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("since"), "{body}");

    let (status, kind, body) = get(&app, "/api/v1/audit", Some(API_TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(kind, "application/x-ndjson");
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    // lock: started, ok; the stranger's refusal; unlock: started, ok.
    assert_eq!(lines.len(), 5, "{body}");
    assert_eq!(lines[0]["prev_hash"], GENESIS);
    assert_eq!(
        lines[0]["outcome"], "started",
        "written before the lock is taken"
    );
    assert_eq!(lines[2]["user"], "U0STRANGER");
    assert!(
        lines[2]["outcome"]
            .as_str()
            .is_some_and(|o| o.starts_with("refused")),
        "the refusal is recorded: {}",
        lines[2]
    );
    let records: Vec<ChainedRecord> = lines.iter().map(chained).collect();
    verify_chain((0, GENESIS.to_owned()), &records)
        .expect("the export carries everything needed to check the chain");

    let (_, _, tail) = get(&app, "/api/v1/audit?since=5", Some(API_TOKEN)).await;
    assert_eq!(tail.lines().count(), 1, "{tail}");
    let at = lines[2]["at"].as_str().expect("at").to_owned();
    let (_, _, from_time) = get(&app, &format!("/api/v1/audit?since={at}"), Some(API_TOKEN)).await;
    let from: Vec<Value> = from_time
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert!(
        from.iter()
            .all(|l| l["at_ms"].as_u64() >= lines[2]["at_ms"].as_u64()),
        "{from_time}"
    );
    assert_eq!(from.last().map(|l| l["seq"].clone()), Some(5.into()));
    assert!(from.iter().any(|l| l["seq"] == 3), "{from_time}");
}
