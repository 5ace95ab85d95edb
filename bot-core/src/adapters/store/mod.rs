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
    let url = url.trim();
    if url == "memory:" || url == "memory" {
        return Ok(Arc::new(memory::MemoryStore::new()));
    }
    #[cfg(feature = "sqlite")]
    if url.starts_with("sqlite:") {
        return Ok(sqlite::open(url, migrate).await?);
    }
    #[cfg(feature = "postgres")]
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(postgres::open(url, migrate).await?);
    }
    let _ = migrate;
    Err(StoreError::Unavailable(format!(
        "`{}` is not a store this build knows (memory:, sqlite://…, postgres://…)",
        redact_url(url)
    )))
}
