//! The on-disk layout of a new sparse extent: header, descriptor area, directories and tables.

use std::fs::File;
use std::path::Path;

use super::sectors_to_bytes;
use crate::error::{Error, Result};
use crate::vmdk::fileio::{set_len, sync_data, write_all_at};
use crate::vmdk::header::{HEADER_SIZE, SparseHeader};

/// Creates the metadata of a new sparse extent in `file`: header, descriptor area, redundant and
/// primary grain directories with every grain table pre-allocated (VMware requires it).
pub fn write_new_extent(
    file: &File,
    path: &Path,
    header: &SparseHeader,
    descriptor: Option<&str>,
) -> Result<()> {
    let mut meta = vec![0u8; sectors_to_bytes(header.overhead) as usize];
    meta[..HEADER_SIZE].copy_from_slice(&header.encode());
    if let Some(text) = descriptor {
        let area = sectors_to_bytes(header.descriptor_size) as usize;
        if text.len() > area {
            return Err(Error::InvalidArg("descriptor does not fit its area".into()));
        }
        let at = sectors_to_bytes(header.descriptor_offset) as usize;
        meta[at..at + text.len()].copy_from_slice(text.as_bytes());
    }
    let entries = header.gd_entries();
    let gds = header.gd_sectors();
    for (dir, base) in [
        (header.rgd_offset, header.rgd_offset + gds),
        (header.gd_offset, header.gd_offset + gds),
    ] {
        for i in 0..entries {
            let gt = (base + i * header.gt_sectors()) as u32;
            let at = sectors_to_bytes(dir) as usize + i as usize * 4;
            meta[at..at + 4].copy_from_slice(&gt.to_le_bytes());
        }
    }
    write_all_at(file, path, &meta, 0)?;
    set_len(file, path, sectors_to_bytes(header.overhead))?;
    sync_data(file, path)
}
