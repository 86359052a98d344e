//! QueryAllocatedBlocks / FreeBlockList.

use std::mem::size_of;

use super::alloc::{Kind, calloc_owned, free_owned};
use super::args::{out_arg, store};
use super::boundary::guard;
use super::codes::VIX_E_INVALID_ARG;
use super::handles::DISKS;
use super::library::require_init;
use super::types::*;
use crate::{Area, Error, Result, log_warning};

/// Lists the chunks of `[startSector, startSector + numSectors)` that hold data, as ascending
/// merged blocks in sectors. On a full chain a chunk counts if any link holds data in it; with
/// SINGLE_LINK only that link counts. VDDK's argument rules apply (VIX_E_INVALID_ARG): chunk
/// size 128..=131072, start and count multiples of it, at most 524288 chunks, nothing past the
/// last whole chunk. Free the list with FreeBlockList.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_QueryAllocatedBlocks(
    diskHandle: VixDiskLibHandle,
    startSector: VixDiskLibSectorType,
    numSectors: VixDiskLibSectorType,
    chunkSize: VixDiskLibSectorType,
    blockList: *mut *mut VixDiskLibBlockList,
) -> VixError {
    guard("VixDiskLib_QueryAllocatedBlocks", || {
        require_init()?;
        let out = out_arg(blockList, "blockList")?;
        let h = DISKS.get(diskHandle as usize)?;
        let areas = h.disk.allocated_areas(startSector, numSectors, chunkSize)?;
        let list = block_list(&areas)?;
        store(out, list);
        Ok(())
    })
}

/// Allocates a C block list (freed by FreeBlockList) holding `areas`.
pub fn block_list(areas: &[Area]) -> Result<*mut VixDiskLibBlockList> {
    let count =
        u32::try_from(areas.len()).map_err(|_| Error::InvalidArg("too many blocks".into()))?;
    let bytes =
        size_of::<VixDiskLibBlockList>() + size_of::<VixDiskLibBlock>() * areas.len().max(1);
    let list = calloc_owned(bytes, Kind::BlockList)?.cast::<VixDiskLibBlockList>();
    // SAFETY: `list` points at `bytes` zeroed bytes, room for the header and `runs.len()`
    // blocks (the struct's one inline block plus the extra ones allocated after it).
    unsafe {
        (*list).numBlocks = count;
        let blocks = std::ptr::addr_of_mut!((*list).blocks).cast::<VixDiskLibBlock>();
        for (i, area) in areas.iter().enumerate() {
            blocks.add(i).write(VixDiskLibBlock {
                offset: area.start,
                length: area.sectors,
            });
        }
    }
    Ok(list)
}

/// Frees a list from QueryAllocatedBlocks. NULL or a foreign pointer: VIX_E_INVALID_ARG.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_FreeBlockList(blockList: *mut VixDiskLibBlockList) -> VixError {
    if free_owned(blockList.cast(), Kind::BlockList) {
        0
    } else {
        log_warning("VixDiskLib_FreeBlockList: not a block list from QueryAllocatedBlocks");
        VIX_E_INVALID_ARG
    }
}
