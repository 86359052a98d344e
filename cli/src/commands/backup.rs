//! `vixdisk backup full` and `vixdisk restore`: the seed scenario's backup. A full backup
//! asks the chain for its allocated chunks (QueryAllocatedBlocks' rules: 128-sector chunks,
//! at most 524288 per query, the tail past the last whole chunk counted as allocated), copies
//! only those into `DIR/data.bin` and then writes `DIR/manifest.json`. The manifest is
//! written last, under a temporary name, fsynced and renamed: a directory without it is an
//! unfinished backup that restore refuses. Restore checks every block's CRC-32 first, then
//! writes the blocks into a new disk of any type.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vixDiskLib::chain::Disk;
use vixDiskLib::error::{Error, Result};
use vixDiskLib::vmdk::geometry::Adapter as EngineAdapter;

use super::convert::target_spec;
use super::copy::{Source, write_target};
use super::{open, with_disk};
use crate::cli::FormatArgs;
use crate::failure::{CmdResult, Failure, OnFile};
use crate::interrupt;
use crate::progress::Progress;
use crate::units::{Adapter, SECTOR};

/// `format` of every manifest this tool writes.
const MANIFEST_FORMAT: &str = "vixdisk-backup";
/// Manifest layout version.
const MANIFEST_VERSION: u32 = 1;
const MANIFEST: &str = "manifest.json";
const DATA: &str = "data.bin";
/// QueryAllocatedBlocks' smallest chunk, as the seed's backup uses.
const CHUNK: u64 = 128;
/// Most chunks one allocation query may cover.
const MAX_CHUNKS: u64 = 512 * 1024;
/// Sectors read and written per step (1 MiB).
const STEP: u64 = 2048;

/// One copied block: `length` sectors of the disk from `start`, stored at byte `data_offset`
/// of the data file.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Block {
    start: u64,
    length: u64,
    data_offset: u64,
    crc32: u32,
}

/// What the backup was taken from.
#[derive(Debug, Serialize, Deserialize)]
struct SourceInfo {
    path: String,
    #[serde(rename = "type")]
    create_type: String,
    cid: String,
    links: usize,
    uuid: Option<String>,
    adapter: Option<String>,
    hw_version: Option<String>,
}

/// `DIR/manifest.json`.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: String,
    version: u32,
    /// "full" (incremental and differential backups are not in this build).
    kind: String,
    created_unix: u64,
    source: SourceInfo,
    capacity_sectors: u64,
    chunk_sectors: u64,
    data_file: String,
    copied_sectors: u64,
    blocks: Vec<Block>,
}

/// The seed's block list: allocated chunks, window by window, plus the unaligned tail.
fn allocated_blocks(disk: &Disk) -> Result<Vec<(u64, u64)>> {
    let capacity = disk.capacity();
    let whole = capacity / CHUNK * CHUNK;
    let mut blocks: Vec<(u64, u64)> = Vec::new();
    let mut start = 0;
    while start < whole {
        let count = (whole - start).min(MAX_CHUNKS * CHUNK);
        for (s, n) in disk.allocated_chunks(start, count, CHUNK)? {
            match blocks.last_mut() {
                Some((bs, bl)) if *bs + *bl == s => *bl += n,
                _ => blocks.push((s, n)),
            }
        }
        start += count;
    }
    if whole < capacity {
        blocks.push((whole, capacity - whole));
    }
    Ok(blocks)
}

fn fsync_dir(dir: &Path) -> CmdResult {
    File::open(dir).and_then(|d| d.sync_all()).on(dir)
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Prepares `dir`: created if missing, else it must be empty. Returns whether we created it.
fn prepare_dir(dir: &Path) -> CmdResult<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(Failure::Engine {
                    file: dir.to_path_buf(),
                    error: Error::FileExists(dir.to_path_buf()),
                });
            }
            Ok(false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).on(dir)?;
            Ok(true)
        }
        Err(e) => Err(e).on(dir),
    }
}

