//! Writes into a hosted sparse extent: grain allocation, grain-table allocation, the flush
//! and the unclean-shutdown flag.
//!
//! Write ordering (crash safety): a new grain's data is written at the grain-aligned end of the
//! file first; its grain-table entry only changes in memory. `flush_metadata` makes the data
//! durable, then writes grain tables (primary, then redundant), then directory entries for
//! tables allocated in this session, then syncs again. A crash therefore leaves at worst a
//! leaked grain, never a table entry that points at garbage.

use super::{
    GD_AT_END, GrainMap, Meta, SparseExtent, sector_end, sectors_to_bytes, u32_sector,
    u32s_to_bytes, write_all_at,
};
use crate::error::{Error, Result};

impl SparseExtent {
    /// Allocates table `gdi` in a file that lacks it (VMware stream files, foreign tools):
    /// zeroed copies are appended and the directory entries become dirty.
    pub(super) fn allocate_gt(&self, meta: &mut Meta, gdi: usize) -> Result<()> {
        let gt_sectors = self.header.gt_sectors();
        let zeros = vec![0u8; sectors_to_bytes(gt_sectors) as usize];
        let primary = meta.next_free;
        let f = self.file.writing()?;
        write_all_at(&f, &self.path, &zeros, sectors_to_bytes(primary))?;
        meta.gd[gdi] = u32_sector(primary, &self.path)?;
        let mut end = primary + gt_sectors;
        if !meta.rgd.is_empty() {
            write_all_at(&f, &self.path, &zeros, sectors_to_bytes(end))?;
            meta.rgd[gdi] = u32_sector(end, &self.path)?;
            end += gt_sectors;
        }
        meta.next_free = end.next_multiple_of(self.header.grain_sectors);
        meta.gts[gdi] = Some(vec![0u32; self.header.gtes_per_gt as usize].into_boxed_slice());
        meta.dirty_gd.insert(gdi);
        meta.data_unsynced = true;
        Ok(())
    }

    /// Writes `data` (whole sectors) at extent-relative `sector`. Grains not yet allocated are
    /// allocated at the end of the file; the parts of a new grain that `data` does not cover
    /// are taken from `fill(extent_sector, buf)` (the parent chain, or zeros).
    pub fn write(
        &self,
        sector: u64,
        data: &[u8],
        fill: &mut dyn FnMut(u64, &mut [u8]) -> Result<()>,
    ) -> Result<()> {
        if self.header.is_compressed() {
            return self.stream_write(sector, data);
        }
        let gs = self.header.grain_sectors;
        let grain_bytes = sectors_to_bytes(gs) as usize;
        let per = u64::from(self.header.gtes_per_gt);
        let mut meta = self.lock();
        // Marks the file unsynced when the writes below are done.
        let f = self.file.writing()?;
        let end = sector + (data.len() / 512) as u64;
        let mut cur = sector;
        while cur < end {
            let grain = cur / gs;
            let grain_start = grain * gs;
            let gte = self.entry(&mut meta, grain)?;
            let in_grain = (sector_end(grain_start, gs).min(end)) - cur;
            let data_off = sectors_to_bytes(cur - sector) as usize;
            match self.classify(gte) {
                GrainMap::Data(off) => {
                    // Overwrite in place; merge following grains that are contiguous.
                    let mut run = in_grain;
                    let mut g = grain + 1;
                    while grain_start + run + (cur - grain_start) < end {
                        let next = self.entry(&mut meta, g)?;
                        if self.classify(next)
                            != GrainMap::Data(off + sectors_to_bytes(g * gs - grain_start))
                        {
                            break;
                        }
                        run = (g * gs + gs).min(end) - cur;
                        g += 1;
                    }
                    let bytes = &data[data_off..data_off + sectors_to_bytes(run) as usize];
                    write_all_at(
                        &f,
                        &self.path,
                        bytes,
                        off + sectors_to_bytes(cur - grain_start),
                    )?;
                    cur += run;
                }
                state => {
                    // Count whole new grains covered by the request, starting here.
                    let whole = cur == grain_start && grain_start + gs <= end;
                    let mut n = 1u64;
                    if whole {
                        while (grain + n + 1) * gs <= end
                            && (grain + n) / per == grain / per
                            && !matches!(
                                self.classify(self.entry(&mut meta, grain + n)?),
                                GrainMap::Data(_)
                            )
                        {
                            n += 1;
                        }
                    }
                    self.append_locked(&mut meta, grain, n, &mut |at| {
                        if whole {
                            let len = sectors_to_bytes(n * gs) as usize;
                            write_all_at(&f, &self.path, &data[data_off..data_off + len], at)
                        } else {
                            let mut buf = vec![0u8; grain_bytes];
                            if state == GrainMap::Unallocated {
                                fill(grain_start, &mut buf)?;
                            }
                            let rel = sectors_to_bytes(cur - grain_start) as usize;
                            let len = sectors_to_bytes(in_grain) as usize;
                            buf[rel..rel + len].copy_from_slice(&data[data_off..data_off + len]);
                            write_all_at(&f, &self.path, &buf, at)
                        }
                    })?;
                    cur = if whole {
                        grain_start + n * gs
                    } else {
                        cur + in_grain
                    };
                }
            }
        }
        Ok(())
    }

