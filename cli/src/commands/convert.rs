//! `vixdisk convert` (alias `clone`): any type to any type, raw images included; the source
//! may also be an NBD export (its allocated areas are copied).

use std::path::Path;

use vixDiskLib::Disk;
use vixDiskLib::{Adapter, CreateOptions, DiskKind};

use super::copy::{DiskSource, RawSource, TargetSpec, write_target};
use super::{close, open, remote};
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

/// Copies `source` (a disk, a raw image or an NBD export) into a new disk at `target`.
pub fn run(
    source: &Path,
    source_format: Option<SourceFormat>,
    target: &Path,
    format: &FormatArgs,
    overwrite: bool,
    quiet: bool,
) -> CmdResult {
    remote::refuse_uri(target, "the convert target")?;
    if remote::is_uri(source) {
        remote::refuse_flag(
            source,
            source_format.is_some(),
            "-f/--source-format",
            "an export is read as the disk the server presents, whatever its file's format",
        )?;
    }
    super::target_dir_exists(target)?;
    if remote::is_uri(source) {
        let disk = remote::open_source(source)?;
        let spec = target_spec(format, Some(&disk), overwrite);
        // Our copy loop over the export's allocated areas (the engine's clone reads local
        // chains only); it stops on Ctrl-C and removes the partial target like any other.
        let result = write_target(
            &DiskSource {
                disk: &disk,
                path: source,
            },
            target,
            &spec,
            quiet,
        );
        let closed = close(disk, source);
        result?;
        closed?;
    } else if source_format == Some(SourceFormat::Raw) {
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
