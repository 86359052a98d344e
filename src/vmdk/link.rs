//! One link of a disk chain: its descriptor, its extents, its lock and its write session.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::cowd::CowdExtent;
use super::descriptor::{
    Access, Descriptor, ExtentKind, ExtentLine, MAX_DESCRIPTOR_BYTES, NO_PARENT_CID, decode_text,
    is_raw_disk_type,
};
use super::extent::{DirectFill, Extent, ExtentStore, Mapping};
pub use super::fileio::dir_of;
use super::fileio::{file_len, random_cid, read_exact_at, sync_data, write_all_at};
use super::header::{HEADER_SIZE, SparseHeader};
pub(crate) use super::link_files::MAX_CAPACITY_SECTORS;
use super::link_files::{
    ALLOW_RAW_DEVICES_KEY, extent_path, lock_file, open_extent, open_file, open_raw_disk_extent,
    raw_devices_allowed,
};
use super::sesparse::SeSparseHeader;
use super::sparse::SparseExtent;
use crate::error::{Error, Result};

/// Opening a link from its first file: monolithic sparse, descriptor file, legacy COWD log.
mod open;

/// Where the descriptor text is stored.
enum DescriptorHome {
    /// Inside the sparse extent at this byte offset, with this many bytes reserved.
    Embedded { offset: u64, size: u64 },
    /// In its own text file (the link's path).
    File,
    /// Nowhere: a legacy COWD redo log (Workstation 3 / GSX 2 `.REDO`), described by its header.
    Synthesized,
}

#[derive(Default)]
struct Session {
    /// The first write of this open has happened (CID renewed, unclean flag set).
    written: bool,
    /// The first write keeps the CID: a commit changes it itself once every grain is in place.
    keep_cid: bool,
    /// The CID the first write will give the link, once someone asked (`session_cid`).
    next_cid: Option<u32>,
}

/// DDB key a redo log carries while a commit into its parent is finishing: the CID the parent
/// gets at the commit point (`%08x`). A link with this key is read-only until a second commit
/// call completes the job, and its parent may carry that CID instead of `parentCID`.
pub const COMMIT_JOURNAL_KEY: &str = "vixdisklibext.commitCID";

/// The parent CID recorded by an unfinished commit of the link described by `d`, if any.
pub fn commit_journal(d: &Descriptor) -> Option<u32> {
    d.ddb_get(COMMIT_JOURNAL_KEY)
        .and_then(|v| u32::from_str_radix(v.trim(), 16).ok())
}

/// An open link.
pub struct Link {
    path: PathBuf,
    /// The descriptor file (for monolithic sparse, the extent file itself); holds the lock,
    /// so it stays open for as long as the link (never in the extent descriptor cache).
    file: std::sync::Arc<File>,
    descriptor: Mutex<Descriptor>,
    home: DescriptorHome,
    extents: Vec<Extent>,
    writable: bool,
    session: Mutex<Session>,
    /// Legacy COWD redo log: its parent is named in its header and has no CID to check.
    legacy_redo: bool,
    /// An unfinished commit of this link into its parent (see `COMMIT_JOURNAL_KEY`).
    commit_pending: bool,
}

impl Link {
    /// Opens the link at `path`; `writable` takes an exclusive lock, otherwise a shared one.
    pub fn open(path: &Path, writable: bool) -> Result<Link> {
        Self::open_locked(path, writable, true)
    }

    /// Opens the link at `path` read-only without taking its lock, so it can be read while
    /// another process writes it (`vixdisk info --force-share`, like qemu-img's `-U`). What it
    /// reads may be stale or half-updated: only for showing, never as the base of a write.
    pub fn open_force_share(path: &Path) -> Result<Link> {
        Self::open_locked(path, false, false)
    }

    fn open_locked(path: &Path, writable: bool, lock: bool) -> Result<Link> {
        let file = std::sync::Arc::new(open_file(path, writable)?);
        if lock {
            lock_file(&file, path, writable)?;
        }
        let len = file_len(&file, path)?;
        let mut first = vec![0u8; HEADER_SIZE.min(len as usize)];
        read_exact_at(&file, path, &mut first, 0)?;
        if SparseHeader::has_magic(&first) {
            Self::open_monolithic(path, file, &first, writable)
        } else if CowdExtent::has_magic(&first) {
            Self::open_legacy_cowd(path, file, writable)
        } else if SeSparseHeader::has_magic(&first) {
            Err(Error::NotSupported(format!(
                "{}: a seSparse extent must be opened through its descriptor file",
                path.display()
            )))
        } else {
            Self::open_descriptor_file(path, file, len, writable)
        }
    }

