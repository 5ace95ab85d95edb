//! The PostgreSQL store: several replicas share one database; leases skip rows
//! another replica is leasing, and audit appends take a database-wide advisory lock.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::adapters::store::sql::{db_error, Db, SqlStore};
use crate::ports::StoreError;

/// Connects to the PostgreSQL database at `url`; with `migrate`, runs the migrations
/// that are not applied yet (the migrator takes a lock, so replicas starting together
/// migrate once).
pub async fn open(url: &str, migrate: bool) -> Result<Arc<SqlStore>, StoreError> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| db_error("open postgres", e))?
        .application_name("crossroads");
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .map_err(|e| db_error("open postgres", e))?;
    if migrate {
        use crate::adapters::store::sql::{migration_error, migrations};
        migrations::migrator(migrations::POSTGRES)
            .await
            .map_err(|e| migration_error(&e))?
            .run(&pool)
            .await
            .map_err(|e| migration_error(&e))?;
    }
    Ok(SqlStore::new(Db::Postgres(pool)))
}
