//! Aegis's storage: the only crate that talks to a database.
//!
//! The embedded default is SQLite (WAL) with the layout of SPEC.md §4.5: `aegis.db` lists the
//! vaults, and each vault has its own `vault.db`. Callers use the typed API of [`registry`] and
//! [`vault`]; no SQL leaves this crate, and SQLite-specific statements stay in `sqlite`, so a
//! PostgreSQL backend can be added behind the same API.

pub mod agents;
pub mod error;
pub mod layout;
pub mod ledger;
pub mod ledger_archive;
pub mod ledger_verify;
pub mod ledger_writer;
pub mod registry;
pub mod secure_fs;
mod sqlite;
pub mod vault;
pub mod webhooks;

pub use error::StoreError;
pub use layout::DataDir;
pub use sqlite::{DatabaseHealth, DatabaseKind, SchemaStatus, inspect_database};
