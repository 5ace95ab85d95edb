//! The promises every [`Store`] keeps: deliveries admitted once and leased to one
//! worker, messages delivered newest-version-only, buttons claimed once and only in
//! their conversation, locks leased and released only by their holder, runs driven
//! by one fenced owner, and an audit log that is a hash chain read newest first.
//! Names are unique per run, so a shared database can run the suite alongside others.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::json;

use crate::ports::approvals::{Approval, ApprovalStatus, Decision, Vote};
use crate::ports::store::{
    verify_chain, Admitted, Attempt, AuditRecord, ButtonSet, Claim, Inbound, Lock, LockOutcome,
    Queued, Run, RunStatus, Store, Unlocked, GENESIS,
};

/// Runs every check on `store`.
pub async fn store(store: Arc<dyn Store>) {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let run = &run[..12];
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    store.ping().await.expect("the store answers a ping");
    inbox(&*store, run, t0).await;
    answer(&*store, run, t0).await;
    one_admission_wins(store.clone(), run, t0).await;
    outbox(&*store, run, t0).await;
    doubt(&*store, run, t0).await;
    buttons(&*store, run, t0).await;
    one_claim_wins(store.clone(), run, t0).await;
    locks(&*store, run, t0).await;
    one_lock_wins(store.clone(), run, t0).await;
    unlock_races_deploys(store.clone(), run, t0).await;
    runs(&*store, run, t0).await;
    run_orders(&*store, run, t0).await;
    pending_runs(&*store, run, t0).await;
    audit(&*store, run, t0).await;
    approvals(&*store, run, t0).await;
    one_approval_wins(store.clone(), store.clone(), run, t0).await;
    super::watch::watch(&*store, run, t0).await;
    deploy_queue(store.clone(), run, t0).await;
    history(&*store, run, t0).await;
}

/// `prune_history`: what expired or finished before the cut goes, except the newest
/// finished run of an environment and action; running runs stay. Its rows are ten
/// years before the others, so a store shared by concurrent suites loses nothing
/// of theirs.
async fn history(store: &dyn Store, run: &str, t0: SystemTime) {
    let year = Duration::from_secs(365 * 24 * 3600);
    let old = t0 - year * 10;
    let cut = t0 - year * 9;
    let stale = format!("stale-{run}");
    let fresh = format!("fresh-{run}");
    store
        .issue_buttons(&set(&stale, None, old))
        .await
        .expect("issue");
    store
        .issue_buttons(&set(&fresh, None, t0 + Duration::from_secs(600)))
        .await
        .expect("issue");
    let env = format!("env-old-{run}");
    let finished = |n: u64, status: RunStatus| Run {
        id: format!("old-{n}-{run}"),
        action: "deploy".into(),
        user: "U1".into(),
        env: Some(env.clone()),
        invocation: json!({"command": "deploy"}),
        message: None,
        state: json!({"step": "done"}),
        status,
        fence: 1,
        owner: "replica-a".into(),
        lease_until: old + Duration::from_secs(n),
        started: old + Duration::from_secs(n),
    };
    for n in 1..=3 {
        let mut r = finished(n, RunStatus::Running);
        // Held far ahead, so no takeover elsewhere ever reaches for it.
        r.lease_until = t0 + year * 100;
        assert_eq!(store.start_run(&r, None).await, Ok(true));
        if n < 3 {
            store
                .finish_run(&r.id, 1, &r.state, RunStatus::Done)
                .await
                .expect("finish");
        }
    }
    let mut old_request = approval(&format!("old-{run}"), 1, old);
    old_request.expires = old + Duration::from_secs(3600);
    store.request_approval(&old_request).await.expect("request");
    let gone = store.prune_history(cut).await.expect("prune");
    assert_eq!(
        store.button_set(&stale).await,
        Ok(None),
        "an expired set goes"
    );
    assert!(
        matches!(store.button_set(&fresh).await, Ok(Some(_))),
        "a live set stays"
    );
    assert_eq!(
        store.run(&format!("old-1-{run}")).await,
        Ok(None),
        "an old finished run goes"
    );
    assert!(
        matches!(store.run(&format!("old-2-{run}")).await, Ok(Some(_))),
        "the newest finished run of an environment and action stays"
    );
    assert!(
        matches!(store.run(&format!("old-3-{run}")).await, Ok(Some(r)) if r.status == RunStatus::Running),
        "a running run is never pruned"
    );
    assert_eq!(
        store.approval(&format!("old-{run}")).await,
        Ok(None),
        "an expired request goes"
    );
    assert!(
        gone >= 2,
        "the older finished run and the old request (a store may drop stale sets sooner): {gone}"
    );
    // The running one ends, so no later suite finds a run to take over.
    store
        .finish_run(&format!("old-3-{run}"), 1, &json!({}), RunStatus::Failed)
        .await
        .expect("finish");
}

fn inbound(key: &str, at: SystemTime) -> Inbound {
    Inbound {
        key: key.to_owned(),
        transport: "slack".into(),
        payload: json!({"request": {"user": "U1", "text": "status"}}),
        received: at,
    }
}

/// `answer_inbound`: the final reply is written and the delivery marked processed,
/// together; several answers at once each land on their own message.
async fn answer(store: &dyn Store, run: &str, t0: SystemTime) {
    let lease = Duration::from_secs(30);
    let transport = format!("answer-{run}");
    let keys: Vec<String> = (0..3).map(|i| format!("Ans{i}-{run}")).collect();
    for key in &keys {
        assert_eq!(
            store
                .admit(&inbound(key, t0), "replica-a", t0 + lease)
                .await,
            Ok(Admitted::New)
        );
        store
            .open_message(key, &transport, &json!({"channel": "D1"}), "U1: help", t0)
            .await
            .expect("open");
    }
    let answers = keys.iter().map(|key| async move {
        store
            .answer_inbound(key, key, &json!({"text": format!("answer to {key}")}))
            .await
    });
    for answered in futures::future::join_all(answers).await {
        answered.expect("answered");
    }
    for key in &keys {
        let m = store
            .message(key)
            .await
            .expect("read")
            .expect("the message");
        assert_eq!(m.body, json!({"text": format!("answer to {key}")}));
        assert!(m.last, "the answer is the message's final content");
    }
    assert_eq!(
        store.undelivered(&transport).await,
        Ok(3),
        "three answers to send"
    );
    let later = t0 + lease * 2;
    let leased = store
        .lease_inbound("replica-b", later, later + lease, 1000)
        .await
        .expect("lease");
    assert!(
        leased.iter().all(|i| !keys.contains(&i.key)),
        "an answered delivery is not worked on again: {leased:?}"
    );
    assert_eq!(
        store
            .admit(&inbound(&keys[0], later), "replica-b", later + lease)
            .await,
        Ok(Admitted::Duplicate),
        "an answered delivery still deduplicates"
    );
}

