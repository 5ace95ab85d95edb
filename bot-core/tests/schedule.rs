//! Deploys scheduled for later, on a fixed clock: `deploy staging at 18:00` is read
//! in the requester's time zone (from the chat platform) or the zone named, said
//! back in it, listed by `scheduled`, cancelled by `unschedule` (its requester or an
//! admin), and when its time comes it is started by whoever looks, once, going
//! through every check a deploy goes through then: a freeze that began meanwhile
//! refuses it, and the requester is told.

use crate::common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bot_core::adapters::memory_switch::MemorySwitch;
use bot_core::adapters::store::memory::MemoryStore;
use bot_core::ports::{People, RunStatus, Store};
use bot_core::{Bot, Outcome, Reply, Request};
use common::{shipped_with, RecordingProbe};

const ALICE: &str = "U0DEPLOYER";
const ADMIN: &str = "U0ADMIN";
const CHANNEL: &str = "D0ALICE";

/// Alice is in Prague; everyone else is unknown to the chat platform.
struct Prague;

#[async_trait]
impl People for Prague {
    async fn time_zone(&self, user: &str) -> Option<String> {
        (user == ALICE).then(|| "Europe/Prague".to_owned())
    }
}

/// Staging frozen over New Year (New York's wall clock).
fn edit(yaml: &str) -> String {
    yaml.replacen(
        "  staging:\n    aliases: [stage, stg, preprod]\n",
        "  staging:\n    aliases: [stage, stg, preprod]\n    freeze:\n      windows: [\"2026-12-31 .. 2027-01-01 America/New_York\"]\n",
        1,
    )
}

struct World {
    bot: Bot,
    store: Arc<dyn Store>,
    now: Arc<AtomicU64>,
    asked: AtomicU64,
}

impl World {
    fn start() -> Self {
        let config = shipped_with(&[], edit);
        let now = Arc::new(AtomicU64::new(0));
        let clock = now.clone();
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let bot = Bot::builder(config)
            .probe(Arc::new(RecordingProbe::default()))
            .switch_all(Arc::new(MemorySwitch::new()))
            .store(store.clone())
            .people(Arc::new(Prague))
            .clock(Arc::new(move || {
                UNIX_EPOCH + Duration::from_secs(clock.load(Ordering::SeqCst))
            }))
            .build();
        let w = Self {
            bot,
            store,
            now,
            asked: AtomicU64::new(0),
        };
        // Monday 7 December 2026, 16:00 UTC (17:00 in Prague).
        w.at("2026-12-07T16:00:00Z");
        w
    }

    fn at(&self, rfc3339: &str) {
        let t: SystemTime = humantime::parse_rfc3339(rfc3339).expect("time");
        let secs = t.duration_since(UNIX_EPOCH).expect("after 1970").as_secs();
        self.now.store(secs, Ordering::SeqCst);
    }

    /// `text` from `user`, in a conversation whose answers go through the outbox.
    async fn say(&self, user: &str, text: &str) -> Reply {
        let n = self.asked.fetch_add(1, Ordering::SeqCst);
        let mut request = Request::text(user, text);
        request.channel = Some(CHANNEL.to_owned());
        request.reply_to = Some(format!("reply-{n}"));
        let reply = self.bot.handle(request).await;
        if reply.outcome != Outcome::Confirm {
            return reply;
        }
        let yes = reply
            .all_buttons()
            .next()
            .map(|b| b.value.clone())
            .expect("a yes button");
        let mut click = Request::button(user, yes);
        click.channel = Some(CHANNEL.to_owned());
        self.bot.handle(click).await
    }

    /// Starts whatever is due, as the server's takeover loop does every second.
    async fn tick(&self) -> Vec<String> {
        let due = self
            .bot
            .take_over_runs(16, None)
            .await
            .expect("the store answers");
        let mut ids = Vec::new();
        for (id, work) in due {
            work.await;
            ids.push(id);
        }
        ids
    }

    /// The id in a "Scheduled" reply.
    fn id(reply: &Reply) -> String {
        let text = reply.to_plain_text();
        let at = text.find("id `").expect("an id") + 4;
        text[at..at + 8].to_owned()
    }
}

#[tokio::test]
async fn a_time_of_day_is_the_requesters_and_is_said_back_in_their_zone() {
    let w = World::start();
    let reply = w.say(ALICE, "deploy staging at 18:00").await;
    let text = reply.to_plain_text();
    assert_eq!(reply.outcome, Outcome::Done, "{text}");
    assert!(
        text.contains("Scheduled `deploy staging` for Mon 7 Dec 18:00 (Europe/Prague"),
        "{text}"
    );
    // 18:00 in Prague is 17:00 UTC, as a Slack date token for every reader.
    let epoch = humantime::parse_rfc3339("2026-12-07T17:00:00Z")
        .expect("time")
        .duration_since(UNIX_EPOCH)
        .expect("epoch")
        .as_secs();
    assert!(text.contains(&format!("<!date^{epoch}^")), "{text}");

    // A zone named wins; someone the platform does not know is on UTC.
    let reply = w
        .say(ADMIN, "deploy staging tomorrow 07:30 America/New_York")
        .await;
    assert!(
        reply
            .to_plain_text()
            .contains("for Tue 8 Dec 07:30 (America/New_York"),
        "{}",
        reply.to_plain_text()
    );
    let reply = w.say(ADMIN, "deploy staging at 18:00").await;
    assert!(
        reply.to_plain_text().contains("for Mon 7 Dec 18:00 (UTC"),
        "{}",
        reply.to_plain_text()
    );

    let listed = w.say(ALICE, "scheduled staging").await.to_plain_text();
    let rows: Vec<&str> = listed.lines().filter(|l| l.contains("• `")).collect();
    assert_eq!(rows.len(), 3, "{listed}");
    assert!(
        rows[0].contains("18:00 (Europe/Prague") && rows[0].contains("in 1h"),
        "soonest first: {listed}"
    );
    assert!(rows[2].contains("America/New_York"), "{listed}");
}

