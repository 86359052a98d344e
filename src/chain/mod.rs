//! An open disk: a chain of links (leaf first). Reads walk the chain; writes go to the leaf.

pub mod allocated;
pub mod child;
pub mod clone;
pub mod commit;
pub mod compact;
pub mod dependents;
pub mod files;
pub mod index;
pub mod nonpersistent;
pub mod resolve;
pub mod tracker;
pub mod tracking;

use std::path::Path;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::{Error, Result};
use crate::log;
use crate::vmdk::descriptor::NO_PARENT_CID;
use crate::vmdk::extent::Mapping;
use crate::vmdk::geometry::{Adapter, Geometry};
use crate::vmdk::link::Link;
use index::{NO_OWNER, OwnerIndex};

/// How to open a disk.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenOptions {
    /// Open every link read-only.
    pub read_only: bool,
    /// Open only the named link, not its parents.
    pub single_link: bool,
}

/// What `GetInfo` reports.
#[derive(Debug, Clone)]
pub struct DiskInfo {
    /// Capacity in sectors.
    pub capacity: u64,
    /// Physical geometry.
    pub geometry: Geometry,
    /// BIOS geometry (the physical one unless the DDB says otherwise).
    pub bios_geometry: Geometry,
    /// Adapter type, if the DDB names a known one.
    pub adapter: Option<Adapter>,
    /// Number of links open.
    pub num_links: usize,
    /// The leaf's parent hint.
    pub parent_hint: Option<String>,
    /// `ddb.uuid`.
    pub uuid: Option<String>,
}

/// The links of an open disk and whether the leaf still accepts writes.
pub struct Chain {
    /// Leaf first, base last.
    pub links: Vec<Link>,
    /// Set once a child has been created over this chain: the child owns all writes now.
    pub sealed: bool,
    /// The leaf is a private, unlinked redo log of a nonpersistent open.
    pub scratch: bool,
    /// For a single-link open of a redo log: its parents, opened read-only at the first write,
    /// only to complete partial grains (reads of this handle never see them). Empty for a
    /// base; `None` until the first write.
    pub fill_parents: Option<Vec<Link>>,
}

/// An open disk chain.
pub struct Disk {
    capacity: u64,
    /// Readers share, writers exclude (allocation changes the maps readers use).
    chain: RwLock<Chain>,
    /// Which link owns each 64 KiB, so reads skip the links above it.
    owners: OwnerIndex,
    /// The leaf's change tracking (fed before every write).
    tracker: std::sync::Mutex<tracker::Tracker>,
}

fn sectors_in(buf_len: usize) -> Result<u64> {
    if !buf_len.is_multiple_of(512) {
        return Err(Error::InvalidArg(
            "buffer is not a whole number of sectors".into(),
        ));
    }
    Ok((buf_len / 512) as u64)
}

/// True if `link` is a redo log (its descriptor names a parent) that this open may write. Links
/// that refuse every write (read-only opens, legacy COWD logs) are left to refuse it themselves,
/// with their own error, without opening anything.
fn has_parent(link: &Link) -> bool {
    if !link.writable() || link.is_legacy_redo() {
        return false;
    }
    let d = link.descriptor();
    d.parent_cid != NO_PARENT_CID && d.parent_hint.is_some()
}

/// Reads from `links[level]` downwards: unallocated runs fall through to the parent.
pub(crate) fn read_links(links: &[Link], level: usize, sector: u64, buf: &mut [u8]) -> Result<()> {
    let link = &links[level];
    let mut pos = 0usize;
    while pos < buf.len() {
        let s = sector + (pos / 512) as u64;
        let want = ((buf.len() - pos) / 512) as u64;
        let (m, n) = link.map(s, want)?;
        let chunk = &mut buf[pos..pos + n as usize * 512];
        match m {
            Mapping::Data { extent, offset } => link.read_data(extent, chunk, offset)?,
            Mapping::Compressed {
                extent,
                marker,
                skip,
            } => link.read_compressed(extent, marker, skip, chunk)?,
            Mapping::Zero => chunk.fill(0),
            Mapping::Unallocated if level + 1 < links.len() => {
                read_links(links, level + 1, s, chunk)?
            }
            Mapping::Unallocated => chunk.fill(0),
        }
        pos += chunk.len();
    }
    Ok(())
}

impl Disk {
    /// Opens `path` and, unless `single_link`, all of its parents (read-only, shared locks).
    pub fn open(path: &Path, opts: OpenOptions) -> Result<Disk> {
        Disk::over_leaf(Link::open(path, !opts.read_only)?, opts.single_link)
    }

