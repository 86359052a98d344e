//! Commit: folds a redo log into its immediate parent and removes it (Workstation's "Commit"
//! at power-off, vSphere's "delete snapshot").
//!
//! Crash safety comes from the order of the steps. The parent keeps its CID while the child's
//! grains are copied into it, so until the copy is durable the child-over-parent chain opens
//! and reads as before (the child's grains hide the parent's, whichever version the parent
//! holds). Then the child records the parent's new CID in a journal key, and only then does
//! the parent take that CID (the commit point). From there on the chain opener accepts the
//! child over the parent through the journal, and a second Commit call finishes the rest:
//! re-pointing nested redo logs to the parent, then deleting the child's files.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::dependents::{Dependent, dependents_of};
use super::resolve::find_parent;
use super::tracking::adopt_history;
use super::{Disk, OpenOptions, child::parent_hint, read_links};
use crate::error::{Error, Result};
use crate::log;
use crate::vmdk::descriptor::NO_PARENT_CID;
use crate::vmdk::extent::{ExtentStore, Mapping};
use crate::vmdk::fileio::{copy_range, random_cid};
use crate::vmdk::link::{COMMIT_JOURNAL_KEY, Link, commit_journal, dir_of};

/// Sectors handled per step (8 MiB): bounds the buffers of the slow path and sets the pace of
/// progress reports.
const STEP_SECTORS: u64 = 16 * 1024;

/// Commits the redo log at `child_path` into its parent; see the module comment.
/// `progress(percent)` rises monotonically to 100.
pub fn commit(child_path: &Path, progress: &mut dyn FnMut(u32)) -> Result<()> {
    // The exclusive lock proves nobody has the redo log (or a chain over it) open.
    let child = Link::open(child_path, true)?;
    let cd = child.descriptor();
    let hint = match &cd.parent_hint {
        Some(h) if cd.parent_cid != NO_PARENT_CID => h.clone(),
        _ => {
            return Err(Error::InvalidArg(format!(
                "{} has no parent: only a redo log (child disk) can be committed",
                child_path.display()
            )));
        }
    };
    if child.is_legacy_redo() {
        return Err(Error::NotSupported(format!(
            "{}: legacy COWD redo logs are read-only here; clone the chain instead",
            child_path.display()
        )));
    }
    let parent_path = find_parent(child_path, &hint)?;
    progress(0);
    if let Some(journal) = commit_journal(&cd) {
        let parent_cid = Link::open(&parent_path, false)?.descriptor().cid;
        if parent_cid == journal {
            log::info(format!(
                "{}: finishing a commit that reached its commit point earlier",
                child_path.display()
            ));
            let nested = nested_logs(&child, child_path, &parent_path)?;
            return finish(child, &parent_path, journal, nested, progress);
        }
    }
    refuse_protected_parent(&parent_path)?;
    // Exclusive lock on the parent: refused while it is open anywhere (children of it hold
    // shared locks while they are open).
    let parent = Disk::open(
        &parent_path,
        OpenOptions {
            read_only: false,
            single_link: false,
        },
    )?;
    check_parent(&parent, &child, &parent_path)?;
    let others = dependents_of(
        &parent_path,
        &[dir_of(child_path), dir_of(&parent_path)],
        &[child_path.to_path_buf()],
    );
    if let Some(other) = others.first() {
        return Err(Error::InUse(format!(
            "{} also depends on {}: committing {} into it would change what that disk reads",
            other.path.display(),
            parent_path.display(),
            child_path.display()
        )));
    }
    let nested = nested_logs(&child, child_path, &parent_path)?;
    // Nothing has changed so far; from here on every step keeps the chain readable.
    let leaf_cid = {
        let chain = parent.chain();
        chain.links[0].keep_cid_while_writing();
        chain.links[0].descriptor().cid
    };
    copy_grains(&child, &parent, progress)?;
    parent.flush()?;
    let new_cid = loop {
        let c = random_cid();
        if c != leaf_cid && c != NO_PARENT_CID {
            break c;
        }
    };
    child.update_descriptor(|d| d.ddb_set(COMMIT_JOURNAL_KEY, &format!("{new_cid:08x}")))?;
    parent.chain().links[0].update_descriptor(|d| d.cid = new_cid)?;
    parent.close()?;
    drop(parent);
    finish(child, &parent_path, new_cid, nested, progress)
}