/// Copies the blocks into `data` and returns the manifest's block list.
fn copy_blocks(
    disk: &Disk,
    disk_path: &Path,
    data: &mut File,
    data_path: &Path,
    quiet: bool,
) -> CmdResult<Vec<Block>> {
    let runs = allocated_blocks(disk).on(disk_path)?;
    let total: u64 = runs.iter().map(|r| r.1).sum();
    let bar = Progress::bytes("backup", total * SECTOR, quiet);
    let mut buf = vec![0u8; (STEP * SECTOR) as usize];
    let mut out = Vec::with_capacity(runs.len());
    let mut offset = 0u64;
    for (start, length) in runs {
        let mut crc = crc32fast::Hasher::new();
        let mut s = start;
        while s < start + length {
            interrupt::check()?;
            let n = STEP.min(start + length - s);
            let piece = &mut buf[..(n * SECTOR) as usize];
            disk.read(s, piece).on(disk_path)?;
            data.write_all(piece).on(data_path)?;
            crc.update(piece);
            bar.inc(n * SECTOR);
            s += n;
        }
        out.push(Block {
            start,
            length,
            data_offset: offset,
            crc32: crc.finalize(),
        });
        offset += length * SECTOR;
    }
    Ok(out)
}

fn source_info(disk: &Disk, path: &Path) -> SourceInfo {
    let info = disk.info();
    let chain = disk.chain();
    let d = chain.links[0].descriptor();
    SourceInfo {
        path: std::fs::canonicalize(path)
            .unwrap_or_else(|_| path.to_path_buf())
            .display()
            .to_string(),
        create_type: d.create_type,
        cid: format!("{:08x}", d.cid),
        links: chain.links.len(),
        uuid: info.uuid,
        adapter: info.adapter.map(|a| a.ddb_name().to_string()),
        hw_version: disk.ddb_lookup("virtualHWVersion"),
    }
}

/// Full backup of the chain at `disk_path` into the new directory `dir`.
pub fn full(disk_path: &Path, dir: &Path, quiet: bool) -> CmdResult {
    let disk = open(disk_path, true, false)?;
    let created_dir = prepare_dir(dir)?;
    let data_path = dir.join(DATA);
    let partial = dir.join(format!("{MANIFEST}.partial"));
    let result = with_disk(disk, disk_path, |disk| {
        let mut data = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&data_path)
            .on(&data_path)?;
        let blocks = copy_blocks(disk, disk_path, &mut data, &data_path, quiet)?;
        data.sync_all().on(&data_path)?;
        let manifest = Manifest {
            format: MANIFEST_FORMAT.into(),
            version: MANIFEST_VERSION,
            kind: "full".into(),
            created_unix: now_unix(),
            source: source_info(disk, disk_path),
            capacity_sectors: disk.capacity(),
            chunk_sectors: CHUNK,
            data_file: DATA.into(),
            copied_sectors: blocks.iter().map(|b| b.length).sum(),
            blocks,
        };
        let text = serde_json::to_string_pretty(&manifest).expect("plain data serializes");
        let mut f = File::create(&partial).on(&partial)?;
        f.write_all(text.as_bytes()).on(&partial)?;
        f.sync_all().on(&partial)?;
        std::fs::rename(&partial, dir.join(MANIFEST)).on(dir)?;
        fsync_dir(dir)?;
        Ok(manifest)
    });
    match result {
        Ok(m) => {
            say!(
                "backed up {} into {}: {} of {} sectors in {} block(s)",
                disk_path.display(),
                dir.display(),
                m.copied_sectors,
                m.capacity_sectors,
                m.blocks.len()
            );
            Ok(())
        }
        Err(e) => {
            // An unfinished backup is removed rather than left looking usable.
            let _ = std::fs::remove_file(&partial);
            let _ = std::fs::remove_file(&data_path);
            if created_dir {
                let _ = std::fs::remove_dir(dir);
            }
            Err(e)
        }
    }
}

/// The blocks of a backup's data file, read as a disk.
struct BackupSource {
    file: File,
    path: PathBuf,
    capacity: u64,
    blocks: Vec<Block>,
}

