//! [`SqlStore`]: the [`Store`] on SQLite or PostgreSQL through sqlx. One SQL text
//! serves both (parameters as `$1, $2 …` in order of first use, flags and times as
//! integers); the dialects differ only in how a lease query skips rows another
//! replica is leasing, and in how the audit chain is serialised. Deliveries are
//! admitted in group commits: one statement for every delivery waiting at that moment;
//! the small writes of answering them (open a message, put its content, mark the
//! delivery done) share one transaction with every other such write waiting then.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde_json::Value;
use sqlx::Row;
use tokio::sync::{mpsc, oneshot, Mutex};

use crate::ports::approvals::{vote_on, Approval, Approvals, Decision, Vote};
use crate::ports::store::{
    chain_hash, Admitted, Attempt, AuditLog, AuditRecord, ButtonSet, Buttons, ChainedRecord, Claim,
    DeployQueue, Inbound, Inbox, Lock, LockOutcome, Locks, Outbox, Outgoing, Queued, Run, RunOrder,
    RunStatus, Runs, Store, StoreError, Unlocked, GENESIS,
};

/// Most deliveries admitted in one group commit.
const GROUP: usize = 256;

/// The connection pool, by database.
#[derive(Clone)]
pub(crate) enum Db {
    /// SQLite (one process; the embedded default).
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
    /// PostgreSQL (several replicas).
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
}

/// Runs `$body` with `$pool` bound to the pool and `$skip` to the dialect's clause for
/// skipping rows another transaction has locked (empty on SQLite, which has one writer).
macro_rules! on_db {
    ($db:expr, $pool:ident, $skip:ident => $body:expr) => {
        match $db {
            #[cfg(feature = "sqlite")]
            Db::Sqlite($pool) => {
                let $skip = "";
                let _ = $skip;
                $body
            }
            #[cfg(feature = "postgres")]
            Db::Postgres($pool) => {
                let $skip = "FOR UPDATE SKIP LOCKED";
                let _ = $skip;
                $body
            }
        }
    };
}

/// A migration failure in our own words (either engine).
pub(crate) fn migration_error(e: &sqlx::migrate::MigrateError) -> StoreError {
    tracing::error!(kind = ?std::mem::discriminant(e), "a migration failed");
    StoreError::Failed(
        "the database schema could not be brought up to date (a migration failed)".into(),
    )
}

fn ms(t: SystemTime) -> i64 {
    i64::try_from(
        t.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(i64::MAX)
}

fn time(ms: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or_default())
}

fn json(text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text)
        .map_err(|_| StoreError::Failed("a stored JSON value could not be read".into()))
}

pub(crate) mod migrations;
mod watch;

/// Classifies a driver error in our own words; the log gets the kind and SQLSTATE,
/// never the driver's text (which can carry connection details).
pub(crate) fn db_error(what: &'static str, e: sqlx::Error) -> StoreError {
    let failure = match &e {
        sqlx::Error::PoolTimedOut => {
            StoreError::Unavailable("no database connection came free in time".into())
        }
        sqlx::Error::PoolClosed => StoreError::Unavailable("the connection pool is closed".into()),
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
            StoreError::Unavailable("the database cannot be reached".into())
        }
        sqlx::Error::Database(d) => StoreError::Failed(format!(
            "the database refused a statement (SQLSTATE {})",
            d.code().unwrap_or_default()
        )),
        sqlx::Error::Protocol(_) => StoreError::Unavailable("the database connection broke".into()),
        sqlx::Error::RowNotFound => StoreError::Failed("an expected row is missing".into()),
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_) => {
            StoreError::Failed("a stored value could not be read".into())
        }
        sqlx::Error::Configuration(_) => {
            StoreError::Unavailable("the database URL or its options are not valid".into())
        }
        _ => StoreError::Failed("the database failed".into()),
    };
    tracing::warn!(operation = what, error = %failure, "state store");
    failure
}

type Waiter = oneshot::Sender<Result<Admitted, StoreError>>;

/// A delivery waiting for the next group commit.
struct Pending {
    item: Inbound,
    owner: String,
    lease_until: SystemTime,
    reply: Waiter,
}

/// A small write of the reply path, waiting for the next group commit.
enum Write {
    /// `open_message`.
    Open {
        id: String,
        transport: String,
        route: String,
        about: String,
        now: i64,
    },
    /// `put_message`.
    Put {
        id: String,
        body: String,
        last: bool,
    },
    /// `complete_inbound`.
    Complete { key: String },
}

impl Write {
    /// What it is, for the log.
    fn name(&self) -> &'static str {
        match self {
            Write::Open { .. } => "open message",
            Write::Put { .. } => "put message",
            Write::Complete { .. } => "complete inbox",
        }
    }

    /// The row it writes: a group writes its rows in this order (as recorded attempts
    /// do), so two groups never wait for each other's rows crosswise.
    fn row(&self) -> (u8, &str) {
        match self {
            Write::Open { id, .. } | Write::Put { id, .. } => (0, id),
            Write::Complete { key } => (1, key),
        }
    }
}

/// [`Write`]s made together, and who waits for them.
struct Waiting {
    writes: Vec<Write>,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

/// Takes turns among this process' busiest writers on SQLite, which has one writer
/// at a time: waiting here is a queue, where SQLite's own busy handler would sleep and
/// poll. Nothing on PostgreSQL.
#[derive(Clone, Default)]
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
struct Turns(Arc<Mutex<()>>);

impl Turns {
    async fn take(&self, db: &Db) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match db {
            #[cfg(feature = "sqlite")]
            Db::Sqlite(_) => Some(self.0.lock().await),
            #[cfg(feature = "postgres")]
            Db::Postgres(_) => None,
        }
    }
}

/// The state store on a SQL database.
pub struct SqlStore {
    db: Db,
    turns: Turns,
    admit: mpsc::Sender<Pending>,
    writes: mpsc::Sender<Waiting>,
    /// Serialises appends to the audit chain within this process (PostgreSQL also
    /// takes an advisory lock, for other replicas).
    audit: Mutex<()>,
    /// Signs the audit chain (`CROSSROADS_AUDIT_KEY`), once set.
    audit_key: std::sync::OnceLock<Vec<u8>>,
}

impl SqlStore {
    /// A store on `db` (already migrated).
    pub(crate) fn new(db: Db) -> Arc<Self> {
        let (admit, rx) = mpsc::channel::<Pending>(GROUP * 16);
        let turns = Turns::default();
        tokio::spawn(admitter(db.clone(), turns.clone(), rx));
        let (writes, rx) = mpsc::channel::<Waiting>(GROUP * 16);
        tokio::spawn(writer(db.clone(), turns.clone(), rx));
        Arc::new(Self {
            db,
            turns,
            admit,
            writes,
            audit: Mutex::new(()),
            audit_key: std::sync::OnceLock::new(),
        })
    }