    /// Opens, writable, the monolithic sparse link just written into `file`, which may have no
    /// name any more (`path` is for messages and the descriptor's own name).
    pub fn open_created(path: &Path, file: File) -> Result<Link> {
        // Its extent shares this descriptor (pinned), so a nameless file is never reopened.
        let file = std::sync::Arc::new(file);
        lock_file(&file, path, true)?;
        let len = file_len(&file, path)?;
        let mut first = vec![0u8; HEADER_SIZE.min(len as usize)];
        read_exact_at(&file, path, &mut first, 0)?;
        if !SparseHeader::has_magic(&first) {
            return Err(Error::InvalidDisk(format!(
                "{}: not a monolithic sparse file",
                path.display()
            )));
        }
        Self::open_monolithic(path, file, &first, true)
    }

    /// True for a legacy COWD redo log, whose parent has no CID to check.
    pub fn is_legacy_redo(&self) -> bool {
        self.legacy_redo
    }

    /// The path this link was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A copy of the current descriptor.
    pub fn descriptor(&self) -> Descriptor {
        self.descriptor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// True if the descriptor is embedded in the (single) sparse extent.
    pub fn is_monolithic(&self) -> bool {
        matches!(self.home, DescriptorHome::Embedded { .. })
    }

    /// True if the link is one file (monolithic sparse, or a legacy COWD log).
    fn is_single_file(&self) -> bool {
        !matches!(self.home, DescriptorHome::File)
    }

    /// Our change-tracking file, if the descriptor names one (always beside the descriptor).
    pub fn tracking_file(&self) -> Option<PathBuf> {
        let d = self.descriptor.lock().unwrap_or_else(|e| e.into_inner());
        let name = d.ddb_get(super::track::TRACKING_KEY)?;
        extent_path(&dir_of(&self.path), name).ok()
    }

    /// Every file of this link: the descriptor first, then each extent file once, then the
    /// change-tracking file.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut out = self.data_files();
        out.extend(self.tracking_file());
        out
    }

    /// The descriptor and the extent files.
    fn data_files(&self) -> Vec<PathBuf> {
        let mut out = vec![self.path.clone()];
        if !self.is_single_file() {
            let dir = dir_of(&self.path);
            for e in &self.extents {
                if let Some(name) = &e.file_name {
                    let Ok(p) = extent_path(&dir, name) else {
                        continue;
                    };
                    if !out.contains(&p) {
                        out.push(p);
                    }
                }
            }
        }
        out
    }

    /// Capacity in sectors.
    pub fn capacity(&self) -> u64 {
        self.extents.iter().map(|e| e.sectors).sum()
    }

    /// True if opened for writing.
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// The extents.
    pub fn extents(&self) -> &[Extent] {
        &self.extents
    }

    fn extent_at(&self, sector: u64) -> Option<(usize, &Extent)> {
        // Extents are few (one per 2 GiB at most); a linear scan is cheap.
        self.extents
            .iter()
            .enumerate()
            .find(|(_, e)| sector >= e.start && sector < e.start + e.sectors)
    }

    /// Maps virtual `sector`; the answer holds for the returned number of sectors (≤ `max`).
    pub fn map(&self, sector: u64, max: u64) -> Result<(Mapping, u64)> {
        let (i, e) = self
            .extent_at(sector)
            .ok_or_else(|| Error::InvalidArg(format!("sector {sector} outside every extent")))?;
        e.map(i, sector - e.start, max)
    }

    /// Calls `visit(sector, sectors)` for runs of virtual sectors in `[start, end)` that this
    /// link stores (grain-granular for sparse extents), in ascending order.
    pub fn for_each_allocated(
        &self,
        start: u64,
        end: u64,
        visit: &mut dyn FnMut(u64, u64),
    ) -> Result<()> {
        for e in &self.extents {
            let lo = start.max(e.start);
            let hi = end.min(e.start + e.sectors);
            if lo < hi {
                let base = e.start;
                e.for_each_allocated(lo - base, hi - base, &mut |s, n| visit(s + base, n))?;
            }
        }
        Ok(())
    }

    /// Reads part of a compressed grain located by `map`.
    pub fn read_compressed(
        &self,
        extent: usize,
        marker: u64,
        skip: u64,
        buf: &mut [u8],
    ) -> Result<()> {
        self.extents[extent].read_compressed(marker, skip, buf)
    }

    /// Reads data located by `map`.
    pub fn read_data(&self, extent: usize, buf: &mut [u8], offset: u64) -> Result<()> {
        self.extents[extent].read_data(buf, offset)
    }

