//! `DIR/manifest.json`: what one backup holds (its blocks and where they are in the data
//! file), which change id its content has, and which earlier backup it builds on. Written last
//! and atomically; read back and checked (shape, then every block's CRC-32) before a restore.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use vixDiskLib::Error;

use super::{MANIFEST, STEP, fsync_dir};
use crate::failure::{CmdResult, Failure, OnFile};
use crate::interrupt;
use crate::progress::Progress;
use crate::units::SECTOR;

/// `format` of every manifest this tool writes.
pub const MANIFEST_FORMAT: &str = "vixdisk-backup";
/// Layout version written now. Version 1 (full backups without change ids) is still read.
pub const MANIFEST_VERSION: u32 = 2;

/// What a backup holds, relative to the disk's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Every allocated block.
    Full,
    /// The blocks changed since the previous backup (any kind).
    Incremental,
    /// The blocks changed since the last full backup.
    Differential,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Full => "full",
            Kind::Incremental => "incremental",
            Kind::Differential => "differential",
        }
    }
}

/// One stored block: `length` sectors of the disk from `start`, at byte `data_offset` of the
/// data file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Block {
    pub start: u64,
    pub length: u64,
    pub data_offset: u64,
    pub crc32: u32,
}

/// What the backup was taken from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceInfo {
    pub path: String,
    #[serde(rename = "type")]
    pub create_type: String,
    pub cid: String,
    pub links: usize,
    pub uuid: Option<String>,
    pub adapter: Option<String>,
    pub hw_version: Option<String>,
}

/// The backup an incremental or differential one builds on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ParentRef {
    /// Its directory, relative to this backup's directory (sibling backups: `../NAME`).
    pub dir: String,
    /// Its absolute directory when this backup was taken (tried if `dir` does not lead there).
    pub path: String,
    pub kind: Kind,
    /// Its change id: the id this backup's changes are relative to (for a differential, the
    /// full backup's).
    pub change_id: String,
    pub created_unix: u64,
}

/// `DIR/manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub kind: Kind,
    pub created_unix: u64,
    pub source: SourceInfo,
    pub capacity_sectors: u64,
    pub chunk_sectors: u64,
    /// The change id of the content backed up (none if the disk did not track changes).
    #[serde(default)]
    pub change_id: Option<String>,
    /// The backup this one builds on (none for a full backup).
    #[serde(default)]
    pub parent: Option<ParentRef>,
    pub data_file: String,
    pub copied_sectors: u64,
    pub blocks: Vec<Block>,
    /// CRC-32 of the manifest itself (compact JSON without this field): the blocks' CRCs
    /// cover their bytes, not where they go, so a damaged `start` would otherwise restore
    /// good data at the wrong place. Manifests written before it have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_crc32: Option<u32>,
}

impl Manifest {
    /// The CRC-32 `manifest_crc32` records.
    fn own_crc32(&self) -> u32 {
        let mut bare = self.clone();
        bare.manifest_crc32 = None;
        crc32fast::hash(
            serde_json::to_string(&bare)
                .expect("plain data serializes")
                .as_bytes(),
        )
    }
}

/// A manifest read from disk, with the directory it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

pub fn corrupt(path: &Path, why: String) -> Failure {
    Failure::Engine {
        file: path.to_path_buf(),
        error: Error::InvalidArg(format!("not a usable backup: {why}")),
    }
}

/// Reads `dir/manifest.json` and checks its shape (not the data: see `verify`).
pub fn load(dir: &Path) -> CmdResult<Loaded> {
    let path = dir.join(MANIFEST);
    let text = match std::fs::read_to_string(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && unfinished(dir) => {
            return Err(corrupt(
                &path,
                "an unfinished backup (it was interrupted before its manifest was written)".into(),
            ));
        }
        read => read.on(&path)?,
    };
    let m: Manifest = serde_json::from_str(&text).map_err(|e| corrupt(&path, e.to_string()))?;
    if m.manifest_crc32.is_some_and(|crc| crc != m.own_crc32()) {
        return Err(corrupt(&path, "the manifest fails its CRC-32 check".into()));
    }
    let version_ok = m.version == MANIFEST_VERSION || (m.version == 1 && m.kind == Kind::Full);
    if m.format != MANIFEST_FORMAT || !version_ok {
        return Err(corrupt(
            &path,
            format!("format {} version {}", m.format, m.version),
        ));
    }
    if (m.kind == Kind::Full) != m.parent.is_none() {
        return Err(corrupt(
            &path,
            format!("a {} backup with the wrong parent entry", m.kind.name()),
        ));
    }
    if Path::new(&m.data_file).components().count() != 1 {
        return Err(corrupt(&path, "data file outside the backup".into()));
    }
    let mut prev_end = 0;
    let mut stored = 0;
    for b in &m.blocks {
        if b.start < prev_end
            || b.length == 0
            || b.start + b.length > m.capacity_sectors
            || b.data_offset != stored
        {
            return Err(corrupt(&path, format!("bad block at sector {}", b.start)));
        }
        prev_end = b.start + b.length;
        stored += b.length * SECTOR;
    }
    if stored != m.copied_sectors * SECTOR {
        return Err(corrupt(
            &path,
            format!(
                "its blocks hold {} sectors, copied_sectors says {}",
                stored / SECTOR,
                m.copied_sectors
            ),
        ));
    }
    Ok(Loaded {
        dir: dir.to_path_buf(),
        manifest: m,
    })
}

