//! Clone: the flattened content of an open chain copied into a new disk of any supported type,
//! keeping unallocated grains unallocated; and the size such a clone needs.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use super::Disk;
use super::files::unlink;
use super::index::{NO_OWNER, OwnerIndex};
use crate::error::{Error, Result};
use crate::vmdk::create::{
    CreateSpec, DiskKind, SPLIT_EXTENT_SECTORS, base_ddb, create_unpublished, new_descriptor,
};
use crate::vmdk::descriptor::ExtentKind;
use crate::vmdk::extent::Mapping;
use crate::vmdk::header::SparseHeader;
use crate::vmdk::link::Link;
use crate::vmdk::stream_writer::write_stream_optimized;

/// Grain used for allocation bookkeeping of the source (64 KiB, as every target writes).
const GRAIN: u64 = 128;
/// Bytes copied per read/write when cloning into non-stream targets.
const COPY_SECTORS: u64 = 2048;

/// Bytes a descriptor file or the embedded descriptor area takes at most.
const DESCRIPTOR_BYTES: u64 = 20 * 512;

/// The error a cancelled clone returns.
fn interrupted(dst: &Path) -> Error {
    Error::Io {
        path: dst.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::Interrupted, "clone cancelled"),
    }
}

/// A run of source data: virtual start, sectors, the file and byte offset holding it.
type SourcePiece<'a> = (u64, u64, Arc<File>, &'a Path, u64);

