//! Four-eyes approval against a simulated Jenkins and simulated instances: the
//! requester's own click is refused, another deployer's approval runs the deploy
//! once as the requester, an expired request is refused, a decline keeps its
//! reason, and two approvers clicking at once give one run — on one bot, and on two
//! replicas sharing one PostgreSQL.

use crate::common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bot_core::adapters::memory_switch::MemorySwitch;
use bot_core::ports::Store;
use bot_core::{Bot, Outcome, Reply, Request};
use common::{labels, param, quick, say, shipped_with, INSTANCE_URL_VARS, TOKEN, USER};
use crossroads_sim::instance::SimInstance;
use crossroads_sim::jenkins::{JenkinsSetup, SimJenkins};

const ADMIN: &str = "U0ADMIN";
const DEMO: &str = "U0DEMO";

/// Staging needs one approval from `deployers`, open ten minutes; cards also go to
/// `C0APPROVALS`.
const APPROVAL: &str =
    "    approval: { from: [deployers], count: 1, expires: 10m, channel: C0APPROVALS }\n";

struct Gate {
    jenkins: SimJenkins,
    _sims: Vec<SimInstance>,
    switch: Arc<MemorySwitch>,
    /// Added to the system clock, in seconds.
    skew: Arc<AtomicU64>,
    config: bot_core::Config,
}

impl Gate {
    async fn start() -> Self {
        let setup = JenkinsSetup::new("crossroads", TOKEN)
            .job("platform/deploy-api", quick())
            .job("platform/deploy-cron", quick());
        let jenkins = SimJenkins::start(setup).await.expect("jenkins");
        let mut vars = vec![
            ("JENKINS_URL", jenkins.url()),
            ("JENKINS_TOKEN", TOKEN.to_owned()),
        ];
        let mut sims = Vec::new();
        for var in INSTANCE_URL_VARS {
            let sim = SimInstance::start(var, "1.0.0").await.expect("instance");
            vars.push((var, sim.url()));
            sims.push(sim);
        }
        let mut config = shipped_with(&vars, |yaml| {
            yaml.replacen(
                "  staging:\n    aliases: [stage, stg, preprod]\n",
                &format!("  staging:\n    aliases: [stage, stg, preprod]\n{APPROVAL}"),
                1,
            )
        });
        config.settings.gate_consecutive = 2;
        config.settings.gate_interval = Duration::from_millis(30);
        config.settings.gate_timeout = Duration::from_millis(600);
        if let Some(j) = config.jenkins.as_mut() {
            j.poll_interval = Duration::from_millis(20);
            j.timeout = Duration::from_secs(10);
        }
        Self {
            jenkins,
            _sims: sims,
            switch: Arc::new(MemorySwitch::new()),
            skew: Arc::new(AtomicU64::new(0)),
            config,
        }
    }

    /// A replica of the bot on `store`, sharing the platform and the clock.
    fn bot(&self, store: Arc<dyn Store>) -> Bot {
        let skew = self.skew.clone();
        Bot::builder(self.config.clone())
            .switch_all(self.switch.clone())
            .store(store)
            .clock(Arc::new(move || {
                SystemTime::now() + Duration::from_secs(skew.load(Ordering::SeqCst))
            }))
            .build()
    }

    fn deploys(&self) -> Vec<crossroads_sim::jenkins::Trigger> {
        self.jenkins
            .triggers()
            .into_iter()
            .filter(|t| t.job == "platform/deploy-api")
            .collect()
    }
}

fn value(reply: &Reply, label: &str) -> String {
    reply
        .all_buttons()
        .find(|b| b.label == label)
        .unwrap_or_else(|| panic!("no {label} button in {}", reply.to_plain_text()))
        .value
        .clone()
}

async fn click(bot: &Bot, user: &str, value: &str) -> Reply {
    bot.handle(Request::button(user, value)).await
}

/// The request's id, from the card.
fn request_id(card: &Reply) -> String {
    let text = card.to_plain_text();
    let start = text.find("Request `").expect("the card names its request") + "Request `".len();
    text[start..start + 8].to_owned()
}

