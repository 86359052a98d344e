//! Reading compressed (streamOptimized) sparse extents: the footer that carries the real grain
//! directory of GD_AT_END files, and inflating one grain from its grain marker.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::fileio::read_exact_at;
use super::header::{GD_AT_END, HEADER_SIZE, SparseHeader};
use crate::error::{Error, Result};

/// Bytes of a grain marker before the compressed data: u64 LBA, u32 size.
const GRAIN_MARKER_HEADER: usize = 12;

/// For a GD_AT_END header, the header copy in the footer (at end − 1024 bytes, after a footer
/// marker at end − 1536) holds the grain directory's real location. Other headers are returned
/// unchanged.
pub fn resolve_footer(
    file: &File,
    path: &Path,
    header: SparseHeader,
    file_len: u64,
) -> Result<SparseHeader> {
    if header.gd_offset != GD_AT_END {
        return Ok(header);
    }
    if file_len < 3 * 512 + HEADER_SIZE as u64 {
        return Err(Error::InvalidDisk(format!(
            "{}: stream too short for a footer",
            path.display()
        )));
    }
    let mut marker = [0u8; 512];
    read_exact_at(file, path, &mut marker, file_len - 1536)?;
    let marker_type = u32::from_le_bytes(marker[12..16].try_into().expect("4 bytes"));
    if marker_type != 3 {
        return Err(Error::InvalidDisk(format!(
            "{}: no footer marker before the end of the stream",
            path.display()
        )));
    }
    let mut footer = [0u8; HEADER_SIZE];
    read_exact_at(file, path, &mut footer, file_len - 1024)?;
    let real = SparseHeader::decode(&footer, file_len.div_ceil(512)).map_err(|e| match e {
        Error::InvalidDisk(m) => Error::InvalidDisk(format!("{}: footer: {m}", path.display())),
        other => other,
    })?;
    if real.gd_offset == GD_AT_END
        || real.capacity != header.capacity
        || real.grain_sectors != header.grain_sectors
    {
        return Err(Error::InvalidDisk(format!(
            "{}: footer disagrees with the header",
            path.display()
        )));
    }
    Ok(real)
}

/// Inflates the grain whose marker is at `marker_sector` into `grain` (one whole grain; a short
/// final grain is zero-padded).
pub fn inflate_grain(file: &File, path: &Path, marker_sector: u64, grain: &mut [u8]) -> Result<()> {
    let mut head = [0u8; GRAIN_MARKER_HEADER];
    read_exact_at(file, path, &mut head, marker_sector * 512)?;
    let size = u32::from_le_bytes(head[8..12].try_into().expect("4 bytes")) as usize;
    // A compressed grain is never much larger than the grain itself (zlib's worst case is a
    // few bytes per 16 KiB); anything bigger is damage, not data.
    if size == 0 || size > grain.len() + grain.len() / 8 + 1024 {
        return Err(Error::Corrupt(format!(
            "{}: grain marker at sector {marker_sector} claims {size} compressed bytes",
            path.display()
        )));
    }
    let mut packed = vec![0u8; size];
    read_exact_at(
        file,
        path,
        &mut packed,
        marker_sector * 512 + GRAIN_MARKER_HEADER as u64,
    )?;
    let mut decoder = flate2::read::ZlibDecoder::new(&packed[..]);
    let mut filled = 0;
    while filled < grain.len() {
        match decoder.read(&mut grain[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) => {
                return Err(Error::Corrupt(format!(
                    "{}: grain at sector {marker_sector} does not inflate: {e}",
                    path.display()
                )));
            }
        }
    }
    // A stream that inflates past one grain is damage: stop at the grain and say so (one byte
    // more is enough to tell; the rest is never inflated, so time and memory stay bounded).
    if filled == grain.len() {
        let mut extra = [0u8; 1];
        if !matches!(decoder.read(&mut extra), Ok(0)) {
            return Err(Error::Corrupt(format!(
                "{}: grain at sector {marker_sector} inflates to more than one grain ({} bytes)",
                path.display(),
                grain.len()
            )));
        }
    }
    grain[filled..].fill(0);
    Ok(())
}
