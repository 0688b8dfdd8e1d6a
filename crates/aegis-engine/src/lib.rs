//! The request pipeline shared by the HTTP gate and the MCP server: snapshot holder and reload,
//! the ordered checks, rate limiters, upstream forwarding and response redaction.
//!
//! Built by the gate issue; today this crate only fixes its place in the dependency graph.
