//! `vixdisk restore DIR DST`: the seeds' disaster recovery. DIR is the newest backup; its
//! manifest names the one it builds on, and so on back to a full backup (incremental chain:
//! every incremental back to the full; differential: the differential, then the full). Every
//! backup's blocks are checked against their CRC-32s first; then the backups are restored
//! newest first, each writing only the sectors no newer backup restored, so every sector is
//! read and written once, from the newest backup that holds it.
//!
//! The new disk is written in that order (newest backup's pieces first) for every type but
//! streamOptimized, whose writer reads the same pieces grain by grain in disk order.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use vixDiskLib::Adapter as EngineAdapter;
use vixDiskLib::{Error, Result};

use super::manifest::{self, Loaded};
use super::ranges::RangeSet;
use crate::cli::FormatArgs;
use crate::commands::convert::target_spec;
use crate::commands::copy::{Source, write_target};
use crate::commands::remote;
use crate::failure::CmdResult;
use crate::units::{Adapter, SECTOR};

/// Sectors of one backup that the restore takes from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Piece {
    /// Index of the backup in the chain (0 = newest).
    step: usize,
    start: u64,
    length: u64,
    /// Byte offset of `start` in that backup's data file.
    data_offset: u64,
}

/// Which backup each sector comes from: the newest that holds it.
fn plan(chain: &[Loaded]) -> Vec<Piece> {
    let mut restored = RangeSet::default();
    let mut pieces = Vec::new();
    for (step, backup) in chain.iter().enumerate() {
        for b in &backup.manifest.blocks {
            for (s, e) in restored.gaps(b.start, b.start + b.length) {
                pieces.push(Piece {
                    step,
                    start: s,
                    length: e - s,
                    data_offset: b.data_offset + (s - b.start) * SECTOR,
                });
            }
            restored.insert(b.start, b.start + b.length);
        }
    }
    pieces
}

/// Called with each run of a range: the piece holding it (if any), its start and length.
type Visitor<'v> = dyn FnMut(Option<&Piece>, u64, u64) -> Result<()> + 'v;

/// The planned pieces of every backup, read as one disk; counts what each step moved.
struct PlanSource {
    path: PathBuf,
    capacity: u64,
    files: Vec<(File, PathBuf)>,
    /// In the order they are written.
    pieces: Vec<Piece>,
    /// Indices into `pieces`, by start sector.
    by_start: Vec<usize>,
    read_bytes: Vec<AtomicU64>,
    written_bytes: Vec<AtomicU64>,
}

