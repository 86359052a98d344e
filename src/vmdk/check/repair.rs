//! Applies repair plans in crash-safe order.
//!
//! Per file: extend with zeros (harmless), copies of shared grains into new grains at the end
//! (nothing refers to them yet), then grain tables (new copies are not referenced
//! yet; rewritten ones only lose entries that were unusable), fsync; then directories, which
//! switch to the rebuilt tables, fsync; then the descriptor; then the header, whose
//! uncleanShutdown flag is cleared last, fsync. A crash at any point leaves a file that is no
//! worse than before and that a second run repairs. Files are done in plan order: extents
//! before the descriptor file that names them.

use std::fs::File;
use std::path::Path;

use super::{DescriptorWrite, FilePlan};
use crate::error::{Error, Result};
use crate::vmdk::atomic::{create_new_file, remove_stale_temp};
use crate::vmdk::fileio::{self, read_at_zero_fill, sync_data, write_all_at};

fn open_rw(path: &Path) -> Result<File> {
    crate::vmdk::fileio::open_regular(path, true)
}

fn write_group(file: &File, path: &Path, writes: &[(u64, Vec<u8>)]) -> Result<()> {
    if writes.is_empty() {
        return Ok(());
    }
    for (offset, bytes) in writes {
        write_all_at(file, path, bytes, *offset)?;
    }
    sync_data(file, path)
}

/// Replaces a descriptor file atomically: a sibling temporary file, fsync, rename, fsync of the
/// directory. The permissions of the old file are kept.
fn replace_descriptor(path: &Path, text: &str) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = crate::vmdk::link::dir_of(path);
    let tmp = dir.join(format!(".{name}.repair-tmp"));
    let result = (|| {
        // O_EXCL after removing a stale leftover: a symlink planted at the temporary name is
        // removed, never written through.
        remove_stale_temp(&tmp)?;
        let f = create_new_file(&tmp)?;
        write_all_at(&f, &tmp, text.as_bytes(), 0)?;
        fileio::sync_all(&f, &tmp)?;
        let perms = std::fs::metadata(path)
            .map_err(|e| Error::io(path, e))?
            .permissions();
        std::fs::set_permissions(&tmp, perms).map_err(|e| Error::io(&tmp, e))?;
        fileio::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
        crate::vmdk::atomic::sync_dir(path)
    })();
    if result.is_err() {
        let _ = fileio::remove_file(&tmp);
    }
    result
}

fn apply_one(plan: &FilePlan) -> Result<()> {
    let path = plan.path.as_path();
    if let Some(s) = &plan.salvage {
        return super::salvage::apply(path, s);
    }
    let file = open_rw(path)?;
    if let Some(len) = plan.extend_to {
        let now = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if len > now {
            fileio::set_len(&file, path, len)?;
            sync_data(&file, path)?;
        }
    }
    if !plan.grain_copies.is_empty() {
        for &(from, to, len) in &plan.grain_copies {
            let mut buf = vec![0u8; len as usize];
            read_at_zero_fill(&file, path, &mut buf, from)?;
            write_all_at(&file, path, &buf, to)?;
        }
        sync_data(&file, path)?;
    }
    write_group(&file, path, &plan.tables)?;
    write_group(&file, path, &plan.directories)?;
    match &plan.descriptor {
        Some(DescriptorWrite::Embedded { offset, area, text }) => {
            let mut bytes = text.clone().into_bytes();
            bytes.resize(*area as usize, 0);
            write_group(&file, path, &[(*offset, bytes)])?;
        }
        Some(DescriptorWrite::File(text)) => replace_descriptor(path, text)?,
        None => {}
    }
    if let Some(h) = &plan.header {
        write_group(&file, path, &[(0, h.clone())])?;
    }
    Ok(())
}

/// Applies every plan, in order.
pub(super) fn apply(plans: &[FilePlan]) -> Result<()> {
    for plan in plans {
        apply_one(plan)?;
    }
    Ok(())
}