/// Refuses a parent whose files carry no write-permission bits: the seed protects a shared
/// base that way, and root would otherwise write it regardless.
fn refuse_protected_parent(parent_path: &Path) -> Result<()> {
    let files = Link::open(parent_path, false)?.files();
    for f in files {
        let mode = std::fs::metadata(&f)
            .map_err(|e| Error::io(&f, e))?
            .permissions()
            .mode();
        if mode & 0o222 == 0 {
            return Err(Error::ReadOnly(format!(
                "{} has no write permission (mode {:o}): a protected base is never committed into",
                f.display(),
                mode & 0o7777
            )));
        }
    }
    Ok(())
}

/// The parent must be a link we write, and match the child's parentCID and capacity.
fn check_parent(parent: &Disk, child: &Link, parent_path: &Path) -> Result<()> {
    let chain = parent.chain();
    let leaf = &chain.links[0];
    if let Some(refusal) = leaf.write_refusal() {
        return Err(refusal);
    }
    if leaf.extents().iter().any(|e| e.is_compressed()) {
        return Err(Error::NotSupported(format!(
            "{}: streamOptimized disks take only sequential writes; clone it to commit into it",
            parent_path.display()
        )));
    }
    let (expected, found) = (child.descriptor().parent_cid, leaf.descriptor().cid);
    if expected != found {
        return Err(Error::CidMismatch {
            child: child.path().to_path_buf(),
            parent: parent_path.to_path_buf(),
            expected,
            found,
        });
    }
    if leaf.capacity() != child.capacity() {
        return Err(Error::CapacityMismatch(format!(
            "{} has {} sectors but its parent {} has {}",
            child.path().display(),
            child.capacity(),
            parent_path.display(),
            leaf.capacity()
        )));
    }
    for e in child.extents() {
        if !matches!(&e.store, ExtentStore::Sparse(_)) || e.is_compressed() {
            return Err(Error::NotSupported(format!(
                "{}: only sparse redo logs are committed",
                child.path().display()
            )));
        }
    }
    Ok(())
}

/// Redo logs in the child's directory that sit on the child, opened for writing (their
/// locks are held until they are re-pointed).
fn nested_logs(child: &Link, child_path: &Path, parent_path: &Path) -> Result<Vec<Link>> {
    let cid = child.descriptor().cid;
    let mut out = Vec::new();
    let found: Vec<Dependent> = dependents_of(
        child_path,
        &[dir_of(child_path)],
        &[parent_path.to_path_buf()],
    );
    for d in found {
        if d.identity.legacy {
            return Err(Error::InUse(format!(
                "{} is a legacy redo log on {}; it cannot be re-pointed",
                d.path.display(),
                child_path.display()
            )));
        }
        if d.identity.parent_cid != cid {
            log::warn(format!(
                "{} names {} as parent but expects another CID; left as it is",
                d.path.display(),
                child_path.display()
            ));
            continue;
        }
        out.push(Link::open(&d.path, true)?);
    }
    Ok(out)
}

/// After the commit point: nested logs now sit on the parent, then the child goes.
fn finish(
    child: Link,
    parent_path: &Path,
    parent_cid: u32,
    nested: Vec<Link>,
    progress: &mut dyn FnMut(u32),
) -> Result<()> {
    for link in &nested {
        let hint = parent_hint(link.path(), parent_path);
        link.update_descriptor(|d| {
            d.parent_cid = parent_cid;
            d.parent_hint = Some(hint);
        })?;
        log::info(format!(
            "{} now sits on {}",
            link.path().display(),
            parent_path.display()
        ));
    }
    drop(nested);
    // The parent continues the child's change-tracking history (ids issued on the child
    // stay valid; the committed grains are changes relative to the parent's older ids).
    if let Some(track) = child.tracking_file().filter(|t| t.exists()) {
        adopt_history(&child, &track, parent_path)?;
    }
    progress(98);
    // Extents first, the descriptor last: while the descriptor exists a second call can
    // still find (and finish) this commit.
    let mut files: Vec<PathBuf> = child.files();
    let descriptor = files.remove(0);
    drop(child);
    for f in files.iter().chain(std::iter::once(&descriptor)) {
        match crate::vmdk::fileio::remove_file(f) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(f, e)),
        }
    }
    let _ = crate::vmdk::atomic::sync_dir(&descriptor);
    progress(100);
    Ok(())
}

