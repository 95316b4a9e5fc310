//! Crash-safe writes: one implementation for every scalegrad crate and `xtask`.
//!
//! A file is replaced by writing a temporary file in the same folder, fsyncing it,
//! renaming it over the destination and fsyncing the folder, so that after a crash or a
//! power loss a reader finds either the old contents or the complete new ones, never a
//! prefix. A folder (a checkpoint, a `best/` model) is written in full under a staging
//! name and installed by [`install_dir`], which keeps a complete copy at every instant.
//!
//! `tempfile` provides the temporary file (a unique name, deleted when a write is
//! abandoned); what it leaves to the caller, syncing the data and the folder entry, is
//! done here.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A file being written that replaces `path` only when [`AtomicFile::commit`] is called;
/// dropped without committing, it leaves `path` untouched and removes the temporary file.
pub struct AtomicFile {
    tmp: tempfile::NamedTempFile,
    path: PathBuf,
}

impl AtomicFile {
    /// Starts a replacement of `path`, creating its folder if needed. The temporary file
    /// lies in the same folder (a rename across file systems would not be atomic).
    pub fn create(path: &Path) -> io::Result<Self> {
        let parent = parent_of(path);
        std::fs::create_dir_all(&parent)?;
        let name = path
            .file_name()
            .map_or_else(|| std::ffi::OsString::from("file"), |n| n.to_os_string());
        let mut prefix = std::ffi::OsString::from(".");
        prefix.push(&name);
        prefix.push(".");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".tmp");
        // tempfile makes its files readable by their owner alone (0600); what replaces
        // a result or a report gets what `File::create` would give (0666 less the umask).
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        let tmp = builder.tempfile_in(&parent)?;
        Ok(Self {
            tmp,
            path: path.to_path_buf(),
        })
    }

    /// The destination.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes and fsyncs the data, renames it over the destination and fsyncs the
    /// folder.
    pub fn commit(mut self) -> io::Result<()> {
        self.tmp.flush()?;
        self.tmp.as_file().sync_all()?;
        self.tmp.persist(&self.path).map_err(|e| e.error)?;
        sync_dir(&parent_of(&self.path))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tmp.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.tmp.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tmp.flush()
    }
}

/// Replaces `path` with `bytes` atomically and durably (see the crate docs).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes)?;
    file.commit()
}

/// Installs `written`, a complete file that another library wrote under a temporary name
/// in the destination's folder (one that insists on a path of its own, such as an image
/// encoder), as `dest`: fsyncs it, renames it over `dest` and fsyncs the folder.
pub fn install_file(written: &Path, dest: &Path) -> io::Result<()> {
    File::open(written)?.sync_all()?;
    std::fs::rename(written, dest)?;
    sync_dir(&parent_of(dest))
}

/// Fsyncs a folder, so that entries created or renamed in it survive a power loss. On
/// platforms where a folder cannot be opened for syncing (Windows) this does nothing:
/// there the rename itself is what NTFS journals.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Fsyncs every file and folder under `dir` (and `dir` itself): what a folder written
/// by ordinary writes (a model store, a tokenizer copy) needs before it is installed.
pub fn sync_tree(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            sync_tree(&path)?;
        } else {
            File::open(&path)?.sync_all()?;
        }
    }
    sync_dir(dir)
}

/// The staging name of a folder that will be installed at `dest`: `dest.tmp`, a
/// sibling, so that installing it is a rename within one folder.
pub fn staging_dir(dest: &Path) -> PathBuf {
    sibling(dest, "tmp")
}

/// Where [`install_dir`] keeps the previous `dest` while it renames the new one in.
pub fn aside_dir(dest: &Path) -> PathBuf {
    sibling(dest, "old")
}

/// Installs the complete folder `staged` as `dest`: fsyncs its contents, moves an
/// existing `dest` aside to [`aside_dir`], renames `staged` to `dest`, fsyncs the parent
/// and only then deletes the old copy. At every instant either `dest` or its aside copy
/// is complete; [`recover_dir`] restores the aside copy after a crash between the
/// renames.
pub fn install_dir(staged: &Path, dest: &Path) -> io::Result<()> {
    sync_tree(staged)?;
    recover_dir(dest)?;
    let aside = aside_dir(dest);
    let had_old = dest.exists();
    if had_old {
        std::fs::rename(dest, &aside)?;
    }
    std::fs::rename(staged, dest)?;
    sync_dir(&parent_of(dest))?;
    if had_old {
        std::fs::remove_dir_all(&aside)?;
    }
    Ok(())
}

/// Replaces the folder `dest` by one that `write` fills: `write` gets the empty staging
/// folder ([`staging_dir`]; what an interrupted write left there is removed first), which
/// is then installed as `dest` ([`install_dir`]). `io_error` turns the file-system errors
/// of these steps into the caller's error type.
pub fn replace_dir<E>(
    dest: &Path,
    write: impl FnOnce(&Path) -> Result<(), E>,
    io_error: impl Fn(io::Error) -> E,
) -> Result<(), E> {
    let staged = staging_dir(dest);
    if staged.exists() {
        std::fs::remove_dir_all(&staged).map_err(&io_error)?;
    }
    std::fs::create_dir_all(&staged).map_err(&io_error)?;
    write(&staged)?;
    install_dir(&staged, dest).map_err(io_error)
}

