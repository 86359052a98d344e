//! Walking a streamOptimized extent marker by marker, from the end of its metadata area to the
//! end of the file: an inventory of every grain (its LBA comes from its own marker) and every
//! metadata marker, and where the stream stops being whole.
//!
//! The walk does not trust the grain directory: it is what the check compares the directory
//! against, and what salvage rebuilds the directory from when the directory is gone (a stream
//! cut short in transfer loses its tables and footer first, since they come last).
//!
//! Sectors that are all zeros are skipped: they are end-of-stream markers and the padding some
//! writers leave after them (qemu pads, and our appender leaves a gap before its footer copy).
//! A sector that starts with the sparse magic is a stale footer copy left by an interrupted
//! append and is skipped too. Anything else is a marker: a grain marker (non-zero size) or a
//! metadata marker (size 0, then a type: 1 grain table, 2 grain directory, 3 footer, followed
//! by as many sectors as its first field says).

use std::fs::File;
use std::path::Path;

use crate::error::Result;
use crate::vmdk::fileio::read_at_zero_fill;
use crate::vmdk::header::SparseHeader;
use crate::vmdk::markers::{MARKER_FOOTER, MARKER_GD, MARKER_GT};

const SECTOR: u64 = 512;
/// Bytes of a grain marker before its compressed data: u64 LBA, u32 size.
pub(super) const GRAIN_HEAD: u64 = 12;
/// Bytes read at once while skipping zero sectors.
const SKIP_CHUNK: usize = 1 << 20;

/// One complete grain found in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Grain {
    /// Sector of its marker.
    pub at: u64,
    /// Its first virtual sector, as its marker says.
    pub lba: u64,
    /// Bytes of compressed data after the 12-byte marker head.
    pub size: u32,
}

impl Grain {
    /// Bytes the marker and its data take (without the padding to a sector).
    pub fn bytes(&self) -> u64 {
        GRAIN_HEAD + u64::from(self.size)
    }

    /// Sectors the grain takes in the file, padding included.
    pub fn sectors(&self) -> u64 {
        self.bytes().div_ceil(SECTOR)
    }
}

/// A metadata marker found in the stream.
#[derive(Debug, Clone, Copy)]
pub(super) struct Meta {
    /// Sector of the marker.
    pub at: u64,
    /// Marker type (1 grain table, 2 grain directory, 3 footer, others unknown).
    pub kind: u32,
}

/// Where the walk stopped before the end of the file, and why.
#[derive(Debug, Clone)]
pub(super) enum Stop {
    /// The file ends inside an item: the stream was cut at `len` bytes.
    Cut {
        /// Sector where the incomplete item starts.
        at: u64,
        /// What the item is ("grain marker for LBA 1024", "grain table", ...).
        what: String,
        /// The LBA of an incomplete grain whose marker head survived.
        lba: Option<u64>,
    },
    /// A sector that cannot be a marker: the walk cannot go on without guessing.
    Garbage {
        /// Sector of the bad marker.
        at: u64,
        /// Why it cannot be a marker.
        why: String,
    },
}

/// The inventory of one stream.
#[derive(Debug, Default)]
pub(super) struct Scan {
    /// Complete grains, in file order.
    pub grains: Vec<Grain>,
    /// Complete metadata markers, in file order (unknown types included).
    pub metas: Vec<Meta>,
    /// Stale footer header copies skipped (sector numbers).
    pub stale_headers: Vec<u64>,
    /// Where the walk stopped early, if it did.
    pub stop: Option<Stop>,
    /// End of the last complete item, in bytes.
    pub good_end: u64,
}

/// The header fields the walk needs to judge a grain marker.
pub(super) struct Geometry {
    /// Virtual sectors of the extent.
    pub capacity: u64,
    /// Sectors per grain.
    pub grain_sectors: u64,
}

