//! "What changed since id N": the grains whose epoch is above N, reading only the chunks the
//! summaries say changed.

use super::TrackFile;
use crate::error::Result;
use crate::vmdk::fileio::read_exact_at;
use crate::vmdk::track_layout::{
    CHUNKS_PER_BLOCK, EPOCH_BYTES, GRAINS_PER_BLOCK, GRAINS_PER_CHUNK, blocks_offset,
};

impl TrackFile {
    /// Grain runs in `[first, last)` whose epoch is above `since` (each run: first grain,
    /// grains). Only the chunks whose fine summary is above `since` are read, neighbours in
    /// the file with one read, so the cost follows what changed, not the disk's size.
    pub fn changed_since(&mut self, since: u64, first: u64, last: u64) -> Result<Vec<(u64, u64)>> {
        let last = last.min(self.header.grains);
        let mut candidates: Vec<u64> = Vec::new();
        let mut b = first / GRAINS_PER_BLOCK;
        while b * GRAINS_PER_BLOCK < last {
            if u64::from(self.summary[b as usize]) > since {
                let lo = (b * CHUNKS_PER_BLOCK).max(first / GRAINS_PER_CHUNK);
                let hi = ((b + 1) * CHUNKS_PER_BLOCK).min(last.div_ceil(GRAINS_PER_CHUNK));
                let fine = self.fine()?;
                candidates.extend((lo..hi).filter(|&c| u64::from(fine[c as usize]) > since));
            }
            b += 1;
        }
        let mut runs: Vec<(u64, u64)> = Vec::new();
        let mut push = |i: u64| match runs.last_mut() {
            Some((s, n)) if *s + *n == i => *n += 1,
            _ => runs.push((i, 1)),
        };
        let mut i = 0;
        while i < candidates.len() {
            // Chunks whose block is in memory (possibly newer than the file) are read there;
            // the others in groups of neighbours, one read per group.
            let c = candidates[i];
            let block = c / CHUNKS_PER_BLOCK;
            if let Some(epochs) = self.blocks.get(&block) {
                let base = block * GRAINS_PER_BLOCK;
                for g in grains_of(c, first, last) {
                    if u64::from(epochs[(g - base) as usize]) > since {
                        push(g);
                    }
                }
                i += 1;
                continue;
            }
            let mut j = i + 1;
            while j < candidates.len()
                && candidates[j] - candidates[j - 1] <= GROUP_GAP_CHUNKS
                && !self
                    .blocks
                    .contains_key(&(candidates[j] / CHUNKS_PER_BLOCK))
            {
                j += 1;
            }
            let (c0, c1) = (c, candidates[j - 1] + 1);
            let g0 = c0 * GRAINS_PER_CHUNK;
            let g1 = (c1 * GRAINS_PER_CHUNK).min(self.header.grains);
            let mut bytes = vec![0u8; ((g1 - g0) * EPOCH_BYTES) as usize];
            let off = blocks_offset(self.header.grains) + g0 * EPOCH_BYTES;
            read_exact_at(&self.file, &self.path, &mut bytes, off)?;
            for &cc in &candidates[i..j] {
                for g in grains_of(cc, first, last) {
                    let at = ((g - g0) * EPOCH_BYTES) as usize;
                    let e = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], 0]);
                    if u64::from(e) > since {
                        push(g);
                    }
                }
            }
            i = j;
        }
        Ok(runs)
    }
}

/// Chunks this close in the file are read together: reading the gap costs less than a
/// second system call (16 chunks of epochs = 3 KiB).
const GROUP_GAP_CHUNKS: u64 = 16;

/// The grains of chunk `c` inside `[first, last)`.
fn grains_of(c: u64, first: u64, last: u64) -> std::ops::Range<u64> {
    (c * GRAINS_PER_CHUNK).max(first)..((c + 1) * GRAINS_PER_CHUNK).min(last)
}
