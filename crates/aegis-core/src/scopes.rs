//! Credential scopes (`read`, `write`, `*`) and which HTTP methods they permit (SPEC §7.3).
//!
//! `read` permits GET, HEAD and OPTIONS; `write` permits POST, PUT, PATCH and DELETE; `*`
//! permits every method, including ones no other scope names. The scope check itself (step 5
//! of the pipeline) lives with the other checks; this module only answers the question.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::field_error::{FieldError, shown};

/// The methods a credential may be used with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scopes {
    /// `read`: GET, HEAD, OPTIONS.
    Read,
    /// `write`: POST, PUT, PATCH, DELETE.
    Write,
    /// `read,write`: the methods of both.
    ReadWrite,
    /// `*`: every method (the default).
    #[default]
    All,
}

impl Scopes {
    /// Parses a comma-separated list of `read`, `write` and `*`; spaces around items are
    /// ignored, repeated items are harmless, and `*` anywhere makes the whole list `*`.
    ///
    /// # Errors
    /// [`FieldError::Scopes`] for an empty list, an empty item or an unknown word.
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        let err = || FieldError::Scopes { found: shown(text) };
        let (mut read, mut write, mut all) = (false, false, false);
        for item in text.split(',') {
            match item.trim() {
                "read" => read = true,
                "write" => write = true,
                "*" => all = true,
                _ => return Err(err()),
            }
        }
        Ok(match (all, read, write) {
            (true, _, _) => Self::All,
            (false, true, true) => Self::ReadWrite,
            (false, true, false) => Self::Read,
            (false, false, true) => Self::Write,
            // Unreachable in practice: `split` yields at least one item and each item set a flag.
            (false, false, false) => return Err(err()),
        })
    }

    /// Whether a request with this method may use the credential; methods are case-sensitive.
    pub fn allows_method(&self, method: &str) -> bool {
        match self {
            Self::All => true,
            Self::Read => READ_METHODS.contains(&method),
            Self::Write => WRITE_METHODS.contains(&method),
            Self::ReadWrite => READ_METHODS.contains(&method) || WRITE_METHODS.contains(&method),
        }
    }

    /// The canonical spelling: `read`, `write`, `read,write` or `*`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::ReadWrite => "read,write",
            Self::All => "*",
        }
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scopes {
    type Err = FieldError;

    fn from_str(text: &str) -> Result<Self, FieldError> {
        Self::parse(text)
    }
}

impl Serialize for Scopes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Methods permitted by `read`.
const READ_METHODS: [&str; 3] = ["GET", "HEAD", "OPTIONS"];

/// Methods permitted by `write`.
const WRITE_METHODS: [&str; 4] = ["POST", "PUT", "PATCH", "DELETE"];

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn every_spelling_parses_to_its_scope() {
        for (text, scopes) in [
            ("read", Scopes::Read),
            ("write", Scopes::Write),
            ("read,write", Scopes::ReadWrite),
            ("write,read", Scopes::ReadWrite),
            (" read , write ", Scopes::ReadWrite),
            ("*", Scopes::All),
            ("read,*", Scopes::All),
            ("read,read", Scopes::Read),
        ] {
            assert_eq!(Scopes::parse(text), Ok(scopes), "{text:?}");
        }
    }

    #[test]
    fn empty_lists_items_and_unknown_words_are_rejected() {
        for bad in [
            "",
            " ",
            ",",
            "read,",
            ",read",
            "read,,write",
            "admin",
            "READ",
            "all",
            "r",
        ] {
            let err = Scopes::parse(bad).map_err(|e| e.code());
            assert_eq!(err, Err("invalid_scopes"), "{bad:?}");
        }
    }

    #[test]
    fn read_allows_safe_methods_only() {
        for method in ["GET", "HEAD", "OPTIONS"] {
            assert!(Scopes::Read.allows_method(method));
            assert!(!Scopes::Write.allows_method(method));
        }
        for method in ["POST", "PUT", "PATCH", "DELETE"] {
            assert!(!Scopes::Read.allows_method(method));
            assert!(Scopes::Write.allows_method(method));
            assert!(Scopes::ReadWrite.allows_method(method));
        }
    }

    #[test]
    fn methods_are_case_sensitive() {
        assert!(!Scopes::Read.allows_method("get"));
        assert!(!Scopes::Write.allows_method("Post"));
    }

    #[test]
    fn only_star_allows_other_methods() {
        for method in ["PROPFIND", "CONNECT", "QUERY", "get"] {
            assert!(Scopes::All.allows_method(method));
            assert!(!Scopes::ReadWrite.allows_method(method));
        }
    }

    #[test]
    fn default_is_star() {
        assert_eq!(Scopes::default().to_string(), "*");
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in any::<String>()) {
            let _ = Scopes::parse(&text);
        }

        #[test]
        fn display_reparses_to_the_same_scopes(text in "(read|write|\\*)( ?, ?(read|write|\\*)){0,3}") {
            let scopes = Scopes::parse(&text);
            prop_assert!(scopes.is_ok());
            if let Ok(scopes) = scopes {
                prop_assert_eq!(Scopes::parse(scopes.as_str()), Ok(scopes));
            }
        }
    }
}
