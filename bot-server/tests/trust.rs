//! Crossroads cannot be talked past, through `crossroads serve` and the `crossroads`
//! command line as people really run them: an approval builds the commit the card
//! showed, and no shell can give it; a commit title or typed `<!channel>` never
//! becomes markup; typed words never set who asked; YAML commands are frozen; another
//! workspace gets no answer; one person's flood is slowed down; a cut-off audit tail
//! fails `audit verify --head`.

use crate::common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::serve::{button, click_on, message_text, Serve, Served, BIN, COMMANDS};
use crossroads_sim::compare::{CompareStandIn, GitCommit};
use crossroads_sim::instance::SimInstance;
use crossroads_sim::jenkins::{JenkinsSetup, JobSetup, SimJenkins};
use crossroads_sim::slack::{SlackSetup, SlackStandIn};
use crossroads_sim::switch::{PoolSetup, SimSwitch};
use serde_json::Value;

const REQUESTER: &str = "U0DEPLOYER";
const APPROVER: &str = "U0ADMIN";
const TOKEN: &str = "ghp_tru5t";
const AUDIT_KEY: &str = "audit-key-kept-off-the-database-host";
const FIRST: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678";
const NEWER: &str = "b2c3d4e5f60718293a4b5c6d7e8f9012345678a1";

struct Platform {
    _blue: SimInstance,
    _green: SimInstance,
    _switch: SimSwitch,
    jenkins: SimJenkins,
    compare: CompareStandIn,
    slack: SlackStandIn,
    dir: tempfile::TempDir,
}

impl Platform {
    async fn start() -> Platform {
        let job = || {
            JobSetup::new()
                .queue_time(Duration::from_millis(50))
                .build_duration(Duration::from_millis(200))
        };
        let p = Platform {
            _blue: SimInstance::start("blue", "1.0.0").await.expect("blue"),
            _green: SimInstance::start("green", "1.0.0").await.expect("green"),
            _switch: SimSwitch::start(vec![
                PoolSetup::new("staging", "api", &["blue", "green"], "blue"),
                PoolSetup::new("dev", "api", &["blue", "green"], "blue"),
                PoolSetup::new("prod", "api", &["blue", "green"], "blue"),
            ])
            .await
            .expect("switch"),
            jenkins: SimJenkins::start(
                JenkinsSetup::new("crossroads", "t0ken")
                    .job("platform/deploy-api", job())
                    .job("platform/clear-cache", job()),
            )
            .await
            .expect("jenkins"),
            compare: CompareStandIn::start(TOKEN).await.expect("compare"),
            slack: SlackStandIn::start_with(
                SlackSetup::new().wait_timeout(Duration::from_secs(30)),
            )
            .await
            .expect("slack"),
            dir: tempfile::tempdir().expect("dir"),
        };
        let pool = |env: &str| {
            format!(
                r#"    pools:
      api:
        switch:
          type: http
          set: {{ method: POST, url: "{sw}/pools/{env}/api", body: '{{"active": "{{colour}}"}}' }}
          get: "{sw}/pools/{env}/api"
          pointer: /active
        deploy: {{ job: platform/deploy-api, parameters: {{ COLOUR: "{{colour}}", REF: "{{ref}}", REF_NAME: "{{ref_name}}" }} }}
        members:
          blue: {{ url: "{blue}", health: {{ version: /version }} }}
          green: {{ url: "{green}", health: {{ version: /version }} }}
"#,
                sw = p._switch.url(),
                blue = p._blue.url(),
                green = p._green.url(),
            )
        };
        let instances = format!(
            r#"
settings:
  probe_timeout: 1s
  gate: {{ consecutive: 1, interval: 50ms, timeout: 10s }}
jenkins: {{ url: "{jenkins}", user: crossroads, token: t0ken, poll_interval: 50ms }}
compare: {{ type: github, url: "{compare}", repo: acme/api, token: "${{GITHUB_TOKEN}}" }}
groups:
  deployers: [{REQUESTER}, {APPROVER}, U0OTHER]
  admins: [{APPROVER}]
environments:
  staging:
    approval: {{ from: [admins], count: 1, expires: 1h, channel: C0APPROVALS }}
{staging}  prod:
    protected: true
{prod}  dev:
    freeze:
      override: [admins]
      windows: ["2026-01-01 .. 2030-12-31 UTC"]
{dev}"#,
            jenkins = p.jenkins.url(),
            compare = p.compare.url(),
            staging = pool("staging"),
            prod = pool("prod"),
            dev = pool("dev"),
        );
        std::fs::write(p.dir.path().join("commands.yaml"), COMMANDS).expect("commands");
        std::fs::write(p.dir.path().join("instances.yaml"), instances).expect("instances");
        p
    }

