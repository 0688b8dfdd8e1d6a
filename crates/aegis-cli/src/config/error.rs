//! Configuration errors: each names the file, line and key path when known, and never holds a
//! secret value.

use std::fmt;
use std::path::PathBuf;

/// One configuration problem, e.g. `aegis.config.yaml:14: unknown key gate.prot`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigError {
    /// The config file, as named, when the problem is in it.
    pub(crate) file: Option<PathBuf>,
    /// 1-based line in `file`.
    pub(crate) line: Option<usize>,
    /// Full key path the problem is about (may be empty for a YAML syntax error).
    pub(crate) key: String,
    /// What is wrong and what was expected, naming the key or variable.
    pub(crate) message: String,
    /// What to do, e.g. `did you mean gate.port?`.
    pub(crate) hint: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{}:{line}: {}", file.display(), self.message),
            (Some(file), None) => write!(f, "{}: {}", file.display(), self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every configuration problem found, in file order then environment and flags; never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigErrors {
    first: Box<ConfigError>,
    rest: Vec<ConfigError>,
}

impl ConfigErrors {
    /// Wraps a list of errors; `None` when it is empty.
    pub(crate) fn from_vec(errors: Vec<ConfigError>) -> Option<Self> {
        let mut errors = errors.into_iter();
        let first = errors.next()?;
        Some(Self {
            first: Box::new(first),
            rest: errors.collect(),
        })
    }

    /// A list of one error.
    pub(crate) fn single(error: ConfigError) -> Self {
        Self {
            first: Box::new(error),
            rest: Vec::new(),
        }
    }

    /// The error other commands report (they stop at the first one).
    pub(crate) fn first(&self) -> &ConfigError {
        &self.first
    }

    /// Every error, for `config validate`.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &ConfigError> {
        std::iter::once(&*self.first).chain(&self.rest)
    }

    /// How many errors were found.
    pub(crate) fn len(&self) -> usize {
        1 + self.rest.len()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.first().fmt(f)
    }
}

impl std::error::Error for ConfigErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(file: Option<&str>, line: Option<usize>) -> ConfigError {
        ConfigError {
            file: file.map(PathBuf::from),
            line,
            key: "gate.prot".to_owned(),
            message: "unknown key gate.prot".to_owned(),
            hint: Some("did you mean gate.port?".to_owned()),
        }
    }

    #[test]
    fn display_prefixes_file_and_line() {
        let shown = error(Some("aegis.config.yaml"), Some(14)).to_string();
        assert_eq!(shown, "aegis.config.yaml:14: unknown key gate.prot");
        assert_eq!(error(None, None).to_string(), "unknown key gate.prot");
        assert_eq!(
            error(Some("a.yaml"), None).to_string(),
            "a.yaml: unknown key gate.prot"
        );
    }

    #[test]
    fn an_empty_list_is_not_an_error() {
        assert!(ConfigErrors::from_vec(Vec::new()).is_none());
        let errors = ConfigErrors::from_vec(vec![error(None, None)]).unwrap();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors.to_string(), errors.first().to_string());
    }
}