async fn inbox(store: &dyn Store, run: &str, t0: SystemTime) {
    let lease = Duration::from_secs(30);
    let key = format!("Ev-{run}");
    let item = inbound(&key, t0);
    assert_eq!(
        store.admit(&item, "replica-a", t0 + lease).await,
        Ok(Admitted::New),
        "a new delivery is admitted"
    );
    assert_eq!(
        store.admit(&item, "replica-b", t0 + lease).await,
        Ok(Admitted::Duplicate),
        "a retried delivery is a duplicate, whichever replica it reaches"
    );
    let mine = |leased: Vec<Inbound>| {
        leased
            .into_iter()
            .filter(|i| i.key.ends_with(run))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        mine(
            store
                .lease_inbound("replica-b", t0, t0 + lease, 100)
                .await
                .expect("lease")
        ),
        vec![],
        "a delivery leased to its admitter is not handed to another replica"
    );
    assert_eq!(
        store.renew_inbound(&key, "replica-a", t0 + lease * 2).await,
        Ok(true),
        "the owner renews its lease"
    );
    assert_eq!(
        store.renew_inbound(&key, "replica-b", t0 + lease * 2).await,
        Ok(false),
        "another replica cannot renew it"
    );
    // The admitter dies: once its lease lapses another replica takes the delivery, whole.
    let later = t0 + lease * 2 + Duration::from_secs(1);
    assert_eq!(
        mine(
            store
                .lease_inbound("replica-b", later, later + lease, 100)
                .await
                .expect("lease")
        ),
        vec![item.clone()],
        "a delivery whose lease lapsed is leased again, payload intact"
    );
    store.complete_inbound(&key).await.expect("complete");
    assert_eq!(
        mine(
            store
                .lease_inbound("replica-c", later + lease * 2, later + lease * 3, 100)
                .await
                .expect("lease")
        ),
        vec![],
        "a processed delivery is not leased again"
    );
    assert_eq!(
        store.admit(&item, "replica-c", later + lease).await,
        Ok(Admitted::Duplicate),
        "a processed delivery still deduplicates"
    );
}

async fn one_admission_wins(store: Arc<dyn Store>, run: &str, t0: SystemTime) {
    let key = format!("race-{run}");
    let tries = (0..8).map(|i| {
        let store = store.clone();
        let item = inbound(&key, t0);
        tokio::spawn(async move {
            store
                .admit(&item, &format!("replica-{i}"), t0 + Duration::from_secs(30))
                .await
        })
    });
    let results = futures::future::join_all(tries).await;
    let new = results
        .iter()
        .filter(|r| matches!(r, Ok(Ok(Admitted::New))))
        .count();
    assert_eq!(
        new, 1,
        "exactly one of 8 simultaneous deliveries is new: {results:?}"
    );
}

/// A message whose attempt may have reached the transport unrecorded (a lapsed lease, an
/// unsure answer) is leased in doubt until a delivery is recorded.
async fn doubt(store: &dyn Store, run: &str, t0: SystemTime) {
    let id = format!("doubt-{run}");
    let transport = format!("doubt-{run}");
    let lease = Duration::from_secs(30);
    let lease_one = |owner: &'static str, at: SystemTime| {
        let transport = transport.clone();
        async move {
            let mut got = store
                .lease_messages(&transport, owner, at, at + lease, 10)
                .await
                .expect("lease");
            assert_eq!(got.len(), 1, "one message due at {at:?}: {got:?}");
            got.remove(0)
        }
    };
    store
        .open_message(&id, &transport, &json!({"channel": "D1"}), "U1: help", t0)
        .await
        .expect("open");
    store
        .put_message(&id, &json!({"text": "help"}), true)
        .await
        .expect("put");
    let first = lease_one("a", t0).await;
    assert!(!first.in_doubt, "a message never tried is not in doubt");
    // "a" dies holding it: the next sender cannot know whether its post went out.
    let taken = lease_one("b", t0 + lease).await;
    assert!(taken.in_doubt, "a lapsed lease leaves the message in doubt");
    // "b" hears nothing back either.
    let retry = t0 + lease + Duration::from_secs(1);
    store
        .record_attempt(&id, "b", &Attempt::Unsure { retry_at: retry })
        .await
        .expect("record unsure");
    let m = store.message(&id).await.expect("read").expect("message");
    assert_eq!(
        (m.attempts, m.delivered),
        (1, 0),
        "an unsure attempt counts as a failure"
    );
    let again = lease_one("c", retry).await;
    assert!(
        again.in_doubt,
        "an unsure attempt leaves the message in doubt"
    );
    store
        .record_attempt(
            &id,
            "c",
            &Attempt::Delivered {
                version: again.version,
                state: json!({"posted": "1.000100"}),
                next_at: retry,
            },
        )
        .await
        .expect("record delivered");
    let m = store.message(&id).await.expect("read").expect("message");
    assert!(!m.in_doubt, "a recorded delivery settles the doubt");
    assert_eq!(m.delivered, m.version);
}