    /// Signs every audit record appended from now on with `key` (HMAC-SHA256); a key
    /// already set stays.
    pub fn set_audit_key(&self, key: &[u8]) {
        let _ = self.audit_key.set(key.to_vec());
    }

    /// Makes `writes` in the next group commit; answers once they are committed.
    async fn write(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.writes
            .send(Waiting { writes, reply })
            .await
            .map_err(|_| StoreError::Unavailable("the store is shutting down".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the store is shutting down".into()))?
    }

    /// Closes the pool (waiting for connections in use).
    pub async fn close(&self) {
        on_db!(&self.db, pool, _skip => pool.close().await)
    }
}

/// Admits waiting deliveries in groups: one multi-row `INSERT … ON CONFLICT DO
/// NOTHING RETURNING key` for all that are waiting when the previous one ends.
async fn admitter(db: Db, turns: Turns, mut rx: mpsc::Receiver<Pending>) {
    let mut batch: Vec<Pending> = Vec::with_capacity(GROUP);
    while rx.recv_many(&mut batch, GROUP).await > 0 {
        let result = {
            let _turn = turns.take(&db).await;
            admit_group(&db, &batch).await
        };
        let mut taken: std::collections::HashSet<String> = match &result {
            Ok(keys) => keys.iter().cloned().collect(),
            Err(_) => Default::default(),
        };
        for p in batch.drain(..) {
            let answer = match &result {
                // The first of several deliveries with one key in a group is the new one.
                Ok(_) if taken.remove(&p.item.key) => Ok(Admitted::New),
                Ok(_) => Ok(Admitted::Duplicate),
                Err(e) => Err(e.clone()),
            };
            let _ = p.reply.send(answer);
        }
    }
}

async fn admit_group(db: &Db, batch: &[Pending]) -> Result<Vec<String>, StoreError> {
    let mut sql = String::from(
        "INSERT INTO inbox (key, transport, payload, received_ms, owner, lease_until_ms) VALUES ",
    );
    for i in 0..batch.len() {
        let b = i * 6;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "(${}, ${}, ${}, ${}, ${}, ${})",
            b + 1,
            b + 2,
            b + 3,
            b + 4,
            b + 5,
            b + 6
        ));
    }
    sql.push_str(" ON CONFLICT (key) DO NOTHING RETURNING key");
    on_db!(db, pool, _skip => {
        let mut q = sqlx::query(&sql);
        for p in batch {
            q = q
                .bind(&p.item.key)
                .bind(&p.item.transport)
                .bind(p.item.payload.to_string())
                .bind(ms(p.item.received))
                .bind(&p.owner)
                .bind(ms(p.lease_until));
        }
        let rows = q.fetch_all(pool).await.map_err(|e| db_error("admit", e))?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("key").map_err(|e| db_error("admit", e)))
            .collect()
    })
}

/// Makes waiting small writes in groups: every write waiting when the previous group
/// committed goes into one transaction, in the order they came. A group that fails is
/// failed for each of its writers (nothing of it is kept).
async fn writer(db: Db, turns: Turns, mut rx: mpsc::Receiver<Waiting>) {
    let mut batch: Vec<Waiting> = Vec::with_capacity(GROUP);
    while rx.recv_many(&mut batch, GROUP).await > 0 {
        let result = {
            let _turn = turns.take(&db).await;
            write_group(&db, &batch).await
        };
        for w in batch.drain(..) {
            let _ = w.reply.send(result.clone());
        }
    }
}

async fn write_group(db: &Db, batch: &[Waiting]) -> Result<(), StoreError> {
    let name = match batch {
        [Waiting { writes, .. }] if writes.len() == 1 => writes[0].name(),
        _ => "write group",
    };
    on_db!(db, pool, _skip => {
        // Sorted by row, stably: one row's writes keep the order they came in.
        let mut writes: Vec<&Write> = batch.iter().flat_map(|w| &w.writes).collect();
        writes.sort_by(|a, b| a.row().cmp(&b.row()));
        let mut tx = pool.begin().await.map_err(|e| db_error(name, e))?;
        for w in writes {
            let q = match w {
                Write::Open { id, transport, route, about, now } => sqlx::query(
                    "INSERT INTO outbox (id, transport, route, about, next_at_ms, changed_ms) \
                     VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (id) DO NOTHING",
                )
                .bind(id)
                .bind(transport)
                .bind(route)
                .bind(about)
                .bind(*now),
                Write::Put { id, body, last } => sqlx::query(
                    "UPDATE outbox SET body = $1, version = version + 1, last = $2, \
                     attempts = CASE WHEN $2 = 1 THEN 0 ELSE attempts END \
                     WHERE id = $3 AND last = 0",
                )
                .bind(body)
                .bind(i64::from(*last))
                .bind(id),
                Write::Complete { key } => {
                    sqlx::query("UPDATE inbox SET done = 1, payload = 'null' WHERE key = $1")
                        .bind(key)
                }
            };
            q.execute(&mut *tx).await.map_err(|e| db_error(name, e))?;
        }
        tx.commit().await.map_err(|e| db_error(name, e))?;
        Ok(())
    })
}

fn inbound_of<R: Row>(r: &R) -> Result<Inbound, StoreError>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'d> String: sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    for<'d> i64: sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
{
    let get_s = |c: &str| {
        r.try_get::<String, _>(c)
            .map_err(|e| db_error("read inbox", e))
    };
    Ok(Inbound {
        key: get_s("key")?,
        transport: get_s("transport")?,
        payload: json(&get_s("payload")?)?,
        received: time(
            r.try_get::<i64, _>("received_ms")
                .map_err(|e| db_error("read inbox", e))?,
        ),
    })
}

