//! Creating new disks: monolithic sparse and flat (split and other types come with their issue).

use std::fs::File;
use std::path::Path;

use super::atomic::sync_dir;
pub use super::atomic::{
    NewDisk, create_new_file, create_new_private_file, prepare_new, require_dir_of,
};
pub use super::descriptor::format_uuid;
use super::descriptor::{Access, Descriptor, ExtentKind, ExtentLine, NO_PARENT_CID};
use super::fileio::{random_cid, random_u64, sync_data, write_all_at};
use super::geometry::{Adapter, Geometry};
use super::header::{EMBEDDED_DESCRIPTOR_SECTORS, SparseHeader};
use super::sparse::write_new_extent;
use crate::error::{Error, Result};

/// The disk layouts VixDiskLib can ask for.
///
/// ```
/// use vixDiskLib::{CreateOptions, DiskKind};
/// let opts = CreateOptions::new(DiskKind::SplitSparse, 1 << 20);
/// assert_eq!(opts.kind, DiskKind::SplitSparse);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskKind {
    /// One sparse file with an embedded descriptor.
    MonolithicSparse,
    /// A descriptor plus one raw `-flat` file.
    MonolithicFlat,
    /// A descriptor plus 2 GB sparse extents.
    SplitSparse,
    /// A descriptor plus 2 GB flat extents.
    SplitFlat,
    /// ESX flat.
    VmfsFlat,
    /// Compressed, sequential.
    StreamOptimized,
    /// ESX thin.
    VmfsThin,
    /// ESX sparse.
    VmfsSparse,
}

/// What to create.
#[derive(Debug, Clone, Copy)]
pub struct CreateSpec {
    /// Layout.
    pub kind: DiskKind,
    /// Capacity in sectors.
    pub capacity: u64,
    /// Controller type.
    pub adapter: Adapter,
    /// `ddb.virtualHWVersion`.
    pub hw_version: u16,
}

fn new_uuid() -> String {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&random_u64().to_le_bytes());
    b[8..].copy_from_slice(&random_u64().to_le_bytes());
    format_uuid(b)
}

/// The DDB every new base disk gets.
pub fn base_ddb(spec: &CreateSpec) -> Vec<(String, String)> {
    let g = Geometry::for_capacity(spec.capacity, spec.adapter);
    let hw = if spec.hw_version == 0 {
        4
    } else {
        spec.hw_version
    };
    vec![
        ("virtualHWVersion".into(), hw.to_string()),
        ("uuid".into(), new_uuid()),
        ("geometry.cylinders".into(), g.cylinders.to_string()),
        ("geometry.heads".into(), g.heads.to_string()),
        ("geometry.sectors".into(), g.sectors.to_string()),
        ("adapterType".into(), spec.adapter.ddb_name().into()),
    ]
}

/// Name of a sibling file: `dir/base.vmdk` + `-flat` → `base-flat.vmdk`.
pub fn sibling_name(path: &Path, suffix: &str) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{stem}{suffix}.vmdk")
}

/// A descriptor for a new link.
pub fn new_descriptor(
    create_type: &str,
    extents: Vec<ExtentLine>,
    ddb: Vec<(String, String)>,
) -> Descriptor {
    Descriptor {
        version: 1,
        encoding: Some("UTF-8".into()),
        cid: random_cid(),
        parent_cid: NO_PARENT_CID,
        create_type: create_type.into(),
        parent_hint: None,
        extra_header: Vec::new(),
        extents,
        extra_sections: Vec::new(),
        ddb,
    }
}

/// Writes a monolithic sparse file for `path` with descriptor `d` (its extent line is set
/// here), complete or not at all (see `atomic`).
pub fn write_monolithic_sparse(path: &Path, d: Descriptor, capacity: u64) -> Result<()> {
    let tmp = prepare_new(path)?;
    write_monolithic_sparse_at(path, &tmp, d, capacity)?;
    NewDisk::single(tmp, path).publish()
}

/// Writes the monolithic sparse file of disk `path` at `at` (its temporary name).
fn write_monolithic_sparse_at(path: &Path, at: &Path, d: Descriptor, capacity: u64) -> Result<()> {
    let file = create_new_file(at)?;
    let result = write_monolithic_sparse_into(&file, path, at, d, capacity);
    if result.is_err() {
        let _ = super::fileio::remove_file(at);
    }
    result
}

/// Writes a monolithic sparse disk named `path` into the new, empty `file` (whose name, if it
/// still has one, is `at`). For files that are never published under a name: the scratch redo
/// log of a nonpersistent open.
pub fn write_monolithic_sparse_into(
    file: &File,
    path: &Path,
    at: &Path,
    mut d: Descriptor,
    capacity: u64,
) -> Result<()> {
    d.extents = vec![ExtentLine {
        access: Access::ReadWrite,
        sectors: capacity,
        kind: ExtentKind::Sparse,
        file: Some(sibling_name(path, "")),
        offset: 0,
    }];
    let header = SparseHeader::new_layout(capacity, EMBEDDED_DESCRIPTOR_SECTORS);
    write_new_extent(file, at, &header, Some(&d.render()))
}

