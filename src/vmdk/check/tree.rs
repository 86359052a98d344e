//! Loading the grain-directory trees of one sparse extent leniently: directory entries are
//! located, checked against the file end and the fixed metadata, tables that overlap each
//! other are sorted out, and tables lost from both directories are looked for at their
//! standard place.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use super::show;
use crate::error::{Error, Result};
use crate::vmdk::fileio::read_at_zero_fill;
use crate::vmdk::header::{FLAG_ZEROED_GTE, SparseHeader};

/// Names of the two copies, by index.
pub(super) const COPY: [&str; 2] = ["primary", "redundant"];

/// The extent being checked, with its header as the check sees it.
pub(super) struct Extent<'a> {
    pub path: &'a Path,
    pub file: &'a File,
    /// File length in bytes.
    pub len: u64,
    pub h: &'a SparseHeader,
}

/// Disjoint sector ranges `[start, end)` with overlap queries.
#[derive(Default)]
pub(super) struct Ranges(pub BTreeMap<u64, u64>);

impl Ranges {
    pub fn overlaps(&self, s: u64, e: u64) -> bool {
        self.0
            .range(..e)
            .next_back()
            .is_some_and(|(_, &end)| end > s)
    }

    /// Inserts a range; overlapping ranges are merged.
    pub fn insert(&mut self, mut s: u64, mut e: u64) {
        if s >= e {
            return;
        }
        while let Some((&ks, &ke)) = self.0.range(..=e).next_back() {
            if ke < s {
                break;
            }
            self.0.remove(&ks);
            s = s.min(ks);
            e = e.max(ke);
        }
        self.0.insert(s, e);
    }
}

/// One copy of one directory index.
#[derive(Clone)]
pub(super) enum TableCopy {
    /// Directory entry 0.
    Absent,
    /// Unusable, with the reason.
    Damaged(String),
    /// A table at sector `at`; `recovered` if the directory did not point at it.
    Table {
        at: u64,
        t: Vec<u32>,
        recovered: bool,
    },
}

/// What an entry value means.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Gte {
    Unallocated,
    Zeroed,
    Data(u64),
    PastEnd,
    Metadata,
}

pub(super) fn to_bytes(t: &[u32]) -> Vec<u8> {
    t.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn to_u32s(b: &[u8]) -> Vec<u32> {
    b.chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

pub(super) fn sector_u32(path: &Path, s: u64) -> Result<u32> {
    u32::try_from(s).map_err(|_| {
        Error::Corrupt(format!(
            "{}: no room for a grain table below 2 TiB",
            path.display()
        ))
    })
}

/// The geometry of both trees of one extent and its fixed metadata.
pub(super) struct Tree<'a> {
    pub x: &'a Extent<'a>,
    pub p: String,
    pub n: usize,
    pub per: usize,
    pub gs: u64,
    pub gts: u64,
    pub copies: usize,
    pub dir_at: [u64; 2],
    /// Header, descriptor and directory areas.
    pub fixed: Ranges,
    /// First sector a grain may use.
    pub data_start: u64,
}

impl Tree<'_> {
    pub fn slot(&self, i: usize, c: usize) -> (u64, u64) {
        let s = self.dir_at[c] + self.x.h.gd_sectors() + i as u64 * self.gts;
        (s, s + self.gts)
    }

    pub fn classify(&self, e: u32, meta: &Ranges) -> Gte {
        match e {
            0 => Gte::Unallocated,
            1 if self.x.h.flags & FLAG_ZEROED_GTE != 0 => Gte::Zeroed,
            _ => {
                let s = u64::from(e);
                if s * 512 >= self.x.len {
                    Gte::PastEnd
                } else if s < self.data_start || meta.overlaps(s, s + self.gs) {
                    Gte::Metadata
                } else {
                    Gte::Data(s)
                }
            }
        }
    }

    fn bad_entries(&self, t: &[u32]) -> usize {
        t.iter()
            .filter(|&&e| matches!(self.classify(e, &self.fixed), Gte::PastEnd | Gte::Metadata))
            .count()
    }

    fn read_table(&self, at: u64) -> Result<Vec<u32>> {
        let mut b = vec![0u8; self.per * 4];
        read_at_zero_fill(self.x.file, self.x.path, &mut b, at * 512)?;
        Ok(to_u32s(&b))
    }

    /// Reads directory `c`: its values and how many entries lie inside the file.
    fn read_dir(&self, c: usize) -> Result<(Vec<u32>, usize)> {
        let off = self.dir_at[c] * 512;
        let mut b = vec![0u8; self.n * 4];
        read_at_zero_fill(self.x.file, self.x.path, &mut b, off)?;
        let readable = (self.x.len.saturating_sub(off) / 4).min(self.n as u64) as usize;
        Ok((to_u32s(&b), readable))
    }

    /// Step 1 for one copy of one index.
    fn locate(&self, v: u32, readable: bool) -> Result<TableCopy> {
        if !readable {
            return Ok(TableCopy::Damaged("lies past the end of the file".into()));
        }
        if v == 0 {
            return Ok(TableCopy::Absent);
        }
        let at = u64::from(v);
        if (at + self.gts) * 512 > self.x.len {
            return Ok(TableCopy::Damaged(format!(
                "points at sector {at}, past the end of the file"
            )));
        }
        if self.fixed.overlaps(at, at + self.gts) {
            return Ok(TableCopy::Damaged(format!(
                "points at sector {at}, inside the header, descriptor or a directory"
            )));
        }
        Ok(TableCopy::Table {
            at,
            t: self.read_table(at)?,
            recovered: false,
        })
    }
}

