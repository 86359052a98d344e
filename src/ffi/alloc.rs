//! Memory the library hands to C callers (info structs, block lists, connection params):
//! allocated with malloc and recorded, so the matching Free* call can refuse pointers that are
//! not ours instead of corrupting the heap.

use std::collections::HashSet;
use std::sync::Mutex;

static OWNED: Mutex<Option<HashSet<usize>>> = Mutex::new(None);

/// Allocates `size` zeroed bytes with calloc and records the pointer. NULL if out of memory.
pub fn calloc_owned(size: usize) -> *mut u8 {
    // SAFETY: calloc with a non-zero size either fails (NULL) or returns zeroed memory.
    let p = unsafe { libc::calloc(1, size.max(1)) }.cast::<u8>();
    if !p.is_null() {
        OWNED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(HashSet::new)
            .insert(p as usize);
    }
    p
}

/// Forgets and frees a pointer from `calloc_owned`; returns false (doing nothing) for NULL or
/// pointers this library did not allocate.
pub fn free_owned(p: *mut u8) -> bool {
    let known = OWNED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_mut()
        .is_some_and(|s| s.remove(&(p as usize)));
    if known {
        // SAFETY: `p` was returned by calloc in `calloc_owned` and has not been freed since
        // (it was still recorded).
        unsafe { libc::free(p.cast()) };
    }
    known
}

/// True if `p` was allocated by `calloc_owned` and not freed yet.
pub fn is_owned(p: *mut u8) -> bool {
    OWNED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .is_some_and(|s| s.contains(&(p as usize)))
}
