//! A real HAProxy from the system, run as a child process on loopback for tests: a
//! loopback-only config, `haproxy -db` killed on drop, and checks of where requests land.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// HAProxy as a child process, killed when dropped.
pub struct Haproxy {
    child: Child,
    _dir: tempfile::TempDir,
    /// Runtime API address (`ipv4@127.0.0.1:PORT`).
    pub admin: String,
    /// Frontend base URL.
    pub frontend: String,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn haproxy_installed() -> bool {
    Command::new("haproxy")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `true` when the test should go on; panics in CI when HAProxy is missing.
pub fn require_haproxy() -> bool {
    if haproxy_installed() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("haproxy is not installed but CI=true: install it (apt-get install -y haproxy)");
    }
    eprintln!("skipped: haproxy not installed");
    false
}

impl Haproxy {
    /// Starts HAProxy with backend `be_app` holding `servers` (name, address); every
    /// server after the first starts `disabled`. Health checks every 200 ms, one
    /// success to come UP.
    pub fn start(servers: &[(&str, std::net::SocketAddr)]) -> std::io::Result<Self> {
        Self::start_with_checks(servers, "inter 200ms fall 2 rise 1")
    }

    /// Like [`Haproxy::start`] with the health-check settings of the `default-server`
    /// line given, e.g. `inter 300ms fall 2 rise 3` (a server needs three successful
    /// checks, about 0.9 s, to come UP after leaving maintenance).
    pub fn start_with_checks(
        servers: &[(&str, std::net::SocketAddr)],
        checks: &str,
    ) -> std::io::Result<Self> {
        let stats_port = crate::free_port()?;
        let front_port = crate::free_port()?;
        let dir = tempfile::tempdir()?;
        let cfg = dir.path().join("haproxy.cfg");
        let mut text = format!(
            "global\n    stats socket ipv4@127.0.0.1:{stats_port} level admin\n\
             defaults\n    mode http\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
             frontend fe_app\n    bind 127.0.0.1:{front_port}\n    default_backend be_app\n\
             backend be_app\n    option httpchk GET /health\n    default-server {checks}\n"
        );
        for (i, (name, addr)) in servers.iter().enumerate() {
            text.push_str(&format!(
                "    server {name} {addr} check{}\n",
                if i == 0 { "" } else { " disabled" }
            ));
        }
        std::fs::write(&cfg, text)?;
        let child = Command::new("haproxy")
            .arg("-f")
            .arg(&cfg)
            .arg("-db")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        Ok(Self {
            child,
            _dir: dir,
            admin: format!("ipv4@127.0.0.1:{stats_port}"),
            frontend: format!("http://127.0.0.1:{front_port}"),
        })
    }
}

/// GETs `/health` through the frontend on a fresh connection; the version answered.
pub async fn version_through(frontend: &str) -> Option<String> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(2))
        .build()
        .ok()?;
    let resp = client.get(format!("{frontend}/health")).send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let v: serde_json::Value = resp.json().await.ok()?;
    v["version"].as_str().map(str::to_owned)
}

/// Waits until requests through HAProxy reach `version`, then checks a few more do too.
pub async fn traffic_reaches(frontend: &str, version: &str) {
    // Generous: HAProxy's first health checks come late on a loaded machine.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if version_through(frontend).await.as_deref() == Some(version) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "traffic through HAProxy never reached {version}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..6 {
        assert_eq!(
            version_through(frontend).await.as_deref(),
            Some(version),
            "all requests go to {version}"
        );
    }
}

/// What one request through the frontend got: the status and the version answered,
/// or why there was no answer.
pub async fn answer_through(frontend: &str) -> Result<(u16, Option<String>), String> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| e.to_string())?;
    let resp = client
        .get(format!("{frontend}/health"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let version = resp
        .json::<serde_json::Value>()
        .await
        .ok()
        .and_then(|v| v["version"].as_str().map(str::to_owned));
    Ok((status, version))
}
