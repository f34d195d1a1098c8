//! Atomic file and directory writes: a reader sees the old content or the new, never a torn one.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = parent_of(path);
    std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(&dir)
        .with_context(|| format!("{}: cannot write", dir.display()))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("{}: cannot replace", path.display()))?;
    Ok(())
}

/// Builds a directory with `fill` in a temporary sibling, then moves it to `dir`, replacing an
/// existing one only after the new one is complete.
pub fn write_dir_atomically(dir: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let parent = parent_of(dir);
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("{}: cannot create", parent.display()))?;
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempdir_in(&parent)
        .with_context(|| format!("{}: cannot write", parent.display()))?;
    fill(tmp.path()).with_context(|| format!("{}: cannot write", dir.display()))?;
    let staged = tmp.keep();
    if dir.exists() {
        // One atomic swap, so `dir` is never missing: afterwards `staged` holds the old one.
        if exchange(&staged, dir).is_ok() {
            std::fs::remove_dir_all(&staged).ok();
            return Ok(());
        }
        // Filesystems without RENAME_EXCHANGE: two renames, with a short window without `dir`.
        let old = staged.with_extension("old");
        std::fs::rename(dir, &old).with_context(|| format!("{}: cannot replace", dir.display()))?;
        std::fs::rename(&staged, dir)
            .with_context(|| format!("{}: cannot replace", dir.display()))?;
        std::fs::remove_dir_all(&old).ok();
    } else {
        std::fs::rename(&staged, dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
    }
    Ok(())
}

/// Atomically exchanges two paths (Linux `renameat2(RENAME_EXCHANGE)`).
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let ca = CString::new(a.as_os_str().as_bytes())?;
    let cb = CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: both are valid NUL-terminated paths; AT_FDCWD resolves them like rename(2).
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_content_and_leaves_no_temporary() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("a.json");
        write_atomically(&p, b"one").unwrap();
        write_atomically(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
    }

    #[test]
    fn failed_directory_fill_keeps_the_old_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("case");
        write_dir_atomically(&d, |t| Ok(std::fs::write(t.join("f"), b"old")?)).unwrap();
        let err = write_dir_atomically(&d, |_| anyhow::bail!("boom"));
        assert!(err.is_err());
        assert_eq!(std::fs::read(d.join("f")).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
    }
}