impl PlanSource {
    fn new(chain: &[Loaded], files: Vec<File>, pieces: Vec<Piece>) -> Self {
        let mut by_start: Vec<usize> = (0..pieces.len()).collect();
        by_start.sort_by_key(|&i| pieces[i].start);
        PlanSource {
            path: chain[0].data_path(),
            capacity: chain[0].manifest.capacity_sectors,
            files: files
                .into_iter()
                .zip(chain.iter().map(Loaded::data_path))
                .collect(),
            pieces,
            by_start,
            read_bytes: chain.iter().map(|_| AtomicU64::new(0)).collect(),
            written_bytes: chain.iter().map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Splits `[sector, sector + count)` into runs, each inside one piece or in none.
    fn visit(&self, sector: u64, count: u64, f: &mut Visitor<'_>) -> Result<()> {
        let end = sector + count;
        let mut s = sector;
        while s < end {
            let i = self
                .by_start
                .partition_point(|&i| self.pieces[i].start + self.pieces[i].length <= s);
            match self.by_start.get(i).map(|&i| &self.pieces[i]) {
                Some(p) if p.start <= s => {
                    let n = (p.start + p.length).min(end) - s;
                    f(Some(p), s, n)?;
                    s += n;
                }
                next => {
                    let n = next.map_or(end, |p| p.start.min(end)) - s;
                    f(None, s, n)?;
                    s += n;
                }
            }
        }
        Ok(())
    }
}

impl Source for PlanSource {
    fn path(&self) -> &Path {
        &self.path
    }
    fn capacity(&self) -> u64 {
        self.capacity
    }
    fn runs(&self) -> Result<Vec<(u64, u64)>> {
        Ok(self.pieces.iter().map(|p| (p.start, p.length)).collect())
    }
    fn read(&self, sector: u64, buf: &mut [u8]) -> Result<()> {
        self.visit(sector, buf.len() as u64 / SECTOR, &mut |piece, s, n| {
            let at = ((s - sector) * SECTOR) as usize;
            let out = &mut buf[at..at + (n * SECTOR) as usize];
            let Some(p) = piece else {
                out.fill(0);
                return Ok(());
            };
            let (file, path) = &self.files[p.step];
            file.read_exact_at(out, p.data_offset + (s - p.start) * SECTOR)
                .map_err(|e| Error::io(path, e))?;
            self.read_bytes[p.step].fetch_add(n * SECTOR, Ordering::Relaxed);
            Ok(())
        })
    }
    fn wrote(&self, sector: u64, bytes: u64) {
        let _ = self.visit(sector, bytes / SECTOR, &mut |piece, _, n| {
            if let Some(p) = piece {
                self.written_bytes[p.step].fetch_add(n * SECTOR, Ordering::Relaxed);
            }
            Ok(())
        });
    }
}

/// Restores the backup in `dir` (and those it builds on) into a new disk at `target`.
pub fn restore(dir: &Path, target: &Path, format: &FormatArgs, quiet: bool) -> CmdResult {
    // A backup of an export is restored into a local disk (then served again if need be).
    remote::refuse_uri(dir, "the backup directory")?;
    remote::refuse_uri(target, "the restore target")?;
    crate::commands::target_dir_exists(target)?;
    let chain = manifest::load(dir)?.chain()?;
    let files = chain
        .iter()
        .map(|b| b.verify(quiet))
        .collect::<CmdResult<Vec<File>>>()?;
    let newest = &chain[0].manifest;
    let mut spec = target_spec(format, None, false);
    if format.adapter.is_none()
        && let Some(Adapter(a)) = newest
            .source
            .adapter
            .as_deref()
            .and_then(|a| a.parse().ok())
    {
        spec.create.adapter = a;
    }
    if spec.create.adapter == EngineAdapter::LegacyEsx {
        spec.create.adapter = EngineAdapter::LsiLogic;
    }
    if format.hw_version.is_none()
        && let Some(hw) = newest
            .source
            .hw_version
            .as_deref()
            .and_then(|v| v.trim().parse().ok())
    {
        spec.create.hw_version = hw;
    }
    let source = PlanSource::new(&chain, files, plan(&chain));
    write_target(&source, target, &spec, quiet)?;
    if !quiet {
        for (k, b) in chain.iter().enumerate() {
            let m = &b.manifest;
            say!(
                "step {}: {} ({}{}): read {} of {} bytes stored, wrote {} bytes",
                k + 1,
                b.dir.display(),
                m.kind.name(),
                m.change_id
                    .as_deref()
                    .map_or(String::new(), |id| format!(", change id {id}")),
                source.read_bytes[k].load(Ordering::Relaxed),
                m.copied_sectors * SECTOR,
                source.written_bytes[k].load(Ordering::Relaxed)
            );
        }
    }
    say!(
        "restored {} into {} ({}, {} sectors) from {} backup(s), newest first",
        dir.display(),
        target.display(),
        format.disk_type,
        newest.capacity_sectors,
        chain.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::backup::manifest::{Block, Kind, Manifest, SourceInfo};

    fn backup(blocks: &[(u64, u64)]) -> Loaded {
        let mut offset = 0;
        let blocks = blocks
            .iter()
            .map(|&(start, length)| {
                let b = Block {
                    start,
                    length,
                    data_offset: offset,
                    crc32: 0,
                };
                offset += length * SECTOR;
                b
            })
            .collect();
        Loaded {
            dir: PathBuf::from("x"),
            manifest: Manifest {
                format: String::new(),
                version: 2,
                kind: Kind::Full,
                created_unix: 0,
                source: SourceInfo {
                    path: String::new(),
                    create_type: String::new(),
                    cid: String::new(),
                    links: 1,
                    uuid: None,
                    adapter: None,
                    hw_version: None,
                },
                capacity_sectors: 1000,
                chunk_sectors: 128,
                change_id: None,
                parent: None,
                data_file: String::new(),
                copied_sectors: 0,
                blocks,
                manifest_crc32: None,
            },
        }
    }

    #[test]
    fn newest_first_each_sector_once() {
        let chain = [
            backup(&[(100, 10)]),
            backup(&[(0, 50), (95, 30)]),
            backup(&[(0, 200)]),
        ];
        let pieces = plan(&chain);
        let p = |step, start, length, data_offset| Piece {
            step,
            start,
            length,
            data_offset,
        };
        assert_eq!(
            pieces,
            vec![
                p(0, 100, 10, 0),
                p(1, 0, 50, 0),
                p(1, 95, 5, 50 * SECTOR),
                p(1, 110, 15, 65 * SECTOR),
                p(2, 50, 45, 50 * SECTOR),
                p(2, 125, 75, 125 * SECTOR),
            ]
        );
        let restored: u64 = pieces.iter().map(|p| p.length).sum();
        assert_eq!(restored, 200);
    }
}
