//! Crossroads cannot be talked past: an approval builds the commit the approver saw
//! (and names what the branch gained since); an approval that waited too long in the
//! queue does not start; typed words never set what Crossroads sets itself; chat
//! text never becomes markup; YAML commands are frozen unless exempt; an override
//! holds for its window only; an audit chain signed with a key cannot be recomputed
//! without it; and nothing runs whose audit record cannot be written.

use crate::common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use bot_core::adapters::memory_switch::MemorySwitch;
use bot_core::adapters::store::memory::MemoryStore;
use bot_core::ports::Store;
use bot_core::{Bot, Outcome, Reply, Request};
use common::{click, param, say, COMMANDS};
use crossroads_sim::compare::{CompareStandIn, GitCommit};
use crossroads_sim::instance::SimInstance;
use crossroads_sim::jenkins::{JenkinsSetup, JobSetup, SimJenkins, Trigger};

const REQUESTER: &str = "U0DEPLOYER";
const APPROVER: &str = "U0ADMIN";
const TOKEN: &str = "ghp_trust";
/// 2026-12-10 12:00 UTC: no freeze.
const CALM: u64 = 1_796_904_000;
/// 2026-12-24 12:00 UTC: inside dev's Christmas freeze.
const CHRISTMAS: u64 = 1_798_113_600;

/// Two YAML commands beside the shipped ones: `purge` takes a declared `path` and
/// runs during freezes; the shipped `clear cache` declares nothing.
fn commands(hook: &str) -> String {
    format!(
        "{COMMANDS}\n  purge:\n    phrases: [purge]\n    action: http\n    method: POST\n    url: \"{hook}/purge/{{env}}?path={{path}}\"\n    body: '{{\"by\": \"{{user}}\", \"path\": \"{{path}}\"}}'\n    params: [path]\n    freeze: exempt\n    target: environment\n    allowed: [deployers]\n    help: Purge a path from the edge cache.\n    examples: [\"purge dev path=/img\"]\n"
    )
}

fn instances(jenkins: &str, compare: &str, blue: &str, green: &str) -> String {
    format!(
        r#"
settings:
  probe_timeout: 1s
  gate: {{ consecutive: 1, interval: 20ms, timeout: 5s }}
jenkins: {{ url: "{jenkins}", user: crossroads, token: t0ken, poll_interval: 20ms }}
compare: {{ type: github, url: "{compare}", repo: acme/app, token: {TOKEN} }}
groups:
  deployers: [{REQUESTER}, {APPROVER}, U0OTHER]
  admins: [{APPROVER}]
environments:
  staging:
    approval: {{ from: [deployers], count: 1, expires: 2h, valid_for: 30m }}
    pools:
      api:
        switch: {{ type: memory, initial: blue }}
        deploy: {{ job: platform/deploy-api, parameters: {{ REF: "{{ref}}", REF_NAME: "{{ref_name}}", COLOUR: "{{colour}}" }} }}
        members:
          blue: {{ url: "{blue}", health: {{ version: /version }} }}
          green: {{ url: "{green}", health: {{ version: /version }} }}
  dev:
    freeze:
      override: [admins]
      windows: ["2026-12-24 .. 2026-12-26 Europe/Prague"]
    pools:
      api:
        switch: {{ type: memory, initial: blue }}
        deploy: {{ job: platform/deploy-api, parameters: {{ REF: "{{ref}}", COLOUR: "{{colour}}" }} }}
        members:
          blue: {{ url: "{blue}", health: {{ version: /version }} }}
          green: {{ url: "{green}", health: {{ version: /version }} }}
"#
    )
}

struct World {
    bot: Bot,
    store: Arc<dyn Store>,
    jenkins: SimJenkins,
    compare: CompareStandIn,
    hook: crossroads_sim::WebhookStandIn,
    now: Arc<AtomicU64>,
    _sims: (SimInstance, SimInstance),
}

