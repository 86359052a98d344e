//! Checking a streamOptimized (compressed, with markers) extent.
//!
//! Checked: the header (version, flags, compression, grain and table sizes, capacity, metadata
//! area inside the file); the footer the readers use when the header's directory offset is
//! "at the end" (footer marker at end − 1536, a header copy at end − 1024 that agrees with the
//! header); every marker from the metadata area to the end of the file (see `stream_scan`);
//! the grain directory and every grain table (inside the file; every entry points at a grain
//! marker that carries the entry's own LBA); every grain is referenced; no LBA is stored twice;
//! every grain's compressed length is possible and the grain inflates to at most one grain.
//!
//! A stream whose tables, directory or footer are missing or wrong (a transfer cut short loses
//! them first) is salvageable: every grain marker names its LBA, so the tables can be rebuilt
//! from the complete grains (see `salvage`). A stream with anything the walk cannot account
//! for (an unknown marker type, a marker that cannot be one, two grains for one LBA, a grain
//! that does not inflate) is refused: the disk is invalid, and nothing is rewritten.
//!
//! Grains after the directory the footer points to that no table references are what an
//! append stopped before its next Flush leaves: a note, like a set uncleanShutdown flag; the
//! disk reads as of the last Flush.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::Path;

use flate2::{Decompress, FlushDecompress, Status};

use super::header::decode_raw;
use super::salvage::Salvage;
use super::stream_scan::{GRAIN_HEAD, Geometry, Grain, Scan, Stop, marker_name, scan};
use super::stream_tables::{Directory, TableFindings, check_tables, directory, report_tables};
use super::{FilePlan, Findings, ProblemKind, show};
use crate::error::{Error, Result};
use crate::log;
use crate::vmdk::descriptor::Descriptor;
use crate::vmdk::fileio::read_at_zero_fill;
use crate::vmdk::header::{
    FLAG_COMPRESSED, FLAG_MARKERS, FLAG_USE_REDUNDANT, GD_AT_END, HEADER_SIZE, MAX_GRAIN_SECTORS,
    MAX_GTES_PER_GT, SparseHeader,
};
use crate::vmdk::markers::{MARKER_FOOTER, MARKER_GD, MARKER_GT};

const SECTOR: u64 = 512;
/// Largest capacity a sparse extent can address (32-bit grain sectors, 64 KiB grains).
const MAX_CAPACITY: u64 = (1u64 << 32) * 64;
/// Largest grain directory accepted, in entries (as for sparse extents).
const MAX_GD_ENTRIES: u64 = 32 * 1024 * 1024;
/// How many examples a finding quotes.
const EXAMPLES: usize = 4;
/// Bytes inflated at a time while checking a grain.
const INFLATE_CHUNK: usize = 64 * 1024;

/// True if the header in `first` describes a compressed extent (or one whose directory is at
/// the end, which only streams have): this module checks it, not the sparse checker.
pub(super) fn is_stream(first: &[u8]) -> bool {
    if first.len() < HEADER_SIZE || !SparseHeader::has_magic(first) {
        return false;
    }
    let h = decode_raw(first);
    h.flags & FLAG_COMPRESSED != 0 || h.gd_offset == GD_AT_END
}

