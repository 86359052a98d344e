//! Child disks: CreateChild (a new redo log over an open chain) and Attach (joining a single
//! link onto another chain), with the parent hint and parentCID persisted in the child.

use std::path::{Component, Path, PathBuf};

use super::Disk;
use super::tracking::fork_history;
use crate::error::{Error, Result};
use crate::vmdk::create::{
    CreateSpec, DiskKind, ParentLink, create_descriptor_disk, new_descriptor,
    write_monolithic_sparse,
};
use crate::vmdk::geometry::Adapter;
use crate::vmdk::link::{COMMIT_JOURNAL_KEY, dir_of};
use crate::vmdk::track::TRACKING_KEY;

fn canonical_dir(path: &Path) -> PathBuf {
    let dir = dir_of(path);
    std::fs::canonicalize(&dir).unwrap_or(dir)
}

/// The `parentFileNameHint` a child at `child` should record for `parent`: the file name when
/// both share a directory, a relative path when they share more than the root, else absolute.
pub fn parent_hint(child: &Path, parent: &Path) -> String {
    let child_dir = canonical_dir(child);
    let parent_abs = std::fs::canonicalize(parent).unwrap_or_else(|_| parent.to_path_buf());
    let Some(parent_dir) = parent_abs.parent() else {
        return parent_abs.to_string_lossy().into_owned();
    };
    let name = parent_abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let a: Vec<Component> = child_dir.components().collect();
    let b: Vec<Component> = parent_dir.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    // Only the root in common: the two live on unrelated paths, so record an absolute hint.
    if common <= 1 {
        return parent_abs.to_string_lossy().into_owned();
    }
    let mut rel = PathBuf::new();
    for _ in common..a.len() {
        rel.push("..");
    }
    for c in &b[common..] {
        rel.push(c.as_os_str());
    }
    rel.push(name);
    rel.to_string_lossy().into_owned()
}

impl Disk {
    /// Creates a sparse child of this chain's leaf at `child`: same capacity and DDB,
    /// `parentCID` = the leaf's CID now, hint relative to the child. Afterwards this disk
    /// refuses writes (the child owns them).
    pub fn create_child(&self, child: &Path, kind: DiskKind) -> Result<()> {
        if !matches!(kind, DiskKind::MonolithicSparse | DiskKind::SplitSparse) {
            return Err(Error::InvalidArg(format!(
                "child disks are MONOLITHIC_SPARSE or SPLIT_SPARSE, not {kind:?}"
            )));
        }
        let mut chain = self.exclusive();
        chain.refuse_if_scratch("CreateChild")?;
        let leaf = &chain.links[0];
        // The CID the child records must be the one on disk, after this open's writes.
        leaf.flush()?;
        let pd = leaf.descriptor();
        let parent_track = leaf.tracking_file();
        // History forks here: the frozen content gets its final id, made durable before the
        // child exists, so no later content can be given that id.
        let usable_history = match &parent_track {
            Some(_) => {
                self.sync_tracker(pd.cid, false)?;
                self.finalize_id()?
            }
            None => false,
        };
        // The child's own tracking file (if any) is set up below; an unfinished commit's
        // journal belongs to the parent alone.
        let mut ddb = pd.ddb.clone();
        ddb.retain(|(k, _)| {
            !k.eq_ignore_ascii_case(TRACKING_KEY) && !k.eq_ignore_ascii_case(COMMIT_JOURNAL_KEY)
        });
        let parent = ParentLink {
            cid: pd.cid,
            hint: parent_hint(child, leaf.path()),
        };
        if kind == DiskKind::SplitSparse {
            let spec = CreateSpec {
                kind,
                capacity: self.capacity(),
                adapter: Adapter::Ide,
                hw_version: 0,
            };
            create_descriptor_disk(child, &spec, ddb, Some(parent), &mut |_| {})?;
        } else {
            let mut d = new_descriptor("monolithicSparse", Vec::new(), ddb);
            d.parent_cid = parent.cid;
            d.parent_hint = Some(parent.hint);
            write_monolithic_sparse(child, d, self.capacity())?;
        }
        if let Some(track) = parent_track {
            fork_history(usable_history.then_some(track.as_path()), child)?;
        }
        chain.sealed = true;
        Ok(())
    }

    /// Checks that `child` (a single writable link) can be attached on top of this chain.
    pub fn check_attach(&self, child: &Disk) -> Result<()> {
        if child.capacity() != self.capacity() {
            return Err(Error::CapacityMismatch(format!(
                "child has {} sectors, parent {}",
                child.capacity(),
                self.capacity()
            )));
        }
        self.chain().refuse_if_scratch("Attach")?;
        let c = child.chain();
        if c.links.len() != 1 {
            return Err(Error::InvalidArg(
                "the child must be opened with VIXDISKLIB_FLAG_OPEN_SINGLE_LINK".into(),
            ));
        }
        let total = c.links.len() + self.chain().links.len();
        if total > super::resolve::MAX_CHAIN_LINKS {
            return Err(Error::TooManyLinks(format!(
                "attaching would make a chain of {total} links (at most {})",
                super::resolve::MAX_CHAIN_LINKS
            )));
        }
        if !c.links[0].writable() {
            return Err(Error::ReadOnly(
                "the child must be writable: attaching records the parent in it".into(),
            ));
        }
        Ok(())
    }

    /// Moves this chain's links under `child`, recording the link in the child's descriptor.
    /// This disk is left without links and must be discarded by the caller.
    pub fn attach_under(&self, child: &Disk) -> Result<()> {
        self.check_attach(child)?;
        let mut parent = self.chain_mut();
        let mut c = child.chain_mut();
        let parent_leaf = &parent.links[0];
        parent_leaf.flush()?;
        let cid = parent_leaf.descriptor().cid;
        let hint = parent_hint(c.links[0].path(), parent_leaf.path());
        c.links[0].update_descriptor(|d| {
            d.parent_cid = cid;
            d.parent_hint = Some(hint);
        })?;
        let links = std::mem::take(&mut parent.links);
        // What the child reads changes wherever the new parents hold data it does not.
        let mut changed: Vec<(u64, u64)> = Vec::new();
        for link in &links {
            link.for_each_allocated(0, child.capacity(), &mut |s, n| changed.push((s, n)))?;
        }
        for (s, n) in changed {
            let mut cur = s;
            while cur < s + n {
                let (m, len) = c.links[0].map(cur, s + n - cur)?;
                if matches!(m, crate::vmdk::extent::Mapping::Unallocated) {
                    child.track_write(&c.links[0], cur, len)?;
                }
                cur += len;
            }
        }
        c.links.extend(links);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hint_is_file_name_in_same_directory() {
        let d = tempfile::tempdir().unwrap();
        let parent = d.path().join("base.vmdk");
        std::fs::write(&parent, b"x").unwrap();
        assert_eq!(
            parent_hint(&d.path().join("child.vmdk"), &parent),
            "base.vmdk"
        );
    }

    #[test]
    fn hint_is_relative_for_sibling_directories() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("base")).unwrap();
        std::fs::create_dir_all(d.path().join("snaps")).unwrap();
        let parent = d.path().join("base/b.vmdk");
        std::fs::write(&parent, b"x").unwrap();
        assert_eq!(
            parent_hint(&d.path().join("snaps/c.vmdk"), &parent),
            "../base/b.vmdk"
        );
    }
}
