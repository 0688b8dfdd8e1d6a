//! The ledger tables of a vault database: appending hash-chained entries inside a write
//! transaction (the chain head is read under the write lock, so several processes can append
//! to one chain), and reading entries back for `ledger show` and `ledger verify`.
//!
//! Entry content, encoding and hashing live in `aegis_core::ledger`; this module only stores.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};

use aegis_core::ledger::{
    EntryColumns, EntryContent, EntryKind, LedgerEntry, Outcome, SystemEvent, Via, genesis,
};
use aegis_core::timestamp::Timestamp;

use crate::error::StoreError;

/// Which entries `ledger show` and `ledger export` want.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerFilter {
    /// Only this service.
    pub service: Option<String>,
    /// Only this agent.
    pub agent: Option<String>,
    /// Only refused requests.
    pub blocked: bool,
    /// Only system events.
    pub system: bool,
    /// Not before this time.
    pub since: Option<Timestamp>,
    /// Not after this time.
    pub until: Option<Timestamp>,
}

impl LedgerFilter {
    /// The SQL condition and its bound values (all bound, never spliced).
    pub(crate) fn to_sql(&self) -> (String, Vec<FilterValue>) {
        let mut clauses = vec!["id > ?".to_owned()];
        let mut values = Vec::new();
        if let Some(service) = &self.service {
            clauses.push("service = ?".to_owned());
            values.push(FilterValue::Text(service.clone()));
        }
        if let Some(agent) = &self.agent {
            clauses.push("agent = ?".to_owned());
            values.push(FilterValue::Text(agent.clone()));
        }
        if self.blocked {
            clauses.push("outcome = 'blocked'".to_owned());
        }
        if self.system {
            clauses.push("kind = 'system'".to_owned());
        }
        if let Some(since) = self.since {
            clauses.push("ts >= ?".to_owned());
            values.push(FilterValue::Int(since.as_millis()));
        }
        if let Some(until) = self.until {
            clauses.push("ts <= ?".to_owned());
            values.push(FilterValue::Int(until.as_millis()));
        }
        (clauses.join(" AND "), values)
    }
}

/// A value bound into a filter query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FilterValue {
    /// A text column value.
    Text(String),
    /// An integer column value.
    Int(i64),
}

/// The last entry of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerHead {
    /// Id of the last entry (0 for an empty chain).
    pub last_id: u64,
    /// Hash of the last entry (the genesis value for an empty chain).
    pub last_hash: [u8; 32],
}

/// Appends one entry inside `tx`, which must already hold the database's write lock. The id is
/// the head's plus one, the time is `now` or the head's if that is later (times never go
/// backwards along the chain), and the hash chains onto the head.
pub(crate) async fn append_in(
    tx: &mut Transaction<'_, Sqlite>,
    vault_id: &uuid::Uuid,
    content: EntryContent,
    now: Timestamp,
) -> Result<LedgerEntry, StoreError> {
    let head = read_head(tx, vault_id).await?;
    let (last_id, last_hash) = (head.head.last_id, head.head.last_hash);
    let entry = LedgerEntry::chained(last_id + 1, head.next_ts(now), content, last_hash);
    insert(tx, vec![entry.clone().into_columns()]).await?;
    move_head(tx, entry.id(), entry.hash(), entry.ts()).await?;
    Ok(entry)
}

/// Appends several entries inside `tx` (which holds the write lock): the head is read once,
/// the entries are chained in memory and moved into multi-row statements, and the head moved
/// once. Returns the new head (the old one when `contents` is empty).
pub(crate) async fn append_many_in(
    tx: &mut Transaction<'_, Sqlite>,
    vault_id: &uuid::Uuid,
    contents: Vec<EntryContent>,
    now: Timestamp,
) -> Result<LedgerHead, StoreError> {
    let head = read_head(tx, vault_id).await?;
    let ts = head.next_ts(now);
    let (mut id, mut prev) = (head.head.last_id, head.head.last_hash);
    let mut rows = Vec::with_capacity(contents.len());
    for content in contents {
        id += 1;
        let entry = LedgerEntry::chained(id, ts, content, prev);
        prev = *entry.hash();
        rows.push(entry.into_columns());
    }
    // Statements of a few fixed sizes only (the largest that fits, then smaller powers of
    // two), so the connection's prepared-statement cache holds a handful of them rather than
    // one per batch size.
    let mut rows = rows.into_iter();
    let mut left = rows.len();
    while left > 0 {
        let size = chunk_size(left);
        insert(tx, rows.by_ref().take(size).collect()).await?;
        left -= size;
    }
    if id == head.head.last_id {
        return Ok(head.head);
    }
    move_head(tx, id, &prev, ts).await?;
    Ok(LedgerHead {
        last_id: id,
        last_hash: prev,
    })
}

