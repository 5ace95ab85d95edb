//! Switching traffic with a real HAProxy in front of two simulated instances.

use std::time::{Duration, Instant};

use bot_core::backends::haproxy::HaproxySwitch;
use bot_core::backends::{SwitchError, TrafficSwitch};
use bot_core::config::{Environment, HealthRecipe, Instance, Pool, Pos, SwitchSpec};
use crossroads_sim::instance::SimInstance;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;

use common::haproxy::{require_haproxy, traffic_reaches, Haproxy};

fn member(name: &str, url: &str) -> Instance {
    Instance {
        name: name.into(),
        aliases: vec![],
        emoji: vec![],
        url: url.into(),
        health: HealthRecipe::default(),
        tasks: None,
        restart: None,
        pos: Pos::default(),
    }
}

fn env_and_pool(spec: SwitchSpec, blue: &str, green: &str) -> (Environment, Pool) {
    let pool = Pool {
        name: "api".into(),
        aliases: vec!["api".into()],
        switch: spec,
        deploy: None,
        members: vec![member("blue", blue), member("green", green)],
        pos: Pos::default(),
    };
    let env = Environment {
        name: "staging".into(),
        aliases: vec!["staging".into()],
        emoji: vec![],
        protected: false,
        allowed: vec![],
        pools: vec![pool.clone()],
        pos: Pos::default(),
    };
    (env, pool)
}

#[tokio::test]
async fn switching_moves_real_traffic_through_haproxy() {
    if !require_haproxy() {
        return;
    }
    let blue = SimInstance::start("blue", "blue").await.expect("blue");
    let green = SimInstance::start("green", "green").await.expect("green");
    // The green member's server has another name, mapped in the switch spec.
    let haproxy = Haproxy::start(&[("blue", blue.addr()), ("app_green", green.addr())]);

    let spec = SwitchSpec::Haproxy {
        address: haproxy.admin.clone(),
        backend: "be_app".into(),
        servers: vec![("green".into(), "app_green".into())],
        off_state: "maint".into(),
    };
    let (env, pool) = env_and_pool(spec.clone(), &blue.url(), &green.url());
    let switch = HaproxySwitch::from_spec(&spec).expect("haproxy spec");

    // Wait for the runtime API to come up.
    let deadline = Instant::now() + Duration::from_secs(10);
    let first = loop {
        match switch.active(&env, &pool).await {
            Ok(active) => break active,
            Err(SwitchError::Unreachable { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("HAProxy runtime API never answered: {e}"),
        }
    };
    let frontend = haproxy.frontend.clone();
    assert_eq!(first, "blue");
    traffic_reaches(&frontend, "blue").await;

    switch
        .switch_to(&env, &pool, "green")
        .await
        .expect("switch to green");
    assert_eq!(switch.active(&env, &pool).await.expect("active"), "green");
    traffic_reaches(&frontend, "green").await;

    switch
        .switch_to(&env, &pool, "blue")
        .await
        .expect("switch back to blue");
    assert_eq!(switch.active(&env, &pool).await.expect("active"), "blue");
    traffic_reaches(&frontend, "blue").await;

    // The drain off-state works too: the drained server takes no new requests.
    let draining = HaproxySwitch::new(
        haproxy.admin.trim_start_matches("ipv4@").to_owned(),
        "be_app",
        vec![("green".into(), "app_green".into())],
        "drain",
    );
    draining
        .switch_to(&env, &pool, "green")
        .await
        .expect("switch to green, draining blue");
    assert_eq!(draining.active(&env, &pool).await.expect("active"), "green");
    traffic_reaches(&frontend, "green").await;

    // Not a member: refused before touching HAProxy.
    let err = switch
        .switch_to(&env, &pool, "purple")
        .await
        .expect_err("not a member");
    assert!(matches!(err, SwitchError::Refused(_)), "{err:?}");

    // A server HAProxy does not know: HAProxy's own refusal comes through.
    let wrong = HaproxySwitch::new(
        haproxy.admin.trim_start_matches("ipv4@").to_owned(),
        "be_app",
        vec![("green".into(), "no_such_server".into())],
        "maint",
    );
    let err = wrong
        .switch_to(&env, &pool, "green")
        .await
        .expect_err("unknown server");
    assert!(
        matches!(&err, SwitchError::Refused(m) if m.contains("no_such_server")),
        "{err:?}"
    );
    assert_eq!(
        draining.active(&env, &pool).await.expect("active"),
        "green",
        "a refused switch leaves traffic where it was"
    );
}

#[tokio::test]
async fn an_unreachable_runtime_api_is_reported_quickly() {
    let port = crossroads_sim::free_port().expect("port");
    let spec = SwitchSpec::Haproxy {
        address: format!("127.0.0.1:{port}"),
        backend: "be_app".into(),
        servers: vec![],
        off_state: "drain".into(),
    };
    let (env, pool) = env_and_pool(spec.clone(), "http://127.0.0.1:1", "http://127.0.0.1:2");
    let switch = HaproxySwitch::from_spec(&spec).expect("haproxy spec");
    let started = Instant::now();
    let err = switch
        .switch_to(&env, &pool, "green")
        .await
        .expect_err("unreachable");
    assert!(
        matches!(&err, SwitchError::Unreachable { address, .. } if *address == format!("127.0.0.1:{port}")),
        "{err:?}"
    );
    let err = switch.active(&env, &pool).await.expect_err("unreachable");
    assert!(matches!(err, SwitchError::Unreachable { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3));

    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("admin.sock");
    let switch = HaproxySwitch::new(sock.display().to_string(), "be_app", vec![], "drain");
    let err = switch.active(&env, &pool).await.expect_err("no socket");
    assert!(matches!(err, SwitchError::Unreachable { .. }), "{err:?}");
}

/// A fake runtime API that answers `set` with nothing and `show servers state`
/// with blue still ready: a switch that did not take.
#[tokio::test]
async fn a_switch_that_does_not_take_is_not_applied() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = vec![0u8; 1024];
            let n = sock.read(&mut buf).await.unwrap_or(0);
            let cmd = String::from_utf8_lossy(&buf[..n]).into_owned();
            let answer = if cmd.starts_with("show servers state") {
                "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight\n\
                 3 be_app 1 blue 127.0.0.1 2 0 1\n3 be_app 2 green 127.0.0.1 2 0 1\n\n"
            } else {
                "\n"
            };
            let _ = sock.write_all(answer.as_bytes()).await;
        }
    });
    let spec = SwitchSpec::Haproxy {
        address: addr.to_string(),
        backend: "be_app".into(),
        servers: vec![],
        off_state: "drain".into(),
    };
    let (env, pool) = env_and_pool(spec.clone(), "http://127.0.0.1:1", "http://127.0.0.1:2");
    let switch = HaproxySwitch::from_spec(&spec).expect("haproxy spec");
    let err = switch
        .switch_to(&env, &pool, "green")
        .await
        .expect_err("not applied");
    assert!(
        matches!(&err, SwitchError::NotApplied(m) if m.contains("blue: ready")),
        "{err:?}"
    );
    let err = switch.active(&env, &pool).await.expect_err("two ready");
    assert!(matches!(err, SwitchError::Unknown(_)), "{err:?}");
}
