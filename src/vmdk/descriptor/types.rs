//! Which createTypes and extent types we read, and the NotSupported errors for the rest.

use crate::error::{Error, Result};

/// An extent type VMware writes that we do not read (raw device mappings, vSAN), or any other
/// word that looks like a type: NotSupported naming it. None for garbage (then the line is
/// damage, not a type).
pub(super) fn unsupported_extent_type(word: &str) -> Option<Error> {
    if word.is_empty()
        || word.len() > 32
        || !word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return None;
    }
    let what = match word.to_ascii_uppercase().as_str() {
        "VMFSRDM" => "a raw device mapping",
        "VMFSRAW" => "a raw VMFS device",
        "VSANSPARSE" => "a vSAN sparse object",
        _ => "unknown",
    };
    Some(Error::NotSupported(format!(
        "extent type {word} ({what}) is not supported"
    )))
}

/// createType values whose disks we read (raw-disk types need an opt-in, checked when opening).
const KNOWN_CREATE_TYPES: &[&str] = &[
    "monolithicSparse",
    "monolithicFlat",
    "twoGbMaxExtentSparse",
    "twoGbMaxExtentFlat",
    "streamOptimized",
    "vmfs",
    "vmfsSparse",
    "vmfsThin",
    "vmfsPreallocated",
    "vmfsEagerZeroedThick",
    "vmfsThick",
    "seSparse",
    "custom",
    "fullDevice",
    "partitionedDevice",
];

/// VMware createTypes we know and do not read, with what they are.
const UNSUPPORTED_CREATE_TYPES: &[(&str, &str)] = &[
    ("vmfsRDM", "a raw device mapping"),
    ("vmfsRawDeviceMap", "a raw device mapping"),
    (
        "vmfsPassthroughRawDeviceMap",
        "a pass-through raw device mapping",
    ),
    ("vmfsRaw", "a raw VMFS device"),
    ("vsanSparse", "a vSAN sparse snapshot"),
];

/// True for the Workstation raw-disk createTypes (extents on host devices).
pub fn is_raw_disk_type(create_type: &str) -> bool {
    ["fullDevice", "partitionedDevice"]
        .iter()
        .any(|t| t.eq_ignore_ascii_case(create_type))
}

/// Refuses a createType we do not read: NotSupported naming it. An absent createType is
/// accepted (old descriptors), as is every type in `KNOWN_CREATE_TYPES`.
pub(super) fn check_create_type(create_type: &str) -> Result<()> {
    if create_type.is_empty()
        || KNOWN_CREATE_TYPES
            .iter()
            .any(|t| t.eq_ignore_ascii_case(create_type))
    {
        return Ok(());
    }
    let what = UNSUPPORTED_CREATE_TYPES
        .iter()
        .find(|(t, _)| t.eq_ignore_ascii_case(create_type))
        .map_or("an unknown disk type", |(_, what)| what);
    let shown: String = create_type.chars().take(64).collect();
    Err(Error::NotSupported(format!(
        "createType \"{shown}\" ({what}) is not supported"
    )))
}