    /// Why this link as a whole takes no writes (read-only open, change-tracked, write-once or
    /// COWD extents, an unfinished commit), or None. Checked before a write session changes
    /// anything.
    pub(crate) fn write_refusal(&self) -> Option<Error> {
        let path = self.path.display();
        if !self.writable {
            return Some(Error::ReadOnly(format!("{path} is open read-only")));
        }
        if self.commit_pending {
            return Some(Error::ReadOnly(format!(
                "{path}: its commit into the parent is unfinished; call VixDiskLibExt_Commit on it again"
            )));
        }
        for e in &self.extents {
            match &e.store {
                // Version 3 carries VMware change tracking we cannot keep current: writing
                // would make it silently wrong (qemu refuses too). Clone the disk to write it.
                ExtentStore::Sparse(sp)
                    if sp.header().version == 3 && !sp.header().is_compressed() =>
                {
                    return Some(Error::ReadOnly(format!(
                        "{path}: sparse version 3 (change-tracked) extents are read-only"
                    )));
                }
                ExtentStore::Sparse(_) if e.is_write_once() => {
                    return Some(Error::NotSupported(format!(
                        "{path}: streamOptimized disks are write-once; clone to another type to modify"
                    )));
                }
                ExtentStore::Cowd(_) => {
                    return Some(Error::NotSupported(format!(
                        "{path}: vmfsSparse (COWD) links are read-only here; create a child to write"
                    )));
                }
                ExtentStore::SeSparse(_) => {
                    return Some(Error::NotSupported(format!(
                        "{path}: seSparse links are read-only here; create a child to write"
                    )));
                }
                _ => {}
            }
        }
        None
    }

    /// Writes `data` at virtual `sector`; `fill` supplies the parent's content for the parts of
    /// newly allocated grains that `data` does not cover.
    pub fn write(
        &self,
        sector: u64,
        data: &[u8],
        fill: &mut dyn FnMut(u64, &mut [u8]) -> Result<()>,
    ) -> Result<()> {
        // Refuse before the write session changes the CID or the unclean flag.
        if let Some(refusal) = self.write_refusal() {
            return Err(refusal);
        }
        let end = sector + (data.len() / 512) as u64;
        if let Some(e) = self.extents.iter().find(|e| {
            e.start < end
                && sector < e.start + e.sectors
                && (e.access != Access::ReadWrite || matches!(e.store, ExtentStore::Zero))
        }) {
            return Err(Error::ReadOnly(format!(
                "{}: the write reaches a {:?} {:?} extent",
                self.path.display(),
                e.access,
                e.kind
            )));
        }
        self.begin_write_session()?;
        let mut pos = 0usize;
        let mut cur = sector;
        while pos < data.len() {
            let (_, e) = self
                .extent_at(cur)
                .ok_or_else(|| Error::InvalidArg(format!("sector {cur} outside every extent")))?;
            let n = ((e.start + e.sectors - cur) as usize * 512).min(data.len() - pos);
            let base = e.start;
            e.write(cur - base, &data[pos..pos + n], &mut |s, b| {
                fill(s + base, b)
            })?;
            pos += n;
            cur += (n / 512) as u64;
        }
        Ok(())
    }

    /// Places new data for `[sector, sector + sectors)` straight into this link's files through
    /// `fill(file, path, byte_offset, first, count)` (see `Extent::fill_new`), for copies the
    /// kernel can do without passing the data through us. Returns Ok(false), having written
    /// nothing, if some extent of the range cannot take data that way.
    pub fn fill_new(&self, sector: u64, sectors: u64, fill: &mut DirectFill<'_>) -> Result<bool> {
        if self.write_refusal().is_some() || self.extents.iter().any(Extent::is_compressed) {
            return Ok(false);
        }
        let end = sector + sectors;
        let pieces: Vec<(usize, u64, u64)> = self
            .extents
            .iter()
            .enumerate()
            .filter(|(_, e)| e.start < end && sector < e.start + e.sectors)
            .map(|(i, e)| (i, sector.max(e.start), end.min(e.start + e.sectors)))
            .collect();
        let aligned = |(i, lo, hi): &(usize, u64, u64)| match &self.extents[*i].store {
            ExtentStore::Sparse(sp) => {
                let gs = sp.header().grain_sectors;
                (lo - self.extents[*i].start).is_multiple_of(gs) && (hi - lo).is_multiple_of(gs)
            }
            ExtentStore::Flat { .. } => true,
            _ => false,
        };
        if !pieces.iter().all(aligned) {
            return Ok(false);
        }
        self.begin_write_session()?;
        for (i, lo, hi) in pieces {
            let e = &self.extents[i];
            let base = lo - sector;
            e.fill_new(lo - e.start, hi - lo, &mut |f, p, off, first, count| {
                fill(f, p, off, base + first, count)
            })?;
        }
        Ok(true)
    }

