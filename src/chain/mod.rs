//! An open disk: a chain of links (leaf first). Reads walk the chain; writes go to the leaf.

pub mod resolve;

use std::path::Path;
use std::sync::RwLock;

use crate::error::{Error, Result};
use crate::vmdk::extent::Mapping;
use crate::vmdk::geometry::{Adapter, Geometry};
use crate::vmdk::link::Link;

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

/// An open disk chain.
pub struct Disk {
    links: Vec<Link>,
    capacity: u64,
    /// Readers share, writers exclude (allocation changes the maps readers use).
    io: RwLock<()>,
}

fn sectors_in(buf_len: usize) -> Result<u64> {
    if buf_len % 512 != 0 {
        return Err(Error::InvalidArg("buffer is not a whole number of sectors".into()));
    }
    Ok((buf_len / 512) as u64)
}

impl Disk {
    /// Opens `path` and, unless `single_link`, all of its parents (read-only, shared locks).
    pub fn open(path: &Path, opts: OpenOptions) -> Result<Disk> {
        let leaf = Link::open(path, !opts.read_only)?;
        let links = if opts.single_link {
            vec![leaf]
        } else {
            resolve::open_parents(leaf)?
        };
        let capacity = links[0].capacity();
        Ok(Disk {
            links,
            capacity,
            io: RwLock::new(()),
        })
    }

    /// Capacity in sectors.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// The links, leaf first.
    pub fn links(&self) -> &[Link] {
        &self.links
    }

    /// True if the leaf accepts writes.
    pub fn writable(&self) -> bool {
        self.links[0].writable()
    }

    fn check_range(&self, start: u64, count: u64) -> Result<()> {
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
        self.check_range(sector, sectors_in(buf.len())?)?;
        let _shared = self.io.read().unwrap_or_else(|e| e.into_inner());
        self.read_from(0, sector, buf)
    }

    /// Reads from link `level` downwards (unallocated runs fall through to the parent).
    fn read_from(&self, level: usize, sector: u64, buf: &mut [u8]) -> Result<()> {
        let link = &self.links[level];
        let mut pos = 0usize;
        while pos < buf.len() {
            let s = sector + (pos / 512) as u64;
            let want = ((buf.len() - pos) / 512) as u64;
            let (m, n) = link.map(s, want)?;
            let chunk = &mut buf[pos..pos + n as usize * 512];
            match m {
                Mapping::Data { extent, offset } => link.read_data(extent, chunk, offset)?,
                Mapping::Zero => chunk.fill(0),
                Mapping::Unallocated if level + 1 < self.links.len() => {
                    self.read_from(level + 1, s, chunk)?
                }
                Mapping::Unallocated => chunk.fill(0),
            }
            pos += chunk.len();
        }
        Ok(())
    }

    /// Writes whole sectors at `sector` into the leaf.
    pub fn write(&self, sector: u64, data: &[u8]) -> Result<()> {
        self.check_range(sector, sectors_in(data.len())?)?;
        let _exclusive = self.io.write().unwrap_or_else(|e| e.into_inner());
        let capacity = self.capacity;
        let mut fill = |s: u64, b: &mut [u8]| -> Result<()> {
            // Copy-on-write source: the parents' content, clamped to the disk's end.
            let n = ((capacity.saturating_sub(s)) as usize * 512).min(b.len());
            b[n..].fill(0);
            if self.links.len() > 1 {
                self.read_from(1, s, &mut b[..n])
            } else {
                b[..n].fill(0);
                Ok(())
            }
        };
        self.links[0].write(sector, data, &mut fill)
    }

    /// Makes every completed write durable (data, then tables, then directories; fsync).
    pub fn flush(&self) -> Result<()> {
        let _exclusive = self.io.write().unwrap_or_else(|e| e.into_inner());
        self.links[0].flush()
    }

    /// Flushes and marks the leaf cleanly closed.
    pub fn close(&self) -> Result<()> {
        let _exclusive = self.io.write().unwrap_or_else(|e| e.into_inner());
        self.links[0].close()
    }

    /// Looks a DDB key up from the leaf towards the base.
    pub fn ddb_lookup(&self, key: &str) -> Option<String> {
        self.links
            .iter()
            .find_map(|l| l.descriptor().ddb_get(key).map(str::to_string))
    }

    fn ddb_u32(&self, key: &str) -> Option<u32> {
        self.ddb_lookup(key).and_then(|v| v.trim().parse().ok())
    }

    /// Geometry, adapter, links, parent hint and uuid.
    pub fn info(&self) -> DiskInfo {
        let adapter = self.ddb_lookup("adapterType").and_then(|a| Adapter::from_ddb(&a));
        let geometry = match (
            self.ddb_u32("geometry.cylinders"),
            self.ddb_u32("geometry.heads"),
            self.ddb_u32("geometry.sectors"),
        ) {
            (Some(cylinders), Some(heads), Some(sectors)) => Geometry {
                cylinders,
                heads,
                sectors,
            },
            _ => Geometry::for_capacity(self.capacity, adapter.unwrap_or(Adapter::Ide)),
        };
        let bios_geometry = match (
            self.ddb_u32("geometry.biosCylinders"),
            self.ddb_u32("geometry.biosHeads"),
            self.ddb_u32("geometry.biosSectors"),
        ) {
            (Some(cylinders), Some(heads), Some(sectors)) => Geometry {
                cylinders,
                heads,
                sectors,
            },
            _ => geometry,
        };
        DiskInfo {
            capacity: self.capacity,
            geometry,
            bios_geometry,
            adapter,
            num_links: self.links.len(),
            parent_hint: self.links[0].descriptor().parent_hint,
            uuid: self.ddb_lookup("uuid"),
        }
    }
}
