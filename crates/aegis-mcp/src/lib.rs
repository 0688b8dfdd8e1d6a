//! The MCP server (SPEC.md §16): tools that translate MCP calls into the engine's `Intent` and
//! the pipeline's answer back into tool results. Nothing here decides anything: every check,
//! injection, redaction and ledger entry is the pipeline's (DESIGN.md §1).
//!
//! Transports (stdio, and streamable HTTP in `streamable_http`) only move JSON-RPC messages;
//! the process wiring is aegis-cli's.

pub mod error;
pub mod identity;
mod proxy;
pub mod server;
mod services;
pub mod streamable_http;
mod tool_error;
mod tools;

pub use error::McpError;
pub use identity::AgentIdentity;
pub use server::{AegisMcp, McpSettings};
