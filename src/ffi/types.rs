//! The C types of VixDiskLib, laid out exactly as VMware's header (VDDK 9.0, x86-64 Linux;
//! every 9.0 addition sits after what 8.0.3 had, so 8.x layouts are prefixes of these).
//!
//! Enum-typed parameters and fields are declared as plain integers on the Rust side (callers
//! may pass any value; a Rust enum holding an unlisted value would be undefined behaviour).
//! cbindgen renames those integer aliases back to VMware's enum type names in the header.

use std::ffi::{c_char, c_int, c_long, c_void};

/// A VixDiskLib status code; the low 16 bits are the error code.
pub type VixError = u64;
/// A sector number or count; sectors are always 512 bytes.
pub type VixDiskLibSectorType = u64;
/// VMware's one-byte boolean (defined in vm_basic_types.h).
pub type Bool = c_char;

/// Opaque disk handle target.
pub struct VixDiskLibHandleStruct {
    _private: [u8; 0],
}
/// An open disk.
pub type VixDiskLibHandle = *mut VixDiskLibHandleStruct;

/// Opaque connection target.
pub struct VixDiskLibConnectParam {
    _private: [u8; 0],
}
/// A connection made by Connect/ConnectEx.
pub type VixDiskLibConnection = *mut VixDiskLibConnectParam;

/// Opaque internal connection state (VDDK 6.7+).
pub struct VixDiskLibConnectParamsState {
    _private: [u8; 0],
}

/// Stand-in for the C function type `VixDiskLibGenericLogFunc` (declared in the header's
/// preamble as `void (const char *fmt, va_list args)`); only ever handled by pointer and
/// called through the C shim.
pub struct VixDiskLibGenericLogFunc {
    _private: [u8; 0],
}

/// Progress callback: `percentCompleted` from 0 to 100; the return value is ignored.
pub type VixDiskLibProgressFunc =
    Option<unsafe extern "C" fn(progressData: *mut c_void, percentCompleted: c_int) -> Bool>;
/// Completion callback of ReadAsync/WriteAsync.
pub type VixDiskLibCompletionCB =
    Option<unsafe extern "C" fn(cbData: *mut c_void, result: VixError)>;

/// Integer carrying a `VixDiskLibDiskType` (renamed to the enum in the header).
pub type DiskTypeArg = c_int;
/// Integer carrying a `VixDiskLibAdapterType` (renamed to the enum in the header).
pub type AdapterTypeArg = c_int;
/// Integer carrying a `VixDiskLibCredType` (renamed to the enum in the header).
pub type CredTypeArg = c_int;
/// Integer carrying a `VixDiskLibSpecType` (renamed to the enum in the header).
pub type SpecTypeArg = c_int;

/// Disk layouts.
#[repr(C)]
pub enum VixDiskLibDiskType {
    /// Monolithic file, sparse.
    VIXDISKLIB_DISK_MONOLITHIC_SPARSE = 1,
    /// Monolithic file, all space allocated.
    VIXDISKLIB_DISK_MONOLITHIC_FLAT = 2,
    /// 2 GB extents, sparse.
    VIXDISKLIB_DISK_SPLIT_SPARSE = 3,
    /// 2 GB extents, allocated.
    VIXDISKLIB_DISK_SPLIT_FLAT = 4,
    /// ESX flat.
    VIXDISKLIB_DISK_VMFS_FLAT = 5,
    /// Compressed monolithic sparse; sequential writes only.
    VIXDISKLIB_DISK_STREAM_OPTIMIZED = 6,
    /// ESX thin.
    VIXDISKLIB_DISK_VMFS_THIN = 7,
    /// ESX sparse.
    VIXDISKLIB_DISK_VMFS_SPARSE = 8,
    /// Unknown.
    VIXDISKLIB_DISK_UNKNOWN = 256,
}

/// Virtual controller types.
#[repr(C)]
pub enum VixDiskLibAdapterType {
    /// IDE.
    VIXDISKLIB_ADAPTER_IDE = 1,
    /// BusLogic SCSI.
    VIXDISKLIB_ADAPTER_SCSI_BUSLOGIC = 2,
    /// LSI Logic SCSI.
    VIXDISKLIB_ADAPTER_SCSI_LSILOGIC = 3,
    /// Unknown.
    VIXDISKLIB_ADAPTER_UNKNOWN = 256,
}

/// Credential kinds for remote connections.
#[repr(C)]
pub enum VixDiskLibCredType {
    /// User name and password.
    VIXDISKLIB_CRED_UID = 1,
    /// HTTP session id.
    VIXDISKLIB_CRED_SESSIONID = 2,
    /// Ticket id (internal).
    VIXDISKLIB_CRED_TICKETID = 3,
    /// Windows only.
    VIXDISKLIB_CRED_SSPI = 4,
    /// Unknown.
    VIXDISKLIB_CRED_UNKNOWN = 256,
}