async fn outbox(store: &dyn Store, run: &str, t0: SystemTime) {
    let id = format!("msg-{run}");
    let transport = format!("test-{run}");
    let route = json!({"channel": "D1"});
    let lease = Duration::from_secs(30);
    store
        .open_message(&id, &transport, &route, "U1 in D1: status", t0)
        .await
        .expect("open");
    store
        .open_message(&id, &transport, &json!({"channel": "D9"}), "again", t0)
        .await
        .expect("open again");
    assert_eq!(
        store
            .lease_messages(&transport, "a", t0, t0 + lease, 10)
            .await,
        Ok(vec![]),
        "an open message without content is not due"
    );
    store
        .put_message(&id, &json!({"text": "building 10%"}), false)
        .await
        .expect("put");
    store
        .put_message(&id, &json!({"text": "building 50%"}), false)
        .await
        .expect("put");
    assert_eq!(
        store.undelivered(&transport).await,
        Ok(1),
        "one message to deliver"
    );
    let leased = store
        .lease_messages(&transport, "a", t0, t0 + lease, 10)
        .await
        .expect("lease");
    assert_eq!(leased.len(), 1, "{leased:?}");
    let m = &leased[0];
    assert_eq!(m.route, route, "the first route stands");
    assert_eq!(
        m.body,
        json!({"text": "building 50%"}),
        "only the newest content is sent"
    );
    assert_eq!((m.version, m.delivered, m.last), (2, 0, false));
    assert_eq!(m.about, "U1 in D1: status");
    assert_eq!(
        store
            .lease_messages(&transport, "b", t0, t0 + lease, 10)
            .await,
        Ok(vec![]),
        "a leased message is not handed to another sender"
    );
    // Slack answered 503: try again later.
    let retry = t0 + Duration::from_secs(2);
    store
        .record_attempt(
            &id,
            "a",
            &Attempt::Failed {
                retry_at: Some(retry),
            },
        )
        .await
        .expect("record");
    assert_eq!(
        store
            .lease_messages(&transport, "b", t0, t0 + lease, 10)
            .await,
        Ok(vec![]),
        "not before its retry time"
    );
    let again = store
        .lease_messages(&transport, "b", retry, retry + lease, 10)
        .await
        .expect("lease");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1, "failed attempts are counted");
    store
        .put_message(&id, &json!({"text": "done"}), true)
        .await
        .expect("put final");
    // The attempt in flight delivered version 2; version 3 (final) is still due.
    store
        .record_attempt(
            &id,
            "b",
            &Attempt::Delivered {
                version: 2,
                state: json!({"ts": "1.2"}),
                next_at: retry,
            },
        )
        .await
        .expect("record");
    let last = store
        .lease_messages(&transport, "b", retry, retry + lease, 10)
        .await
        .expect("lease");
    assert_eq!(last.len(), 1, "the final version is still due");
    assert_eq!(
        last[0].state,
        json!({"ts": "1.2"}),
        "delivery state is kept"
    );
    assert_eq!(
        (last[0].version, last[0].delivered, last[0].last),
        (3, 2, true)
    );
    assert_eq!(last[0].attempts, 0, "a success resets the attempts");
    store
        .put_message(&id, &json!({"text": "late progress"}), false)
        .await
        .expect("put after final");
    store
        .record_attempt(
            &id,
            "b",
            &Attempt::Delivered {
                version: 3,
                state: json!({"ts": "1.2"}),
                next_at: retry,
            },
        )
        .await
        .expect("record");
    assert_eq!(
        store.undelivered(&transport).await,
        Ok(0),
        "nothing left to deliver"
    );
    let done = store
        .message(&id)
        .await
        .expect("read")
        .expect("the message");
    assert_eq!(
        done.body,
        json!({"text": "done"}),
        "nothing replaces the final content"
    );
    assert_eq!(
        store
            .lease_messages(&transport, "b", retry, retry + lease, 10)
            .await,
        Ok(vec![]),
        "a delivered final message is not due"
    );
    // One that can never be delivered is given up, not retried forever.
    let lost = format!("lost-{run}");
    store
        .open_message(&lost, &transport, &route, "U2", t0)
        .await
        .expect("open");
    store
        .put_message(&lost, &json!({"text": "x"}), true)
        .await
        .expect("put");
    store
        .lease_messages(&transport, "a", t0, t0 + lease, 10)
        .await
        .expect("lease");
    store
        .record_attempt(&lost, "a", &Attempt::Failed { retry_at: None })
        .await
        .expect("record");
    let gone = store
        .message(&lost)
        .await
        .expect("read")
        .expect("the message");
    assert!(gone.given_up, "{gone:?}");
    assert_eq!(
        store
            .lease_messages(&transport, "a", t0 + lease * 10, t0 + lease * 11, 10)
            .await,
        Ok(vec![]),
        "a message given up is never due again"
    );
    let pruned = store.prune_outbox(t0 + lease * 100).await.expect("prune");
    assert!(
        pruned >= 2,
        "delivered and given-up messages are pruned ({pruned})"
    );
    assert_eq!(store.message(&id).await, Ok(None));
}

fn set(id: &str, channel: Option<&str>, expires: SystemTime) -> ButtonSet {
    ButtonSet {
        personal: true,
        id: id.to_owned(),
        actions: vec![json!({"run": "health staging api blue"}), json!("cancel")],
        channel: channel.map(str::to_owned),
        issued_to: "U1".into(),
        expires,
    }
}

async fn buttons(store: &dyn Store, run: &str, t0: SystemTime) {
    let ttl = Duration::from_secs(600);
    let id = format!("set-{run}");
    let issued = set(&id, Some("D1"), t0 + ttl);
    store.issue_buttons(&issued).await.expect("issue buttons");
    assert_eq!(
        store.button_set(&id).await,
        Ok(Some(issued)),
        "a set reads back whole"
    );
    assert_eq!(
        store.claim_button(&id, 0, "U2", Some("C9"), t0).await,
        Ok(Claim::ElsewhereIssued),
        "a click from another conversation is refused"
    );
    assert_eq!(
        store.claim_button(&id, 5, "U2", Some("D1"), t0).await,
        Ok(Claim::Unknown),
        "a button the set does not have is unknown"
    );
    assert_eq!(
        store.claim_button(&id, 0, "U1", Some("D1"), t0).await,
        Ok(Claim::Claimed(json!({"run": "health staging api blue"}))),
        "the first click claims the set and gets what the button does"
    );
    assert_eq!(
        store.claim_button(&id, 1, "U2", Some("D1"), t0).await,
        Ok(Claim::AlreadyUsed { by: "U1".into() }),
        "a second click names who used the set"
    );
    assert_eq!(
        store
            .claim_button(&format!("never-{run}"), 0, "U1", Some("D1"), t0)
            .await,
        Ok(Claim::Unknown),
        "a set never issued is unknown"
    );
    let old = format!("old-{run}");
    store
        .issue_buttons(&set(&old, None, t0 + ttl))
        .await
        .expect("issue buttons");
    assert_eq!(
        store
            .claim_button(&old, 0, "U1", Some("D1"), t0 + ttl + Duration::from_secs(1))
            .await,
        Ok(Claim::Expired),
        "a set past its lifetime is expired"
    );
}

async fn one_claim_wins(store: Arc<dyn Store>, run: &str, t0: SystemTime) {
    let id = format!("race-{run}");
    store
        .issue_buttons(&set(&id, None, t0 + Duration::from_secs(600)))
        .await
        .expect("issue buttons");
    let clicks = (0..8).map(|i| {
        let store = store.clone();
        let id = id.clone();
        tokio::spawn(async move { store.claim_button(&id, 0, &format!("U{i}"), None, t0).await })
    });
    let results = futures::future::join_all(clicks).await;
    let claimed = results
        .iter()
        .filter(|r| matches!(r, Ok(Ok(Claim::Claimed(_)))))
        .count();
    assert_eq!(
        claimed, 1,
        "exactly one of 8 simultaneous clicks claims the set: {results:?}"
    );
}

