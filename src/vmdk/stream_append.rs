//! Writing a streamOptimized disk after `Create`: strictly sequential writes. Each grain is
//! compressed once it is complete (or when a later grain is written) and appended; Flush/Close
//! append a new tail: grain tables, the grain directory, the footer and the end-of-stream
//! marker. Writes that go backwards, or into a grain already stored, are refused: the format
//! cannot take them.
//!
//! Crash safety (docs/decisions.md, "Streams survive a kill"): a tail that a Flush made durable
//! is never overwritten; new grains go after it. Readers (we, qemu, VMware) find the directory
//! through the footer in the last 1536 bytes, so the file must end in a valid footer at every
//! moment. Between flushes it ends in a copy of the durable tail's footer triple (footer marker,
//! footer, end-of-stream) placed a little ahead of the grains, 4 KiB aligned so one write puts
//! all three sectors (a kill cannot leave half of them); grains fill the gap before it and the
//! copy moves further ahead, before the old one is overwritten, when they reach it. A Flush
//! writes the new tail after the last grain, syncs, then cuts the file after it, dropping the
//! copy in one step: before the cut the file reads as of the previous Flush, after it as of
//! this one.

use std::fs::File;
use std::path::Path;

use flate2::{Compress, Compression};

use super::fileio::{file_len, read_exact_at, sync_data, write_all_at};
use super::header::{HEADER_SIZE, SparseHeader};
use super::markers::{
    MARKER_FOOTER, MARKER_GD, MARKER_GT, ZLIB_LEVEL, deflate_into, le_bytes, write_marker,
};
use crate::error::{Error, Result};

/// A grain being filled.
pub struct Pending {
    /// Its grain number.
    pub grain: u64,
    buf: Vec<u8>,
}

/// Sectors of the footer triple: footer marker, footer (a header copy), end-of-stream marker.
const TRIPLE_SECTORS: u64 = 3;
/// Sectors of gap left before a moved footer copy: one move (and one fdatasync) per 16 MiB
/// of compressed grains. The gap is a hole until grains fill it.
const ROOM_SECTORS: u64 = 32768;
/// The footer copy starts on a 4 KiB boundary, so its three sectors share one page and reach
/// the file in one piece even if the process is killed during the write.
const TRIPLE_ALIGN: u64 = 8;

/// The append state of one stream extent during a write session.
pub struct StreamAppend {
    /// Sector where the next grain marker goes: after the last stored grain and after the
    /// durable tail, which is never overwritten.
    data_end: u64,
    /// Sector of the footer triple the file ends with (a copy of `triple` while grains are
    /// appended ahead of the next tail).
    triple_at: u64,
    /// The durable tail's footer triple.
    triple: Vec<u8>,
    /// Grains were appended since the durable tail was written.
    dirty: bool,
    pending: Option<Pending>,
    /// The write position so far: (grain, byte offset in it); later writes must not go below.
    last: Option<(u64, usize)>,
    deflate: Compress,
}

fn refuse(path: &Path, why: &str) -> Error {
    Error::NotSupported(format!(
        "{}: streamOptimized disks take strictly sequential writes ({why})",
        path.display()
    ))
}

impl StreamAppend {
    /// Starts appending after the last stored grain and the durable tail. `header` is the
    /// footer's header (with the real directory offset), `markers` the sectors of every stored
    /// grain marker and `tables` those of every grain table (from the directory).
    pub fn start(
        file: &File,
        path: &Path,
        header: &SparseHeader,
        markers: &[u64],
        tables: &[u64],
    ) -> Result<StreamAppend> {
        let len = file_len(file, path)?;
        if !len.is_multiple_of(512) || len < TRIPLE_SECTORS * 512 {
            return Err(refuse(path, "the file does not end on a sector boundary"));
        }
        let file_sectors = len / 512;
        let triple_at = file_sectors - TRIPLE_SECTORS;
        let mut triple = vec![0u8; (TRIPLE_SECTORS * 512) as usize];
        read_exact_at(file, path, &mut triple, triple_at * 512)?;
        // The durable tail: tables, directory, then (in the layout every writer uses) its own
        // footer triple. Anything after it and before the file's last triple is unflushed
        // data of an interrupted session, which new grains may overwrite.
        let mut data_end =
            (header.gd_offset + header.gd_sectors() + TRIPLE_SECTORS).max(header.overhead);
        for &t in tables {
            data_end = data_end.max(t + header.gt_sectors());
        }
        let mut last = None;
        for &m in markers {
            let mut head = [0u8; 12];
            read_exact_at(file, path, &mut head, m * 512)?;
            let lba = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
            let size = u64::from(u32::from_le_bytes(head[8..12].try_into().expect("4 bytes")));
            data_end = data_end.max(m + (12 + size).div_ceil(512));
            let grain = lba / header.grain_sectors;
            if last.is_none_or(|(g, _)| grain >= g) {
                last = Some((grain, header.grain_sectors as usize * 512));
            }
        }
        Ok(StreamAppend {
            data_end: data_end.min(file_sectors),
            triple_at,
            triple,
            dirty: false,
            pending: None,
            last,
            deflate: Compress::new(Compression::new(ZLIB_LEVEL), true),
        })
    }

    /// Makes sure `sectors` can be written at `data_end` without touching the footer triple
    /// the file ends with: if not, a copy of the durable triple is first written further
    /// ahead (the file then ends there), so the old one may be overwritten.
    fn make_room(&mut self, file: &File, path: &Path, sectors: u64) -> Result<()> {
        if self.data_end + sectors <= self.triple_at {
            return Ok(());
        }
        let at = (self.data_end + sectors + ROOM_SECTORS).next_multiple_of(TRIPLE_ALIGN);
        write_all_at(file, path, &self.triple, at * 512)?;
        // Durable before grains may overwrite the old triple: after a power cut the file must
        // still end in one of them (a kill alone could not reorder the two writes, a power
        // cut can: crash-state explorer, issue 19).
        sync_data(file, path)?;
        self.triple_at = at;
        Ok(())
    }

