//! ESXi "seSparse" extents (the snapshot format of VMFS6 and of disks over 2 TB), read-only.
//!
//! VMware does not publish this layout; docs/sesparse.md records what is known and where it
//! comes from. In short: a 512-byte constant header at sector 0 locates everything else (all
//! offsets and sizes in sectors); a volatile header says whether a journal must be replayed;
//! the grain directory holds 64-bit entries, each naming one of the 4096-entry grain tables
//! packed in the table area; a table entry's top nibble says whether the 4 KiB grain is
//! unallocated (ask the parent), zero (discarded or zeroed: reads as zeros) or allocated (the
//! other 60 bits, rotated, number the grain in the grain area).

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::fileio::{file_len, read_exact_at};
use super::grain_map::GrainMap;
use crate::error::{Error, Result};

/// Constant-header magic (first 8 bytes, little-endian).
pub(crate) const CONST_MAGIC: u64 = 0xcafe_babe;
/// Volatile-header magic.
const VOLATILE_MAGIC: u64 = 0xcafe_cafe;
/// The one version ESXi writes (2.1 as two 32-bit halves).
const VERSION: u64 = 0x0000_0002_0000_0001;
/// Sectors per grain: the only value ESXi writes (4 KiB grains).
pub(crate) const GRAIN_SECTORS: u64 = 8;
/// Sectors per grain table: 64 sectors of 8-byte entries, i.e. 4096 entries.
const TABLE_SECTORS: u64 = 64;
/// Entries per grain table.
pub(crate) const GTES_PER_GT: u64 = TABLE_SECTORS * 512 / 8;
/// Most grain-directory entries we accept: 2^25 tables of 16 MiB cover 512 TiB, well over the
/// format's limit of just under 64 TiB, and bound the directory read to 256 MiB.
const MAX_GD_ENTRIES: u64 = 1 << 25;
/// Grain tables kept in memory before the cache starts over (32 KiB each).
const MAX_CACHED_TABLES: usize = 512;

/// Top-nibble types of a directory entry and of a table entry.
const GDE_ALLOCATED: u64 = 0x1;
const GTE_UNALLOCATED: u64 = 0x0;
const GTE_UNMAPPED: u64 = 0x1;
const GTE_ZERO: u64 = 0x2;
const GTE_ALLOCATED: u64 = 0x3;

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

/// The fields of the constant header we use (all in sectors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeSparseHeader {
    /// Virtual size of the extent.
    pub capacity: u64,
    /// Where the volatile header is.
    pub volatile_offset: u64,
    /// The grain directory and its size.
    pub gd_offset: u64,
    /// Size of the grain directory.
    pub gd_size: u64,
    /// Start of the grain-table area.
    pub gt_offset: u64,
    /// Start of the grain area.
    pub grains_offset: u64,
}

/// Field positions in the constant header (8-byte words).
mod word {
    pub(super) const MAGIC: usize = 0;
    pub(super) const VERSION: usize = 1;
    pub(super) const CAPACITY: usize = 2;
    pub(super) const GRAIN_SIZE: usize = 3;
    pub(super) const GT_SIZE: usize = 4;
    pub(super) const FLAGS: usize = 5;
    pub(super) const RESERVED: std::ops::Range<usize> = 6..10;
    pub(super) const VOLATILE_OFFSET: usize = 10;
    pub(super) const GD_OFFSET: usize = 16;
    pub(super) const GD_SIZE: usize = 17;
    pub(super) const GT_OFFSET: usize = 18;
    pub(super) const GRAINS_OFFSET: usize = 24;
    /// Words the header defines; the rest of its sector is zero padding.
    pub(super) const COUNT: usize = 26;
}

impl SeSparseHeader {
    /// True if `bytes` start with the constant-header magic.
    pub fn has_magic(bytes: &[u8]) -> bool {
        bytes.len() >= 8 && u64_at(bytes, 0) == CONST_MAGIC
    }

