//! The ledger tables of a vault database: appending hash-chained entries inside a write
//! transaction (the chain head is read under the write lock, so several processes can append
//! to one chain), and reading entries back for `ledger show` and `ledger verify`.
//!
//! Entry content, encoding and hashing live in `aegis_core::ledger`; this module only stores.

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
    let (id, ts) = (head.head.last_id + 1, head.next_ts(now));
    let row = NewRow::chained(id, &content, head.head.last_hash, ts);
    insert(tx, ts, std::slice::from_ref(&row)).await?;
    move_head(tx, id, &row.hash, ts).await?;
    let hash = row.hash;
    Ok(LedgerEntry::from_stored(
        id,
        ts,
        content,
        head.head.last_hash,
        hash,
    ))
}

/// Appends several entries inside `tx` (which holds the write lock): the head is read once,
/// the entries are chained in memory and written, borrowed, by multi-row statements, and the
/// head moved once. `observe`, when given, sees each entry once it has its id and hash. Returns
/// the new head (the old one when `contents` is empty). The contents are only borrowed, so a
/// caller can retry the same batch after a failed transaction without a copy of it.
pub(crate) async fn append_many_in(
    tx: &mut Transaction<'_, Sqlite>,
    vault_id: &uuid::Uuid,
    contents: &[EntryContent],
    now: Timestamp,
    mut observe: Option<&mut (dyn FnMut(&LedgerEntry) + Send)>,
) -> Result<LedgerHead, StoreError> {
    let head = read_head(tx, vault_id).await?;
    let ts = head.next_ts(now);
    let (mut id, mut prev) = (head.head.last_id, head.head.last_hash);
    let mut rows = Vec::with_capacity(contents.len());
    for content in contents {
        id += 1;
        let row = NewRow::chained(id, content, prev, ts);
        if let Some(observe) = observe.as_mut() {
            // Only routing needs whole entries: built for it alone, from a copy.
            observe(&LedgerEntry::from_stored(
                id,
                ts,
                content.clone(),
                prev,
                row.hash,
            ));
        }
        prev = row.hash;
        rows.push(row);
    }
    // Statements of a few fixed sizes only (the largest that fits, then smaller powers of
    // two), so the connection's prepared-statement cache holds a handful of them rather than
    // one per batch size.
    let mut left = rows.as_slice();
    while !left.is_empty() {
        let (chunk, rest) = left.split_at(chunk_size(left.len()));
        insert(tx, ts, chunk).await?;
        left = rest;
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

/// One row to insert: borrowed content with its place in the chain.
struct NewRow<'a> {
    id: u64,
    content: &'a EntryContent,
    prev_hash: [u8; 32],
    hash: [u8; 32],
}

impl<'a> NewRow<'a> {
    /// `content` as entry `id` at `ts`, after the entry whose hash is `prev_hash`.
    fn chained(id: u64, content: &'a EntryContent, prev_hash: [u8; 32], ts: Timestamp) -> Self {
        Self {
            id,
            content,
            prev_hash,
            hash: content.chain_hash_at(id, ts, &prev_hash),
        }
    }
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

/// Inserts rows appended at `ts`, binding their texts borrowed (no copies).
async fn insert(
    tx: &mut Transaction<'_, Sqlite>,
    ts: Timestamp,
    rows: &[NewRow<'_>],
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
        let c = r.content;
        query = query
            .bind(to_i64(r.id)?)
            .bind(ts.as_millis())
            .bind(c.kind().as_str())
            .bind(c.outcome().map(Outcome::as_str))
            .bind(c.event().map(SystemEvent::as_str))
            .bind(c.request_id())
            .bind(c.via().as_str())
            .bind(c.instance())
            .bind(c.actor())
            .bind(c.agent())
            .bind(c.credential())
            .bind(c.service())
            .bind(c.method())
            .bind(c.target_host())
            .bind(c.path())
            .bind(c.status_code().map(i64::from))
            .bind(c.denial_code())
            .bind(c.latency_ms().map(to_i64).transpose()?)
            .bind(c.bytes_in().map(to_i64).transpose()?)
            .bind(c.bytes_out().map(to_i64).transpose()?)
            .bind(c.detail_jcs())
            .bind(r.prev_hash.as_slice())
            .bind(r.hash.as_slice());
    }
    query
        .execute(&mut **tx)
        .await
        .map_err(StoreError::db("appending to the ledger"))?;
    Ok(())
}

/// Decodes a page packed by [`packed_select`].
pub(crate) fn parse_page(packed: &str) -> Result<Vec<EntryColumns>, StoreError> {
    let rows: Vec<PackedRow> = serde_json::from_str(packed).map_err(|_| invalid_row(0, "row"))?;
    rows.into_iter().map(PackedRow::into_columns).collect()
}

/// The statement that packs the rows `inner` selects (a `SELECT * FROM ledger …`) into two
/// values: the last id (NULL when there is none) and one JSON array of rows in id order (`[]`
/// when empty), each row an array of its columns with the hashes in hex. sqlx copies every
/// value it returns, so one value per page instead of 23 per row is most of the cost of
/// reading a long chain.
pub(crate) fn packed_select(inner: &str) -> String {
    format!(
        "SELECT max(id), json_group_array(json_array(id, ts, kind, outcome, event, request_id, \
         via, instance, actor, agent, credential, service, method, target_host, path, \
         status_code, denial_code, latency_ms, bytes_in, bytes_out, detail, hex(prev_hash), \
         hex(hash)) ORDER BY id) FROM ({inner})"
    )
}

/// A row of [`packed_select`], column by column.
#[derive(serde::Deserialize)]
struct PackedRow(
    i64,
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    String,
    String,
    String,
);

impl PackedRow {
    fn into_columns(self) -> Result<EntryColumns, StoreError> {
        let id = u64::try_from(self.0).map_err(|_| invalid_row(0, "id"))?;
        let invalid = |field| invalid_row(id, field);
        let unsigned = |value: Option<i64>, field| {
            value
                .map(|v| u64::try_from(v).map_err(|_| invalid(field)))
                .transpose()
        };
        let hash = |text: &str, field| decode_hash(text).ok_or_else(|| invalid(field));
        Ok(EntryColumns {
            id,
            ts: Timestamp::from_millis(self.1),
            kind: EntryKind::parse(&self.2).ok_or_else(|| invalid("kind"))?,
            outcome: self
                .3
                .map(|v| Outcome::parse(&v).ok_or_else(|| invalid("outcome")))
                .transpose()?,
            event: self
                .4
                .map(|v| SystemEvent::parse(&v).ok_or_else(|| invalid("event")))
                .transpose()?,
            request_id: self.5,
            via: Via::parse(&self.6).ok_or_else(|| invalid("via"))?,
            instance: self.7,
            actor: self.8,
            agent: self.9,
            credential: self.10,
            service: self.11,
            method: self.12,
            target_host: self.13,
            path: self.14,
            status_code: self
                .15
                .map(|v| u16::try_from(v).map_err(|_| invalid("status_code")))
                .transpose()?,
            denial_code: self.16,
            latency_ms: unsigned(self.17, "latency_ms")?,
            bytes_in: unsigned(self.18, "bytes_in")?,
            bytes_out: unsigned(self.19, "bytes_out")?,
            detail_jcs: self.20,
            prev_hash: hash(&self.21, "prev_hash")?,
            hash: hash(&self.22, "hash")?,
        })
    }
}

/// Decodes 64 hex digits (as SQLite's `hex()` writes them, upper case; lower case accepted).
fn decode_hash(text: &str) -> Option<[u8; 32]> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'A'..=b'F' => Some(c - b'A' + 10),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

pub(crate) fn invalid_row(id: u64, field: &'static str) -> StoreError {
    StoreError::InvalidRow {
        table: "ledger",
        row: id.to_string(),
        field,
    }
}

/// Rebuilds entries from their columns, keeping the stored hashes and the stored `detail` text
/// (verification recomputes the hashes over exactly what is stored).
pub(crate) fn entries_of(columns: Vec<EntryColumns>) -> Result<Vec<LedgerEntry>, StoreError> {
    columns
        .iter()
        .map(|c| c.to_entry().map_err(|e| invalid_row(e.id, "detail")))
        .collect()
}

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
