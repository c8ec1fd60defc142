//! Writing config files the way a hot-reloading gateway needs them: atomically, privately, and
//! only when the content changed.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Writes `contents` to `path` unless the file already holds exactly that. The new content goes
/// to a temporary file in the same directory (mode 0600), is flushed to disk, and replaces the
/// old file by `rename`, so a reader sees either the old or the new file, never a partial one.
/// Returns whether the file changed.
pub fn write_if_changed(path: &Path, contents: &[u8]) -> io::Result<bool> {
    write_with_mode_if_changed(path, contents, 0o600)
}

/// [`write_if_changed`] with another file mode (e.g. 0644 for files another user must read);
/// an unchanged file whose mode differs gets `mode`.
pub fn write_with_mode_if_changed(path: &Path, contents: &[u8], mode: u32) -> io::Result<bool> {
    if fs::read(path).is_ok_and(|existing| existing == contents) {
        // Unchanged, but keep the promised mode for a file someone loosened.
        if fs::metadata(path)?.permissions().mode() & 0o777 != mode {
            fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
        }
        return Ok(false);
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir)?;
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        file_name.to_string_lossy(),
        uuid::Uuid::new_v4().simple()
    ));
    let written = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        // The process umask may have narrowed it.
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(contents)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        // Make the rename itself durable.
        File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written.map(|()| true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_privately_and_only_on_change() {
        let dir =
            std::env::temp_dir().join(format!("files-test-{}", uuid::Uuid::new_v4().simple()));
        let path = dir.join("sub/openclaw.json");
        assert!(write_if_changed(&path, b"{}").unwrap());
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(!write_if_changed(&path, b"{}").unwrap());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(!write_if_changed(&path, b"{}").unwrap());
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(write_if_changed(&path, b"{\"a\":1}").unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"{\"a\":1}");
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary files are left behind");
        fs::remove_dir_all(dir).unwrap();
    }
}