/// True if `dir` holds what a backup writes before its manifest (a kill midway leaves that).
fn unfinished(dir: &Path) -> bool {
    dir.join(super::DATA).exists() || partial_path(dir).exists()
}

impl Loaded {
    pub fn data_path(&self) -> PathBuf {
        self.dir.join(&self.manifest.data_file)
    }

    /// The backup this one builds on, checked to be the one it recorded.
    pub fn parent(&self) -> CmdResult<Option<Loaded>> {
        let Some(p) = &self.manifest.parent else {
            return Ok(None);
        };
        let relative = self.dir.join(&p.dir);
        let dir = if relative.join(MANIFEST).exists() {
            std::fs::canonicalize(&relative).unwrap_or(relative)
        } else {
            PathBuf::from(&p.path)
        };
        let parent = load(&dir)?;
        let m = &parent.manifest;
        if m.change_id.as_deref() != Some(p.change_id.as_str())
            || m.created_unix != p.created_unix
            || m.kind != p.kind
        {
            return Err(corrupt(
                &self.dir.join(MANIFEST),
                format!(
                    "its parent backup {} is not the one it was taken after",
                    dir.display()
                ),
            ));
        }
        Ok(Some(parent))
    }

    /// This backup and the ones it builds on, newest first, ending with a full backup.
    pub fn chain(self) -> CmdResult<Vec<Loaded>> {
        let mut out = vec![self];
        while let Some(parent) = out.last().expect("not empty").parent()? {
            if out.len() > 10_000 {
                return Err(corrupt(&parent.dir, "the backup chain loops".into()));
            }
            if parent.manifest.capacity_sectors > out[0].manifest.capacity_sectors {
                return Err(corrupt(
                    &parent.dir,
                    "larger than the newer backup built on it".into(),
                ));
            }
            out.push(parent);
        }
        Ok(out)
    }

    /// The full backup this one is, or builds on.
    pub fn full(self) -> CmdResult<Loaded> {
        Ok(self
            .chain()?
            .pop()
            .expect("a chain ends with a full backup"))
    }

    /// Reads the whole data file and checks every block against its CRC-32.
    pub fn verify(&self, quiet: bool) -> CmdResult<File> {
        let data_path = self.data_path();
        let file = File::open(&data_path).on(&data_path)?;
        let m = &self.manifest;
        let len = file.metadata().on(&data_path)?.len();
        if len != m.copied_sectors * SECTOR {
            return Err(corrupt(
                &data_path,
                format!(
                    "the data file has {len} bytes, its manifest names {}",
                    m.copied_sectors * SECTOR
                ),
            ));
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
        Ok(file)
    }
}

/// Writes `m` as `dir/manifest.json`: temporary name, fsync, rename, fsync of the directory.
pub fn store(m: &Manifest, dir: &Path) -> CmdResult {
    let partial = partial_path(dir);
    let mut m = m.clone();
    m.manifest_crc32 = Some(m.own_crc32());
    let text = serde_json::to_string_pretty(&m).expect("plain data serializes");
    // O_EXCL after removing a stale leftover: a symlink planted at the temporary name is
    // removed, never written through.
    match std::fs::remove_file(&partial) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e).on(&partial),
        _ => {}
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&partial)
        .on(&partial)?;
    f.write_all(text.as_bytes()).on(&partial)?;
    f.sync_all().on(&partial)?;
    std::fs::rename(&partial, dir.join(MANIFEST)).on(dir)?;
    fsync_dir(dir)
}

/// Where `store` writes before the rename.
pub fn partial_path(dir: &Path) -> PathBuf {
    dir.join(format!("{MANIFEST}.partial"))
}

/// The path that leads from directory `from` to directory `to` (both absolute, without `..`).
pub fn relative_dir(from: &Path, to: &Path) -> PathBuf {
    let a: Vec<Component<'_>> = from.components().collect();
    let b: Vec<Component<'_>> = to.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..a.len() {
        out.push("..");
    }
    for c in &b[common..] {
        out.push(c);
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_dirs_between_backups() {
        let r = |a: &str, b: &str| relative_dir(Path::new(a), Path::new(b));
        assert_eq!(r("/bk/incr1", "/bk/full"), PathBuf::from("../full"));
        assert_eq!(r("/bk/2024/incr", "/bk/full"), PathBuf::from("../../full"));
        assert_eq!(r("/bk", "/bk/full"), PathBuf::from("full"));
        assert_eq!(r("/bk", "/bk"), PathBuf::from("."));
    }
}
