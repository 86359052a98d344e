//! The directory side of the stream check: where the grain directory the readers use is (the
//! header's, or the footer's), and what the directory and its tables say measured against the
//! grains the walk found.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::Path;

use super::header::decode_raw;
use super::stream_scan::{Grain, Scan, Stop};
use super::{Findings, ProblemKind};
use crate::error::Result;
use crate::vmdk::fileio::read_at_zero_fill;
use crate::vmdk::header::{GD_AT_END, HEADER_SIZE, SparseHeader};
use crate::vmdk::markers::MARKER_FOOTER;

const SECTOR: u64 = 512;
/// How many examples a finding quotes.
const EXAMPLES: usize = 4;

/// Where the grain directory the readers use is, or why there is none.
pub(super) enum Directory {
    At(u64),
    Missing(String),
}

/// What the tables say, measured against the walk.
#[derive(Default)]
pub(super) struct TableFindings {
    /// Marker sectors of grains some table entry references correctly.
    pub referenced: BTreeSet<u64>,
    /// Entries that point where there is no grain for their LBA (examples, count).
    wrong: Vec<String>,
    wrong_count: usize,
    /// LBAs whose grain the tables place past the complete part of the file.
    pub lost: BTreeSet<u64>,
    /// Tables or the directory lying outside the file.
    outside: Vec<String>,
}

fn u32s(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect()
}

/// The directory the readers use: the header's, or for "directory at the end" the footer's.
pub(super) fn directory(file: &File, path: &Path, len: u64, h: &SparseHeader) -> Result<Directory> {
    let fits = |gd: u64| gd != 0 && gd.saturating_add(h.gd_sectors()).saturating_mul(SECTOR) <= len;
    if h.gd_offset != GD_AT_END {
        return Ok(if fits(h.gd_offset) {
            Directory::At(h.gd_offset)
        } else {
            Directory::Missing(format!(
                "the grain directory at sector {} lies outside the file ({len} bytes)",
                h.gd_offset
            ))
        });
    }
    if len < 3 * SECTOR + HEADER_SIZE as u64 {
        return Ok(Directory::Missing(
            "no footer: the file is too short to end in one".into(),
        ));
    }
    let mut tail = [0u8; 1024];
    read_at_zero_fill(file, path, &mut tail, len - 1536)?;
    let marker = u32::from_le_bytes(tail[12..16].try_into().expect("4 bytes"));
    let size = u32::from_le_bytes(tail[8..12].try_into().expect("4 bytes"));
    if size != 0 || marker != MARKER_FOOTER || !SparseHeader::has_magic(&tail[512..]) {
        return Ok(Directory::Missing(format!(
            "no footer (footer marker and header copy) at byte {} where readers look for it: the grain directory cannot be found",
            len - 1536
        )));
    }
    let copy = decode_raw(&tail[512..]);
    let differ: Vec<&str> = [
        ("version", copy.version != h.version),
        ("capacity", copy.capacity != h.capacity),
        ("grain size", copy.grain_sectors != h.grain_sectors),
        ("entries per table", copy.gtes_per_gt != h.gtes_per_gt),
        ("overHead", copy.overhead != h.overhead),
        (
            "compression",
            copy.compress_algorithm != h.compress_algorithm,
        ),
    ]
    .into_iter()
    .filter_map(|(n, d)| d.then_some(n))
    .collect();
    if !differ.is_empty() {
        return Ok(Directory::Missing(format!(
            "the footer's header copy disagrees with the header ({})",
            differ.join(", ")
        )));
    }
    if copy.gd_offset == GD_AT_END || !fits(copy.gd_offset) {
        return Ok(Directory::Missing(format!(
            "the footer's grain directory offset {:#x} is not inside the file",
            copy.gd_offset
        )));
    }
    Ok(Directory::At(copy.gd_offset))
}

