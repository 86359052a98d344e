//! The panic boundary every exported function goes through: results become VixError codes,
//! failures and panics are logged, nothing unwinds into C.

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::codes::{VIX_E_FAIL, VIX_OK};
use super::errors::to_vix;
use super::types::VixError;
use crate::Error;
use crate::{log_verbose, log_warning};

/// Runs `f`; maps its error to a VixError (logging it with the function name) and turns a
/// panic into VIX_E_FAIL.
pub fn guard(name: &str, f: impl FnOnce() -> Result<(), Error>) -> VixError {
    guard_code(name, || f().map(|()| VIX_OK))
}

/// Like `guard`, for functions whose success value is itself a code (e.g. VIX_ASYNC).
pub fn guard_code(name: &str, f: impl FnOnce() -> Result<VixError, Error>) -> VixError {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            let code = to_vix(&e);
            if matches!(e, Error::BufferTooSmall { .. }) {
                // Size probing (NULL buffer first) is the normal calling pattern, not a failure.
                log_verbose(format!("{name}: {e}"));
            } else {
                log_warning(format!("{name}: {e}"));
            }
            code
        }
        Err(panic) => {
            log_warning(format!("{name}: internal error: {}", panic_text(&panic)));
            VIX_E_FAIL
        }
    }
}

/// For functions that return a pointer: a panic yields NULL.
pub fn guard_ptr<T>(name: &str, f: impl FnOnce() -> *mut T) -> *mut T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        log_warning(format!("{name}: internal error: {}", panic_text(&panic)));
        std::ptr::null_mut()
    })
}

/// For functions that return nothing: a panic is logged and swallowed.
pub fn guard_void(name: &str, f: impl FnOnce()) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(f)) {
        log_warning(format!("{name}: internal error: {}", panic_text(&panic)));
    }
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".into()
    }
}