/// Loads both trees of `x`: the tree geometry, each directory as read (values, readable
/// entries), and every index's copies after overlap resolution and slot recovery.
pub(super) fn load<'a>(x: &'a Extent<'a>) -> Result<Loaded<'a>> {
    let h = x.h;
    let copies = if h.has_redundant() { 2 } else { 1 };
    let gds = h.gd_sectors();
    let mut fixed = Ranges::default();
    fixed.insert(0, 1);
    if h.descriptor_offset != 0 {
        fixed.insert(h.descriptor_offset, h.descriptor_offset + h.descriptor_size);
    }
    let dir_at = [h.gd_offset, h.rgd_offset];
    for &d in &dir_at[..copies] {
        fixed.insert(d, d + gds);
    }
    let n = h.gd_entries() as usize;
    let tables_end = dir_at[..copies]
        .iter()
        .map(|d| d + gds + n as u64 * h.gt_sectors())
        .max()
        .unwrap_or(0);
    let t = Tree {
        x,
        p: show(x.path),
        n,
        per: h.gtes_per_gt as usize,
        gs: h.grain_sectors,
        gts: h.gt_sectors(),
        copies,
        dir_at,
        fixed,
        // A corrupt, too large overHead must not condemn sound grains behind the metadata.
        data_start: h.overhead.min(tables_end.next_multiple_of(h.grain_sectors)),
    };
    let mut dirs = Vec::new();
    let mut slots: Vec<[TableCopy; 2]> = vec![[TableCopy::Absent, TableCopy::Absent]; n];
    for c in 0..copies {
        let (vals, readable) = t.read_dir(c)?;
        for (i, pair) in slots.iter_mut().enumerate() {
            pair[c] = t.locate(vals[i], i < readable)?;
        }
        dirs.push((vals, readable));
    }
    resolve_table_overlaps(&t, &mut slots);
    recover_from_slots(&t, &mut slots)?;
    Ok(Loaded {
        tree: t,
        dirs,
        slots,
    })
}

/// What `load` returns.
pub(super) struct Loaded<'a> {
    pub tree: Tree<'a>,
    /// Per copy: the directory values and how many entries lie inside the file.
    pub dirs: Vec<(Vec<u32>, usize)>,
    /// Per index: the primary and redundant copy.
    pub slots: Vec<[TableCopy; 2]>,
}

/// Two tables may not overlap: the copy at its standard place, or without bad entries, stays.
fn resolve_table_overlaps(t: &Tree, slots: &mut [[TableCopy; 2]]) {
    let mut loaded: Vec<(u64, usize, usize)> = Vec::new();
    for (i, pair) in slots.iter().enumerate() {
        for (c, copy) in pair.iter().enumerate() {
            if let TableCopy::Table { at, .. } = copy {
                loaded.push((*at, i, c));
            }
        }
    }
    loaded.sort_unstable();
    let score = |slots: &[[TableCopy; 2]], at: u64, i: usize, c: usize| {
        let bad = match &slots[i][c] {
            TableCopy::Table { t: tab, .. } => t.bad_entries(tab),
            _ => usize::MAX,
        };
        (t.slot(i, c).0 == at, bad == 0)
    };
    let mut demote = Vec::new();
    let mut kept: Option<(u64, usize, usize)> = None;
    for &(at, i, c) in &loaded {
        match kept {
            Some((kat, ki, kc)) if at < kat + t.gts => {
                let (loser, winner) = if score(slots, at, i, c) > score(slots, kat, ki, kc) {
                    kept = Some((at, i, c));
                    ((ki, kc), (i, c))
                } else {
                    ((i, c), (ki, kc))
                };
                demote.push((loser, winner));
            }
            _ => kept = Some((at, i, c)),
        }
    }
    for ((li, lc), (wi, wc)) in demote {
        slots[li][lc] = TableCopy::Damaged(format!(
            "points at the same sectors as the {} grain table of entry {wi}",
            COPY[wc]
        ));
    }
}

/// Indices that are 0 in every copy: a plausible table at the standard place is taken back.
fn recover_from_slots(t: &Tree, slots: &mut [[TableCopy; 2]]) -> Result<()> {
    let mut used = Ranges::default();
    for pair in slots.iter() {
        for c in pair {
            if let TableCopy::Table { at, .. } = c {
                used.insert(*at, at + t.gts);
            }
        }
    }
    for (i, pair) in slots.iter_mut().enumerate() {
        if !pair[..t.copies]
            .iter()
            .all(|c| matches!(c, TableCopy::Absent))
        {
            continue;
        }
        for (c, copy) in pair.iter_mut().enumerate().take(t.copies) {
            let (s, e) = t.slot(i, c);
            if e > t.x.h.overhead
                || e * 512 > t.x.len
                || t.fixed.overlaps(s, e)
                || used.overlaps(s, e)
            {
                continue;
            }
            let tab = t.read_table(s)?;
            if tab.iter().all(|&v| v == 0) || t.bad_entries(&tab) > 0 {
                continue;
            }
            used.insert(s, e);
            *copy = TableCopy::Table {
                at: s,
                t: tab,
                recovered: true,
            };
        }
    }
    Ok(())
}