#[async_trait]
impl Inbox for SqlStore {
    async fn admit(
        &self,
        item: &Inbound,
        owner: &str,
        lease_until: SystemTime,
    ) -> Result<Admitted, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.admit
            .send(Pending {
                item: item.clone(),
                owner: owner.to_owned(),
                lease_until,
                reply,
            })
            .await
            .map_err(|_| StoreError::Unavailable("the store is shutting down".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the store is shutting down".into()))?
    }

    async fn lease_inbound(
        &self,
        owner: &str,
        now: SystemTime,
        lease_until: SystemTime,
        limit: usize,
    ) -> Result<Vec<Inbound>, StoreError> {
        let _turn = self.turns.take(&self.db).await;
        on_db!(&self.db, pool, skip => {
            let sql = format!(
                "UPDATE inbox SET owner = $1, lease_until_ms = $2 WHERE key IN \
                 (SELECT key FROM inbox WHERE done = 0 AND lease_until_ms <= $3 \
                  ORDER BY received_ms LIMIT $4 {skip}) \
                 RETURNING key, transport, payload, received_ms"
            );
            let rows = sqlx::query(&sql)
                .bind(owner)
                .bind(ms(lease_until))
                .bind(ms(now))
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(pool)
                .await
                .map_err(|e| db_error("lease inbox", e))?;
            let mut items = rows.iter().map(inbound_of).collect::<Result<Vec<_>, _>>()?;
            items.sort_by_key(|i| i.received);
            Ok(items)
        })
    }

    async fn renew_inbound(
        &self,
        key: &str,
        owner: &str,
        lease_until: SystemTime,
    ) -> Result<bool, StoreError> {
        on_db!(&self.db, pool, _skip => {
            let done = sqlx::query(
                "UPDATE inbox SET lease_until_ms = $1 WHERE key = $2 AND owner = $3 AND done = 0",
            )
            .bind(ms(lease_until))
            .bind(key)
            .bind(owner)
            .execute(pool)
            .await
            .map_err(|e| db_error("renew inbox", e))?;
            Ok(done.rows_affected() == 1)
        })
    }

    async fn complete_inbound(&self, key: &str) -> Result<(), StoreError> {
        self.write(vec![Write::Complete {
            key: key.to_owned(),
        }])
        .await
    }

    async fn prune_inbox(&self, before: SystemTime) -> Result<u64, StoreError> {
        on_db!(&self.db, pool, _skip => {
            let done = sqlx::query("DELETE FROM inbox WHERE done = 1 AND received_ms < $1")
                .bind(ms(before))
                .execute(pool)
                .await
                .map_err(|e| db_error("prune inbox", e))?;
            Ok(done.rows_affected())
        })
    }
}

fn outgoing_of<R: Row>(r: &R) -> Result<Outgoing, StoreError>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'d> String: sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    for<'d> i64: sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
{
    let s = |c: &str| {
        r.try_get::<String, _>(c)
            .map_err(|e| db_error("read outbox", e))
    };
    let n = |c: &str| {
        r.try_get::<i64, _>(c)
            .map_err(|e| db_error("read outbox", e))
    };
    Ok(Outgoing {
        id: s("id")?,
        transport: s("transport")?,
        route: json(&s("route")?)?,
        about: s("about")?,
        body: json(&s("body")?)?,
        version: u64::try_from(n("version")?).unwrap_or_default(),
        last: n("last")? != 0,
        delivered: u64::try_from(n("delivered")?).unwrap_or_default(),
        state: json(&s("state")?)?,
        attempts: u32::try_from(n("attempts")?).unwrap_or_default(),
        next_at: time(n("next_at_ms")?),
        given_up: n("given_up")? != 0,
        in_doubt: n("doubt")? != 0,
    })
}

const OUTGOING: &str = "id, transport, route, about, body, version, last, delivered, state, \
                        attempts, next_at_ms, given_up, doubt";

#[async_trait]
impl Outbox for SqlStore {
    async fn open_message(
        &self,
        id: &str,
        transport: &str,
        route: &Value,
        about: &str,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        self.write(vec![Write::Open {
            id: id.to_owned(),
            transport: transport.to_owned(),
            route: route.to_string(),
            about: about.to_owned(),
            now: ms(now),
        }])
        .await
    }

    async fn put_message(&self, id: &str, body: &Value, last: bool) -> Result<(), StoreError> {
        self.write(vec![Write::Put {
            id: id.to_owned(),
            body: body.to_string(),
            last,
        }])
        .await
    }

    async fn lease_messages(
        &self,
        transport: &str,
        owner: &str,
        now: SystemTime,
        lease_until: SystemTime,
        limit: usize,
    ) -> Result<Vec<Outgoing>, StoreError> {
        let _turn = self.turns.take(&self.db).await;
        on_db!(&self.db, pool, skip => {
            let sql = format!(
                "UPDATE outbox SET doubt = CASE WHEN owner <> '' THEN 1 ELSE doubt END, \
                 owner = $1, lease_until_ms = $2 WHERE n IN \
                 (SELECT n FROM outbox WHERE transport = $3 AND version > delivered AND given_up = 0 \
                  AND lease_until_ms <= $4 AND (next_at_ms <= $4 OR (last = 1 AND attempts = 0)) \
                  ORDER BY n LIMIT $5 {skip}) \
                 RETURNING n, {OUTGOING}"
            );
            let rows = sqlx::query(&sql)
                .bind(owner)
                .bind(ms(lease_until))
                .bind(transport)
                .bind(ms(now))
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(pool)
                .await
                .map_err(|e| db_error("lease messages", e))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let n: i64 = r.try_get("n").map_err(|e| db_error("lease messages", e))?;
                out.push((n, outgoing_of(r)?));
            }
            out.sort_by_key(|(n, _)| *n);
            Ok(out.into_iter().map(|(_, m)| m).collect())
        })
    }

    async fn record_attempt(
        &self,
        id: &str,
        owner: &str,
        attempt: &Attempt,
    ) -> Result<(), StoreError> {
        // One statement in a transaction of its own, taking its turn as batches do.
        self.record_attempts(owner, &[(id.to_owned(), attempt.clone())])
            .await
    }

    async fn record_attempts(
        &self,
        owner: &str,
        attempts: &[(String, Attempt)],
    ) -> Result<(), StoreError> {
        if attempts.is_empty() {
            return Ok(());
        }
        // In the order of their rows, as group writes are.
        let mut attempts: Vec<&(String, Attempt)> = attempts.iter().collect();
        attempts.sort_by(|a, b| a.0.cmp(&b.0));
        let _turn = self.turns.take(&self.db).await;
        on_db!(&self.db, pool, _skip => {
            let mut tx = pool.begin().await.map_err(|e| db_error("record attempts", e))?;
            for (id, attempt) in attempts.iter().copied() {
                let q = match attempt {
                    Attempt::Delivered { version, state, next_at } => sqlx::query(
                        "UPDATE outbox SET delivered = CASE WHEN delivered > $1 THEN delivered ELSE $1 END, \
                         state = $2, attempts = 0, next_at_ms = $3, changed_ms = $3, owner = '', \
                         lease_until_ms = 0, doubt = 0 WHERE id = $4 AND owner = $5",
                    )
                    .bind(i64::try_from(*version).unwrap_or(i64::MAX))
                    .bind(state.to_string())
                    .bind(ms(*next_at))
                    .bind(id.as_str())
                    .bind(owner),
                    Attempt::Failed { retry_at: Some(at) } => sqlx::query(
                        "UPDATE outbox SET attempts = attempts + 1, next_at_ms = $1, owner = '', \
                         lease_until_ms = 0 WHERE id = $2 AND owner = $3",
                    )
                    .bind(ms(*at))
                    .bind(id.as_str())
                    .bind(owner),
                    Attempt::Unsure { retry_at } => sqlx::query(
                        "UPDATE outbox SET attempts = attempts + 1, next_at_ms = $1, owner = '', \
                         lease_until_ms = 0, doubt = 1 WHERE id = $2 AND owner = $3",
                    )
                    .bind(ms(*retry_at))
                    .bind(id.as_str())
                    .bind(owner),
                    Attempt::Failed { retry_at: None } => sqlx::query(
                        "UPDATE outbox SET attempts = attempts + 1, given_up = 1, owner = '', \
                         lease_until_ms = 0 WHERE id = $1 AND owner = $2",
                    )
                    .bind(id.as_str())
                    .bind(owner),
                };
                q.execute(&mut *tx)
                    .await
                    .map_err(|e| db_error("record attempts", e))?;
            }
            tx.commit().await.map_err(|e| db_error("record attempts", e))?;
            Ok(())
        })
    }

