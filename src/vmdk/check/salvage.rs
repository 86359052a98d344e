//! Salvaging a streamOptimized extent: a new stream is built beside the old one from the
//! metadata area and the complete grains the walk found, with new grain tables, directory,
//! footer and end-of-stream marker, and then replaces the old file in one rename.
//!
//! Layout of the rebuilt file: the old metadata area (header patched: directory at the end,
//! no redundant directory, clean-shutdown; the embedded descriptor unchanged), every kept grain
//! marker with its compressed bytes, in the old file order, each padded to a sector; then one
//! grain table per directory entry that has grains (marker type 1 before each), the directory
//! (marker type 2), the footer (marker type 3 and a header copy holding the directory's
//! sector), and the end-of-stream marker. This is the layout VMware's stream writers use.
//!
//! Crash safety: the new file is written under `.<name>.salvage-tmp` in the same directory
//! (every write, sync and the rename go through the `fileio` primitives), synced, checked,
//! given the old file's permissions, renamed over the old file, and the directory is synced.
//! Until the rename the old file is untouched; after it the new one is complete. A kill in
//! between leaves the old file and a temporary file, which the next salvage removes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::stream_scan::Grain;
use crate::error::{Error, Result};
use crate::vmdk::atomic::{create_new_private_file, remove_stale_temp, sync_dir};
use crate::vmdk::fileio::{self, copy_range, dir_of, open_regular, write_all_at};
use crate::vmdk::header::{FLAG_USE_REDUNDANT, GD_AT_END, HEADER_SIZE, SparseHeader};
use crate::vmdk::markers::{MARKER_FOOTER, MARKER_GD, MARKER_GT, le_bytes, write_marker};

const SECTOR: u64 = 512;

/// A planned salvage of one stream extent.
#[derive(Debug, Clone)]
pub(crate) struct Salvage {
    /// The header for the new file (directory at the end); the footer copy differs only in
    /// the directory's sector.
    header: Vec<u8>,
    /// Sectors of the metadata area copied as they are.
    overhead: u64,
    /// The grains kept, in file order.
    pub grains: Vec<Grain>,
    grain_sectors: u64,
    gtes_per_gt: u64,
    gd_entries: u64,
    gt_sectors: u64,
    gd_sectors: u64,
    /// Virtual sectors whose data the new file holds.
    pub recovered: u64,
    /// Virtual sectors known to have held data that is gone (grains cut or torn, grains the
    /// old tables placed past the end of the file).
    pub lost: u64,
}

fn put_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

impl Salvage {
    /// Plans the rebuild from `grains` (complete, inflatable, one per LBA). `lost_lbas` are
    /// grains known to be gone; those that a kept grain supplies after all are not counted.
    pub(super) fn plan(
        first: &[u8],
        h: &SparseHeader,
        grains: Vec<Grain>,
        lost_lbas: &BTreeSet<u64>,
    ) -> Salvage {
        let sectors_of = |lba: u64| h.grain_sectors.min(h.capacity.saturating_sub(lba));
        let kept: BTreeSet<u64> = grains.iter().map(|g| g.lba).collect();
        let recovered = grains.iter().map(|g| sectors_of(g.lba)).sum();
        let lost = lost_lbas
            .iter()
            .filter(|l| !kept.contains(l))
            .map(|&l| sectors_of(l))
            .sum();
        let mut header = first[..HEADER_SIZE].to_vec();
        let flags = h.flags & !FLAG_USE_REDUNDANT;
        header[8..12].copy_from_slice(&flags.to_le_bytes());
        put_u64(&mut header, 48, 0);
        put_u64(&mut header, 56, GD_AT_END);
        header[72] = 0;
        Salvage {
            header,
            overhead: h.overhead,
            grains,
            grain_sectors: h.grain_sectors,
            gtes_per_gt: u64::from(h.gtes_per_gt),
            gd_entries: h.gd_entries(),
            gt_sectors: h.gt_sectors(),
            gd_sectors: h.gd_sectors(),
            recovered,
            lost,
        }
    }
}

/// Where the new file is built.
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir_of(path).join(format!(".{name}.salvage-tmp"))
}