/// Makes `dest` consistent after a crash inside [`install_dir`]: when `dest` is missing
/// and its aside copy exists, the aside copy is renamed back; when both exist (a crash
/// after the new copy was in place), the aside copy is deleted.
pub fn recover_dir(dest: &Path) -> io::Result<()> {
    let aside = aside_dir(dest);
    if !aside.exists() {
        return Ok(());
    }
    if dest.exists() {
        std::fs::remove_dir_all(&aside)
    } else {
        std::fs::rename(&aside, dest)?;
        sync_dir(&parent_of(dest))
    }
}

fn sibling(path: &Path, extension: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(extension);
    path.with_file_name(name)
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

    #[cfg(unix)]
    #[test]
    fn written_files_get_the_permissions_file_create_gives() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        File::create(&plain).unwrap();
        let atomic = dir.path().join("atomic");
        write_atomic(&atomic, b"x").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&atomic), mode(&plain));
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn write_atomic_replaces_whole_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/a.json");
        write_atomic(&path, b"first version, longer").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(names(&dir.path().join("sub")), vec!["a.json"]);
    }

    #[test]
    fn install_file_moves_a_written_file_over_the_destination() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("fig.png");
        std::fs::write(&dest, "old").unwrap();
        let written = dir.path().join(".fig.tmp.png");
        std::fs::write(&written, "new").unwrap();
        install_file(&written, &dest).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"new");
        assert_eq!(names(dir.path()), vec!["fig.png"]);
    }

    #[test]
    fn abandoned_write_keeps_old_contents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        write_atomic(&path, b"old").unwrap();
        {
            let mut f = AtomicFile::create(&path).unwrap();
            f.write_all(b"half of the new").unwrap();
            // Dropped without commit: a failed write.
        }
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(names(dir.path()), vec!["a.txt"]);
    }

    fn folder(path: &Path, contents: &str) {
        std::fs::create_dir_all(path).unwrap();
        std::fs::write(path.join("weights"), contents).unwrap();
    }

    #[test]
    fn replace_dir_writes_in_a_fresh_staging_folder_and_installs_it() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("best");
        folder(&dest, "old");
        // What an interrupted earlier write left behind.
        folder(&staging_dir(&dest), "stale");
        std::fs::write(staging_dir(&dest).join("leftover"), "x").unwrap();
        replace_dir(
            &dest,
            |staged| {
                assert!(names(staged).is_empty(), "the staging folder starts empty");
                std::fs::write(staged.join("weights"), "new")
            },
            |e| e,
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(dest.join("weights")).unwrap(),
            "new"
        );
        assert_eq!(names(&dest), vec!["weights"]);
        assert_eq!(names(dir.path()), vec!["best"]);
        // A failed write leaves `dest` as it was.
        let err = replace_dir(&dest, |_| Err("no room"), |_| "io").unwrap_err();
        assert_eq!(err, "no room");
        assert_eq!(
            std::fs::read_to_string(dest.join("weights")).unwrap(),
            "new"
        );
    }

    #[test]
    fn install_dir_replaces_folder_and_removes_old_copy() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("best");
        folder(&dest, "old");
        let staged = staging_dir(&dest);
        folder(&staged, "new");
        install_dir(&staged, &dest).unwrap();
        assert_eq!(
            std::fs::read_to_string(dest.join("weights")).unwrap(),
            "new"
        );
        assert_eq!(names(dir.path()), vec!["best"]);
    }

    #[test]
    fn a_crash_between_the_renames_is_recovered_to_the_old_copy() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("best");
        // The state after `dest` was moved aside and before the new copy came in.
        folder(&aside_dir(&dest), "old");
        folder(&staging_dir(&dest), "new");
        recover_dir(&dest).unwrap();
        assert_eq!(
            std::fs::read_to_string(dest.join("weights")).unwrap(),
            "old"
        );
        // Installing afterwards works and leaves one folder.
        install_dir(&staging_dir(&dest), &dest).unwrap();
        assert_eq!(
            std::fs::read_to_string(dest.join("weights")).unwrap(),
            "new"
        );
        assert_eq!(names(dir.path()), vec!["best"]);
    }

    #[test]
    fn a_crash_after_the_new_copy_is_in_place_drops_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("best");
        folder(&aside_dir(&dest), "old");
        folder(&dest, "new");
        recover_dir(&dest).unwrap();
        assert_eq!(
            std::fs::read_to_string(dest.join("weights")).unwrap(),
            "new"
        );
        assert_eq!(names(dir.path()), vec!["best"]);
    }

    #[test]
    fn failed_install_keeps_the_old_folder() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("best");
        folder(&dest, "old");
        // Nothing staged: the install fails before anything moves.
        assert!(install_dir(&staging_dir(&dest), &dest).is_err());
        assert_eq!(
            std::fs::read_to_string(dest.join("weights")).unwrap(),
            "old"
        );
    }
}
