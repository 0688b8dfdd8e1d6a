//! `CliError`: a failure as the user sees it — one `error:` line, an optional `hint:` line, a
//! stable code for `--json` (SPEC.md §22.3) and the exit code of SPEC.md §4.6.

use aegis_core::crypto::CryptoError;
use aegis_store::StoreError;

/// Exit code for usage and configuration errors.
pub(crate) const EXIT_USAGE: u8 = 2;
/// Exit code for runtime failures and refusals because of current state.
pub(crate) const EXIT_FAILURE: u8 = 1;
/// Exit code for denials (wrong master key, missing permission).
pub(crate) const EXIT_DENIED: u8 = 3;

/// A failure of a command, ready to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CliError {
    pub(crate) code: &'static str,
    pub(crate) exit: u8,
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
}

impl CliError {
    /// A usage error (exit 2) about one flag or argument.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::new("usage", EXIT_USAGE, message)
    }

    /// A configuration error (exit 2).
    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::new("config_invalid", EXIT_USAGE, message)
    }

    /// A runtime failure (exit 1) with the given code.
    pub(crate) fn failure(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(code, EXIT_FAILURE, message)
    }

    /// An IO failure (exit 1).
    pub(crate) fn io(what: &str, path: &std::path::Path, err: &std::io::Error) -> Self {
        Self::failure(
            "io",
            format!("cannot {what} {}: {}", path.display(), io_reason(err)),
        )
    }

    /// The bug report for a caught panic.
    pub(crate) fn internal() -> Self {
        Self::new("internal", EXIT_FAILURE, "internal error (this is a bug)")
    }

    /// Builds an error from its parts.
    pub(crate) fn new(code: &'static str, exit: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            exit,
            message: message.into(),
            hint: None,
        }
    }

    /// Adds the `hint:` line.
    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl From<StoreError> for CliError {
    fn from(err: StoreError) -> Self {
        let code = err.code();
        let exit = EXIT_FAILURE;
        let message = match &err {
            StoreError::Io { op, path, source } => {
                format!("cannot {op} {}: {}", path.display(), io_reason(source))
            }
            other => other.to_string(),
        };
        let hint = match &err {
            StoreError::NotInitialized { .. } => Some("run aegis init".to_owned()),
            StoreError::VaultExists { .. } => {
                Some("use --force to move it aside and start over".to_owned())
            }
            StoreError::VaultMissing { .. } => {
                Some("run aegis init, or pick another vault with --vault".to_owned())
            }
            StoreError::Corrupted { .. } => Some(
                "restore a backup (aegis db restore) or move the data directory aside and re-run aegis init"
                    .to_owned(),
            ),
            StoreError::SchemaTooNew { .. } => Some("upgrade aegis".to_owned()),
            StoreError::NotFound { kind: "credential", .. } => Some("see aegis vault list".to_owned()),
            _ => None,
        };
        Self {
            code,
            exit,
            message,
            hint,
        }
    }
}

impl From<CryptoError> for CliError {
    fn from(err: CryptoError) -> Self {
        match err {
            CryptoError::KdfParams(_) => Self::config(err.to_string()),
            other => Self::failure("internal", other.to_string()),
        }
    }
}

/// The OS reason without the "(os error N)" suffix.
fn io_reason(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        std::io::ErrorKind::AlreadyExists => "it already exists".to_owned(),
        _ => {
            let text = err.to_string();
            text.split(" (os error").next().unwrap_or(&text).to_owned()
        }
    }
}
