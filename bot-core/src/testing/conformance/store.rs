//! The promises every [`Store`] keeps: deliveries admitted once and leased to one
//! worker, messages delivered newest-version-only, buttons claimed once and only in
//! their conversation, locks leased and released only by their holder, runs driven
//! by one fenced owner, and an audit log that is a hash chain read newest first.
//! Names are unique per run, so a shared database can run the suite alongside others.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::json;

use crate::ports::store::{
    verify_chain, Admitted, Attempt, AuditRecord, ButtonSet, Claim, Inbound, Lock, LockOutcome,
    Run, RunStatus, Store, GENESIS,
};

/// Runs every check on `store`.
pub async fn store(store: Arc<dyn Store>) {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let run = &run[..12];
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    store.ping().await.expect("the store answers a ping");
    inbox(&*store, run, t0).await;
    one_admission_wins(store.clone(), run, t0).await;
    outbox(&*store, run, t0).await;
    buttons(&*store, run, t0).await;
    one_claim_wins(store.clone(), run, t0).await;
    locks(&*store, run, t0).await;
    one_lock_wins(store.clone(), run, t0).await;
    runs(&*store, run, t0).await;
    audit(&*store, run, t0).await;
    super::watch::watch(&*store, run, t0).await;
}

fn inbound(key: &str, at: SystemTime) -> Inbound {
    Inbound {
        key: key.to_owned(),
        transport: "slack".into(),
        payload: json!({"request": {"user": "U1", "text": "status"}}),
        received: at,
    }
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
        store.unlock(&env).await,
        Ok(None),
        "unlocking a free environment releases nothing"
    );
    let manual = Lock {
        action: None,
        run: None,
        ..lock(&env, "U3", later, lease)
    };
    assert_eq!(
        store.try_lock(manual.clone(), later).await,
        Ok(LockOutcome::Acquired)
    );
    assert_eq!(
        store.unlock(&env).await,
        Ok(Some(manual)),
        "unlock returns the lock it released"
    );
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
    assert_eq!(
        store
            .save_run(
                &deploy.id,
                2,
                &json!({"step": "done"}),
                RunStatus::Done,
                later + lease
            )
            .await,
        Ok(true)
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
