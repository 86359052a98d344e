//! ESX "vmfsSparse" (COWD) extents, read-only: a 2048-byte header, a grain directory of 32-bit
//! sector numbers and lazily allocated 4096-entry grain tables.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use super::fd_cache::CachedFile;
use super::fileio::{file_len, read_exact_at};
use super::grain_map::GrainMap;
use crate::error::{Error, Result};

/// Entries per COWD grain table.
const GTES_PER_GT: u64 = 4096;

/// An open COWD extent.
pub struct CowdExtent {
    path: PathBuf,
    /// The extent file (its descriptor may be closed and reopened by the cache).
    file: CachedFile,
    capacity: u64,
    grain_sectors: u64,
    gd: Vec<u32>,
    file_sectors: u64,
    tables: Mutex<HashMap<usize, Box<[u32]>>>,
    /// The parent named in the header of a legacy redo log (not a root disk).
    parent_name: Option<String>,
}

/// Header flag of a COWD file that is a root disk (no parent); redo logs leave it clear.
const FLAG_ROOT: u32 = 1;
/// Where a child's header stores its parent's file name, and its room.
const PARENT_NAME_AT: usize = 32;
const PARENT_NAME_LEN: usize = 1024;

/// The parent file name of a COWD child header: the header's root flag is clear and the union
/// holds a NUL-terminated, printable name (a root disk stores its geometry there instead).
fn parent_name_of(h: &[u8]) -> Option<String> {
    if u32_at(h, 8) & FLAG_ROOT != 0 {
        return None;
    }
    let area = &h[PARENT_NAME_AT..PARENT_NAME_AT + PARENT_NAME_LEN];
    let len = area.iter().position(|&b| b == 0)?;
    let name = std::str::from_utf8(&area[..len]).ok()?;
    (!name.is_empty() && !name.chars().any(char::is_control)).then(|| name.to_string())
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

impl CowdExtent {
    /// True if `bytes` start with the COWD magic.
    pub fn has_magic(bytes: &[u8]) -> bool {
        bytes.starts_with(b"COWD")
    }

    /// Opens and validates a COWD extent.
    pub fn open(file: CachedFile) -> Result<CowdExtent> {
        let fd = file.get()?;
        let path = file.path().to_path_buf();
        let path = path.as_path();
        let len = file_len(&fd, path)?;
        let bad = |m: &str| Error::InvalidDisk(format!("{}: {m}", path.display()));
        if len < 2048 {
            return Err(bad("COWD header truncated"));
        }
        let mut h = vec![0u8; 2048];
        read_exact_at(&fd, path, &mut h, 0)?;
        if !Self::has_magic(&h) {
            return Err(bad("no COWD magic"));
        }
        if u32_at(&h, 4) != 1 {
            return Err(Error::UnsupportedVersion(format!(
                "{}: COWD version {}",
                path.display(),
                u32_at(&h, 4)
            )));
        }
        let capacity = u64::from(u32_at(&h, 12));
        let grain_sectors = u64::from(u32_at(&h, 16));
        let gd_offset = u64::from(u32_at(&h, 20));
        let gd_entries = u64::from(u32_at(&h, 24));
        let file_sectors = len.div_ceil(512);
        if capacity == 0 || grain_sectors == 0 || grain_sectors > 2048 {
            return Err(bad("COWD capacity or grain size invalid"));
        }
        if gd_entries < capacity.div_ceil(GTES_PER_GT * grain_sectors)
            || gd_offset == 0
            || gd_offset + (gd_entries * 4).div_ceil(512) > file_sectors
        {
            return Err(bad("COWD grain directory outside the file"));
        }
        let mut gd_bytes = vec![0u8; (gd_entries * 4) as usize];
        read_exact_at(&fd, path, &mut gd_bytes, gd_offset * 512)?;
        let gd: Vec<u32> = gd_bytes.chunks_exact(4).map(|c| u32_at(c, 0)).collect();
        if gd
            .iter()
            .any(|&e| e != 0 && u64::from(e) + GTES_PER_GT * 4 / 512 > file_sectors)
        {
            return Err(Error::Corrupt(format!(
                "{}: COWD grain table past the end of the file",
                path.display()
            )));
        }
        drop(fd);
        Ok(CowdExtent {
            path: path.to_path_buf(),
            file,
            capacity,
            grain_sectors,
            gd,
            file_sectors,
            tables: Mutex::new(HashMap::new()),
            parent_name: parent_name_of(&h),
        })
    }

    /// The parent a legacy (descriptor-less) redo log names in its header.
    pub fn legacy_parent_name(&self) -> Option<String> {
        self.parent_name.clone()
    }

    /// Capacity in sectors (from the header).
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    fn entry(&self, grain: u64) -> Result<u32> {
        let gdi = (grain / GTES_PER_GT) as usize;
        let Some(&gde) = self.gd.get(gdi) else {
            return Ok(0);
        };
        if gde == 0 {
            return Ok(0);
        }
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        if let std::collections::hash_map::Entry::Vacant(slot) = tables.entry(gdi) {
            let mut bytes = vec![0u8; (GTES_PER_GT * 4) as usize];
            read_exact_at(
                &*self.file.get()?,
                &self.path,
                &mut bytes,
                u64::from(gde) * 512,
            )?;
            let t: Vec<u32> = bytes.chunks_exact(4).map(|c| u32_at(c, 0)).collect();
            if t.iter()
                .any(|&e| e != 0 && u64::from(e) + self.grain_sectors > self.file_sectors)
            {
                return Err(Error::Corrupt(format!(
                    "{}: COWD grain past the end of the file",
                    self.path.display()
                )));
            }
            slot.insert(t.into_boxed_slice());
        }
        Ok(tables[&gdi][(grain % GTES_PER_GT) as usize])
    }

    fn classify(&self, gte: u32) -> GrainMap {
        if gte == 0 {
            GrainMap::Unallocated
        } else {
            GrainMap::Data(u64::from(gte) * 512)
        }
    }

    /// Maps an extent-relative sector like `SparseExtent::map`.
    pub fn map(&self, sector: u64, max: u64) -> Result<(GrainMap, u64)> {
        let gs = self.grain_sectors;
        let grain = sector / gs;
        let first = match self.classify(self.entry(grain)?) {
            GrainMap::Data(off) => GrainMap::Data(off + (sector % gs) * 512),
            other => other,
        };
        let mut len = (gs - sector % gs).min(max);
        let mut next = grain + 1;
        while len < max && next * gs < self.capacity {
            let expected = match first {
                GrainMap::Data(off) => GrainMap::Data(off + len * 512),
                other => other,
            };
            if self.classify(self.entry(next)?) != expected {
                break;
            }
            len = (len + gs).min(max);
            next += 1;
        }
        Ok((first, len))
    }

    /// Reads bytes at an offset from `map`.
    pub fn read_data(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        read_exact_at(&*self.file.get()?, &self.path, buf, offset)
    }

    /// Visits allocated grains overlapping `[start, end)`.
    pub fn for_each_allocated(
        &self,
        start: u64,
        end: u64,
        visit: &mut dyn FnMut(u64, u64),
    ) -> Result<()> {
        let gs = self.grain_sectors;
        let end = end.min(self.capacity);
        let mut g = start / gs;
        while g * gs < end {
            if self
                .gd
                .get((g / GTES_PER_GT) as usize)
                .copied()
                .unwrap_or(0)
                == 0
            {
                g = (g / GTES_PER_GT + 1) * GTES_PER_GT;
                continue;
            }
            if self.entry(g)? != 0 {
                visit(g * gs, gs.min(self.capacity - g * gs));
            }
            g += 1;
        }
        Ok(())
    }
}