impl Disk {
    /// The source runs of `[start, end)` as plain data in some link's file, or None if any
    /// part is not plain data (compressed, zeroed, split across links inside a grain).
    fn data_pieces<'a>(
        links: &'a [Link],
        owners: &OwnerIndex,
        capacity: u64,
        start: u64,
        end: u64,
    ) -> Result<Option<Vec<SourcePiece<'a>>>> {
        let mut pieces = Vec::new();
        let mut plain = true;
        let mut add = |level: usize, s: u64, n: u64| -> Result<()> {
            let link = &links[level];
            let mut cur = s;
            while plain && cur < s + n {
                let (m, len) = link.map(cur, s + n - cur)?;
                match m {
                    // Only grains a sparse extent stores: a flat source counts as allocated
                    // everywhere, and copying it blindly would allocate its zeros too (the
                    // read/write path skips them).
                    Mapping::Data { extent, offset }
                        if link.extents()[extent].kind == ExtentKind::Sparse =>
                    {
                        match link.extents()[extent].data_file()? {
                            Some((file, path)) => pieces.push((cur, len, file, path, offset)),
                            None => plain = false,
                        }
                    }
                    _ => plain = false,
                }
                cur += len;
            }
            Ok(())
        };
        if links.len() == 1 {
            add(0, start, end - start)?;
        } else {
            owners.runs(links, capacity, start, end - start, &mut |owner, s, n| {
                if owner != NO_OWNER {
                    add(owner as usize, s, n)?;
                }
                Ok(())
            })?;
        }
        Ok(plain.then_some(pieces))
    }

    /// Copies `[start, end)` into the fresh `target` inside the kernel (no trip through user
    /// memory) when the source is plain data and the target can take whole new grains there.
    /// Returns false, leaving the run to the read/write path, otherwise.
    fn kernel_copy_run(&self, target: &Disk, start: u64, end: u64) -> Result<bool> {
        let chain = self.chain();
        let Some(pieces) =
            Self::data_pieces(&chain.links, &self.owners, self.capacity(), start, end)?
        else {
            return Ok(false);
        };
        let target_chain = target.chain();
        let leaf = &target_chain.links[0];
        for (s, n, src, src_path, src_off) in pieces {
            if !leaf.copy_new_from(s, n, &src, src_path, src_off)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// One flag per 64 KiB grain: does any link hold data there?
    pub fn allocated_grains(&self) -> Result<Vec<bool>> {
        let grains = self.capacity().div_ceil(GRAIN) as usize;
        let mut map = vec![false; grains];
        for link in &self.chain().links {
            link.for_each_allocated(0, self.capacity(), &mut |s, n| {
                let lo = (s / GRAIN) as usize;
                let hi = (s + n).div_ceil(GRAIN) as usize;
                map[lo..hi.min(grains)].fill(true);
            })?;
        }
        Ok(map)
    }

    /// Bytes a clone of this chain into `kind` will occupy at most.
    pub fn space_needed_for_clone(&self, kind: DiskKind) -> Result<u64> {
        let capacity = self.capacity();
        let allocated = self.allocated_grains()?.iter().filter(|&&a| a).count() as u64;
        let grain_bytes = GRAIN * 512;
        let sparse_overhead =
            |cap: u64, desc: u64| SparseHeader::new_layout(cap, desc).overhead * 512;
        Ok(match kind {
            DiskKind::MonolithicSparse => sparse_overhead(capacity, 20) + allocated * grain_bytes,
            DiskKind::SplitSparse => {
                let extents = capacity.div_ceil(SPLIT_EXTENT_SECTORS);
                let metadata: u64 = (0..extents)
                    .map(|i| {
                        sparse_overhead(
                            SPLIT_EXTENT_SECTORS.min(capacity - i * SPLIT_EXTENT_SECTORS),
                            0,
                        )
                    })
                    .sum();
                DESCRIPTOR_BYTES + metadata + allocated * grain_bytes
            }
            // Worst case: nothing compresses; every grain gets a marker sector, every table a
            // marker and its table, plus directory, footer and end-of-stream.
            DiskKind::StreamOptimized => {
                let tables = capacity.div_ceil(GRAIN * 512);
                64 * 1024 + allocated * (grain_bytes + 1024) + tables * 4 * 512 + 16 * 1024
            }
            _ => DESCRIPTOR_BYTES + capacity * 512,
        })
    }

    /// Copies the chain's content into a new disk at `dst` (replacing it if `overwrite`: the
    /// old disk is removed first, so a crash leaves no target rather than a mixed one).
    /// `progress(percent)` rises monotonically to 100.
    pub fn clone_to(
        &self,
        dst: &Path,
        spec: &CreateSpec,
        overwrite: bool,
        threads: usize,
        progress: &mut dyn FnMut(u32),
    ) -> Result<()> {
        self.clone_to_cancellable(dst, spec, overwrite, threads, progress, &|| false)
    }

    /// `clone_to` that stops between runs once `cancelled()` returns true: the partial target
    /// is removed and an `Interrupted` I/O error on `dst` is returned.
    pub fn clone_to_cancellable(
        &self,
        dst: &Path,
        spec: &CreateSpec,
        overwrite: bool,
        threads: usize,
        progress: &mut dyn FnMut(u32),
        cancelled: &(dyn Fn() -> bool + Sync),
    ) -> Result<()> {
        if dst.exists() {
            if !overwrite {
                return Err(Error::FileExists(dst.to_path_buf()));
            }
            unlink(dst)?;
        }
        let spec = CreateSpec {
            capacity: self.capacity(),
            ..*spec
        };
        let allocated = self.allocated_grains()?;
        progress(0);
        if spec.kind == DiskKind::StreamOptimized {
            let descriptor = new_descriptor("streamOptimized", Vec::new(), base_ddb(&spec));
            let read_grain = |g: u64, buf: &mut [u8]| -> Result<bool> {
                if cancelled() {
                    return Err(interrupted(dst));
                }
                if !allocated[g as usize] {
                    return Ok(false);
                }
                self.read(g * GRAIN, buf)?;
                Ok(true)
            };
            write_stream_optimized(
                dst,
                spec.capacity,
                descriptor,
                &read_grain,
                threads,
                progress,
            )?;
            self.start_history_of_clone(dst);
            return Ok(());
        }
        // Filled under a temporary name and published complete (see `vmdk::atomic`): a
        // killed Clone leaves no target, and its files are removed by the next Create/Clone.
        let new = create_unpublished(dst, &spec, &mut |_| {})?;
        match self.copy_allocated(&new.tmp, &allocated, progress, cancelled) {
            Ok(()) => new.publish()?,
            Err(e) => {
                new.discard();
                return Err(e);
            }
        }
        self.start_history_of_clone(dst);
        progress(100);
        Ok(())
    }

    /// A clone of a disk that tracks changes tracks them too, in a history of its own: the
    /// source's change ids say nothing about the copy. The clone is complete either way; if
    /// tracking cannot be turned on, a warning says so and the clone stays untracked.
    fn start_history_of_clone(&self, dst: &Path) {
        if !self.is_tracked() {
            return;
        }
        if let Err(e) = super::tracking::set_change_tracking(dst, true) {
            crate::log::warn(format!(
                "{}: the clone is complete but change tracking could not be turned on: {e}",
                dst.display()
            ));
        }
    }

    fn copy_allocated(
        &self,
        dst: &Path,
        allocated: &[bool],
        progress: &mut dyn FnMut(u32),
        cancelled: &dyn Fn() -> bool,
    ) -> Result<()> {
        let target = Disk::open(
            dst,
            super::OpenOptions {
                read_only: false,
                single_link: true,
            },
        )?;
        let total = allocated.iter().filter(|&&a| a).count().max(1) as u64;
        let mut done = 0u64;
        let mut buf = vec![0u8; (COPY_SECTORS * 512) as usize];
        let mut g = 0usize;
        while g < allocated.len() {
            if cancelled() {
                return Err(interrupted(dst));
            }
            if !allocated[g] {
                g += 1;
                continue;
            }
            // A run of allocated grains, at most COPY_SECTORS long, clamped to the capacity.
            let run_end = (g..allocated.len())
                .take((COPY_SECTORS / GRAIN) as usize)
                .take_while(|&i| allocated[i])
                .last()
                .map_or(g + 1, |i| i + 1);
            let start = g as u64 * GRAIN;
            let end = (run_end as u64 * GRAIN).min(self.capacity());
            if self.kernel_copy_run(&target, start, end)? {
                done += (run_end - g) as u64;
                progress((done * 99 / total) as u32);
                g = run_end;
                continue;
            }
            let bytes = ((end - start) * 512) as usize;
            let chunk = &mut buf[..bytes];
            self.read(start, chunk)?;
            // Zero grains stay unallocated in the target; runs of data grains are written at once.
            let grain_bytes = GRAIN as usize * 512;
            let mut i = 0;
            while i * grain_bytes < chunk.len() {
                let data = |k: usize| {
                    chunk[k * grain_bytes..((k + 1) * grain_bytes).min(chunk.len())]
                        .iter()
                        .any(|&b| b != 0)
                };
                if !data(i) {
                    i += 1;
                    continue;
                }
                let mut j = i + 1;
                while j * grain_bytes < chunk.len() && data(j) {
                    j += 1;
                }
                let piece = &chunk[i * grain_bytes..(j * grain_bytes).min(chunk.len())];
                target.write(start + i as u64 * GRAIN, piece)?;
                i = j;
            }
            done += (run_end - g) as u64;
            progress((done * 99 / total) as u32);
            g = run_end;
        }
        target.close()
    }
}
