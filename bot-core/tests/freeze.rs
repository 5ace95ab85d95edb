//! Freeze windows as people meet them, on a fixed clock across the 2026
//! daylight-saving changes of two zones (Europe/Prague on 25 October, New York on
//! 1 November): deploy, switch, rollback and force restart are refused naming the
//! window and when it ends; the window's wall-clock end holds across the change;
//! an override group member gets through with a recorded, announced reason.

use crate::common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bot_core::adapters::memory_switch::MemorySwitch;
use bot_core::adapters::store::memory::MemoryStore;
use bot_core::ports::Store;
use bot_core::{Bot, Outcome, Reply};
use common::{click, say, shipped_with, RecordingProbe, USER};

const ADMIN: &str = "U0ADMIN";

/// Weekends frozen: `master` on Prague's wall clock, `staging` on New York's, plus
/// New York's holidays on staging and Christmas everywhere (global); members of
/// `admins` override.
fn edit(yaml: &str) -> String {
    let global = "freeze:\n  override: [admins]\n  windows:\n    - \"2026-12-24 .. 2026-12-26 Europe/Prague\"\n\n";
    let master = "    freeze:\n      override: [admins]\n      windows: [\"Fri 16:00 – Mon 08:00 Europe/Prague\"]\n";
    let staging = "    freeze:\n      override: [admins]\n      windows:\n        - Fri 16:00 - Mon 08:00 America/New_York\n        - 2026-12-20 .. 2027-01-04 America/New_York\n";
    yaml.replacen("environments:\n", &format!("{global}environments:\n"), 1)
        .replacen(
            "  master:\n    aliases: [production, prod, rh, roih, roi hunter, live]\n",
            &format!(
                "  master:\n    aliases: [production, prod, rh, roih, roi hunter, live]\n{master}"
            ),
            1,
        )
        .replacen(
            "  staging:\n    aliases: [stage, stg, preprod]\n",
            &format!("  staging:\n    aliases: [stage, stg, preprod]\n{staging}"),
            1,
        )
}

struct Frozen {
    bot: Bot,
    store: Arc<dyn Store>,
    now: Arc<AtomicU64>,
}

impl Frozen {
    fn start() -> Self {
        let config = shipped_with(&[], edit);
        assert_eq!(config.freeze.len(), 4, "{:?}", config.freeze);
        let now = Arc::new(AtomicU64::new(0));
        let clock = now.clone();
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let bot = Bot::builder(config)
            .probe(Arc::new(RecordingProbe::default()))
            .switch_all(Arc::new(MemorySwitch::new()))
            .store(store.clone())
            .clock(Arc::new(move || {
                UNIX_EPOCH + Duration::from_secs(clock.load(Ordering::SeqCst))
            }))
            .build();
        Self { bot, store, now }
    }

    fn at(&self, rfc3339: &str) {
        let t: SystemTime = humantime::parse_rfc3339(rfc3339).expect("time");
        let secs = t.duration_since(UNIX_EPOCH).expect("after 1970").as_secs();
        self.now.store(secs, Ordering::SeqCst);
    }
}

fn refused_frozen(reply: &Reply) -> String {
    let text = reply.to_plain_text();
    assert_eq!(reply.outcome, Outcome::Rejected, "{text}");
    assert!(text.contains("is frozen"), "{text}");
    text
}

#[tokio::test]
async fn prague_weekend_ends_on_monday_wall_clock_after_the_october_change() {
    let f = Frozen::start();
    // Fri 23 Oct 2026 15:59 CEST: not yet.
    f.at("2026-10-23T13:59:00Z");
    let asked = say(&f.bot, USER, "deploy master").await;
    assert_eq!(asked.outcome, Outcome::Confirm, "{}", asked.to_plain_text());

    // 16:30 CEST: frozen until Monday 08:00 — CET by then, so 07:00 UTC, not 06:00.
    f.at("2026-10-23T14:30:00Z");
    let text = refused_frozen(&say(&f.bot, USER, "deploy master").await);
    assert!(
        text.contains("`Fri 16:00 – Mon 08:00 Europe/Prague`"),
        "names the window: {text}"
    );
    assert!(text.contains("Mon 26 Oct 08:00 CET"), "{text}");
    assert!(text.contains("in 2d 16h 30m"), "{text}");
    // The reader's own zone: a Slack date token for Mon 07:00 UTC.
    assert!(text.contains("<!date^1792998000^"), "{text}");
    assert!(
        text.contains("`deploy master override=\"why\"`"),
        "says how to override: {text}"
    );
    for command in [
        "switch master api green",
        "rollback master",
        "force restart master eu active",
    ] {
        refused_frozen(&say(&f.bot, USER, command).await);
    }
    // Staging (New York) is not frozen yet: it is 10:30 there.
    let staging = say(&f.bot, USER, "switch staging api green").await;
    assert_eq!(
        staging.outcome,
        Outcome::Done,
        "{}",
        staging.to_plain_text()
    );

    // Mon 06:30 UTC is 07:30 CET: still frozen (a fixed +2h would have let it through).
    f.at("2026-10-26T06:30:00Z");
    let text = refused_frozen(&say(&f.bot, USER, "deploy master").await);
    assert!(text.contains("in 30m"), "{text}");
    f.at("2026-10-26T07:00:00Z");
    let asked = say(&f.bot, USER, "deploy master").await;
    assert_eq!(asked.outcome, Outcome::Confirm, "{}", asked.to_plain_text());

    // Next Friday Prague is on CET: 15:30 UTC is 16:30 there, frozen; 14:30 UTC is not.
    f.at("2026-10-30T14:30:00Z");
    let asked = say(&f.bot, USER, "deploy master").await;
    assert_eq!(asked.outcome, Outcome::Confirm, "{}", asked.to_plain_text());
    f.at("2026-10-30T15:30:00Z");
    refused_frozen(&say(&f.bot, USER, "deploy master").await);
}