/// Copies every grain the child stores into the parent chain's leaf: plain data inside the
/// kernel (into new grains, or over the grains the parent already has), the rest (zeroed
/// grains, pieces the parent cannot take directly) through a buffer and the normal write path.
fn copy_grains(child: &Link, parent: &Disk, progress: &mut dyn FnMut(u32)) -> Result<()> {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    child.for_each_allocated(0, child.capacity(), &mut |s, n| match runs.last_mut() {
        Some((ls, ln)) if *ls + *ln == s => *ln += n,
        _ => runs.push((s, n)),
    })?;
    let total: u64 = runs.iter().map(|r| r.1).sum::<u64>().max(1);
    let mut done = 0u64;
    let mut reported = 0u32;
    for (start, len) in runs {
        let end = start + len;
        let mut cur = start;
        while cur < end {
            let (m, n) = child.map(cur, (end - cur).min(STEP_SECTORS))?;
            // The parent's own tracking (if any) learns of every grain the commit changes.
            parent.track_write(&parent.chain().links[0], cur, n)?;
            match m {
                Mapping::Data { extent, offset } => {
                    copy_data(child, extent, offset, parent, cur, n)?;
                }
                Mapping::Unallocated => {}
                _ => {
                    let mut buf = vec![0u8; n as usize * 512];
                    read_links(std::slice::from_ref(child), 0, cur, &mut buf)?;
                    parent.write(cur, &buf)?;
                }
            }
            cur += n;
            done += n;
            let percent = (done * 95 / total) as u32;
            if percent > reported {
                reported = percent;
                progress(percent);
            }
        }
    }
    Ok(())
}

/// Copies `n` sectors at virtual `sector`, stored in the child's `extent` at byte `offset`,
/// into the parent's leaf.
fn copy_data(
    child: &Link,
    extent: usize,
    offset: u64,
    parent: &Disk,
    sector: u64,
    n: u64,
) -> Result<()> {
    let (src, src_path) = child.extents()[extent]
        .data_file()?
        .ok_or_else(|| Error::InvalidArg("child data without a file".into()))?;
    let mut slow: Vec<(u64, u64)> = Vec::new();
    {
        let chain = parent.chain();
        let leaf = &chain.links[0];
        let mut cur = sector;
        while cur < sector + n {
            let (m, len) = leaf.map(cur, sector + n - cur)?;
            let src_off = offset + (cur - sector) * 512;
            let direct = match m {
                Mapping::Data {
                    extent: pe,
                    offset: dst_off,
                } if !leaf.extents()[pe].is_compressed() => match leaf.extents()[pe].data_file()? {
                    Some((dst, dst_path)) => {
                        leaf.begin_direct_write()?;
                        let copied =
                            copy_range(&src, src_path, src_off, &dst, dst_path, dst_off, len * 512);
                        leaf.extents()[pe].note_written();
                        copied?;
                        true
                    }
                    None => false,
                },
                Mapping::Unallocated => leaf.copy_new_from(cur, len, &src, src_path, src_off)?,
                _ => false,
            };
            if !direct {
                slow.push((cur, len));
            }
            cur += len;
        }
    }
    for (s, len) in slow {
        let mut buf = vec![0u8; len as usize * 512];
        child.read_data(extent, &mut buf, offset + (s - sector) * 512)?;
        parent.write(s, &buf)?;
    }
    Ok(())
}