    /// Makes `grain` the one being filled, at byte `offset`. Refuses positions before the
    /// last write and grains already stored (`stored`). Returns the previous grain when this
    /// one replaces it: the caller appends that with `append_grain`.
    pub fn begin(
        &mut self,
        path: &Path,
        grain: u64,
        offset: usize,
        stored: bool,
        grain_bytes: usize,
    ) -> Result<Option<Pending>> {
        if let Some((g, filled)) = self.last
            && (grain < g || (grain == g && offset < filled))
        {
            return Err(refuse(path, "this write goes back before an earlier one"));
        }
        let mut done = None;
        if self.pending.as_ref().is_some_and(|p| p.grain != grain) {
            done = self.pending.take();
        }
        if self.pending.is_none() {
            if stored {
                return Err(refuse(path, "this grain is already stored"));
            }
            self.pending = Some(Pending {
                grain,
                buf: vec![0u8; grain_bytes],
            });
        }
        Ok(done)
    }

    /// Copies `data` into the grain being filled at byte `offset`.
    pub fn fill(&mut self, offset: usize, data: &[u8]) {
        if let Some(p) = self.pending.as_mut() {
            p.buf[offset..offset + data.len()].copy_from_slice(data);
            self.last = Some((p.grain, offset + data.len()));
        }
    }

    /// Takes the grain being filled, if any.
    pub fn take_pending(&mut self) -> Option<Pending> {
        self.pending.take()
    }

    /// Compresses `p` (its first `valid` bytes; the last grain of a disk may be short) and
    /// appends it; returns the marker's sector, or None for an all-zero grain (left out).
    pub fn append_grain(
        &mut self,
        file: &File,
        path: &Path,
        grain_sectors: u64,
        p: &Pending,
        valid: usize,
    ) -> Result<Option<u64>> {
        let data = &p.buf[..valid];
        if data.iter().all(|&b| b == 0) {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(valid + 512);
        out.extend_from_slice(&(p.grain * grain_sectors).to_le_bytes());
        out.extend_from_slice(&[0u8; 4]);
        deflate_into(&mut self.deflate, data, &mut out).map_err(|e| Error::io(path, e))?;
        let size = (out.len() - 12) as u32;
        out[8..12].copy_from_slice(&size.to_le_bytes());
        out.resize(out.len().next_multiple_of(512), 0);
        let sectors = (out.len() / 512) as u64;
        self.make_room(file, path, sectors)?;
        let at = self.data_end;
        write_all_at(file, path, &out, at * 512)?;
        self.data_end += sectors;
        self.dirty = true;
        Ok(Some(at))
    }

    /// If grains were appended since the durable tail, writes a new one after them: each grain
    /// table in use (with its marker), the grain directory, the footer and the end-of-stream
    /// marker; syncs; then cuts the file after it and syncs again (see the module notes).
    /// Returns the new directory (entries = table sectors), or None if nothing changed.
    pub fn write_tail(
        &mut self,
        file: &File,
        path: &Path,
        header: &SparseHeader,
        tables: &[Option<Box<[u32]>>],
    ) -> Result<Option<Vec<u32>>> {
        if !self.dirty {
            return Ok(None);
        }
        // The grains first: a durable tail must never name grains a power cut lost.
        sync_data(file, path)?;
        let mut out: Vec<u8> = Vec::new();
        let mut pos = self.data_end;
        let sector = |s: u64| {
            u32::try_from(s).map_err(|_| {
                Error::NotSupported(format!("{}: stream beyond 2 TiB", path.display()))
            })
        };
        let mut gd = vec![0u32; tables.len()];
        let io = |e| Error::io(path, e);
        for (i, t) in tables.iter().enumerate() {
            let Some(t) = t.as_ref().filter(|t| t.iter().any(|&e| e != 0)) else {
                continue;
            };
            write_marker(&mut out, header.gt_sectors(), MARKER_GT).map_err(io)?;
            gd[i] = sector(pos + 1)?;
            let mut bytes = le_bytes(t);
            bytes.resize(header.gt_sectors() as usize * 512, 0);
            out.extend_from_slice(&bytes);
            pos += 1 + header.gt_sectors();
        }
        write_marker(&mut out, header.gd_sectors(), MARKER_GD).map_err(io)?;
        let gd_offset = pos + 1;
        sector(gd_offset + header.gd_sectors() + TRIPLE_SECTORS)?;
        let mut bytes = le_bytes(&gd);
        bytes.resize(header.gd_sectors() as usize * 512, 0);
        out.extend_from_slice(&bytes);
        let triple_start = out.len();
        write_marker(&mut out, 1, MARKER_FOOTER).map_err(io)?;
        let footer = SparseHeader {
            gd_offset,
            unclean_shutdown: false,
            ..header.clone()
        };
        out.extend_from_slice(&footer.encode()[..HEADER_SIZE]);
        out.resize(out.len().next_multiple_of(512), 0);
        out.extend_from_slice(&[0u8; 512]);
        let sectors = (out.len() / 512) as u64;
        self.make_room(file, path, sectors)?;
        write_all_at(file, path, &out, self.data_end * 512)?;
        sync_data(file, path)?;
        let end = self.data_end + sectors;
        super::fileio::set_len(file, path, end * 512)?;
        super::fileio::sync_all(file, path)?;
        self.triple = out[triple_start..].to_vec();
        self.data_end = end;
        self.triple_at = end - TRIPLE_SECTORS;
        self.dirty = false;
        Ok(Some(gd))
    }
}