/// Largest monolithic sparse extent: grain table entries are 32-bit sector numbers, so the
/// file (and VMware's hosted sparse disks) stop at 2 TiB.
pub(crate) const MAX_SPARSE_EXTENT_SECTORS: u64 = 1 << 32;
/// Largest disk we create or grow to: 64 TiB (VMware's own limit is 62 TB).
pub(crate) const MAX_NEW_DISK_SECTORS: u64 = 1 << 37;

/// Refuses capacities a disk of `kind` cannot have, saying why.
pub fn check_capacity(kind: DiskKind, capacity: u64) -> Result<()> {
    let (limit, why) = match kind {
        DiskKind::MonolithicSparse | DiskKind::StreamOptimized => (
            MAX_SPARSE_EXTENT_SECTORS,
            "a single sparse extent addresses its grains and tables with 32-bit sector numbers, \
             so its file cannot pass 2 TiB; a larger disk could not hold its data once written \
             (use twoGbMaxExtentSparse for more)",
        ),
        _ => (
            MAX_NEW_DISK_SECTORS,
            "64 TiB is the largest disk we create or grow (VMware's hosted and ESX limit is 62 TB)",
        ),
    };
    if capacity == 0 || capacity > limit {
        // The C boundary logs the message with the call's name.
        return Err(Error::InvalidArg(format!(
            "capacity {capacity} sectors is outside 1..={limit} for {kind:?} disks: {why}"
        )));
    }
    Ok(())
}

/// Creates a new disk, complete or not at all. `progress(percent)` is called at least at 0
/// and 100.
pub fn create(path: &Path, spec: &CreateSpec, progress: &mut dyn FnMut(u32)) -> Result<()> {
    create_unpublished(path, spec, progress)?.publish()?;
    progress(100);
    Ok(())
}

/// Writes a new disk for `path` under its temporary name; the caller fills and publishes it.
pub fn create_unpublished(
    path: &Path,
    spec: &CreateSpec,
    progress: &mut dyn FnMut(u32),
) -> Result<NewDisk> {
    check_capacity(spec.kind, spec.capacity)?;
    if spec.kind == DiskKind::VmfsSparse {
        return Err(Error::NotSupported(
            "creating vmfsSparse (COWD) disks is not supported: they are read-only here".into(),
        ));
    }
    let tmp = prepare_new(path)?;
    progress(0);
    let ddb = base_ddb(spec);
    match spec.kind {
        DiskKind::MonolithicSparse => {
            write_monolithic_sparse_at(
                path,
                &tmp,
                new_descriptor("monolithicSparse", Vec::new(), ddb),
                spec.capacity,
            )?;
            Ok(NewDisk::single(tmp, path))
        }
        // An empty stream in VMware's layout; sequential writes then extend it.
        DiskKind::StreamOptimized => {
            super::stream_writer::write_stream_optimized_at(
                path,
                &tmp,
                spec.capacity,
                new_descriptor("streamOptimized", Vec::new(), ddb),
                &|_, _| Ok(false),
                1,
                progress,
            )?;
            Ok(NewDisk::single(tmp, path))
        }
        _ => write_descriptor_disk(path, &tmp, spec, ddb, None, progress),
    }
}

/// VMware's split size: 2047 MiB per extent (qemu uses 2048; both are read).
pub(crate) const SPLIT_EXTENT_SECTORS: u64 = 2047 * 2048;

/// One extent file of a descriptor-file disk, before it exists.
struct PlannedExtent {
    name: String,
    sectors: u64,
    kind: ExtentKind,
}

/// The extent files a descriptor-file disk of `kind` consists of.
fn plan_extents(path: &Path, kind: DiskKind, capacity: u64) -> (&'static str, Vec<PlannedExtent>) {
    let one = |suffix: &str, kind: ExtentKind| {
        vec![PlannedExtent {
            name: sibling_name(path, suffix),
            sectors: capacity,
            kind,
        }]
    };
    let split = |letter: char, kind: ExtentKind| {
        let count = capacity.div_ceil(SPLIT_EXTENT_SECTORS);
        (0..count)
            .map(|i| PlannedExtent {
                name: sibling_name(path, &format!("-{letter}{:03}", i + 1)),
                sectors: SPLIT_EXTENT_SECTORS.min(capacity - i * SPLIT_EXTENT_SECTORS),
                kind,
            })
            .collect()
    };
    match kind {
        DiskKind::MonolithicFlat => ("monolithicFlat", one("-flat", ExtentKind::Flat)),
        DiskKind::SplitSparse => ("twoGbMaxExtentSparse", split('s', ExtentKind::Sparse)),
        DiskKind::SplitFlat => ("twoGbMaxExtentFlat", split('f', ExtentKind::Flat)),
        DiskKind::VmfsThin => ("vmfsThin", one("-flat", ExtentKind::Vmfs)),
        _ => ("vmfs", one("-flat", ExtentKind::Vmfs)),
    }
}

