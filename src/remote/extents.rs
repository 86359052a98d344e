//! Block-status extents (from `base:allocation` or a `qemu:dirty-bitmap:` context) turned into
//! VDDK answers: allocated chunks for QueryAllocatedBlocks, sector runs for QueryChangedAreas.

use crate::error::{Error, Result};

/// `base:allocation`: the range is a hole (not allocated).
pub(crate) const STATE_HOLE: u32 = 1;
/// `qemu:dirty-bitmap:`: the range is dirty (changed).
pub(crate) const STATE_DIRTY: u32 = 1;

/// One extent, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// First byte.
    pub offset: u64,
    /// Length in bytes.
    pub length: u64,
    /// The context's flags.
    pub flags: u32,
}

/// Extents of `[start, end)` (bytes) gathered over as many block-status replies as the
/// server needs; `next()` is where the next request starts.
#[derive(Debug)]
pub struct ExtentCollector {
    end: u64,
    next: u64,
    extents: Vec<Extent>,
}

impl ExtentCollector {
    /// Collects extents for the byte range `[start, end)`.
    pub fn new(start: u64, end: u64) -> ExtentCollector {
        ExtentCollector {
            end,
            next: start,
            extents: Vec::new(),
        }
    }

    /// Where the next request must start; None when the range is covered.
    pub fn next(&self) -> Option<u64> {
        (self.next < self.end).then_some(self.next)
    }

    /// Takes one reply: `(length, flags)` pairs starting at byte `offset`. Replies must
    /// start where the previous one ended and make progress, else the server is broken.
    pub fn take_reply(&mut self, offset: u64, entries: &[(u32, u32)]) -> Result<()> {
        if offset != self.next {
            return Err(Error::RemoteProtocol(format!(
                "block status reply starts at byte {offset}, expected {}",
                self.next
            )));
        }
        let mut at = offset;
        for &(length, flags) in entries {
            if length == 0 || at >= self.end {
                break;
            }
            let length = u64::from(length).min(self.end - at);
            self.extents.push(Extent {
                offset: at,
                length,
                flags,
            });
            at += length;
        }
        if at == offset {
            return Err(Error::RemoteProtocol(format!(
                "block status reply at byte {offset} describes nothing"
            )));
        }
        self.next = at;
        Ok(())
    }

    /// The extents gathered, ascending and contiguous.
    pub fn into_extents(self) -> Vec<Extent> {
        self.extents
    }
}

/// Ascending merged runs of whole `chunk`-sector chunks in `[start, end)` (sectors) that
/// overlap an allocated (non-hole) extent. Allocated extents that read as zeros (flag 2)
/// still count: they are storage the server holds, as VMFS's zeroed blocks are.
pub fn allocated_chunks(extents: &[Extent], start: u64, end: u64, chunk: u64) -> Vec<(u64, u64)> {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for e in extents.iter().filter(|e| e.flags & STATE_HOLE == 0) {
        let (s, t) = (e.offset / 512, (e.offset + e.length).div_ceil(512));
        let (s, t) = (s.max(start), t.min(end));
        if s >= t {
            continue;
        }
        let lo = start + (s - start) / chunk * chunk;
        let hi = (start + (t - start).div_ceil(chunk) * chunk).min(end);
        push_run(&mut runs, lo, hi);
    }
    runs
}

/// Ascending merged sector runs in `[start, end)` covered by extents for which `flagged`
/// holds (byte extents widen to whole sectors).
pub fn flagged_runs(
    extents: &[Extent],
    start: u64,
    end: u64,
    flagged: impl Fn(u32) -> bool,
) -> Vec<(u64, u64)> {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for e in extents.iter().filter(|e| flagged(e.flags)) {
        let s = (e.offset / 512).max(start);
        let t = (e.offset + e.length).div_ceil(512).min(end);
        if s < t {
            push_run(&mut runs, s, t);
        }
    }
    runs
}

/// Appends `[lo, hi)` to ascending runs, merging with the last when they touch or overlap.
fn push_run(runs: &mut Vec<(u64, u64)>, lo: u64, hi: u64) {
    match runs.last_mut() {
        Some((s, n)) if *s + *n >= lo => *n = (*n).max(hi - *s),
        _ => runs.push((lo, hi - lo)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `base:allocation`'s "reads as zeros" flag.
    const STATE_ZERO: u32 = 2;

    fn ext(offset: u64, length: u64, flags: u32) -> Extent {
        Extent {
            offset,
            length,
            flags,
        }
    }

    #[test]
    fn collector_follows_replies_and_clips() {
        let mut c = ExtentCollector::new(0, 4096);
        c.take_reply(0, &[(1024, 3), (1024, 0)]).unwrap();
        assert_eq!(c.next(), Some(2048));
        assert!(c.take_reply(1024, &[(512, 0)]).is_err());
        c.take_reply(2048, &[(65536, 1)]).unwrap();
        assert_eq!(c.next(), None);
        let e = c.into_extents();
        assert_eq!(e.last(), Some(&ext(2048, 2048, 1)));
        let mut c = ExtentCollector::new(0, 4096);
        assert!(c.take_reply(0, &[]).is_err());
        assert!(c.take_reply(0, &[(0, 0)]).is_err());
    }

    #[test]
    fn allocated_chunks_round_out_to_whole_chunks() {
        // Sectors: data at 130..131 and 300..600, hole elsewhere; 128-sector chunks.
        let e = [
            ext(0, 130 * 512, STATE_HOLE | STATE_ZERO),
            ext(130 * 512, 512, 0),
            ext(131 * 512, 169 * 512, STATE_HOLE),
            ext(300 * 512, 300 * 512, STATE_ZERO),
            ext(600 * 512, 424 * 512, STATE_HOLE),
        ];
        // Chunks 128..256 and 256..640 touch, so they merge (as local disks' answers do).
        assert_eq!(allocated_chunks(&e, 0, 1024, 128), vec![(128, 512)]);
        assert_eq!(allocated_chunks(&e, 0, 1024, 256), vec![(0, 768)]);
        assert_eq!(allocated_chunks(&e, 256, 512, 128), vec![(256, 256)]);
        assert_eq!(allocated_chunks(&e[..1], 0, 128, 128), vec![]);
    }

    #[test]
    fn flagged_runs_merge_and_clip() {
        let e = [
            ext(0, 65536, 1),
            ext(65536, 65536, 1),
            ext(131072, 65536, 0),
            ext(196608, 1000, 1),
        ];
        assert_eq!(
            flagged_runs(&e, 0, 1000, |f| f & STATE_DIRTY != 0),
            vec![(0, 256), (384, 2)]
        );
        assert_eq!(
            flagged_runs(&e, 10, 300, |f| f & STATE_DIRTY != 0),
            vec![(10, 246)]
        );
        assert_eq!(
            flagged_runs(&e, 0, 1000, |f| f & STATE_HOLE == 0),
            vec![(256, 128)]
        );
    }
}