fn lock(env: &str, holder: &str, since: SystemTime, lease: Duration) -> Lock {
    Lock {
        env: env.to_owned(),
        holder: holder.to_owned(),
        reason: "deploy main".into(),
        since,
        expires: since + lease,
        action: Some("deploy".into()),
        run: Some(format!("run-of-{holder}")),
        fence: 1,
    }
}

async fn locks(store: &dyn Store, run: &str, t0: SystemTime) {
    let env = format!("env-{run}");
    let lease = Duration::from_secs(60);
    let first = lock(&env, "U1", t0, lease);
    assert_eq!(
        store.try_lock(first.clone(), t0).await,
        Ok(LockOutcome::Acquired),
        "a free environment can be locked"
    );
    assert_eq!(
        store.lock_of(&env, t0).await,
        Ok(Some(first.clone())),
        "the lock reads back whole"
    );
    assert_eq!(
        store.try_lock(lock(&env, "U2", t0, lease), t0).await,
        Ok(LockOutcome::HeldBy(first.clone())),
        "a held lock names its holder"
    );
    let renewed_until = t0 + lease * 2;
    assert_eq!(
        store.renew_lock(&first, renewed_until).await,
        Ok(true),
        "the holder renews"
    );
    assert_eq!(
        store
            .lock_of(&env, t0 + lease + Duration::from_secs(1))
            .await
            .map(|l| l.map(|l| l.expires)),
        Ok(Some(renewed_until)),
        "a renewed lease holds past its first expiry"
    );
    let later = renewed_until + Duration::from_secs(1);
    assert_eq!(
        store.lock_of(&env, later).await,
        Ok(None),
        "a lapsed lock is not held"
    );
    let second = lock(&env, "U2", later, lease);
    assert_eq!(
        store.try_lock(second.clone(), later).await,
        Ok(LockOutcome::Acquired),
        "a lapsed lock can be taken"
    );
    assert_eq!(
        store.release(&first).await,
        Ok(false),
        "the lapsed holder releases nothing"
    );
    assert_eq!(
        store.renew_lock(&first, later + lease).await,
        Ok(false),
        "nor renews what is no longer theirs"
    );
    assert_eq!(store.lock_of(&env, later).await, Ok(Some(second.clone())));
    assert_eq!(
        store.release(&second).await,
        Ok(true),
        "the holder releases"
    );
    assert_eq!(store.lock_of(&env, later).await, Ok(None));
    assert_eq!(
        store.unlock(&env, later).await,
        Ok(Unlocked::NotLocked),
        "unlocking a free environment releases nothing"
    );
    let manual = Lock {
        action: None,
        run: None,
        fence: 0,
        ..lock(&env, "U3", later, lease)
    };
    assert_eq!(
        store.try_lock(manual.clone(), later).await,
        Ok(LockOutcome::Acquired)
    );
    assert_eq!(
        store.unlock(&env, later).await,
        Ok(Unlocked::Released(manual)),
        "unlock returns the lock it released"
    );
    // A run's lock: `unlock` never pulls it from under the run while it holds.
    let running = lock(&env, "U4", later, lease);
    assert_eq!(
        store.try_lock(running.clone(), later).await,
        Ok(LockOutcome::Acquired)
    );
    assert_eq!(
        store.unlock(&env, later).await,
        Ok(Unlocked::HeldByRun(running.clone())),
        "a running action's lock is not released by unlock"
    );
    assert_eq!(store.lock_of(&env, later).await, Ok(Some(running.clone())));
    // Taken over: the new driver reclaims it under its new fencing token, even
    // lapsed, as long as nobody took it since; the old token is fenced off.
    let lapsed = later + lease + Duration::from_secs(1);
    let reclaimed = Lock {
        fence: 2,
        expires: lapsed + lease,
        ..running.clone()
    };
    assert_eq!(
        store.reclaim_lock(&reclaimed).await,
        Ok(true),
        "the run's lock is reclaimed by its new driver"
    );
    assert_eq!(
        store.renew_lock(&running, lapsed + lease).await,
        Ok(false),
        "the old driver's token no longer renews it"
    );
    assert_eq!(store.release(&running).await, Ok(false), "nor releases it");
    assert_eq!(
        store.lock_of(&env, lapsed).await,
        Ok(Some(reclaimed.clone()))
    );
    let after = lapsed + lease * 2;
    assert_eq!(
        store.unlock(&env, after).await,
        Ok(Unlocked::Released(reclaimed.clone())),
        "a lapsed run lock can be unlocked"
    );
    assert_eq!(
        store.reclaim_lock(&reclaimed).await,
        Ok(false),
        "a run whose lock was released since cannot reclaim it"
    );
    let someone = lock(&env, "U5", after, lease);
    assert_eq!(
        store.try_lock(someone.clone(), after).await,
        Ok(LockOutcome::Acquired)
    );
    assert_eq!(
        store
            .reclaim_lock(&Lock {
                fence: 3,
                ..reclaimed
            })
            .await,
        Ok(false),
        "nor one someone else holds now"
    );
    assert_eq!(store.release(&someone).await, Ok(true));
}

/// `unlock` against deploys taking the lock, in a loop: whatever interleaving, a
/// deploy that took the lock still holds it until it releases it.
async fn unlock_races_deploys(store: Arc<dyn Store>, run: &str, t0: SystemTime) {
    let env = format!("unlock-race-{run}");
    let lease = Duration::from_secs(60);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let unlocker = tokio::spawn({
        let (store, env, stop) = (store.clone(), env.clone(), stop.clone());
        async move {
            let mut released = 0u32;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                if let Ok(Unlocked::Released(l)) = store.unlock(&env, t0).await {
                    assert!(
                        l.run.is_none(),
                        "unlock released a running deploy's lock: {l:?}"
                    );
                    released += 1;
                }
                tokio::task::yield_now().await;
            }
            released
        }
    });
    let mut held = 0;
    for i in 0..60u64 {
        let since = t0 + Duration::from_millis(i);
        let deploy = Lock {
            run: Some(format!("run-{run}-{i}")),
            ..lock(&env, &format!("U{i}"), since, lease)
        };
        let hand = Lock {
            action: None,
            run: None,
            fence: 0,
            reason: "maintenance".into(),
            ..lock(&env, "UHAND", since, lease)
        };
        if i % 3 == 0 {
            // Now and then someone locks by hand: unlock has something to release.
            let _ = store.try_lock(hand, t0).await;
            tokio::task::yield_now().await;
        }
        if let Ok(LockOutcome::Acquired) = store.try_lock(deploy.clone(), t0).await {
            held += 1;
            for _ in 0..3 {
                tokio::task::yield_now().await;
                assert_eq!(
                    store.lock_of(&env, t0).await.map(|l| l.and_then(|l| l.run)),
                    Ok(deploy.run.clone()),
                    "a running deploy lost its lock to unlock"
                );
            }
            assert_eq!(
                store.renew_lock(&deploy, t0 + lease).await,
                Ok(true),
                "the deploy still renews its lock"
            );
            assert_eq!(store.release(&deploy).await, Ok(true), "and releases it");
        }
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let released = unlocker.await.expect("the unlock loop ends");
    assert!(held > 0, "some deploys took the lock");
    assert!(released > 0, "unlock released the hand locks");
}

