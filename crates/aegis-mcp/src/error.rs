//! Failures of the MCP server itself (not of a tool call: those are tool results).

/// Why the MCP server could not start or went away.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum McpError {
    /// The MCP handshake with the host failed.
    #[error("the MCP host did not complete the handshake: {reason}")]
    Handshake {
        /// What went wrong, from the MCP library.
        reason: String,
    },
    /// The server task ended abnormally.
    #[error("the MCP server task ended abnormally")]
    Aborted,
}
