//! Our change-tracking file for hosted disks (VMware's `-ctk.vmdk` format is undocumented, so
//! we never write it). One 24-bit epoch per 64 KiB grain: the change-id sequence number whose
//! content first includes the grain's last write. "What changed since id N" is then every
//! grain whose epoch exceeds N, whatever the number of ids issued.
//!
//! Layout (little-endian): a 512-byte header, then one u32 per block of 1024 grains (the
//! highest epoch in the block, so queries skip untouched blocks), padded to 512 bytes, then
//! the blocks, 3 bytes per grain (48 KiB per GiB of capacity; blocks never written stay holes).
//!
//! Crash safety (kill -9 at any moment never yields a wrong answer): before the first write
//! of a session the header says "session open", and before a write touches a region (1/2048
//! of the disk, at least 64 MiB) whose intent bit is clear, the bit is set and made durable.
//! Epochs are written and synced at Flush/Close, and only then are the intents cleared. A
//! later open that finds a session open treats every grain of every intended region as
//! changed after the last issued id: a superset, never a miss. Ids are durable before they
//! are handed out.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use super::fileio::{file_len, read_exact_at, sync_data, write_all_at};
use crate::error::{Error, Result};

/// DDB key naming a link's tracking file (beside its descriptor). VMware's own
/// `changeTrackPath` is never written: its format is undocumented.
pub const TRACKING_KEY: &str = "vixdisklibext.changeTrackingFile";

/// Sectors per tracked grain (64 KiB: the largest granularity the answers may have).
pub(crate) const TRACK_GRAIN_SECTORS: u64 = 128;
const MAGIC: &[u8; 8] = b"VDLTRAK1";
const HEADER_BYTES: u64 = 512;
const GRAINS_PER_BLOCK: u64 = 1024;
const EPOCH_BYTES: u64 = 3;
const BLOCK_BYTES: u64 = GRAINS_PER_BLOCK * EPOCH_BYTES;
/// Largest epoch a 24-bit entry holds; the history is full after this many ids.
pub(crate) const MAX_EPOCH: u64 = (1 << 24) - 1;
const REGIONS: u64 = 2048;
const MIN_REGION_GRAINS: u64 = 1024; // 64 MiB
const FLAG_SESSION_OPEN: u32 = 1;
const FLAG_DIRTY: u32 = 2;

/// The persistent part of the header.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Header {
    flags: u32,
    uuid: [u8; 16],
    seq: u64,
    valid_from: u64,
    grains: u64,
    cid: u32,
    region_grains: u64,
    intents: [u8; (REGIONS / 8) as usize],
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Header {
    fn encode(&self) -> [u8; HEADER_BYTES as usize] {
        let mut b = [0u8; HEADER_BYTES as usize];
        b[0..8].copy_from_slice(MAGIC);
        b[8..12].copy_from_slice(&1u32.to_le_bytes());
        b[12..16].copy_from_slice(&self.flags.to_le_bytes());
        b[16..32].copy_from_slice(&self.uuid);
        b[32..40].copy_from_slice(&self.seq.to_le_bytes());
        b[40..48].copy_from_slice(&self.valid_from.to_le_bytes());
        b[48..56].copy_from_slice(&self.grains.to_le_bytes());
        b[56..60].copy_from_slice(&self.cid.to_le_bytes());
        b[60..64].copy_from_slice(&(self.region_grains as u32).to_le_bytes());
        b[64..320].copy_from_slice(&self.intents);
        let sum = fnv(&b[..320]);
        b[320..328].copy_from_slice(&sum.to_le_bytes());
        b
    }

    fn decode(b: &[u8], path: &Path) -> Result<Header> {
        let bad = |m: &str| Error::Corrupt(format!("{}: change tracking file {m}", path.display()));
        if b.len() < HEADER_BYTES as usize || &b[0..8] != MAGIC {
            return Err(bad("has no valid header"));
        }
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"));
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"));
        if u32_at(8) != 1 || u64_at(320) != fnv(&b[..320]) {
            return Err(bad("header is damaged or of an unknown version"));
        }
        let h = Header {
            flags: u32_at(12),
            uuid: b[16..32].try_into().expect("16 bytes"),
            seq: u64_at(32),
            valid_from: u64_at(40),
            grains: u64_at(48),
            cid: u32_at(56),
            region_grains: u64::from(u32_at(60)),
            intents: b[64..320].try_into().expect("256 bytes"),
        };
        if h.region_grains == 0 || h.grains.div_ceil(h.region_grains) > REGIONS || h.seq > MAX_EPOCH
        {
            return Err(bad("header fields are out of range"));
        }
        Ok(h)
    }
}

