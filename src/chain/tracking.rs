//! Change tracking for hosted disks, at the chain level: turning it on and off on a closed
//! disk, the handle's tracker (fed before every write, synced at Flush/Close), change ids,
//! changed areas, and keeping the history through CreateChild, Commit, Attach and Grow.
//! The file format and its crash safety are in `vmdk::track`.

use std::path::Path;

use super::Disk;
pub use super::tracker::{Tracker, grains_of, open_tracker};
use crate::error::{Error, Result};
use crate::log;
use crate::vmdk::fileio::random_u64;
use crate::vmdk::link::{Link, dir_of};
use crate::vmdk::track::{ChangeId, TRACK_GRAIN_SECTORS, TRACKING_KEY, TrackFile};

/// The tracking file name for the link file `link` (beside it).
pub fn tracking_name(link: &Path) -> String {
    format!(
        "{}.vdltrack",
        link.file_name().unwrap_or_default().to_string_lossy()
    )
}

fn random_uuid() -> [u8; 16] {
    let mut u = [0u8; 16];
    u[..8].copy_from_slice(&random_u64().to_le_bytes());
    u[8..].copy_from_slice(&random_u64().to_le_bytes());
    u
}

/// Turns change tracking on or off for the closed disk at `path` (its leaf link). Turning it
/// on starts a new history (ids of an earlier one are refused); turning it off deletes the
/// tracking file. Either is a no-op when already so.
pub fn set_change_tracking(path: &Path, enable: bool) -> Result<()> {
    let link = Link::open(path, true)?;
    if let Some(refusal) = link.write_refusal() {
        return Err(refusal);
    }
    let current = link.tracking_file();
    match (enable, current) {
        (true, Some(file)) if file.exists() => Ok(()),
        (true, _) => {
            let name = tracking_name(path);
            let file = dir_of(path).join(&name);
            let cid = link.descriptor().cid;
            TrackFile::create(&file, grains_of(link.capacity()), random_uuid(), cid)?;
            link.update_descriptor(|d| d.ddb_set(TRACKING_KEY, &name))?;
            log::info(format!("{}: change tracking on", path.display()));
            Ok(())
        }
        (false, None) => Ok(()),
        (false, Some(file)) => {
            link.update_descriptor(|d| d.ddb_remove(TRACKING_KEY))?;
            match crate::vmdk::fileio::remove_file(&file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&file, e)),
            }
            log::info(format!("{}: change tracking off", path.display()));
            Ok(())
        }
    }
}

/// Gives the new link at `child` (just created over `parent_track`'s link, whose content has
/// its final id) a new branch of the parent's history: ids up to the parent's final one stay
/// answerable on the child; the child's own ids are its branch's, refused on its siblings.
/// Without a usable parent history (`parent_track` None) the child starts a history of its own.
pub fn fork_history(parent_track: Option<&Path>, child: &Path) -> Result<()> {
    let child_link = Link::open(child, true)?;
    let name = tracking_name(child);
    let dst = dir_of(child).join(&name);
    let cid = child_link.descriptor().cid;
    match parent_track {
        Some(src) => {
            TrackFile::fork(src, &dst, cid, random_uuid())?;
        }
        None => {
            log::warn(format!(
                "{}: the parent's change tracking is unusable; the child starts a new history \
                 (earlier change ids need a full backup)",
                child.display()
            ));
            TrackFile::create(&dst, grains_of(child_link.capacity()), random_uuid(), cid)?;
        }
    }
    child_link.update_descriptor(|d| d.ddb_set(TRACKING_KEY, &name))
}

/// Makes `child_track` (the history of the committed `child`) the history of the parent at
/// `parent`.
pub fn adopt_history(child: &Link, child_track: &Path, parent: &Path) -> Result<()> {
    // Settle a crashed session of the child first: its intents become changed grains.
    drop(TrackFile::open(
        child_track,
        true,
        grains_of(child.capacity()),
        child.descriptor().cid,
    )?);
    let link = Link::open(parent, true)?;
    let name = tracking_name(parent);
    let dst = dir_of(parent).join(&name);
    let parent_branch = link
        .tracking_file()
        .and_then(|t| TrackFile::branch_in(&t).ok());
    TrackFile::copy_as(child_track, &dst, link.descriptor().cid, parent_branch)?;
    link.update_descriptor(|d| d.ddb_set(TRACKING_KEY, &name))
}

/// After Grow of the closed disk at `path`: the tracking file covers the new size; the new
/// sectors count as changed.
pub fn grow_history(path: &Path) -> Result<()> {
    let link = Link::open(path, true)?;
    let Some(file) = link.tracking_file() else {
        return Ok(());
    };
    TrackFile::grow(&file, grains_of(link.capacity()), link.descriptor().cid)
}

fn not_tracked(leaf: &Path) -> Error {
    Error::NotTracked(format!(
        "{} does not track changes (VixDiskLibExt_SetChangeTracking turns it on)",
        leaf.display()
    ))
}

