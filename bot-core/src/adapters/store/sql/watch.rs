//! The monitor's tables on SQL: the probe log (a batch in one transaction of
//! multi-row inserts) and each target's confirmed state.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use sqlx::Row;

use super::{db_error, json, ms, time, Db, SqlStore};
use crate::ports::store::StoreError;
use crate::ports::watch::{Health, Incident, ProbeLog, ProbeRecord, Watch, Watches};

/// Most rows per insert statement (8 parameters each: well under SQLite's limit).
/// Statements hold a power of two of rows, so a few prepared texts serve every batch.
const ROWS: usize = 512;
/// Parameters per row.
const PER_ROW: usize = 8;

const PROBE_COLUMNS: &str =
    "target, at_ms, health, latency_ms, status, version, reason, probe_count";

/// `INSERT INTO probes … VALUES ($1, …), …` for `rows` rows.
fn insert_sql(rows: usize) -> String {
    let mut sql = format!("INSERT INTO probes ({PROBE_COLUMNS}) VALUES ");
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 1..=PER_ROW {
            if c > 1 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(i * PER_ROW + c).to_string());
        }
        sql.push(')');
    }
    sql
}

fn probe_of<R: Row>(r: &R) -> Result<ProbeRecord, StoreError>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'d> String: sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    for<'d> Option<String>: sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    for<'d> i64: sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    for<'d> Option<i64>: sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
{
    let err = |e| db_error("read probes", e);
    let health: String = r.try_get("health").map_err(err)?;
    let latency: Option<i64> = r.try_get("latency_ms").map_err(err)?;
    let status: Option<i64> = r.try_get("status").map_err(err)?;
    let count: i64 = r.try_get("probe_count").map_err(err)?;
    Ok(ProbeRecord {
        target: r.try_get("target").map_err(err)?,
        at: time(r.try_get("at_ms").map_err(err)?),
        health: Health::parse(&health)
            .ok_or_else(|| StoreError::Failed("a stored probe is damaged".into()))?,
        latency: latency.map(|l| Duration::from_millis(u64::try_from(l).unwrap_or_default())),
        status: status.and_then(|s| u16::try_from(s).ok()),
        version: r.try_get("version").map_err(err)?,
        reason: r.try_get("reason").map_err(err)?,
        count: u32::try_from(count).unwrap_or(1).max(1),
    })
}

fn watch_of<R: Row>(r: &R) -> Result<Watch, StoreError>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'d> String: sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    for<'d> Option<String>: sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    for<'d> i64: sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
{
    let err = |e| db_error("read watches", e);
    let health: String = r.try_get("health").map_err(err)?;
    let incident: Option<String> = r.try_get("incident").map_err(err)?;
    let incident: Option<Incident> = match incident {
        Some(text) => Some(
            serde_json::from_value(json(&text)?)
                .map_err(|_| StoreError::Failed("a stored incident is damaged".into()))?,
        ),
        None => None,
    };
    Ok(Watch {
        target: r.try_get("target").map_err(err)?,
        health: Health::parse(&health)
            .ok_or_else(|| StoreError::Failed("a stored watch is damaged".into()))?,
        since: time(r.try_get("since_ms").map_err(err)?),
        reason: r.try_get("reason").map_err(err)?,
        incident,
    })
}