    async fn message(&self, id: &str) -> Result<Option<Outgoing>, StoreError> {
        on_db!(&self.db, pool, _skip => {
            let row = sqlx::query(&format!("SELECT {OUTGOING} FROM outbox WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(|e| db_error("read message", e))?;
            row.as_ref().map(outgoing_of).transpose()
        })
    }

    async fn undelivered(&self, transport: &str) -> Result<u64, StoreError> {
        on_db!(&self.db, pool, _skip => {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM outbox WHERE transport = $1 AND version > delivered AND given_up = 0",
            )
            .bind(transport)
            .fetch_one(pool)
            .await
            .map_err(|e| db_error("count messages", e))?;
            Ok(u64::try_from(n).unwrap_or_default())
        })
    }

    async fn prune_outbox(&self, before: SystemTime) -> Result<u64, StoreError> {
        on_db!(&self.db, pool, _skip => {
            let done = sqlx::query(
                "DELETE FROM outbox WHERE changed_ms < $1 AND \
                 (given_up = 1 OR (last = 1 AND delivered >= version))",
            )
            .bind(ms(before))
            .execute(pool)
            .await
            .map_err(|e| db_error("prune outbox", e))?;
            Ok(done.rows_affected())
        })
    }
}

#[async_trait]
impl Buttons for SqlStore {
    async fn issue_buttons(&self, set: &ButtonSet) -> Result<(), StoreError> {
        let actions = Value::Array(set.actions.clone()).to_string();
        on_db!(&self.db, pool, _skip => {
            // Sets live minutes: forget those expired a day before this one.
            sqlx::query("DELETE FROM button_sets WHERE expires_ms < $1")
                .bind(ms(set.expires) - 24 * 3_600_000)
                .execute(pool)
                .await
                .map_err(|e| db_error("prune buttons", e))?;
            sqlx::query(
                "INSERT INTO button_sets (id, actions, channel, issued_to, expires_ms, personal) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&set.id)
            .bind(actions)
            .bind(&set.channel)
            .bind(&set.issued_to)
            .bind(ms(set.expires))
            .bind(i64::from(set.personal))
            .execute(pool)
            .await
            .map_err(|e| db_error("issue buttons", e))?;
            Ok(())
        })
    }

    async fn button_set(&self, set_id: &str) -> Result<Option<ButtonSet>, StoreError> {
        Ok(self.read_set(set_id).await?.map(|(set, _)| set))
    }

    async fn claim_button(
        &self,
        set_id: &str,
        index: usize,
        user: &str,
        channel: Option<&str>,
        now: SystemTime,
    ) -> Result<Claim, StoreError> {
        let Some((set, used_by)) = self.read_set(set_id).await? else {
            return Ok(Claim::Unknown);
        };
        let Some(action) = set.actions.get(index).cloned() else {
            return Ok(Claim::Unknown);
        };
        // A set bound to a conversation is clicked there; a click that does not say
        // where it comes from is not one of them.
        if set.channel.is_some() && set.channel.as_deref() != channel {
            return Ok(Claim::ElsewhereIssued);
        }
        if let Some(by) = used_by {
            return Ok(Claim::AlreadyUsed { by });
        }
        if now > set.expires {
            return Ok(Claim::Expired);
        }
        let claimed = on_db!(&self.db, pool, _skip => {
            sqlx::query("UPDATE button_sets SET used_by = $1 WHERE id = $2 AND used_by IS NULL")
                .bind(user)
                .bind(set_id)
                .execute(pool)
                .await
                .map_err(|e| db_error("claim button", e))?
                .rows_affected()
        });
        if claimed == 1 {
            return Ok(Claim::Claimed(action));
        }
        // Someone else's click won in between.
        Ok(match self.read_set(set_id).await? {
            Some((_, Some(by))) => Claim::AlreadyUsed { by },
            _ => Claim::Unknown,
        })
    }
}

impl SqlStore {
    async fn read_set(&self, id: &str) -> Result<Option<(ButtonSet, Option<String>)>, StoreError> {
        on_db!(&self.db, pool, _skip => {
            let row = sqlx::query(
                "SELECT actions, channel, issued_to, expires_ms, used_by, personal FROM button_sets WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(|e| db_error("read buttons", e))?;
            let Some(r) = row else { return Ok(None) };
            let err = |e| db_error("read buttons", e);
            let actions: String = r.try_get("actions").map_err(err)?;
            let actions = match json(&actions)? {
                Value::Array(a) => a,
                _ => return Err(StoreError::Failed("a button set is damaged".into())),
            };
            Ok(Some((
                ButtonSet {
                    id: id.to_owned(),
                    actions,
                    channel: r.try_get("channel").map_err(err)?,
                    issued_to: r.try_get("issued_to").map_err(err)?,
                    expires: time(r.try_get("expires_ms").map_err(err)?),
                    personal: r.try_get::<i64, _>("personal").map_err(err)? != 0,
                },
                r.try_get("used_by").map_err(err)?,
            )))
        })
    }

    async fn read_lock(&self, env: &str) -> Result<Option<Lock>, StoreError> {
        on_db!(&self.db, pool, _skip => {
            let row = sqlx::query(
                "SELECT holder, reason, since_ms, expires_ms, action, run, fence FROM locks WHERE env = $1",
            )
            .bind(env)
            .fetch_optional(pool)
            .await
            .map_err(|e| db_error("read lock", e))?;
            let Some(r) = row else { return Ok(None) };
            let err = |e| db_error("read lock", e);
            Ok(Some(Lock {
                env: env.to_owned(),
                holder: r.try_get("holder").map_err(err)?,
                reason: r.try_get("reason").map_err(err)?,
                since: time(r.try_get("since_ms").map_err(err)?),
                expires: time(r.try_get("expires_ms").map_err(err)?),
                action: r.try_get("action").map_err(err)?,
                run: r.try_get("run").map_err(err)?,
                fence: u64::try_from(r.try_get::<i64, _>("fence").map_err(err)?).unwrap_or_default(),
            }))
        })
    }
}

#[async_trait]
impl Locks for SqlStore {
    async fn try_lock(&self, lock: Lock, now: SystemTime) -> Result<LockOutcome, StoreError> {
        let taken = on_db!(&self.db, pool, _skip => {
            sqlx::query(
                "INSERT INTO locks (env, holder, reason, since_ms, expires_ms, action, run, fence) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $9) \
                 ON CONFLICT (env) DO UPDATE SET holder = excluded.holder, reason = excluded.reason, \
                 since_ms = excluded.since_ms, expires_ms = excluded.expires_ms, \
                 action = excluded.action, run = excluded.run, fence = excluded.fence \
                 WHERE locks.expires_ms <= $8",
            )
            .bind(&lock.env)
            .bind(&lock.holder)
            .bind(&lock.reason)
            .bind(ms(lock.since))
            .bind(ms(lock.expires))
            .bind(&lock.action)
            .bind(&lock.run)
            .bind(ms(now))
            .bind(i64::try_from(lock.fence).unwrap_or(i64::MAX))
            .execute(pool)
            .await
            .map_err(|e| db_error("take lock", e))?
            .rows_affected()
        });
        if taken == 1 {
            return Ok(LockOutcome::Acquired);
        }
        match self.read_lock(&lock.env).await? {
            Some(held) => Ok(LockOutcome::HeldBy(held)),
            // Released in between: try again.
            None => Box::pin(self.try_lock(lock, now)).await,
        }
    }

