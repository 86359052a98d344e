//! QueryAllocatedBlocks: which chunks of a range hold data in any link of the open chain.

use super::Disk;
use crate::error::{Error, Result};

/// Smallest chunk VDDK accepts (sectors).
pub(crate) const MIN_CHUNK: u64 = 128;
/// Largest chunk VDDK accepts (sectors).
pub(crate) const MAX_CHUNK: u64 = 128 * 1024;
/// Most chunks one query may cover.
pub(crate) const MAX_CHUNKS: u64 = 512 * 1024;

impl Disk {
    /// Returns ascending, merged `(start, length)` runs of whole chunks in
    /// `[start, start + count)` that hold data in at least one open link. Arguments follow
    /// VDDK's rules: chunk size in [128, 131072], start and count multiples of it, at most
    /// 524288 chunks, and nothing past the last whole chunk of the disk.
    pub fn allocated_chunks(&self, start: u64, count: u64, chunk: u64) -> Result<Vec<(u64, u64)>> {
        let end = check_chunk_query(start, count, chunk, self.capacity())?;
        let chunks = (count / chunk) as usize;
        let chain = self.chain();
        let links = &chain.links;
        let mark_links = |part: &[crate::vmdk::link::Link]| -> Result<Vec<bool>> {
            let mut marked = vec![false; chunks];
            for link in part {
                link.for_each_allocated(start, end, &mut |s, n| {
                    let lo = (s.max(start) - start) / chunk;
                    let hi = ((s + n).min(end) - start).div_ceil(chunk);
                    marked[lo as usize..hi as usize].fill(true);
                })?;
            }
            Ok(marked)
        };
        // Deep chains: links are independent, so scan them on all cores (the first query loads
        // every link's grain tables, which dominates).
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let marked = if links.len() >= 8 && threads > 1 {
            let per = links.len().div_ceil(threads);
            let parts: Vec<Result<Vec<bool>>> = std::thread::scope(|scope| {
                let handles: Vec<_> = links
                    .chunks(per)
                    .map(|part| scope.spawn(move || mark_links(part)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(Error::InvalidArg("allocation scan failed".into()))
                        })
                    })
                    .collect()
            });
            let mut merged = vec![false; chunks];
            for part in parts {
                for (m, p) in merged.iter_mut().zip(part?) {
                    *m |= p;
                }
            }
            merged
        } else {
            mark_links(links)?
        };
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for (i, _) in marked.iter().enumerate().filter(|(_, m)| **m) {
            let s = start + i as u64 * chunk;
            match runs.last_mut() {
                Some((rs, rl)) if *rs + *rl == s => *rl += chunk,
                _ => runs.push((s, chunk)),
            }
        }
        Ok(runs)
    }
}

/// Checks QueryAllocatedBlocks' arguments against VDDK's rules for a disk of `capacity`
/// sectors: chunk size in [128, 131072], start and count multiples of it, at most 524288
/// chunks, nothing past the last whole chunk. Returns the end sector of the range.
pub fn check_chunk_query(start: u64, count: u64, chunk: u64, capacity: u64) -> Result<u64> {
    if !(MIN_CHUNK..=MAX_CHUNK).contains(&chunk) {
        return Err(Error::InvalidArg(format!(
            "chunk size {chunk} is outside [{MIN_CHUNK}, {MAX_CHUNK}] sectors"
        )));
    }
    if !start.is_multiple_of(chunk) || !count.is_multiple_of(chunk) {
        return Err(Error::InvalidArg(format!(
            "start {start} and count {count} must be multiples of the chunk size {chunk}"
        )));
    }
    if count / chunk > MAX_CHUNKS {
        return Err(Error::InvalidArg(format!(
            "{} chunks requested; at most {MAX_CHUNKS} per query",
            count / chunk
        )));
    }
    let whole = capacity / chunk * chunk;
    let end = start
        .checked_add(count)
        .filter(|&e| e <= whole)
        .ok_or_else(|| {
            Error::InvalidArg(format!(
                "range {start}+{count} goes past the last whole chunk (sector {whole})"
            ))
        })?;
    Ok(end)
}