fn millis(d: Option<Duration>) -> Option<i64> {
    d.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[async_trait]
impl ProbeLog for SqlStore {
    async fn record_probes(&self, records: &[ProbeRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let err = |e| db_error("record probes", e);
        on_db!(&self.db, pool, _skip => {
            let mut tx = pool.begin().await.map_err(err)?;
            let mut rest = records;
            while !rest.is_empty() {
                let rows = ROWS.min(1 << rest.len().ilog2());
                let (chunk, after) = rest.split_at(rows);
                rest = after;
                let sql = insert_sql(rows);
                let mut q = sqlx::query(&sql);
                for r in chunk {
                    q = q
                        .bind(&r.target)
                        .bind(ms(r.at))
                        .bind(r.health.as_str())
                        .bind(millis(r.latency))
                        .bind(r.status.map(i64::from))
                        .bind(&r.version)
                        .bind(&r.reason)
                        .bind(i64::from(r.count.max(1)));
                }
                q.execute(&mut *tx).await.map_err(err)?;
            }
            tx.commit().await.map_err(err)?;
        });
        Ok(())
    }

    async fn probes(
        &self,
        target: &str,
        since: SystemTime,
        until: SystemTime,
        limit: usize,
    ) -> Result<Vec<ProbeRecord>, StoreError> {
        let sql = format!(
            "SELECT {PROBE_COLUMNS} FROM probes WHERE target = $1 AND at_ms >= $2 AND at_ms < $3 \
             ORDER BY at_ms, n LIMIT $4"
        );
        on_db!(&self.db, pool, _skip => {
            let rows = sqlx::query(&sql)
                .bind(target)
                .bind(ms(since))
                .bind(ms(until))
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(pool)
                .await
                .map_err(|e| db_error("read probes", e))?;
            rows.iter().map(probe_of).collect()
        })
    }

    async fn latest_probes(&self) -> Result<Vec<ProbeRecord>, StoreError> {
        // Newest by probe time, not by row: a replica that lost the lead can write
        // the probes it held back after the new leader wrote newer ones.
        let sql = format!(
            "SELECT {PROBE_COLUMNS} FROM (SELECT {PROBE_COLUMNS}, ROW_NUMBER() OVER \
             (PARTITION BY target ORDER BY at_ms DESC, n DESC) AS newest FROM probes) \
             AS ranked WHERE newest = 1"
        );
        on_db!(&self.db, pool, _skip => {
            let rows = sqlx::query(&sql)
                .fetch_all(pool)
                .await
                .map_err(|e| db_error("read latest probes", e))?;
            rows.iter().map(probe_of).collect()
        })
    }

    async fn prune_probes(&self, before: SystemTime) -> Result<u64, StoreError> {
        on_db!(&self.db, pool, _skip => {
            let done = sqlx::query("DELETE FROM probes WHERE at_ms < $1")
                .bind(ms(before))
                .execute(pool)
                .await
                .map_err(|e| db_error("prune probes", e))?;
            Ok(done.rows_affected())
        })
    }
}

#[async_trait]
impl Watches for SqlStore {
    async fn watch_of(&self, target: &str) -> Result<Option<Watch>, StoreError> {
        on_db!(&self.db, pool, _skip => {
            let row = sqlx::query(
                "SELECT target, health, since_ms, reason, incident FROM watches WHERE target = $1",
            )
            .bind(target)
            .fetch_optional(pool)
            .await
            .map_err(|e| db_error("read watches", e))?;
            row.as_ref().map(watch_of).transpose()
        })
    }

    async fn watches(&self) -> Result<Vec<Watch>, StoreError> {
        on_db!(&self.db, pool, _skip => {
            let rows = sqlx::query("SELECT target, health, since_ms, reason, incident FROM watches")
                .fetch_all(pool)
                .await
                .map_err(|e| db_error("read watches", e))?;
            rows.iter().map(watch_of).collect()
        })
    }

    async fn save_watch(&self, watch: &Watch) -> Result<(), StoreError> {
        let incident = match &watch.incident {
            Some(i) => Some(
                serde_json::to_string(i)
                    .map_err(|_| StoreError::Failed("an incident could not be written".into()))?,
            ),
            None => None,
        };
        on_db!(&self.db, pool, _skip => {
            sqlx::query(
                "INSERT INTO watches (target, health, since_ms, reason, incident) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (target) DO UPDATE SET health = excluded.health, \
                 since_ms = excluded.since_ms, reason = excluded.reason, incident = excluded.incident",
            )
            .bind(&watch.target)
            .bind(watch.health.as_str())
            .bind(ms(watch.since))
            .bind(&watch.reason)
            .bind(&incident)
            .execute(pool)
            .await
            .map_err(|e| db_error("save watch", e))?;
            Ok(())
        })
    }
}
