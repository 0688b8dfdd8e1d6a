//! Step 3 of SPEC.md §10.1: credential selection and grants (§11.4).
//!
//! The candidates are the credentials of the requested service; an identified agent only sees
//! the ones granted to it. `X-Aegis-Credential` picks one by name; without it exactly one must
//! remain. Every "not yours" answer is the same `credential_not_granted`, whether the named
//! credential does not exist, serves another service or is not granted.

use crate::checks::agent::Caller;
use crate::denial::Denial;
use crate::snapshot::Snapshot;

/// Picks the credential index for this request.
///
/// # Errors
/// [`Denial::CredentialNotGranted`] when no candidate is usable by the caller or the named one
/// is not among them; [`Denial::CredentialAmbiguous`] when several remain and none is named.
pub fn select_credential(
    snapshot: &Snapshot,
    candidates: &[usize],
    named: Option<&[u8]>,
    service: &str,
    caller: Caller,
) -> Result<usize, Denial> {
    let usable = |index: usize| match caller {
        Caller::Anonymous => true,
        Caller::Agent(agent) => snapshot.agent(agent).is_some_and(|a| a.has_grant(index)),
    };
    let not_granted = || Denial::CredentialNotGranted {
        service: service.to_owned(),
    };
    if let Some(name) = named {
        return candidates
            .iter()
            .copied()
            .filter(|&i| usable(i))
            .find(|&i| {
                snapshot
                    .credential(i)
                    .is_some_and(|c| c.name.as_str().as_bytes() == name)
            })
            .ok_or_else(not_granted);
    }
    let mut remaining = candidates.iter().copied().filter(|&i| usable(i));
    match (remaining.next(), remaining.next()) {
        (Some(only), None) => Ok(only),
        (Some(_), Some(_)) => Err(Denial::CredentialAmbiguous {
            service: service.to_owned(),
        }),
        (None, _) => Err(not_granted()),
    }
}
