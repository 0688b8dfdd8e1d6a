//! Reading a policies directory (SPEC.md §13.1): the `*.yaml` and `*.yml` files directly in it,
//! hidden files and subdirectories skipped, in sorted order, as `(file name, text)` pairs for
//! `aegis_core::policy`.
//!
//! This is the only IO of the policy engine: the gate's start and reload and the `aegis policy`
//! commands all read the directory through it.

use std::io;
use std::path::{Path, PathBuf};

/// Why a policies directory could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PolicyDirError {
    /// The directory does not exist.
    #[error("policies directory {} does not exist", .dir.display())]
    Missing {
        /// The directory.
        dir: PathBuf,
    },
    /// The path exists but is not a directory.
    #[error("policies directory {} is not a directory", .dir.display())]
    NotADirectory {
        /// The path.
        dir: PathBuf,
    },
    /// Listing the directory or reading a file failed.
    #[error("cannot read {}: {}", .path.display(), reason(.source))]
    Read {
        /// The directory or file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A policy file that is not UTF-8 text.
    #[error("{file}:1:1: the file is not UTF-8 text")]
    NotUtf8 {
        /// The file name.
        file: String,
    },
}

/// Reads every policy file of `dir`: regular files (or links to them) named `*.yaml` or
/// `*.yml`, not starting with `.`, sorted by name. File names that are not UTF-8 cannot be named
/// in output and are skipped like hidden files.
///
/// # Errors
/// [`PolicyDirError`] when the directory is missing or unreadable, or a file cannot be read or
/// is not UTF-8.
pub fn read_policy_dir(dir: &Path) -> Result<Vec<(String, String)>, PolicyDirError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err(PolicyDirError::Missing {
                dir: dir.to_path_buf(),
            });
        }
        Err(_) if dir.exists() && !dir.is_dir() => {
            return Err(PolicyDirError::NotADirectory {
                dir: dir.to_path_buf(),
            });
        }
        Err(source) => {
            return Err(PolicyDirError::Read {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| PolicyDirError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if !is_policy_name(&name) {
            continue;
        }
        // `metadata` follows links: a link to a file counts, a link to a directory does not.
        let path = entry.path();
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => names.push(name),
            Ok(_) => {}
            Err(source) => return Err(PolicyDirError::Read { path, source }),
        }
    }
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let path = dir.join(&name);
            let bytes = std::fs::read(&path).map_err(|source| PolicyDirError::Read {
                path: path.clone(),
                source,
            })?;
            let text = String::from_utf8(bytes)
                .map_err(|_| PolicyDirError::NotUtf8 { file: name.clone() })?;
            Ok((name, text))
        })
        .collect()
}

/// Whether a directory entry's name is a policy file name.
fn is_policy_name(name: &str) -> bool {
    !name.starts_with('.')
        && name
            .rsplit_once('.')
            .is_some_and(|(stem, ext)| !stem.is_empty() && (ext == "yaml" || ext == "yml"))
}

/// The OS reason without the "(os error N)" suffix.
fn reason(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        _ => {
            let text = err.to_string();
            text.split(" (os error").next().unwrap_or(&text).to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_visible_yaml_files_are_read_in_sorted_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let write =
            |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect("write");
        write("b.yml", "b");
        write("a.yaml", "a");
        write(".hidden.yaml", "h");
        write("notes.txt", "n");
        write("c.YAML", "upper-case extension");
        write(".yaml", "no stem");
        std::fs::create_dir(dir.path().join("sub.yaml")).expect("mkdir");
        std::fs::write(dir.path().join("sub.yaml/inner.yaml"), "i").expect("write");
        let files = read_policy_dir(dir.path()).expect("reads");
        assert_eq!(
            files,
            vec![
                ("a.yaml".to_owned(), "a".to_owned()),
                ("b.yml".to_owned(), "b".to_owned())
            ]
        );
    }

    #[test]
    fn links_to_files_count_and_links_to_directories_do_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        std::fs::write(outside.path().join("real.yaml"), "r").expect("write");
        std::os::unix::fs::symlink(
            outside.path().join("real.yaml"),
            dir.path().join("link.yaml"),
        )
        .expect("symlink");
        std::os::unix::fs::symlink(outside.path(), dir.path().join("dir.yaml")).expect("symlink");
        let files = read_policy_dir(dir.path()).expect("reads");
        assert_eq!(files, vec![("link.yaml".to_owned(), "r".to_owned())]);
    }

    #[test]
    fn missing_directories_and_binary_files_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope");
        let err = read_policy_dir(&missing).expect_err("missing");
        assert!(matches!(err, PolicyDirError::Missing { .. }));
        std::fs::write(dir.path().join("bin.yaml"), [0xff, 0xfe]).expect("write");
        let err = read_policy_dir(dir.path()).expect_err("not utf-8");
        assert_eq!(err.to_string(), "bin.yaml:1:1: the file is not UTF-8 text");
        let file = dir.path().join("bin.yaml");
        assert!(matches!(
            read_policy_dir(&file),
            Err(PolicyDirError::NotADirectory { .. })
        ));
    }
}