/// The parent a new child link records: its CID and the hint to find it.
pub struct ParentLink {
    /// The parent's CID now.
    pub cid: u32,
    /// `parentFileNameHint`.
    pub hint: String,
}

/// Creates a descriptor file plus its extents (flat files are created sparse; sparse extents
/// get a full KDMV layout without an embedded descriptor), complete or not at all.
pub fn create_descriptor_disk(
    path: &Path,
    spec: &CreateSpec,
    ddb: Vec<(String, String)>,
    parent: Option<ParentLink>,
    progress: &mut dyn FnMut(u32),
) -> Result<()> {
    let tmp = prepare_new(path)?;
    write_descriptor_disk(path, &tmp, spec, ddb, parent, progress)?.publish()
}

/// Writes the descriptor of disk `path` at `tmp` first (it lists the extents, so an
/// interrupted create can be cleaned up), then the extent files under their final names.
/// On failure nothing is left behind.
fn write_descriptor_disk(
    path: &Path,
    tmp: &Path,
    spec: &CreateSpec,
    mut ddb: Vec<(String, String)>,
    parent: Option<ParentLink>,
    progress: &mut dyn FnMut(u32),
) -> Result<NewDisk> {
    let (create_type, planned) = plan_extents(path, spec.kind, spec.capacity);
    if spec.kind == DiskKind::VmfsThin {
        ddb.push(("thinProvisioned".into(), "1".into()));
    }
    let dir = super::link::dir_of(path);
    let lines = planned
        .iter()
        .map(|e| ExtentLine {
            access: Access::ReadWrite,
            sectors: e.sectors,
            kind: e.kind,
            file: Some(e.name.clone()),
            offset: 0,
        })
        .collect();
    let mut d = new_descriptor(create_type, lines, ddb);
    if let Some(parent) = parent {
        d.parent_cid = parent.cid;
        d.parent_hint = Some(parent.hint);
    }
    let descriptor_file = create_new_file(tmp)?;
    let mut disk = NewDisk::single(tmp.to_path_buf(), path);
    let result = (|| {
        write_all_at(&descriptor_file, tmp, d.render().as_bytes(), 0)?;
        sync_data(&descriptor_file, tmp)?;
        sync_dir(tmp)?;
        let total = planned.len() as u64;
        for (i, e) in planned.iter().enumerate() {
            let p = dir.join(&e.name);
            let f = create_new_file(&p)?;
            disk.extents.push(p.clone());
            match e.kind {
                ExtentKind::Sparse => {
                    write_new_extent(&f, &p, &SparseHeader::new_layout(e.sectors, 0), None)?;
                }
                _ => {
                    super::fileio::set_len(&f, &p, e.sectors * 512)?;
                    sync_data(&f, &p)?;
                }
            }
            progress(((i as u64 + 1) * 99 / total) as u32);
        }
        Ok(())
    })();
    match result {
        Ok(()) => Ok(disk),
        Err(e) => {
            disk.discard();
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_refusals_say_why() {
        let e = check_capacity(DiskKind::MonolithicSparse, MAX_SPARSE_EXTENT_SECTORS + 1)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("32-bit") && e.contains("twoGbMaxExtentSparse"),
            "{e}"
        );
        check_capacity(DiskKind::SplitSparse, MAX_SPARSE_EXTENT_SECTORS + 1).unwrap();
        let e = check_capacity(DiskKind::SplitSparse, MAX_NEW_DISK_SECTORS + 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("62 TB"), "{e}");
    }

    #[test]
    fn uuid_has_vmware_shape() {
        let u = format_uuid([
            0x60, 0, 0xc2, 0x93, 0x7b, 0xa0, 0x3a, 3, 0x9f, 0x22, 0x56, 0xc5, 0x29, 0x93, 0xb7,
            0x27,
        ]);
        assert_eq!(u, "60 00 c2 93 7b a0 3a 03-9f 22 56 c5 29 93 b7 27");
    }

    #[test]
    fn sibling_names_follow_vmware_convention() {
        assert_eq!(
            sibling_name(Path::new("/a/disk.vmdk"), "-flat"),
            "disk-flat.vmdk"
        );
        assert_eq!(
            sibling_name(Path::new("disk.vmdk"), "-s001"),
            "disk-s001.vmdk"
        );
    }
}
