//! The sectors a restore has already written: a set of disjoint sector ranges.

use std::collections::BTreeMap;

/// Disjoint, non-adjacent `[start, end)` ranges, keyed by start.
#[derive(Debug, Default)]
pub struct RangeSet {
    ranges: BTreeMap<u64, u64>,
}

impl RangeSet {
    /// The parts of `[start, end)` not in the set, ascending.
    pub fn gaps(&self, start: u64, end: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut at = start;
        // The range that may cover `start`, then every range starting inside.
        let first = self
            .ranges
            .range(..=start)
            .next_back()
            .map(|(&s, &e)| (s, e));
        let inside = self.ranges.range(start + 1..end).map(|(&s, &e)| (s, e));
        for (s, e) in first.into_iter().chain(inside) {
            if e <= at {
                continue;
            }
            if s > at {
                out.push((at, s.min(end)));
            }
            at = at.max(e);
            if at >= end {
                break;
            }
        }
        if at < end {
            out.push((at, end));
        }
        out
    }

    /// Adds `[start, end)`, merging with what it overlaps or touches.
    pub fn insert(&mut self, start: u64, end: u64) {
        let (mut lo, mut hi) = (start, end);
        let touching: Vec<(u64, u64)> = self
            .ranges
            .range(..=end)
            .rev()
            .take_while(|(_, e)| **e >= start)
            .map(|(&s, &e)| (s, e))
            .collect();
        for (s, e) in touching {
            self.ranges.remove(&s);
            lo = lo.min(s);
            hi = hi.max(e);
        }
        self.ranges.insert(lo, hi);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_skip_what_was_restored() {
        let mut set = RangeSet::default();
        assert_eq!(set.gaps(0, 10), vec![(0, 10)]);
        set.insert(10, 20);
        set.insert(30, 40);
        assert_eq!(set.gaps(0, 50), vec![(0, 10), (20, 30), (40, 50)]);
        assert_eq!(set.gaps(12, 18), vec![]);
        assert_eq!(set.gaps(15, 35), vec![(20, 30)]);
        assert_eq!(set.gaps(20, 30), vec![(20, 30)]);
        set.insert(20, 30);
        assert_eq!(set.ranges.len(), 1);
        assert_eq!(set.gaps(0, 50), vec![(0, 10), (40, 50)]);
        set.insert(5, 45);
        assert_eq!(set.gaps(0, 50), vec![(0, 5), (45, 50)]);
        assert_eq!(set.ranges.len(), 1);
    }
}
