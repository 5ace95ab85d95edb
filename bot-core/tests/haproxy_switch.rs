//! Switching traffic with a real HAProxy in front of two simulated instances.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bot_core::adapters::haproxy::HaproxySwitch;
use bot_core::config::{Environment, HealthRecipe, Instance, Pool, Pos, SwitchSpec};
use bot_core::ports::{SwitchError, TrafficSwitch};
use crossroads_sim::instance::{Behaviour, SimInstance};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common;

use common::haproxy::{answer_through, require_haproxy, traffic_reaches, Haproxy};

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

/// The HAProxy switch a `type: haproxy` spec describes.
fn switch_for_spec(spec: &SwitchSpec) -> HaproxySwitch {
    match spec {
        SwitchSpec::Haproxy {
            address,
            backend,
            servers,
            off_state,
        } => HaproxySwitch::new(
            address.clone(),
            backend.clone(),
            servers.clone(),
            off_state.clone(),
        ),
        other => panic!("not a haproxy spec: {other:?}"),
    }
}

fn env_and_pool(spec: SwitchSpec, blue: &str, green: &str) -> (Environment, Pool) {
    let pool = Pool {
        name: "api".into(),
        aliases: vec!["api".into()],
        switch: spec,
        deploy: None,
        members: vec![member("blue", blue), member("green", green)],
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

#[cfg_attr(
    not(haproxy),
    ignore = "haproxy not installed (apt-get install haproxy)"
)]
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
    let switch = switch_for_spec(&spec);

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
    let switch = switch_for_spec(&spec);
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
    let switch = switch_for_spec(&spec);
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

/// Waits until the runtime API answers and reports `expected` active.
async fn wait_for_api(switch: &HaproxySwitch, env: &Environment, pool: &Pool, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match switch.active(env, pool).await {
            Ok(active) if active == expected => return,
            Ok(_) | Err(SwitchError::Unreachable { .. }) | Err(SwitchError::Unknown(_))
                if Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => panic!("HAProxy never reported {expected} active: {other:?}"),
        }
    }
}

/// Waits until HAProxy's own health checks report `server` with `op_state`.
async fn wait_for_op_state(switch: &HaproxySwitch, server: &str, op_state: u8) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let states = switch.servers_state().await.expect("show servers state");
        if states
            .iter()
            .any(|s| s.name == server && s.op_state == op_state)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{server} never reached op state {op_state}: {states:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The deploy flow with `off_state: drain` and realistic health checks (`rise 3
/// inter 300ms`): the idle member restarts (HAProxy marks it DOWN), comes back
/// healthy, and the switch happens at once. HAProxy needs three good checks (about
/// 0.9 s) before it sends traffic there; the switch must wait for that before
/// draining the old member, so users never see a 503.
#[cfg_attr(
    not(haproxy),
    ignore = "haproxy not installed (apt-get install haproxy)"
)]
#[tokio::test]
async fn no_request_fails_while_switching_with_slow_health_checks() {
    if !require_haproxy() {
        return;
    }
    let blue = SimInstance::start("blue", "blue").await.expect("blue");
    let green = SimInstance::start("green", "green").await.expect("green");
    let haproxy = Haproxy::start_with_checks(
        &[("blue", blue.addr()), ("green", green.addr())],
        "inter 300ms fall 2 rise 3",
    );
    let spec = SwitchSpec::Haproxy {
        address: haproxy.admin.clone(),
        backend: "be_app".into(),
        servers: vec![],
        off_state: "drain".into(),
    };
    let (env, pool) = env_and_pool(spec.clone(), &blue.url(), &green.url());
    let switch = switch_for_spec(&spec);
    wait_for_api(&switch, &env, &pool, "blue").await;
    // Blue live, green drained (and health-checked).
    switch
        .switch_to(&env, &pool, "blue")
        .await
        .expect("blue live, green drained");
    let frontend = haproxy.frontend.clone();
    traffic_reaches(&frontend, "blue").await;

    // The deploy restarts green: HAProxy sees it DOWN, then it is healthy again.
    green.control().set_behaviour(Behaviour::Unhealthy);
    wait_for_op_state(&switch, "green", 0).await;
    green.control().set_behaviour(Behaviour::Healthy);

    // Requests through the frontend, one after another, for as long as the switch
    // takes (bounded: at most 500 requests).
    let stop = Arc::new(AtomicBool::new(false));
    let requests = {
        let stop = stop.clone();
        let frontend = frontend.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(Ordering::SeqCst) && seen.len() < 500 {
                seen.push(answer_through(&frontend).await);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            seen
        })
    };
    switch
        .switch_to(&env, &pool, "green")
        .await
        .expect("switch to green");
    // What read-back reports is what the frontend does.
    assert_eq!(switch.active(&env, &pool).await.expect("active"), "green");
    assert_eq!(
        answer_through(&frontend).await,
        Ok((200, Some("green".into()))),
        "green takes traffic as soon as the switch returns"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, Ordering::SeqCst);
    let seen = requests.await.expect("request loop");

    let failed: Vec<_> = seen.iter().filter(|a| !matches!(a, Ok((200, _)))).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed during the switch: {failed:?}",
        failed.len(),
        seen.len()
    );
    let versions: Vec<&str> = seen
        .iter()
        .filter_map(|a| a.as_ref().ok().and_then(|(_, v)| v.as_deref()))
        .collect();
    assert!(
        versions.contains(&"blue") && versions.contains(&"green"),
        "{versions:?}"
    );
}