/// The head as read inside an append, with the time of the last entry.
struct HeadForAppend {
    head: LedgerHead,
    last_ts: i64,
}

impl HeadForAppend {
    /// The time the next entries get: `now`, or the head's if the clock went backwards.
    fn next_ts(&self, now: Timestamp) -> Timestamp {
        Timestamp::from_millis(now.as_millis().max(self.last_ts))
    }
}

async fn read_head(
    tx: &mut Transaction<'_, Sqlite>,
    vault_id: &uuid::Uuid,
) -> Result<HeadForAppend, StoreError> {
    let head =
        sqlx::query("SELECT last_id, last_hash, last_ts FROM ledger_head WHERE singleton = 1")
            .fetch_optional(&mut **tx)
            .await
            .map_err(StoreError::db("reading the ledger head"))?;
    let (last_id, last_hash, last_ts) = match head {
        Some(row) => {
            let hash: Vec<u8> = row.get("last_hash");
            let hash: [u8; 32] = hash.try_into().map_err(|_| invalid_head())?;
            (
                to_u64(row.get("last_id"))?,
                hash,
                row.get::<i64, _>("last_ts"),
            )
        }
        None => (0, genesis(vault_id), i64::MIN),
    };
    Ok(HeadForAppend {
        head: LedgerHead { last_id, last_hash },
        last_ts,
    })
}

async fn move_head(
    tx: &mut Transaction<'_, Sqlite>,
    last_id: u64,
    last_hash: &[u8; 32],
    last_ts: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO ledger_head (singleton, last_id, last_hash, last_ts) VALUES (1, ?, ?, ?) \
         ON CONFLICT (singleton) DO UPDATE SET last_id = excluded.last_id, \
         last_hash = excluded.last_hash, last_ts = excluded.last_ts",
    )
    .bind(to_i64(last_id)?)
    .bind(last_hash.as_slice())
    .bind(last_ts.as_millis())
    .execute(&mut **tx)
    .await
    .map_err(StoreError::db("moving the ledger head"))?;
    Ok(())
}

/// Most rows per multi-row INSERT (23 parameters each stays far below SQLite's limit of 32,766
/// variables). A prepared statement of this size takes about a megabyte.
const ROWS_PER_INSERT: usize = 256;

/// The rows of the next INSERT when `left` remain: [`ROWS_PER_INSERT`], or the largest power
/// of two not above `left`.
fn chunk_size(left: usize) -> usize {
    if left >= ROWS_PER_INSERT {
        ROWS_PER_INSERT
    } else {
        1 << left.ilog2()
    }
}

/// Takes SQLite's write lock before the head is read, so two appenders never read the same head.
pub(crate) async fn lock_for_append(tx: &mut Transaction<'_, Sqlite>) -> Result<(), StoreError> {
    sqlx::query("UPDATE ledger_head SET last_id = last_id WHERE singleton = 1")
        .execute(&mut **tx)
        .await
        .map_err(StoreError::db("locking the ledger head"))?;
    Ok(())
}

/// Inserts rows, moving their values into the statement (no copies of the texts).
async fn insert(
    tx: &mut Transaction<'_, Sqlite>,
    rows: Vec<EntryColumns>,
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut sql = String::with_capacity(300 + rows.len() * 72);
    sql.push_str(
        "INSERT INTO ledger (id, ts, kind, outcome, event, request_id, via, instance, actor, \
         agent, credential, service, method, target_host, path, status_code, denial_code, \
         latency_ms, bytes_in, bytes_out, detail, prev_hash, hash) VALUES ",
    );
    for i in 0..rows.len() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    }
    let mut query = sqlx::query(&sql);
    for r in rows {
        query = query
            .bind(to_i64(r.id)?)
            .bind(r.ts.as_millis())
            .bind(r.kind.as_str())
            .bind(r.outcome.map(Outcome::as_str))
            .bind(r.event.map(SystemEvent::as_str))
            .bind(r.request_id)
            .bind(r.via.as_str())
            .bind(r.instance)
            .bind(r.actor)
            .bind(r.agent)
            .bind(r.credential)
            .bind(r.service)
            .bind(r.method)
            .bind(r.target_host)
            .bind(r.path)
            .bind(r.status_code.map(i64::from))
            .bind(r.denial_code)
            .bind(r.latency_ms.map(to_i64).transpose()?)
            .bind(r.bytes_in.map(to_i64).transpose()?)
            .bind(r.bytes_out.map(to_i64).transpose()?)
            .bind(r.detail_jcs)
            .bind(r.prev_hash.to_vec())
            .bind(r.hash.to_vec());
    }
    query
        .execute(&mut **tx)
        .await
        .map_err(StoreError::db("appending to the ledger"))?;
    Ok(())
}