    /// Opens `path` read-only without the lock on its leaf (see `Link::open_force_share`): a
    /// disk another process holds open for writing can be inspected, with answers that may be
    /// stale. Parents are opened as usual (writers hold them under shared locks too).
    pub fn open_force_share(path: &Path, single_link: bool) -> Result<Disk> {
        Disk::over_leaf(Link::open_force_share(path)?, single_link)
    }

    /// The disk whose leaf is `leaf`: with its parents unless `single_link`, and its tracker.
    fn over_leaf(leaf: Link, single_link: bool) -> Result<Disk> {
        let links = if single_link {
            vec![leaf]
        } else {
            resolve::open_parents(leaf)?
        };
        let tracker = tracker::open_tracker(&links[0]);
        let disk = Disk::from_links(links);
        *disk.tracker.lock().unwrap_or_else(|e| e.into_inner()) = tracker;
        Ok(disk)
    }

    /// Wraps already opened links (leaf first).
    pub fn from_links(links: Vec<Link>) -> Disk {
        Disk {
            capacity: links[0].capacity(),
            chain: RwLock::new(Chain {
                links,
                sealed: false,
                scratch: false,
                fill_parents: None,
            }),
            owners: OwnerIndex::default(),
            tracker: std::sync::Mutex::new(tracker::Tracker::Off),
        }
    }

