//! Appending new grains at the end of a sparse extent: the one allocation path shared by
//! ordinary writes and by kernel copies (Clone). Data goes to the file first; only then do the
//! in-memory table entries point at it (they reach the disk at the next flush).

use std::fs::File;
use std::path::Path;

use super::{Meta, SparseExtent, sectors_to_bytes, u32_sector};
use crate::error::{Error, Result};

impl SparseExtent {
    /// Allocates `n` whole grains from `grain` (all unallocated, within one grain table) at the
    /// end of the file and lets `fill(file, path, byte_offset)` put their data there (e.g. a
    /// kernel copy); the table entries change only after `fill` succeeded.
    pub fn append_grains(
        &self,
        grain: u64,
        n: u64,
        fill: &mut dyn FnMut(&File, &Path, u64) -> Result<()>,
    ) -> Result<()> {
        let gs = self.header.grain_sectors;
        let per = u64::from(self.header.gtes_per_gt);
        if self.header.is_compressed()
            || n == 0
            || grain / per != (grain + n - 1) / per
            || (grain + n) * gs > self.header.capacity
        {
            return Err(Error::InvalidArg(
                "grains to append must be whole and share a table".into(),
            ));
        }
        let mut meta = self.lock();
        for k in 0..n {
            if self.entry(&mut meta, grain + k)? != 0 {
                return Err(Error::InvalidArg(format!(
                    "grain {} is already allocated",
                    grain + k
                )));
            }
        }
        let f = self.file.writing()?;
        self.append_locked(&mut meta, grain, n, &mut |at| fill(&f, &self.path, at))
    }

    /// Appends `n` grains from `grain` (one table) at the grain-aligned end of the file:
    /// `put(byte_offset)` writes their data, and only then do the table entries point at it.
    pub(super) fn append_locked(
        &self,
        meta: &mut Meta,
        grain: u64,
        n: u64,
        put: &mut dyn FnMut(u64) -> Result<()>,
    ) -> Result<()> {
        let gs = self.header.grain_sectors;
        let per = u64::from(self.header.gtes_per_gt);
        let gdi = (grain / per) as usize;
        if meta.gd[gdi] == 0 {
            self.allocate_gt(meta, gdi)?;
        } else {
            // The table's present entries must be kept when the new ones are set.
            self.ensure_gt(meta, gdi)?;
        }
        let at = meta.next_free;
        put(sectors_to_bytes(at))?;
        meta.next_free = at + n * gs;
        meta.data_unsynced = true;
        if let Ok(f) = self.file.get() {
            self.writeback.note_appended(&f, sectors_to_bytes(n * gs));
        }
        let gt = self.table_mut(meta, gdi);
        for k in 0..n {
            gt[((grain + k) % per) as usize] = u32_sector(at + k * gs, &self.path)?;
        }
        meta.dirty_gts.insert(gdi);
        Ok(())
    }
}
