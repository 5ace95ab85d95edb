//! The SQLite store: one file, created with its schema on first start, in WAL mode.
//! The embedded default (`sqlite://crossroads.db`), for one process.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::adapters::store::sql::{db_error, Db, SqlStore};
use crate::ports::StoreError;

/// Opens (creating it when missing) the SQLite database at `url`; with `migrate`,
/// runs the migrations that are not applied yet.
pub async fn open(url: &str, migrate: bool) -> Result<Arc<SqlStore>, StoreError> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| db_error("open sqlite", e))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true);
    // One writer at a time is SQLite's way; a few connections let reads overlap.
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .map_err(|e| db_error("open sqlite", e))?;
    if migrate {
        use crate::adapters::store::sql::{migration_error, migrations};
        migrations::migrator(migrations::SQLITE)
            .await
            .map_err(|e| migration_error(&e))?
            .run(&pool)
            .await
            .map_err(|e| migration_error(&e))?;
    }
    Ok(SqlStore::new(Db::Sqlite(pool)))
}