    /// Copies `sectors` sectors stored in `src` at byte `src_off` into newly allocated space
    /// of this link at virtual `sector`, inside the kernel (see `fill_new`). Ok(false), having
    /// written nothing, if the range cannot take data that way.
    pub fn copy_new_from(
        &self,
        sector: u64,
        sectors: u64,
        src: &File,
        src_path: &Path,
        src_off: u64,
    ) -> Result<bool> {
        self.fill_new(
            sector,
            sectors,
            &mut |dst, dst_path, dst_off, first, count| {
                super::fileio::copy_range(
                    src,
                    src_path,
                    src_off + first * 512,
                    dst,
                    dst_path,
                    dst_off,
                    count * 512,
                )
            },
        )
    }

    /// On the first write of an open: a new CID (so children notice), and the unclean flag.
    fn begin_write_session(&self) -> Result<()> {
        let mut session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        if session.written {
            return Ok(());
        }
        for e in &self.extents {
            if let ExtentStore::Sparse(sp) = &e.store {
                sp.set_unclean(true)?;
            }
        }
        if !session.keep_cid {
            let mut d = self.descriptor.lock().unwrap_or_else(|e| e.into_inner());
            d.cid = session.next_cid.take().unwrap_or_else(random_cid);
            self.write_descriptor(&d)?;
        }
        session.written = true;
        Ok(())
    }

    /// The CID this open's writes give the link: the new one the first write will set (chosen
    /// now, so change tracking can record it before that write), or the CID it has.
    pub fn session_cid(&self) -> u32 {
        let mut session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        if session.written || session.keep_cid {
            return self
                .descriptor
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .cid;
        }
        *session.next_cid.get_or_insert_with(random_cid)
    }

    /// Makes this open's writes keep the CID (must precede the first write). A commit uses it
    /// so the parent only changes its CID once every grain of the child is in place.
    pub(crate) fn keep_cid_while_writing(&self) {
        self.session
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keep_cid = true;
    }

    /// Starts a write session for data placed straight into this link's files (a commit's
    /// in-place kernel copies): refuses as `write` would, then marks the open as writing.
    pub(crate) fn begin_direct_write(&self) -> Result<()> {
        if let Some(refusal) = self.write_refusal() {
            return Err(refusal);
        }
        self.begin_write_session()
    }

    /// Persists `d` as this link's descriptor (in place: the lock lives on this file).
    pub fn write_descriptor(&self, d: &Descriptor) -> Result<()> {
        let text = d.to_bytes();
        match self.home {
            DescriptorHome::Embedded { offset, size } => {
                if text.len() as u64 > size {
                    return Err(Error::InvalidArg(format!(
                        "descriptor of {} bytes does not fit the {size}-byte embedded area",
                        text.len()
                    )));
                }
                let mut area = text;
                area.resize(size as usize, 0);
                write_all_at(&self.file, &self.path, &area, offset)?;
            }
            DescriptorHome::Synthesized => {
                return Err(Error::NotSupported(format!(
                    "{}: legacy COWD disks have no descriptor to change",
                    self.path.display()
                )));
            }
            DescriptorHome::File => {
                // Rewritten in place (the lock lives on this file). A shorter text is padded
                // with newlines over the old one first, so a crash before the truncation
                // leaves blank lines, never stale extent or key lines.
                let old_len = file_len(&self.file, &self.path)? as usize;
                let mut bytes = text;
                let len = bytes.len();
                if len < old_len {
                    bytes.resize(old_len, b'\n');
                }
                write_all_at(&self.file, &self.path, &bytes, 0)?;
                if len < old_len {
                    sync_data(&self.file, &self.path)?;
                    super::fileio::set_len(&self.file, &self.path, len as u64)?;
                }
            }
        }
        sync_data(&self.file, &self.path)
    }

    /// Replaces the descriptor (metadata writes, re-parenting) and persists it.
    pub fn update_descriptor(&self, f: impl FnOnce(&mut Descriptor)) -> Result<()> {
        if !self.writable {
            return Err(Error::ReadOnly(format!(
                "{} is open read-only",
                self.path.display()
            )));
        }
        let mut current = self.descriptor.lock().unwrap_or_else(|e| e.into_inner());
        // Change a copy: if it cannot be written, the open keeps the descriptor on disk.
        let mut d = current.clone();
        f(&mut d);
        self.write_descriptor(&d)?;
        *current = d;
        Ok(())
    }

    /// Makes all writes durable.
    pub fn flush(&self) -> Result<()> {
        for e in &self.extents {
            e.flush()?;
        }
        Ok(())
    }

    /// Flushes and, if this open wrote anything, clears the unclean-shutdown flag.
    pub fn close(&self) -> Result<()> {
        if !self.writable {
            return Ok(());
        }
        self.flush()?;
        let session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        if session.written {
            for e in &self.extents {
                if let ExtentStore::Sparse(sp) = &e.store {
                    sp.set_unclean(false)?;
                }
            }
        }
        Ok(())
    }
}

fn file_name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