    fn database_url(&self) -> String {
        format!("sqlite://{}", self.dir.path().join("state.db").display())
    }

    async fn serve(&self, env: &[(&str, &str)]) -> Served {
        let mut extra_env = vec![
            ("GITHUB_TOKEN".to_owned(), TOKEN.to_owned()),
            ("CROSSROADS_AUDIT_KEY".to_owned(), AUDIT_KEY.to_owned()),
        ];
        extra_env.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        Serve {
            config_dir: self.dir.path().to_owned(),
            database_url: self.database_url(),
            slack_api: self.slack.api_url(),
            extra_env,
        }
        .start(self.dir.path())
        .await
    }

    /// `crossroads <args>` on the serving database, from a shell on the same host.
    fn cli(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_remove("RUST_LOG")
            .env_remove("CROSSROADS_CLI_ACT_AS")
            .env("CROSSROADS_DATABASE_URL", self.database_url())
            .env("CROSSROADS_AUDIT_KEY", AUDIT_KEY)
            .env("GITHUB_TOKEN", TOKEN)
            .env("SLACK_API_URL", self.slack.api_url());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run crossroads")
    }

    /// The first message posted to `channel` whose text contains `needle`.
    async fn posted(&self, channel: &str, needle: &str) -> Value {
        self.slack
            .wait_for_one("chat.postMessage", |c| {
                c.arg("channel") == Some(channel) && message_text(&c.body).contains(needle)
            })
            .await
            .body
    }

