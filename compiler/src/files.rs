//! Replacing files so that a reader (Envoy watching a directory, a person
//! reading the release store) sees the old file or the new one, never half.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Writes a temporary file in the target's directory, flushes it to disk,
/// and renames it over the target (atomic within one file system). Envoy's
/// `watched_directory` reacts to exactly this move. Files are readable by
/// their owner only: they may hold sealed secrets.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp"));
    // A stale temp file would keep its old (maybe wider) permissions.
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    // The rename itself survives a crash once the directory is synced.
    std::fs::File::open(dir)?.sync_all()
}

/// `write_atomically`, skipped when the file already holds `bytes`: every
/// file moved into a watched directory makes Envoy re-read all of its
/// sources, so unchanged files are left alone.
pub fn write_if_changed(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    write_atomically(path, bytes)
}
