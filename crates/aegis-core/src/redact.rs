//! Echo redaction (SPEC §14.5): finding every vault secret, in every form of §14.2, in response
//! header values and bodies, and replacing it.
//!
//! [`RedactionSet`] is built once per snapshot from all vault secrets: one leftmost-longest
//! search over every form of every secret (a hashed-anchor filter, `form_search`), so
//! overlapping forms resolve to the longest. A match of the credential injected into the
//! request becomes `[REDACTED:<credential name>]`, any other match `[REDACTED]`.
//! [`RedactionSet::redact`] handles whole values; [`Redactor`] handles a body chunk by chunk
//! with the same output.
//! Deriving the forms lives in [`SecretForms`]; decoding bodies, metrics and the ledger
//! are aegis-engine's job.
//!
//! The searcher keeps its copies of the forms in zeroized memory; it lives as long as the
//! snapshot, like the decrypted secrets themselves.

mod form_search;
mod forms;
mod stream;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use zeroize::Zeroizing;

use form_search::FormSearcher;

pub use forms::{Base64Alphabet, FormKind, JsonStyle, MIN_SECRET_LEN, SecretForms};
pub use stream::Redactor;

/// One vault secret to redact, with the credential it belongs to.
pub struct RedactionSecret {
    /// The secret's bytes. For `basic` credentials the caller also passes the password part
    /// alone, as a second `RedactionSecret` with the same owner, when it is at least 8 bytes.
    pub bytes: Zeroizing<Vec<u8>>,
    /// Which credential the secret belongs to (its index in the caller's list); compared with
    /// the `injected` argument of [`RedactionSet::redact`] and [`Redactor::new`].
    pub owner: usize,
    /// The credential name shown in `[REDACTED:<label>]`.
    pub label: String,
}

/// Every form of every vault secret, compiled into one searcher.
pub struct RedactionSet {
    matcher: Matcher,
    /// For each searcher pattern, the secrets (indices into `secrets`) having that form.
    pattern_secrets: Vec<Vec<usize>>,
    /// `(owner, label)` of each secret, in the order given.
    secrets: Vec<(usize, String)>,
    max_pattern_len: usize,
}

/// Why a [`RedactionSet`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedactionError {
    /// The forms exceed what one searcher can hold (its table indices are 32-bit).
    #[error(
        "the echo-redaction automaton over {patterns} secret forms ({bytes} bytes) is too large; \
         remove unused credentials from the vault"
    )]
    TooLarge {
        /// How many distinct forms there were.
        patterns: usize,
        /// Their total length.
        bytes: usize,
    },
}

impl RedactionSecret {
    /// Copies `bytes` into zeroized memory, for credential `owner` named `label`.
    pub fn new(bytes: &[u8], owner: usize, label: &str) -> Self {
        Self {
            bytes: Zeroizing::new(bytes.to_vec()),
            owner,
            label: label.to_owned(),
        }
    }
}

impl RedactionSet {
    /// Derives the forms of every secret and compiles them into one searcher. Secrets
    /// shorter than [`MIN_SECRET_LEN`] bytes are ignored.
    ///
    /// Building can only fail when the forms total more than about 4 GiB, or there are more
    /// than about a billion of them (the searcher's table indices are 32-bit). Rather than
    /// redact nothing, the set then fails closed: [`RedactionSet::redact`] and [`Redactor`]
    /// withhold every non-empty input and emit a single `[REDACTED]` instead (see
    /// [`RedactionSet::is_withholding`]). Use [`RedactionSet::try_new`] to refuse such a vault
    /// instead.
    pub fn new(secrets: Vec<RedactionSecret>) -> Self {
        Self::try_new(secrets).unwrap_or_else(|_| Self {
            matcher: Matcher::Withhold,
            pattern_secrets: Vec::new(),
            secrets: Vec::new(),
            max_pattern_len: 0,
        })
    }

    /// Like [`RedactionSet::new`], but reports a searcher that cannot be built.
    ///
    /// # Errors
    /// [`RedactionError::TooLarge`] when the forms exceed the searcher's 32-bit table indices.
    pub fn try_new(secrets: Vec<RedactionSecret>) -> Result<Self, RedactionError> {
        let all_forms: Vec<SecretForms> = secrets
            .iter()
            .map(|secret| SecretForms::new(&secret.bytes))
            .collect();
        // Identical forms of different secrets become one pattern that knows all its owners.
        let mut index: BTreeMap<&[u8], usize> = BTreeMap::new();
        let mut patterns: Vec<&[u8]> = Vec::new();
        let mut pattern_secrets: Vec<Vec<usize>> = Vec::new();
        for (secret, forms) in all_forms.iter().enumerate() {
            for (_, form) in forms.iter() {
                let id = *index.entry(form).or_insert_with(|| {
                    patterns.push(form);
                    pattern_secrets.push(Vec::new());
                    patterns.len() - 1
                });
                if let Some(owners) = pattern_secrets.get_mut(id) {
                    owners.push(secret);
                }
            }
        }
        let max_pattern_len = patterns.iter().map(|p| p.len()).max().unwrap_or(0);
        let matcher = if patterns.is_empty() {
            Matcher::Empty
        } else {
            let built = FormSearcher::new(&patterns).map_err(|_| RedactionError::TooLarge {
                patterns: patterns.len(),
                bytes: patterns.iter().map(|p| p.len()).sum(),
            })?;
            Matcher::Search(Box::new(built))
        };
        let secrets = secrets
            .into_iter()
            .map(|secret| (secret.owner, secret.label))
            .collect();
        Ok(Self {
            matcher,
            pattern_secrets,
            secrets,
            max_pattern_len,
        })
    }

