//! The on-disk layout of our change-tracking file (see `track.rs` for what it means).
//!
//! Little-endian, version 3:
//! - a 512-byte header (magic, version, flags, branch UUID, last issued id, oldest
//!   answerable id, grains, the link's CID, region size, 2048 intent bits, the CID the open
//!   session gives the link, the first id of this branch, the lineage: up to 6 ancestor
//!   branches and the ids of each that name an ancestor of this content; the device and inode
//!   of the file itself; FNV-1a sum);
//! - the coarse summary: one u32 per block of 1024 grains (64 MiB), the highest epoch in it,
//!   padded to 512 bytes; always in memory, so queries skip untouched blocks;
//! - the fine summary: one u32 per chunk of 64 grains (4 MiB), the highest epoch in it,
//!   padded to 512 bytes (1 KiB per GiB); loaded when first needed, so a query reads only the
//!   epochs of chunks that changed, whatever the disk's size;
//! - the blocks: 3 bytes (a 24-bit epoch) per 64 KiB grain, 48 KiB per GiB; blocks never
//!   written stay holes.
//!
//! Version 2 (no session CID, no lineage) is read as a branch without ancestors whose session
//! CID is unknown; version 1 (no fine summary) lived only in development builds and is refused.

use std::path::Path;

use super::fileio::{sync_data, write_all_at};
use crate::error::{Error, Result};

pub(crate) const MAGIC: &[u8; 8] = b"VDLTRAK1";
const VERSION: u32 = 3;
/// The previous version, still read (see the module comment).
const VERSION_2: u32 = 2;
pub(crate) const HEADER_BYTES: u64 = 512;
pub(crate) const GRAINS_PER_BLOCK: u64 = 1024;
pub(crate) const GRAINS_PER_CHUNK: u64 = 64;
pub(crate) const CHUNKS_PER_BLOCK: u64 = GRAINS_PER_BLOCK / GRAINS_PER_CHUNK;
pub(crate) const EPOCH_BYTES: u64 = 3;
pub(crate) const BLOCK_BYTES: u64 = GRAINS_PER_BLOCK * EPOCH_BYTES;
/// Largest epoch a 24-bit entry holds; the history is full after this many ids.
pub(crate) const MAX_EPOCH: u64 = (1 << 24) - 1;
pub(crate) const REGIONS: u64 = 2048;
const MIN_REGION_GRAINS: u64 = 1024; // 64 MiB
pub(crate) const FLAG_SESSION_OPEN: u32 = 1;
pub(crate) const FLAG_DIRTY: u32 = 2;
/// An id with this branch's own UUID was handed out (GetChangeId).
pub(crate) const FLAG_HANDED_OUT: u32 = 4;
pub(crate) const NO_INTENTS: [u8; (REGIONS / 8) as usize] = [0; (REGIONS / 8) as usize];

/// The persistent part of the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub flags: u32,
    pub uuid: [u8; 16],
    pub seq: u64,
    pub valid_from: u64,
    pub grains: u64,
    pub cid: u32,
    pub region_grains: u64,
    pub intents: [u8; (REGIONS / 8) as usize],
    /// The CID the open write session gives (or gave) the link: a crashed session's link may
    /// carry this CID or `cid`; any other means another program wrote it.
    pub session_cid: u32,
    /// The first id of this branch (the fork point; 0 for a branch tracking was turned on in).
    pub branch_from: u64,
    /// Ancestor branches, oldest first (at most `MAX_LINEAGE`).
    pub lineage: Vec<Ancestor>,
    /// The (device, inode) of the file this header was last written into; (0, 0) = not yet
    /// known. A different one means the file was copied (or restored): the copy must not
    /// continue the original's branch.
    pub file_id: (u64, u64),
}

/// An ancestor branch: its ids `uuid/from ..= uuid/to` name contents this branch descends
/// from (`to` is the id its content had when the fork was made).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ancestor {
    pub uuid: [u8; 16],
    pub from: u64,
    pub to: u64,
}

