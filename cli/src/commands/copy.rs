//! Copying sectors from a source (a VMDK chain, a raw image, a backup) into a new target of
//! any type, skipping what is unallocated or all zeros, stopping cleanly on Ctrl-C. The
//! VMDK-to-VMDK case goes through the engine's own clone instead (convert.rs).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use vixDiskLib::{Connection, CreateOptions, Disk, DiskKind, Error, Result};

use super::{close, open};
use crate::failure::{CmdResult, Failure, OnFile};
use crate::interrupt;
use crate::progress::Progress;
use crate::units::{DiskType, SECTOR};

/// Sectors per grain: the unit in which zeros are skipped (every writer here uses 64 KiB).
pub const GRAIN: u64 = 128;
/// Sectors read per step of the copy loop (1 MiB): the interrupt flag is checked this often.
const CHUNK: u64 = 2048;
/// QueryAllocatedBlocks' smallest chunk, as the seed's backup uses.
pub const ALLOCATION_CHUNK: u64 = 128;
/// Most chunks one allocation (or change) query covers.
pub const MAX_CHUNKS: u64 = 512 * 1024;

/// The seed's block list for a full backup (and what is copied from an NBD export):
/// QueryAllocatedBlocks' chunks, window by window, plus the tail past the last whole chunk,
/// which counts as allocated. An export whose server reports no allocation is all allocated.
pub fn allocated_blocks(disk: &Disk) -> Result<Vec<(u64, u64)>> {
    let capacity = disk.capacity();
    let whole = capacity / ALLOCATION_CHUNK * ALLOCATION_CHUNK;
    let mut blocks: Vec<(u64, u64)> = Vec::new();
    let mut start = 0;
    while start < whole {
        let count = (whole - start).min(MAX_CHUNKS * ALLOCATION_CHUNK);
        for a in disk.allocated_areas(start, count, ALLOCATION_CHUNK)? {
            push_run(&mut blocks, a.start, a.sectors);
        }
        start += count;
    }
    if whole < capacity {
        blocks.push((whole, capacity - whole));
    }
    Ok(blocks)
}

/// Appends the run `(s, n)`, merged into the last one when it continues it.
pub fn push_run(runs: &mut Vec<(u64, u64)>, s: u64, n: u64) {
    match runs.last_mut() {
        Some((bs, bl)) if *bs + *bl == s => *bl += n,
        _ => runs.push((s, n)),
    }
}

/// Something to copy from.
pub trait Source: Sync {
    /// The file named in error messages.
    fn path(&self) -> &Path;
    /// Capacity in sectors.
    fn capacity(&self) -> u64;
    /// Disjoint `(start, sectors)` runs that may hold data, in the order they are to be
    /// written (ascending but for a restore's newest-first plan); the rest reads as zeros.
    fn runs(&self) -> Result<Vec<(u64, u64)>>;
    /// Reads whole sectors at `sector` (past the capacity: zeros).
    fn read(&self, sector: u64, buf: &mut [u8]) -> Result<()>;
    /// Told that `bytes` from `sector` reached the target (zeros are skipped, not written).
    fn wrote(&self, _sector: u64, _bytes: u64) {}
}

/// An open VMDK chain or NBD export.
pub struct DiskSource<'a> {
    pub disk: &'a Disk,
    pub path: &'a Path,
}

impl Source for DiskSource<'_> {
    fn path(&self) -> &Path {
        self.path
    }
    fn capacity(&self) -> u64 {
        self.disk.capacity()
    }
    fn runs(&self) -> Result<Vec<(u64, u64)>> {
        if self.disk.is_remote() {
            // The server's block status (`base:allocation`), as a backup reads it.
            return allocated_blocks(self.disk);
        }
        let capacity = self.disk.capacity();
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for (g, _) in self
            .disk
            .allocated_grains()?
            .iter()
            .enumerate()
            .filter(|(_, a)| **a)
        {
            let start = g as u64 * GRAIN;
            push_run(&mut runs, start, GRAIN.min(capacity - start));
        }
        Ok(runs)
    }
    fn read(&self, sector: u64, buf: &mut [u8]) -> Result<()> {
        let inside = (self.disk.capacity().saturating_sub(sector) * SECTOR).min(buf.len() as u64);
        let (head, tail) = buf.split_at_mut(inside as usize);
        tail.fill(0);
        self.disk.read(sector, head)
    }
}