    /// The length of the longest form; a streaming [`Redactor`] holds back at most one byte
    /// less than this. Zero when there is nothing to redact.
    pub fn max_pattern_len(&self) -> usize {
        self.max_pattern_len
    }

    /// True when no secret had a form, so redaction passes everything through.
    pub fn is_empty(&self) -> bool {
        matches!(self.matcher, Matcher::Empty)
    }

    /// True when the searcher could not be built and every non-empty input is withheld
    /// (replaced by one `[REDACTED]`); see [`RedactionSet::new`].
    pub fn is_withholding(&self) -> bool {
        matches!(self.matcher, Matcher::Withhold)
    }

    /// Redacts a whole value (a header value, a buffered body), returning it and the number
    /// of replacements. `injected` is the owner of the credential injected into this request.
    pub fn redact<'a>(&self, input: &'a [u8], injected: Option<usize>) -> (Cow<'a, [u8]>, usize) {
        if self.is_withholding() && !input.is_empty() {
            return (Cow::Owned(WITHHELD.to_vec()), 1);
        }
        let mut out = Vec::new();
        let (consumed, count) = self.replace_settled(input, input.len(), injected, &mut out);
        if count == 0 {
            return (Cow::Borrowed(input), 0);
        }
        out.extend_from_slice(input.get(consumed..).unwrap_or_default());
        (Cow::Owned(out), count)
    }

    /// The spans of every vault-secret form in `input`, left to right, as leftmost-longest
    /// non-overlapping matches: the same matches [`RedactionSet::redact`] replaces. For inspection
    /// (`crate::inspect`), which reports where they start and never what they are. A
    /// withholding set yields one span over all of a non-empty input (fail closed).
    pub fn find_spans<'a>(&'a self, input: &'a [u8]) -> impl Iterator<Item = (usize, usize)> + 'a {
        let withheld = (self.is_withholding() && !input.is_empty()).then_some((0, input.len()));
        let found = match &self.matcher {
            Matcher::Search(searcher) => Some(searcher.find_iter(input)),
            Matcher::Empty | Matcher::Withhold => None,
        };
        withheld
            .into_iter()
            .chain(found.into_iter().flatten().map(|m| (m.start, m.end)))
    }

    /// Replaces, left to right, every match in `buf` that starts before `settled`, appending
    /// the text before each match and its replacement to `out`. Returns the offset just past
    /// the last replaced match (0 if none) and the number of replacements. Stops at the first
    /// match starting at or after `settled`: the caller does not know yet whether it is final.
    fn replace_settled(
        &self,
        buf: &[u8],
        settled: usize,
        injected: Option<usize>,
        out: &mut Vec<u8>,
    ) -> (usize, usize) {
        let Matcher::Search(searcher) = &self.matcher else {
            return (0, 0);
        };
        let mut pos = 0;
        let mut count = 0;
        for found in searcher.find_iter(buf) {
            if found.start >= settled {
                break;
            }
            out.extend_from_slice(buf.get(pos..found.start).unwrap_or_default());
            self.push_replacement(found.pattern, injected, out);
            pos = found.end;
            count += 1;
        }
        (pos, count)
    }

    /// Appends `[REDACTED:<label>]` if the pattern is a form of a secret owned by `injected`,
    /// `[REDACTED]` otherwise.
    fn push_replacement(&self, pattern: usize, injected: Option<usize>, out: &mut Vec<u8>) {
        let label = injected.and_then(|owner| {
            self.pattern_secrets
                .get(pattern)?
                .iter()
                .filter_map(|&secret| self.secrets.get(secret))
                .find(|(secret_owner, _)| *secret_owner == owner)
                .map(|(_, label)| label)
        });
        match label {
            Some(label) => {
                out.extend_from_slice(b"[REDACTED:");
                out.extend_from_slice(label.as_bytes());
                out.push(b']');
            }
            None => out.extend_from_slice(WITHHELD),
        }
    }
}

impl fmt::Debug for RedactionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedactionSet")
            .field("secrets", &self.secrets.len())
            .field("patterns", &self.pattern_secrets.len())
            .field("max_pattern_len", &self.max_pattern_len)
            .field("withholding", &self.is_withholding())
            .finish()
    }
}

impl fmt::Debug for RedactionSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedactionSecret")
            .field("bytes", &self.bytes.len())
            .field("owner", &self.owner)
            .field("label", &self.label)
            .finish()
    }
}

/// What the set searches with.
enum Matcher {
    /// No secret had a form: everything passes through.
    Empty,
    /// One leftmost-longest search over every form.
    Search(Box<FormSearcher>),
    /// The searcher could not be built: fail closed and withhold every input.
    Withhold,
}

/// The replacement for a match of a secret not injected into this request.
const WITHHELD: &[u8] = b"[REDACTED]";

#[cfg(test)]
mod tests;
