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

use super::fileio::{file_len, random_u64, read_exact_at, sync_data, write_all_at};
pub use super::track_id::ChangeId;
use super::track_id::id_of;
pub(crate) use super::track_layout::MAX_EPOCH;

/// Queries: which grains changed since an id.
mod query;
/// Whole-file operations: create, copy, fork, grow.
mod whole_file;
use super::track_layout::{
    BLOCK_BYTES, CHUNKS_PER_BLOCK, EPOCH_BYTES, FLAG_DIRTY, FLAG_HANDED_OUT, FLAG_SESSION_OPEN,
    GRAINS_PER_BLOCK, GRAINS_PER_CHUNK, HEADER_BYTES, Header, NO_INTENTS, REGIONS, blocks_for,
    blocks_offset, chunks_for, file_bytes, fine_offset, u32s_from,
};
use crate::error::{Error, Result};
use whole_file::file_id_of;

/// DDB key naming a link's tracking file (beside its descriptor). VMware's own
/// `changeTrackPath` is never written: its format is undocumented.
pub const TRACKING_KEY: &str = "vixdisklibext.changeTrackingFile";

/// Sectors per tracked grain (64 KiB: the largest granularity the answers may have).
pub(crate) const TRACK_GRAIN_SECTORS: u64 = 128;
/// An open tracking file.
pub struct TrackFile {
    path: PathBuf,
    file: File,
    /// The handle writes the disk (before_write is allowed).
    writable: bool,
    /// The tracking file itself is open for writing: settled state and new ids can be made
    /// durable (true for read-only handles too, unless the file system refuses).
    persist_ok: bool,
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
    /// The number of grains the history at `path` tracks (from its header).
    pub fn grains_in(path: &Path) -> Result<u64> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        Ok(Self::read_header(&file, path)?.grains)
    }

    /// Opens the tracking file of a link with `grains` grains whose CID is now `cid`.
    /// A crashed session is recovered (intended regions count as changed); a CID that moved
    /// without a session of ours means another program wrote the disk: older ids become
    /// unanswerable. Writes (`before_write`) are allowed only if `writable`.
    ///
    /// A read-only handle opens the tracking file for writing all the same (it never writes
    /// the disk's content): settling and new ids are made durable under an exclusive lock of
    /// the tracking file alone, so readers of one disk, in any process, agree on its ids.
    pub fn open(path: &Path, writable: bool, grains: u64, cid: u32) -> Result<TrackFile> {
        let (file, persist_ok) = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(f) => (f, true),
            Err(e)
                if !writable
                    && matches!(
                        e.kind(),
                        std::io::ErrorKind::PermissionDenied
                            | std::io::ErrorKind::ReadOnlyFilesystem
                    ) =>
            {
                let f = File::open(path).map_err(|e| Error::io(path, e))?;
                (f, false)
            }
            Err(e) => return Err(Error::io(path, e)),
        };
        let locked = if persist_ok {
            file.lock()
        } else {
            file.lock_shared()
        };
        locked.map_err(|e| Error::io(path, e))?;
        let opened = Self::open_locked(path, file, writable, persist_ok, grains, cid);
        if let Ok(t) = &opened {
            let _ = t.file.unlock();
        }
        opened
    }

    fn open_locked(
        path: &Path,
        file: File,
        writable: bool,
        persist_ok: bool,
        grains: u64,
        cid: u32,
    ) -> Result<TrackFile> {
        let header = Self::read_header(&file, path)?;
        if writable && header.grains < grains {
            // A Grow killed between resizing the disk and its history: finish it (the grown
            // grains count as changed; Grow keeps the CID, so a foreign write is still seen).
            crate::log::warn(format!(
                "{}: finishing the change tracking history of an interrupted Grow",
                path.display()
            ));
            let _ = file.unlock();
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
            persist_ok,
            header,
            summary: u32s_from(&sb),
            fine: None,
            blocks: HashMap::new(),
            dirty_blocks: HashSet::new(),
            intended: HashSet::new(),
        };
        t.check_identity()?;
        t.recover(cid)?;
        Ok(t)
    }

    /// A tracking file that is not the one its header was written in was copied (with its
    /// disk, or restored from a backup): the copy and the original would otherwise go on
    /// issuing the same ids for different contents. The copy starts a branch of its own; ids
    /// issued before the copy stay answerable on it (as after CreateChild).
    fn check_identity(&mut self) -> Result<()> {
        let here = file_id_of(&self.file, &self.path)?;
        if !self.persist_ok || self.header.file_id == here {
            return Ok(());
        }
        if self.header.file_id != (0, 0) {
            crate::log::warn(format!(
                "{}: the change tracking file was copied or restored; this copy continues \
                 on a branch of its own (ids issued before the copy stay answerable)",
                self.path.display()
            ));
            let mut uuid = [0u8; 16];
            uuid[..8].copy_from_slice(&random_u64().to_le_bytes());
            uuid[8..].copy_from_slice(&random_u64().to_le_bytes());
            super::track_id::fork(&mut self.header, uuid);
        }
        self.header.file_id = here;
        self.write_header()
    }

    fn read_header(file: &File, path: &Path) -> Result<Header> {
        let mut hb = vec![0u8; HEADER_BYTES as usize];
        read_exact_at(file, path, &mut hb, 0)?;
        Header::decode(&hb, path)
    }

    fn recover(&mut self, cid: u32) -> Result<()> {
        let h = &self.header;
        if h.flags & FLAG_SESSION_OPEN != 0 {
            // Our crashed session may have left the CID it had or the one it was giving the
            // link; any other CID was written by another program afterwards.
            let foreign = cid != h.cid && cid != h.session_cid;
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
            self.header.flags = (self.header.flags & FLAG_HANDED_OUT) | FLAG_DIRTY;
            self.header.intents = NO_INTENTS;
            if !foreign {
                self.header.cid = cid;
                self.header.session_cid = cid;
                return self.persist();
            }
        }
        let h = &self.header;
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
            self.header.flags &= FLAG_HANDED_OUT;
            if !self.persist_ok {
                self.header.flags |= FLAG_DIRTY;
            }
            self.header.cid = cid;
            self.header.session_cid = cid;
            return self.persist();
        }
        Ok(())
    }

    /// Writes dirty blocks with their summaries, then the header, syncing both (only when
    /// the tracking file is open for writing).
    fn persist(&mut self) -> Result<()> {
        if !self.persist_ok {
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
    /// `session_cid` is the CID the link's write session gives it (see `Link::session_cid`),
    /// recorded with the session so a later open can tell our crashed session's CID change
    /// from another program's.
    pub fn before_write(&mut self, sector: u64, count: u64, session_cid: u32) -> Result<()> {
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
        if !new.is_empty()
            || self.header.flags & FLAG_SESSION_OPEN == 0
            || self.header.session_cid != session_cid
        {
            self.header.flags |= FLAG_SESSION_OPEN;
            self.header.session_cid = session_cid;
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
        if end_session {
            self.header.session_cid = cid;
        }
        self.intended.clear();
        self.persist()
    }

    /// The id of the content now: the last one issued, or a new one if anything was
    /// written since (made durable before it is returned).
    /// A read-only handle issues it under the tracking file's lock, re-reading the header
    /// first: another reader of the same content may have issued its id already.
    pub fn current_id(&mut self) -> Result<ChangeId> {
        self.issue(true)
    }

    /// The content's id made durable without handing it out (CreateChild's final id of the
    /// frozen parent): a Commit may give the branch back to its parent if none of its own
    /// ids was ever handed out (see `copy_as`).
    pub fn finalize(&mut self) -> Result<ChangeId> {
        self.issue(false)
    }

    fn issue(&mut self, hand_out: bool) -> Result<ChangeId> {
        let h = &self.header;
        let needs_write = h.flags & FLAG_DIRTY != 0
            || (hand_out && h.flags & FLAG_HANDED_OUT == 0 && id_of(h).uuid == h.uuid);
        if !needs_write {
            return Ok(id_of(&self.header));
        }
        if !self.persist_ok {
            let text = format!(
                "{}: the change tracking file cannot be written, so no new change id can \
                 be made durable; do a full backup",
                self.path.display()
            );
            crate::log::warn(&text);
            return Err(Error::ReadOnly(text));
        }
        if !self.writable {
            return self.issue_read_only(hand_out);
        }
        issue_into(&mut self.header, hand_out);
        self.persist()?;
        Ok(id_of(&self.header))
    }

    /// `issue` for a handle that does not write the disk: nothing but ids can change the
    /// header while readers share the disk, so the file's header is the truth.
    fn issue_read_only(&mut self, hand_out: bool) -> Result<ChangeId> {
        self.file.lock().map_err(|e| Error::io(&self.path, e))?;
        let issued = (|| {
            let mut h = Self::read_header(&self.file, &self.path)?;
            if issue_into(&mut h, hand_out) {
                write_all_at(&self.file, &self.path, &h.encode(), 0)?;
                sync_data(&self.file, &self.path)?;
            }
            Ok(h)
        })();
        let _ = self.file.unlock();
        self.header = issued?;
        Ok(id_of(&self.header))
    }

    /// Checks that `id` can be answered by this history (see `track_id`). A read-only handle
    /// first re-reads the header: another reader may have issued a newer id.
    pub fn check_id(&mut self, id: &ChangeId) -> Result<()> {
        if !self.writable && self.persist_ok && id.seq > self.header.seq {
            self.file
                .lock_shared()
                .map_err(|e| Error::io(&self.path, e))?;
            let h = Self::read_header(&self.file, &self.path);
            let _ = self.file.unlock();
            let h = h?;
            if h.uuid == self.header.uuid && h.seq > self.header.seq {
                self.header.seq = h.seq;
                self.header.flags = h.flags;
            }
        }
        super::track_id::check(&self.header, id)
    }

    /// Grains tracked.
    pub fn grains(&self) -> u64 {
        self.header.grains
    }

    /// The history's UUID.
    pub fn uuid(&self) -> [u8; 16] {
        self.header.uuid
    }

    /// The branch UUID of the history at `path` (from its header).
    pub fn branch_in(path: &Path) -> Result<[u8; 16]> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        Ok(Self::read_header(&file, path)?.uuid)
    }
}

/// Gives the content of `h` its id (a new number if it was written since the last one) and,
/// with `hand_out`, notes when the branch's own UUID goes out. True if `h` changed.
fn issue_into(h: &mut Header, hand_out: bool) -> bool {
    let mut changed = false;
    if h.flags & FLAG_DIRTY != 0 {
        h.seq += 1;
        h.flags &= !FLAG_DIRTY;
        changed = true;
    }
    if hand_out && h.flags & FLAG_HANDED_OUT == 0 && id_of(h).uuid == h.uuid {
        h.flags |= FLAG_HANDED_OUT;
        changed = true;
    }
    changed
}

/// Regions declared ahead of a writer that moves forward (see `before_write`).
const SEQUENTIAL_INTENT_AHEAD: u64 = 7;

/// The 24-bit epochs of a run of grains.
fn epochs_of(bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
    bytes
        .chunks_exact(EPOCH_BYTES as usize)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], 0]))
}
