//! Disk lifecycle: Create, Open, Close, GetInfo/FreeInfo, GetTransportMode.

use std::ffi::{c_char, c_int, c_void};
use std::mem::size_of;
use std::sync::Arc;

use super::alloc::{Kind, calloc_owned, free_owned, is_owned};
use super::args::{free_cstring, malloc_cstring, out_arg, path_arg, store, str_arg};
use super::boundary::{guard, guard_void};
use super::ext::VIXDISKLIBEXT_FLAG_OPEN_NONPERSISTENT;
use super::handles::{
    self, DISKS, DiskHandle, Pending, close_disk, take_retired, writable_connection,
};
use super::library::require_init;
use super::progress::progress_reporter;
use super::types::*;
use crate::{
    Adapter, ChangeId, CreateOptions, DiskKind, Error, Geometry, OpenOptions, Result, log_info,
    log_verbose, log_warning,
};

/// Maps a C disk type to the engine's.
pub fn disk_kind(t: DiskTypeArg) -> Result<DiskKind> {
    Ok(match t {
        1 => DiskKind::MonolithicSparse,
        2 => DiskKind::MonolithicFlat,
        3 => DiskKind::SplitSparse,
        4 => DiskKind::SplitFlat,
        5 => DiskKind::VmfsFlat,
        6 => DiskKind::StreamOptimized,
        7 => DiskKind::VmfsThin,
        8 => DiskKind::VmfsSparse,
        other => return Err(Error::InvalidArg(format!("unknown disk type {other}"))),
    })
}

pub fn adapter_from_c(t: AdapterTypeArg) -> Result<Adapter> {
    Ok(match t {
        1 => Adapter::Ide,
        2 => Adapter::BusLogic,
        3 => Adapter::LsiLogic,
        other => return Err(Error::InvalidArg(format!("unknown adapter type {other}"))),
    })
}

fn adapter_to_c(a: Option<Adapter>) -> AdapterTypeArg {
    match a {
        Some(Adapter::Ide) => 1,
        Some(Adapter::BusLogic) => 2,
        Some(Adapter::LsiLogic) => 3,
        Some(Adapter::LegacyEsx) | None => 256,
    }
}

/// The fields of caller create params that every header version has (the first 24 bytes:
/// callers built against pre-7.0 headers pass no sector sizes), read one by one without
/// claiming the whole 32-byte struct.
pub fn create_params(
    p: *const VixDiskLibCreateParams,
) -> Result<(DiskTypeArg, AdapterTypeArg, u16, VixDiskLibSectorType)> {
    if p.is_null() {
        return Err(Error::InvalidArg("createParams is NULL".into()));
    }
    // SAFETY: `p` is non-NULL and points at caller create params of at least the pre-7.0
    // layout (24 bytes), which holds every field read here; fields are read by address,
    // without forming a reference to the whole struct.
    unsafe {
        Ok((
            std::ptr::addr_of!((*p).diskType).read(),
            std::ptr::addr_of!((*p).adapterType).read(),
            std::ptr::addr_of!((*p).hwVersion).read(),
            std::ptr::addr_of!((*p).capacity).read(),
        ))
    }
}

/// The sector sizes of caller create params, read only to warn that they are ignored. The
/// header this library ships declares the 32-byte (VDDK 7.0+) struct, so callers built against
/// it pass both fields; a caller built against an older header passes 24 bytes, and these two
/// words then read whatever follows its struct. That is harmless: the values never change
/// what is created (every disk gets 512-byte sectors), they only choose whether to warn.
fn requested_sector_sizes(p: *const VixDiskLibCreateParams) -> (u32, u32) {
    // SAFETY: `p` is non-NULL (create_params checked it) and, for callers built against this
    // library's header, points at a whole VixDiskLibCreateParams; fields are read by address
    // with unaligned-safe reads and the values are only compared (see above for older callers).
    unsafe {
        (
            std::ptr::addr_of!((*p).logicalSectorSize).read_unaligned(),
            std::ptr::addr_of!((*p).physicalSectorSize).read_unaligned(),
        )
    }
}