/// How a remote disk is specified.
#[repr(C)]
pub enum VixDiskLibSpecType {
    /// By VM (vmxSpec).
    VIXDISKLIB_SPEC_VMX = 0,
    /// By first-class disk id.
    VIXDISKLIB_SPEC_VSTORAGE_OBJECT = 1,
    /// By datastore path (8.0.1+).
    VIXDISKLIB_SPEC_DATASTORE = 2,
    /// Unknown.
    VIXDISKLIB_SPEC_UNKNOWN = 256,
}

/// Cylinders, heads, sectors.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct VixDiskLibGeometry {
    /// Cylinders.
    pub cylinders: u32,
    /// Heads.
    pub heads: u32,
    /// Sectors per track.
    pub sectors: u32,
}

/// Parameters of Create and Clone.
#[repr(C)]
pub struct VixDiskLibCreateParams {
    /// A `VixDiskLibDiskType`.
    pub diskType: DiskTypeArg,
    /// A `VixDiskLibAdapterType`.
    pub adapterType: AdapterTypeArg,
    /// Virtual hardware version (`VIXDISKLIB_HWVERSION_*`).
    pub hwVersion: u16,
    /// Capacity in sectors.
    pub capacity: VixDiskLibSectorType,
    /// 0 or 512 (VDDK 7.0+). Disks always get 512-byte sectors: another value (4096) is
    /// accepted, coerced to 512 and logged as a warning.
    pub logicalSectorSize: u32,
    /// 0 or 512 (VDDK 7.0+); coerced to 512 like `logicalSectorSize`.
    pub physicalSectorSize: u32,
}

/// User name and password.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct VixDiskLibUidPasswdCreds {
    /// User name.
    pub userName: *mut c_char,
    /// Password.
    pub password: *mut c_char,
}

/// HTTP session credentials.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct VixDiskLibSessionIdCreds {
    /// Session cookie.
    pub cookie: *mut c_char,
    /// User name.
    pub userName: *mut c_char,
    /// Key.
    pub key: *mut c_char,
}

/// Opaque ticket credentials.
pub struct VixDiskLibTicketIdCreds {
    _private: [u8; 0],
}

/// Credentials, by `credType`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union VixDiskLibCreds {
    /// `VIXDISKLIB_CRED_UID`.
    pub uid: VixDiskLibUidPasswdCreds,
    /// `VIXDISKLIB_CRED_SESSIONID`.
    pub sessionId: VixDiskLibSessionIdCreds,
    /// `VIXDISKLIB_CRED_TICKETID`.
    pub ticketId: *mut VixDiskLibTicketIdCreds,
}

/// A first-class disk.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct VixDiskLibVStorageObjectSpec {
    /// Disk id.
    pub id: *mut c_char,
    /// Datastore managed object reference.
    pub datastoreMoRef: *mut c_char,
    /// Snapshot id.
    pub ssId: *mut c_char,
}

/// A disk on a datastore (8.0.1+).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct VixDiskLibDatastoreSpec {
    /// Datastore managed object reference.
    pub datastoreMoRef: *mut c_char,
    /// Folder of the disk.
    pub diskFolder: *mut c_char,
}

/// The `spec` union of the connection parameters.
#[repr(C)]
#[derive(Clone, Copy)]
pub union VixDiskLibConnectParamsSpec {
    /// `VIXDISKLIB_SPEC_VSTORAGE_OBJECT`.
    pub vStorageObjSpec: VixDiskLibVStorageObjectSpec,
    /// `VIXDISKLIB_SPEC_DATASTORE`.
    pub dsSpec: VixDiskLibDatastoreSpec,
}

/// Connection parameters (136 bytes; 128 in headers before 9.0, which lack `sslCertificate`).
/// A NULL pointer or a NULL `serverName` means "local". Callers built with an 8.x header pass
/// the shorter struct, so the library reads it field by field and never past byte 128.
#[repr(C)]
pub struct VixDiskLibConnectParams {
    /// URL-like VM spec, e.g. `moref=vm-16`.
    pub vmxSpec: *mut c_char,
    /// vCenter/ESXi host; NULL for local disks.
    pub serverName: *mut c_char,
    /// SSL thumbprint.
    pub thumbPrint: *mut c_char,
    /// Ignored.
    pub privateUse: c_long,
    /// A `VixDiskLibCredType`.
    pub credType: CredTypeArg,
    /// Credentials.
    pub creds: VixDiskLibCreds,
    /// Port for the web service.
    pub port: u32,
    /// NFC port.
    pub nfcHostPort: u32,
    /// Not used.
    pub vimApiVer: *mut c_char,
    /// Internal.
    pub reserved: [c_char; 8],
    /// Internal.
    pub state: *mut VixDiskLibConnectParamsState,
    /// Disk specification.
    pub spec: VixDiskLibConnectParamsSpec,
    /// A `VixDiskLibSpecType`.
    pub specType: SpecTypeArg,
    /// PEM certificate of the server (VDDK 9.0+); never read for local connections.
    pub sslCertificate: *mut c_char,
}

