//! `vixdisk create`: a new empty disk.

use std::path::Path;

use vixDiskLib::{Adapter, Connection, CreateOptions};

use crate::cli::FormatArgs;
use crate::failure::{CmdResult, Failure, OnFile};
use crate::progress::Progress;
use crate::units::{DiskType, SECTOR};

/// Creates a disk of `size` bytes at `path`.
pub fn run(path: &Path, size: u64, format: &FormatArgs, quiet: bool) -> CmdResult {
    let DiskType::Vmdk(kind) = format.disk_type else {
        return Err(Failure::Usage(
            "create makes VMDK disks; for a raw image use truncate(1)".into(),
        ));
    };
    let spec = CreateOptions {
        kind,
        capacity: size / SECTOR,
        adapter: format.adapter.map_or(Adapter::LsiLogic, |a| a.0),
        hw_version: format.hw_version.unwrap_or(0),
    };
    super::target_dir_exists(path)?;
    let bar = Progress::percent("create", quiet);
    Connection::local()
        .create(path, &spec, &mut |p| bar.set(p.into()))
        .on(path)?;
    bar.finish();
    say!(
        "created {} ({}, {size} bytes)",
        path.display(),
        format.disk_type
    );
    Ok(())
}