    /// Shared access to the chain.
    pub fn chain(&self) -> RwLockReadGuard<'_, Chain> {
        self.chain.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Exclusive access to the chain for changing its links (Attach, Shrink): the owner index
    /// is reset.
    pub fn chain_mut(&self) -> RwLockWriteGuard<'_, Chain> {
        let mut guard = self.exclusive();
        self.owners.reset();
        guard.fill_parents = None; // the leaf's parents may change
        guard
    }

    /// Exclusive access that leaves the links as they are (flush, metadata, sealing).
    pub(crate) fn exclusive(&self) -> RwLockWriteGuard<'_, Chain> {
        self.chain.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Capacity in sectors.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Number of links open.
    pub fn num_links(&self) -> usize {
        self.chain().links.len()
    }

    /// VIX_E_DISK_OUTOFRANGE unless `[start, start + count)` lies inside the disk.
    pub fn check_range(&self, start: u64, count: u64) -> Result<()> {
        match start.checked_add(count) {
            Some(end) if end <= self.capacity => Ok(()),
            _ => Err(Error::OutOfRange {
                start,
                end: start.saturating_add(count),
                capacity: self.capacity,
            }),
        }
    }

    /// Reads whole sectors starting at `sector` into `buf`.
    pub fn read(&self, sector: u64, buf: &mut [u8]) -> Result<()> {
        let count = sectors_in(buf.len())?;
        self.check_range(sector, count)?;
        let chain = self.chain();
        let links = &chain.links;
        if links.len() == 1 {
            return read_links(links, 0, sector, buf);
        }
        self.owners
            .runs(links, self.capacity, sector, count, &mut |owner, s, n| {
                let at = ((s - sector) * 512) as usize;
                let chunk = &mut buf[at..at + n as usize * 512];
                if owner == NO_OWNER {
                    chunk.fill(0);
                    Ok(())
                } else {
                    read_links(links, owner as usize, s, chunk)
                }
            })
    }

    /// Writes whole sectors at `sector` into the leaf; a partial grain is completed from the
    /// parents first (copy-on-write), so no link ever holds a torn grain.
    pub fn write(&self, sector: u64, data: &[u8]) -> Result<()> {
        let count = sectors_in(data.len())?;
        self.check_range(sector, count)?;
        let mut chain = self.exclusive();
        if chain.sealed {
            return Err(Error::ReadOnly(
                "a child disk was created over this disk: write through the child".into(),
            ));
        }
        let capacity = self.capacity;
        // A single-link open of a redo log: a partial grain must be completed with what the
        // chain shows there, the parents' data; zeros would appear through the chain (and be
        // committed into the parent) where nobody wrote them. The parents are opened before
        // anything changes, so a write that cannot be completed is refused untouched.
        // Decided once per open (a base disk gets an empty list, so later writes skip this).
        if chain.links.len() == 1 && chain.fill_parents.is_none() {
            let parents = if has_parent(&chain.links[0]) {
                resolve::parents_of(&chain.links[0]).map_err(|e| {
                    log::warn(format!(
                        "{}: a write through a single-link open of a redo log needs its parents to complete partial grains: {e}",
                        chain.links[0].path().display()
                    ));
                    e
                })?
            } else {
                Vec::new()
            };
            chain.fill_parents = Some(parents);
        }
        let Chain {
            links,
            fill_parents,
            ..
        } = &*chain;
        let (below, from): (&[Link], usize) = match fill_parents {
            Some(parents) if links.len() == 1 => (parents, 0),
            _ => (links, 1),
        };
        // Recorded (durably, where the crash rules need it) before any data moves.
        self.track_write(&links[0], sector, count)?;
        let mut fill = |s: u64, b: &mut [u8]| -> Result<()> {
            let n = ((capacity.saturating_sub(s)) as usize * 512).min(b.len());
            b[n..].fill(0);
            if from < below.len() {
                read_links(below, from, s, &mut b[..n])
            } else {
                b[..n].fill(0);
                Ok(())
            }
        };
        let result = links[0].write(sector, data, &mut fill);
        if count > 0 {
            // Even a failed write may have allocated some grains in the leaf.
            self.owners.leaf_wrote(sector, count);
        }
        result
    }

    /// Makes every completed write durable (data, then tables, then directories; fsync).
    /// A nonpersistent open's private redo log is skipped: its content dies with the handle.
    pub fn flush(&self) -> Result<()> {
        let chain = self.exclusive();
        for link in chain.links.iter().skip(usize::from(chain.scratch)) {
            link.flush()?;
        }
        match chain.links.first() {
            Some(leaf) => self.sync_tracker(leaf.descriptor().cid, false),
            None => Ok(()), // links handed to a child by Attach
        }
    }

    /// True for a nonpersistent open (writes go to a private redo log that vanishes at Close).
    pub fn is_nonpersistent(&self) -> bool {
        self.chain().scratch
    }

    /// Flushes and marks every link this open wrote as cleanly closed.
    pub fn close(&self) -> Result<()> {
        let chain = self.exclusive();
        let mut first_error = None;
        for link in chain.links.iter().skip(usize::from(chain.scratch)) {
            if let Err(e) = link.close() {
                first_error.get_or_insert(e);
            }
        }
        if first_error.is_none()
            && let Some(leaf) = chain.links.first()
            && let Err(e) = self.sync_tracker(leaf.descriptor().cid, true)
        {
            first_error = Some(e);
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Looks a DDB key up from the leaf towards the base.
    pub fn ddb_lookup(&self, key: &str) -> Option<String> {
        self.chain()
            .links
            .iter()
            .find_map(|l| l.descriptor().ddb_get(key).map(str::to_string))
    }

    /// Every DDB key visible through the chain (leaf first, no duplicates).
    pub fn ddb_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        for link in &self.chain().links {
            for (k, _) in link.descriptor().ddb {
                if !keys.iter().any(|have| have.eq_ignore_ascii_case(&k)) {
                    keys.push(k);
                }
            }
        }
        keys
    }

    /// Sets a DDB key in the leaf's descriptor.
    pub fn ddb_set(&self, key: &str, value: &str) -> Result<()> {
        if key.is_empty()
            || key.contains(['"', '\n', '\r', '='])
            || value.contains(['"', '\n', '\r'])
        {
            return Err(Error::InvalidArg(format!(
                "metadata key {key:?} or its value has characters a descriptor cannot hold"
            )));
        }
        let chain = self.exclusive();
        chain.links[0].update_descriptor(|d| d.ddb_set(key, value))
    }

    fn ddb_u32(&self, key: &str) -> Option<u32> {
        self.ddb_lookup(key).and_then(|v| v.trim().parse().ok())
    }

    fn ddb_geometry(&self, c: &str, h: &str, s: &str) -> Option<Geometry> {
        Some(Geometry {
            cylinders: self.ddb_u32(c)?,
            heads: self.ddb_u32(h)?,
            sectors: self.ddb_u32(s)?,
        })
    }

    /// Geometry, adapter, links, parent hint and uuid.
    pub fn info(&self) -> DiskInfo {
        let adapter = self
            .ddb_lookup("adapterType")
            .and_then(|a| Adapter::from_ddb(&a));
        let geometry = self
            .ddb_geometry("geometry.cylinders", "geometry.heads", "geometry.sectors")
            .unwrap_or_else(|| {
                Geometry::for_capacity(self.capacity, adapter.unwrap_or(Adapter::Ide))
            });
        let bios_geometry = self
            .ddb_geometry(
                "geometry.biosCylinders",
                "geometry.biosHeads",
                "geometry.biosSectors",
            )
            .unwrap_or(geometry);
        let uuid = self.ddb_lookup("uuid");
        let chain = self.chain();
        DiskInfo {
            capacity: self.capacity,
            geometry,
            bios_geometry,
            adapter,
            num_links: chain.links.len(),
            parent_hint: chain.links[0].descriptor().parent_hint,
            uuid,
        }
    }
}
