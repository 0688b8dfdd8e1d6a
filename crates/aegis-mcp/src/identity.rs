//! Who the MCP server acts for: the agent token of the process (stdio), or none (anonymous).

use http::HeaderValue;
use secrecy::{ExposeSecret as _, SecretString};

use aegis_core::agent::TokenDigest;
use aegis_core::checks::agent::{Caller, authenticate};
use aegis_core::denial::Denial;
use aegis_core::snapshot::Snapshot;

/// The agent identity a tool call carries into the pipeline.
#[derive(Debug, Clone, Default)]
pub struct AgentIdentity {
    token: Option<SecretString>,
}

impl AgentIdentity {
    /// No agent token: the rules for anonymous requests apply.
    pub fn anonymous() -> Self {
        Self { token: None }
    }

    /// The agent holding `token`.
    pub fn from_token(token: SecretString) -> Self {
        Self { token: Some(token) }
    }

    /// Whether a token is present.
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// Step 2 of the pipeline against `snapshot`: who this identity is there.
    ///
    /// # Errors
    /// `agent_auth_required` or `agent_auth_failed`, as over HTTP.
    pub fn authenticate(&self, snapshot: &Snapshot, required: bool) -> Result<Caller, Denial> {
        // The token is hashed and compared with the stored digest; the only exposure besides
        // the header below.
        let token = self.token.as_ref().map(|t| t.expose_secret().as_bytes());
        authenticate(snapshot, token, required)
    }

    /// The SHA-256 digest of the token, as agents are stored (`None` when anonymous).
    pub fn digest(&self) -> Option<[u8; 32]> {
        self.token
            .as_ref()
            .map(|t| *TokenDigest::of(t.expose_secret().as_bytes()).as_bytes())
    }

    /// The `X-Aegis-Agent` value the pipeline authenticates, marked sensitive so it is never
    /// logged or indexed.
    pub(crate) fn agent_header(&self) -> Result<Option<HeaderValue>, Denial> {
        let Some(token) = &self.token else {
            return Ok(None);
        };
        let mut value =
            HeaderValue::from_str(token.expose_secret()).map_err(|_| Denial::AgentAuthFailed)?;
        value.set_sensitive(true);
        Ok(Some(value))
    }
}