/// Logs a warning when Create is asked for sectors other than 512 bytes: every disk is made
/// with 512-byte sectors (see docs/decisions.md, "Sector sizes of new disks").
fn warn_about_sector_sizes(logical: u32, physical: u32) {
    if matches!(logical, 0 | 512) && matches!(physical, 0 | 512) {
        return;
    }
    log_warning(format!(
        "VixDiskLib_Create: logicalSectorSize {logical} / physicalSectorSize {physical} requested; \
         the disk is created with 512-byte sectors (the only size hosted VMDKs have)"
    ));
}

/// Creates a local disk. `createParams` gives type, adapter, hardware version and capacity in
/// sectors. Every disk gets 512-byte sectors: `logicalSectorSize`/`physicalSectorSize` of 0 or
/// 512 are accepted silently, any other value (4096) is accepted too, coerced to 512 and logged
/// as a warning (callers built against pre-7.0 headers pass no sector sizes at all). The file
/// must not exist (VIX_E_FILE_ALREADY_EXISTS).
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_Create(
    connection: VixDiskLibConnection,
    path: *const c_char,
    createParams: *const VixDiskLibCreateParams,
    progressFunc: VixDiskLibProgressFunc,
    progressCallbackData: *mut c_void,
) -> VixError {
    guard("VixDiskLib_Create", || {
        require_init()?;
        let conn = writable_connection(connection as usize, "Create")?;
        let path = path_arg(path, "path")?;
        let (disk_type, adapter_type, hw, capacity) = create_params(createParams)?;
        let (logical, physical) = requested_sector_sizes(createParams);
        warn_about_sector_sizes(logical, physical);
        let spec = CreateOptions {
            kind: disk_kind(disk_type)?,
            capacity,
            adapter: adapter_from_c(adapter_type)?,
            hw_version: hw,
        };
        conn.reach.create(
            &path,
            &spec,
            &mut progress_reporter(progressFunc, progressCallbackData),
        )?;
        log_info(format!(
            "created {} ({:?}, {capacity} sectors)",
            path.display(),
            spec.kind
        ));
        Ok(())
    })
}

/// Opens a disk and, unless VIXDISKLIB_FLAG_OPEN_SINGLE_LINK, its parent chain. READ_ONLY (or
/// a read-only connection) takes a shared lock; otherwise the leaf is locked exclusively and a
/// second read-write open fails with VIX_E_FILE_ALREADY_LOCKED. UNBUFFERED is accepted as
/// advice (the host page cache is still used; Flush makes data durable). `*diskHandle` is set
/// on success and to NULL on failure.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_Open(
    connection: VixDiskLibConnection,
    path: *const c_char,
    flags: u32,
    diskHandle: *mut VixDiskLibHandle,
) -> VixError {
    guard("VixDiskLib_Open", || {
        let out = out_arg(diskHandle, "diskHandle")?;
        store(out, std::ptr::null_mut());
        require_init()?;
        let path = str_arg(path, "path")?;
        let token = open_disk(connection, path, flags, None)?;
        store(out, token as VixDiskLibHandle);
        Ok(())
    })
}

/// The body of Open and OpenEx, after argument checks: opens `path` through `connection`
/// with `flags` and registers a handle that remembers `change_id`; returns its token. On a
/// remote connection `path` names the export ("" = the URI's or the server's default).
pub fn open_disk(
    connection: VixDiskLibConnection,
    path: &str,
    flags: u32,
    change_id: Option<ChangeId>,
) -> Result<usize> {
    let conn = handles::connection(connection as usize)?;
    if !conn.reach.is_remote() && path.is_empty() {
        return Err(Error::InvalidArg("path is empty".into()));
    }
    let opts = OpenOptions {
        read_only: flags & VIXDISKLIB_FLAG_OPEN_READ_ONLY != 0 || conn.read_only,
        single_link: flags & VIXDISKLIB_FLAG_OPEN_SINGLE_LINK != 0,
        force_share: false,
        nonpersistent: flags & VIXDISKLIBEXT_FLAG_OPEN_NONPERSISTENT != 0,
        change_id: change_id.clone(),
    };
    let disk = conn.reach.open(path, &opts)?;
    Ok(DISKS.insert(DiskHandle {
        disk,
        connection: connection as usize,
        pending: Arc::new(Pending::default()),
        change_id,
    }))
}

