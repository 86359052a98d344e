//! Rewriting a sparse extent into a fresh file: grains in LBA order (Defragment), optionally
//! leaving out grains the caller no longer needs (Shrink). The new file is complete and synced
//! before the caller renames it over the old one, so a crash leaves one of the two intact.

use std::path::PathBuf;

pub use super::atomic::temp_path;
use super::create::create_new_file;
use super::fileio::{sync_data, write_all_at};
use super::header::SparseHeader;
use super::sparse::{GrainMap, SparseExtent, write_new_extent};
use crate::error::{Error, Result};

/// Writes a compacted copy of `extent` to `temp_path(extent.path())`. `keep(grain_start,
/// data)` decides for every allocated grain whether it goes into the copy. The embedded
/// descriptor text (if any) is copied verbatim, so the CID and thus every child stay valid.
/// Returns the temporary path and how many grains were left out.
pub fn compact_extent(
    extent: &SparseExtent,
    descriptor: Option<&str>,
    keep: &mut dyn FnMut(u64, &[u8]) -> Result<bool>,
) -> Result<(PathBuf, u64)> {
    let old = extent.header();
    if old.is_compressed() {
        return Err(Error::NotSupported(
            "streamOptimized extents cannot be compacted".into(),
        ));
    }
    // The copy uses the standard layout (128-sector grains, 512-entry tables); grains of
    // another size would not map one to one.
    if old.grain_sectors != 128 || old.gtes_per_gt != 512 {
        return Err(Error::NotSupported(format!(
            "extents with {}-sector grains and {}-entry tables cannot be compacted",
            old.grain_sectors, old.gtes_per_gt
        )));
    }
    let header = SparseHeader::new_layout(
        old.capacity,
        if descriptor.is_some() {
            old.descriptor_size.max(1)
        } else {
            0
        },
    );
    let tmp = temp_path(extent.path());
    let _ = super::fileio::remove_file(&tmp);
    let file = create_new_file(&tmp)?;
    let result = (|| {
        write_new_extent(&file, &tmp, &header, descriptor)?;
        let gs = header.grain_sectors;
        let per = u64::from(header.gtes_per_gt);
        let mut tables = vec![vec![0u32; per as usize]; header.gd_entries() as usize];
        let mut grains = Vec::new();
        extent.for_each_allocated(0, old.capacity, &mut |s, _| grains.push(s))?;
        let mut buf = vec![0u8; (gs * 512) as usize];
        let mut next = header.overhead;
        let mut dropped = 0u64;
        for start in grains {
            let (m, _) = extent.map(start, gs)?;
            match m {
                GrainMap::Data(off) => extent.read_data(&mut buf, off)?,
                GrainMap::Zero => buf.fill(0),
                GrainMap::Unallocated | GrainMap::Compressed(_) => continue,
            }
            if !keep(start, &buf)? {
                dropped += 1;
                continue;
            }
            write_all_at(&file, &tmp, &buf, next * 512)?;
            let g = start / gs;
            tables[(g / per) as usize][(g % per) as usize] = u32::try_from(next)
                .map_err(|_| Error::InvalidArg("extent larger than 2 TiB".into()))?;
            next += gs;
        }
        sync_data(&file, &tmp)?;
        let gds = header.gd_sectors();
        for (i, t) in tables.iter().enumerate() {
            let bytes: Vec<u8> = t.iter().flat_map(|v| v.to_le_bytes()).collect();
            let off = i as u64 * header.gt_sectors();
            write_all_at(&file, &tmp, &bytes, (header.gd_offset + gds + off) * 512)?;
            write_all_at(&file, &tmp, &bytes, (header.rgd_offset + gds + off) * 512)?;
        }
        sync_data(&file, &tmp)?;
        Ok(dropped)
    })();
    match result {
        Ok(dropped) => Ok((tmp, dropped)),
        Err(e) => {
            let _ = super::fileio::remove_file(&tmp);
            Err(e)
        }
    }
}
