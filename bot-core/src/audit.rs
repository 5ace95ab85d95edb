//! The audit trail as evidence: the whole hash chain checked from its first record
//! ([`verify`]), and the chain exported as JSON Lines from a position or a time
//! ([`export`]).

use std::time::SystemTime;

use serde_json::{json, Value};

use crate::ports::store::{AuditLog, BrokenChain, ChainCheck, ChainedRecord};
use crate::ports::StoreError;

/// Records read per page while walking the chain.
const PAGE: usize = 1000;

/// A chain that checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// How many records it has.
    pub records: u64,
    /// The hash of its last record (64 zeros when empty).
    pub head: String,
    /// Whether its records are signed with the audit key (from the first signed one
    /// to the newest).
    pub signed: bool,
}

/// Why a chain did not check out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A record does not fit: it names the first one.
    #[error(transparent)]
    Broken(#[from] BrokenChain),
    /// The chain no longer holds a head kept elsewhere: cut off, rewritten, emptied.
    #[error("{0}")]
    HeadMissing(String),
    /// The chain could not be read.
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Walks the whole chain from its first record and checks every link and hash; with
/// `key`, the records must be signed with it from the first signed one to the newest.
pub async fn verify(log: &dyn AuditLog, key: Option<&[u8]>) -> Result<Verified, VerifyError> {
    let mut check = ChainCheck::new(key);
    loop {
        let page = log.chain(check.seq + 1, PAGE).await?;
        let full = page.len() == PAGE;
        check.check(&page)?;
        if !full {
            break;
        }
    }
    if key.is_some() && check.seq > 0 && !check.last_signed {
        return Err(BrokenChain {
            seq: check.seq,
            why: "the newest record is not signed with the audit key: the chain may have been rewritten without it".into(),
        }
        .into());
    }
    Ok(Verified {
        records: check.seq,
        head: check.hash,
        signed: check.signed,
    })
}

/// Checks that the chain still holds record `seq` with `hash` (a head kept
/// elsewhere): a cut-off tail, a rewritten chain or an emptied table all fail.
pub async fn holds_head(log: &dyn AuditLog, seq: u64, hash: &str) -> Result<(), VerifyError> {
    let found = log.chain(seq, 1).await?;
    match found.first() {
        Some(r) if r.seq == seq && r.hash == hash => Ok(()),
        Some(r) if r.seq == seq => Err(VerifyError::HeadMissing(format!(
            "record {seq} now has hash {}, not {hash}: the chain was rewritten",
            r.hash
        ))),
        _ => {
            let now = log.head().await?;
            Err(VerifyError::HeadMissing(match now {
                None => format!("the audit log is empty: it no longer holds record {seq} (emptied?)"),
                Some((last, _)) => format!(
                    "the chain ends at record {last}: it no longer holds record {seq} (the newest records were cut off)"
                ),
            }))
        }
    }
}

/// Where an export starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// From the record at this position (1: everything).
    Seq(u64),
    /// From the first record at or after this time.
    Time(SystemTime),
}

impl Since {
    /// Reads `since=`: a position (`42`) or an RFC 3339 time (`2026-11-30T15:00:00Z`).
    pub fn parse(text: &str) -> Result<Since, String> {
        let text = text.trim();
        if let Ok(seq) = text.parse::<u64>() {
            return Ok(Since::Seq(seq.max(1)));
        }
        humantime::parse_rfc3339_weak(text)
            .map(Since::Time)
            .map_err(|_| {
                format!("`since` must be a record number or an RFC 3339 time such as 2026-11-30T15:00:00Z, not `{text}`")
            })
    }
}

fn millis(t: SystemTime) -> u128 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
}

/// One record as its JSON line: every hashed field, the time both as RFC 3339 and in
/// milliseconds, and the chain links.
pub fn json_line(r: &ChainedRecord) -> Value {
    let rec = &r.record;
    json!({
        "seq": r.seq,
        "at": humantime::format_rfc3339_millis(rec.at).to_string(),
        "at_ms": millis(rec.at),
        "user": rec.user,
        "command": rec.command,
        "target": rec.target,
        "env": rec.env,
        "args": rec.args,
        "outcome": rec.outcome,
        "duration_ms": rec.duration.map(|d| d.as_millis()),
        "links": rec.links,
        "prev_hash": r.prev_hash,
        "hash": r.hash,
    })
}

/// The chain from `since` as JSON Lines (one record per line, each ending in `\n`).
pub async fn export(log: &dyn AuditLog, since: Since) -> Result<String, StoreError> {
    let mut out = String::new();
    let mut from = Some(first_of(since));
    while let Some(at) = from {
        let (lines, next) = page_of(log, since, at).await?;
        out.push_str(&lines);
        from = next;
    }
    Ok(out)
}

/// The chain from `since` as JSON Lines, a page at a time, for a response that is
/// sent as it is read (an export of millions of records never sits in memory).
pub fn export_stream<L: AuditLog + ?Sized + 'static>(
    log: std::sync::Arc<L>,
    since: Since,
) -> impl futures::Stream<Item = Result<String, StoreError>> + Send {
    futures::stream::try_unfold(Some(first_of(since)), move |from| {
        let log = log.clone();
        async move {
            let Some(at) = from else {
                return Ok(None);
            };
            let (lines, next) = page_of(&*log, since, at).await?;
            Ok(Some((lines, next)))
        }
    })
}

fn first_of(since: Since) -> u64 {
    match since {
        Since::Seq(seq) => seq,
        Since::Time(_) => 1,
    }
}

/// One page of the export from record `from`: its lines, and where the next page
/// starts (`None` after the last).
async fn page_of<L: AuditLog + ?Sized>(
    log: &L,
    since: Since,
    from: u64,
) -> Result<(String, Option<u64>), StoreError> {
    let page = log.chain(from, PAGE).await?;
    let mut out = String::new();
    for r in &page {
        if let Since::Time(t) = since {
            if millis(r.record.at) < millis(t) {
                continue;
            }
        }
        out.push_str(&json_line(r).to_string());
        out.push('\n');
    }
    let next = match page.last() {
        Some(last) if page.len() == PAGE => Some(last.seq + 1),
        _ => None,
    };
    Ok((out, next))
}

#[cfg(test)]
mod stream_tests {
    use super::*;
    use crate::adapters::store::memory::MemoryStore;
    use crate::ports::store::AuditRecord;

    #[tokio::test]
    async fn the_export_streams_page_by_page_and_loses_nothing() {
        let log = std::sync::Arc::new(MemoryStore::new());
        let total = 2 * PAGE + 3;
        for i in 0..total {
            log.append(AuditRecord {
                at: std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(i as u64),
                user: "U1".into(),
                command: "status".into(),
                target: String::new(),
                env: None,
                args: String::new(),
                outcome: "ok".into(),
                duration: None,
                links: Vec::new(),
            })
            .await
            .expect("append");
        }
        let pages: Vec<String> =
            futures::TryStreamExt::try_collect(export_stream(log.clone(), Since::Seq(1)))
                .await
                .expect("export");
        assert_eq!(pages.len(), 3, "one chunk per page");
        let lines: usize = pages.iter().map(|p| p.lines().count()).sum();
        assert_eq!(lines, total);
        let whole = export(&*log, Since::Seq(1)).await.expect("export");
        assert_eq!(whole, pages.concat(), "the same as the export in one piece");
    }
}