/// A raw image file: its size (rounded up to a sector) is the capacity.
pub struct RawSource {
    file: File,
    path: PathBuf,
    len: u64,
}

impl RawSource {
    /// Opens the image at `path` read-only.
    pub fn open(path: &Path) -> CmdResult<RawSource> {
        let file = File::open(path).on(path)?;
        let len = file.metadata().on(path)?.len();
        if len == 0 {
            return Err(Failure::Usage(format!("{} is empty", path.display())));
        }
        Ok(RawSource {
            file,
            path: path.to_path_buf(),
            len,
        })
    }
}

impl Source for RawSource {
    fn path(&self) -> &Path {
        &self.path
    }
    fn capacity(&self) -> u64 {
        self.len.div_ceil(SECTOR)
    }
    fn runs(&self) -> Result<Vec<(u64, u64)>> {
        // Holes read as zeros quickly and zero grains are skipped when writing.
        Ok(vec![(0, self.capacity())])
    }
    fn read(&self, sector: u64, buf: &mut [u8]) -> Result<()> {
        let at = sector * SECTOR;
        let inside = self.len.saturating_sub(at).min(buf.len() as u64) as usize;
        let (head, tail) = buf.split_at_mut(inside);
        tail.fill(0);
        self.file
            .read_exact_at(head, at)
            .map_err(|e| Error::io(&self.path, e))
    }
}

/// The error the stream writer gets from a read that noticed Ctrl-C.
fn interrupted(path: &Path) -> Error {
    Error::io(
        path,
        std::io::Error::new(std::io::ErrorKind::Interrupted, "interrupted"),
    )
}

/// Reads every run of `source` and hands the non-zero grain-aligned pieces to `write`.
fn pump(
    source: &dyn Source,
    bar: &Progress,
    write: &mut dyn FnMut(u64, &[u8]) -> CmdResult,
) -> CmdResult {
    let mut buf = vec![0u8; (CHUNK * SECTOR) as usize];
    for (start, len) in source.runs().on(source.path())? {
        let end = start + len;
        let mut s = start;
        while s < end {
            interrupt::check()?;
            let n = CHUNK.min(end - s);
            let chunk = &mut buf[..(n * SECTOR) as usize];
            source.read(s, chunk).on(source.path())?;
            // Coalesce runs of non-zero grain pieces into one write each.
            let mut pending: Option<u64> = None;
            let mut i = s;
            while i < s + n {
                let piece_end = ((i / GRAIN + 1) * GRAIN).min(s + n);
                let bytes =
                    &chunk[((i - s) * SECTOR) as usize..((piece_end - s) * SECTOR) as usize];
                let data = bytes.iter().any(|&b| b != 0);
                match (data, pending) {
                    (true, None) => pending = Some(i),
                    (false, Some(p)) => {
                        let data = &chunk[((p - s) * SECTOR) as usize..((i - s) * SECTOR) as usize];
                        write(p, data)?;
                        source.wrote(p, data.len() as u64);
                        pending = None;
                    }
                    _ => {}
                }
                i = piece_end;
            }
            if let Some(p) = pending {
                let data = &chunk[((p - s) * SECTOR) as usize..];
                write(p, data)?;
                source.wrote(p, data.len() as u64);
            }
            bar.inc(n * SECTOR);
            s += n;
        }
    }
    Ok(())
}

/// How the target disk is made.
pub struct TargetSpec {
    /// VMDK type or raw.
    pub disk_type: DiskType,
    /// Adapter and hardware version for a VMDK target (the capacity comes from the source).
    pub create: CreateOptions,
    /// Replace an existing target.
    pub overwrite: bool,
}

/// Removes an existing target (every file of a VMDK, or a plain file).
fn remove_existing(target: &Path) -> CmdResult {
    if Connection::local().unlink(target).is_err() {
        std::fs::remove_file(target).on(target)?;
    }
    Ok(())
}