#[tokio::test]
async fn self_approval_is_refused_and_another_deployers_approval_runs_the_deploy_once() {
    let gate = Gate::start().await;
    let store: Arc<dyn Store> = Arc::new(bot_core::adapters::store::memory::MemoryStore::new());
    let bot = gate.bot(store.clone());

    let card = say(&bot, USER, "deploy staging api feature/login").await;
    let text = card.to_plain_text();
    assert_eq!(card.outcome, Outcome::Confirm, "{text}");
    assert_eq!(labels(&card), ["Approve", "Decline"]);
    assert!(text.contains("Approval needed"), "{text}");
    assert!(
        text.contains("<@U0DEPLOYER> asks to run `deploy staging api feature/login`"),
        "{text}"
    );
    assert!(text.contains("*Where:* *staging api*"), "{text}");
    assert!(text.contains("*Ref:* `feature/login`"), "{text}");
    assert!(
        text.contains("from `deployers` — not <@U0DEPLOYER>"),
        "{text}"
    );
    assert!(gate.deploys().is_empty(), "nothing runs before approval");

    // The card also went to the approvals channel.
    let now = bot.now();
    let posted = store
        .lease_messages("slack", "test", now, now + Duration::from_secs(1), 10)
        .await
        .expect("outbox");
    assert!(
        posted.iter().any(|m| m.route["channel"] == "C0APPROVALS"
            && m.body.to_string().contains("Approval needed")),
        "{posted:#?}"
    );

    let approve = value(&card, "Approve");
    let own = click(&bot, USER, &approve).await;
    assert_eq!(own.outcome, Outcome::Rejected, "{}", own.to_plain_text());
    assert!(own.ephemeral, "the card stays for everyone else");
    assert!(
        own.to_plain_text()
            .contains("someone else has to approve it"),
        "{}",
        own.to_plain_text()
    );
    let stranger = click(&bot, "U0STRANGER", &approve).await;
    assert_eq!(stranger.outcome, Outcome::Rejected);
    assert!(
        stranger
            .to_plain_text()
            .contains("approvals here come from `deployers`"),
        "{}",
        stranger.to_plain_text()
    );
    assert!(gate.deploys().is_empty(), "refused clicks run nothing");

    let approved = click(&bot, ADMIN, &approve).await;
    let text = approved.to_plain_text();
    assert_eq!(approved.outcome, Outcome::Done, "{text}");
    assert!(
        text.contains("approved by <@U0ADMIN> · asked by <@U0DEPLOYER>"),
        "{text}"
    );
    let deploys = gate.deploys();
    assert_eq!(deploys.len(), 1, "the deploy ran once");
    assert_eq!(
        param(&deploys[0], "REQUESTED_BY"),
        Some(USER),
        "it runs as the requester"
    );
    assert_eq!(param(&deploys[0], "REF"), Some("feature/login"));

    let again = click(&bot, DEMO, &approve).await;
    assert_eq!(
        again.outcome,
        Outcome::Rejected,
        "{}",
        again.to_plain_text()
    );
    assert!(
        again
            .to_plain_text()
            .contains("already approved by <@U0ADMIN>"),
        "{}",
        again.to_plain_text()
    );
    assert_eq!(gate.deploys().len(), 1, "a late click runs nothing");

    // The audit names both people.
    let chain = store.chain(1, 100).await.expect("audit");
    let line = |r: &bot_core::ports::AuditRecord| format!("{} {} {}", r.user, r.what(), r.outcome);
    let lines: Vec<String> = chain.iter().map(|c| line(&c.record)).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("U0DEPLOYER deploy staging api")
                && l.contains("requested: approval")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("U0DEPLOYER ") && l.contains("refused click")),
        "the requester's own click is recorded: {lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("U0ADMIN deploy staging api") && l.contains("approved: request")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l
            .starts_with("U0DEPLOYER deploy staging api feature/login approval=")
            && l.contains("approved-by=U0ADMIN")
            && l.ends_with(" ok")),
        "the outcome names the requester and the approver: {lines:#?}"
    );
}

