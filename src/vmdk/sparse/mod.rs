//! A hosted sparse extent: grain directory, lazily loaded grain tables, reads and allocation
//! walks; writes and their crash-safe flush order are in `write`.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::fd_cache::CachedFile;
use super::fileio::{file_len, read_exact_at, write_all_at};
pub use super::grain_map::GrainMap;
use super::header::{GD_AT_END, SparseHeader};
use super::stream_append::StreamAppend;
use super::stream_read::{inflate_grain, resolve_footer};
use super::writeback::Writeback;

mod append;
mod layout;
mod stream;
mod write;

use crate::error::{Error, Result};
pub use layout::write_new_extent;

struct Meta {
    gd: Vec<u32>,
    rgd: Vec<u32>,
    gts: Vec<Option<Box<[u32]>>>,
    dirty_gts: BTreeSet<usize>,
    dirty_gd: BTreeSet<usize>,
    /// First sector a grain may start at (after the header, descriptor and first metadata).
    lowest_grain: u64,
    /// Next free sector for appended grains (always grain aligned when grains are appended).
    next_free: u64,
    /// Data was written since the last sync.
    data_unsynced: bool,
}

/// One open sparse extent file.
pub struct SparseExtent {
    path: PathBuf,
    /// The extent file; the per-process cache may close its descriptor and reopen it.
    file: CachedFile,
    header: SparseHeader,
    meta: Mutex<Meta>,
    writeback: Writeback,
    /// The on-disk header says GD_AT_END (VMware's stream layout, which appends can extend).
    gd_at_end: bool,
    /// Sequential writes into a stream created by Create(STREAM_OPTIMIZED).
    stream: Mutex<Option<StreamAppend>>,
}

/// A Shrink/Defragment killed before its rename leaves `<extent>.compact-tmp` beside the
/// untouched original: garbage. Opens run under the disk's lock, so no compaction of this
/// extent is under way and the leftover can go. Failure (read-only directory) is harmless.
fn remove_compact_leftover(path: &Path) {
    let tmp = super::atomic::temp_path(path);
    if std::fs::symlink_metadata(&tmp).is_ok() && super::fileio::remove_file(&tmp).is_ok() {
        crate::log::info(format!(
            "{}: removed {} left by an interrupted Shrink/Defragment",
            path.display(),
            tmp.display()
        ));
    }
}

fn sectors_to_bytes(s: u64) -> u64 {
    s * 512
}

impl SparseExtent {
    /// Opens an extent whose header bytes were already read from `file`.
    pub fn open(file: CachedFile, header_bytes: &[u8]) -> Result<SparseExtent> {
        let path_buf = file.path().to_path_buf();
        let path = path_buf.as_path();
        let fd = file.get()?;
        remove_compact_leftover(path);
        let len = file_len(&fd, path)?;
        let file_sectors = len.div_ceil(512);
        let header =
            SparseHeader::decode(header_bytes, file_sectors).map_err(|e| annotate(path, e))?;
        let gd_at_end = header.gd_offset == GD_AT_END;
        let header = resolve_footer(&fd, path, header, len)?;
        let entries = header.gd_entries() as usize;
        let gd = read_u32s(&fd, path, header.gd_offset, entries)?;
        let rgd = if header.has_redundant() {
            read_u32s(&fd, path, header.rgd_offset, entries)?
        } else {
            Vec::new()
        };
        // Tables must lie after the header and descriptor and inside the file: the redundant
        // copies too, since Flush writes tables where they point.
        let first_free = if header.descriptor_offset != 0 {
            header
                .descriptor_offset
                .saturating_add(header.descriptor_size)
                .max(1)
        } else {
            1
        };
        for (which, dir) in [("", &gd), ("redundant ", &rgd)] {
            for (i, &gde) in dir.iter().enumerate() {
                let at = u64::from(gde);
                if gde != 0 && (at < first_free || at + header.gt_sectors() > file_sectors) {
                    return Err(Error::Corrupt(format!(
                        "{}: {which}grain directory entry {i} points at sector {at}, outside the table area",
                        path.display()
                    )));
                }
            }
        }
        // Grains may not start inside the metadata block written with the file: the
        // directories and every table stored before `overhead`.
        let gds = header.gd_sectors();
        let mut metadata_end = header.gd_offset.saturating_add(gds);
        if header.has_redundant() {
            metadata_end = metadata_end.max(header.rgd_offset + gds);
        }
        for &e in gd.iter().chain(rgd.iter()) {
            if e != 0 && u64::from(e) < header.overhead {
                metadata_end = metadata_end.max(u64::from(e) + header.gt_sectors());
            }
        }
        let lowest_grain = header.overhead.min(metadata_end).max(first_free);
        let next_free = file_sectors
            .max(header.overhead)
            .next_multiple_of(header.grain_sectors);
        drop(fd);
        Ok(SparseExtent {
            path: path.to_path_buf(),
            file,
            meta: Mutex::new(Meta {
                gts: vec![None; entries],
                gd,
                rgd,
                dirty_gts: BTreeSet::new(),
                dirty_gd: BTreeSet::new(),
                lowest_grain,
                next_free,
                data_unsynced: false,
            }),
            header,
            writeback: Writeback::default(),
            gd_at_end,
            stream: Mutex::new(None),
        })
    }