/// Disk information returned by GetInfo (64 bytes; library-allocated).
#[repr(C)]
pub struct VixDiskLibInfo {
    /// BIOS geometry.
    pub biosGeo: VixDiskLibGeometry,
    /// Physical geometry.
    pub physGeo: VixDiskLibGeometry,
    /// Capacity in sectors.
    pub capacity: VixDiskLibSectorType,
    /// A `VixDiskLibAdapterType`.
    pub adapterType: AdapterTypeArg,
    /// Number of links open (base + redo logs).
    pub numLinks: c_int,
    /// Parent hint of a child disk, else NULL.
    pub parentFileNameHint: *mut c_char,
    /// `ddb.uuid`, else NULL.
    pub uuid: *mut c_char,
    /// Always 512.
    pub logicalSectorSize: u32,
    /// Always 512.
    pub physicalSectorSize: u32,
}

/// A run of sectors.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct VixDiskLibBlock {
    /// First sector.
    pub offset: VixDiskLibSectorType,
    /// Sectors.
    pub length: VixDiskLibSectorType,
}

/// Result of QueryAllocatedBlocks: `numBlocks` entries follow in `blocks`.
#[repr(C)]
pub struct VixDiskLibBlockList {
    /// Number of entries.
    pub numBlocks: u32,
    /// First entry (the array continues past the struct).
    pub blocks: [VixDiskLibBlock; 1],
}

/// Parameters of OpenEx (VDDK 9.0).
#[repr(C)]
pub struct VixDiskLibOpenParams {
    /// Path of the disk.
    pub path: *mut c_char,
    /// `VIXDISKLIB_FLAG_OPEN_*`.
    pub flags: u32,
    /// Change id that later QueryChangedAreas calls compare against; NULL or "" for none.
    pub changeId: *mut c_char,
}

/// Parameters of QueryChangedAreas (VDDK 9.0).
#[repr(C)]
pub struct VixDiskLibQueryChangedAreaParams {
    /// First sector of the range to answer.
    pub startOffset: VixDiskLibSectorType,
}

/// One answer of QueryChangedAreas (VDDK 9.0; library-allocated): the range it covers and
/// the changed areas inside it, in sectors.
#[repr(C)]
pub struct VixDiskLibDiskChangeInfo {
    /// First sector covered.
    pub startOffset: VixDiskLibSectorType,
    /// Sectors covered; the next query starts at `startOffset + length`.
    pub length: VixDiskLibSectorType,
    /// Changed areas inside the covered range.
    pub areas: *mut VixDiskLibBlockList,
}