impl World {
    async fn start(store: Arc<dyn Store>) -> World {
        let job = || {
            JobSetup::new()
                .queue_time(Duration::from_millis(10))
                .build_duration(Duration::from_millis(50))
        };
        let jenkins = SimJenkins::start(
            JenkinsSetup::new("crossroads", "t0ken")
                .job("platform/deploy-api", job())
                .job("platform/clear-cache", job()),
        )
        .await
        .expect("jenkins");
        let compare = CompareStandIn::start(TOKEN).await.expect("compare");
        let hook = crossroads_sim::WebhookStandIn::start().await.expect("hook");
        let blue = SimInstance::start("blue", "1.0.0").await.expect("blue");
        let green = SimInstance::start("green", "1.0.0").await.expect("green");
        let config = bot_core::load_strs_with_env(
            &commands(&hook.url()),
            &instances(&jenkins.url(), &compare.url(), &blue.url(), &green.url()),
            &|_| None,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let now = Arc::new(AtomicU64::new(CALM));
        let clock = now.clone();
        let bot = Bot::builder(config)
            .store(store.clone())
            .switch_all(Arc::new(MemorySwitch::new()))
            .clock(Arc::new(move || {
                UNIX_EPOCH + Duration::from_secs(clock.load(Ordering::SeqCst))
            }))
            .build();
        World {
            bot,
            store,
            jenkins,
            compare,
            hook,
            now,
            _sims: (blue, green),
        }
    }

    fn deploys(&self) -> Vec<Trigger> {
        self.jenkins
            .triggers()
            .into_iter()
            .filter(|t| t.job == "platform/deploy-api")
            .collect()
    }

    fn later(&self, secs: u64) {
        self.now.fetch_add(secs, Ordering::SeqCst);
    }
}

fn commit(sha: char, title: &str) -> GitCommit {
    GitCommit::new(&sha.to_string().repeat(40), "Ada Lovelace", title)
}

fn text(reply: &Reply) -> String {
    reply.to_plain_text()
}

#[tokio::test]
async fn an_approval_builds_the_commit_the_approver_saw() {
    let w = World::start(Arc::new(MemoryStore::new())).await;
    w.compare.set_commits(
        "acme/app",
        "1.0.0",
        "feature/x",
        vec![commit('a', "add the export button")],
    );
    let card = say(&w.bot, REQUESTER, "deploy staging feature/x").await;
    let shown = text(&card);
    assert!(shown.contains("`feature/x` at `aaaaaaa`"), "{shown}");
    assert!(
        shown.contains("*Pinned:* `aaaaaaa` add the export button"),
        "{shown}"
    );

    // Someone pushes to the branch after the card was shown.
    w.compare.set_commits(
        "acme/app",
        "1.0.0",
        "feature/x",
        vec![
            commit('a', "add the export button"),
            commit('b', "add backdoor"),
        ],
    );
    let done = click(&w.bot, APPROVER, &card, "Approve").await;
    let said = text(&done);
    assert_eq!(done.outcome, Outcome::Done, "{said}");
    let deploys = w.deploys();
    assert_eq!(deploys.len(), 1);
    assert_eq!(
        param(&deploys[0], "REF"),
        Some("a".repeat(40).as_str()),
        "the approved commit is built, not the branch"
    );
    assert_eq!(param(&deploys[0], "REF_NAME"), Some("feature/x"));
    assert!(
        said.contains(
            ":warning: `feature/x` has 1 newer commit, not deployed: `bbbbbbb` add backdoor"
        ),
        "{said}"
    );
    let history = w
        .store
        .history(Some("staging"), 0, 20)
        .await
        .expect("history");
    assert!(
        history
            .iter()
            .any(|r| r.outcome == "ok" && r.args.contains(&format!("pinned={}", "a".repeat(40)))),
        "the audit names the commit: {history:#?}"
    );
}

#[tokio::test]
async fn without_a_list_of_commits_the_card_says_the_ref_is_not_pinned() {
    let w = World::start(Arc::new(MemoryStore::new())).await;
    // The compare endpoint knows nothing of this ref.
    let card = say(&w.bot, REQUESTER, "deploy staging feature/y").await;
    let shown = text(&card);
    assert!(shown.contains("*Not pinned:* `feature/y`"), "{shown}");
    assert!(!shown.contains(" at `"), "{shown}");
}

#[tokio::test]
async fn an_approval_older_than_valid_for_does_not_start_from_the_queue() {
    let w = World::start(Arc::new(MemoryStore::new())).await;
    w.compare
        .set_commits("acme/app", "1.0.0", "main", vec![commit('c', "tidy up")]);
    let locked = say(&w.bot, APPROVER, "lock staging maintenance").await;
    assert_eq!(locked.outcome, Outcome::Done, "{}", text(&locked));
    let card = say(&w.bot, REQUESTER, "deploy staging when free").await;
    let queued = click(&w.bot, APPROVER, &card, "Approve").await;
    assert!(
        text(&queued).contains("in line for *staging*"),
        "{}",
        text(&queued)
    );
    assert!(w.deploys().is_empty());

    // The maintenance outlasts the approval's 30 minutes.
    w.later(31 * 60);
    say(&w.bot, APPROVER, "unlock staging").await;
    let started = w.bot.start_queued(None, None).await.expect("queue");
    assert_eq!(started.len(), 1, "the first in line is taken out");
    let mut told = Vec::new();
    for (_, work) in started {
        told.push(work.await);
    }
    let said = text(&told[0]);
    assert_eq!(told[0].outcome, Outcome::Rejected, "{said}");
    assert!(said.contains("was approved more than 30m"), "{said}");
    assert!(
        said.contains(&format!("<@{REQUESTER}>, ask again")),
        "{said}"
    );
    assert!(
        w.deploys().is_empty(),
        "nothing was built on a stale approval"
    );
}

#[tokio::test]
async fn typed_words_never_set_what_crossroads_sets_itself() {
    let w = World::start(Arc::new(MemoryStore::new())).await;
    let refused = say(&w.bot, REQUESTER, "clear cache dev user=U0FAKE").await;
    let said = text(&refused);
    assert_eq!(refused.outcome, Outcome::Rejected, "{said}");
    assert!(said.contains("I won't pass `user`"), "{said}");
    assert!(said.contains("set by Crossroads itself"), "{said}");
    assert!(w.jenkins.triggers().is_empty(), "nothing ran");

    let ran = say(&w.bot, REQUESTER, "clear cache dev").await;
    assert_eq!(ran.outcome, Outcome::Done, "{}", text(&ran));
    let t = &w.jenkins.triggers()[0];
    assert_eq!(
        param(t, "REQUESTED_BY"),
        Some(REQUESTER),
        "the real requester"
    );

    // A declared word goes through, encoded for where it lands; others are named.
    let odd = say(&w.bot, REQUESTER, "purge dev path=/img other=1").await;
    assert!(
        text(&odd).contains("I won't pass `other`"),
        "{}",
        text(&odd)
    );
    let purged = say(&w.bot, REQUESTER, "purge dev path=/img/a&b").await;
    assert_eq!(purged.outcome, Outcome::Done, "{}", text(&purged));
    let sent = w.hook.wait_for(1).await;
    assert_eq!(sent[0].path, "/purge/dev?path=%2Fimg%2Fa%26b");
    assert_eq!(sent[0].body["path"], "/img/a&b");
    assert_eq!(sent[0].body["by"], REQUESTER);
}

#[tokio::test]
async fn chat_text_and_commit_titles_never_become_markup() {
    let w = World::start(Arc::new(MemoryStore::new())).await;
    // Slack sends typed `<!channel>` as `&lt;!channel&gt;`.
    let locked = say(&w.bot, REQUESTER, "lock dev &lt;!channel&gt; maintenance").await;
    let said = serde_json::to_string(&locked.to_block_kit_json()).expect("json");
    assert!(!said.contains("<!channel>"), "a live ping: {said}");
    assert!(
        text(&locked).contains("&lt;!channel&gt; maintenance"),
        "{}",
        text(&locked)
    );
    let refused = say(&w.bot, APPROVER, "deploy dev").await;
    let said = serde_json::to_string(&refused.to_block_kit_json()).expect("json");
    assert!(
        !said.contains("<!channel>"),
        "a live ping in the refusal: {said}"
    );
    say(&w.bot, REQUESTER, "unlock dev").await;

    w.compare.set_commits(
        "acme/app",
        "1.0.0",
        "feature/z",
        vec![commit('d', "<https://evil.example|Approve> now")],
    );
    let card = say(&w.bot, REQUESTER, "deploy staging feature/z").await;
    let said = serde_json::to_string(&card.to_block_kit_json()).expect("json");
    assert!(
        !said.contains("<https://evil.example"),
        "a live link on the card: {said}"
    );
    assert!(
        text(&card).contains("&lt;https://evil.example|Approve&gt; now"),
        "{}",
        text(&card)
    );
}

#[tokio::test]
async fn yaml_commands_are_frozen_unless_exempt() {
    let w = World::start(Arc::new(MemoryStore::new())).await;
    w.now.store(CHRISTMAS, Ordering::SeqCst);
    let frozen = say(&w.bot, REQUESTER, "clear cache dev").await;
    let said = text(&frozen);
    assert_eq!(frozen.outcome, Outcome::Rejected, "{said}");
    assert!(said.contains("is frozen"), "{said}");
    assert!(
        said.contains("2026-12-24 .. 2026-12-26 Europe/Prague"),
        "names the window: {said}"
    );
    assert!(w.jenkins.triggers().is_empty());
    let exempt = say(&w.bot, REQUESTER, "purge dev path=/x").await;
    assert_eq!(exempt.outcome, Outcome::Done, "{}", text(&exempt));
}

#[tokio::test]
async fn an_override_holds_for_the_window_it_names_only() {
    let w = World::start(Arc::new(MemoryStore::new())).await;
    w.now.store(CHRISTMAS, Ordering::SeqCst);
    let mut inv = bot_core::Invocation {
        command: "clear cache".into(),
        target: bot_core::Target::Env {
            env: "dev".into(),
            pools: vec![],
        },
        args: vec![],
        params: vec![
            ("override".into(), "hotfix".into()),
            (
                bot_core::reply::OVERRIDE_WINDOW.into(),
                "Sat 00:00 - Sun 00:00 Europe/Prague".into(),
            ),
        ],
        confirmed: true,
        approval: None,
        pin: None,
    };
    // A button carrying an override given for another window.
    let value = offer(&w, APPROVER, &inv).await;
    let refused = w.bot.handle(Request::button(APPROVER, value)).await;
    assert_eq!(refused.outcome, Outcome::Rejected, "{}", text(&refused));
    assert!(text(&refused).contains("is frozen"), "{}", text(&refused));
    assert!(w.jenkins.triggers().is_empty(), "void for this window");
    // The same override for the window in force holds.
    inv.params[1].1 = "2026-12-24 .. 2026-12-26 Europe/Prague".into();
    let value = offer(&w, APPROVER, &inv).await;
    let ran = w.bot.handle(Request::button(APPROVER, value)).await;
    assert_eq!(ran.outcome, Outcome::Done, "{}", text(&ran));
    assert!(
        text(&ran).contains("overrides the freeze"),
        "{}",
        text(&ran)
    );
}

/// A one-button set running `inv`, as the bot would have offered it.
async fn offer(w: &World, user: &str, inv: &bot_core::Invocation) -> String {
    let id = uuid_like();
    w.store
        .issue_buttons(&bot_core::ports::store::ButtonSet {
            id: id.clone(),
            actions: vec![
                serde_json::to_value(bot_core::reply::ButtonAction::Run(inv.clone()))
                    .expect("json"),
            ],
            channel: None,
            issued_to: user.into(),
            expires: UNIX_EPOCH + Duration::from_secs(CHRISTMAS + 3600),
            personal: false,
        })
        .await
        .expect("buttons");
    format!("{id}.0")
}

fn uuid_like() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("set{}", N.fetch_add(1, Ordering::SeqCst))
}