    /// The decoded header.
    pub fn header(&self) -> &SparseHeader {
        &self.header
    }

    /// The extent file.
    pub fn file(&self) -> &CachedFile {
        &self.file
    }

    /// The extent file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Meta> {
        self.meta.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads grain table `gdi` into the cache if needed; returns false if it has none.
    fn ensure_gt(&self, meta: &mut Meta, gdi: usize) -> Result<bool> {
        if meta.gts[gdi].is_some() {
            return Ok(true);
        }
        if meta.gd[gdi] == 0 {
            return Ok(false);
        }
        self.load_gts(meta, gdi, gdi + 1)?;
        Ok(true)
    }

    /// Loads every missing table of `gdi_range` (those with a directory entry). Tables stored
    /// back to back, as every writer pre-allocates them, are read with one pread per run (at
    /// most `LOAD_BYTES` each, into one buffer). A table of zeros is kept as an empty slice:
    /// no allocation, nothing to scan (most tables of a redo log are empty).
    fn load_gts(&self, meta: &mut Meta, first: usize, end: usize) -> Result<()> {
        let n = self.header.gtes_per_gt as usize;
        let step = self.header.gt_sectors();
        let table_bytes = step as usize * 512;
        let per_read = (LOAD_BYTES / table_bytes).max(1);
        let mut bytes: Vec<u8> = Vec::new();
        let mut gdi = first;
        while gdi < end {
            if meta.gts[gdi].is_some() || meta.gd[gdi] == 0 {
                gdi += 1;
                continue;
            }
            let run_start = gdi;
            let base = u64::from(meta.gd[gdi]);
            while gdi < end
                && gdi - run_start < per_read
                && meta.gts[gdi].is_none()
                && u64::from(meta.gd[gdi]) == base + (gdi - run_start) as u64 * step
            {
                gdi += 1;
            }
            let count = gdi - run_start;
            bytes.resize(count * table_bytes, 0);
            read_exact_at(&*self.file.get()?, &self.path, &mut bytes, base * 512)?;
            for k in 0..count {
                let raw = &bytes[k * table_bytes..][..n * 4];
                let table: Box<[u32]> = if all_zero(raw) {
                    Box::new([])
                } else {
                    let table: Vec<u32> = raw
                        .chunks_exact(4)
                        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect();
                    self.validate_table(meta.lowest_grain, meta.next_free, run_start + k, &table)?;
                    table.into_boxed_slice()
                };
                meta.gts[run_start + k] = Some(table);
            }
        }
        Ok(())
    }

