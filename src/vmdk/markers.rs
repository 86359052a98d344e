//! streamOptimized markers and grain compression, shared by the stream writer (new streams)
//! and stream appends (sequential writes into an existing stream).

use std::io::{self, Write};

use flate2::{Compress, FlushCompress, Status};

const SECTOR: usize = 512;

/// zlib level: 6 is what qemu, VirtualBox and VMware's own tools use.
pub(crate) const ZLIB_LEVEL: u32 = 6;

/// Metadata marker types.
pub(crate) const MARKER_GT: u32 = 1;
pub(crate) const MARKER_GD: u32 = 2;
pub(crate) const MARKER_FOOTER: u32 = 3;

/// Appends `input` as one complete zlib stream (RFC 1950) to `out`.
pub(crate) fn deflate_into(
    deflate: &mut Compress,
    input: &[u8],
    out: &mut Vec<u8>,
) -> io::Result<()> {
    deflate.reset();
    // Stored blocks cost 5 bytes per 64 KiB, zlib adds 6: this is nearly always enough at once.
    out.reserve(input.len() + input.len() / 64 + 64);
    let mut consumed = 0;
    loop {
        let before = deflate.total_in();
        let status = deflate
            .compress_vec(&input[consumed..], out, FlushCompress::Finish)
            .map_err(|e| io::Error::other(format!("deflate: {e}")))?;
        consumed += (deflate.total_in() - before) as usize;
        match status {
            Status::StreamEnd => return Ok(()),
            Status::Ok | Status::BufError => out.reserve(input.len().max(4096)),
        }
    }
}

/// Writes a metadata marker sector.
pub(crate) fn write_marker(out: &mut impl Write, num_sectors: u64, kind: u32) -> io::Result<()> {
    let mut m = [0u8; SECTOR];
    m[..8].copy_from_slice(&num_sectors.to_le_bytes());
    m[12..16].copy_from_slice(&kind.to_le_bytes());
    out.write_all(&m)
}

/// Grain-table or directory entries as stored: little-endian u32s.
pub(crate) fn le_bytes(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
