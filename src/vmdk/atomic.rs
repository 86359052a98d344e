//! Making new files appear complete or not at all: a file is written under a temporary name in
//! the target's directory, synced, then published under its real name (no-replace link or
//! rename) and the directory synced. A disk made of several files publishes its descriptor
//! last; the temporary descriptor is written first and doubles as the list of extent files to
//! remove if the process dies before publishing (see `remove_leftovers`). `prepare_new` and
//! `NewDisk` carry a whole new disk through these steps for every writer of new disks.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::descriptor::Descriptor;
use super::fileio::{self, dir_of};
use crate::error::{Error, Result};

/// The name a new file for `path` is written under until it is complete:
/// `dir/.<name>.tmp-new`, hidden and in the same directory (so the rename stays atomic).
pub fn temp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir_of(path).join(format!(".{name}.tmp-new"))
}

/// Where the compacted copy of `path` is written before it replaces the original.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".compact-tmp");
    path.with_file_name(name)
}

/// Syncs the directory that holds `path`, making a create, rename or unlink there durable.
pub fn sync_dir(path: &Path) -> Result<()> {
    let dir = dir_of(path);
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(&dir, e))?;
    if super::iolog::on() {
        super::iolog::record(super::iolog::IoEvent::SyncDir { dir: &dir });
    }
    Ok(())
}

/// Gives the complete, synced file `tmp` its real name `path`, refusing to replace an existing
/// file, and syncs the directory. On failure `tmp` is left for the caller to remove.
pub fn publish(tmp: &Path, path: &Path) -> Result<()> {
    match fileio::hard_link(tmp, path) {
        Ok(()) => {
            fileio::remove_file(tmp).map_err(|e| Error::io(tmp, e))?;
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            return Err(Error::FileExists(path.to_path_buf()));
        }
        // File systems without hard links: a plain rename after the existence check.
        Err(_) => {
            // symlink_metadata: a dangling symlink at `path` is a file there too.
            if std::fs::symlink_metadata(path).is_ok() {
                return Err(Error::FileExists(path.to_path_buf()));
            }
            fileio::rename(tmp, path).map_err(|e| Error::io(path, e))?;
        }
    }
    sync_dir(path)
}

/// Removes what an interrupted create of `path` left behind: its temporary file and, when
/// `path` itself does not exist (the disk was never published), the extent files the temporary
/// descriptor names in the same directory. Called before every Create/Clone of `path`.
pub fn remove_leftovers(path: &Path) -> Result<()> {
    let tmp = temp_name(path);
    let Ok(meta) = std::fs::symlink_metadata(&tmp) else {
        return Ok(());
    };
    // Only a regular file at the temporary name is ours to read: a symlink planted there must
    // not make us delete the files its target names.
    if meta.file_type().is_file() && std::fs::symlink_metadata(path).is_err() {
        for extent in extents_named_by(&tmp) {
            let p = dir_of(path).join(extent);
            match fileio::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&p, e)),
            }
        }
    }
    match fileio::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(&tmp, e)),
    }
    sync_dir(path)
}

/// Plain file names (no directory part) of the extents a descriptor file names; nothing for a
/// sparse file, an unreadable file or a descriptor that does not parse.
fn extents_named_by(descriptor: &Path) -> Vec<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    // O_NOFOLLOW: a symlink swapped in after the caller's check is not read either.
    let mut bytes = Vec::new();
    let read = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(descriptor)
        .and_then(|f| {
            f.take(super::descriptor::MAX_DESCRIPTOR_BYTES as u64 + 1)
                .read_to_end(&mut bytes)
        });
    if read.is_err() {
        return Vec::new();
    }
    if bytes.starts_with(b"KDMV") || bytes.len() > super::descriptor::MAX_DESCRIPTOR_BYTES {
        return Vec::new();
    }
    let Ok(d) = Descriptor::parse(&super::descriptor::decode_text(&bytes)) else {
        return Vec::new();
    };
    d.extents
        .into_iter()
        .filter_map(|e| e.file)
        .filter(|f| !f.is_empty() && !f.contains('/') && f != "." && f != "..")
        .collect()
}

/// Opens `path` for a new file, refusing to replace an existing one.
pub fn create_new_file(path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    fileio::note_created(&file, path);
    Ok(file)
}

/// Removes whatever is at the temporary name `tmp` (a leftover of an interrupted write, or
/// anything planted there: a symlink is removed itself, never followed), so that the
/// temporary can then be created with `O_EXCL`. Nothing there is fine.
pub fn remove_stale_temp(tmp: &Path) -> Result<()> {
    match fileio::remove_file(tmp) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(tmp, e)),
    }
}