/// Closes a disk after its asynchronous requests finish; flushes and clears the
/// unclean-shutdown mark. The handle is invalid afterwards (a second Close: VIX_E_INVALID_ARG).
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_Close(diskHandle: VixDiskLibHandle) -> VixError {
    guard("VixDiskLib_Close", || {
        require_init()?;
        if take_retired(diskHandle as usize) {
            log_verbose("VixDiskLib_Close: handle was attached under a child; nothing to do");
            return Ok(());
        }
        close_disk(DISKS.remove(diskHandle as usize)?)
    })
}

/// `transport` NUL-terminated, in static memory (GetTransportMode's answer is not freed).
fn transport_name(transport: &str) -> &'static [u8] {
    match transport {
        "nbd" => b"nbd\0",
        "nbdssl" => b"nbdssl\0",
        _ => b"file\0",
    }
}

fn geometry_to_c(g: Geometry) -> VixDiskLibGeometry {
    VixDiskLibGeometry {
        cylinders: g.cylinders,
        heads: g.heads,
        sectors: g.sectors,
    }
}

/// Returns a library-allocated VixDiskLibInfo; release it with FreeInfo.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_GetInfo(
    diskHandle: VixDiskLibHandle,
    info: *mut *mut VixDiskLibInfo,
) -> VixError {
    guard("VixDiskLib_GetInfo", || {
        require_init()?;
        let out = out_arg(info, "info")?;
        let h = DISKS.get(diskHandle as usize)?;
        let i = h.disk.info();
        let p = calloc_owned(size_of::<VixDiskLibInfo>(), Kind::Info)?.cast::<VixDiskLibInfo>();
        let value = VixDiskLibInfo {
            biosGeo: geometry_to_c(i.bios_geometry),
            physGeo: geometry_to_c(i.geometry),
            capacity: i.capacity,
            adapterType: adapter_to_c(i.adapter),
            numLinks: i.links as c_int,
            parentFileNameHint: i
                .parent_hint
                .as_deref()
                .map_or(std::ptr::null_mut(), malloc_cstring),
            uuid: i
                .uuid
                .as_deref()
                .map_or(std::ptr::null_mut(), malloc_cstring),
            logicalSectorSize: VIXDISKLIB_SECTOR_SIZE,
            physicalSectorSize: VIXDISKLIB_SECTOR_SIZE,
        };
        store(p, value);
        store(out, p);
        Ok(())
    })
}

/// Frees a VixDiskLibInfo from GetInfo (NULL is allowed; foreign pointers are ignored).
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_FreeInfo(info: *mut VixDiskLibInfo) {
    guard_void("VixDiskLib_FreeInfo", || {
        if info.is_null() {
            return;
        }
        if !is_owned(info.cast(), Kind::Info) {
            log_warning("VixDiskLib_FreeInfo: pointer was not allocated by this library; ignored");
            return;
        }
        // SAFETY: `info` is a live VixDiskLibInfo this library allocated in GetInfo.
        let (hint, uuid) = unsafe { ((*info).parentFileNameHint, (*info).uuid) };
        free_owned(info.cast(), Kind::Info);
        free_cstring(hint);
        free_cstring(uuid);
    });
}

/// The handle's transport: "file" for local disks, "nbd" or "nbdssl" (TLS) for remote ones;
/// NULL for an invalid handle. Static; do not free.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_GetTransportMode(diskHandle: VixDiskLibHandle) -> *const c_char {
    match require_init().and_then(|()| DISKS.get(diskHandle as usize)) {
        Ok(h) => transport_name(h.disk.transport()).as_ptr().cast(),
        Err(_) => std::ptr::null(),
    }
}
