//! Where the engine's log lines go: stderr, warnings always, informational ones with
//! `--verbose`. A command that reports the same findings itself (`check`) mutes the engine's
//! warnings while it works, so each problem is printed once.

use std::sync::atomic::{AtomicBool, Ordering};

use vixDiskLib::{LogLevel as Level, set_log_sink};

static MUTED: AtomicBool = AtomicBool::new(false);

/// Sends the engine's log lines to stderr (once, at start-up).
pub fn install(verbose: bool) {
    let level = if verbose { Level::Info } else { Level::Warning };
    set_log_sink(
        Some(Box::new(|level, msg| {
            if level == Level::Warning && MUTED.load(Ordering::SeqCst) {
                return;
            }
            let tag = if level == Level::Warning {
                "warning"
            } else {
                "info"
            };
            eprintln!("vixdisk: {tag}: {msg}");
        })),
        level,
    );
}

/// Runs `work` with the engine's warnings muted (the caller prints what they would say).
pub fn without_warnings<T>(work: impl FnOnce() -> T) -> T {
    MUTED.store(true, Ordering::SeqCst);
    let out = work();
    MUTED.store(false, Ordering::SeqCst);
    out
}

/// Prints a warning of the tool itself, in the engine's format.
pub fn warn(msg: &str) {
    eprintln!("vixdisk: warning: {msg}");
}
