//! The chain's owner index: for every 64 KiB of the disk, the newest link that stores anything
//! there. Reads go straight to that link instead of asking every link above it, so their cost
//! does not grow with the chain's depth. The index is built lazily per 32 MiB span (loading
//! each link's grain table for that span once) and kept current when the leaf is written.
//!
//! Invariant: an entry never names a link older than the newest one holding data there. It may
//! name a newer one (after a failed write, say): reading from that link falls through to its
//! parents as usual, so the answer stays right and only that read is slower.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Mutex;

use crate::error::Result;
use crate::vmdk::link::Link;

/// Sectors per index entry (the grain size every writer uses).
pub(crate) const INDEX_GRAIN: u64 = 128;
/// Index entries per span (one grain table's worth).
const SPAN_GRAINS: u64 = 512;
/// Owner value for "no link stores anything here".
pub(crate) const NO_OWNER: u8 = u8::MAX;

/// Lazily computed owners, one byte per index grain (link number, or `NO_OWNER`).
#[derive(Default)]
pub struct OwnerIndex {
    spans: Mutex<Spans>,
}

/// The spans computed so far, by span number. A map, not a vector over the whole disk: a
/// descriptor may claim an absurd capacity (2^48 sectors is 4 G spans), and only the spans
/// actually read may cost memory.
#[derive(Default)]
struct Spans {
    /// The capacity the spans were computed for (a changed capacity invalidates them).
    capacity: u64,
    owners: HashMap<u64, Box<[u8]>>,
}

impl OwnerIndex {
    /// Forgets everything (after the set of links changed).
    pub fn reset(&self) {
        self.spans
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .owners
            .clear();
    }

    fn compute_span(links: &[Link], capacity: u64, span: u64) -> Result<Box<[u8]>> {
        let start = span * SPAN_GRAINS * INDEX_GRAIN;
        let end = (start + SPAN_GRAINS * INDEX_GRAIN).min(capacity);
        let mut owners = vec![NO_OWNER; SPAN_GRAINS as usize].into_boxed_slice();
        // Newest link first: an owner once set is never replaced by an older link.
        for (level, link) in links.iter().enumerate() {
            link.for_each_allocated(start, end, &mut |s, n| {
                // A grain may begin before the span: an extent need not start on a grain
                // boundary of the disk (a 4-sector extent, then a sparse one).
                let lo = ((s.max(start) - start) / INDEX_GRAIN) as usize;
                let hi = ((s + n).saturating_sub(start).div_ceil(INDEX_GRAIN) as usize)
                    .min(owners.len());
                for o in owners.iter_mut().take(hi).skip(lo) {
                    if *o == NO_OWNER {
                        *o = level as u8;
                    }
                }
            })?;
        }
        Ok(owners)
    }

    /// Calls `visit(owner, first_sector, sectors)` for runs of `[sector, sector + count)` with
    /// one owner, in order.
    pub fn runs(
        &self,
        links: &[Link],
        capacity: u64,
        sector: u64,
        count: u64,
        visit: &mut dyn FnMut(u8, u64, u64) -> Result<()>,
    ) -> Result<()> {
        let end = sector + count;
        let mut cur = sector;
        while cur < end {
            let span = cur / (INDEX_GRAIN * SPAN_GRAINS);
            let span_end = ((span + 1) * SPAN_GRAINS * INDEX_GRAIN).min(end);
            // Copy this span's owners for the request out of the lock (at most 512 bytes).
            let owners: Vec<u8> = {
                let mut spans = self.spans.lock().unwrap_or_else(|e| e.into_inner());
                if spans.capacity != capacity {
                    spans.owners.clear();
                    spans.capacity = capacity;
                }
                let table = match spans.owners.entry(span) {
                    Entry::Occupied(known) => known.into_mut(),
                    Entry::Vacant(slot) => slot.insert(Self::compute_span(links, capacity, span)?),
                };
                let first = ((cur / INDEX_GRAIN) % SPAN_GRAINS) as usize;
                let last = (((span_end - 1) / INDEX_GRAIN) % SPAN_GRAINS) as usize;
                table[first..=last].to_vec()
            };
            let mut i = 0;
            while cur < span_end {
                let owner = owners[i];
                let mut run_end = ((cur / INDEX_GRAIN + 1) * INDEX_GRAIN).min(span_end);
                while run_end < span_end && owners[i + 1] == owner {
                    i += 1;
                    run_end = (run_end + INDEX_GRAIN).min(span_end);
                }
                visit(owner, cur, run_end - cur)?;
                cur = run_end;
                i += 1;
            }
        }
        Ok(())
    }

    /// Records that the leaf (link 0) now stores `[sector, sector + count)`.
    pub fn leaf_wrote(&self, sector: u64, count: u64) {
        let mut spans = self.spans.lock().unwrap_or_else(|e| e.into_inner());
        let mut g = sector / INDEX_GRAIN;
        let last = (sector + count - 1) / INDEX_GRAIN;
        while g <= last {
            if let Some(table) = spans.owners.get_mut(&(g / SPAN_GRAINS)) {
                table[(g % SPAN_GRAINS) as usize] = 0;
            }
            g += 1;
        }
    }
}