    /// Decodes and validates a 512-byte constant header. Anything ESXi does not write (another
    /// version, grain or table size, flags, reserved words, padding) is refused: the format is
    /// undocumented, so a reader that guessed at variants could return wrong data.
    pub fn decode(path: &Path, h: &[u8]) -> Result<SeSparseHeader> {
        let w = |i: usize| u64_at(h, i * 8);
        let unsupported = |what: String| {
            Error::NotSupported(format!("{}: seSparse extent with {what}", path.display()))
        };
        if h.len() < 512 || w(word::MAGIC) != CONST_MAGIC {
            return Err(Error::InvalidDisk(format!(
                "{}: no seSparse header magic",
                path.display()
            )));
        }
        if w(word::VERSION) != VERSION {
            return Err(Error::UnsupportedVersion(format!(
                "{}: seSparse version {:#x}",
                path.display(),
                w(word::VERSION)
            )));
        }
        if w(word::GRAIN_SIZE) != GRAIN_SECTORS {
            return Err(unsupported(format!(
                "a grain of {} sectors",
                w(word::GRAIN_SIZE)
            )));
        }
        if w(word::GT_SIZE) != TABLE_SECTORS {
            return Err(unsupported(format!(
                "grain tables of {} sectors",
                w(word::GT_SIZE)
            )));
        }
        if w(word::FLAGS) != 0 {
            return Err(unsupported(format!("flags {:#x}", w(word::FLAGS))));
        }
        if h[word::RESERVED.start * 8..word::RESERVED.end * 8]
            .iter()
            .chain(&h[word::COUNT * 8..512])
            .any(|&b| b != 0)
        {
            return Err(unsupported("non-zero reserved header bytes".into()));
        }
        let hdr = SeSparseHeader {
            capacity: w(word::CAPACITY),
            volatile_offset: w(word::VOLATILE_OFFSET),
            gd_offset: w(word::GD_OFFSET),
            gd_size: w(word::GD_SIZE),
            gt_offset: w(word::GT_OFFSET),
            grains_offset: w(word::GRAINS_OFFSET),
        };
        let bad = |m: &str| Error::InvalidDisk(format!("{}: seSparse {m}", path.display()));
        if hdr.capacity == 0 {
            return Err(bad("capacity is zero"));
        }
        if hdr.needed_gd_entries() > MAX_GD_ENTRIES {
            return Err(bad("capacity is beyond the format's limit"));
        }
        if hdr.gd_size.saturating_mul(512 / 8) < hdr.needed_gd_entries() {
            return Err(bad("grain directory too small for the capacity"));
        }
        if hdr.volatile_offset == 0 || hdr.gd_offset == 0 || hdr.gt_offset == 0 {
            return Err(bad("header places metadata over itself"));
        }
        Ok(hdr)
    }

    /// Directory entries needed to cover the capacity.
    fn needed_gd_entries(&self) -> u64 {
        self.capacity.div_ceil(GTES_PER_GT * GRAIN_SECTORS)
    }
}

/// An open seSparse extent.
pub struct SeSparseExtent {
    path: PathBuf,
    file: File,
    header: SeSparseHeader,
    /// The directory entries that cover the capacity.
    gd: Vec<u64>,
    file_bytes: u64,
    tables: Mutex<HashMap<usize, Box<[u64]>>>,
}

/// What one grain-table entry says.
fn classify(gte: u64, grains_offset: u64) -> Option<GrainMap> {
    Some(match gte >> 60 {
        // Type 0 is only valid as the all-zero entry.
        GTE_UNALLOCATED if gte == 0 => GrainMap::Unallocated,
        // Unmapped (discarded by the guest) and zeroed grains both read as zeros, hiding the
        // parent.
        GTE_UNMAPPED | GTE_ZERO => GrainMap::Zero,
        GTE_ALLOCATED => {
            // The grain number is stored rotated: its low 12 bits sit in bits 48..60 and the
            // rest in bits 0..48.
            let index = ((gte >> 48) & 0xfff) | ((gte & 0xffff_ffff_ffff) << 12);
            let sector = index
                .checked_mul(GRAIN_SECTORS)
                .and_then(|s| s.checked_add(grains_offset))?;
            GrainMap::Data(sector.checked_mul(512)?)
        }
        _ => return None,
    })
}