/// Reads a whole (closed) tracking file: header, summary and the epoch bytes of every block.
fn read_whole(path: &Path) -> Result<(Header, Vec<u32>, Vec<u8>)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let header = Header::decode(&bytes, path)?;
    let off = blocks_offset(header.grains) as usize;
    let len = (blocks_for(header.grains) * BLOCK_BYTES) as usize;
    if bytes.len() < off + len {
        return Err(Error::Corrupt(format!(
            "{}: change tracking file is truncated",
            path.display()
        )));
    }
    let summary = bytes
        [HEADER_BYTES as usize..HEADER_BYTES as usize + blocks_for(header.grains) as usize * 4]
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect();
    Ok((header, summary, bytes[off..off + len].to_vec()))
}

/// Writes a complete tracking file at `path` (under a temporary name, synced, then renamed:
/// complete or absent). Empty `summary`/`blocks` leave those areas as holes (all zero).
fn write_whole(path: &Path, header: &Header, summary: &[u32], blocks: &[u8]) -> Result<()> {
    let len = blocks_offset(header.grains) + blocks_for(header.grains) * BLOCK_BYTES;
    let tmp = super::atomic::temp_name(path);
    let written = (|| {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| Error::io(&tmp, e))?;
        f.set_len(len).map_err(|e| Error::io(&tmp, e))?;
        write_all_at(&f, &tmp, &header.encode(), 0)?;
        if !summary.is_empty() {
            let bytes: Vec<u8> = summary.iter().flat_map(|v| v.to_le_bytes()).collect();
            write_all_at(&f, &tmp, &bytes, HEADER_BYTES)?;
        }
        if !blocks.is_empty() {
            write_all_at(&f, &tmp, blocks, blocks_offset(header.grains))?;
        }
        sync_data(&f, &tmp)?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    super::atomic::sync_dir(path)
}

fn region_grains_for(grains: u64) -> u64 {
    grains.div_ceil(REGIONS).max(MIN_REGION_GRAINS)
}

fn blocks_for(grains: u64) -> u64 {
    grains.div_ceil(GRAINS_PER_BLOCK)
}

fn blocks_offset(grains: u64) -> u64 {
    HEADER_BYTES + (blocks_for(grains) * 4).div_ceil(512) * 512
}

/// A change-id: the tracking history's UUID and a sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeId {
    /// Names the tracking history (new each time tracking is turned on).
    pub uuid: [u8; 16],
    /// Counts the ids of that history.
    pub seq: u64,
}

impl ChangeId {
    /// vSphere's shape: `"52 ab f5 21 86 ad f2 ff-5b ef c0 f2 3b 53 eb 3b/78"`.
    pub fn render(&self) -> String {
        format!("{}/{}", super::descriptor::format_uuid(self.uuid), self.seq)
    }

    /// Parses `render`'s shape (spaces and dashes between the hex bytes are optional).
    pub fn parse(text: &str) -> Option<ChangeId> {
        let (uuid_text, seq_text) = text.trim().rsplit_once('/')?;
        let hex: String = uuid_text
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .collect();
        if hex.len() != 32 {
            return None;
        }
        let mut uuid = [0u8; 16];
        for (i, byte) in uuid.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(ChangeId {
            uuid,
            seq: seq_text.trim().parse().ok()?,
        })
    }
}

/// An open tracking file.
pub struct TrackFile {
    path: PathBuf,
    file: File,
    writable: bool,
    header: Header,
    summary: Vec<u32>,
    blocks: HashMap<u64, Box<[u32]>>,
    dirty_blocks: HashSet<u64>,
    /// Regions whose intent bit is durable in this session.
    intended: HashSet<u64>,
}

