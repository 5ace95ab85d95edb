//! The schema migrations, compiled in from `migrations/<engine>/` (by build.rs) and run by sqlx's migrator.

use std::borrow::Cow;

use futures::future::BoxFuture;
use sqlx::error::BoxDynError;
use sqlx::migrate::{MigrateError, Migration, MigrationSource, MigrationType, Migrator};

/// One migration file: its version, its description (the words of its name) and its SQL.
pub(crate) type File = (i64, &'static str, &'static str);

// `SQLITE` and `POSTGRES`: every file of each engine's directory, by version.
include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// An engine's migration files, as a source sqlx's migrator reads.
#[derive(Debug)]
struct Files(&'static [File]);

impl MigrationSource<'static> for Files {
    fn resolve(self) -> BoxFuture<'static, Result<Vec<Migration>, BoxDynError>> {
        let migrations = self
            .0
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    Cow::Borrowed(sql),
                    // As sqlx reads a migration directory: this line opts out of a transaction.
                    sql.starts_with("-- no-transaction"),
                )
            })
            .collect();
        Box::pin(async move { Ok(migrations) })
    }
}

/// The migrator for one engine's files: the same versions, descriptions and checksums as
/// sqlx's `migrate!` gives for the directory, so databases it migrated stay valid.
pub(crate) async fn migrator(files: &'static [File]) -> Result<Migrator, MigrateError> {
    Migrator::new(Files(files)).await
}