impl SeSparseExtent {
    /// Opens and validates a seSparse extent: both headers and the grain directory (tables
    /// are read and checked when first used).
    pub fn open(path: &Path, file: File) -> Result<SeSparseExtent> {
        let file_bytes = file_len(&file, path)?;
        if file_bytes < 512 {
            return Err(Error::InvalidDisk(format!(
                "{}: seSparse header truncated",
                path.display()
            )));
        }
        let mut h = vec![0u8; 512];
        read_exact_at(&file, path, &mut h, 0)?;
        let header = SeSparseHeader::decode(path, &h)?;
        let inside = |sector: u64, sectors: u64| {
            sector
                .checked_add(sectors)
                .and_then(|end| end.checked_mul(512))
                .is_some_and(|end| end <= file_bytes)
        };
        if !inside(header.volatile_offset, 1) {
            return Err(Error::InvalidDisk(format!(
                "{}: seSparse volatile header outside the file",
                path.display()
            )));
        }
        let mut v = vec![0u8; 512];
        read_exact_at(&file, path, &mut v, header.volatile_offset * 512)?;
        if u64_at(&v, 0) != VOLATILE_MAGIC {
            return Err(Error::InvalidDisk(format!(
                "{}: seSparse volatile header has no magic",
                path.display()
            )));
        }
        if u64_at(&v, 24) != 0 {
            // ESXi left a journal to replay (the host went down mid-update): the tables may be
            // stale until it is replayed, which only ESXi does.
            return Err(Error::NotSupported(format!(
                "{}: seSparse extent has a journal to replay (open it on ESXi once first)",
                path.display()
            )));
        }
        if v[32..].iter().any(|&b| b != 0) {
            return Err(Error::NotSupported(format!(
                "{}: seSparse volatile header with non-zero reserved bytes",
                path.display()
            )));
        }
        let entries = header.needed_gd_entries();
        if !inside(header.gd_offset, (entries * 8).div_ceil(512)) {
            return Err(Error::InvalidDisk(format!(
                "{}: seSparse grain directory outside the file",
                path.display()
            )));
        }
        let mut gd_bytes = vec![0u8; (entries * 8) as usize];
        read_exact_at(&file, path, &mut gd_bytes, header.gd_offset * 512)?;
        let gd: Vec<u64> = gd_bytes.chunks_exact(8).map(|c| u64_at(c, 0)).collect();
        let ext = SeSparseExtent {
            path: path.to_path_buf(),
            file,
            header,
            gd,
            file_bytes,
            tables: Mutex::new(HashMap::new()),
        };
        for gdi in 0..ext.gd.len() {
            ext.table_offset(gdi)?;
        }
        Ok(ext)
    }

    /// The decoded constant header.
    pub fn header(&self) -> &SeSparseHeader {
        &self.header
    }

    /// Capacity in sectors (from the header).
    pub fn capacity(&self) -> u64 {
        self.header.capacity
    }

    fn corrupt(&self, what: String) -> Error {
        Error::Corrupt(format!("{}: seSparse {what}", self.path.display()))
    }

    /// Byte offset of grain table `gdi`, or None if the directory has none there.
    fn table_offset(&self, gdi: usize) -> Result<Option<u64>> {
        let gde = self.gd.get(gdi).copied().unwrap_or(0);
        if gde == 0 {
            return Ok(None);
        }
        // An allocated entry is type 1 in the top nibble, the table's number in the low 32
        // bits and nothing in between.
        if gde >> 32 != GDE_ALLOCATED << 28 {
            return Err(self.corrupt(format!("grain directory entry {gdi} is {gde:#018x}")));
        }
        let offset = (gde & 0xffff_ffff)
            .checked_mul(TABLE_SECTORS)
            .and_then(|s| s.checked_add(self.header.gt_offset))
            .and_then(|s| s.checked_mul(512))
            .filter(|&off| {
                off.checked_add(TABLE_SECTORS * 512)
                    .is_some_and(|end| end <= self.file_bytes)
            })
            .ok_or_else(|| {
                self.corrupt(format!("grain table {gdi} lies past the end of the file"))
            })?;
        Ok(Some(offset))
    }