async fn one_lock_wins(store: Arc<dyn Store>, run: &str, t0: SystemTime) {
    let env = format!("race-{run}");
    let tries = (0..8).map(|i| {
        let store = store.clone();
        let l = lock(&env, &format!("U{i}"), t0, Duration::from_secs(60));
        tokio::spawn(async move { store.try_lock(l, t0).await })
    });
    let results = futures::future::join_all(tries).await;
    let acquired = results
        .iter()
        .filter(|r| matches!(r, Ok(Ok(LockOutcome::Acquired))))
        .count();
    assert_eq!(
        acquired, 1,
        "exactly one of 8 simultaneous deploys locks: {results:?}"
    );
}

/// Orders left for a running run: read back in the order given, after a sequence
/// number; none for a run that is not running.
async fn run_orders(store: &dyn Store, run: &str, t0: SystemTime) {
    let id = format!("ordered-{run}");
    let canary = Run {
        id: id.clone(),
        action: "deploy".into(),
        user: "U1".into(),
        env: Some(format!("env-ordered-{run}")),
        invocation: json!({}),
        message: None,
        state: json!({}),
        status: RunStatus::Running,
        fence: 1,
        owner: "replica-a".into(),
        lease_until: t0 + Duration::from_secs(30),
        started: t0,
    };
    assert_eq!(store.start_run(&canary, None).await, Ok(true));
    assert_eq!(
        store
            .order_run(&format!("nobody-{run}"), "pause", "U2", t0)
            .await,
        Ok(None),
        "no order for a run that does not exist"
    );
    let pause = store
        .order_run(&id, "pause", "U2", t0)
        .await
        .expect("order")
        .expect("a running run takes orders");
    let promote = store
        .order_run(&id, "promote", "U3", t0 + Duration::from_secs(1))
        .await
        .expect("order")
        .expect("a running run takes orders");
    assert!(promote > pause, "sequence numbers rise");
    let all = store.run_orders(&id, 0).await.expect("orders");
    let given: Vec<(&str, &str)> = all
        .iter()
        .map(|o| (o.order.as_str(), o.user.as_str()))
        .collect();
    assert_eq!(given, [("pause", "U2"), ("promote", "U3")]);
    assert_eq!(all[1].at, t0 + Duration::from_secs(1));
    let after = store.run_orders(&id, pause).await.expect("orders");
    assert_eq!(after.len(), 1, "only the orders after a sequence number");
    assert_eq!(after[0].order, "promote");
    assert_eq!(
        store.finish_run(&id, 1, &json!({}), RunStatus::Done).await,
        Ok(true)
    );
    assert_eq!(
        store.order_run(&id, "abort", "U2", t0).await,
        Ok(None),
        "a finished run takes no orders"
    );
}

async fn runs(store: &dyn Store, run: &str, t0: SystemTime) {
    let lease = Duration::from_secs(30);
    let env = format!("env-{run}");
    let key = format!("Ev-run-{run}");
    store
        .admit(&inbound(&key, t0), "replica-a", t0 + lease)
        .await
        .expect("admit");
    let deploy = Run {
        id: format!("run-{run}"),
        action: "deploy".into(),
        user: "U1".into(),
        env: Some(env.clone()),
        invocation: json!({"command": "deploy", "target": {"k": "env", "env": env}}),
        message: Some(key.clone()),
        state: json!({"step": "requested"}),
        status: RunStatus::Running,
        fence: 1,
        owner: "replica-a".into(),
        lease_until: t0 + lease,
        started: t0,
    };
    assert_eq!(store.start_run(&deploy, Some(&key)).await, Ok(true));
    assert_eq!(
        store.start_run(&deploy, None).await,
        Ok(false),
        "a run id is started once"
    );
    let ours = |leased: Vec<Inbound>| leased.into_iter().any(|i| i.key == key);
    assert!(
        !ours(
            store
                .lease_inbound("replica-b", t0 + lease * 3, t0 + lease * 4, 1000)
                .await
                .expect("lease")
        ),
        "the delivery handed off to a run is not processed again"
    );
    assert_eq!(
        store.run(&deploy.id).await,
        Ok(Some(deploy.clone())),
        "a run reads back whole"
    );
    let building =
        json!({"step": "building", "queue_item": "http://127.0.0.1:18090/queue/item/7/"});
    assert_eq!(
        store
            .save_run(&deploy.id, 1, &building, RunStatus::Running, t0 + lease * 2)
            .await,
        Ok(true),
        "the driver saves its progress"
    );
    let ours_running = |runs: Vec<Run>| {
        runs.into_iter()
            .filter(|r| r.id == deploy.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ours_running(
            store
                .take_over_runs("replica-b", t0 + lease, t0 + lease * 2, 1000)
                .await
                .expect("take over")
        ),
        vec![],
        "a run whose driver renewed its lease is not taken over"
    );
    // replica-a dies; after its lease replica-b takes the run over where it stood.
    let later = t0 + lease * 2 + Duration::from_secs(1);
    let taken = ours_running(
        store
            .take_over_runs("replica-b", later, later + lease, 1000)
            .await
            .expect("take over"),
    );
    assert_eq!(taken.len(), 1, "the abandoned run is taken over");
    assert_eq!(taken[0].fence, 2, "with a new fencing token");
    assert_eq!(taken[0].owner, "replica-b");
    assert_eq!(taken[0].state, building, "where it stood");
    assert_eq!(
        store
            .save_run(
                &deploy.id,
                1,
                &json!({"step": "switching"}),
                RunStatus::Running,
                later + lease
            )
            .await,
        Ok(false),
        "the old driver's writes are fenced off"
    );
    let held = Lock {
        fence: 2,
        run: Some(deploy.id.clone()),
        ..lock(&env, "U1", t0, lease * 10)
    };
    assert_eq!(
        store.try_lock(held.clone(), later).await,
        Ok(LockOutcome::Acquired)
    );
    assert_eq!(
        store
            .finish_run(&deploy.id, 1, &json!({"step": "done"}), RunStatus::Done)
            .await,
        Ok(false),
        "the old driver cannot finish it"
    );
    assert_eq!(
        store.lock_of(&env, later).await,
        Ok(Some(held.clone())),
        "nor release its lock"
    );
    assert_eq!(
        store
            .finish_run(&deploy.id, 2, &json!({"step": "done"}), RunStatus::Done)
            .await,
        Ok(true),
        "the driver finishes it"
    );
    assert_eq!(
        store.lock_of(&env, later).await,
        Ok(None),
        "and its lock is released with it"
    );
    assert_eq!(
        store
            .save_run(
                &deploy.id,
                2,
                &json!({"step": "switching"}),
                RunStatus::Running,
                later + lease * 9
            )
            .await,
        Ok(false),
        "a late write never brings a finished run back"
    );
    assert_eq!(
        ours_running(
            store
                .take_over_runs("replica-c", later + lease * 5, later + lease * 6, 1000)
                .await
                .expect("take over")
        ),
        vec![],
        "a finished run is never taken over"
    );
    let recent = store.recent_runs(Some(&env), 10).await.expect("recent");
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].status, RunStatus::Done);
}