#[tokio::test]
async fn an_expired_request_is_refused_and_a_decline_keeps_its_reason() {
    let gate = Gate::start().await;
    let store: Arc<dyn Store> = Arc::new(bot_core::adapters::store::memory::MemoryStore::new());
    let bot = gate.bot(store.clone());

    let card = say(&bot, USER, "deploy staging").await;
    assert_eq!(card.outcome, Outcome::Confirm, "{}", card.to_plain_text());
    gate.skew.store(11 * 60, Ordering::SeqCst);
    let late = click(&bot, ADMIN, &value(&card, "Approve")).await;
    assert_eq!(late.outcome, Outcome::Rejected, "{}", late.to_plain_text());
    assert!(
        late.to_plain_text().contains("has expired"),
        "{}",
        late.to_plain_text()
    );
    assert!(
        gate.deploys().is_empty(),
        "an expired approval runs nothing"
    );

    let card = say(&bot, USER, "deploy staging").await;
    let id = request_id(&card);
    let declined = click(&bot, ADMIN, &value(&card, "Decline")).await;
    let text = declined.to_plain_text();
    assert_eq!(declined.outcome, Outcome::Done, "{text}");
    assert!(text.contains("<@U0ADMIN> declined"), "{text}");
    assert!(text.contains(&format!("decline {id}")), "asks why: {text}");
    let why = say(
        &bot,
        ADMIN,
        &format!("decline {id} \"Black Friday traffic\""),
    )
    .await;
    assert!(
        why.to_plain_text().contains("Black Friday traffic"),
        "{}",
        why.to_plain_text()
    );
    let after = click(&bot, DEMO, &value(&card, "Approve")).await;
    assert!(
        after
            .to_plain_text()
            .contains("already declined by <@U0ADMIN>"),
        "{}",
        after.to_plain_text()
    );
    assert!(gate.deploys().is_empty());
    let history = store
        .history(Some("staging"), 0, 20)
        .await
        .expect("history");
    assert!(
        history
            .iter()
            .any(|r| r.user == ADMIN && r.outcome.contains("Black Friday traffic")),
        "{history:#?}"
    );

    // Typed, with a typo: suggested, never run; and both commands are in help.
    let typo = say(&bot, ADMIN, &format!("aprove {id}")).await;
    assert_eq!(
        typo.outcome,
        Outcome::Suggestion,
        "{}",
        typo.to_plain_text()
    );
    let help = say(&bot, USER, "help").await.to_plain_text();
    assert!(
        help.contains("approve") && help.contains("decline"),
        "{help}"
    );
}

/// Two approvers click at once (through `a` and `b`): one run.
async fn two_approvers_at_once(gate: &Gate, a: &Bot, b: &Bot) {
    let card = say(a, USER, "deploy staging api").await;
    let approve = value(&card, "Approve");
    let (one, two) = tokio::join!(
        tokio::spawn({
            let a = a.clone();
            let v = approve.clone();
            async move { click(&a, ADMIN, &v).await }
        }),
        tokio::spawn({
            let b = b.clone();
            let v = approve.clone();
            async move { click(&b, DEMO, &v).await }
        })
    );
    let replies = [one.expect("first"), two.expect("second")];
    let ran = replies
        .iter()
        .filter(|r| r.outcome == Outcome::Done)
        .count();
    assert_eq!(
        ran,
        1,
        "{:#?}",
        replies.iter().map(Reply::to_plain_text).collect::<Vec<_>>()
    );
    assert!(
        replies
            .iter()
            .any(|r| r.to_plain_text().contains("was already approved by")),
        "the other is told who approved"
    );
    assert_eq!(gate.deploys().len(), 1, "one run");
}

#[tokio::test]
async fn two_approvers_clicking_at_once_give_one_run() {
    let gate = Gate::start().await;
    let bot = gate.bot(Arc::new(
        bot_core::adapters::store::memory::MemoryStore::new(),
    ));
    two_approvers_at_once(&gate, &bot, &bot).await;
}

