//! Finding and reading the config file (SPEC §4.2): `--config`, else `AEGIS_CONFIG`, else
//! `./aegis.config.yaml`, else the legacy `./aegis.config.yml`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::error::ConfigError;

/// The config file in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigFile {
    /// The path as the user named it (or the bare default name), used in messages and sources.
    pub(crate) shown: PathBuf,
    /// The path resolved against the working directory, used to read the file.
    pub(crate) absolute: PathBuf,
}

impl ConfigFile {
    /// The directory relative paths in the file are resolved against.
    pub(crate) fn dir(&self) -> &Path {
        self.absolute.parent().unwrap_or(Path::new("/"))
    }
}

/// The default file name.
pub(crate) const DEFAULT_NAME: &str = "aegis.config.yaml";
/// The earlier implementation's file name, still found (SPEC §27).
pub(crate) const LEGACY_NAME: &str = "aegis.config.yml";
/// Largest config file read; a config file is a few KiB.
pub(crate) const MAX_FILE_BYTES: u64 = 1 << 20;

/// Picks the config file. `env` holds only non-empty variables.
///
/// # Errors
/// A file named by `--config` or `AEGIS_CONFIG` that does not exist or is not a file.
pub(crate) fn locate(
    explicit: Option<&Path>,
    env: &BTreeMap<String, String>,
    cwd: &Path,
    warnings: &mut Vec<String>,
) -> Result<Option<ConfigFile>, ConfigError> {
    let named = explicit
        .map(|path| (path.to_path_buf(), "--config"))
        .or_else(|| {
            env.get("AEGIS_CONFIG")
                .map(|path| (PathBuf::from(path), "AEGIS_CONFIG"))
        });
    if let Some((shown, origin)) = named {
        let absolute = cwd.join(&shown);
        if absolute.is_file() {
            return Ok(Some(ConfigFile { shown, absolute }));
        }
        let problem = if absolute.exists() {
            "is not a file"
        } else {
            "does not exist"
        };
        return Err(ConfigError {
            file: None,
            line: None,
            key: String::new(),
            message: format!("config file {} {problem}", shown.display()),
            hint: Some(format!("check the path given by {origin}")),
        });
    }
    let current = cwd.join(DEFAULT_NAME);
    let legacy = cwd.join(LEGACY_NAME);
    if current.is_file() {
        if legacy.is_file() {
            warnings.push(format!(
                "{LEGACY_NAME} is ignored because {DEFAULT_NAME} exists; remove one of them"
            ));
        }
        return Ok(Some(ConfigFile {
            shown: PathBuf::from(DEFAULT_NAME),
            absolute: current,
        }));
    }
    if legacy.is_file() {
        warnings.push(format!(
            "{LEGACY_NAME} is a legacy file name; rename it to {DEFAULT_NAME}"
        ));
        return Ok(Some(ConfigFile {
            shown: PathBuf::from(LEGACY_NAME),
            absolute: legacy,
        }));
    }
    Ok(None)
}

/// Reads the whole file as UTF-8, refusing anything over [`MAX_FILE_BYTES`].
///
/// # Errors
/// An error naming the file when it cannot be read, is too large or is not UTF-8.
pub(crate) fn read(file: &ConfigFile) -> Result<Zeroizing<String>, ConfigError> {
    let fail = |message: String| ConfigError {
        file: Some(file.shown.clone()),
        line: None,
        key: String::new(),
        message,
        hint: None,
    };
    let handle = std::fs::File::open(&file.absolute)
        .map_err(|err| fail(format!("cannot read the config file: {}", io_reason(&err))))?;
    let mut bytes = Zeroizing::new(Vec::new());
    handle
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| fail(format!("cannot read the config file: {}", io_reason(&err))))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(fail("the config file is larger than 1MiB".to_owned()));
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| fail("the config file is not UTF-8 text".to_owned()))?;
    Ok(Zeroizing::new(text.to_owned()))
}

fn io_reason(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        _ => {
            let text = err.to_string();
            text.split(" (os error").next().unwrap_or(&text).to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn explicit_path_beats_env_and_default() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mine.yaml"), "").unwrap();
        std::fs::write(dir.path().join(DEFAULT_NAME), "").unwrap();
        let mut warnings = Vec::new();
        let found = locate(
            Some(Path::new("mine.yaml")),
            &env(&[("AEGIS_CONFIG", "other.yaml")]),
            dir.path(),
            &mut warnings,
        )
        .unwrap()
        .unwrap();
        assert_eq!(found.shown, PathBuf::from("mine.yaml"));
        assert_eq!(found.dir(), dir.path());
    }

    #[test]
    fn a_missing_named_file_is_an_error_with_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        let err = locate(
            None,
            &env(&[("AEGIS_CONFIG", "gone.yaml")]),
            dir.path(),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "config file gone.yaml does not exist");
        assert_eq!(
            err.hint.as_deref(),
            Some("check the path given by AEGIS_CONFIG")
        );
    }

    #[test]
    fn the_legacy_name_is_found_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LEGACY_NAME), "").unwrap();
        let mut warnings = Vec::new();
        let found = locate(None, &BTreeMap::new(), dir.path(), &mut warnings)
            .unwrap()
            .unwrap();
        assert_eq!(found.shown, PathBuf::from(LEGACY_NAME));
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("rename it to aegis.config.yaml"));
    }

    #[test]
    fn no_file_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            locate(None, &BTreeMap::new(), dir.path(), &mut Vec::new()),
            Ok(None)
        );
    }

    #[test]
    fn oversized_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULT_NAME);
        std::fs::write(&path, vec![b'#'; (MAX_FILE_BYTES + 1) as usize]).unwrap();
        let file = ConfigFile {
            shown: PathBuf::from(DEFAULT_NAME),
            absolute: path,
        };
        assert!(
            read(&file)
                .unwrap_err()
                .to_string()
                .contains("larger than 1MiB")
        );
    }
}
