//! The promises every [`Store`] keeps: deliveries seen once, buttons claimed once,
//! locks leased and released only by their holder, the audit log newest first.
//! Names are unique per run, so a shared database can run the suite alongside others.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::ports::{AuditRecord, Claim, Lock, LockOutcome, Store};

/// Runs every check on `store`.
pub async fn store(store: Arc<dyn Store>) {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let run = &run[..12];
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    deliveries(&*store, run, t0).await;
    buttons(&*store, run, t0).await;
    one_claim_wins(store.clone(), run, t0).await;
    locks(&*store, run, t0).await;
    one_lock_wins(store.clone(), run, t0).await;
    audit(&*store, run, t0).await;
}

async fn deliveries(store: &dyn Store, run: &str, t0: SystemTime) {
    let key = format!("Ev-{run}");
    assert_eq!(
        store.first_delivery(&key, t0).await,
        Ok(true),
        "a new delivery is first"
    );
    assert_eq!(
        store
            .first_delivery(&key, t0 + Duration::from_secs(60))
            .await,
        Ok(false),
        "a retried delivery is not first"
    );
    assert_eq!(
        store.first_delivery(&format!("Ev2-{run}"), t0).await,
        Ok(true),
        "another delivery is first"
    );
}

async fn buttons(store: &dyn Store, run: &str, t0: SystemTime) {
    let set = format!("set-{run}");
    let ttl = Duration::from_secs(600);
    store
        .issue_buttons(&set, t0 + ttl)
        .await
        .expect("issue buttons");
    assert_eq!(
        store.claim_buttons(&set, "U1", t0).await,
        Ok(Claim::Claimed),
        "the first click claims the set"
    );
    assert_eq!(
        store.claim_buttons(&set, "U2", t0).await,
        Ok(Claim::AlreadyUsed { by: "U1".into() }),
        "a second click names who used the set"
    );
    assert_eq!(
        store.claim_buttons(&format!("never-{run}"), "U1", t0).await,
        Ok(Claim::Unknown),
        "a set never issued is unknown"
    );
    let old = format!("old-{run}");
    store
        .issue_buttons(&old, t0 + ttl)
        .await
        .expect("issue buttons");
    assert_eq!(
        store
            .claim_buttons(&old, "U1", t0 + ttl + Duration::from_secs(1))
            .await,
        Ok(Claim::Expired),
        "a set past its lifetime is expired"
    );
}

async fn one_claim_wins(store: Arc<dyn Store>, run: &str, t0: SystemTime) {
    let set = format!("race-{run}");
    store
        .issue_buttons(&set, t0 + Duration::from_secs(600))
        .await
        .expect("issue buttons");
    let clicks = (0..8).map(|i| {
        let store = store.clone();
        let set = set.clone();
        tokio::spawn(async move { store.claim_buttons(&set, &format!("U{i}"), t0).await })
    });
    let results = futures::future::join_all(clicks).await;
    let claimed = results
        .iter()
        .filter(|r| matches!(r, Ok(Ok(Claim::Claimed))))
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
        reason: "deploy".into(),
        since,
        expires: since + lease,
        action: Some("deploy".into()),
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
    let later = t0 + lease + Duration::from_secs(1);
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

async fn audit(store: &dyn Store, run: &str, t0: SystemTime) {
    let env = format!("env-{run}");
    let other = format!("other-{run}");
    let record = |i: u64, env: &str| AuditRecord {
        at: t0 + Duration::from_secs(i),
        user: format!("U{i}"),
        command: "deploy".into(),
        target: env.to_owned(),
        env: Some(env.to_owned()),
        outcome: if i == 2 {
            "failed: build FAILURE".into()
        } else {
            "ok".into()
        },
        link: (i == 1).then(|| "http://127.0.0.1:18090/job/x/1/".to_owned()),
    };
    for (i, e) in [(1, &env), (2, &other), (3, &env)] {
        store.append(record(i, e)).await.expect("append");
    }
    assert_eq!(
        store.history(Some(&env), 10).await,
        Ok(vec![record(3, &env), record(1, &env)]),
        "history of one environment, newest first, records whole"
    );
    assert_eq!(
        store.history(Some(&env), 1).await,
        Ok(vec![record(3, &env)]),
        "history honours its limit"
    );
    let all = store.history(None, 1000).await.expect("history");
    let ours: Vec<&AuditRecord> = all
        .iter()
        .filter(|r| r.env.as_deref() == Some(&env) || r.env.as_deref() == Some(&other))
        .collect();
    assert_eq!(
        ours,
        vec![&record(3, &env), &record(2, &other), &record(1, &env)],
        "history of everything, newest first"
    );
}
