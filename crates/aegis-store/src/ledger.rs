//! The ledger tables of a vault database: appending hash-chained entries inside a write
//! transaction (the chain head is read under the write lock, so several processes can append
//! to one chain), and reading entries back for `ledger show` and `ledger verify`.
//!
//! Entry content, encoding and hashing live in `aegis_core::ledger`; this module only stores.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};

use aegis_core::ledger::{
    EntryContent, EntryKind, LedgerEntry, Outcome, SystemEvent, Via, genesis,
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
    let mut appended = append_many_in(tx, vault_id, vec![content], now).await?;
    appended.pop().ok_or(StoreError::InvalidRow {
        table: "ledger",
        row: "new".to_owned(),
        field: "id",
    })
}

/// Appends several entries inside `tx` (which holds the write lock): the head is read once,
/// the entries are chained in memory, inserted with multi-row statements, and the head moved
/// once.
pub(crate) async fn append_many_in(
    tx: &mut Transaction<'_, Sqlite>,
    vault_id: &uuid::Uuid,
    contents: Vec<EntryContent>,
    now: Timestamp,
) -> Result<Vec<LedgerEntry>, StoreError> {
    let head =
        sqlx::query("SELECT last_id, last_hash, last_ts FROM ledger_head WHERE singleton = 1")
            .fetch_optional(&mut **tx)
            .await
            .map_err(StoreError::db("reading the ledger head"))?;
    let (last_id, prev_hash, last_ts) = match head {
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
    let ts = Timestamp::from_millis(now.as_millis().max(last_ts));
    let mut entries = Vec::with_capacity(contents.len());
    let (mut id, mut prev) = (last_id, prev_hash);
    for content in contents {
        id += 1;
        let entry = LedgerEntry::chained(id, ts, content, prev);
        prev = *entry.hash();
        entries.push(entry);
    }
    for chunk in entries.chunks(ROWS_PER_INSERT) {
        insert(tx, chunk).await?;
    }
    let Some(entry) = entries.last() else {
        return Ok(entries);
    };
    sqlx::query(
        "INSERT INTO ledger_head (singleton, last_id, last_hash, last_ts) VALUES (1, ?, ?, ?) \
         ON CONFLICT (singleton) DO UPDATE SET last_id = excluded.last_id, \
         last_hash = excluded.last_hash, last_ts = excluded.last_ts",
    )
    .bind(to_i64(entry.id())?)
    .bind(entry.hash().as_slice())
    .bind(entry.ts().as_millis())
    .execute(&mut **tx)
    .await
    .map_err(StoreError::db("moving the ledger head"))?;
    Ok(entries)
}

/// Rows per multi-row INSERT: 23 parameters each stays far below SQLite's variable limit.
const ROWS_PER_INSERT: usize = 128;

/// Takes SQLite's write lock before the head is read, so two appenders never read the same head.
pub(crate) async fn lock_for_append(tx: &mut Transaction<'_, Sqlite>) -> Result<(), StoreError> {
    sqlx::query("UPDATE ledger_head SET last_id = last_id WHERE singleton = 1")
        .execute(&mut **tx)
        .await
        .map_err(StoreError::db("locking the ledger head"))?;
    Ok(())
}

async fn insert(
    tx: &mut Transaction<'_, Sqlite>,
    entries: &[LedgerEntry],
) -> Result<(), StoreError> {
    let row = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    let sql = format!(
        "INSERT INTO ledger (id, ts, kind, outcome, event, request_id, via, instance, actor, agent, \
         credential, service, method, target_host, path, status_code, denial_code, latency_ms, \
         bytes_in, bytes_out, detail, prev_hash, hash) VALUES {}",
        vec![row; entries.len()].join(", ")
    );
    let mut query = sqlx::query(&sql);
    for entry in entries {
        let c = entry.content();
        query = query
            .bind(to_i64(entry.id())?)
            .bind(entry.ts().as_millis())
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
            .bind(entry.prev_hash().as_slice())
            .bind(entry.hash().as_slice());
    }
    query
        .execute(&mut **tx)
        .await
        .map_err(StoreError::db("appending to the ledger"))?;
    Ok(())
}

/// Rebuilds an entry from its row, keeping the stored hashes (verification recomputes them).
pub(crate) fn entry_from_row(row: &SqliteRow) -> Result<LedgerEntry, StoreError> {
    let id = to_u64(row.get("id"))?;
    let invalid = |field| StoreError::InvalidRow {
        table: "ledger",
        row: id.to_string(),
        field,
    };
    let text = |col: &str| row.get::<Option<String>, _>(col);
    let kind = EntryKind::parse(&row.get::<String, _>("kind")).ok_or_else(|| invalid("kind"))?;
    let via = Via::parse(&row.get::<String, _>("via")).ok_or_else(|| invalid("via"))?;
    let mut content = EntryContent::new(kind, via, row.get::<String, _>("instance"));
    if let Some(outcome) = text("outcome") {
        content = content.with_outcome(Outcome::parse(&outcome).ok_or_else(|| invalid("outcome"))?);
    }
    if let Some(event) = text("event") {
        content = content.with_event(SystemEvent::parse(&event).ok_or_else(|| invalid("event"))?);
    }
    if let Some(v) = text("request_id") {
        content = content.with_request_id(v);
    }
    if let Some(v) = text("actor") {
        content = content.with_actor(v);
    }
    if let Some(v) = text("agent") {
        content = content.with_agent(v);
    }
    if let Some(v) = text("credential") {
        content = content.with_credential(v);
    }
    if let Some(v) = text("service") {
        content = content.with_service(v);
    }
    if let Some(v) = text("method") {
        content = content.with_method(v);
    }
    if let Some(v) = text("target_host") {
        content = content.with_target_host(v);
    }
    if let Some(v) = text("path") {
        content = content.with_path(v.as_bytes());
    }
    if let Some(v) = row.get::<Option<i64>, _>("status_code") {
        content = content.with_status_code(u16::try_from(v).map_err(|_| invalid("status_code"))?);
    }
    if let Some(v) = text("denial_code") {
        content = content.with_denial_code(v);
    }
    if let Some(v) = row.get::<Option<i64>, _>("latency_ms") {
        content = content.with_latency_ms(u64::try_from(v).map_err(|_| invalid("latency_ms"))?);
    }
    if let Some(v) = row.get::<Option<i64>, _>("bytes_in") {
        content = content.with_bytes_in(u64::try_from(v).map_err(|_| invalid("bytes_in"))?);
    }
    if let Some(v) = row.get::<Option<i64>, _>("bytes_out") {
        content = content.with_bytes_out(u64::try_from(v).map_err(|_| invalid("bytes_out"))?);
    }
    let detail: String = row.get("detail");
    let detail: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&detail).map_err(|_| invalid("detail"))?;
    content = content.with_detail(detail);
    let prev_hash: Vec<u8> = row.get("prev_hash");
    let hash: Vec<u8> = row.get("hash");
    Ok(LedgerEntry::from_stored(
        id,
        Timestamp::from_millis(row.get("ts")),
        content,
        prev_hash.try_into().map_err(|_| invalid("prev_hash"))?,
        hash.try_into().map_err(|_| invalid("hash"))?,
    ))
}

/// The columns `entry_from_row` reads, in table order.
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