/// A new member that never passes its health checks is not switched to: the old one
/// keeps traffic and the new one is put back in its off state.
#[cfg_attr(
    not(haproxy),
    ignore = "haproxy not installed (apt-get install haproxy)"
)]
#[tokio::test]
async fn a_server_that_never_comes_up_is_not_switched_to() {
    if !require_haproxy() {
        return;
    }
    let blue = SimInstance::start("blue", "blue").await.expect("blue");
    let green = SimInstance::start("green", "green").await.expect("green");
    let haproxy = Haproxy::start(&[("blue", blue.addr()), ("green", green.addr())]);
    let spec = SwitchSpec::Haproxy {
        address: haproxy.admin.clone(),
        backend: "be_app".into(),
        servers: vec![],
        off_state: "drain".into(),
    };
    let (env, pool) = env_and_pool(spec.clone(), &blue.url(), &green.url());
    let up_timeout = Duration::from_millis(1500);
    let switch = switch_for_spec(&spec).up_timeout(up_timeout);
    wait_for_api(&switch, &env, &pool, "blue").await;
    switch
        .switch_to(&env, &pool, "blue")
        .await
        .expect("blue live, green drained");
    green.control().set_behaviour(Behaviour::Unhealthy);
    wait_for_op_state(&switch, "green", 0).await;
    let frontend = haproxy.frontend.clone();
    traffic_reaches(&frontend, "blue").await;

    let started = Instant::now();
    let err = switch
        .switch_to(&env, &pool, "green")
        .await
        .expect_err("green never comes UP");
    let took = started.elapsed();
    assert!(
        matches!(&err, SwitchError::NotApplied(m) if m.contains("green") && m.contains("down") && m.contains("put it back in drain")),
        "{err}"
    );
    assert!(
        took >= up_timeout && took < up_timeout + Duration::from_millis(1000),
        "gave up after the wait: {took:?}"
    );
    assert_eq!(
        switch.active(&env, &pool).await.expect("active"),
        "blue",
        "blue keeps traffic"
    );
    let green_state = switch
        .servers_state()
        .await
        .expect("state")
        .into_iter()
        .find(|s| s.name == "green")
        .expect("green row");
    assert!(
        green_state.draining(),
        "green drained again: {green_state:?}"
    );
    traffic_reaches(&frontend, "blue").await;
}

/// A fake runtime API reporting blue in maintenance and green ready but DOWN:
/// nobody takes traffic, and `active` says so instead of naming green.
#[tokio::test]
async fn a_ready_server_that_is_down_is_not_active() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = vec![0u8; 1024];
            let _ = sock.read(&mut buf).await;
            let answer = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight\n\
                 3 be_app 1 blue 127.0.0.1 2 1 1\n3 be_app 2 green 127.0.0.1 0 4 1\n\n";
            let _ = sock.write_all(answer.as_bytes()).await;
        }
    });
    let spec = SwitchSpec::Haproxy {
        address: addr.to_string(),
        backend: "be_app".into(),
        servers: vec![],
        off_state: "maint".into(),
    };
    let (env, pool) = env_and_pool(spec.clone(), "http://127.0.0.1:1", "http://127.0.0.1:2");
    let switch = switch_for_spec(&spec);
    let err = switch.active(&env, &pool).await.expect_err("green is DOWN");
    assert!(
        matches!(&err, SwitchError::Unknown(m) if m.contains("green") && m.contains("DOWN") && m.contains("no traffic")),
        "{err}"
    );
}

/// The tests above are `#[ignore]`d ("haproxy not installed", shown by `cargo test`)
/// exactly where HAProxy is missing and CI is not set; under `CI=true` they run, and
/// a missing HAProxy fails them loudly.
#[test]
fn haproxy_tests_are_skipped_visibly_only_where_haproxy_is_missing() {
    let on_path = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("haproxy").is_file()));
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    assert_eq!(
        cfg!(haproxy),
        on_path || ci,
        "build.rs decided haproxy={} but on PATH={on_path}, CI={ci}: rebuild",
        cfg!(haproxy)
    );
}
