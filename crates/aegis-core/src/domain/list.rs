//! `DomainList`: a credential's non-empty allowlist, checked as a whole (`--allow-http`,
//! duplicates, the same host and port under both schemes).

use std::fmt;

use serde::ser::SerializeSeq;
use serde::{Serialize, Serializer};

use super::{DomainEntry, Scheme, TargetHost};
use crate::field_error::{FieldError, shown};

/// A credential's allowlist: one or more entries, in the order they were given.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DomainList(Vec<DomainEntry>);

impl DomainList {
    /// Parses a comma-separated list such as `api.example.com,*.example.com`; spaces around
    /// items are ignored.
    ///
    /// # Errors
    /// [`FieldError::DomainList`] for an empty list or item, a repeated entry, or the same
    /// host and port under both schemes; [`FieldError::DomainEntry`] for a malformed entry;
    /// [`FieldError::HttpNotAllowed`] for an `http://` entry when `allow_http` is false.
    pub fn parse(text: &str, allow_http: bool) -> Result<Self, FieldError> {
        let list_err = |problem| FieldError::DomainList {
            found: shown(text),
            problem,
        };
        if text.trim().is_empty() {
            return Err(list_err(EMPTY_LIST));
        }
        let mut entries = Vec::new();
        for item in text.split(',') {
            let item = item.trim();
            if item.is_empty() {
                return Err(list_err(EMPTY_ITEM));
            }
            entries.push(DomainEntry::parse(item)?);
        }
        Self::check(&entries, allow_http, || shown(text))?;
        Ok(Self(entries))
    }

    /// Builds a list from entries already parsed (for example, read back from the store) and
    /// applies the same whole-list checks as [`Self::parse`].
    ///
    /// # Errors
    /// As [`Self::parse`], except that entries are not re-parsed.
    pub fn from_entries(entries: Vec<DomainEntry>, allow_http: bool) -> Result<Self, FieldError> {
        let list = Self(entries);
        Self::check(&list.0, allow_http, || shown(&list.to_string()))?;
        Ok(list)
    }

    /// The entries in order.
    pub fn entries(&self) -> &[DomainEntry] {
        &self.0
    }

    /// Iterates over the entries in order.
    pub fn iter(&self) -> std::slice::Iter<'_, DomainEntry> {
        self.0.iter()
    }

    /// The first entry that names one host (not a wildcard): the target used when a request
    /// has no `X-Target-Host` (SPEC §9.5).
    pub fn first_exact(&self) -> Option<&DomainEntry> {
        self.0.iter().find(|entry| !entry.is_wildcard())
    }

    /// The first entry that covers the target, if any.
    pub fn find_match(&self, target: &TargetHost) -> Option<&DomainEntry> {
        self.0.iter().find(|entry| entry.matches(target))
    }

    /// Whether any entry uses plain HTTP.
    pub fn has_http(&self) -> bool {
        self.0.iter().any(|entry| entry.scheme() == Scheme::Http)
    }

    /// Whole-list rules: non-empty, `http://` only with `allow_http`, no entry twice, no host
    /// and port under both schemes. `found` renders the list for a `DomainList` error.
    fn check(
        entries: &[DomainEntry],
        allow_http: bool,
        found: impl Fn() -> String,
    ) -> Result<(), FieldError> {
        let list_err = |problem| FieldError::DomainList {
            found: found(),
            problem,
        };
        if entries.is_empty() {
            return Err(list_err(EMPTY_LIST));
        }
        for (index, entry) in entries.iter().enumerate() {
            if !allow_http && entry.scheme() == Scheme::Http {
                return Err(FieldError::HttpNotAllowed {
                    found: shown(&entry.to_string()),
                });
            }
            for earlier in entries.iter().take(index) {
                if earlier.pattern() != entry.pattern() {
                    continue;
                }
                if earlier == entry {
                    return Err(list_err(DUPLICATE));
                }
                let same_port = earlier.port() == entry.port()
                    || earlier.effective_port() == entry.effective_port();
                if earlier.scheme() != entry.scheme() && same_port {
                    return Err(list_err(BOTH_SCHEMES));
                }
            }
        }
        Ok(())
    }
}

impl<'a> IntoIterator for &'a DomainList {
    type Item = &'a DomainEntry;
    type IntoIter = std::slice::Iter<'a, DomainEntry>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for DomainList {
    /// The canonical entries joined with `,`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, entry) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            write!(f, "{entry}")?;
        }
        Ok(())
    }
}

impl Serialize for DomainList {
    /// A sequence of canonical entry strings.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for entry in &self.0 {
            seq.serialize_element(entry)?;
        }
        seq.end()
    }
}

const EMPTY_LIST: &str =
    "the list is empty; expected comma-separated entries such as api.example.com,*.example.com";
const EMPTY_ITEM: &str = "the list has an empty entry (two commas in a row, or a leading or \
                          trailing comma); remove the extra comma";
const DUPLICATE: &str = "an entry appears twice; list each entry once";
const BOTH_SCHEMES: &str =
    "the same host and port appear with both http:// and https://; keep only one of them";