/// Opens `path` for a new private file (mode 0600): for scratch files that hold disk data outside
/// the disk's own directory (a shared `$TMPDIR`), where the disk's own permissions do not apply.
/// Never follows a symlink planted at the name (`O_EXCL`).
pub fn create_new_private_file(path: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    fileio::note_created(&file, path);
    Ok(file)
}

/// Refuses a new file at `path` whose directory is missing (or not a directory), naming that
/// directory: the user's path, not the hidden temporary name the file would be written under.
pub fn require_dir_of(path: &Path) -> Result<()> {
    let dir = dir_of(path);
    match std::fs::metadata(&dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::io(&dir, ErrorKind::NotADirectory.into())),
        Err(e) => Err(Error::io(&dir, e)),
    }
}

/// Before a new disk is written at `path`: refuses an existing file, removes what an
/// interrupted Create/Clone of the same name left, and returns the temporary name to write.
pub fn prepare_new(path: &Path) -> Result<PathBuf> {
    require_dir_of(path)?;
    // First, so that a temporary name left beside a published disk (a kill between its link
    // and its unlink) goes even when this call then refuses the existing file.
    remove_leftovers(path)?;
    if std::fs::symlink_metadata(path).is_ok() {
        return Err(Error::FileExists(path.to_path_buf()));
    }
    Ok(temp_name(path))
}

/// A complete new disk still under its temporary name: `publish` gives it its real name,
/// `discard` removes all its files.
pub struct NewDisk {
    /// Where the disk (its descriptor, or its only file) is now; open it here to fill it.
    pub tmp: PathBuf,
    path: PathBuf,
    /// Extent files already under their final names (descriptor-file disks).
    pub(super) extents: Vec<PathBuf>,
}

impl NewDisk {
    /// A disk written at `tmp` that becomes `path`.
    pub fn single(tmp: PathBuf, path: &Path) -> NewDisk {
        NewDisk {
            tmp,
            path: path.to_path_buf(),
            extents: Vec::new(),
        }
    }

    /// Makes the disk appear under its real name (the descriptor last), durably.
    pub fn publish(self) -> Result<()> {
        let result = sync_dir(&self.path).and_then(|()| publish(&self.tmp, &self.path));
        if result.is_err() {
            self.discard();
        }
        result
    }

    /// Removes every file of the unpublished disk. The temporary descriptor goes last: it
    /// lists the extents, so a crash midway leaves what the next Create/Clone cleans up.
    pub fn discard(self) {
        for p in &self.extents {
            let _ = fileio::remove_file(p);
        }
        let _ = fileio::remove_file(&self.tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_of_an_unpublished_disk_are_removed() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("a.vmdk");
        let text = "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n\
                    createType=\"monolithicFlat\"\nRW 8 FLAT \"a-flat.vmdk\" 0\n";
        std::fs::write(temp_name(&path), text).unwrap();
        std::fs::write(d.path().join("a-flat.vmdk"), [0u8; 4096]).unwrap();
        remove_leftovers(&path).unwrap();
        assert!(!temp_name(&path).exists());
        assert!(!d.path().join("a-flat.vmdk").exists());
    }

    #[test]
    fn a_published_disk_keeps_its_extents() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("a.vmdk");
        let text = "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n\
                    createType=\"monolithicFlat\"\nRW 8 FLAT \"a-flat.vmdk\" 0\n";
        std::fs::write(&path, text).unwrap();
        std::fs::write(temp_name(&path), text).unwrap();
        std::fs::write(d.path().join("a-flat.vmdk"), [0u8; 4096]).unwrap();
        remove_leftovers(&path).unwrap();
        assert!(!temp_name(&path).exists());
        assert!(d.path().join("a-flat.vmdk").exists());
    }

    #[test]
    fn a_missing_directory_is_named_not_the_temporary_file() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("no/dir");
        match prepare_new(&dir.join("x.vmdk")) {
            Err(Error::FileNotFound(p)) => assert_eq!(p, dir),
            other => panic!("{other:?}"),
        }
        let file = d.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let err = prepare_new(&file.join("x.vmdk")).unwrap_err().to_string();
        assert!(
            err.contains(file.to_str().unwrap()) && !err.contains("tmp-new"),
            "{err}"
        );
    }

    #[test]
    fn publish_refuses_to_replace() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("b.vmdk");
        std::fs::write(&path, b"old").unwrap();
        let tmp = temp_name(&path);
        std::fs::write(&tmp, b"new").unwrap();
        assert!(matches!(publish(&tmp, &path), Err(Error::FileExists(_))));
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
    }
}