    /// Loaded table `gdi` for writing entries: an empty (all-zero) one gets its full size.
    fn table_mut<'m>(&self, meta: &'m mut Meta, gdi: usize) -> &'m mut [u32] {
        let n = self.header.gtes_per_gt as usize;
        let table = meta.gts[gdi].get_or_insert_with(|| Box::new([]));
        if table.is_empty() {
            *table = vec![0u32; n].into_boxed_slice();
        }
        table
    }

    /// Refuses a table whose entries point into the metadata or past the end of the file.
    fn validate_table(&self, lowest: u64, limit: u64, gdi: usize, table: &[u32]) -> Result<()> {
        // Compressed grains are smaller than a grain: only their marker must be in the file.
        let needed = if self.header.is_compressed() {
            1
        } else {
            self.header.grain_sectors
        };
        // Entry 1 is a zeroed grain only when the header says so; otherwise it would point at
        // the descriptor.
        let zeroed = self.header.zeroed_gte();
        match table.iter().position(|&e| {
            e != 0
                && !(e == 1 && zeroed)
                && (u64::from(e) < lowest || u64::from(e) + needed > limit)
        }) {
            None => Ok(()),
            Some(i) => Err(Error::Corrupt(format!(
                "{}: grain table {gdi} entry {i} points at sector {}, outside the data area",
                self.path.display(),
                table[i]
            ))),
        }
    }

    fn entry(&self, meta: &mut Meta, grain: u64) -> Result<u32> {
        let per = u64::from(self.header.gtes_per_gt);
        let gdi = (grain / per) as usize;
        if gdi >= meta.gd.len() || !self.ensure_gt(meta, gdi)? {
            return Ok(0);
        }
        let gt = meta.gts[gdi].as_ref().expect("loaded above");
        Ok(gt.get((grain % per) as usize).copied().unwrap_or(0))
    }

    fn classify(&self, gte: u32) -> GrainMap {
        match gte {
            0 => GrainMap::Unallocated,
            1 if self.header.zeroed_gte() => GrainMap::Zero,
            s if self.header.is_compressed() => GrainMap::Compressed(u64::from(s)),
            s => GrainMap::Data(sectors_to_bytes(u64::from(s))),
        }
    }

    /// Maps extent-relative `sector`: returns where it lives and for how many sectors (at most
    /// `max`) the same answer holds, merging grains that are contiguous in the file.
    pub fn map(&self, sector: u64, max: u64) -> Result<(GrainMap, u64)> {
        let gs = self.header.grain_sectors;
        let mut meta = self.lock();
        let grain = sector / gs;
        let first = self.classify(self.entry(&mut meta, grain)?);
        let first = match first {
            GrainMap::Data(off) => GrainMap::Data(off + sectors_to_bytes(sector % gs)),
            other => other,
        };
        let mut len = (gs - sector % gs).min(max);
        if matches!(first, GrainMap::Compressed(_)) {
            return Ok((first, len));
        }
        let mut next = grain + 1;
        while len < max && next * gs < self.header.capacity {
            let m = self.classify(self.entry(&mut meta, next)?);
            let expected = match first {
                GrainMap::Data(off) => GrainMap::Data(off + sectors_to_bytes(len)),
                other => other,
            };
            if m != expected {
                break;
            }
            len = (len + gs).min(max);
            next += 1;
        }
        Ok((first, len))
    }

    /// Inflates the compressed grain whose marker is at `marker` into `grain` (a whole grain).
    pub fn read_compressed(&self, marker: u64, grain: &mut [u8]) -> Result<()> {
        inflate_grain(&*self.file.get()?, &self.path, marker, grain)
    }

    /// Bytes in one grain.
    pub fn grain_bytes(&self) -> usize {
        sectors_to_bytes(self.header.grain_sectors) as usize
    }

    /// Reads from a byte offset returned by `map`.
    pub fn read_data(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        read_exact_at(&*self.file.get()?, &self.path, buf, offset)
    }

    /// Calls `visit(first_sector, sectors)` for every allocated (data or zeroed) grain that
    /// overlaps extent sectors `[start, end)`, in ascending order. Tables without a directory
    /// entry are skipped without I/O.
    pub fn for_each_allocated(
        &self,
        start: u64,
        end: u64,
        visit: &mut dyn FnMut(u64, u64),
    ) -> Result<()> {
        let gs = self.header.grain_sectors;
        let per = u64::from(self.header.gtes_per_gt);
        let end = end.min(self.header.capacity);
        if start >= end {
            return Ok(());
        }
        let mut meta = self.lock();
        let first_gt = (start / gs / per) as usize;
        let last_gt = ((end - 1) / gs / per) as usize;
        let last_gt = last_gt.min(meta.gd.len().saturating_sub(1));
        self.load_gts(&mut meta, first_gt, last_gt + 1)?;
        for gdi in first_gt..=last_gt {
            let Some(gt) = meta.gts[gdi].as_ref().filter(|gt| !gt.is_empty()) else {
                continue;
            };
            let base = gdi as u64 * per;
            let lo = (start / gs).saturating_sub(base).min(per) as usize;
            let hi = ((end - 1) / gs + 1).saturating_sub(base).min(per) as usize;
            let mut i = lo;
            while i < hi {
                // Skip empty stretches 16 entries at a time (the common case in redo logs).
                if i.is_multiple_of(16) && i + 16 <= hi && gt[i..i + 16].iter().all(|&e| e == 0) {
                    i += 16;
                    continue;
                }
                if gt[i] != 0 {
                    let s = (base + i as u64) * gs;
                    visit(s, gs.min(self.header.capacity - s));
                }
                i += 1;
            }
        }
        Ok(())
    }
}

/// Largest read when loading grain tables (small enough to stay in the allocator's heap).
const LOAD_BYTES: usize = 64 * 1024;

/// True if `bytes` are all zero (compared 16 at a time).
fn all_zero(bytes: &[u8]) -> bool {
    let mut chunks = bytes.chunks_exact(16);
    chunks.all(|c| u128::from_ne_bytes(c.try_into().expect("16 bytes")) == 0)
        && chunks.remainder().iter().all(|&b| b == 0)
}

fn sector_end(grain_start: u64, gs: u64) -> u64 {
    grain_start + gs
}

fn annotate(path: &Path, e: Error) -> Error {
    match e {
        Error::InvalidDisk(m) => Error::InvalidDisk(format!("{}: {m}", path.display())),
        Error::UnsupportedVersion(m) => {
            Error::UnsupportedVersion(format!("{}: {m}", path.display()))
        }
        other => other,
    }
}

fn u32_sector(sector: u64, path: &Path) -> Result<u32> {
    u32::try_from(sector).map_err(|_| {
        Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::from_raw_os_error(27), // EFBIG
        }
    })
}

fn read_u32s(file: &File, path: &Path, sector: u64, count: usize) -> Result<Vec<u32>> {
    let mut bytes = vec![0u8; count * 4];
    read_exact_at(file, path, &mut bytes, sectors_to_bytes(sector))?;
    Ok(bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

fn u32s_to_bytes(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}
