//! Nonpersistent opens: a writable view of a disk whose writes go to a private redo log that
//! nobody else can see and that vanishes with the handle (and with the process).
//!
//! The redo log is created in a scratch directory (mode 0600, `O_EXCL`) and unlinked at once,
//! before anything is written into it: from then on only our file descriptor keeps it alive,
//! so a Close, an exit or a kill -9 all release it. A kill in the microseconds between the
//! create and the unlink leaves an empty file whose name carries the dead process's id; the
//! next nonpersistent open removes such files, and the leftovers of older versions too.

use std::path::{Path, PathBuf};

use super::{Chain, Disk, OpenOptions};
use crate::error::{Error, Result};
use crate::log;
use crate::vmdk::create::{create_new_private_file, new_descriptor, write_monolithic_sparse_into};
use crate::vmdk::fileio::random_u64;
use crate::vmdk::link::Link;

/// File names of scratch redo logs: `.PREFIX<pid>-<random>.vmdk`. Earlier versions also left
/// `PREFIX<pid>-<random>.vmdk` and `.PREFIX<pid>-<random>.vmdk.tmp-new` (its temporary name).
const SCRATCH_PREFIX: &str = "vixdisklib-nonpersistent-";

/// The process id a scratch file name carries, if `name` is one.
fn scratch_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.').unwrap_or(name);
    let rest = rest.strip_prefix(SCRATCH_PREFIX)?;
    let (pid, tail) = rest.split_once('-')?;
    let (random, ext) = tail.split_once('.')?;
    let valid = random.len() == 16
        && random.bytes().all(|b| b.is_ascii_hexdigit())
        && matches!(ext, "vmdk" | "vmdk.tmp-new");
    if valid { pid.parse().ok() } else { None }
}

/// True if no process `pid` exists (in our pid namespace).
fn is_dead(pid: u32) -> bool {
    pid != 0 && !Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes scratch redo logs left in `dir` by processes that no longer exist. A file is
/// removed only if its process is gone and nobody holds a lock on it (a writer in another pid
/// namespace sharing the directory would); symlinks at such names are removed, never followed.
fn sweep_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = scratch_pid(&name) else {
            continue;
        };
        if pid == std::process::id() || !is_dead(pid) {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.file_type().is_file() {
            // Not through the path's target: a regular file at this very name (checked above).
            let Ok(f) = crate::vmdk::fileio::open_regular(&path, false) else {
                continue;
            };
            if f.try_lock().is_err() {
                continue;
            }
        } else if !meta.file_type().is_symlink() {
            continue;
        }
        if crate::vmdk::fileio::remove_file(&path).is_ok() {
            log::verbose(format!("removed stale scratch redo log {name}"));
        }
    }
}

impl Disk {
    /// Opens the chain at `path` read-only (shared locks, so any number of users share it)
    /// under a private redo log in `scratch_dir` that takes every write.
    pub fn open_nonpersistent(path: &Path, single_link: bool, scratch_dir: &Path) -> Result<Disk> {
        let base = Disk::open(
            path,
            OpenOptions {
                read_only: true,
                single_link,
            },
        )?;
        let links = base.into_links();
        let leaf = &links[0];
        sweep_stale(scratch_dir);
        let parent_abs = std::fs::canonicalize(leaf.path()).map_err(|e| Error::io(path, e))?;
        let scratch: PathBuf = scratch_dir.join(format!(
            ".{SCRATCH_PREFIX}{}-{:016x}.vmdk",
            std::process::id(),
            random_u64()
        ));
        let ld = leaf.descriptor();
        let mut d = new_descriptor("monolithicSparse", Vec::new(), ld.ddb.clone());
        d.parent_cid = ld.cid;
        d.parent_hint = Some(parent_abs.to_string_lossy().into_owned());
        let file = create_new_private_file(&scratch)?;
        // Unlinked before anything is written: a kill from here on leaves nothing behind.
        match crate::vmdk::fileio::remove_file(&scratch) {
            Ok(()) => {}
            // Swept by another process that took us for dead: the name is gone all the same.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&scratch, e)),
        }
        write_monolithic_sparse_into(&file, &scratch, &scratch, d, leaf.capacity())?;
        let opened = Link::open_created(&scratch, file);
        let mut all = vec![opened?];
        all.extend(links);
        let disk = Disk::from_links(all);
        disk.exclusive().scratch = true;
        Ok(disk)
    }

    /// The links of a disk nobody else holds, leaf first.
    fn into_links(self) -> Vec<Link> {
        self.chain
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .links
    }
}

impl Chain {
    /// Refuses operations that would make other disks refer to a private, vanishing redo log.
    pub(crate) fn refuse_if_scratch(&self, what: &str) -> Result<()> {
        if self.scratch {
            return Err(Error::NotSupported(format!(
                "{what} is not possible on a nonpersistent open (its redo log is private and temporary)"
            )));
        }
        Ok(())
    }
}
