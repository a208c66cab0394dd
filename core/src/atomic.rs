//! Crash-safe writes: write to a temporary sibling, fsync, rename.
//!
//! A reader (or a `kill -9` at any moment) sees either the old file or the new one, never a
//! half-written file. Every checkpoint, run record and output of the project goes through here.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The temporary sibling used while `path` is being written (`<name>.tmp-<pid>`).
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Write `bytes` to `path` atomically (temp file + fsync + rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |tmp| {
        let mut f = std::fs::File::create(tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        Ok(())
    })
}

/// Serialise `value` as pretty JSON and write it atomically.
pub fn write_json_atomic<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// Let `write` produce the file at a temporary path, then rename it onto `path`.
///
/// Use this for writers that want a path rather than bytes (HDF5, FITS, burn records). If
/// `write` fails, the temporary file is removed and `path` is untouched.
pub fn write_atomic_with<F>(path: &Path, write: F) -> Result<()>
where
    F: FnOnce(&Path) -> Result<()>,
{
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create directory {}", dir.display()))?;
    }
    let tmp = temp_path(path);
    let _ = std::fs::remove_file(&tmp);
    match write(&tmp) {
        Ok(()) => std::fs::rename(&tmp, path)
            .with_context(|| format!("cannot move {} to {}", tmp.display(), path.display())),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e.context(format!(
                "writing {} failed; nothing was written there",
                path.display()
            )))
        }
    }
}

/// Replace directory `dst` by a fully written `src` directory, as atomically as the file system
/// allows: `dst` is moved aside, `src` renamed onto it, then the old copy removed.
pub fn replace_dir(src: &Path, dst: &Path) -> Result<()> {
    let old = dst.with_file_name(format!(
        ".{}.old-{}",
        dst.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let had_old = dst.exists();
    if had_old {
        std::fs::rename(dst, &old)
            .with_context(|| format!("cannot move {} aside", dst.display()))?;
    }
    if let Err(e) = std::fs::rename(src, dst) {
        if had_old {
            let _ = std::fs::rename(&old, dst);
        }
        return Err(e)
            .with_context(|| format!("cannot move {} to {}", src.display(), dst.display()));
    }
    if had_old {
        let _ = std::fs::remove_dir_all(&old);
    }
    Ok(())
}

/// Remove the temporary siblings of `path` (`.<name>.<kind>-<pid>` files, e.g. `tmp` or `scratch`)
/// that processes killed before their clean-up left behind: those whose pid is no longer alive on
/// this machine. Returns the paths removed.
pub fn remove_stale_siblings(path: &Path) -> Vec<PathBuf> {
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Vec::new();
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let prefix = format!(".{name}.");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = file.strip_prefix(&prefix) else {
            continue;
        };
        let Some((kind, pid)) = rest.rsplit_once('-') else {
            continue;
        };
        let (Ok(pid), true) = (
            pid.parse::<u32>(),
            kind.chars().all(|c| c.is_ascii_lowercase()),
        ) else {
            continue;
        };
        if pid != std::process::id()
            && !crate::record::pid_alive(pid)
            && e.file_type().is_ok_and(|t| t.is_file())
            && std::fs::remove_file(e.path()).is_ok()
        {
            removed.push(e.path());
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_siblings_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("cosmos.h5");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let live = std::process::id();
        for f in [
            format!(".cosmos.h5.scratch-{dead}"),
            format!(".cosmos.h5.tmp-{dead}"),
            format!(".cosmos.h5.tmp-{live}"),
            format!(".other.h5.tmp-{dead}"),
            "cosmos.h5".to_string(),
        ] {
            std::fs::write(dir.path().join(f), b"x").unwrap();
        }
        let mut removed: Vec<String> = remove_stale_siblings(&out)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        removed.sort();
        assert_eq!(
            removed,
            [
                format!(".cosmos.h5.scratch-{dead}"),
                format!(".cosmos.h5.tmp-{dead}")
            ]
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
    }

    #[test]
    fn failed_write_leaves_old_file_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write_atomic(&p, b"old").unwrap();
        let r = write_atomic_with(&p, |tmp| {
            std::fs::write(tmp, b"partial")?;
            anyhow::bail!("boom")
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn replace_dir_swaps_contents() {
        let dir = tempfile::tempdir().unwrap();
        let dst = dir.path().join("ckpt");
        std::fs::create_dir(&dst).unwrap();
        std::fs::write(dst.join("x"), b"1").unwrap();
        let src = dir.path().join("new");
        std::fs::create_dir(&src).unwrap();
        std::fs::write(src.join("x"), b"2").unwrap();
        replace_dir(&src, &dst).unwrap();
        assert_eq!(std::fs::read(dst.join("x")).unwrap(), b"2");
        assert!(!src.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