/// Checks the stream at `path`; plans a salvage into `plan` if one is needed and possible.
pub(super) fn check(
    path: &Path,
    file: &File,
    len: u64,
    first: &[u8],
    f: &mut Findings,
    plan: &mut FilePlan,
) -> Result<()> {
    let p = show(path);
    let h = decode_raw(first);
    if h.flags & FLAG_MARKERS == 0 {
        return Err(Error::NotSupported(format!(
            "{p}: checking compressed sparse extents without markers is not supported"
        )));
    }
    if let Some(why) = header_problem(&h, len).or_else(|| reader_refuses(first, len)) {
        f.fatal(ProblemKind::StreamHeader, format!("{p}: header: {why}"));
        return Ok(());
    }
    if let Some(why) = descriptor_problem(file, path, &h)? {
        f.fatal(ProblemKind::Descriptor, format!("{p}: {why}"));
        return Ok(());
    }
    let geo = Geometry {
        capacity: h.capacity,
        grain_sectors: h.grain_sectors,
    };
    let s = scan(file, path, len, h.overhead, &geo)?;
    let dir = directory(file, path, len, &h)?;
    let mut damaged = false;
    if let Some(Stop::Cut { at, what, .. }) = &s.stop {
        damaged = true;
        let tail = match &dir {
            Directory::Missing(_) => "; no usable grain directory or footer follows",
            Directory::At(_) => "",
        };
        f.fixable(
            ProblemKind::StreamTruncated,
            format!(
                "{p}: the stream is cut short: the file ends at byte {len} inside {what} (marker at sector {at}){tail}; {} complete grains before it",
                s.grains.len()
            ),
            format!("{p}: dropped the incomplete item at sector {at} and everything after it"),
        );
    }
    if let Directory::Missing(why) = &dir {
        damaged = true;
        f.fixable(
            ProblemKind::StreamFooter,
            format!("{p}: {why}"),
            format!("{p}: wrote a new grain directory and footer"),
        );
    }
    // Grains are in file order, so sorted by marker sector; by LBA they are sorted here once
    // (a stream can hold millions of grains: no per-grain maps).
    let mut by_lba: Vec<(u64, u64)> = s.grains.iter().map(|g| (g.lba, g.at)).collect();
    by_lba.sort_unstable();
    for pair in by_lba.windows(2) {
        if pair[0].0 == pair[1].0 {
            f.fatal(
                ProblemKind::StreamGrain,
                format!(
                    "{p}: two grains for LBA {} (markers at sectors {} and {}): which one holds the data cannot be told",
                    pair[0].0, pair[0].1, pair[1].1
                ),
            );
        }
    }
    drop(by_lba);
    let mut t = TableFindings::default();
    let mut unflushed = false;
    if let Directory::At(gd) = dir {
        check_tables(file, path, len, &h, gd, &s, &mut t)?;
        let (d, u) = report_tables(&p, &h, gd, &s, &t, f);
        damaged |= d;
        unflushed = u;
    }
    if let Some(Stop::Garbage { at, why }) = &s.stop {
        f.fatal(
            ProblemKind::StreamMarker,
            format!("{p}: sector {at} holds {why}: the stream cannot be followed past it"),
        );
    }
    // The directory of a stream that is being appended to comes before the newest grains.
    let tail = match dir {
        Directory::At(gd) if gd >= h.overhead => Some(gd),
        _ => None,
    };
    let torn = check_grains(file, path, &h, &s, &t.referenced, tail, f)?;
    damaged |= torn.is_some_and(|g| tail.is_none_or(|gd| g.at < gd));
    unflushed |= torn.is_some();
    let needs_rewrite = damaged || unflushed;
    let unknown: Vec<String> = s
        .metas
        .iter()
        .filter(|m| !matches!(m.kind, MARKER_GT | MARKER_GD | MARKER_FOOTER))
        .take(EXAMPLES)
        .map(|m| format!("{} at sector {}", marker_name(m.kind), m.at))
        .collect();
    if !unknown.is_empty() {
        if needs_rewrite {
            f.fatal(
                ProblemKind::StreamMarker,
                format!(
                    "{p}: the stream holds markers this library does not know ({}): it cannot be rebuilt without guessing what they carry",
                    unknown.join(", ")
                ),
            );
        } else {
            log::info(format!(
                "{p}: skipped markers of unknown type ({}); the grain directory accounts for every grain",
                unknown.join(", ")
            ));
        }
    }
    if !needs_rewrite || f.unrepairable() {
        return Ok(());
    }
    let kept: Vec<Grain> = s
        .grains
        .iter()
        .filter(|g| Some(g.at) != torn.map(|x| x.at))
        .copied()
        .collect();
    let mut lost = t.lost.clone();
    if let Some(Stop::Cut { lba: Some(l), .. }) = &s.stop {
        lost.insert(*l);
    }
    if let Some(g) = torn {
        lost.insert(g.lba);
    }
    let salvage = Salvage::plan(first, &h, kept, &lost);
    f.actions.push(format!(
        "{p}: rebuilt the grain tables, grain directory and footer from {} complete grains: {} sectors recovered, {} sectors lost{}",
        salvage.grains.len(),
        salvage.recovered,
        salvage.lost,
        match &s.stop {
            Some(Stop::Cut { .. }) => format!(
                " (whatever the stream held after byte {} is unknown)",
                s.good_end
            ),
            _ => String::new(),
        }
    ));
    plan.salvage = Some(salvage);
    Ok(())
}

