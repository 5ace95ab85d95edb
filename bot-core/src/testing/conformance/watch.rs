//! The promises of the monitor's ports: the probe log returns a target's probes in
//! time order within a window, the newest per target, and forgets what is older than
//! the retention; a watch reads back as saved, incident included.

use std::time::{Duration, SystemTime};

use crate::ports::watch::{Health, Incident, ProbeRecord, Watch};
use crate::ports::Store;

fn probe(target: &str, at: SystemTime, health: Health, latency_ms: u64) -> ProbeRecord {
    ProbeRecord {
        target: target.to_owned(),
        at,
        health,
        latency: Some(Duration::from_millis(latency_ms)),
        status: (health != Health::NotOk).then_some(200),
        version: Some("1.2.3".into()),
        reason: (health == Health::NotOk).then(|| "connection refused".into()),
        count: 1,
    }
}

/// Runs every check of [`ProbeLog`](crate::ports::ProbeLog) and
/// [`Watches`](crate::ports::Watches) on `store`; target names carry `run`, so a
/// shared database can run it alongside others.
pub async fn watch(store: &dyn Store, run: &str, t0: SystemTime) {
    let a = format!("instance:{run}/api/blue");
    let b = format!("check:{run}-ci");
    let s = Duration::from_secs(1);
    let round = |i: u32, ha: Health, hb: Health| {
        // b's results are sampled points, each standing for i + 1 probes.
        let mut sampled = probe(&b, t0 + s * i, hb, 20 + u64::from(i));
        sampled.count = i + 1;
        vec![probe(&a, t0 + s * i, ha, 10 + u64::from(i)), sampled]
    };
    for i in 0..5 {
        let ha = if i == 3 { Health::NotOk } else { Health::Ok };
        store
            .record_probes(&round(i, ha, Health::Pending))
            .await
            .expect("record a round of probes");
    }
    // A big batch goes in whole (adapters may split it into several statements of
    // one transaction), and an empty one is nothing.
    store.record_probes(&[]).await.expect("record no probes");
    let many: Vec<ProbeRecord> = (0..1200)
        .map(|i| probe(&format!("instance:{run}/bulk/{i}"), t0, Health::Ok, 1))
        .collect();
    store
        .record_probes(&many)
        .await
        .expect("record a big round");

    let all = store
        .probes(&a, t0, t0 + s * 10, 100)
        .await
        .expect("read probes");
    assert_eq!(all.len(), 5, "every probe of a target is kept");
    assert!(
        all.windows(2).all(|w| w[0].at <= w[1].at),
        "probes come oldest first"
    );
    assert_eq!(
        all[3],
        probe(&a, t0 + s * 3, Health::NotOk, 13),
        "a probe reads back as recorded"
    );
    let window = store
        .probes(&a, t0 + s, t0 + s * 3, 100)
        .await
        .expect("read a window");
    assert_eq!(
        window.iter().map(|p| p.at).collect::<Vec<_>>(),
        vec![t0 + s, t0 + s * 2],
        "a window includes its start and excludes its end"
    );
    let counted = store.probes(&b, t0, t0 + s * 10, 100).await.expect("read");
    assert_eq!(
        counted.iter().map(|p| p.count).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5],
        "how many probes a result stands for reads back"
    );
    let limited = store.probes(&a, t0, t0 + s * 10, 2).await.expect("read");
    assert_eq!(limited.len(), 2, "the limit holds");
    assert_eq!(limited[0].at, t0, "the limit keeps the oldest");

    // A replica that lost the monitor's lead can write what it held back after the
    // new leader wrote newer probes: the newest is still the newest by time.
    store
        .record_probes(&[probe(&a, t0 + s * 3 + s / 2, Health::Ok, 1)])
        .await
        .expect("record a probe held back");
    let latest = store.latest_probes().await.expect("latest probes");
    let of = |t: &str| latest.iter().filter(|p| p.target == t).collect::<Vec<_>>();
    assert_eq!(of(&a).len(), 1, "one latest probe per target");
    assert_eq!(of(&a)[0].at, t0 + s * 4, "the latest is the newest");
    assert_eq!(of(&b)[0].health, Health::Pending);
    assert_eq!(
        of(&format!("instance:{run}/bulk/1199")).len(),
        1,
        "every probe of a big round was recorded"
    );

    let pruned = store.prune_probes(t0 + s * 2).await.expect("prune");
    assert!(
        pruned >= 4 + 1200,
        "probes older than the retention are forgotten"
    );
    let left = store.probes(&a, t0, t0 + s * 10, 100).await.expect("read");
    assert_eq!(
        left.iter().map(|p| p.at).collect::<Vec<_>>(),
        vec![t0 + s * 2, t0 + s * 3, t0 + s * 3 + s / 2, t0 + s * 4],
        "newer probes stay"
    );

    assert_eq!(store.watch_of(&a).await.expect("read watch"), None);
    let mut w = Watch {
        target: a.clone(),
        health: Health::NotOk,
        since: t0 + s * 3,
        reason: Some("connection refused".into()),
        incident: Some(Incident {
            message: format!("monitor:{a}:1"),
            since: t0 + s * 3,
            reason: "connection refused".into(),
        }),
    };
    store.save_watch(&w).await.expect("save watch");
    assert_eq!(
        store.watch_of(&a).await.expect("read watch"),
        Some(w.clone()),
        "a watch reads back as saved, with its incident"
    );
    w.health = Health::Ok;
    w.since = t0 + s * 9;
    w.reason = None;
    w.incident = None;
    store.save_watch(&w).await.expect("replace watch");
    let all = store.watches().await.expect("every watch");
    let mine: Vec<&Watch> = all.iter().filter(|x| x.target == a).collect();
    assert_eq!(mine, vec![&w], "a saved watch replaces the previous one");
}
