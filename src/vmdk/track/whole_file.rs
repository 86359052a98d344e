//! Whole-file operations on a closed tracking history: a new file, a copy for another link,
//! a fork for CreateChild's child, a Grow. Each file is written complete under a temporary
//! name, then stamped with its own identity (see `TrackFile::open`).

use std::fs::{File, OpenOptions};
use std::path::Path;

use super::{ChangeId, TrackFile};
use crate::error::{Error, Result};
use crate::vmdk::fileio::{sync_data, write_all_at};
use crate::vmdk::track_layout::{
    BLOCK_BYTES, EPOCH_BYTES, FLAG_DIRTY, FLAG_HANDED_OUT, GRAINS_PER_BLOCK, GRAINS_PER_CHUNK,
    Header, MAX_EPOCH, NO_INTENTS, Whole, blocks_for, chunks_for, region_grains_for,
};

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
            session_cid: cid,
            branch_from: 0,
            lineage: Vec::new(),
            file_id: (0, 0),
        };
        Whole {
            header,
            summary: Vec::new(),
            fine: Vec::new(),
            blocks: Vec::new(),
        }
        .write(path)?;
        Self::stamp(path)
    }

    /// Records in the header of the file at `path` which file it is (device, inode), so a
    /// copy of it is recognised (see `open`). Run after every whole-file rewrite.
    fn stamp(path: &Path) -> Result<()> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        file.lock().map_err(|e| Error::io(path, e))?;
        let stamped = (|| {
            let mut h = Self::read_header(&file, path)?;
            h.file_id = file_id_of(&file, path)?;
            write_all_at(&file, path, &h.encode(), 0)?;
            sync_data(&file, path)
        })();
        let _ = file.unlock();
        stamped
    }

    /// Copies the history at `src` to `dst` for a parent (CID `cid`) taking over its committed
    /// child's history. `parent_branch` is the branch the parent's own history had: the
    /// parent takes it back if the child forked from it and handed out no id of its own (see
    /// `track_id::rejoin`). The source must have been flushed.
    pub fn copy_as(
        src: &Path,
        dst: &Path,
        cid: u32,
        parent_branch: Option<[u8; 16]>,
    ) -> Result<()> {
        let mut whole = Whole::read(src)?;
        if let Some(branch) = parent_branch {
            crate::vmdk::track_id::rejoin(&mut whole.header, branch);
        }
        whole.header.flags &= FLAG_DIRTY | FLAG_HANDED_OUT;
        whole.header.intents = NO_INTENTS;
        whole.header.cid = cid;
        whole.header.session_cid = cid;
        whole.write(dst)?;
        Self::stamp(dst)
    }

    /// Writes at `dst` a new branch `uuid` of the history at `src` for CreateChild's child
    /// (CID `cid`). The source's content must have its final id (issued, not dirty): ids up
    /// to it stay answerable on the child; ids the source issues later are refused there.
    pub fn fork(src: &Path, dst: &Path, cid: u32, uuid: [u8; 16]) -> Result<ChangeId> {
        let mut whole = Whole::read(src)?;
        if whole.header.flags & FLAG_DIRTY != 0 {
            return Err(Error::InvalidArg(format!(
                "{}: the parent's content has no final change id; cannot fork its history",
                src.display()
            )));
        }
        let final_id = ChangeId {
            uuid: whole.header.uuid,
            seq: whole.header.seq,
        };
        crate::vmdk::track_id::fork(&mut whole.header, uuid);
        whole.header.flags = 0;
        whole.header.intents = NO_INTENTS;
        whole.header.cid = cid;
        whole.header.session_cid = cid;
        whole.write(dst)?;
        Self::stamp(dst)?;
        Ok(final_id)
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
        w.header.flags &= FLAG_DIRTY | FLAG_HANDED_OUT;
        w.header.grains = grains;
        w.header.region_grains = region_grains_for(grains);
        w.header.intents = NO_INTENTS;
        w.header.cid = cid;
        w.header.session_cid = cid;
        w.write(path)?;
        Self::stamp(path)
    }
}

/// Which file `file` is: (device, inode).
pub(super) fn file_id_of(file: &File, path: &Path) -> Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = file.metadata().map_err(|e| Error::io(path, e))?;
    Ok((m.dev(), m.ino()))
}
