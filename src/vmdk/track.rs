//! Our change-tracking file for hosted disks (VMware's `-ctk.vmdk` format is undocumented, so
//! we never write it). One 24-bit epoch per 64 KiB grain: the change-id sequence number whose
//! content first includes the grain's last write. "What changed since id N" is then every
//! grain whose epoch exceeds N, whatever the number of ids issued.
//!
//! The layout is in `track_layout.rs`: a header, a coarse and a fine summary of the highest
//! epoch per 64 MiB and per 4 MiB (so a query reads only what changed), and 3 bytes per grain
//! (about 49 KiB per GiB of capacity, whatever the number of ids issued).
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
pub(crate) use super::track_layout::MAX_EPOCH;
use super::track_layout::{
    BLOCK_BYTES, CHUNKS_PER_BLOCK, EPOCH_BYTES, FLAG_DIRTY, FLAG_SESSION_OPEN, GRAINS_PER_BLOCK,
    GRAINS_PER_CHUNK, HEADER_BYTES, Header, NO_INTENTS, REGIONS, Whole, blocks_for, blocks_offset,
    chunks_for, file_bytes, fine_offset, region_grains_for, u32s_from,
};
use crate::error::{Error, Result};

/// DDB key naming a link's tracking file (beside its descriptor). VMware's own
/// `changeTrackPath` is never written: its format is undocumented.
pub const TRACKING_KEY: &str = "vixdisklibext.changeTrackingFile";