/// Sector size of every VixDiskLib sector argument.
pub const VIXDISKLIB_SECTOR_SIZE: u32 = 512;
/// Smallest QueryAllocatedBlocks chunk (sectors).
pub const VIXDISKLIB_MIN_CHUNK_SIZE: u32 = 128;
/// Largest QueryAllocatedBlocks chunk (sectors).
pub const VIXDISKLIB_MAX_CHUNK_SIZE: u32 = 131072;
/// Most chunks in one QueryAllocatedBlocks call.
pub const VIXDISKLIB_MAX_CHUNK_NUMBER: u32 = 524288;
/// Open flag: bypass the host cache.
pub const VIXDISKLIB_FLAG_OPEN_UNBUFFERED: u32 = 1 << 0;
/// Open flag: do not open parents.
pub const VIXDISKLIB_FLAG_OPEN_SINGLE_LINK: u32 = 1 << 1;
/// Open flag: read-only.
pub const VIXDISKLIB_FLAG_OPEN_READ_ONLY: u32 = 1 << 2;
/// Open flag: zlib compression on NBD transports (ignored for files).
pub const VIXDISKLIB_FLAG_OPEN_COMPRESSION_ZLIB: u32 = 1 << 4;
/// Open flag: fastlz compression on NBD transports (ignored for files).
pub const VIXDISKLIB_FLAG_OPEN_COMPRESSION_FASTLZ: u32 = 1 << 5;
/// Open flag: skipz compression on NBD transports (ignored for files).
pub const VIXDISKLIB_FLAG_OPEN_COMPRESSION_SKIPZ: u32 = 1 << 6;
/// Bits reserved for compression flags.
pub const VIXDISKLIB_FLAG_OPEN_COMPRESSION_MASK: u32 = 0x03f0;
/// Workstation 4.
pub const VIXDISKLIB_HWVERSION_WORKSTATION_4: u16 = 3;
/// Workstation 5.
pub const VIXDISKLIB_HWVERSION_WORKSTATION_5: u16 = 4;
/// Workstation 6.
pub const VIXDISKLIB_HWVERSION_WORKSTATION_6: u16 = 6;
/// ESX 3.0.
pub const VIXDISKLIB_HWVERSION_ESX30: u16 = VIXDISKLIB_HWVERSION_WORKSTATION_5;
/// ESX 4.x.
pub const VIXDISKLIB_HWVERSION_ESX4X: u16 = 7;
/// ESX 5.0.
pub const VIXDISKLIB_HWVERSION_ESX50: u16 = 8;
/// ESX 5.1.
pub const VIXDISKLIB_HWVERSION_ESX51: u16 = 9;
/// ESX 5.5.
pub const VIXDISKLIB_HWVERSION_ESX55: u16 = 10;
/// ESX 6.0.
pub const VIXDISKLIB_HWVERSION_ESX60: u16 = 11;
/// ESX 6.5.
pub const VIXDISKLIB_HWVERSION_ESX65: u16 = 13;
/// The newest hardware version this header knows.
pub const VIXDISKLIB_HWVERSION_CURRENT: u16 = VIXDISKLIB_HWVERSION_ESX65;

// The layouts VMware's header has on x86-64 Linux; a mismatch fails the build.
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<VixDiskLibConnectParams>() == 136);
    assert!(offset_of!(VixDiskLibConnectParams, serverName) == 8);
    assert!(offset_of!(VixDiskLibConnectParams, sslCertificate) == 128);
    assert!(offset_of!(VixDiskLibConnectParams, credType) == 32);
    assert!(offset_of!(VixDiskLibConnectParams, creds) == 40);
    assert!(offset_of!(VixDiskLibConnectParams, port) == 64);
    assert!(offset_of!(VixDiskLibConnectParams, nfcHostPort) == 68);
    assert!(offset_of!(VixDiskLibConnectParams, vimApiVer) == 72);
    assert!(offset_of!(VixDiskLibConnectParams, reserved) == 80);
    assert!(offset_of!(VixDiskLibConnectParams, state) == 88);
    assert!(offset_of!(VixDiskLibConnectParams, spec) == 96);
    assert!(offset_of!(VixDiskLibConnectParams, specType) == 120);
    assert!(size_of::<VixDiskLibCreateParams>() == 32);
    assert!(offset_of!(VixDiskLibCreateParams, hwVersion) == 8);
    assert!(offset_of!(VixDiskLibCreateParams, capacity) == 16);
    assert!(offset_of!(VixDiskLibCreateParams, logicalSectorSize) == 24);
    assert!(size_of::<VixDiskLibInfo>() == 64);
    assert!(offset_of!(VixDiskLibInfo, capacity) == 24);
    assert!(offset_of!(VixDiskLibInfo, adapterType) == 32);
    assert!(offset_of!(VixDiskLibInfo, numLinks) == 36);
    assert!(offset_of!(VixDiskLibInfo, parentFileNameHint) == 40);
    assert!(offset_of!(VixDiskLibInfo, uuid) == 48);
    assert!(offset_of!(VixDiskLibInfo, logicalSectorSize) == 56);
    assert!(size_of::<VixDiskLibGeometry>() == 12);
    assert!(size_of::<VixDiskLibBlock>() == 16);
    assert!(size_of::<VixDiskLibBlockList>() == 24);
    assert!(offset_of!(VixDiskLibBlockList, blocks) == 8);
    assert!(size_of::<VixDiskLibOpenParams>() == 24);
    assert!(offset_of!(VixDiskLibOpenParams, flags) == 8);
    assert!(offset_of!(VixDiskLibOpenParams, changeId) == 16);
    assert!(size_of::<VixDiskLibQueryChangedAreaParams>() == 8);
    assert!(size_of::<VixDiskLibDiskChangeInfo>() == 24);
    assert!(offset_of!(VixDiskLibDiskChangeInfo, length) == 8);
    assert!(offset_of!(VixDiskLibDiskChangeInfo, areas) == 16);
};
