//! Shrink and Defragment of the open leaf: every sparse extent is rewritten in LBA order into
//! a new file that atomically replaces the old one; Shrink also leaves out grains that read as
//! zeros and hide nothing in the parents.

use super::{Disk, read_links};
use crate::error::{Error, Result};
use crate::log;
use crate::vmdk::atomic::sync_dir;
use crate::vmdk::extent::ExtentStore;
use crate::vmdk::link::Link;
use crate::vmdk::rewrite::compact_extent;

impl Disk {
    /// Rewrites the leaf's sparse extents in LBA order; with `drop_zeros`, all-zero grains are
    /// released when the parents read as zeros there too. Content and CID are unchanged.
    /// Returns the number of grains released. Nothing here calls back into the caller (no
    /// progress, no log line) while the chain is locked: a callback that used the same handle
    /// would deadlock.
    pub fn compact(&self, drop_zeros: bool) -> Result<u64> {
        let mut chain = self.chain_mut();
        chain.refuse_if_scratch("Shrink or Defragment")?;
        let links = &chain.links;
        let leaf = &links[0];
        if !leaf.writable() {
            return Err(Error::ReadOnly(format!(
                "{} is open read-only",
                leaf.path().display()
            )));
        }
        if leaf.extents().iter().any(|e| e.is_compressed()) {
            return Err(Error::NotSupported(
                "streamOptimized disks cannot be shrunk or defragmented".into(),
            ));
        }
        let sparse = leaf
            .extents()
            .iter()
            .any(|e| matches!(e.store, ExtentStore::Sparse(_)));
        if !sparse {
            if drop_zeros {
                return Err(Error::NotSupported(
                    "only sparse disks can be shrunk".into(),
                ));
            }
            return Ok(0);
        }
        leaf.flush()?;
        let embedded = leaf.is_monolithic().then(|| leaf.descriptor().render());
        let mut renames = Vec::new();
        let mut released = 0;
        for e in leaf.extents() {
            let ExtentStore::Sparse(sp) = &e.store else {
                continue;
            };
            let base = e.start;
            let mut keep = |start: u64, data: &[u8]| -> Result<bool> {
                if !drop_zeros || data.iter().any(|&b| b != 0) {
                    return Ok(true);
                }
                if links.len() == 1 {
                    return Ok(false);
                }
                let mut below = vec![0u8; data.len()];
                let n =
                    (self.capacity() - (base + start)).min(data.len() as u64 / 512) as usize * 512;
                read_links(links, 1, base + start, &mut below[..n])?;
                Ok(below.iter().any(|&b| b != 0))
            };
            let (tmp, dropped) = compact_extent(sp, embedded.as_deref(), &mut keep)?;
            released += dropped;
            renames.push((tmp, sp.path().to_path_buf()));
        }
        // Each copy is complete and synced, so a kill between two renames leaves every extent
        // with the same content (old or new layout); a copy not yet renamed is removed by the
        // next open or compaction.
        for (tmp, target) in &renames {
            crate::vmdk::fileio::rename(tmp, target).map_err(|e| Error::io(target, e))?;
        }
        if let Some((_, target)) = renames.first() {
            sync_dir(target)?;
        }
        // The handle's extent files are now unlinked inodes: reopen the leaf from the new
        // files. The old link goes first: for a descriptor-file disk it holds the lock on the
        // (unchanged) descriptor, which the new open must take.
        let path = leaf.path().to_path_buf();
        drop(chain.links.remove(0));
        match Link::open(&path, true) {
            Ok(reopened) => chain.links.insert(0, reopened),
            Err(e) => {
                // Writes through this handle would now be unlocked or lost: refuse them, but
                // keep reads working if the disk still opens read-only.
                chain.sealed = true;
                if let Ok(ro) = Link::open(&path, false) {
                    chain.links.insert(0, ro);
                }
                return Err(e);
            }
        }
        drop(chain);
        log::info(format!(
            "{}: rewrote in LBA order, released {released} grain(s)",
            path.display()
        ));
        Ok(released)
    }
}