/// Why the header cannot describe a stream this checker can follow, if it cannot.
fn header_problem(h: &SparseHeader, len: u64) -> Option<String> {
    if !(1..=3).contains(&h.version) {
        return Some(format!("version {} (1 to 3 exist)", h.version));
    }
    let incompat = h.flags & 0xffff_0000;
    if incompat & !(FLAG_COMPRESSED | FLAG_MARKERS) != 0 {
        return Some(format!("unknown incompatible flags {incompat:#x}"));
    }
    if h.flags & FLAG_COMPRESSED == 0 {
        return Some("directory at the end of the file, but grains are not compressed".into());
    }
    if h.compress_algorithm != 1 {
        return Some(format!(
            "compression algorithm {} (only 1, deflate, exists)",
            h.compress_algorithm
        ));
    }
    if !h.grain_sectors.is_power_of_two() || !(1..=MAX_GRAIN_SECTORS).contains(&h.grain_sectors) {
        return Some(format!("grain size {} sectors", h.grain_sectors));
    }
    if h.gtes_per_gt == 0 || h.gtes_per_gt > MAX_GTES_PER_GT {
        return Some(format!("{} entries per grain table", h.gtes_per_gt));
    }
    if h.capacity == 0 || h.capacity > MAX_CAPACITY {
        return Some(format!("capacity {} sectors", h.capacity));
    }
    if h.gd_entries() > MAX_GD_ENTRIES {
        return Some(format!("{} grain directory entries", h.gd_entries()));
    }
    if h.descriptor_offset != 0
        && h.descriptor_offset.saturating_add(h.descriptor_size) > h.overhead
    {
        return Some(format!(
            "embedded descriptor (sector {}, {} sectors) lies outside the metadata area of {} sectors",
            h.descriptor_offset, h.descriptor_size, h.overhead
        ));
    }
    if h.overhead == 0 || h.overhead.saturating_mul(SECTOR) > len {
        return Some(format!(
            "metadata area of {} sectors does not fit in the file ({len} bytes)",
            h.overhead
        ));
    }
    None
}

/// What the engine's header decoder (the one every open uses) refuses in this header, judged
/// without the directory fields, which the checker judges itself (a cut stream may have lost
/// its directory and still be salvageable).
fn reader_refuses(first: &[u8], len: u64) -> Option<String> {
    let mut b = first[..HEADER_SIZE].to_vec();
    let flags = u32::from_le_bytes(b[8..12].try_into().expect("4 bytes")) & !FLAG_USE_REDUNDANT;
    b[8..12].copy_from_slice(&flags.to_le_bytes());
    b[56..64].copy_from_slice(&GD_AT_END.to_le_bytes());
    SparseHeader::decode(&b, len.div_ceil(SECTOR))
        .err()
        .map(|e| e.to_string())
}

