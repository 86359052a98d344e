//! Progress callbacks of long calls (Create, Clone, Grow, Commit, …) as the engine's closures.

use std::ffi::{c_int, c_void};

use super::types::VixDiskLibProgressFunc;

/// Calls a C progress callback (if any) with a percentage.
pub fn progress_reporter(func: VixDiskLibProgressFunc, data: *mut c_void) -> impl FnMut(u32) {
    let data = data as usize;
    move |percent: u32| {
        if let Some(f) = func {
            // SAFETY: the caller supplied this callback and its data for the duration of the call.
            unsafe { f(data as *mut c_void, percent.min(100) as c_int) };
        }
    }
}