async fn audit(store: &dyn Store, run: &str, t0: SystemTime) {
    let env = format!("env-{run}");
    let other = format!("other-{run}");
    let record = |i: u64, env: &str| AuditRecord {
        at: t0 + Duration::from_secs(i),
        user: format!("U{i}"),
        command: "deploy".into(),
        target: env.to_owned(),
        env: Some(env.to_owned()),
        args: if i == 1 {
            "feature/login".into()
        } else {
            String::new()
        },
        outcome: if i == 2 {
            "failed: build FAILURE".into()
        } else {
            "ok".into()
        },
        duration: (i != 2).then(|| Duration::from_millis(1500 * i)),
        links: if i == 1 {
            vec![
                "http://127.0.0.1:18090/job/deploy-api/1/".to_owned(),
                "http://127.0.0.1:18090/job/deploy-cron/4/".to_owned(),
            ]
        } else {
            Vec::new()
        },
    };
    for (i, e) in [(1, &env), (2, &other), (3, &env)] {
        store.append(record(i, e)).await.expect("append");
    }
    assert_eq!(
        store.history(Some(&env), 0, 10).await,
        Ok(vec![record(3, &env), record(1, &env)]),
        "history of one environment, newest first, records whole"
    );
    assert_eq!(
        store.history(Some(&env), 0, 1).await,
        Ok(vec![record(3, &env)]),
        "history honours its limit"
    );
    assert_eq!(
        store.history(Some(&env), 1, 1).await,
        Ok(vec![record(1, &env)]),
        "history pages with an offset"
    );
    let all = store.history(None, 0, 1000).await.expect("history");
    let ours: Vec<&AuditRecord> = all
        .iter()
        .filter(|r| r.env.as_deref() == Some(&env) || r.env.as_deref() == Some(&other))
        .collect();
    assert_eq!(
        ours,
        vec![&record(3, &env), &record(2, &other), &record(1, &env)],
        "history of everything, newest first"
    );
    let chain = store.chain(1, 100_000).await.expect("chain");
    assert_eq!(chain.first().map(|r| r.prev_hash.as_str()), Some(GENESIS));
    verify_chain((0, GENESIS.to_owned()), &chain).expect("the chain verifies");
    let ours: Vec<&AuditRecord> = chain
        .iter()
        .map(|r| &r.record)
        .filter(|r| r.env.as_deref() == Some(&env) || r.env.as_deref() == Some(&other))
        .collect();
    assert_eq!(
        ours,
        vec![&record(1, &env), &record(2, &other), &record(3, &env)],
        "the chain is in order"
    );
    if chain.len() >= 2 {
        let mut tampered = chain.clone();
        tampered[1].record.outcome = "ok".into();
        tampered[1].record.user = "UMALLORY".into();
        let broken =
            verify_chain((0, GENESIS.to_owned()), &tampered).expect_err("an edit breaks the chain");
        assert_eq!(broken.seq, tampered[1].seq, "the broken record is named");
    }
}

/// Two replicas of one store (two connections to one database, or one memory store
/// shared) appending at once still form one chain: every record present once, every
/// link and hash in order.
pub async fn audit_replicas(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let env = format!("replicas-{}", &run[..12]);
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let record = |replica: &str, i: u64| AuditRecord {
        at: t0 + Duration::from_millis(i),
        user: format!("U{replica}{i}"),
        command: "deploy".into(),
        target: env.clone(),
        env: Some(env.clone()),
        args: String::new(),
        outcome: "ok".into(),
        duration: None,
        links: Vec::new(),
    };
    let n = 25u64;
    let appends = |store: Arc<dyn Store>, replica: &'static str| {
        let records: Vec<AuditRecord> = (0..n).map(|i| record(replica, i)).collect();
        tokio::spawn(async move {
            for r in records {
                store.append(r).await.expect("append from a replica");
            }
        })
    };
    let (ra, rb) = tokio::join!(appends(a.clone(), "A"), appends(b.clone(), "B"));
    ra.expect("replica A");
    rb.expect("replica B");
    let chain = a.chain(1, 1_000_000).await.expect("chain");
    verify_chain((0, GENESIS.to_owned()), &chain)
        .expect("appends from two replicas form one unbroken chain");
    let ours = chain
        .iter()
        .filter(|r| r.record.env.as_deref() == Some(&env))
        .count();
    assert_eq!(ours as u64, 2 * n, "every append is in the chain once");
    assert_eq!(
        b.chain(1, 1_000_000).await.expect("chain"),
        chain,
        "both replicas read the same chain"
    );
}

fn approval(id: &str, needed: u32, t0: SystemTime) -> Approval {
    Approval {
        id: id.to_owned(),
        invocation: json!({"command": "deploy", "target": {"k": "env", "env": "master"}}),
        requester: "UREQ".into(),
        channel: Some("D1".into()),
        from: vec!["deployers".into()],
        needed,
        approvers: Vec::new(),
        status: ApprovalStatus::Pending,
        declined_by: None,
        reason: None,
        buttons: format!("set-{id}"),
        created: t0,
        expires: t0 + Duration::from_secs(600),
    }
}