impl Disk {
    fn tracker(&self) -> std::sync::MutexGuard<'_, Tracker> {
        self.tracker.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a write of `[sector, sector + count)` before it happens (a no-op when the
    /// disk does not track changes). `leaf` is the link written (its session CID is recorded).
    pub(crate) fn track_write(&self, leaf: &Link, sector: u64, count: u64) -> Result<()> {
        match &mut *self.tracker() {
            Tracker::On(t) => t.before_write(sector, count, leaf.session_cid()),
            _ => Ok(()),
        }
    }

    /// Syncs the tracker after the data (`close` also ends the session).
    pub(crate) fn sync_tracker(&self, cid: u32, close: bool) -> Result<()> {
        match &mut *self.tracker() {
            Tracker::On(t) if close => t.close(cid),
            Tracker::On(t) => t.flush(cid),
            _ => Ok(()),
        }
    }

    /// Gives the content this handle sees its final change id before a fork (CreateChild):
    /// issued and durable if anything was written since the last one. Returns whether the
    /// history can be forked (false: damaged, or no id can be made durable; the child then
    /// starts a history of its own).
    pub(crate) fn finalize_id(&self) -> Result<bool> {
        match &mut *self.tracker() {
            Tracker::On(t) => match t.finalize() {
                Ok(_) => Ok(true),
                Err(Error::ReadOnly(_)) => Ok(false),
                Err(e) => Err(e),
            },
            _ => Ok(false),
        }
    }

    /// True if the leaf tracks changes (even if its tracking file is damaged).
    pub fn is_tracked(&self) -> bool {
        !matches!(&*self.tracker(), Tracker::Off)
    }

    /// The change id of the content this handle sees now.
    pub fn change_id(&self) -> Result<String> {
        // Exclusive: no write may slip between reading the dirty flag and issuing the id.
        let chain = self.exclusive();
        match &mut *self.tracker() {
            Tracker::On(t) => Ok(t.current_id()?.render()),
            Tracker::Off => Err(not_tracked(chain.links[0].path())),
            Tracker::Broken(why) => Err(Error::ChangeIdUnknown(why.clone())),
        }
    }

    /// Areas (sector runs) in `[start, end)` whose content may differ from what it was when
    /// `since` was issued; `"*"` gives the allocated areas. Grain-granular (64 KiB).
    pub fn changed_areas(&self, since: &str, start: u64, end: u64) -> Result<Vec<(u64, u64)>> {
        let end = query_end(start, end, self.capacity())?;
        let g = TRACK_GRAIN_SECTORS;
        let clip = |runs: Vec<(u64, u64)>| -> Vec<(u64, u64)> {
            runs.into_iter()
                .filter_map(|(s, n)| {
                    let (lo, hi) = ((s * g).max(start), ((s + n) * g).min(end));
                    (lo < hi).then_some((lo, hi - lo))
                })
                .collect()
        };
        if since.trim() == "*" {
            let mut grains: Vec<(u64, u64)> = Vec::new();
            let chain = self.chain();
            let mut flags = vec![false; ((end - 1) / g - start / g + 1) as usize];
            let base = start / g;
            for link in &chain.links {
                link.for_each_allocated(start, end, &mut |s, n| {
                    let lo = (s / g - base) as usize;
                    let hi = ((s + n).div_ceil(g) - base) as usize;
                    let hi = hi.min(flags.len());
                    flags[lo..hi].fill(true);
                })?;
            }
            for (i, &f) in flags.iter().enumerate() {
                let grain = base + i as u64;
                match grains.last_mut() {
                    Some((s, n)) if f && *s + *n == grain => *n += 1,
                    _ if f => grains.push((grain, 1)),
                    _ => {}
                }
            }
            return Ok(clip(grains));
        }
        let id = ChangeId::parse(since).ok_or_else(|| {
            Error::InvalidArg(format!(
                "{since:?} is not a change id (\"UUID/number\" or \"*\")"
            ))
        })?;
        let chain = self.chain();
        match &mut *self.tracker() {
            Tracker::On(t) => {
                t.check_id(&id)?;
                let runs = t.changed_since(id.seq, start / g, end.div_ceil(g))?;
                Ok(clip(runs))
            }
            Tracker::Off => Err(not_tracked(chain.links[0].path())),
            Tracker::Broken(why) => Err(Error::ChangeIdUnknown(why.clone())),
        }
    }
}

/// The end of a changed-areas query over `[start, end)` sectors clipped to the disk;
/// VIX_E_INVALID_ARG if `start` is at or past the disk's end (VDDK's rule, for every backend).
pub fn query_end(start: u64, end: u64, capacity: u64) -> Result<u64> {
    let end = end.min(capacity);
    if start >= end {
        return Err(Error::InvalidArg(format!(
            "start sector {start} is at or past the end of the disk ({capacity} sectors)"
        )));
    }
    Ok(end)
}