/// Writes the content of `source` into a new disk at `target`. On any failure or Ctrl-C the
/// target is removed; the source is only read.
pub fn write_target(
    source: &dyn Source,
    target: &Path,
    spec: &TargetSpec,
    quiet: bool,
) -> CmdResult {
    let exists = target.symlink_metadata().is_ok();
    if exists && !spec.overwrite {
        return Err(Failure::Engine {
            file: target.to_path_buf(),
            error: Error::FileExists(target.to_path_buf()),
        });
    }
    let create = CreateOptions {
        capacity: source.capacity(),
        ..spec.create
    };
    let total = source
        .runs()
        .on(source.path())?
        .iter()
        .map(|r| r.1)
        .sum::<u64>()
        * SECTOR;
    match spec.disk_type {
        DiskType::Raw => write_raw(source, target, total, quiet),
        DiskType::Vmdk(DiskKind::StreamOptimized) => {
            if exists {
                remove_existing(target)?;
            }
            write_stream(source, target, &create, quiet)
        }
        DiskType::Vmdk(kind) => {
            if exists {
                remove_existing(target)?;
            }
            write_vmdk(
                source,
                target,
                &CreateOptions { kind, ..create },
                total,
                quiet,
            )
        }
    }
}

fn write_vmdk(
    source: &dyn Source,
    target: &Path,
    spec: &CreateOptions,
    total: u64,
    quiet: bool,
) -> CmdResult {
    // Filled under a temporary name and published only once complete and closed: a kill -9
    // midway leaves no disk at `target` that looks like a finished copy (the next create of
    // the same name removes the leftovers).
    let new = Connection::local().create_staged(target, spec).on(target)?;
    let result = (|| {
        let disk = open(new.fill_path(), false, true)?;
        let bar = Progress::bytes("copy", total, quiet);
        let copied = pump(source, &bar, &mut |s, data| disk.write(s, data).on(target));
        // Close even after a failure, so the half-made disk is consistent until removed.
        let closed = close(disk, target);
        copied?;
        closed
    })();
    match result {
        Ok(()) => new.publish().on(target),
        Err(e) => {
            new.discard();
            Err(e)
        }
    }
}

fn write_stream(
    source: &dyn Source,
    target: &Path,
    spec: &CreateOptions,
    quiet: bool,
) -> CmdResult {
    let grains = source.capacity().div_ceil(GRAIN) as usize;
    let mut allocated = vec![false; grains];
    for (s, n) in source.runs().on(source.path())? {
        allocated[(s / GRAIN) as usize..(s + n).div_ceil(GRAIN) as usize].fill(true);
    }
    let read_grain = |g: u64, buf: &mut [u8]| -> Result<bool> {
        if interrupt::requested() {
            return Err(interrupted(target));
        }
        if !allocated[g as usize] {
            return Ok(false);
        }
        source.read(g * GRAIN, buf)?;
        let data = buf.iter().any(|&b| b != 0);
        if data {
            source.wrote(g * GRAIN, buf.len() as u64);
        }
        Ok(data)
    };
    let bar = Progress::bytes("compress", spec.capacity * SECTOR, quiet);
    // The writer removes its partial file on any error, ours included.
    let result =
        Connection::local().create_stream(target, spec, &read_grain, &mut |p| bar.set_percent(p));
    interrupt::check()?;
    result.on(target)
}

/// A raw target is written under a temporary name in the same directory and renamed into
/// place after an fsync, so it is complete or absent even after a crash.
fn write_raw(source: &dyn Source, target: &Path, total: u64, quiet: bool) -> CmdResult {
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .ok_or_else(|| Failure::Usage(format!("{}: no file name", target.display())))?;
    let tmp = dir.join(format!(".{}.vixdisk-partial", name.to_string_lossy()));
    // Failures name the user's target first; the temporary file only as the cause.
    let on_tmp = |e: std::io::Error| Failure::Engine {
        file: target.to_path_buf(),
        error: Error::io(&tmp, e),
    };
    // What a killed copy to the same target left (only we use this name).
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(on_tmp(e)),
        _ => {}
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(on_tmp)?;
    let result = (|| {
        file.set_len(source.capacity() * SECTOR).map_err(on_tmp)?;
        let bar = Progress::bytes("copy", total, quiet);
        pump(source, &bar, &mut |s, data| {
            file.write_all_at(data, s * SECTOR).map_err(on_tmp)
        })?;
        file.sync_all().map_err(on_tmp)?;
        std::fs::rename(&tmp, target).on(target)?;
        File::open(&dir).and_then(|d| d.sync_all()).on(&dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