#[tokio::test]
async fn two_approvers_on_two_replicas_sharing_postgres_give_one_run() {
    let Some(db) = crossroads_sim::postgres::fresh_database("approval_replicas").await else {
        return;
    };
    let gate = Gate::start().await;
    let a = bot_core::adapters::store::connect(&db.url, true)
        .await
        .expect("replica A's store");
    let b = bot_core::adapters::store::connect(&db.url, false)
        .await
        .expect("replica B's store");
    let (a, b) = (gate.bot(a), gate.bot(b));
    two_approvers_at_once(&gate, &a, &b).await;
    // The request survives in the store: a third replica sees it decided.
    let c = gate.bot(
        bot_core::adapters::store::connect(&db.url, false)
            .await
            .expect("replica C's store"),
    );
    let history = c
        .store()
        .history(Some("staging"), 0, 20)
        .await
        .expect("history");
    assert!(
        history
            .iter()
            .any(|r| r.outcome.starts_with("approved: request")),
        "{history:#?}"
    );
}

/// The replica that approved a request died right after the vote, before the deploy
/// started: the vote recorded the run that starts it, so another replica starts it
/// once that replica's lease lapses — once, as the requester, and a second click or
/// a second takeover starts nothing more.
#[tokio::test]
async fn a_replica_dying_right_after_the_approving_vote_loses_nothing() {
    use bot_core::ports::store::{Run, RunStatus};
    use bot_core::ports::Decision;
    use bot_core::runs::pending::{approval_id, PendingStart};

    let gate = Gate::start().await;
    let store: Arc<dyn Store> = Arc::new(bot_core::adapters::store::memory::MemoryStore::new());
    let a = gate.bot(store.clone());
    let card = say(&a, USER, "deploy staging api").await;
    let id = request_id(&card);
    let asked = store.approval(&id).await.expect("read").expect("request");
    // What replica A wrote with the approving vote, and then it died.
    let now = a.now();
    let start = Run {
        id: approval_id(&id),
        action: "start".into(),
        user: USER.into(),
        env: Some("staging".into()),
        invocation: asked.invocation.clone(),
        message: None,
        state: serde_json::to_value(PendingStart::Approval {
            id: id.clone(),
            channel: None,
        })
        .expect("state"),
        status: RunStatus::Pending,
        fence: 1,
        owner: "replica-a".into(),
        lease_until: now + a.settings().lease,
        started: now,
    };
    let vote = store
        .vote(&id, ADMIN, &Decision::Approve, now, Some(&start))
        .await
        .expect("vote");
    assert!(
        matches!(vote, bot_core::ports::Vote::Approved(_)),
        "{vote:?}"
    );
    assert!(gate.deploys().is_empty(), "A died before anything started");

    // Replica B, once A's lease lapsed.
    let b = gate.bot(store.clone());
    assert!(
        b.take_over_runs(10, None).await.expect("look").is_empty(),
        "nothing is taken while A's lease holds"
    );
    gate.skew
        .store(a.settings().lease.as_secs() + 1, Ordering::SeqCst);
    let taken = b.take_over_runs(10, None).await.expect("take over");
    assert_eq!(taken.len(), 1, "the approved request is taken over");
    for (_, work) in taken {
        work.await;
    }
    let deploys = gate.deploys();
    assert_eq!(deploys.len(), 1, "the approved deploy ran once");
    assert_eq!(
        param(&deploys[0], "REQUESTED_BY"),
        Some(USER),
        "as the requester"
    );
    let history = store
        .history(Some("staging"), 0, 10)
        .await
        .expect("history");
    assert!(
        history.iter().any(|r| r.command == "deploy"
            && r.outcome == "ok"
            && r.args.contains("approved-by=U0ADMIN")),
        "{history:#?}"
    );

    // A second takeover, and the approver's click seen again, start nothing more.
    gate.skew
        .store(a.settings().lease.as_secs() * 10, Ordering::SeqCst);
    for (_, work) in b.take_over_runs(10, None).await.expect("look") {
        work.await;
    }
    let again = click(&b, ADMIN, &value(&card, "Approve")).await;
    assert_eq!(
        again.outcome,
        Outcome::Rejected,
        "{}",
        again.to_plain_text()
    );
    assert_eq!(gate.deploys().len(), 1, "still one deploy");
}