impl Source for BackupSource {
    fn path(&self) -> &Path {
        &self.path
    }
    fn capacity(&self) -> u64 {
        self.capacity
    }
    fn runs(&self) -> Result<Vec<(u64, u64)>> {
        Ok(self.blocks.iter().map(|b| (b.start, b.length)).collect())
    }
    fn read(&self, sector: u64, buf: &mut [u8]) -> Result<()> {
        let end = sector + buf.len() as u64 / SECTOR;
        let mut s = sector;
        while s < end {
            let at = ((s - sector) * SECTOR) as usize;
            // The block holding `s`, or the next one after it.
            let i = self.blocks.partition_point(|b| b.start + b.length <= s);
            match self.blocks.get(i) {
                Some(b) if b.start <= s => {
                    let n = (b.start + b.length).min(end) - s;
                    let off = b.data_offset + (s - b.start) * SECTOR;
                    self.file
                        .read_exact_at(&mut buf[at..at + (n * SECTOR) as usize], off)
                        .map_err(|e| Error::io(&self.path, e))?;
                    s += n;
                }
                next => {
                    let n = next.map_or(end, |b| b.start.min(end)) - s;
                    buf[at..at + (n * SECTOR) as usize].fill(0);
                    s += n;
                }
            }
        }
        Ok(())
    }
}

fn corrupt(path: &Path, why: String) -> Failure {
    Failure::Engine {
        file: path.to_path_buf(),
        error: Error::InvalidArg(format!("not a usable backup: {why}")),
    }
}

/// Reads and validates `dir/manifest.json`, then checks every block against its CRC-32.
fn load_backup(dir: &Path, quiet: bool) -> CmdResult<(Manifest, BackupSource)> {
    let manifest_path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&manifest_path).on(&manifest_path)?;
    let m: Manifest =
        serde_json::from_str(&text).map_err(|e| corrupt(&manifest_path, e.to_string()))?;
    if m.format != MANIFEST_FORMAT || m.version != MANIFEST_VERSION || m.kind != "full" {
        return Err(corrupt(
            &manifest_path,
            format!("format {} version {} kind {}", m.format, m.version, m.kind),
        ));
    }
    let data_path = dir.join(&m.data_file);
    if Path::new(&m.data_file).components().count() != 1 {
        return Err(corrupt(
            &manifest_path,
            "data file outside the backup".into(),
        ));
    }
    let file = File::open(&data_path).on(&data_path)?;
    let mut prev_end = 0;
    for b in &m.blocks {
        if b.start < prev_end || b.length == 0 || b.start + b.length > m.capacity_sectors {
            return Err(corrupt(
                &manifest_path,
                format!("bad block at sector {}", b.start),
            ));
        }
        prev_end = b.start + b.length;
    }
    let bar = Progress::bytes("verify", m.copied_sectors * SECTOR, quiet);
    let mut buf = vec![0u8; (STEP * SECTOR) as usize];
    for b in &m.blocks {
        let mut crc = crc32fast::Hasher::new();
        let mut done = 0;
        while done < b.length {
            interrupt::check()?;
            let n = STEP.min(b.length - done);
            let piece = &mut buf[..(n * SECTOR) as usize];
            file.read_exact_at(piece, b.data_offset + done * SECTOR)
                .on(&data_path)?;
            crc.update(piece);
            bar.inc(n * SECTOR);
            done += n;
        }
        if crc.finalize() != b.crc32 {
            return Err(corrupt(
                &data_path,
                format!("block at sector {} fails its CRC-32 check", b.start),
            ));
        }
    }
    bar.finish();
    let source = BackupSource {
        file,
        path: data_path,
        capacity: m.capacity_sectors,
        blocks: m.blocks.clone(),
    };
    Ok((m, source))
}

/// Writes the backup in `dir` into a new disk at `target`.
pub fn restore(dir: &Path, target: &Path, format: &FormatArgs, quiet: bool) -> CmdResult {
    let (m, source) = load_backup(dir, quiet)?;
    let mut spec = target_spec(format, None, false);
    if format.adapter.is_none()
        && let Some(Adapter(a)) = m.source.adapter.as_deref().and_then(|a| a.parse().ok())
    {
        spec.create.adapter = a;
    }
    if spec.create.adapter == EngineAdapter::LegacyEsx {
        spec.create.adapter = EngineAdapter::Ide;
    }
    if format.hw_version.is_none()
        && let Some(hw) = m
            .source
            .hw_version
            .as_deref()
            .and_then(|v| v.trim().parse().ok())
    {
        spec.create.hw_version = hw;
    }
    write_target(&source, target, &spec, quiet)?;
    say!(
        "restored {} into {} ({}, {} sectors)",
        dir.display(),
        target.display(),
        format.disk_type,
        m.capacity_sectors
    );
    Ok(())
}