/// Ancestors a header holds; older ones are forgotten (their ids are then refused).
pub(crate) const MAX_LINEAGE: usize = 6;
const FILE_ID_AT: usize = 476;
const LINEAGE_AT: usize = 332;
const ANCESTOR_BYTES: usize = 24;
const SUM_AT: usize = 504;

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_BYTES as usize] {
        let mut b = [0u8; HEADER_BYTES as usize];
        b[0..8].copy_from_slice(MAGIC);
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&self.flags.to_le_bytes());
        b[16..32].copy_from_slice(&self.uuid);
        b[32..40].copy_from_slice(&self.seq.to_le_bytes());
        b[40..48].copy_from_slice(&self.valid_from.to_le_bytes());
        b[48..56].copy_from_slice(&self.grains.to_le_bytes());
        b[56..60].copy_from_slice(&self.cid.to_le_bytes());
        b[60..64].copy_from_slice(&(self.region_grains as u32).to_le_bytes());
        b[64..320].copy_from_slice(&self.intents);
        b[320..324].copy_from_slice(&self.session_cid.to_le_bytes());
        b[324..328].copy_from_slice(&(self.branch_from as u32).to_le_bytes());
        let kept = &self.lineage[self.lineage.len().saturating_sub(MAX_LINEAGE)..];
        b[328..332].copy_from_slice(&(kept.len() as u32).to_le_bytes());
        for (i, a) in kept.iter().enumerate() {
            let at = LINEAGE_AT + i * ANCESTOR_BYTES;
            b[at..at + 16].copy_from_slice(&a.uuid);
            b[at + 16..at + 20].copy_from_slice(&(a.from as u32).to_le_bytes());
            b[at + 20..at + 24].copy_from_slice(&(a.to as u32).to_le_bytes());
        }
        b[FILE_ID_AT..FILE_ID_AT + 8].copy_from_slice(&self.file_id.0.to_le_bytes());
        b[FILE_ID_AT + 8..FILE_ID_AT + 16].copy_from_slice(&self.file_id.1.to_le_bytes());
        let sum = fnv(&b[..SUM_AT]);
        b[SUM_AT..SUM_AT + 8].copy_from_slice(&sum.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8], path: &Path) -> Result<Header> {
        let bad = |m: &str| Error::Corrupt(format!("{}: change tracking file {m}", path.display()));
        if b.len() < HEADER_BYTES as usize || &b[0..8] != MAGIC {
            return Err(bad("has no valid header"));
        }
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"));
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"));
        let version = u32_at(8);
        let sum_ok = match version {
            VERSION => u64_at(SUM_AT) == fnv(&b[..SUM_AT]),
            VERSION_2 => u64_at(320) == fnv(&b[..320]),
            _ => false,
        };
        if !sum_ok {
            return Err(bad("header is damaged or of an unknown version"));
        }
        let mut lineage = Vec::new();
        let (mut session_cid, mut branch_from, mut file_id) = (u32_at(56), 0, (0, 0));
        if version == VERSION {
            file_id = (u64_at(FILE_ID_AT), u64_at(FILE_ID_AT + 8));
            session_cid = u32_at(320);
            branch_from = u64::from(u32_at(324));
            let n = u32_at(328) as usize;
            if n > MAX_LINEAGE {
                return Err(bad("header fields are out of range"));
            }
            for i in 0..n {
                let at = LINEAGE_AT + i * ANCESTOR_BYTES;
                lineage.push(Ancestor {
                    uuid: b[at..at + 16].try_into().expect("16 bytes"),
                    from: u64::from(u32_at(at + 16)),
                    to: u64::from(u32_at(at + 20)),
                });
            }
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
            session_cid,
            branch_from,
            lineage,
            file_id,
        };
        if h.region_grains == 0
            || h.grains.div_ceil(h.region_grains) > REGIONS
            || h.seq > MAX_EPOCH
            || h.branch_from > h.seq
        {
            return Err(bad("header fields are out of range"));
        }
        Ok(h)
    }
}

