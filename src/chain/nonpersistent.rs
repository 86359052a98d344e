//! Nonpersistent opens: a writable view of a disk whose writes go to a private redo log that
//! nobody else can see and that vanishes with the handle (and with the process).
//!
//! The redo log is created in a scratch directory, opened, and unlinked at once: from then on
//! only our file descriptor keeps it alive, so a Close, an exit or a kill -9 all release it.
//! A kill in the microseconds between creation and unlink leaves a file whose name carries
//! the dead process's id; the next nonpersistent open removes such files.

use std::path::{Path, PathBuf};

use super::{Chain, Disk, OpenOptions};
use crate::error::{Error, Result};
use crate::log;
use crate::vmdk::create::{new_descriptor, write_monolithic_sparse};
use crate::vmdk::fileio::random_u64;
use crate::vmdk::link::Link;

/// File names of scratch redo logs: `PREFIX<pid>-<random>.vmdk`.
const SCRATCH_PREFIX: &str = "vixdisklib-nonpersistent-";

/// Removes scratch redo logs left in `dir` by processes that no longer exist.
fn sweep_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(SCRATCH_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = crate::vmdk::fileio::remove_file(&entry.path());
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
            "{SCRATCH_PREFIX}{}-{:016x}.vmdk",
            std::process::id(),
            random_u64()
        ));
        let ld = leaf.descriptor();
        let mut d = new_descriptor("monolithicSparse", Vec::new(), ld.ddb.clone());
        d.parent_cid = ld.cid;
        d.parent_hint = Some(parent_abs.to_string_lossy().into_owned());
        write_monolithic_sparse(&scratch, d, leaf.capacity())?;
        let opened = Link::open(&scratch, true);
        // Unlinked at once, opened or not: only our descriptor keeps it alive.
        let _ = crate::vmdk::fileio::remove_file(&scratch);
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