    async fn unlock(&self, env: &str, now: SystemTime) -> Result<Unlocked, StoreError> {
        // One conditional statement releases a hand lock or a lapsed one; a running
        // action's lock is never taken from under it between a look and a delete.
        for _ in 0..3 {
            let released = on_db!(&self.db, pool, _skip => {
                let row = sqlx::query(
                    "DELETE FROM locks WHERE env = $1 AND (run IS NULL OR expires_ms <= $2) \
                     RETURNING holder, reason, since_ms, expires_ms, action, run, fence",
                )
                .bind(env)
                .bind(ms(now))
                .fetch_optional(pool)
                .await
                .map_err(|e| db_error("unlock", e))?;
                match row {
                    None => None,
                    Some(r) => {
                        let err = |e| db_error("unlock", e);
                        Some(Lock {
                            env: env.to_owned(),
                            holder: r.try_get("holder").map_err(err)?,
                            reason: r.try_get("reason").map_err(err)?,
                            since: time(r.try_get("since_ms").map_err(err)?),
                            expires: time(r.try_get("expires_ms").map_err(err)?),
                            action: r.try_get("action").map_err(err)?,
                            run: r.try_get("run").map_err(err)?,
                            fence: u64::try_from(r.try_get::<i64, _>("fence").map_err(err)?)
                                .unwrap_or_default(),
                        })
                    }
                }
            });
            if let Some(lock) = released {
                return Ok(Unlocked::Released(lock));
            }
            match self.read_lock(env).await? {
                None => return Ok(Unlocked::NotLocked),
                Some(held) if held.run.is_some() && held.expires > now => {
                    return Ok(Unlocked::HeldByRun(held))
                }
                // Changed between the two statements: look again.
                Some(_) => {}
            }
        }
        Err(StoreError::Failed(
            "the lock kept changing while it was being released".into(),
        ))
    }

    async fn release(&self, lock: &Lock) -> Result<bool, StoreError> {
        on_db!(&self.db, pool, _skip => {
            let done = sqlx::query(
                "DELETE FROM locks WHERE env = $1 AND holder = $2 AND since_ms = $3 AND fence = $4",
            )
            .bind(&lock.env)
            .bind(&lock.holder)
            .bind(ms(lock.since))
            .bind(i64::try_from(lock.fence).unwrap_or(i64::MAX))
            .execute(pool)
            .await
            .map_err(|e| db_error("release lock", e))?;
            Ok(done.rows_affected() == 1)
        })
    }

    async fn renew_lock(&self, lock: &Lock, until: SystemTime) -> Result<bool, StoreError> {
        on_db!(&self.db, pool, _skip => {
            let done = sqlx::query(
                "UPDATE locks SET expires_ms = $1 \
                 WHERE env = $2 AND holder = $3 AND since_ms = $4 AND fence = $5",
            )
            .bind(ms(until))
            .bind(&lock.env)
            .bind(&lock.holder)
            .bind(ms(lock.since))
            .bind(i64::try_from(lock.fence).unwrap_or(i64::MAX))
            .execute(pool)
            .await
            .map_err(|e| db_error("renew lock", e))?;
            Ok(done.rows_affected() == 1)
        })
    }

    async fn reclaim_lock(&self, lock: &Lock) -> Result<bool, StoreError> {
        let Some(run) = &lock.run else {
            return Ok(false);
        };
        on_db!(&self.db, pool, _skip => {
            let done = sqlx::query(
                "UPDATE locks SET fence = $1, expires_ms = $2 \
                 WHERE env = $3 AND holder = $4 AND since_ms = $5 AND run = $6",
            )
            .bind(i64::try_from(lock.fence).unwrap_or(i64::MAX))
            .bind(ms(lock.expires))
            .bind(&lock.env)
            .bind(&lock.holder)
            .bind(ms(lock.since))
            .bind(run)
            .execute(pool)
            .await
            .map_err(|e| db_error("reclaim lock", e))?;
            Ok(done.rows_affected() == 1)
        })
    }

    async fn lock_of(&self, env: &str, now: SystemTime) -> Result<Option<Lock>, StoreError> {
        Ok(self.read_lock(env).await?.filter(|l| l.expires > now))
    }
}

fn run_of<R: Row>(r: &R) -> Result<Run, StoreError>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'d> String: sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    for<'d> Option<String>: sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    for<'d> i64: sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
{
    let err = |e| db_error("read run", e);
    let status: String = r.try_get("status").map_err(err)?;
    Ok(Run {
        id: r.try_get("id").map_err(err)?,
        action: r.try_get("action").map_err(err)?,
        user: r.try_get("user_id").map_err(err)?,
        env: r.try_get("env").map_err(err)?,
        invocation: json(&r.try_get::<String, _>("invocation").map_err(err)?)?,
        message: r.try_get("message").map_err(err)?,
        state: json(&r.try_get::<String, _>("state").map_err(err)?)?,
        status: RunStatus::parse(&status)
            .ok_or_else(|| StoreError::Failed("a run has an unknown status".into()))?,
        fence: u64::try_from(r.try_get::<i64, _>("fence").map_err(err)?).unwrap_or_default(),
        owner: r.try_get("owner").map_err(err)?,
        lease_until: time(r.try_get("lease_until_ms").map_err(err)?),
        started: time(r.try_get("started_ms").map_err(err)?),
    })
}

const RUN: &str =
    "id, action, user_id, env, invocation, message, state, status, fence, owner, lease_until_ms, started_ms";

/// Inserts `$run` through `$exec` unless its id exists; evaluates to the rows inserted.
macro_rules! insert_run {
    ($exec:expr, $run:expr, $what:literal) => {{
        let run: &Run = $run;
        sqlx::query(&format!(
            "INSERT INTO runs ({RUN}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (id) DO NOTHING"
        ))
        .bind(&run.id)
        .bind(&run.action)
        .bind(&run.user)
        .bind(&run.env)
        .bind(run.invocation.to_string())
        .bind(&run.message)
        .bind(run.state.to_string())
        .bind(run.status.as_str())
        .bind(i64::try_from(run.fence).unwrap_or(i64::MAX))
        .bind(&run.owner)
        .bind(ms(run.lease_until))
        .bind(ms(run.started))
        .execute($exec)
        .await
        .map_err(|e| db_error($what, e))?
        .rows_affected()
    }};
}

#[async_trait]
impl Runs for SqlStore {
    async fn start_run(&self, run: &Run, handoff: Option<&str>) -> Result<bool, StoreError> {
        on_db!(&self.db, pool, _skip => {
            let mut tx = pool.begin().await.map_err(|e| db_error("start run", e))?;
            let inserted = insert_run!(&mut *tx, run, "start run");
            if inserted == 1 {
                if let Some(key) = handoff {
                    sqlx::query("UPDATE inbox SET done = 1, payload = 'null' WHERE key = $1")
                        .bind(key)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| db_error("start run", e))?;
                    sqlx::query("UPDATE runs SET status = 'done' WHERE id = $1 AND status = 'pending'")
                        .bind(key)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| db_error("start run", e))?;
                }
            }
            tx.commit().await.map_err(|e| db_error("start run", e))?;
            Ok(inserted == 1)
        })
    }