    /// Every body Crossroads sent to Slack, as text.
    fn everything_sent(&self) -> String {
        self.slack
            .all_calls()
            .iter()
            .map(|c| c.body.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn sqlite3(db: &Path, sql: &str) {
    let found = Command::new("sqlite3")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        panic!("the sqlite3 CLI is not installed (apt-get install sqlite3): the audit test cuts the tail with it");
    }
    let out = Command::new("sqlite3")
        .arg(db)
        .arg(sql)
        .output()
        .expect("sqlite3");
    assert!(out.status.success(), "sqlite3: {}", said(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_builds_the_commit_on_the_card_and_no_shell_can_give_it() {
    let p = Platform::start().await;
    p.compare.set_commits(
        "acme/api",
        "1.0.0",
        "feature/x",
        vec![GitCommit::new(
            FIRST,
            "Ada Lovelace",
            "<https://evil.example|Approve> now",
        )],
    );
    let server = p.serve(&[]).await;
    server
        .event(
            &p.slack
                .message_event("D0REQ", REQUESTER, "deploy staging feature/x"),
        )
        .await;
    let card = p.posted("C0APPROVALS", "Approval needed").await;
    let card_text = message_text(&card);
    assert!(
        card_text.contains("a1b2c3d"),
        "the card names the head commit: {card_text}"
    );
    assert!(
        card_text.contains("&lt;https://evil.example|Approve&gt;"),
        "the commit title is shown as text: {card_text}"
    );
    assert!(
        !p.everything_sent()
            .contains("<https://evil.example|Approve>"),
        "no Slack call carries the title as a live link"
    );
    let id = card_text
        .split("Request `")
        .nth(1)
        .and_then(|s| s.split('`').next())
        .expect("the card names its request")
        .to_owned();

    // A shell on the serving host cannot approve it, as the approver or as itself.
    let as_admin = p.cli(&["run", "--as", APPROVER, &format!("approve {id}")], &[]);
    assert_eq!(as_admin.status.code(), Some(1), "{}", said(&as_admin));
    assert!(
        said(&as_admin).contains("CROSSROADS_CLI_ACT_AS=1"),
        "says why: {}",
        said(&as_admin)
    );
    let allowed = p.cli(
        &["run", "--as", APPROVER, &format!("approve {id}")],
        &[("CROSSROADS_CLI_ACT_AS", "1")],
    );
    assert_eq!(allowed.status.code(), Some(1), "{}", said(&allowed));
    assert!(
        said(&allowed).contains("never from `crossroads run`"),
        "approvals come from people in Slack: {}",
        said(&allowed)
    );
    assert!(p.jenkins.triggers().is_empty(), "nothing was built");

    // The branch gains a commit after the card was shown; the approver clicks.
    p.compare.set_commits(
        "acme/api",
        "1.0.0",
        "feature/x",
        vec![
            GitCommit::new(FIRST, "Ada Lovelace", "<https://evil.example|Approve> now"),
            GitCommit::new(NEWER, "Mallory", "add backdoor"),
        ],
    );
    let ts = p.slack.wait_for_message("C0APPROVALS").await.ts;
    let approve = button(&card, |t| t == "Approve");
    let click = click_on(&p.slack, APPROVER, "C0APPROVALS", &ts, &approve);
    assert_eq!(server.interaction(&click).await, 200);
    let done = p
        .slack
        .wait_for_one("chat.update", |c| {
            message_text(&c.body).contains("Deployed")
        })
        .await;
    let deploys = p.jenkins.triggers();
    assert_eq!(deploys.len(), 1, "{deploys:?}");
    let param = |k: &str| {
        deploys[0]
            .params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        param("REF").as_deref(),
        Some(FIRST),
        "builds the approved commit"
    );
    assert_eq!(param("REF_NAME").as_deref(), Some("feature/x"));
    let thread = p
        .slack
        .calls("chat.postMessage")
        .iter()
        .chain(p.slack.calls("chat.update").iter())
        .map(|c| message_text(&c.body))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        thread.contains("1 newer commit, not deployed") && thread.contains("add backdoor"),
        "says what the branch gained: {thread}\n(done: {})",
        message_text(&done.body)
    );

    // The audit names the OS user of each refused shell attempt, never the admin.
    let verify = p.cli(&["audit", "verify"], &[]);
    assert!(verify.status.success(), "{}", said(&verify));
    assert!(
        said(&verify).contains("signed with the audit key"),
        "{}",
        said(&verify)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_markup_and_typed_built_ins_go_nowhere_and_yaml_commands_freeze() {
    let p = Platform::start().await;
    let server = p.serve(&[]).await;
    // What Slack sends when someone types `<!channel>`.
    server
        .event(&p.slack.message_event(
            "D0LOCK",
            REQUESTER,
            "lock staging &lt;!channel&gt; maintenance",
        ))
        .await;
    let locked = message_text(&p.posted("D0LOCK", "staging").await);
    assert!(
        locked.contains("&lt;!channel&gt;"),
        "shown as text: {locked}"
    );

    server
        .event(
            &p.slack
                .message_event("D0FAKE", REQUESTER, "clear cache staging user=U0FAKE"),
        )
        .await;
    let refused = message_text(&p.posted("D0FAKE", "user").await);
    assert!(refused.contains("`user`"), "names the word: {refused}");

    server
        .event(
            &p.slack
                .message_event("D0FROZEN", REQUESTER, "clear cache dev"),
        )
        .await;
    let frozen = message_text(&p.posted("D0FROZEN", "frozen").await);
    assert!(
        frozen.contains("2026-01-01 .. 2030-12-31 UTC"),
        "names the window: {frozen}"
    );

    assert!(
        !p.everything_sent().contains("<!channel>"),
        "no Slack call carries a live <!channel>"
    );
    assert!(
        p.jenkins.triggers().is_empty(),
        "nothing ran: {:?}",
        p.jenkins.triggers()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_workspace_gets_no_answer_and_a_flood_is_slowed_down_once() {
    let p = Platform::start().await;
    let server = p.serve(&[("SLACK_TEAM_ID", "T0SIM")]).await;

    let mut foreign = p.slack.message_event("D0AWAY", "U0VISITOR", "status");
    foreign["team_id"] = "T0ELSEWHERE".into();
    foreign["event"]["team"] = "T0ELSEWHERE".into();
    foreign["authorizations"][0]["team_id"] = "T0ELSEWHERE".into();
    assert_eq!(server.event(&foreign).await, 200, "acknowledged");
    // Slack Connect: the conversation is ours, the sender's organisation is another.
    let mut visitor = p.slack.message_event("D0SHARED", "U0VISITOR", "status");
    visitor["event"]["user_team"] = "T0ELSEWHERE".into();
    assert_eq!(server.event(&visitor).await, 200, "acknowledged");

    // One person, 32 `status` in a row: 30 answers, then one "slow down".
    for _ in 0..32 {
        assert_eq!(
            server
                .event(&p.slack.message_event("D0BUSY", REQUESTER, "status"))
                .await,
            200
        );
    }
    // Ephemeral where Slack has it; in a DM the bot's own conversation says it.
    let slowed = |p: &Platform| {
        ["chat.postEphemeral", "chat.postMessage"]
            .iter()
            .flat_map(|m| p.slack.calls(m))
            .filter(|c| message_text(&c.body).contains("slow down"))
            .count()
    };
    let answers = |p: &Platform| {
        p.slack
            .calls("chat.postMessage")
            .iter()
            .filter(|c| {
                c.arg("channel") == Some("D0BUSY") && !message_text(&c.body).contains("slow down")
            })
            .count()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while answers(&p) < 30 || slowed(&p) < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "30 answers ({}) and one slow down ({})",
            answers(&p),
            slowed(&p)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(answers(&p), 30, "the 31st and 32nd ran nothing");
    assert_eq!(slowed(&p), 1, "told once, politely");
    for away in ["D0AWAY", "D0SHARED"] {
        assert!(
            p.slack
                .all_calls()
                .iter()
                .all(|c| c.arg("channel") != Some(away)),
            "no answer went to another workspace ({away})"
        );
    }
    let metrics = reqwest::get(format!("http://{}/metrics", server.addr))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics body");
    let counted = metrics
        .lines()
        .find(|l| !l.starts_with('#') && l.contains("slack_deliveries_foreign"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<f64>().ok());
    assert_eq!(counted, Some(2.0), "both counted: {metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_audit_tail_fails_verify_against_the_kept_head() {
    let p = Platform::start().await;
    let server = p.serve(&[]).await;
    for (channel, text) in [
        ("D0A1", "lock staging maintenance"),
        ("D0A2", "unlock staging"),
    ] {
        server
            .event(&p.slack.message_event(channel, REQUESTER, text))
            .await;
        p.posted(channel, "staging").await;
    }
    let head = p.cli(&["audit", "head"], &[]);
    assert!(head.status.success(), "{}", said(&head));
    let kept = String::from_utf8_lossy(&head.stdout).trim().to_owned();
    let holds = p.cli(&["audit", "verify", "--head", &kept], &[]);
    assert!(holds.status.success(), "{}", said(&holds));

    // The chain is signed: checked without the key, it does not verify.
    let keyless = p.cli(&["audit", "verify"], &[("CROSSROADS_AUDIT_KEY", "")]);
    assert_eq!(keyless.status.code(), Some(1), "{}", said(&keyless));

    let db = p.dir.path().join("state.db");
    sqlite3(
        &db,
        "DELETE FROM audit WHERE seq = (SELECT MAX(seq) FROM audit);",
    );
    let cut = p.cli(&["audit", "verify", "--head", &kept], &[]);
    assert_eq!(cut.status.code(), Some(1), "{}", said(&cut));
    let seq = kept.split(':').next().unwrap_or_default();
    assert!(
        said(&cut).contains(&format!("does NOT hold {seq}")),
        "names what is missing: {}",
        said(&cut)
    );

    sqlite3(&db, "DELETE FROM audit;");
    let emptied = p.cli(&["audit", "verify", "--head", &kept], &[]);
    assert_eq!(emptied.status.code(), Some(1), "{}", said(&emptied));
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmation_answers_only_the_person_it_asked() {
    let p = Platform::start().await;
    let server = p.serve(&[]).await;
    server
        .event(&p.slack.message_event("D0CONF", REQUESTER, "deploy prod"))
        .await;
    let asked = p
        .slack
        .wait_for_one("chat.postMessage", |c| {
            c.arg("channel") == Some("D0CONF")
                && message_text(&c.body).to_lowercase().contains("yes")
        })
        .await;
    let ts = p.slack.wait_for_message("D0CONF").await.ts;
    let yes = button(&asked.body, |t| t.starts_with("Yes"));
    let click = |user: &str| click_on(&p.slack, user, "D0CONF", &ts, &yes);
    // Another deployer, allowed to deploy prod, clicks it.
    assert_eq!(server.interaction(&click("U0OTHER")).await, 200);
    let told = p
        .slack
        .wait_for_one("response_url", |c| {
            message_text(&c.body).contains(&format!("<@{REQUESTER}>'s question"))
        })
        .await;
    assert_eq!(
        told.body["response_type"], "ephemeral",
        "told only the clicker: {}",
        told.body
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(p.jenkins.triggers().is_empty(), "nothing was built");
    // The person it asked can still answer it.
    assert_eq!(server.interaction(&click(REQUESTER)).await, 200);
    p.slack
        .wait_for_one("chat.update", |c| {
            message_text(&c.body).contains("Deployed")
        })
        .await;
    assert_eq!(p.jenkins.triggers().len(), 1);
}