/// Reads the directory at `gd` and every table it names, and measures them against the walk.
pub(super) fn check_tables(
    file: &File,
    path: &Path,
    len: u64,
    h: &SparseHeader,
    gd: u64,
    s: &Scan,
    t: &mut TableFindings,
) -> Result<()> {
    let mut raw = vec![0u8; (h.gd_sectors() * SECTOR) as usize];
    read_at_zero_fill(file, path, &mut raw, gd * SECTOR)?;
    let entries = u32s(&raw);
    let per = u64::from(h.gtes_per_gt);
    let mut table = vec![0u8; (h.gt_sectors() * SECTOR) as usize];
    for (i, &gt) in entries.iter().take(h.gd_entries() as usize).enumerate() {
        if gt == 0 {
            continue;
        }
        let gt = u64::from(gt);
        if (gt + h.gt_sectors()) * SECTOR > len {
            t.outside.push(format!(
                "grain table {i} at sector {gt} lies past the end of the file"
            ));
            continue;
        }
        read_at_zero_fill(file, path, &mut table, gt * SECTOR)?;
        for (j, &v) in u32s(&table).iter().take(per as usize).enumerate() {
            if v == 0 {
                continue;
            }
            let v = u64::from(v);
            let lba = (i as u64 * per + j as u64) * h.grain_sectors;
            let found = s
                .grains
                .binary_search_by_key(&v, |g| g.at)
                .ok()
                .map(|i| &s.grains[i]);
            match found {
                Some(g) if g.lba == lba && lba < h.capacity => {
                    t.referenced.insert(v);
                }
                None if lba < h.capacity
                    && (v * SECTOR >= len
                        || (matches!(s.stop, Some(Stop::Cut { .. }))
                            && v * SECTOR >= s.good_end)) =>
                {
                    t.lost.insert(lba);
                }
                other => {
                    t.wrong_count += 1;
                    if t.wrong.len() < EXAMPLES {
                        t.wrong.push(match other {
                            Some(g) => format!(
                                "table {i} entry {j} (LBA {lba}) = sector {v}, the grain for LBA {}",
                                g.lba
                            ),
                            None => format!(
                                "table {i} entry {j} (LBA {lba}) = sector {v}, not a grain marker"
                            ),
                        });
                    }
                }
            }
        }
    }
    Ok(())
}

/// Turns the table findings into problems. Returns whether the tables are damaged, and whether
/// grains were appended after them (both are fixed by rebuilding them).
pub(super) fn report_tables(
    p: &str,
    h: &SparseHeader,
    gd: u64,
    s: &Scan,
    t: &TableFindings,
    f: &mut Findings,
) -> (bool, bool) {
    let mut damaged = false;
    if !t.outside.is_empty() {
        damaged = true;
        f.fixable(
            ProblemKind::StreamTables,
            format!("{p}: {}", t.outside.join("; ")),
            format!("{p}: rebuilt the grain tables from the grain markers"),
        );
    }
    if t.wrong_count > 0 {
        damaged = true;
        f.fixable(
            ProblemKind::StreamTables,
            format!(
                "{p}: {} grain table entries do not point at the grain for their LBA: {}",
                t.wrong_count,
                t.wrong.join(", ")
            ),
            format!("{p}: rebuilt the grain tables from the grain markers"),
        );
    }
    if !t.lost.is_empty() {
        damaged = true;
        let first: Vec<String> = t
            .lost
            .iter()
            .take(EXAMPLES)
            .map(|l| l.to_string())
            .collect();
        f.fixable(
            ProblemKind::StreamTables,
            format!(
                "{p}: the grain tables place {} grains past the complete part of the file (LBAs {}): their data is lost",
                t.lost.len(),
                first.join(", ")
            ),
            format!("{p}: dropped the table entries of grains that are not in the file"),
        );
    }
    // Grains after the directory are an append the next Flush would have referenced.
    let after_tail = |g: &Grain| gd >= h.overhead && g.at > gd;
    let unreferenced: Vec<&Grain> = s
        .grains
        .iter()
        .filter(|g| !t.referenced.contains(&g.at))
        .collect();
    let (unflushed, orphans): (Vec<&Grain>, Vec<&Grain>) =
        unreferenced.into_iter().partition(|g| after_tail(g));
    let quote = |v: &[&Grain]| {
        v.iter()
            .take(EXAMPLES)
            .map(|g| format!("LBA {} at sector {}", g.lba, g.at))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !orphans.is_empty() {
        damaged = true;
        f.fixable(
            ProblemKind::StreamTables,
            format!(
                "{p}: {} complete grains are in no grain table ({}): readers see zeros there",
                orphans.len(),
                quote(&orphans)
            ),
            format!("{p}: entered every complete grain in the rebuilt grain tables"),
        );
    }
    if !unflushed.is_empty() {
        f.fixable(
            ProblemKind::StreamUnflushed,
            format!(
                "{p}: {} grains were appended after the last Flush and are in no grain table yet ({}); the disk reads as of that Flush",
                unflushed.len(),
                quote(&unflushed)
            ),
            format!("{p}: entered the grains appended after the last Flush in the grain tables"),
        );
    }
    (damaged, !unflushed.is_empty())
}