async fn approvals(store: &dyn Store, run: &str, t0: SystemTime) {
    let now = t0 + Duration::from_secs(1);
    let two = format!("two-{run}");
    store
        .request_approval(&approval(&two, 2, t0))
        .await
        .expect("request");
    assert!(
        store
            .request_approval(&approval(&two, 2, t0))
            .await
            .is_err(),
        "an id is used once"
    );
    assert_eq!(
        store.approval(&two).await.expect("read"),
        Some(approval(&two, 2, t0)),
        "a request reads back whole"
    );
    let vote = store
        .vote(&two, "UA", &Decision::Approve, now, None)
        .await
        .expect("vote");
    assert!(
        matches!(&vote, Vote::Counted(a) if a.approvers == ["UA"]),
        "the first of two approvals is counted: {vote:?}"
    );
    let vote = store
        .vote(&two, "UA", &Decision::Approve, now, None)
        .await
        .expect("vote");
    assert!(
        matches!(vote, Vote::AlreadyVoted(_)),
        "one person counts once: {vote:?}"
    );
    let vote = store
        .vote(&two, "UB", &Decision::Approve, now, None)
        .await
        .expect("vote");
    assert!(
        matches!(&vote, Vote::Approved(a) if a.approvers == ["UA", "UB"] && a.status == ApprovalStatus::Approved),
        "the second approval completes it: {vote:?}"
    );
    let vote = store
        .vote(&two, "UC", &Decision::Approve, now, None)
        .await
        .expect("vote");
    assert!(matches!(vote, Vote::Closed(_)), "decided once: {vote:?}");

    let late = format!("late-{run}");
    store
        .request_approval(&approval(&late, 1, t0))
        .await
        .expect("request");
    let vote = store
        .vote(
            &late,
            "UA",
            &Decision::Approve,
            t0 + Duration::from_secs(600),
            None,
        )
        .await
        .expect("vote");
    assert!(
        matches!(vote, Vote::Expired(_)),
        "no approval after expiry: {vote:?}"
    );
    assert_eq!(
        store.approval(&late).await.expect("read").map(|a| a.status),
        Some(ApprovalStatus::Pending)
    );

    let no = format!("no-{run}");
    store
        .request_approval(&approval(&no, 1, t0))
        .await
        .expect("request");
    let vote = store
        .vote(&no, "UB", &Decision::Decline { reason: None }, now, None)
        .await
        .expect("vote");
    assert!(
        matches!(&vote, Vote::Declined(a) if a.declined_by.as_deref() == Some("UB")),
        "{vote:?}"
    );
    let reason = Decision::Decline {
        reason: Some("not during the sale".into()),
    };
    let vote = store
        .vote(&no, "UB", &reason, now, None)
        .await
        .expect("vote");
    assert!(
        matches!(&vote, Vote::Declined(a) if a.reason.as_deref() == Some("not during the sale")),
        "the decliner adds the reason afterwards: {vote:?}"
    );
    let vote = store
        .vote(&no, "UA", &Decision::Approve, now, None)
        .await
        .expect("vote");
    assert!(matches!(vote, Vote::Closed(_)), "{vote:?}");
    assert_eq!(
        store
            .vote(&format!("none-{run}"), "UA", &Decision::Approve, now, None)
            .await,
        Ok(Vote::Unknown)
    );
}

async fn one_approval_wins(a: Arc<dyn Store>, b: Arc<dyn Store>, run: &str, t0: SystemTime) {
    let id = format!("race-{run}");
    a.request_approval(&approval(&id, 1, t0))
        .await
        .expect("request");
    let now = t0 + Duration::from_secs(1);
    let votes = (0..8).map(|i| {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let id = id.clone();
        tokio::spawn(async move {
            store
                .vote(&id, &format!("U{i}"), &Decision::Approve, now, None)
                .await
                .expect("vote")
        })
    });
    let votes = futures::future::join_all(votes).await;
    let approved = votes
        .iter()
        .filter(|v| matches!(v, Ok(Vote::Approved(_))))
        .count();
    assert_eq!(
        approved, 1,
        "of eight approvers at once, one completes it: {votes:?}"
    );
    assert!(
        votes
            .iter()
            .all(|v| matches!(v, Ok(Vote::Approved(_) | Vote::Closed(_)))),
        "the others find it decided: {votes:?}"
    );
}

/// Two replicas of one store: approvers voting at once through either decide a
/// request once.
pub async fn approval_replicas(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    one_approval_wins(a, b, &run[..12], t0).await;
}

/// The deploy queue: a line per environment in the order deploys were queued, each
/// item taken out by exactly one caller, an item put back at its old place.
async fn deploy_queue(store: Arc<dyn Store>, run: &str, t0: SystemTime) {
    let env = format!("qenv-{run}");
    let other = format!("qother-{run}");
    let item = |n: u32, env: &str| Queued {
        id: format!("q{n}-{run}"),
        seq: 0,
        env: env.to_owned(),
        user: format!("U{n}"),
        invocation: json!({"command": "deploy", "target": {"k": "env", "env": env}}),
        channel: (n % 2 == 0).then(|| "D1".to_owned()),
        since: t0 + Duration::from_secs(u64::from(n)),
    };
    let mut seqs = Vec::new();
    for (n, e) in [(1, &env), (2, &other), (3, &env), (4, &env)] {
        seqs.push(store.enqueue(&item(n, e)).await.expect("enqueue"));
    }
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "each deploy queued goes after the ones before: {seqs:?}"
    );
    let line = store.queued(Some(&env)).await.expect("queued");
    let users: Vec<&str> = line.iter().map(|q| q.user.as_str()).collect();
    assert_eq!(
        users,
        ["U1", "U3", "U4"],
        "the line of one environment, in order"
    );
    assert_eq!(
        line[0],
        Queued {
            seq: seqs[0],
            ..item(1, &env)
        },
        "kept as queued"
    );
    assert_eq!(line[1].channel, None);
    let all = store.queued(None).await.expect("queued");
    assert!(
        all.iter().any(|q| q.env == other) && all.iter().any(|q| q.env == env),
        "every environment's line"
    );

    // Several replicas taking the head at once: one gets it.
    let head = line[0].id.clone();
    let takers = (0..4).map(|_| {
        let store = store.clone();
        let head = head.clone();
        tokio::spawn(async move { store.dequeue(&head, None).await })
    });
    let taken: Vec<Option<Queued>> = futures::future::join_all(takers)
        .await
        .into_iter()
        .map(|r| r.expect("task").expect("dequeue"))
        .collect();
    assert_eq!(
        taken.iter().filter(|t| t.is_some()).count(),
        1,
        "exactly one caller takes a queued deploy out"
    );
    let users = |line: Vec<Queued>| line.into_iter().map(|q| q.user).collect::<Vec<_>>();
    assert_eq!(
        users(store.queued(Some(&env)).await.expect("queued")),
        ["U3", "U4"]
    );

    // Put back (its environment was taken again meanwhile): first in line again.
    let back = taken.into_iter().flatten().next().expect("taken");
    assert_eq!(store.enqueue(&back).await.expect("put back"), back.seq);
    assert_eq!(
        users(store.queued(Some(&env)).await.expect("queued")),
        ["U1", "U3", "U4"],
        "an item put back keeps its place"
    );
    for q in store.queued(None).await.expect("queued") {
        if q.id.ends_with(run) {
            store.dequeue(&q.id, None).await.expect("dequeue");
        }
    }
    assert!(store.queued(Some(&env)).await.expect("queued").is_empty());
    assert_eq!(
        store.dequeue(&head, None).await.expect("dequeue"),
        None,
        "gone is gone"
    );
}

