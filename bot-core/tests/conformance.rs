//! The public conformance suites run on this crate's own adapters: the store suite on
//! `MemoryStore`, the switch suite on the memory, HTTP and real-HAProxy switches.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bot_core::adapters::haproxy::HaproxySwitch;
use bot_core::adapters::http_switch::HttpSwitch;
use bot_core::adapters::memory_switch::MemorySwitch;
use bot_core::adapters::probe::{HttpProbe, ReqwestAction};
use bot_core::adapters::store::memory::MemoryStore;
use bot_core::config::{
    Environment, HealthRecipe, HttpRequestSpec, Instance, Pool, Pos, SwitchSpec, WeightsSpec,
};
use bot_core::ports::{Split, SwitchError, TrafficSwitch};
use bot_core::testing::conformance;
use common::haproxy::{require_haproxy, Haproxy};
use crossroads_sim::instance::SimInstance;
use crossroads_sim::switch::{PoolSetup, SimSwitch};

fn pool_of(spec: SwitchSpec, urls: [&str; 2]) -> (Environment, Pool) {
    let member = |name: &str, url: &str| Instance {
        name: name.into(),
        aliases: vec![],
        emoji: vec![],
        url: url.into(),
        health: HealthRecipe::default(),
        tasks: None,
        restart: None,
        pos: Pos::default(),
    };
    let pool = Pool {
        name: "api".into(),
        aliases: vec!["api".into()],
        switch: spec,
        deploy: None,
        members: vec![member("blue", urls[0]), member("green", urls[1])],
        region: None,
        pos: Pos::default(),
    };
    let env = Environment {
        name: "staging".into(),
        aliases: vec!["staging".into()],
        emoji: vec![],
        protected: false,
        allowed: vec![],
        pools: vec![pool.clone()],
        regions: Vec::new(),
        rollout: Default::default(),
        pos: Pos::default(),
    };
    (env, pool)
}

#[tokio::test]
async fn the_memory_store_keeps_every_promise() {
    conformance::store(Arc::new(MemoryStore::new())).await;
}

#[tokio::test]
async fn the_memory_switch_keeps_every_promise() {
    let (env, pool) = pool_of(
        SwitchSpec::Memory {
            initial: "blue".into(),
        },
        ["http://127.0.0.1:1", "http://127.0.0.1:2"],
    );
    let switch = MemorySwitch::new();
    conformance::switch(&switch, &env, &pool).await;
    conformance::weights(&switch, &env, &pool).await;
}