/// Reads a row selected with [`LEDGER_COLUMNS`] into its columns, by position.
pub(crate) fn columns_from_row(row: &SqliteRow) -> Result<EntryColumns, StoreError> {
    let id = to_u64(row.try_get(0).map_err(undecodable)?)?;
    let invalid = |field| StoreError::InvalidRow {
        table: "ledger",
        row: id.to_string(),
        field,
    };
    let text = |i: usize, field| {
        row.try_get::<Option<String>, _>(i)
            .map_err(|_| invalid(field))
    };
    let number = |i: usize, field| -> Result<Option<u64>, StoreError> {
        row.try_get::<Option<i64>, _>(i)
            .map_err(|_| invalid(field))?
            .map(|v| u64::try_from(v).map_err(|_| invalid(field)))
            .transpose()
    };
    let required = |i: usize, field| text(i, field)?.ok_or_else(|| invalid(field));
    let hash = |i: usize, field| -> Result<[u8; 32], StoreError> {
        let bytes: Vec<u8> = row.try_get(i).map_err(|_| invalid(field))?;
        bytes.try_into().map_err(|_| invalid(field))
    };
    let kind = EntryKind::parse(&required(2, "kind")?).ok_or_else(|| invalid("kind"))?;
    let outcome = match text(3, "outcome")? {
        Some(v) => Some(Outcome::parse(&v).ok_or_else(|| invalid("outcome"))?),
        None => None,
    };
    let event = match text(4, "event")? {
        Some(v) => Some(SystemEvent::parse(&v).ok_or_else(|| invalid("event"))?),
        None => None,
    };
    let status_code = number(15, "status_code")?
        .map(|v| u16::try_from(v).map_err(|_| invalid("status_code")))
        .transpose()?;
    Ok(EntryColumns {
        id,
        ts: Timestamp::from_millis(row.try_get(1).map_err(|_| invalid("ts"))?),
        kind,
        outcome,
        event,
        request_id: text(5, "request_id")?,
        via: Via::parse(&required(6, "via")?).ok_or_else(|| invalid("via"))?,
        instance: required(7, "instance")?,
        actor: text(8, "actor")?,
        agent: text(9, "agent")?,
        credential: text(10, "credential")?,
        service: text(11, "service")?,
        method: text(12, "method")?,
        target_host: text(13, "target_host")?,
        path: text(14, "path")?,
        status_code,
        denial_code: text(16, "denial_code")?,
        latency_ms: number(17, "latency_ms")?,
        bytes_in: number(18, "bytes_in")?,
        bytes_out: number(19, "bytes_out")?,
        detail_jcs: required(20, "detail")?,
        prev_hash: hash(21, "prev_hash")?,
        hash: hash(22, "hash")?,
    })
}

/// Rebuilds an entry from its row, keeping the stored hashes and the stored `detail` text
/// (verification recomputes the hashes over exactly what is stored).
pub(crate) fn entry_from_row(row: &SqliteRow) -> Result<LedgerEntry, StoreError> {
    let columns = columns_from_row(row)?;
    columns.to_entry().map_err(|e| StoreError::InvalidRow {
        table: "ledger",
        row: e.id.to_string(),
        field: "detail",
    })
}

fn undecodable(_: sqlx::Error) -> StoreError {
    StoreError::InvalidRow {
        table: "ledger",
        row: "?".to_owned(),
        field: "id",
    }
}

/// The columns `columns_from_row` reads, in table order.
pub(crate) const LEDGER_COLUMNS: &str = "id, ts, kind, outcome, event, request_id, via, instance, \
    actor, agent, credential, service, method, target_host, path, status_code, denial_code, \
    latency_ms, bytes_in, bytes_out, detail, prev_hash, hash";

fn invalid_head() -> StoreError {
    StoreError::InvalidRow {
        table: "ledger_head",
        row: "1".to_owned(),
        field: "last_hash",
    }
}

fn to_i64(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::InvalidRow {
        table: "ledger",
        row: value.to_string(),
        field: "integer",
    })
}

fn to_u64(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::InvalidRow {
        table: "ledger",
        row: value.to_string(),
        field: "id",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_of_any_size_use_nine_statement_sizes_at_most() {
        let mut sizes = std::collections::BTreeSet::new();
        for batch in 1..=2_000usize {
            let mut left = batch;
            while left > 0 {
                let size = chunk_size(left);
                assert!(size >= 1 && size <= left.min(ROWS_PER_INSERT));
                sizes.insert(size);
                left -= size;
            }
        }
        assert_eq!(sizes.len(), 9, "{sizes:?}");
    }
}