impl Geometry {
    /// Largest compressed size a grain of this size can have (zlib's worst case is a few bytes
    /// per 16 KiB; the same bound the reader applies).
    pub fn max_packed(&self) -> u64 {
        let g = self.grain_sectors * SECTOR;
        g + g / 8 + 1024
    }
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

/// Walks the stream from sector `from` to `len` bytes.
pub(super) fn scan(file: &File, path: &Path, len: u64, from: u64, g: &Geometry) -> Result<Scan> {
    let mut s = Scan {
        good_end: (from * SECTOR).min(len),
        ..Scan::default()
    };
    let mut at = from;
    let mut sector = [0u8; SECTOR as usize];
    while at * SECTOR < len {
        read_at_zero_fill(file, path, &mut sector, at * SECTOR)?;
        let avail = len - at * SECTOR;
        if sector.iter().all(|&b| b == 0) {
            // At least one sector on, even if the file changed under us since the read above.
            at = skip_zeros(file, path, len, at)?.max(at + 1);
            continue;
        }
        if SparseHeader::has_magic(&sector) {
            s.stale_headers.push(at);
            at += 1;
            continue;
        }
        if avail < GRAIN_HEAD {
            s.stop = Some(Stop::Cut {
                at,
                what: "marker".into(),
                lba: None,
            });
            return Ok(s);
        }
        let val = u64_at(&sector, 0);
        let size = u32_at(&sector, 8);
        if size != 0 {
            let grain = Grain { at, lba: val, size };
            if u64::from(size) > g.max_packed() {
                s.stop = Some(Stop::Garbage {
                    at,
                    why: format!(
                        "a grain marker claiming {size} compressed bytes (a grain of {} sectors never takes more than {})",
                        g.grain_sectors,
                        g.max_packed()
                    ),
                });
                return Ok(s);
            }
            if !val.is_multiple_of(g.grain_sectors) || val >= g.capacity {
                s.stop = Some(Stop::Garbage {
                    at,
                    why: format!(
                        "a grain marker for LBA {val}, which is {} (capacity {} sectors, grains of {})",
                        if val >= g.capacity {
                            "beyond the capacity"
                        } else {
                            "not at a grain boundary"
                        },
                        g.capacity,
                        g.grain_sectors
                    ),
                });
                return Ok(s);
            }
            if at * SECTOR + grain.bytes() > len {
                s.stop = Some(Stop::Cut {
                    at,
                    what: format!("the grain for LBA {val}"),
                    lba: Some(val),
                });
                return Ok(s);
            }
            s.grains.push(grain);
            s.good_end = at * SECTOR + grain.bytes();
            at += grain.sectors();
            continue;
        }
        if avail < 16 {
            s.stop = Some(Stop::Cut {
                at,
                what: "marker".into(),
                lba: None,
            });
            return Ok(s);
        }
        let kind = u32_at(&sector, 12);
        let end = at.checked_add(1).and_then(|a| a.checked_add(val));
        match end {
            Some(end) if end.checked_mul(SECTOR).is_some_and(|e| e <= len) => {
                s.metas.push(Meta { at, kind });
                s.good_end = end * SECTOR;
                at = end;
            }
            _ => {
                s.stop = Some(Stop::Cut {
                    at,
                    what: format!("{} of {val} sectors", marker_name(kind)),
                    lba: None,
                });
                return Ok(s);
            }
        }
    }
    Ok(s)
}

/// A marker type as words.
pub(super) fn marker_name(kind: u32) -> String {
    match kind {
        MARKER_GT => "a grain table".into(),
        MARKER_GD => "a grain directory".into(),
        MARKER_FOOTER => "a footer".into(),
        other => format!("a marker of unknown type {other}"),
    }
}

/// The first sector at or after `at` that is not all zeros, or the end of the file.
fn skip_zeros(file: &File, path: &Path, len: u64, at: u64) -> Result<u64> {
    let mut buf = vec![0u8; SKIP_CHUNK];
    let mut pos = at * SECTOR;
    while pos < len {
        let n = ((len - pos) as usize).min(SKIP_CHUNK);
        read_at_zero_fill(file, path, &mut buf[..n], pos)?;
        if let Some(i) = buf[..n].iter().position(|&b| b != 0) {
            return Ok((pos + i as u64) / SECTOR);
        }
        pos += n as u64;
    }
    Ok(len.div_ceil(SECTOR))
}