impl TrackFile {
    /// Writes a new, empty tracking file for `grains` grains at `path` (complete or absent).
    pub fn create(path: &Path, grains: u64, uuid: [u8; 16], cid: u32) -> Result<()> {
        let header = Header {
            flags: 0,
            uuid,
            seq: 0,
            valid_from: 0,
            grains,
            cid,
            region_grains: region_grains_for(grains),
            intents: [0; (REGIONS / 8) as usize],
        };
        write_whole(path, &header, &[], &[])
    }

    /// Copies the history at `src` to `dst` for a link whose CID is `cid` (CreateChild's
    /// child, or a parent taking over a committed child's history). The source must have been
    /// flushed.
    pub fn copy_as(src: &Path, dst: &Path, cid: u32) -> Result<()> {
        let (mut header, summary, blocks) = read_whole(src)?;
        header.flags &= FLAG_DIRTY;
        header.intents = [0; (REGIONS / 8) as usize];
        header.cid = cid;
        write_whole(dst, &header, &summary, &blocks)
    }

    /// Resizes the closed history at `path` to `grains` grains (Grow): the new grains count
    /// as changed after the last issued id.
    pub fn grow(path: &Path, grains: u64, cid: u32) -> Result<()> {
        let (mut header, mut summary, mut blocks) = read_whole(path)?;
        let old = header.grains;
        if grains < old {
            return Err(Error::InvalidArg("a tracking history cannot shrink".into()));
        }
        let epoch = (header.seq + 1).min(MAX_EPOCH) as u32;
        summary.resize(blocks_for(grains) as usize, 0);
        blocks.resize((blocks_for(grains) * BLOCK_BYTES) as usize, 0);
        for g in old..grains {
            let at = (g * EPOCH_BYTES) as usize;
            blocks[at..at + 3].copy_from_slice(&epoch.to_le_bytes()[..3]);
            summary[(g / GRAINS_PER_BLOCK) as usize] = epoch;
        }
        if grains > old {
            header.flags |= FLAG_DIRTY;
        }
        header.flags &= FLAG_DIRTY;
        header.grains = grains;
        header.region_grains = region_grains_for(grains);
        header.intents = [0; (REGIONS / 8) as usize];
        header.cid = cid;
        write_whole(path, &header, &summary, &blocks)
    }