#[tokio::test]
async fn new_york_weekend_spans_the_november_change_and_holidays_freeze_whole_days() {
    let f = Frozen::start();
    // Fri 30 Oct 2026 16:30 EDT: frozen until Mon 2 Nov 08:00 EST = 13:00 UTC.
    f.at("2026-10-30T20:30:00Z");
    let text = refused_frozen(&say(&f.bot, USER, "switch staging api green").await);
    assert!(
        text.contains("Fri 16:00 - Mon 08:00 America/New_York"),
        "{text}"
    );
    assert!(text.contains("Mon 02 Nov 08:00 EST"), "{text}");
    assert!(text.contains("in 2d 16h 30m"), "{text}");
    refused_frozen(&say(&f.bot, USER, "deploy staging").await);
    refused_frozen(&say(&f.bot, USER, "rollback staging").await);

    // Mon 12:30 UTC is 07:30 EST: still frozen; 13:00 UTC is 08:00: open.
    f.at("2026-11-02T12:30:00Z");
    refused_frozen(&say(&f.bot, USER, "switch staging api green").await);
    f.at("2026-11-02T13:00:00Z");
    let done = say(&f.bot, USER, "switch staging api green").await;
    assert_eq!(done.outcome, Outcome::Done, "{}", done.to_plain_text());

    // The holidays, to the end of 4 Jan New York time; where the weekend window
    // overlaps them, the one that ends later is named.
    f.at("2027-01-04T12:00:00Z");
    let text = refused_frozen(&say(&f.bot, USER, "switch staging api blue").await);
    assert!(text.contains("2026-12-20 .. 2027-01-04"), "{text}");
    assert!(text.contains("Tue 05 Jan 00:00 EST"), "{text}");
    f.at("2027-01-05T04:59:00Z");
    refused_frozen(&say(&f.bot, USER, "switch staging api blue").await);
    f.at("2027-01-05T05:00:00Z");
    let done = say(&f.bot, USER, "switch staging api blue").await;
    assert_eq!(done.outcome, Outcome::Done, "{}", done.to_plain_text());

    // Christmas, globally: master too, on Prague's calendar.
    f.at("2026-12-25T12:00:00Z");
    let text = refused_frozen(&say(&f.bot, USER, "deploy master").await);
    assert!(
        text.contains("2026-12-24 .. 2026-12-26 Europe/Prague"),
        "{text}"
    );
}

#[tokio::test]
async fn an_override_group_member_gets_through_and_it_is_recorded_and_announced() {
    let f = Frozen::start();
    f.at("2026-10-24T10:00:00Z");
    let text = refused_frozen(&say(&f.bot, USER, "switch master api green").await);
    assert!(text.contains("Members of `admins` may override"), "{text}");

    let not_allowed = say(
        &f.bot,
        USER,
        "rollback master eu override=\"hotfix INC-123\"",
    )
    .await;
    assert_eq!(not_allowed.outcome, Outcome::Rejected);
    assert!(
        not_allowed
            .to_plain_text()
            .contains("only `admins` may override the freeze on *master*"),
        "{}",
        not_allowed.to_plain_text()
    );

    // master is protected: the override is confirmed first, then runs.
    let asked = say(
        &f.bot,
        ADMIN,
        "rollback master eu override=\"hotfix INC-123\"",
    )
    .await;
    assert_eq!(asked.outcome, Outcome::Confirm, "{}", asked.to_plain_text());
    let done = click(&f.bot, ADMIN, &asked, "Yes").await;
    let text = done.to_plain_text();
    assert_eq!(done.outcome, Outcome::Done, "{text}");
    assert!(
        text.contains(
            "<@U0ADMIN> overrides the freeze `Fri 16:00 – Mon 08:00 Europe/Prague` on *master*"
        ),
        "{text}"
    );
    assert!(
        text.contains("\"hotfix INC-123\""),
        "quoted text kept: {text}"
    );

    let history = f
        .store
        .history(Some("master"), 0, 20)
        .await
        .expect("history");
    assert!(
        history.iter().any(|r| r.user == ADMIN
            && r.outcome
                == "override of freeze `Fri 16:00 – Mon 08:00 Europe/Prague`: hotfix INC-123"),
        "{history:#?}"
    );
    assert!(
        history.iter().any(|r| r.user == ADMIN
            && r.args.contains("override=hotfix INC-123")
            && r.outcome.starts_with("ok")),
        "{history:#?}"
    );
    assert!(
        history
            .iter()
            .any(|r| r.user == USER && r.outcome.starts_with("refused: :snowflake:")),
        "refusals are recorded: {history:#?}"
    );
    let now = f.bot.now();
    let posted = f
        .store
        .lease_messages("slack", "test", now, now + Duration::from_secs(1), 10)
        .await
        .expect("outbox");
    assert!(
        posted.iter().any(|m| m.route["channel"] == "C0ANNOUNCE"
            && m.body.to_string().contains("overrides the freeze")),
        "announced: {posted:#?}"
    );
}

#[test]
fn bad_windows_are_refused_with_their_position() {
    let errors = bot_core::load_strs_with_env(
        common::COMMANDS,
        &edit(common::INSTANCES).replace(
            "America/New_York\n        - 2026",
            "America/NewYork\n        - 2026",
        ),
        &|_| None,
    )
    .expect_err("a zone that does not exist");
    let text = errors.to_string();
    assert!(
        text.contains("`America/NewYork` is not an IANA time zone"),
        "{text}"
    );
    assert!(text.contains("instances.yaml:"), "{text}");
}