#[tokio::test]
async fn a_chain_signed_with_a_key_cannot_be_recomputed_without_it() {
    let key = b"an audit key kept off the database host";
    let signed = MemoryStore::new();
    signed.set_audit_key(key);
    let signed: Arc<dyn Store> = Arc::new(signed);
    let w = World::start(signed.clone()).await;
    say(&w.bot, REQUESTER, "lock dev one").await;
    say(&w.bot, REQUESTER, "unlock dev").await;
    let ok = bot_core::audit::verify(&*signed, Some(key))
        .await
        .expect("verifies");
    assert!(ok.signed && ok.records >= 2, "{ok:?}");
    // Someone with the database but not the key writes the same records again,
    // hashed as a chain without a key: it does not verify under the key.
    let forged: Arc<dyn Store> = Arc::new(MemoryStore::new());
    for r in signed.chain(1, 100).await.expect("chain") {
        forged.append(r.record).await.expect("append");
    }
    let err = bot_core::audit::verify(&*forged, Some(key))
        .await
        .expect_err("a chain recomputed without the key");
    assert!(
        err.to_string().contains("not signed with the audit key"),
        "{err}"
    );
    // Without the key it would have looked fine: that is what the key is for.
    bot_core::audit::verify(&*forged, None)
        .await
        .expect("plain");
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn nothing_runs_whose_audit_record_cannot_be_written() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("state.db").display());
    let store = bot_core::adapters::store::connect(&url, true)
        .await
        .expect("sqlite");
    let w = World::start(store).await;
    // The audit table refuses every write from now on.
    let pool = sqlx::SqlitePool::connect(&url).await.expect("pool");
    sqlx::query(
        "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'refused'); END",
    )
    .execute(&pool)
    .await
    .expect("trigger");
    w.now.store(CHRISTMAS, Ordering::SeqCst);
    let override_ = say(&w.bot, APPROVER, "deploy dev override=\"hotfix\"").await;
    let said = text(&override_);
    assert_eq!(override_.outcome, Outcome::Failed, "{said}");
    assert!(
        said.contains("I could not write the audit record, so I did nothing"),
        "{said}"
    );
    assert!(!said.contains("refused"), "no driver text: {said}");
    w.now.store(CALM, Ordering::SeqCst);
    let plain = say(&w.bot, REQUESTER, "clear cache dev").await;
    assert!(
        text(&plain).contains("I could not write the audit record"),
        "{}",
        text(&plain)
    );
    assert!(
        w.jenkins.triggers().is_empty(),
        "nothing ran: {:?}",
        w.jenkins.triggers()
    );
}