/// Runs recorded before they start: taken over once their owner's lease lapses, and
/// started once (the run that starts one hands it off in the same write). The vote
/// that approves a request and the dequeue of a deploy record theirs in the same step.
async fn pending_runs(store: &dyn Store, run: &str, t0: SystemTime) {
    let lease = Duration::from_secs(30);
    let env = format!("pending-{run}");
    let pending = Run {
        id: format!("start:approval:{run}"),
        action: "start".into(),
        user: "U1".into(),
        env: Some(env.clone()),
        invocation: json!({"command": "deploy"}),
        message: Some(format!("click-{run}")),
        state: json!({"kind": "approval", "id": run}),
        status: RunStatus::Pending,
        fence: 1,
        owner: "replica-a".into(),
        lease_until: t0 + lease,
        started: t0,
    };
    let mine = |runs: Vec<Run>| {
        runs.into_iter()
            .filter(|r| r.env.as_deref() == Some(env.as_str()))
            .collect::<Vec<_>>()
    };
    // The approving vote records it.
    let mut asked = approval(&format!("P{run}"), 1, t0);
    asked.invocation = json!({"command": "deploy"});
    store.request_approval(&asked).await.expect("request");
    let vote = store
        .vote(&asked.id, "UA", &Decision::Approve, t0, Some(&pending))
        .await
        .expect("vote");
    assert!(matches!(vote, Vote::Approved(_)), "{vote:?}");
    assert_eq!(
        store.run(&pending.id).await.map(|r| r.map(|r| r.status)),
        Ok(Some(RunStatus::Pending)),
        "the approving vote records the run that starts the request"
    );
    assert_eq!(
        mine(
            store
                .take_over_runs("replica-b", t0, t0 + lease, 1000)
                .await
                .expect("take over")
        ),
        vec![],
        "not taken while its owner's lease holds"
    );
    let later = t0 + lease + Duration::from_secs(1);
    let taken = mine(
        store
            .take_over_runs("replica-b", later, later + lease, 1000)
            .await
            .expect("take over"),
    );
    assert_eq!(
        taken.len(),
        1,
        "a pending run whose replica died is taken over"
    );
    assert_eq!(taken[0].status, RunStatus::Pending);
    assert_eq!(taken[0].fence, 2);
    // Starting it: the deploy's own run hands the pending one off in the same write.
    let deploy = Run {
        id: format!("run:{}", pending.id),
        action: "deploy".into(),
        status: RunStatus::Running,
        state: json!({"kind": "deploy"}),
        owner: "replica-b".into(),
        lease_until: later + lease,
        ..pending.clone()
    };
    assert_eq!(store.start_run(&deploy, Some(&pending.id)).await, Ok(true));
    assert_eq!(
        store.run(&pending.id).await.map(|r| r.map(|r| r.status)),
        Ok(Some(RunStatus::Done)),
        "the pending run is done once its run started"
    );
    assert_eq!(
        store.start_run(&deploy, Some(&pending.id)).await,
        Ok(false),
        "a second starter starts nothing"
    );
    let much_later = later + lease * 3;
    let again = mine(
        store
            .take_over_runs("replica-c", much_later, much_later + lease, 1000)
            .await
            .expect("take over"),
    );
    assert!(
        again.iter().all(|r| r.id != pending.id),
        "a started pending run is never taken over again: {again:?}"
    );
    // A vote that does not approve records nothing.
    let mut two = approval(&format!("Q{run}"), 2, t0);
    two.invocation = json!({"command": "deploy"});
    store.request_approval(&two).await.expect("request");
    let other = Run {
        id: format!("start:approval:Q{run}"),
        ..pending.clone()
    };
    let vote = store
        .vote(&two.id, "UA", &Decision::Approve, t0, Some(&other))
        .await
        .expect("vote");
    assert!(matches!(vote, Vote::Counted(_)), "{vote:?}");
    assert_eq!(
        store.run(&other.id).await,
        Ok(None),
        "a counted vote starts nothing"
    );
    // Taking a deploy out of line records the run that starts it.
    let item = Queued {
        id: format!("line-{run}"),
        seq: 0,
        env: env.clone(),
        user: "U2".into(),
        invocation: json!({"command": "deploy"}),
        channel: None,
        since: t0,
    };
    store.enqueue(&item).await.expect("enqueue");
    let head = Run {
        id: format!("start:queue:{}", item.id),
        ..pending.clone()
    };
    assert!(store
        .dequeue(&item.id, Some(&head))
        .await
        .expect("dequeue")
        .is_some());
    assert_eq!(
        store.run(&head.id).await.map(|r| r.map(|r| r.status)),
        Ok(Some(RunStatus::Pending)),
        "taken out of line together with the run that starts it"
    );
    let other_head = Run {
        id: format!("start:queue:again-{}", item.id),
        ..pending.clone()
    };
    assert_eq!(store.dequeue(&item.id, Some(&other_head)).await, Ok(None));
    assert_eq!(
        store.run(&other_head.id).await,
        Ok(None),
        "a lost dequeue records nothing"
    );
    assert_eq!(
        store
            .finish_run(&head.id, 1, &head.state, RunStatus::Done)
            .await,
        Ok(true),
        "a pending run that started nothing is ended by its starter"
    );
}