#[tokio::test]
async fn the_http_switch_keeps_every_promise() {
    let sim = SimSwitch::start(vec![PoolSetup::new(
        "staging",
        "api",
        &["blue", "green"],
        "blue",
    )])
    .await
    .expect("start simulated switch");
    let base = sim.url();
    let set = HttpRequestSpec {
        method: "POST".into(),
        url: format!("{base}/pools/{{env}}/{{pool}}"),
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: Some(r#"{"active": "{colour}"}"#.into()),
    };
    let get_url = format!("{base}/pools/{{env}}/{{pool}}");
    let weights = WeightsSpec {
        set: HttpRequestSpec {
            method: "POST".into(),
            url: format!("{base}/pools/{{env}}/{{pool}}/weights"),
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: Some("{weights}".into()),
        },
        pointer: "/weights".into(),
    };
    let spec = SwitchSpec::Http {
        set: set.clone(),
        get_url: get_url.clone(),
        pointer: "/active".into(),
        weights: Some(weights.clone()),
    };
    let (env, pool) = pool_of(spec, ["http://127.0.0.1:1", "http://127.0.0.1:2"]);
    let switch = HttpSwitch::new(
        set,
        get_url,
        "/active",
        Arc::new(HttpProbe::new()),
        Arc::new(ReqwestAction::new()),
    );
    conformance::switch(&switch, &env, &pool).await;
    assert!(
        !switch.weighted(),
        "without a `weights` request the switch cannot do weights"
    );
    let refused = switch
        .set_split(&env, &pool, &Split::canary(&pool, "blue", "green", 10))
        .await;
    assert!(
        matches!(&refused, Err(SwitchError::Refused(m)) if m.contains("weights")),
        "and says so when asked: {refused:?}"
    );
    let switch = switch.with_weights(Some(weights));
    conformance::weights(&switch, &env, &pool).await;
    assert_eq!(sim.active("staging", "api").as_deref(), Some("blue"));
    let sent: Vec<_> = sim
        .calls()
        .into_iter()
        .filter_map(|c| c.body)
        .filter(|b| b.get("green") == Some(&serde_json::json!(10)))
        .collect();
    assert_eq!(
        sent.first(),
        Some(&serde_json::json!({"blue": 90, "green": 10})),
        "the weights request carries every member's percent as JSON"
    );
}

#[cfg_attr(
    not(haproxy),
    ignore = "haproxy not installed (apt-get install haproxy)"
)]
#[tokio::test]
async fn the_haproxy_switch_keeps_every_promise() {
    if !require_haproxy() {
        return;
    }
    let blue = SimInstance::start("blue", "1.0.0").await.expect("blue");
    let green = SimInstance::start("green", "1.0.1").await.expect("green");
    let haproxy = Haproxy::start(&[("blue", blue.addr()), ("green", green.addr())]);
    let spec = SwitchSpec::Haproxy {
        address: haproxy.admin.clone(),
        backend: "be_app".into(),
        servers: vec![],
        off_state: "maint".into(),
    };
    let (env, pool) = pool_of(spec, [&blue.url(), &green.url()]);
    let switch = HaproxySwitch::new(haproxy.admin.clone(), "be_app", vec![], "maint");
    // HAProxy takes a moment to open its runtime API.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match switch.active(&env, &pool).await {
            Ok(_) => break,
            Err(SwitchError::Unreachable { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("HAProxy runtime API never answered: {e}"),
        }
    }
    conformance::switch(&switch, &env, &pool).await;
    conformance::weights(&switch, &env, &pool).await;
}

#[tokio::test]
async fn the_sqlite_store_keeps_every_promise() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("state.db").display());
    let store = bot_core::adapters::store::connect(&url, true)
        .await
        .expect("a fresh SQLite store");
    conformance::store(store).await;
}

#[tokio::test]
async fn the_postgres_store_keeps_every_promise() {
    let Some(db) = crossroads_sim::postgres::fresh_database("conformance").await else {
        return;
    };
    let store = bot_core::adapters::store::connect(&db.url, true)
        .await
        .expect("a fresh PostgreSQL store");
    conformance::store(store).await;
}

#[tokio::test]
async fn two_replicas_on_one_sqlite_file_append_one_audit_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("state.db").display());
    let a = bot_core::adapters::store::connect(&url, true)
        .await
        .expect("a fresh SQLite store");
    let b = bot_core::adapters::store::connect(&url, true)
        .await
        .expect("a second connection to it");
    conformance::audit_replicas(a, b).await;
}

#[tokio::test]
async fn two_replicas_on_one_postgres_append_one_audit_chain() {
    let Some(db) = crossroads_sim::postgres::fresh_database("audit_replicas").await else {
        return;
    };
    let a = bot_core::adapters::store::connect(&db.url, true)
        .await
        .expect("a fresh PostgreSQL store");
    let b = bot_core::adapters::store::connect(&db.url, false)
        .await
        .expect("a second replica on it");
    conformance::audit_replicas(a.clone(), b.clone()).await;
    conformance::approval_replicas(a, b).await;
}

#[tokio::test]
async fn the_memory_store_appends_one_audit_chain_from_two_tasks() {
    let store: Arc<dyn bot_core::ports::Store> = Arc::new(MemoryStore::new());
    conformance::audit_replicas(store.clone(), store).await;
}
