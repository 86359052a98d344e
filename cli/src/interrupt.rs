//! Ctrl-C (SIGINT), SIGTERM and SIGHUP (ctrlc's `termination` feature): the handler only
//! raises a flag. Copy loops check it between chunks, stop, remove a half-made target and
//! close every disk normally, so nothing is left half-written.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::failure::{CmdResult, Failure};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Installs the handler (once, at start-up).
pub fn install() {
    // Without a handler the default action would kill us mid-write; if installing fails we
    // still run, just without the clean stop.
    let _ = ctrlc::set_handler(|| REQUESTED.store(true, Ordering::SeqCst));
}

/// True once the user asked us to stop.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// `Err(Interrupted)` once the user asked us to stop.
pub fn check() -> CmdResult {
    if requested() {
        Err(Failure::Interrupted)
    } else {
        Ok(())
    }
}
