//! The MCP server (SPEC.md §16): tools that translate MCP calls into the engine's `Intent` and
//! the pipeline's answer back into tool results. Nothing here decides anything: every check,
//! injection, redaction and ledger entry is the pipeline's (DESIGN.md §1).
//!
//! Transports (stdio here; the process wiring is aegis-cli's) only move JSON-RPC messages.

pub mod error;
pub mod identity;
mod proxy;
pub mod server;
mod services;
mod tool_error;
mod tools;

pub use error::McpError;
pub use identity::AgentIdentity;
pub use server::{AegisMcp, McpSettings};
