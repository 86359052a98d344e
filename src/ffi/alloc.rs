//! Memory the library hands to C callers (info structs, block lists, connection params):
//! allocated with malloc and recorded with its kind, so the matching Free* call can refuse
//! pointers that are not ours, or ours but of another kind, instead of corrupting the heap.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::Error;

/// What an allocation holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A `VixDiskLibInfo` (with its strings).
    Info,
    /// A `VixDiskLibBlockList`.
    BlockList,
    /// A `VixDiskLibConnectParams`.
    ConnectParams,
    /// A `VixDiskLibDiskChangeInfo` (its `areas` list is a `BlockList` of its own).
    ChangeInfo,
}

static OWNED: Mutex<Option<HashMap<usize, Kind>>> = Mutex::new(None);

/// Allocates `size` zeroed bytes with calloc and records the pointer.
pub fn calloc_owned(size: usize, kind: Kind) -> Result<*mut u8, Error> {
    // SAFETY: calloc with a non-zero size either fails (NULL) or returns zeroed memory.
    let p = unsafe { libc::calloc(1, size.max(1)) }.cast::<u8>();
    if !p.is_null() {
        OWNED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(HashMap::new)
            .insert(p as usize, kind);
        Ok(p)
    } else {
        Err(Error::OutOfMemory)
    }
}

/// True if `p` came from `calloc_owned` with `kind` and was not freed yet.
pub fn is_owned(p: *mut u8, kind: Kind) -> bool {
    OWNED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .is_some_and(|m| m.get(&(p as usize)) == Some(&kind))
}

/// Forgets and frees a pointer from `calloc_owned` of `kind`; returns false (doing nothing)
/// for NULL, foreign pointers and allocations of another kind.
pub fn free_owned(p: *mut u8, kind: Kind) -> bool {
    let known = {
        let mut guard = OWNED.lock().unwrap_or_else(|e| e.into_inner());
        match guard.as_mut() {
            Some(m) if m.get(&(p as usize)) == Some(&kind) => m.remove(&(p as usize)).is_some(),
            _ => false,
        }
    };
    if known {
        // SAFETY: `p` was returned by calloc in `calloc_owned` and has not been freed since
        // (it was still recorded).
        unsafe { libc::free(p.cast()) };
    }
    known
}
