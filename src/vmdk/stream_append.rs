//! Writing a streamOptimized disk after `Create`: strictly sequential writes. Each grain is
//! compressed once it is complete (or when a later grain is written), appended after the last
//! grain, and Flush/Close rewrite the tail: grain tables, the grain directory, the footer and
//! the end-of-stream marker (VMware's layout, as the stream writer makes it). Writes that go
//! backwards, or into a grain already stored, are refused: the format cannot take them.

use std::fs::File;
use std::path::Path;

use flate2::{Compress, Compression};

use super::fileio::{read_exact_at, sync_data, write_all_at};
use super::header::{HEADER_SIZE, SparseHeader};
use super::stream_writer::{
    MARKER_FOOTER, MARKER_GD, MARKER_GT, ZLIB_LEVEL, deflate_into, le_bytes, write_marker,
};
use crate::error::{Error, Result};

/// A grain being filled.
pub struct Pending {
    /// Its grain number.
    pub grain: u64,
    buf: Vec<u8>,
}

/// The append state of one stream extent during a write session.
pub struct StreamAppend {
    /// Sector where the next grain marker goes (just after the last stored grain).
    data_end: u64,
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
    /// Starts appending after the last stored grain. `markers` are the sectors of every stored
    /// grain marker (from the grain tables).
    pub fn start(
        file: &File,
        path: &Path,
        header: &SparseHeader,
        markers: &[u64],
    ) -> Result<StreamAppend> {
        let mut data_end = header.overhead;
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
            data_end,
            pending: None,
            last,
            deflate: Compress::new(Compression::new(ZLIB_LEVEL), true),
        })
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
        let at = self.data_end;
        write_all_at(file, path, &out, at * 512)?;
        self.data_end += (out.len() / 512) as u64;
        Ok(Some(at))
    }

    /// Writes the tail after the last grain: each grain table in use (with its marker), the
    /// grain directory, the footer and the end-of-stream marker; cuts the file there and syncs.
    /// Returns the new directory (entries = table sectors).
    pub fn write_tail(
        &self,
        file: &File,
        path: &Path,
        header: &SparseHeader,
        tables: &[Option<Box<[u32]>>],
    ) -> Result<Vec<u32>> {
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
        let mut bytes = le_bytes(&gd);
        bytes.resize(header.gd_sectors() as usize * 512, 0);
        out.extend_from_slice(&bytes);
        write_marker(&mut out, 1, MARKER_FOOTER).map_err(io)?;
        let footer = SparseHeader {
            gd_offset,
            unclean_shutdown: false,
            ..header.clone()
        };
        out.extend_from_slice(&footer.encode()[..HEADER_SIZE]);
        out.extend_from_slice(&[0u8; 512]);
        write_all_at(file, path, &out, self.data_end * 512)?;
        file.set_len(self.data_end * 512 + out.len() as u64)
            .map_err(io)?;
        sync_data(file, path)?;
        Ok(gd)
    }
}
