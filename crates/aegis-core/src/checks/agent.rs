//! Step 2 of SPEC.md §10.1: agent authentication (§11.3).
//!
//! The presented token is hashed and the digest looked up in the snapshot; the final comparison
//! with the stored digest is constant-time. A token that is sent but empty, malformed or
//! unknown is always `agent_auth_failed`, never treated as "no token".

use crate::agent::{TokenDigest, is_well_formed};
use crate::denial::Denial;
use crate::snapshot::Snapshot;

/// Who is asking, once step 2 passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// No token was sent and agent auth is not required.
    Anonymous,
    /// The agent at this index of the snapshot.
    Agent(usize),
}

/// Authenticates the `X-Aegis-Agent` value, if any.
///
/// # Errors
/// [`Denial::AgentAuthRequired`] when no token was sent and `required` is set;
/// [`Denial::AgentAuthFailed`] when a token was sent that is not a current agent token.
pub fn authenticate(
    snapshot: &Snapshot,
    token: Option<&[u8]>,
    required: bool,
) -> Result<Caller, Denial> {
    let Some(token) = token else {
        return if required {
            Err(Denial::AgentAuthRequired)
        } else {
            Ok(Caller::Anonymous)
        };
    };
    // Hash even malformed tokens so the time taken does not depend on how the token is wrong.
    let digest = TokenDigest::of(token);
    let found = snapshot.agent_by_digest(&digest);
    match found {
        Some(index) if is_well_formed(token) => Ok(Caller::Agent(index)),
        _ => Err(Denial::AgentAuthFailed),
    }
}
