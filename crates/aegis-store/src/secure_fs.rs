//! Files and directories with owner-only modes, created that way from the start (never created
//! wider and narrowed later), and atomic replacement of small files.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Mode of every directory Aegis creates.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file Aegis creates that holds keys, credentials or ledger data.
pub const FILE_MODE: u32 = 0o600;

/// Creates `path` and any missing parents with mode 0700.
///
/// # Errors
/// The underlying IO error.
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
}

/// Creates a new, empty file with mode 0600; fails if it exists.
///
/// # Errors
/// The underlying IO error (`AlreadyExists` when present).
pub fn create_private_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
}

/// Creates the file with mode 0600 if it does not exist yet; leaves an existing file alone.
///
/// # Errors
/// The underlying IO error.
pub fn ensure_private_file(path: &Path) -> io::Result<()> {
    match create_private_file(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Replaces `path` with `contents` atomically: a 0600 temp file in the same directory, fsync,
/// rename, fsync of the directory. A crash leaves either the old or the new file, never half.
///
/// # Errors
/// The underlying IO error; the temp file is removed on failure.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut temp_name = name.to_os_string();
    temp_name.push(format!(".tmp-{}", std::process::id()));
    let temp: PathBuf = dir.join(temp_name);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&temp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&temp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// The permission bits of a path (`st_mode & 0o777`).
///
/// # Errors
/// The underlying IO error.
pub fn mode_of(path: &Path) -> io::Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    Ok(fs::metadata(path)?.permissions().mode() & 0o777)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_dir_and_file_have_owner_only_modes() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("a/b");
        create_private_dir(&dir).expect("mkdir");
        assert_eq!(mode_of(&dir).expect("mode"), 0o700);
        assert_eq!(mode_of(&root.path().join("a")).expect("mode"), 0o700);
        let file = dir.join("f");
        create_private_file(&file).expect("create");
        assert_eq!(mode_of(&file).expect("mode"), 0o600);
        assert!(
            create_private_file(&file).is_err(),
            "create_new refuses an existing file"
        );
    }

    #[test]
    fn atomic_write_replaces_content_with_mode_0600() {
        let root = tempfile::tempdir().expect("tempdir");
        let file = root.path().join("config.yaml");
        fs::write(&file, "old").expect("write");
        write_atomic(&file, b"new").expect("atomic");
        assert_eq!(fs::read_to_string(&file).expect("read"), "new");
        assert_eq!(mode_of(&file).expect("mode"), 0o600);
        let leftovers: Vec<_> = fs::read_dir(root.path()).expect("ls").collect();
        assert_eq!(leftovers.len(), 1, "no temp file left behind");
    }
}
