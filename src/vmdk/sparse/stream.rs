//! The sparse extent side of sequential writes into a stream created by
//! Create(STREAM_OPTIMIZED): see `vmdk::stream_append` for the format side.

use super::{Meta, SparseExtent, sectors_to_bytes, u32_sector};
use crate::error::{Error, Result};
use crate::vmdk::stream_append::{Pending, StreamAppend};

impl SparseExtent {
    /// True for a stream in VMware's layout, which sequential writes can extend.
    pub fn is_appendable_stream(&self) -> bool {
        self.header.is_compressed() && self.gd_at_end
    }

    /// Sequential writes into a stream (see `stream_append`).
    pub(super) fn stream_write(&self, sector: u64, data: &[u8]) -> Result<()> {
        if !self.gd_at_end {
            return Err(Error::NotSupported(format!(
                "{}: this streamOptimized layout is write-once; clone to another type to modify",
                self.path.display()
            )));
        }
        let gs = self.header.grain_sectors;
        let mut meta = self.lock();
        let mut guard = self.stream.lock().unwrap_or_else(|e| e.into_inner());
        let f = self.file.writing()?;
        if guard.is_none() {
            let n = meta.gd.len();
            self.load_gts(&mut meta, 0, n)?;
            let markers: Vec<u64> = meta
                .gts
                .iter()
                .flatten()
                .flat_map(|t| t.iter())
                .filter(|&&e| e != 0)
                .map(|&e| u64::from(e))
                .collect();
            let tables: Vec<u64> = meta
                .gd
                .iter()
                .filter(|&&e| e != 0)
                .map(|&e| u64::from(e))
                .collect();
            *guard = Some(StreamAppend::start(
                &f,
                &self.path,
                &self.header,
                &markers,
                &tables,
            )?);
        }
        let st = guard.as_mut().expect("started above");
        let end = sector + (data.len() / 512) as u64;
        let mut cur = sector;
        while cur < end {
            let g = cur / gs;
            let offset = sectors_to_bytes(cur % gs) as usize;
            let n = ((g + 1) * gs).min(end) - cur;
            let stored = self.entry(&mut meta, g)? != 0;
            if let Some(done) =
                st.begin(&self.path, g, offset, stored, sectors_to_bytes(gs) as usize)?
            {
                self.append_stream_grain(&mut meta, st, done)?;
            }
            let at = sectors_to_bytes(cur - sector) as usize;
            st.fill(offset, &data[at..at + sectors_to_bytes(n) as usize]);
            cur += n;
        }
        Ok(())
    }

    /// Compresses and appends a finished stream grain and records it in its table.
    fn append_stream_grain(
        &self,
        meta: &mut Meta,
        st: &mut StreamAppend,
        p: Pending,
    ) -> Result<()> {
        let gs = self.header.grain_sectors;
        let per = u64::from(self.header.gtes_per_gt);
        let valid = sectors_to_bytes(gs.min(self.header.capacity - p.grain * gs)) as usize;
        if let Some(at) = st.append_grain(&*self.file.writing()?, &self.path, gs, &p, valid)? {
            let gdi = (p.grain / per) as usize;
            let table = self.table_mut(meta, gdi);
            table[(p.grain % per) as usize] = u32_sector(at, &self.path)?;
        }
        Ok(())
    }

    /// Flush of a stream: the grain being filled is stored and a new tail (tables, directory,
    /// footer, end-of-stream) appended after the last grain, leaving the previous one intact.
    pub(super) fn flush_stream(&self) -> Result<()> {
        let mut meta = self.lock();
        let mut guard = self.stream.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(st) = guard.as_mut() {
            if let Some(p) = st.take_pending() {
                self.append_stream_grain(&mut meta, st, p)?;
            }
            if let Some(gd) =
                st.write_tail(&*self.file.writing()?, &self.path, &self.header, &meta.gts)?
            {
                meta.gd = gd;
            }
        }
        Ok(())
    }
}
