//! Where the engine's log lines go: one sink for the whole library (the C ABI's log callbacks
//! and a Rust program's sink are the same setting).

pub use crate::log::Level as LogLevel;

/// A destination for log lines: called with each line's level and text.
///
/// ```
/// let sink: vixDiskLib::LogSink = Box::new(|level, msg| eprintln!("{level:?}: {msg}"));
/// # drop(sink);
/// ```
pub type LogSink = Box<dyn Fn(LogLevel, &str) + Send + Sync>;

/// Sends the engine's log lines of `max_level` and more severe to `sink` (`None`: back to the
/// default, warnings on stderr). The sink is called from any thread that logs.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use vixDiskLib::{Connection, LogLevel, set_log_sink};
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let lines = Arc::clone(&seen);
/// set_log_sink(Some(Box::new(move |_, msg| lines.lock().unwrap().push(msg.to_string()))),
///     LogLevel::Warning);
/// let dir = tempfile::tempdir()?;
/// let _ = Connection::local().check(dir.path().join("missing.vmdk"), false);
/// set_log_sink(None, LogLevel::Info);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn set_log_sink(sink: Option<LogSink>, max_level: LogLevel) {
    crate::log::configure(sink, max_level);
}

/// Logs `msg` as a warning through the engine's sink, as the engine's own warnings go.
///
/// ```
/// vixDiskLib::log_warning("the backup target is nearly full");
/// ```
pub fn log_warning(msg: impl AsRef<str>) {
    crate::log::warn(msg);
}

/// Logs `msg` as information (shown at [`LogLevel::Info`] and more verbose).
///
/// ```
/// vixDiskLib::log_info("nightly backup started");
/// ```
pub fn log_info(msg: impl AsRef<str>) {
    crate::log::info(msg);
}

/// Logs `msg` as debugging detail (shown at [`LogLevel::Verbose`]).
///
/// ```
/// vixDiskLib::log_verbose("read 128 sectors at 0");
/// ```
pub fn log_verbose(msg: impl AsRef<str>) {
    crate::log::verbose(msg);
}