/// Why the embedded descriptor is unusable, if it is: it must parse and give the header's
/// capacity. (Salvage copies it as it is, so damage here is left to be repaired by hand.)
fn descriptor_problem(file: &File, path: &Path, h: &SparseHeader) -> Result<Option<String>> {
    if h.descriptor_offset == 0 || h.descriptor_size == 0 {
        return Ok(None);
    }
    let mut bytes = vec![0u8; (h.descriptor_size * SECTOR) as usize];
    read_at_zero_fill(file, path, &mut bytes, h.descriptor_offset * SECTOR)?;
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let text = String::from_utf8_lossy(&bytes[..end]);
    Ok(match Descriptor::parse(&text) {
        Err(e) => Some(format!("embedded descriptor: {e}")),
        Ok(d) if d.capacity() != h.capacity => Some(format!(
            "embedded descriptor gives {} sectors, the header {}",
            d.capacity(),
            h.capacity
        )),
        Ok(_) => None,
    })
}

/// Every complete grain must inflate to at most one grain. A grain that does not is damage
/// beyond repair, except the last grain of the stream when no table references it: that is a
/// write torn by a crash or a cut, returned to be dropped (and counted as lost).
fn check_grains(
    file: &File,
    path: &Path,
    h: &SparseHeader,
    s: &Scan,
    referenced: &BTreeSet<u64>,
    tail: Option<u64>,
    f: &mut Findings,
) -> Result<Option<Grain>> {
    let p = show(path);
    let mut bad = Vec::new();
    let mut out = vec![0u8; INFLATE_CHUNK];
    for g in &s.grains {
        if let Some(why) = inflate_problem(file, path, g, h.grain_sectors * SECTOR, &mut out)? {
            bad.push((*g, why));
        }
    }
    let last = s.grains.last().copied();
    if let [(g, why)] = bad.as_slice()
        && Some(*g) == last
        && !referenced.contains(&g.at)
    {
        // After the directory it is an append a kill interrupted: the disk reads as of the
        // last Flush, so it is a note; before it (or with no directory) the stream is cut.
        let kind = if tail.is_some_and(|gd| g.at > gd) {
            ProblemKind::StreamUnflushed
        } else {
            ProblemKind::StreamTruncated
        };
        f.fixable(
            kind,
            format!(
                "{p}: the last grain of the stream (LBA {} at sector {}) is torn: {why}",
                g.lba, g.at
            ),
            format!("{p}: dropped the torn grain for LBA {}", g.lba),
        );
        return Ok(Some(*g));
    }
    if !bad.is_empty() {
        let examples: Vec<String> = bad
            .iter()
            .take(EXAMPLES)
            .map(|(g, why)| format!("LBA {} at sector {}: {why}", g.lba, g.at))
            .collect();
        f.fatal(
            ProblemKind::StreamGrain,
            format!(
                "{p}: {} grains do not inflate to a grain: {}",
                bad.len(),
                examples.join("; ")
            ),
        );
    }
    Ok(None)
}

/// Why grain `g` does not inflate to at most `limit` bytes, if it does not. Inflates in chunks
/// of `out`, so a hostile grain size never makes a large buffer.
fn inflate_problem(
    file: &File,
    path: &Path,
    g: &Grain,
    limit: u64,
    out: &mut [u8],
) -> Result<Option<String>> {
    let mut packed = vec![0u8; g.size as usize];
    read_at_zero_fill(file, path, &mut packed, g.at * SECTOR + GRAIN_HEAD)?;
    let mut z = Decompress::new(true);
    loop {
        let (was_in, was_out) = (z.total_in(), z.total_out());
        let status = match z.decompress(&packed[was_in as usize..], out, FlushDecompress::None) {
            Ok(st) => st,
            Err(e) => return Ok(Some(format!("does not inflate ({e})"))),
        };
        if z.total_out() > limit {
            return Ok(Some(format!(
                "inflates to more than one grain ({limit} bytes)"
            )));
        }
        match status {
            Status::StreamEnd => return Ok(None),
            _ if z.total_in() == was_in && z.total_out() == was_out => {
                return Ok(Some(format!(
                    "its {} compressed bytes end before the zlib stream does",
                    g.size
                )));
            }
            _ => {}
        }
    }
}