pub(crate) fn region_grains_for(grains: u64) -> u64 {
    grains.div_ceil(REGIONS).max(MIN_REGION_GRAINS)
}

pub(crate) fn blocks_for(grains: u64) -> u64 {
    grains.div_ceil(GRAINS_PER_BLOCK)
}

pub(crate) fn chunks_for(grains: u64) -> u64 {
    grains.div_ceil(GRAINS_PER_CHUNK)
}

fn padded(bytes: u64) -> u64 {
    bytes.div_ceil(512) * 512
}

/// Where the fine summary starts.
pub(crate) fn fine_offset(grains: u64) -> u64 {
    HEADER_BYTES + padded(blocks_for(grains) * 4)
}

/// Where the blocks start.
pub(crate) fn blocks_offset(grains: u64) -> u64 {
    fine_offset(grains) + padded(chunks_for(grains) * 4)
}

/// The whole file's length.
pub(crate) fn file_bytes(grains: u64) -> u64 {
    blocks_offset(grains) + blocks_for(grains) * BLOCK_BYTES
}

pub(crate) fn u32s_from(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect()
}

fn bytes_from(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A whole tracking file in memory (used by the rare whole-file rewrites: create, copy, grow).
pub(crate) struct Whole {
    pub header: Header,
    /// Coarse summary, one entry per block (empty: all zero).
    pub summary: Vec<u32>,
    /// Fine summary, one entry per chunk (empty: all zero).
    pub fine: Vec<u32>,
    /// The epoch bytes of every block (empty: all zero).
    pub blocks: Vec<u8>,
}

impl Whole {
    /// Reads a whole (closed) tracking file.
    pub fn read(path: &Path) -> Result<Whole> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let header = Header::decode(&bytes, path)?;
        let g = header.grains;
        if (bytes.len() as u64) < file_bytes(g) {
            return Err(Error::Corrupt(format!(
                "{}: change tracking file is truncated",
                path.display()
            )));
        }
        let at = |off: u64, len: u64| &bytes[off as usize..(off + len) as usize];
        Ok(Whole {
            summary: u32s_from(at(HEADER_BYTES, blocks_for(g) * 4)),
            fine: u32s_from(at(fine_offset(g), chunks_for(g) * 4)),
            blocks: at(blocks_offset(g), blocks_for(g) * BLOCK_BYTES).to_vec(),
            header,
        })
    }

    /// Writes a complete tracking file at `path` (under a temporary name, synced, then
    /// renamed: complete or absent).
    pub fn write(&self, path: &Path) -> Result<()> {
        let g = self.header.grains;
        let tmp = super::atomic::temp_name(path);
        let written = (|| {
            // O_EXCL after removing a stale leftover: a symlink planted at the temporary name
            // is removed, never written through.
            super::atomic::remove_stale_temp(&tmp)?;
            let f = super::atomic::create_new_file(&tmp)?;
            super::fileio::set_len(&f, &tmp, file_bytes(g))?;
            write_all_at(&f, &tmp, &self.header.encode(), 0)?;
            if !self.summary.is_empty() {
                write_all_at(&f, &tmp, &bytes_from(&self.summary), HEADER_BYTES)?;
            }
            if !self.fine.is_empty() {
                write_all_at(&f, &tmp, &bytes_from(&self.fine), fine_offset(g))?;
            }
            if !self.blocks.is_empty() {
                write_all_at(&f, &tmp, &self.blocks, blocks_offset(g))?;
            }
            sync_data(&f, &tmp)?;
            super::fileio::rename(&tmp, path).map_err(|e| Error::io(path, e))
        })();
        if written.is_err() {
            let _ = super::fileio::remove_file(&tmp);
        }
        written?;
        super::atomic::sync_dir(path)
    }
}