#[tokio::test]
async fn words_that_read_as_a_time_but_make_none_are_refused() {
    let w = World::start();
    for (text, why) in [
        ("deploy staging tomorrow", "needs a time of day"),
        ("deploy staging today 08:00", "has passed already"),
        ("deploy staging in 45d", "more than 30 days ahead"),
    ] {
        let reply = w.say(ALICE, text).await;
        let said = reply.to_plain_text();
        assert_eq!(reply.outcome, Outcome::Rejected, "{text}: {said}");
        assert!(
            said.contains(why) && said.contains("Nothing was deployed or scheduled"),
            "{text}: {said}"
        );
    }
    assert!(w.tick().await.is_empty(), "nothing was scheduled");
}

#[tokio::test]
async fn it_starts_once_at_its_time_and_a_freeze_begun_meanwhile_refuses_it() {
    let w = World::start();
    w.at("2026-12-31T12:00:00Z");
    let reply = w.say(ALICE, "deploy staging in 20h").await;
    assert_eq!(reply.outcome, Outcome::Done, "{}", reply.to_plain_text());
    let id = World::id(&reply);
    // Not yet.
    w.at("2027-01-01T07:59:00Z");
    assert!(w.tick().await.is_empty(), "nothing starts before its time");
    // Its time: the freeze (all of New Year's Day in New York) refuses it.
    w.at("2027-01-01T08:00:01Z");
    assert_eq!(w.tick().await.len(), 1, "started once");
    assert!(w.tick().await.is_empty(), "and only once");
    let run = w
        .store
        .run(&format!("start:schedule:{id}"))
        .await
        .expect("store")
        .expect("the scheduled run");
    assert_ne!(run.status, RunStatus::Pending);
    let told = w
        .store
        .message(&format!("schedule:{id}"))
        .await
        .expect("store")
        .expect("the requester's message");
    let body = told.body.to_string();
    assert!(
        body.contains("is frozen"),
        "the requester is told: {body} {told:?} {run:?}"
    );
    let listed = w.say(ALICE, "scheduled").await.to_plain_text();
    assert!(listed.contains("Nothing is scheduled"), "{listed}");
}

#[tokio::test]
async fn unschedule_stops_it_and_is_the_requesters_or_an_admins() {
    let w = World::start();
    let reply = w.say(ALICE, "deploy staging in 30m").await;
    let id = World::id(&reply);
    let other = w.say("U0DEMO2", &format!("unschedule {id}")).await;
    assert_eq!(
        other.outcome,
        Outcome::Rejected,
        "{}",
        other.to_plain_text()
    );
    let mine = w.say(ALICE, &format!("unschedule {id}")).await;
    assert_eq!(mine.outcome, Outcome::Done, "{}", mine.to_plain_text());
    w.at("2026-12-07T17:00:00Z");
    assert!(w.tick().await.is_empty(), "a cancelled deploy never starts");
    let again = w.say(ALICE, &format!("unschedule {id}")).await;
    assert!(
        again.to_plain_text().contains("not waiting any more"),
        "{}",
        again.to_plain_text()
    );

    // An admin cancels anyone's.
    let reply = w.say(ALICE, "deploy staging in 30m").await;
    let id = World::id(&reply);
    let admin = w.say(ADMIN, &format!("unschedule {id}")).await;
    assert_eq!(admin.outcome, Outcome::Done, "{}", admin.to_plain_text());
}

#[tokio::test]
async fn a_locked_environment_at_its_time_puts_it_in_line() {
    let w = World::start();
    let reply = w.say(ALICE, "deploy staging in 30m").await;
    let id = World::id(&reply);
    let lock = w.say(ADMIN, "lock staging release checks").await;
    assert_eq!(lock.outcome, Outcome::Done, "{}", lock.to_plain_text());
    w.at("2026-12-07T16:30:01Z");
    assert_eq!(w.tick().await.len(), 1);
    let told = w
        .store
        .message(&format!("schedule:{id}"))
        .await
        .expect("store")
        .expect("the requester's message")
        .body
        .to_string();
    assert!(
        told.contains("in line for *staging*") && told.contains("Scheduled by <@U0DEPLOYER>"),
        "{told}"
    );
    let line = w.say(ALICE, "queue staging").await.to_plain_text();
    assert!(
        line.contains("<@U0DEPLOYER>") && line.contains("`deploy staging`"),
        "{line}"
    );
}
