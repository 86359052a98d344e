//! `vixdisk convert` (alias `clone`): any type to any type, raw images included.

use std::path::Path;

use vixDiskLib::Disk;
use vixDiskLib::{Adapter, CreateOptions, DiskKind};

use super::copy::{DiskSource, RawSource, TargetSpec, write_target};
use super::{close, open};
use crate::cli::{FormatArgs, SourceFormat};
use crate::failure::{CmdResult, Failure, OnFile};
use crate::interrupt;
use crate::progress::Progress;
use crate::units::{DiskType, SECTOR};

/// The create parameters for a target: the user's choice, else the source's, else defaults.
pub fn target_spec(format: &FormatArgs, source: Option<&Disk>, overwrite: bool) -> TargetSpec {
    let source_adapter = source
        .and_then(|d| d.info().adapter)
        .filter(|a| *a != Adapter::LegacyEsx);
    let source_hw = source
        .and_then(|d| d.metadata("virtualHWVersion").ok().flatten())
        .and_then(|v| v.trim().parse().ok());
    let kind = match format.disk_type {
        DiskType::Vmdk(k) => k,
        DiskType::Raw => DiskKind::MonolithicSparse,
    };
    TargetSpec {
        disk_type: format.disk_type,
        create: CreateOptions {
            kind,
            capacity: 0,
            adapter: format
                .adapter
                .map(|a| a.0)
                .or(source_adapter)
                .unwrap_or(Adapter::LsiLogic),
            hw_version: format.hw_version.or(source_hw).unwrap_or(0),
        },
        overwrite,
    }
}

/// Copies `source` into a new disk at `target`.
pub fn run(
    source: &Path,
    source_format: SourceFormat,
    target: &Path,
    format: &FormatArgs,
    overwrite: bool,
    quiet: bool,
) -> CmdResult {
    super::target_dir_exists(target)?;
    if source_format == SourceFormat::Raw {
        let raw = RawSource::open(source)?;
        write_target(&raw, target, &target_spec(format, None, overwrite), quiet)?;
    } else {
        let disk = open(source, true, false)?;
        let result = convert_disk(&disk, source, target, format, overwrite, quiet);
        let closed = close(disk, source);
        result?;
        closed?;
    }
    say!(
        "converted {} to {} ({})",
        source.display(),
        target.display(),
        format.disk_type
    );
    Ok(())
}

fn convert_disk(
    disk: &Disk,
    source: &Path,
    target: &Path,
    format: &FormatArgs,
    overwrite: bool,
    quiet: bool,
) -> CmdResult {
    let spec = target_spec(format, Some(disk), overwrite);
    if spec.disk_type == DiskType::Raw {
        let src = DiskSource { disk, path: source };
        return write_target(&src, target, &spec, quiet);
    }
    // VMDK to VMDK: the engine's clone (kernel copies, parallel compression), cancellable.
    // The engine reports percent; the bar shows them as bytes of the disk, with rate and ETA.
    let bar = Progress::bytes("convert", disk.capacity() * SECTOR, quiet);
    let result = disk.clone_to(
        target,
        &spec.create,
        overwrite,
        &mut |p| bar.set_percent(p),
        &interrupt::requested,
    );
    bar.finish();
    if result.is_err() && interrupt::requested() {
        // The engine removed the partial target.
        return Err(Failure::Interrupted);
    }
    result.on(target)
}