/// Sectors per tracked grain (64 KiB: the largest granularity the answers may have).
pub(crate) const TRACK_GRAIN_SECTORS: u64 = 128;
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
    /// Coarse summary (per block), always in memory.
    summary: Vec<u32>,
    /// Fine summary (per chunk), read on first use.
    fine: Option<Vec<u32>>,
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
            intents: NO_INTENTS,
        };
        Whole {
            header,
            summary: Vec::new(),
            fine: Vec::new(),
            blocks: Vec::new(),
        }
        .write(path)
    }

    /// Copies the history at `src` to `dst` for a link whose CID is `cid` (CreateChild's
    /// child, or a parent taking over a committed child's history). The source must have been
    /// flushed.
    pub fn copy_as(src: &Path, dst: &Path, cid: u32) -> Result<()> {
        let mut whole = Whole::read(src)?;
        whole.header.flags &= FLAG_DIRTY;
        whole.header.intents = NO_INTENTS;
        whole.header.cid = cid;
        whole.write(dst)
    }

    /// Resizes the closed history at `path` to `grains` grains (Grow): the new grains count
    /// as changed after the last issued id.
    pub fn grow(path: &Path, grains: u64, cid: u32) -> Result<()> {
        // A crashed session's intents and a foreign write (CID moved) must be settled in the
        // old layout first, as any open would: the rewrite below keeps neither.
        drop(TrackFile::open(path, true, Self::grains_in(path)?, cid)?);
        let mut w = Whole::read(path)?;
        let old = w.header.grains;
        if grains < old {
            return Err(Error::InvalidArg("a tracking history cannot shrink".into()));
        }
        let epoch = (w.header.seq + 1).min(MAX_EPOCH) as u32;
        w.summary.resize(blocks_for(grains) as usize, 0);
        w.fine.resize(chunks_for(grains) as usize, 0);
        w.blocks
            .resize((blocks_for(grains) * BLOCK_BYTES) as usize, 0);
        for g in old..grains {
            let at = (g * EPOCH_BYTES) as usize;
            w.blocks[at..at + 3].copy_from_slice(&epoch.to_le_bytes()[..3]);
            w.summary[(g / GRAINS_PER_BLOCK) as usize] = epoch;
            w.fine[(g / GRAINS_PER_CHUNK) as usize] = epoch;
        }
        if grains > old {
            w.header.flags |= FLAG_DIRTY;
        }
        w.header.flags &= FLAG_DIRTY;
        w.header.grains = grains;
        w.header.region_grains = region_grains_for(grains);
        w.header.intents = NO_INTENTS;
        w.header.cid = cid;
        w.write(path)
    }

    /// The number of grains the history at `path` tracks (from its header).
    pub fn grains_in(path: &Path) -> Result<u64> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let mut hb = vec![0u8; HEADER_BYTES as usize];
        read_exact_at(&file, path, &mut hb, 0)?;
        Ok(Header::decode(&hb, path)?.grains)
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
        if writable && header.grains < grains {
            // A Grow killed between resizing the disk and its history: finish it (the grown
            // grains count as changed; Grow keeps the CID, so a foreign write is still seen).
            crate::log::warn(format!(
                "{}: finishing the change tracking history of an interrupted Grow",
                path.display()
            ));
            drop(file);
            Self::grow(path, grains, cid)?;
            return Self::open(path, writable, grains, cid);
        }
        if header.grains != grains || file_len(&file, path)? < file_bytes(header.grains) {
            return Err(Error::Corrupt(format!(
                "{}: change tracking file does not match the disk's size",
                path.display()
            )));
        }
        let mut sb = vec![0u8; blocks_for(grains) as usize * 4];
        read_exact_at(&file, path, &mut sb, HEADER_BYTES)?;
        let mut t = TrackFile {
            path: path.to_path_buf(),
            file,
            writable,
            header,
            summary: u32s_from(&sb),
            fine: None,
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
            self.header.intents = NO_INTENTS;
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
            // A read-only open cannot make this new id durable, and an id that is not durable
            // could be handed out again for different content (the next open after another
            // foreign write issues the same number): it must not be issued at all.
            self.header.flags = if self.writable { 0 } else { FLAG_DIRTY };
            self.header.cid = cid;
            return self.persist();
        }
        Ok(())
    }

    /// Writes dirty blocks with their summaries, then the header, syncing both (only for
    /// writable opens).
    fn persist(&mut self) -> Result<()> {
        if !self.writable {
            return Ok(());
        }
        let g = self.header.grains;
        let mut dirty: Vec<u64> = self.dirty_blocks.drain().collect();
        dirty.sort_unstable();
        for b in &dirty {
            let block = &self.blocks[b];
            let mut bytes = Vec::with_capacity(BLOCK_BYTES as usize);
            for e in block.iter() {
                bytes.extend_from_slice(&e.to_le_bytes()[..3]);
            }
            write_all_at(
                &self.file,
                &self.path,
                &bytes,
                blocks_offset(g) + b * BLOCK_BYTES,
            )?;
            let fine = self
                .fine
                .as_ref()
                .expect("marked blocks load the fine summary");
            let chunks = (b * CHUNKS_PER_BLOCK) as usize
                ..(((b + 1) * CHUNKS_PER_BLOCK).min(chunks_for(g))) as usize;
            let fine_bytes: Vec<u8> = fine[chunks.clone()]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect();
            write_all_at(
                &self.file,
                &self.path,
                &fine_bytes,
                fine_offset(g) + chunks.start as u64 * 4,
            )?;
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

    /// The fine summary, read whole on first use.
    fn fine(&mut self) -> Result<&mut Vec<u32>> {
        if self.fine.is_none() {
            let g = self.header.grains;
            let mut bytes = vec![0u8; chunks_for(g) as usize * 4];
            read_exact_at(&self.file, &self.path, &mut bytes, fine_offset(g))?;
            self.fine = Some(u32s_from(&bytes));
        }
        Ok(self.fine.as_mut().expect("loaded above"))
    }

    fn block(&mut self, b: u64) -> Result<&mut Box<[u32]>> {
        if !self.blocks.contains_key(&b) {
            let mut bytes = vec![0u8; BLOCK_BYTES as usize];
            if self.summary[b as usize] != 0 {
                let off = blocks_offset(self.header.grains) + b * BLOCK_BYTES;
                read_exact_at(&self.file, &self.path, &mut bytes, off)?;
            }
            self.blocks.insert(b, epochs_of(&bytes).collect());
        }
        Ok(self.blocks.get_mut(&b).expect("inserted above"))
    }

    /// Sets grains `[first, last)` to the epoch of the next id, in memory.
    fn mark(&mut self, first: u64, last: u64) -> Result<()> {
        let epoch = (self.header.seq + 1) as u32;
        self.fine()?;
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
            let fine = self.fine.as_mut().expect("loaded above");
            fine[(g / GRAINS_PER_CHUNK) as usize..end.div_ceil(GRAINS_PER_CHUNK) as usize]
                .fill(epoch);
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
        let mut new: Vec<u64> = (first / rg..last.div_ceil(rg))
            .filter(|r| !self.intended.contains(r))
            .collect();
        // A writer moving forward region by region (a restore, a sequential copy) would pay
        // one synced header per region: declare the next few with the same sync. After a
        // crash they count as changed too, a superset as for any intended region.
        if let Some(&last_new) = new.last()
            && new[0] > 0
            && self.intended.contains(&(new[0] - 1))
        {
            let regions = self.header.grains.div_ceil(rg);
            new.extend(
                (last_new + 1..(last_new + 1 + SEQUENTIAL_INTENT_AHEAD).min(regions))
                    .filter(|r| !self.intended.contains(r)),
            );
        }
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
        self.sync(cid, false)
    }

    /// Flush, then mark the session closed.
    pub fn close(&mut self, cid: u32) -> Result<()> {
        self.sync(cid, true)
    }

    /// Flush, and with `end_session` the session's end in the same header write: the epochs
    /// are synced before the header that clears the intents (and ends the session) is written.
    fn sync(&mut self, cid: u32, end_session: bool) -> Result<()> {
        if !self.writable {
            return Ok(());
        }
        let changed = !self.dirty_blocks.is_empty() || !self.intended.is_empty();
        let header_stale =
            end_session && (self.header.flags & FLAG_SESSION_OPEN != 0 || self.header.cid != cid);
        if !changed && !header_stale {
            return Ok(());
        }
        self.header.intents = NO_INTENTS;
        if end_session {
            self.header.flags &= !FLAG_SESSION_OPEN;
        }
        self.header.cid = cid;
        self.intended.clear();
        self.persist()
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

    /// Grain runs in `[first, last)` whose epoch is above `since` (each run: first grain,
    /// grains). Only the chunks whose fine summary is above `since` are read, neighbours in
    /// the file with one read, so the cost follows what changed, not the disk's size.
    pub fn changed_since(&mut self, since: u64, first: u64, last: u64) -> Result<Vec<(u64, u64)>> {
        let last = last.min(self.header.grains);
        let mut candidates: Vec<u64> = Vec::new();
        let mut b = first / GRAINS_PER_BLOCK;
        while b * GRAINS_PER_BLOCK < last {
            if u64::from(self.summary[b as usize]) > since {
                let lo = (b * CHUNKS_PER_BLOCK).max(first / GRAINS_PER_CHUNK);
                let hi = ((b + 1) * CHUNKS_PER_BLOCK).min(last.div_ceil(GRAINS_PER_CHUNK));
                let fine = self.fine()?;
                candidates.extend((lo..hi).filter(|&c| u64::from(fine[c as usize]) > since));
            }
            b += 1;
        }
        let mut runs: Vec<(u64, u64)> = Vec::new();
        let mut push = |i: u64| match runs.last_mut() {
            Some((s, n)) if *s + *n == i => *n += 1,
            _ => runs.push((i, 1)),
        };
        let mut i = 0;
        while i < candidates.len() {
            // Chunks whose block is in memory (possibly newer than the file) are read there;
            // the others in groups of neighbours, one read per group.
            let c = candidates[i];
            let block = c / CHUNKS_PER_BLOCK;
            if let Some(epochs) = self.blocks.get(&block) {
                let base = block * GRAINS_PER_BLOCK;
                for g in grains_of(c, first, last) {
                    if u64::from(epochs[(g - base) as usize]) > since {
                        push(g);
                    }
                }
                i += 1;
                continue;
            }
            let mut j = i + 1;
            while j < candidates.len()
                && candidates[j] - candidates[j - 1] <= GROUP_GAP_CHUNKS
                && !self
                    .blocks
                    .contains_key(&(candidates[j] / CHUNKS_PER_BLOCK))
            {
                j += 1;
            }
            let (c0, c1) = (c, candidates[j - 1] + 1);
            let g0 = c0 * GRAINS_PER_CHUNK;
            let g1 = (c1 * GRAINS_PER_CHUNK).min(self.header.grains);
            let mut bytes = vec![0u8; ((g1 - g0) * EPOCH_BYTES) as usize];
            let off = blocks_offset(self.header.grains) + g0 * EPOCH_BYTES;
            read_exact_at(&self.file, &self.path, &mut bytes, off)?;
            for &cc in &candidates[i..j] {
                for g in grains_of(cc, first, last) {
                    let at = ((g - g0) * EPOCH_BYTES) as usize;
                    let e = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], 0]);
                    if u64::from(e) > since {
                        push(g);
                    }
                }
            }
            i = j;
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

/// Regions declared ahead of a writer that moves forward (see `before_write`).
const SEQUENTIAL_INTENT_AHEAD: u64 = 7;

/// Chunks this close in the file are read together: reading the gap costs less than a
/// second system call (16 chunks of epochs = 3 KiB).
const GROUP_GAP_CHUNKS: u64 = 16;

/// The grains of chunk `c` inside `[first, last)`.
fn grains_of(c: u64, first: u64, last: u64) -> std::ops::Range<u64> {
    (c * GRAINS_PER_CHUNK).max(first)..((c + 1) * GRAINS_PER_CHUNK).min(last)
}

/// The 24-bit epochs of a run of grains.
fn epochs_of(bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
    bytes
        .chunks_exact(EPOCH_BYTES as usize)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], 0]))
}
