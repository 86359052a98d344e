//! Checked conversions of C arguments: NULL checks, C strings, buffers and out-parameters.

use std::ffi::{CStr, c_char};
use std::path::PathBuf;

use crate::{Error, Result};

/// A required C string argument as UTF-8 text.
pub fn str_arg<'a>(p: *const c_char, what: &str) -> Result<&'a str> {
    if p.is_null() {
        return Err(Error::InvalidArg(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL and, by the API contract, a NUL-terminated string that outlives the call.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str()
        .map_err(|_| Error::InvalidArg(format!("{what} is not valid UTF-8")))
}

/// An optional C string (NULL → None).
pub fn opt_str_arg<'a>(p: *const c_char, what: &str) -> Result<Option<&'a str>> {
    if p.is_null() {
        Ok(None)
    } else {
        str_arg(p, what).map(Some)
    }
}

/// A required, non-empty path argument.
pub fn path_arg(p: *const c_char, what: &str) -> Result<PathBuf> {
    let s = str_arg(p, what)?;
    if s.is_empty() {
        return Err(Error::InvalidArg(format!("{what} is empty")));
    }
    Ok(PathBuf::from(s))
}

/// Byte length of `sectors` 512-byte sectors, checked for overflow.
pub fn sector_bytes(sectors: u64) -> Result<usize> {
    sectors
        .checked_mul(512)
        .and_then(|b| usize::try_from(b).ok())
        // A Rust slice may not be longer than isize::MAX bytes.
        .filter(|&b| b <= isize::MAX as usize)
        .ok_or_else(|| Error::InvalidArg(format!("{sectors} sectors is too large")))
}

/// A caller buffer of `len` bytes to fill. A zero-length buffer may be NULL.
pub fn buf_mut<'a>(p: *mut u8, len: usize, what: &str) -> Result<&'a mut [u8]> {
    if len == 0 {
        return Ok(&mut []);
    }
    if p.is_null() {
        return Err(Error::InvalidArg(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL, and the caller promises `len` writable bytes for the call's duration.
    Ok(unsafe { std::slice::from_raw_parts_mut(p, len) })
}

/// A caller buffer of `len` bytes to read. A zero-length buffer may be NULL.
pub fn buf<'a>(p: *const u8, len: usize, what: &str) -> Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Error::InvalidArg(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL, and the caller promises `len` readable bytes for the call's duration.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Checks that an out-parameter is non-NULL.
pub fn out_arg<T>(p: *mut T, what: &str) -> Result<*mut T> {
    if p.is_null() {
        Err(Error::InvalidArg(format!("{what} is NULL")))
    } else {
        Ok(p)
    }
}

/// Stores `value` through an out-parameter checked by `out_arg`.
pub fn store<T>(p: *mut T, value: T) {
    // SAFETY: `p` was checked non-NULL by `out_arg` and points at caller storage for a `T`.
    unsafe { p.write(value) };
}

/// Stores `value` through an optional out-parameter (NULL → ignored).
pub fn store_opt<T>(p: *mut T, value: T) {
    if !p.is_null() {
        store(p, value);
    }
}

/// Allocates a C copy of `s` with malloc (freed by the matching Free* call with `free`).
pub fn malloc_cstring(s: &str) -> *mut c_char {
    let c = std::ffi::CString::new(s.replace('\0', "")).unwrap_or_default();
    // SAFETY: `c` is a valid NUL-terminated string; strdup copies it into malloc'd memory.
    unsafe { libc::strdup(c.as_ptr()) }
}

/// Frees a string made by `malloc_cstring` (NULL allowed).
pub fn free_cstring(p: *mut c_char) {
    if !p.is_null() {
        // SAFETY: `p` came from `malloc_cstring` (strdup), so `free` is the matching release.
        unsafe { libc::free(p.cast()) };
    }
}
