//! A fresh PostgreSQL database per test on the local server (127.0.0.1:5432, user
//! `postgres`, trust auth, or `CROSSROADS_TEST_POSTGRES`), dropped when the guard goes.
//! Under `CI=true` a missing server fails the test loudly; elsewhere the test says it
//! is skipped.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};

/// The server tests use unless `CROSSROADS_TEST_POSTGRES` names another.
pub const DEFAULT_SERVER: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A database of its own; dropped (best effort) when this goes.
pub struct FreshDatabase {
    /// Its URL.
    pub url: String,
    name: String,
    admin: String,
}

fn server() -> String {
    std::env::var("CROSSROADS_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_SERVER.to_owned())
}

/// A new, empty database on the test server; `None` (after saying so) when there is
/// no server and not in CI.
pub async fn fresh_database(test: &str) -> Option<FreshDatabase> {
    let admin = server();
    let options = match PgConnectOptions::from_str(&admin) {
        Ok(o) => o,
        Err(e) => panic!("CROSSROADS_TEST_POSTGRES is not a PostgreSQL URL: {e}"),
    };
    let mut conn = match options.clone().connect().await {
        Ok(c) => c,
        Err(e) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("PostgreSQL is not reachable at {admin} but CI=true: {e}");
            }
            eprintln!("skipped {test}: PostgreSQL is not reachable at {admin}");
            return None;
        }
    };
    let name = format!(
        "crossroads_{}_{}",
        test.chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(30)
            .collect::<String>()
            .to_ascii_lowercase(),
        std::process::id() as u64 * 1_000_000 + u64::from(rand_suffix())
    );
    if let Err(e) = sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
    {
        panic!("cannot create a test database on {admin}: {e}");
    }
    let _ = conn.close().await;
    let url = options.database(&name).to_url_lossy().to_string();
    Some(FreshDatabase { url, name, admin })
}

fn rand_suffix() -> u32 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos() % 1_000_000)
        .unwrap_or_default()
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        // Dropping needs a connection of its own, off the test's runtime.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let Ok(pool) = PgPoolOptions::new()
                    .max_connections(1)
                    .connect(&admin)
                    .await
                else {
                    return;
                };
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&pool)
                    .await;
            });
        })
        .join();
    }
}