    /// Opens the tracking file of a link with `grains` grains whose CID is now `cid`.
    /// A crashed session is recovered (intended regions count as changed); a CID that moved
    /// without a session of ours means another program wrote the disk: older ids become
    /// unanswerable. Changes are persisted only if `writable`.
    pub fn open(path: &Path, writable: bool, grains: u64, cid: u32) -> Result<TrackFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(writable)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        let mut hb = vec![0u8; HEADER_BYTES as usize];
        read_exact_at(&file, path, &mut hb, 0)?;
        let header = Header::decode(&hb, path)?;
        let need = blocks_offset(header.grains) + blocks_for(header.grains) * BLOCK_BYTES;
        if header.grains != grains || file_len(&file, path)? < need {
            return Err(Error::Corrupt(format!(
                "{}: change tracking file does not match the disk's size",
                path.display()
            )));
        }
        let mut sb = vec![0u8; blocks_for(grains) as usize * 4];
        read_exact_at(&file, path, &mut sb, HEADER_BYTES)?;
        let summary = sb
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        let mut t = TrackFile {
            path: path.to_path_buf(),
            file,
            writable,
            header,
            summary,
            blocks: HashMap::new(),
            dirty_blocks: HashSet::new(),
            intended: HashSet::new(),
        };
        t.recover(cid)?;
        Ok(t)
    }

    fn recover(&mut self, cid: u32) -> Result<()> {
        let h = &self.header;
        if h.flags & FLAG_SESSION_OPEN != 0 {
            let regions: Vec<u64> = (0..REGIONS)
                .filter(|r| h.intents[(r / 8) as usize] & (1 << (r % 8)) != 0)
                .collect();
            let rg = h.region_grains;
            for r in regions {
                let first = r * rg;
                let last = ((r + 1) * rg).min(self.header.grains);
                if first < last {
                    self.mark(first, last)?;
                }
            }
            self.header.flags = FLAG_DIRTY;
            self.header.intents = [0; (REGIONS / 8) as usize];
            self.header.cid = cid;
            return self.persist();
        }
        if h.cid != cid {
            // Written by a program that does not keep our tracking: no old id is trustworthy.
            crate::log::warn(format!(
                "{}: the disk changed without change tracking (CID {:08x} -> {cid:08x}); \
                 change ids issued before now cannot be answered: do a full backup",
                self.path.display(),
                h.cid
            ));
            self.header.seq = (self.header.seq + 1).min(MAX_EPOCH);
            self.header.valid_from = self.header.seq;
            self.header.flags = 0;
            self.header.cid = cid;
            return self.persist();
        }
        Ok(())
    }

    /// Writes dirty blocks, then the header, syncing both (only for writable opens).
    fn persist(&mut self) -> Result<()> {
        if !self.writable {
            return Ok(());
        }
        let off = blocks_offset(self.header.grains);
        let mut dirty: Vec<u64> = self.dirty_blocks.drain().collect();
        dirty.sort_unstable();
        for b in &dirty {
            let block = &self.blocks[b];
            let mut bytes = Vec::with_capacity(BLOCK_BYTES as usize);
            for e in block.iter() {
                bytes.extend_from_slice(&e.to_le_bytes()[..3]);
            }
            write_all_at(&self.file, &self.path, &bytes, off + b * BLOCK_BYTES)?;
            write_all_at(
                &self.file,
                &self.path,
                &self.summary[*b as usize].to_le_bytes(),
                HEADER_BYTES + b * 4,
            )?;
        }
        if !dirty.is_empty() {
            sync_data(&self.file, &self.path)?;
        }
        self.write_header()
    }

    fn write_header(&self) -> Result<()> {
        write_all_at(&self.file, &self.path, &self.header.encode(), 0)?;
        sync_data(&self.file, &self.path)
    }

    fn block(&mut self, b: u64) -> Result<&mut Box<[u32]>> {
        if !self.blocks.contains_key(&b) {
            let mut bytes = vec![0u8; BLOCK_BYTES as usize];
            if self.summary[b as usize] != 0 {
                let off = blocks_offset(self.header.grains) + b * BLOCK_BYTES;
                read_exact_at(&self.file, &self.path, &mut bytes, off)?;
            }
            let block: Box<[u32]> = bytes
                .chunks_exact(3)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], 0]))
                .collect();
            self.blocks.insert(b, block);
        }
        Ok(self.blocks.get_mut(&b).expect("inserted above"))
    }

    /// Sets grains `[first, last)` to the epoch of the next id, in memory.
    fn mark(&mut self, first: u64, last: u64) -> Result<()> {
        let epoch = (self.header.seq + 1) as u32;
        let mut g = first;
        while g < last {
            let b = g / GRAINS_PER_BLOCK;
            let end = ((b + 1) * GRAINS_PER_BLOCK).min(last);
            let block = self.block(b)?;
            let (lo, hi) = (
                (g % GRAINS_PER_BLOCK) as usize,
                (end - b * GRAINS_PER_BLOCK) as usize,
            );
            block[lo..hi].fill(epoch);
            self.summary[b as usize] = epoch;
            self.dirty_blocks.insert(b);
            g = end;
        }
        self.header.flags |= FLAG_DIRTY;
        Ok(())
    }

    /// Records that sectors `[sector, sector + count)` are about to be written. Makes the
    /// session and the regions' intents durable first (once each per session).
    pub fn before_write(&mut self, sector: u64, count: u64) -> Result<()> {
        if count == 0 {
            return Ok(());
        }
        if !self.writable {
            return Err(Error::ReadOnly(format!(
                "{}: change tracking file is open read-only",
                self.path.display()
            )));
        }
        if self.header.seq >= MAX_EPOCH {
            return Err(Error::NotSupported(format!(
                "{}: the change tracking history is full; turn tracking off and on",
                self.path.display()
            )));
        }
        let first = sector / TRACK_GRAIN_SECTORS;
        let last = (sector + count)
            .div_ceil(TRACK_GRAIN_SECTORS)
            .min(self.header.grains);
        let rg = self.header.region_grains;
        let new: Vec<u64> = (first / rg..last.div_ceil(rg))
            .filter(|r| !self.intended.contains(r))
            .collect();
        if !new.is_empty() || self.header.flags & FLAG_SESSION_OPEN == 0 {
            self.header.flags |= FLAG_SESSION_OPEN;
            for r in &new {
                self.header.intents[(r / 8) as usize] |= 1 << (r % 8);
            }
            self.write_header()?;
            self.intended.extend(new);
        }
        self.mark(first, last)
    }

    /// Makes the epochs durable and clears the intents (after the data itself was synced).
    /// `cid` is the link's CID now.
    pub fn flush(&mut self, cid: u32) -> Result<()> {
        if !self.writable || (self.dirty_blocks.is_empty() && self.intended.is_empty()) {
            return Ok(());
        }
        self.header.intents = [0; (REGIONS / 8) as usize];
        self.header.cid = cid;
        self.intended.clear();
        self.persist()
    }

    /// Flush, then mark the session closed.
    pub fn close(&mut self, cid: u32) -> Result<()> {
        if !self.writable {
            return Ok(());
        }
        self.flush(cid)?;
        if self.header.flags & FLAG_SESSION_OPEN != 0 || self.header.cid != cid {
            self.header.flags &= !FLAG_SESSION_OPEN;
            self.header.cid = cid;
            self.write_header()?;
        }
        Ok(())
    }

    /// The id of the content now: the last one issued, or a new one if anything was
    /// written since (made durable before it is returned).
    pub fn current_id(&mut self) -> Result<ChangeId> {
        if self.header.flags & FLAG_DIRTY != 0 {
            if !self.writable {
                return Err(Error::ReadOnly(format!(
                    "{}: a new change id needs a writable open",
                    self.path.display()
                )));
            }
            self.header.seq += 1;
            self.header.flags &= !FLAG_DIRTY;
            self.persist()?;
        }
        Ok(ChangeId {
            uuid: self.header.uuid,
            seq: self.header.seq,
        })
    }

    /// Checks that `id` can be answered by this history.
    pub fn check_id(&self, id: &ChangeId) -> Result<()> {
        let why = if id.uuid != self.header.uuid {
            "belongs to another disk or to an earlier tracking history"
        } else if id.seq > self.header.seq {
            "is newer than anything this disk issued"
        } else if id.seq < self.header.valid_from {
            "predates a change the tracking could not see"
        } else {
            return Ok(());
        };
        Err(Error::ChangeIdUnknown(format!(
            "change id {} {why}; do a full backup",
            id.render()
        )))
    }

    /// Grain runs in `[first, last)` whose epoch is above `since` (each run: first grain, grains).
    pub fn changed_since(&mut self, since: u64, first: u64, last: u64) -> Result<Vec<(u64, u64)>> {
        let mut runs: Vec<(u64, u64)> = Vec::new();
        let mut g = first;
        while g < last.min(self.header.grains) {
            let b = g / GRAINS_PER_BLOCK;
            let end = ((b + 1) * GRAINS_PER_BLOCK)
                .min(last)
                .min(self.header.grains);
            if u64::from(self.summary[b as usize]) > since {
                let block = self.block(b)?.clone();
                for i in g..end {
                    if u64::from(block[(i - b * GRAINS_PER_BLOCK) as usize]) > since {
                        match runs.last_mut() {
                            Some((s, n)) if *s + *n == i => *n += 1,
                            _ => runs.push((i, 1)),
                        }
                    }
                }
            }
            g = end;
        }
        Ok(runs)
    }

    /// Grains tracked.
    pub fn grains(&self) -> u64 {
        self.header.grains
    }

    /// The history's UUID.
    pub fn uuid(&self) -> [u8; 16] {
        self.header.uuid
    }
}
