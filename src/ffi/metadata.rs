//! Disk metadata: the descriptor's DDB entries, keys without the `ddb.` prefix.

use std::ffi::c_char;

use super::args::{buf_mut, store_opt, str_arg};
use super::boundary::guard;
use super::handles::DISKS;
use super::library::require_init;
use super::types::{VixDiskLibHandle, VixError};
use crate::{Error, Result};

/// Copies `bytes` into a caller buffer of `max_len`, or reports the size needed.
fn copy_out(bytes: &[u8], out: *mut c_char, max_len: usize, required: *mut usize) -> Result<()> {
    store_opt(required, bytes.len());
    if out.is_null() || max_len < bytes.len() {
        return Err(Error::BufferTooSmall {
            required: bytes.len(),
        });
    }
    buf_mut(out.cast(), bytes.len(), "buffer")?.copy_from_slice(bytes);
    Ok(())
}

/// Writes every key as a NUL-terminated string followed by a final NUL. With `keys` NULL or
/// `maxLen` too small, the buffer is untouched, `*requiredLen` says how much is needed, and the
/// result is VIX_E_BUFFER_TOOSMALL.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_GetMetadataKeys(
    diskHandle: VixDiskLibHandle,
    keys: *mut c_char,
    maxLen: usize,
    requiredLen: *mut usize,
) -> VixError {
    guard("VixDiskLib_GetMetadataKeys", || {
        require_init()?;
        let h = DISKS.get(diskHandle as usize)?;
        let mut bytes = Vec::new();
        for k in h.disk.metadata_keys()? {
            bytes.extend_from_slice(k.as_bytes());
            bytes.push(0);
        }
        bytes.push(0);
        copy_out(&bytes, keys, maxLen, requiredLen)
    })
}

/// Reads the value of `key` as a NUL-terminated string (`requiredLen` counts the NUL and may be
/// NULL). Missing key: VIX_E_DISK_KEY_NOTFOUND. Lookups walk from the leaf towards the base.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_ReadMetadata(
    diskHandle: VixDiskLibHandle,
    key: *const c_char,
    buf: *mut c_char,
    bufLen: usize,
    requiredLen: *mut usize,
) -> VixError {
    guard("VixDiskLib_ReadMetadata", || {
        require_init()?;
        let h = DISKS.get(diskHandle as usize)?;
        let key = str_arg(key, "key")?;
        let value = h
            .disk
            .metadata(key)?
            .ok_or_else(|| Error::KeyNotFound(key.to_string()))?;
        let mut bytes = value.into_bytes();
        bytes.push(0);
        copy_out(&bytes, buf, bufLen, requiredLen)
    })
}

/// Creates or updates `key` in the leaf's descriptor (persisted immediately). Keys can be set to
/// an empty value but not deleted.
#[unsafe(no_mangle)]
pub extern "C" fn VixDiskLib_WriteMetadata(
    diskHandle: VixDiskLibHandle,
    key: *const c_char,
    val: *const c_char,
) -> VixError {
    guard("VixDiskLib_WriteMetadata", || {
        require_init()?;
        let h = DISKS.get(diskHandle as usize)?;
        let key = str_arg(key, "key")?;
        let val = str_arg(val, "val")?;
        h.disk.set_metadata(key, val)
    })
}