    async fn save_run(
        &self,
        id: &str,
        fence: u64,
        state: &Value,
        status: RunStatus,
        lease_until: SystemTime,
    ) -> Result<bool, StoreError> {
        on_db!(&self.db, pool, _skip => {
            let done = sqlx::query(
                "UPDATE runs SET state = $1, status = $2, lease_until_ms = $3 \
                 WHERE id = $4 AND fence = $5 AND status IN ('running', 'pending')",
            )
            .bind(state.to_string())
            .bind(status.as_str())
            .bind(ms(lease_until))
            .bind(id)
            .bind(i64::try_from(fence).unwrap_or(i64::MAX))
            .execute(pool)
            .await
            .map_err(|e| db_error("save run", e))?;
            Ok(done.rows_affected() == 1)
        })
    }

    async fn finish_run(
        &self,
        id: &str,
        fence: u64,
        state: &Value,
        status: RunStatus,
    ) -> Result<bool, StoreError> {
        let fence = i64::try_from(fence).unwrap_or(i64::MAX);
        on_db!(&self.db, pool, _skip => {
            let mut tx = pool.begin().await.map_err(|e| db_error("finish run", e))?;
            let done = sqlx::query(
                "UPDATE runs SET state = $1, status = $2 \
                 WHERE id = $3 AND fence = $4 AND status IN ('running', 'pending')",
            )
            .bind(state.to_string())
            .bind(status.as_str())
            .bind(id)
            .bind(fence)
            .execute(&mut *tx)
            .await
            .map_err(|e| db_error("finish run", e))?
            .rows_affected();
            if done != 1 {
                return Ok(false);
            }
            sqlx::query("DELETE FROM locks WHERE run = $1 AND fence = $2")
                .bind(id)
                .bind(fence)
                .execute(&mut *tx)
                .await
                .map_err(|e| db_error("finish run", e))?;
            tx.commit().await.map_err(|e| db_error("finish run", e))?;
            Ok(true)
        })
    }

    async fn take_over_runs(
        &self,
        owner: &str,
        now: SystemTime,
        lease_until: SystemTime,
        limit: usize,
    ) -> Result<Vec<Run>, StoreError> {
        on_db!(&self.db, pool, skip => {
            let sql = format!(
                "UPDATE runs SET fence = fence + 1, owner = $1, lease_until_ms = $2 WHERE n IN \
                 (SELECT n FROM runs WHERE status IN ('running', 'pending') AND lease_until_ms <= $3 \
                  ORDER BY n LIMIT $4 {skip}) RETURNING n, {RUN}"
            );
            let rows = sqlx::query(&sql)
                .bind(owner)
                .bind(ms(lease_until))
                .bind(ms(now))
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(pool)
                .await
                .map_err(|e| db_error("take over runs", e))?;
            let mut runs = Vec::with_capacity(rows.len());
            for r in &rows {
                let n: i64 = r.try_get("n").map_err(|e| db_error("take over runs", e))?;
                runs.push((n, run_of(r)?));
            }
            runs.sort_by_key(|(n, _)| *n);
            Ok(runs.into_iter().map(|(_, r)| r).collect())
        })
    }