fn sector_u32(path: &Path, s: u64) -> Result<u32> {
    u32::try_from(s).map_err(|_| {
        Error::InvalidDisk(format!(
            "{}: the rebuilt stream would need sector {s}, beyond what a grain table can hold",
            path.display()
        ))
    })
}

fn pad(v: &mut Vec<u8>) {
    v.resize((v.len() as u64).next_multiple_of(SECTOR) as usize, 0);
}

/// Builds the salvaged stream beside `path` and replaces `path` with it.
pub(super) fn apply(path: &Path, s: &Salvage) -> Result<()> {
    // The rename replaces a directory entry: it must be the file's own, not a symlink to it.
    let real = std::fs::canonicalize(path).map_err(|e| Error::io(path, e))?;
    let path = real.as_path();
    let tmp = temp_path(path);
    // A leftover of a killed salvage, or anything planted there (a symlink goes itself).
    remove_stale_temp(&tmp)?;
    let result = build(path, &tmp, s)
        .and_then(|()| verify(&tmp))
        .and_then(|()| {
            let perms = std::fs::metadata(path)
                .map_err(|e| Error::io(path, e))?
                .permissions();
            std::fs::set_permissions(&tmp, perms).map_err(|e| Error::io(&tmp, e))?;
            fileio::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
            sync_dir(path)
        });
    if result.is_err() {
        let _ = fileio::remove_file(&tmp);
    }
    result
}

/// The rebuilt stream must check clean before it may replace anything: a salvage that cannot
/// prove its own result leaves the original as it was.
fn verify(tmp: &Path) -> Result<()> {
    let (f, _) = super::analyze(tmp)?;
    match f.problems.first() {
        None => Ok(()),
        Some(p) => Err(Error::Unrepairable(format!(
            "the rebuilt stream does not check clean ({}); the original was left as it was",
            p.detail
        ))),
    }
}

/// Writes and syncs the new stream at `tmp`.
fn build(path: &Path, tmp: &Path, s: &Salvage) -> Result<()> {
    let src = open_regular(path, false)?;
    // O_EXCL and 0600 until it has the old file's permissions, just before the rename.
    let out = create_new_private_file(tmp)?;
    copy_range(&src, path, 0, &out, tmp, 0, s.overhead * SECTOR)?;
    write_all_at(&out, tmp, &s.header, 0)?;
    let per = s.gtes_per_gt;
    // Only tables that get grains exist (a hostile geometry can make the full set huge).
    let mut tables: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    let mut cursor = s.overhead;
    for g in &s.grains {
        copy_range(
            &src,
            path,
            g.at * SECTOR,
            &out,
            tmp,
            cursor * SECTOR,
            g.bytes(),
        )?;
        let index = g.lba / s.grain_sectors;
        tables
            .entry(index / per)
            .or_insert_with(|| vec![0; per as usize])[(index % per) as usize] =
            sector_u32(tmp, cursor)?;
        cursor += g.sectors();
    }
    let tail_at = cursor;
    let mut tail = Vec::new();
    let at = |tail: &Vec<u8>| tail_at + tail.len() as u64 / SECTOR;
    let mut directory = vec![0u32; s.gd_entries as usize];
    for (&i, table) in &tables {
        write_marker(&mut tail, s.gt_sectors, MARKER_GT).map_err(|e| Error::io(tmp, e))?;
        directory[i as usize] = sector_u32(tmp, at(&tail))?;
        tail.extend_from_slice(&le_bytes(table));
        pad(&mut tail);
    }
    write_marker(&mut tail, s.gd_sectors, MARKER_GD).map_err(|e| Error::io(tmp, e))?;
    let gd_at = at(&tail);
    tail.extend_from_slice(&le_bytes(&directory));
    pad(&mut tail);
    write_marker(&mut tail, 1, MARKER_FOOTER).map_err(|e| Error::io(tmp, e))?;
    let mut footer = s.header.clone();
    put_u64(&mut footer, 56, gd_at);
    tail.extend_from_slice(&footer);
    tail.extend_from_slice(&[0u8; SECTOR as usize]);
    write_all_at(&out, tmp, &tail, tail_at * SECTOR)?;
    // fsync, not fdatasync: the new file's length must be durable before it gets the name.
    fileio::sync_all(&out, tmp)
}