    /// Grain-table entry of `grain` (0 where no table exists).
    fn entry(&self, grain: u64) -> Result<u64> {
        let gdi = (grain / GTES_PER_GT) as usize;
        let Some(offset) = self.table_offset(gdi)? else {
            return Ok(0);
        };
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        if !tables.contains_key(&gdi) {
            let mut bytes = vec![0u8; (GTES_PER_GT * 8) as usize];
            read_exact_at(&self.file, &self.path, &mut bytes, offset)?;
            let t: Vec<u64> = bytes.chunks_exact(8).map(|c| u64_at(c, 0)).collect();
            for (i, &e) in t.iter().enumerate() {
                self.checked_classify(e, gdi as u64 * GTES_PER_GT + i as u64)?;
            }
            if tables.len() >= MAX_CACHED_TABLES {
                tables.clear();
            }
            tables.insert(gdi, t.into_boxed_slice());
        }
        Ok(tables[&gdi][(grain % GTES_PER_GT) as usize])
    }

    /// Classifies an entry, refusing unknown types and grains outside the file.
    fn checked_classify(&self, gte: u64, grain: u64) -> Result<GrainMap> {
        match classify(gte, self.header.grains_offset) {
            Some(GrainMap::Data(off))
                if off
                    .checked_add(GRAIN_SECTORS * 512)
                    .is_none_or(|end| end > self.file_bytes) =>
            {
                Err(self.corrupt(format!("grain {grain} lies past the end of the file")))
            }
            Some(m) => Ok(m),
            None => Err(self.corrupt(format!("grain table entry {grain} is {gte:#018x}"))),
        }
    }

    fn lookup(&self, grain: u64) -> Result<GrainMap> {
        let e = self.entry(grain)?;
        self.checked_classify(e, grain)
    }

    /// Maps an extent-relative sector like `SparseExtent::map`: the first run of up to `max`
    /// sectors that map the same way.
    pub fn map(&self, sector: u64, max: u64) -> Result<(GrainMap, u64)> {
        let gs = GRAIN_SECTORS;
        let grain = sector / gs;
        let first = match self.lookup(grain)? {
            GrainMap::Data(off) => GrainMap::Data(off + (sector % gs) * 512),
            other => other,
        };
        let mut len = (gs - sector % gs).min(max);
        let mut next = grain + 1;
        while len < max && next * gs < self.header.capacity {
            let expected = match first {
                GrainMap::Data(off) => GrainMap::Data(off + len * 512),
                other => other,
            };
            if self.lookup(next)? != expected {
                break;
            }
            len = (len + gs).min(max);
            next += 1;
        }
        Ok((first, len))
    }

    /// Reads bytes at an offset from `map`.
    pub fn read_data(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        read_exact_at(&self.file, &self.path, buf, offset)
    }

    /// Visits grains overlapping `[start, end)` that this extent answers for (allocated or
    /// zero: both hide the parent).
    pub fn for_each_allocated(
        &self,
        start: u64,
        end: u64,
        visit: &mut dyn FnMut(u64, u64),
    ) -> Result<()> {
        let gs = GRAIN_SECTORS;
        let cap = self.header.capacity;
        let end = end.min(cap);
        let mut g = start / gs;
        while g * gs < end {
            if self.table_offset((g / GTES_PER_GT) as usize)?.is_none() {
                g = (g / GTES_PER_GT + 1) * GTES_PER_GT;
                continue;
            }
            if self.lookup(g)? != GrainMap::Unallocated {
                visit(g * gs, gs.min(cap - g * gs));
            }
            g += 1;
        }
        Ok(())
    }

    /// Reads every grain table and checks every entry (CheckRepair): the first problem found,
    /// or Ok.
    pub fn check_all(&self) -> Result<()> {
        for gdi in 0..self.gd.len() {
            if self.table_offset(gdi)?.is_some() {
                self.entry(gdi as u64 * GTES_PER_GT)?;
            }
        }
        Ok(())
    }
}