    /// Makes everything written so far durable, in crash-safe order (see the module docs).
    pub fn flush_metadata(&self) -> Result<()> {
        if self.header.is_compressed() {
            return self.flush_stream();
        }
        self.writeback
            .finish()
            .map_err(|e| Error::io(&self.path, e))?;
        let mut meta = self.lock();
        if !meta.data_unsynced && meta.dirty_gts.is_empty() && meta.dirty_gd.is_empty() {
            return Ok(());
        }
        // One descriptor for the whole sequence; each sync covers every write before it,
        // including writes through descriptors the cache closed (synced at eviction).
        let f = self.file.get()?;
        self.file.sync_with(&f)?;
        self.file.note_written();
        let dirty: Vec<usize> = std::mem::take(&mut meta.dirty_gts).into_iter().collect();
        for gdi in dirty {
            let bytes = u32s_to_bytes(meta.gts[gdi].as_ref().expect("dirty table is loaded"));
            write_all_at(
                &f,
                &self.path,
                &bytes,
                sectors_to_bytes(u64::from(meta.gd[gdi])),
            )?;
            if !meta.rgd.is_empty() && meta.rgd[gdi] != 0 {
                write_all_at(
                    &f,
                    &self.path,
                    &bytes,
                    sectors_to_bytes(u64::from(meta.rgd[gdi])),
                )?;
            }
        }
        if !meta.dirty_gd.is_empty() {
            self.file.sync_with(&f)?;
            self.file.note_written();
            meta.dirty_gd.clear();
            let gd = u32s_to_bytes(&meta.gd);
            write_all_at(&f, &self.path, &gd, sectors_to_bytes(self.header.gd_offset))?;
            if !meta.rgd.is_empty() {
                let rgd = u32s_to_bytes(&meta.rgd);
                write_all_at(
                    &f,
                    &self.path,
                    &rgd,
                    sectors_to_bytes(self.header.rgd_offset),
                )?;
            }
        }
        self.file.sync_with(&f)?;
        meta.data_unsynced = false;
        Ok(())
    }

    /// Rewrites the header with the given unclean-shutdown flag and syncs it.
    pub fn set_unclean(&self, unclean: bool) -> Result<()> {
        let mut h = self.header.clone();
        h.unclean_shutdown = unclean;
        if self.gd_at_end {
            // The header of a VMware stream keeps pointing at the footer.
            h.gd_offset = GD_AT_END;
        }
        let f = self.file.get()?;
        self.file.note_written();
        write_all_at(&f, &self.path, &h.encode(), 0)?;
        self.file.sync_with(&f)
    }
}