    async fn run(&self, id: &str) -> Result<Option<Run>, StoreError> {
        on_db!(&self.db, pool, _skip => {
            let row = sqlx::query(&format!("SELECT {RUN} FROM runs WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(|e| db_error("read run", e))?;
            row.as_ref().map(run_of).transpose()
        })
    }

    async fn recent_runs(&self, env: Option<&str>, limit: usize) -> Result<Vec<Run>, StoreError> {
        on_db!(&self.db, pool, _skip => {
            let rows = sqlx::query(&format!(
                "SELECT {RUN} FROM runs WHERE ($1 IS NULL OR env = $1) ORDER BY n DESC LIMIT $2"
            ))
            .bind(env)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(pool)
            .await
            .map_err(|e| db_error("recent runs", e))?;
            rows.iter().map(run_of).collect()
        })
    }

    async fn order_run(
        &self,
        id: &str,
        order: &str,
        user: &str,
        at: SystemTime,
    ) -> Result<Option<u64>, StoreError> {
        on_db!(&self.db, pool, _skip => {
            let row = sqlx::query(
                "INSERT INTO run_orders (run_id, orders, user_id, at_ms) \
                 SELECT $1, $2, $3, $4 WHERE EXISTS \
                 (SELECT 1 FROM runs WHERE id = $1 AND status = 'running') RETURNING seq",
            )
            .bind(id)
            .bind(order)
            .bind(user)
            .bind(ms(at))
            .fetch_optional(pool)
            .await
            .map_err(|e| db_error("order a run", e))?;
            match row {
                Some(r) => {
                    let seq: i64 = r.try_get("seq").map_err(|e| db_error("order a run", e))?;
                    Ok(Some(u64::try_from(seq).unwrap_or_default()))
                }
                None => Ok(None),
            }
        })
    }

    async fn run_orders(&self, id: &str, after: u64) -> Result<Vec<RunOrder>, StoreError> {
        on_db!(&self.db, pool, _skip => {
            let rows = sqlx::query(
                "SELECT seq, orders, user_id, at_ms FROM run_orders \
                 WHERE run_id = $1 AND seq > $2 ORDER BY seq",
            )
            .bind(id)
            .bind(i64::try_from(after).unwrap_or(i64::MAX))
            .fetch_all(pool)
            .await
            .map_err(|e| db_error("read a run's orders", e))?;
            rows.iter()
                .map(|r| {
                    let err = |e| db_error("read a run's orders", e);
                    Ok(RunOrder {
                        seq: u64::try_from(r.try_get::<i64, _>("seq").map_err(err)?)
                            .unwrap_or_default(),
                        order: r.try_get("orders").map_err(err)?,
                        user: r.try_get("user_id").map_err(err)?,
                        at: time(r.try_get("at_ms").map_err(err)?),
                    })
                })
                .collect()
        })
    }
}

fn queued_of<R: Row>(r: &R) -> Result<Queued, StoreError>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'d> String: sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    for<'d> Option<String>: sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    for<'d> i64: sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
{
    let err = |e| db_error("read deploy queue", e);
    Ok(Queued {
        id: r.try_get("id").map_err(err)?,
        seq: u64::try_from(r.try_get::<i64, _>("seq").map_err(err)?).unwrap_or_default(),
        env: r.try_get("env").map_err(err)?,
        user: r.try_get("user_id").map_err(err)?,
        invocation: json(&r.try_get::<String, _>("invocation").map_err(err)?)?,
        channel: r.try_get("channel").map_err(err)?,
        since: time(r.try_get("since_ms").map_err(err)?),
    })
}

const QUEUED: &str = "seq, id, env, user_id, invocation, channel, since_ms";

#[async_trait]
impl DeployQueue for SqlStore {
    async fn enqueue(&self, item: &Queued) -> Result<u64, StoreError> {
        on_db!(&self.db, pool, _skip => {
            let row = if item.seq == 0 {
                sqlx::query(
                    "INSERT INTO deploy_queue (id, env, user_id, invocation, channel, since_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq",
                )
                .bind(&item.id)
                .bind(&item.env)
                .bind(&item.user)
                .bind(item.invocation.to_string())
                .bind(&item.channel)
                .bind(ms(item.since))
                .fetch_one(pool)
                .await
            } else {
                sqlx::query(&format!(
                    "INSERT INTO deploy_queue ({QUEUED}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     RETURNING seq"
                ))
                .bind(i64::try_from(item.seq).unwrap_or(i64::MAX))
                .bind(&item.id)
                .bind(&item.env)
                .bind(&item.user)
                .bind(item.invocation.to_string())
                .bind(&item.channel)
                .bind(ms(item.since))
                .fetch_one(pool)
                .await
            }
            .map_err(|e| db_error("queue a deploy", e))?;
            let seq: i64 = row.try_get("seq").map_err(|e| db_error("queue a deploy", e))?;
            Ok(u64::try_from(seq).unwrap_or_default())
        })
    }

    async fn queued(&self, env: Option<&str>) -> Result<Vec<Queued>, StoreError> {
        on_db!(&self.db, pool, _skip => {
            let rows = sqlx::query(&format!(
                "SELECT {QUEUED} FROM deploy_queue WHERE ($1 IS NULL OR env = $1) ORDER BY seq"
            ))
            .bind(env)
            .fetch_all(pool)
            .await
            .map_err(|e| db_error("read deploy queue", e))?;
            rows.iter().map(queued_of).collect()
        })
    }

    async fn dequeue(&self, id: &str, start: Option<&Run>) -> Result<Option<Queued>, StoreError> {
        on_db!(&self.db, pool, _skip => {
            let mut tx = pool.begin().await.map_err(|e| db_error("dequeue a deploy", e))?;
            let row = sqlx::query(&format!(
                "DELETE FROM deploy_queue WHERE id = $1 RETURNING {QUEUED}"
            ))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| db_error("dequeue a deploy", e))?;
            let item = row.as_ref().map(queued_of).transpose()?;
            if item.is_some() {
                if let Some(run) = start {
                    insert_run!(&mut *tx, run, "dequeue a deploy");
                }
            }
            tx.commit().await.map_err(|e| db_error("dequeue a deploy", e))?;
            Ok(item)
        })
    }
}

fn record_of<R: Row>(r: &R) -> Result<ChainedRecord, StoreError>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'d> String: sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    for<'d> Option<String>: sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    for<'d> i64: sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    for<'d> Option<i64>: sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
{
    let err = |e| db_error("read audit", e);
    let links: Vec<String> =
        serde_json::from_str(&r.try_get::<String, _>("links").map_err(err)?)
            .map_err(|_| StoreError::Failed("an audit record's links could not be read".into()))?;
    Ok(ChainedRecord {
        seq: u64::try_from(r.try_get::<i64, _>("seq").map_err(err)?).unwrap_or_default(),
        record: AuditRecord {
            at: time(r.try_get("at_ms").map_err(err)?),
            user: r.try_get("user_id").map_err(err)?,
            command: r.try_get("command").map_err(err)?,
            target: r.try_get("target").map_err(err)?,
            env: r.try_get("env").map_err(err)?,
            args: r.try_get("args").map_err(err)?,
            outcome: r.try_get("outcome").map_err(err)?,
            duration: r
                .try_get::<Option<i64>, _>("duration_ms")
                .map_err(err)?
                .map(|d| Duration::from_millis(u64::try_from(d).unwrap_or_default())),
            links,
        },
        prev_hash: r.try_get("prev_hash").map_err(err)?,
        hash: r.try_get("hash").map_err(err)?,
    })
}

const AUDIT: &str =
    "seq, at_ms, user_id, command, target, env, args, outcome, duration_ms, links, prev_hash, hash";

#[async_trait]
impl AuditLog for SqlStore {
    async fn append(&self, record: AuditRecord) -> Result<(), StoreError> {
        // Kept to the millisecond, as stored, so the hash verifies after reading back.
        let record = AuditRecord {
            at: time(ms(record.at)),
            duration: record
                .duration
                .map(|d| Duration::from_millis(d.as_millis() as u64)),
            ..record
        };
        let _serial = self.audit.lock().await;
        on_db!(&self.db, pool, skip => {
            // SQLite: take the write lock before reading the head, so a second process
            // on the same file waits instead of failing its upgrade.
            let begin = if skip.is_empty() { "BEGIN IMMEDIATE" } else { "BEGIN" };
            let mut tx = pool
                .begin_with(begin)
                .await
                .map_err(|e| db_error("append audit", e))?;
            if !skip.is_empty() {
                // Other replicas append too: one at a time, for the whole database.
                sqlx::query("SELECT pg_advisory_xact_lock(7216385441)")
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| db_error("append audit", e))?;
            }
            let last = sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| db_error("append audit", e))?;
            let (seq, prev_hash) = match last {
                Some(r) => (
                    r.try_get::<i64, _>("seq").map_err(|e| db_error("append audit", e))? + 1,
                    r.try_get::<String, _>("hash").map_err(|e| db_error("append audit", e))?,
                ),
                None => (1, GENESIS.to_owned()),
            };
            let hash = chain_hash(
                self.audit_key.get().map(Vec::as_slice),
                u64::try_from(seq).unwrap_or_default(),
                &prev_hash,
                &record,
            );
            sqlx::query(&format!(
                "INSERT INTO audit ({AUDIT}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            ))
            .bind(seq)
            .bind(ms(record.at))
            .bind(&record.user)
            .bind(&record.command)
            .bind(&record.target)
            .bind(&record.env)
            .bind(&record.args)
            .bind(&record.outcome)
            .bind(record.duration.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
            .bind(serde_json::to_string(&record.links).unwrap_or_else(|_| "[]".into()))
            .bind(&prev_hash)
            .bind(&hash)
            .execute(&mut *tx)
            .await
            .map_err(|e| db_error("append audit", e))?;
            tx.commit().await.map_err(|e| db_error("append audit", e))?;
            Ok(())
        })
    }

    async fn history(
        &self,
        env: Option<&str>,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        on_db!(&self.db, pool, _skip => {
            let rows = sqlx::query(&format!(
                "SELECT {AUDIT} FROM audit WHERE ($1 IS NULL OR env = $1) ORDER BY seq DESC LIMIT $2 OFFSET $3"
            ))
            .bind(env)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .fetch_all(pool)
            .await
            .map_err(|e| db_error("read history", e))?;
            rows.iter().map(|r| record_of(r).map(|c| c.record)).collect()
        })
    }

    async fn chain(&self, from: u64, limit: usize) -> Result<Vec<ChainedRecord>, StoreError> {
        on_db!(&self.db, pool, _skip => {
            let rows = sqlx::query(&format!(
                "SELECT {AUDIT} FROM audit WHERE seq >= $1 ORDER BY seq LIMIT $2"
            ))
            .bind(i64::try_from(from).unwrap_or(i64::MAX))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(pool)
            .await
            .map_err(|e| db_error("read audit chain", e))?;
            rows.iter().map(record_of).collect()
        })
    }

    async fn head(&self) -> Result<Option<(u64, String)>, StoreError> {
        on_db!(&self.db, pool, _skip => {
            let row = sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
                .fetch_optional(pool)
                .await
                .map_err(|e| db_error("read audit head", e))?;
            let Some(r) = row else { return Ok(None) };
            let err = |e| db_error("read audit head", e);
            Ok(Some((
                u64::try_from(r.try_get::<i64, _>("seq").map_err(err)?).unwrap_or_default(),
                r.try_get::<String, _>("hash").map_err(err)?,
            )))
        })
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn ping(&self) -> Result<(), StoreError> {
        on_db!(&self.db, pool, _skip => {
            sqlx::query("SELECT 1")
                .execute(pool)
                .await
                .map_err(|e| db_error("ping", e))?;
            Ok(())
        })
    }

    async fn answer_inbound(&self, key: &str, id: &str, body: &Value) -> Result<(), StoreError> {
        self.write(vec![
            Write::Put {
                id: id.to_owned(),
                body: body.to_string(),
                last: true,
            },
            Write::Complete {
                key: key.to_owned(),
            },
        ])
        .await
    }

    async fn prune_history(&self, before: SystemTime) -> Result<u64, StoreError> {
        let before = ms(before);
        on_db!(&self.db, pool, _skip => {
            let mut gone = 0;
            for (what, sql) in [
                ("prune buttons", "DELETE FROM button_sets WHERE expires_ms < $1"),
                ("prune approvals", "DELETE FROM approvals WHERE expires_ms < $1"),
                (
                    "prune runs",
                    "DELETE FROM runs WHERE status IN ('done', 'failed') AND started_ms < $1 \
                     AND n NOT IN (SELECT MAX(n) FROM runs WHERE status IN ('done', 'failed') \
                     GROUP BY env, action)",
                ),
            ] {
                gone += sqlx::query(sql)
                    .bind(before)
                    .execute(pool)
                    .await
                    .map_err(|e| db_error(what, e))?
                    .rows_affected();
            }
            Ok(gone)
        })
    }
}

fn approval_of(body: &str) -> Result<Approval, StoreError> {
    serde_json::from_str(body)
        .map_err(|_| StoreError::Failed("a stored approval could not be read".into()))
}

fn approval_body(a: &Approval) -> Result<String, StoreError> {
    serde_json::to_string(a)
        .map_err(|_| StoreError::Failed("an approval could not be serialised".into()))
}

#[async_trait]
impl Approvals for SqlStore {
    async fn request_approval(&self, approval: &Approval) -> Result<(), StoreError> {
        let body = approval_body(approval)?;
        on_db!(&self.db, pool, _skip => {
            sqlx::query(
                "INSERT INTO approvals (id, requester, status, expires_ms, body, version) VALUES ($1, $2, $3, $4, $5, 0)",
            )
            .bind(&approval.id)
            .bind(&approval.requester)
            .bind(approval.status.as_str())
            .bind(ms(approval.expires))
            .bind(&body)
            .execute(pool)
            .await
            .map_err(|e| db_error("request approval", e))?;
            Ok(())
        })
    }

    async fn approval(&self, id: &str) -> Result<Option<Approval>, StoreError> {
        on_db!(&self.db, pool, _skip => {
            let row = sqlx::query("SELECT body FROM approvals WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(|e| db_error("read approval", e))?;
            match row {
                Some(r) => Ok(Some(approval_of(
                    &r.try_get::<String, _>("body").map_err(|e| db_error("read approval", e))?,
                )?)),
                None => Ok(None),
            }
        })
    }

    async fn vote(
        &self,
        id: &str,
        user: &str,
        decision: &Decision,
        now: SystemTime,
        start: Option<&Run>,
    ) -> Result<Vote, StoreError> {
        // Optimistic: read the request and its version, decide, and write only if
        // nobody wrote in between; otherwise read again. Of two votes at once, one
        // write wins and the other is decided on what that one left. The vote that
        // approves writes the run that carries the request out in the same transaction.
        on_db!(&self.db, pool, _skip => {
            loop {
                let read = sqlx::query("SELECT body, version FROM approvals WHERE id = $1")
                    .bind(id)
                    .fetch_optional(pool)
                    .await
                    .map_err(|e| db_error("read approval", e))?;
                let Some(row) = read else {
                    return Ok(Vote::Unknown);
                };
                let current = approval_of(
                    &row.try_get::<String, _>("body")
                        .map_err(|e| db_error("read approval", e))?,
                )?;
                let version: i64 = row
                    .try_get("version")
                    .map_err(|e| db_error("read approval", e))?;
                let (vote, next) = vote_on(&current, user, decision, now);
                let Some(next) = next else {
                    return Ok(vote);
                };
                let body = approval_body(&next)?;
                let mut tx = pool.begin().await.map_err(|e| db_error("vote on approval", e))?;
                let written = sqlx::query(
                    "UPDATE approvals SET status = $1, body = $2, version = version + 1 WHERE id = $3 AND version = $4",
                )
                .bind(next.status.as_str())
                .bind(&body)
                .bind(id)
                .bind(version)
                .execute(&mut *tx)
                .await
                .map_err(|e| db_error("vote on approval", e))?
                .rows_affected();
                if written == 1 {
                    if let (Vote::Approved(_), Some(run)) = (&vote, start) {
                        insert_run!(&mut *tx, run, "vote on approval");
                    }
                    tx.commit().await.map_err(|e| db_error("vote on approval", e))?;
                    return Ok(vote);
                }
            }
        })
    }
}
