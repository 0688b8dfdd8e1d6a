//! Aegis's pure domain: identifiers, allowlists, rates, scopes, credentials, key derivation and
//! the encrypted envelope format.
//!
//! Nothing here performs IO, reads the clock or needs an async runtime; the time is always an
//! argument. Storage lives in `aegis-store`, the request pipeline in `aegis-engine`.

pub mod agent;
pub mod auth;
pub mod checks;
pub mod config;
pub mod credential;
pub mod crypto;
pub mod denial;
pub mod domain;
pub mod field_error;
pub mod inspect;
pub mod ledger;
pub mod names;
pub mod permit;
pub mod policy;
pub mod rate;
pub mod rate_window;
pub mod redact;
pub mod scopes;
pub mod snapshot;
pub mod timestamp;
pub mod units;
pub mod webhook;
