//! State store adapters: in memory, SQLite (the embedded default) and PostgreSQL
//! (several replicas), and [`connect`], which picks one from a URL.

pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub mod sql;
#[cfg(feature = "sqlite")]
pub mod sqlite;

use std::sync::Arc;

use crate::adapters::redact::redact_url;
use crate::ports::{Store, StoreError};

/// The default store: a SQLite file in the working directory.
pub const DEFAULT_URL: &str = "sqlite://crossroads.db";

/// Opens the store `url` names — `memory:`, `sqlite://PATH` (created with its schema
/// on first start) or `postgres://…` — and, with `migrate`, brings its schema up to
/// date. Errors name the store with its password redacted, never a driver's text.
pub async fn connect(url: &str, migrate: bool) -> Result<Arc<dyn Store>, StoreError> {
    connect_keyed(url, migrate, None).await
}

/// Like [`connect`]; with `audit_key` (`CROSSROADS_AUDIT_KEY`) every audit record is
/// signed with it (HMAC-SHA256), so a database writer without the key cannot rewrite
/// the chain unseen.
pub async fn connect_keyed(
    url: &str,
    migrate: bool,
    audit_key: Option<&[u8]>,
) -> Result<Arc<dyn Store>, StoreError> {
    let url = url.trim();
    if url == "memory:" || url == "memory" {
        let store = memory::MemoryStore::new();
        if let Some(k) = audit_key {
            store.set_audit_key(k);
        }
        return Ok(Arc::new(store));
    }
    #[cfg(feature = "sqlite")]
    if url.starts_with("sqlite:") {
        let store = sqlite::open(url, migrate).await?;
        if let Some(k) = audit_key {
            store.set_audit_key(k);
        }
        return Ok(store);
    }
    #[cfg(feature = "postgres")]
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = postgres::open(url, migrate).await?;
        if let Some(k) = audit_key {
            store.set_audit_key(k);
        }
        return Ok(store);
    }
    let _ = (migrate, audit_key);
    Err(StoreError::Unavailable(format!(
        "`{}` is not a store this build knows (memory:, sqlite://…, postgres://…)",
        redact_url(url)
    )))
}
