//! Library-wide log sink: the engine reports through here; the C layer decides where it goes.

use std::sync::RwLock;

/// Severity of a message, ordered like VDDK's `vixDiskLib.transport.LogLevel` (0 panic … 6 trivia).
///
/// ```
/// use vixDiskLib::LogLevel;
/// assert!(LogLevel::Warning < LogLevel::Info && LogLevel::Info < LogLevel::Verbose);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Something failed; the caller will get an error.
    Warning = 2,
    /// Normal operational messages.
    Info = 3,
    /// Detail useful when debugging.
    Verbose = 4,
}

/// A destination for log lines.
pub type Sink = Box<dyn Fn(Level, &str) + Send + Sync>;

struct Logger {
    sink: Option<Sink>,
    max_level: Level,
}

static LOGGER: RwLock<Logger> = RwLock::new(Logger {
    sink: None,
    max_level: Level::Info,
});

/// Installs `sink` (None restores the default: warnings to stderr) and the most verbose level kept.
pub fn configure(sink: Option<Sink>, max_level: Level) {
    let mut logger = LOGGER.write().unwrap_or_else(|e| e.into_inner());
    logger.sink = sink;
    logger.max_level = max_level;
}

/// Emits one message at `level`.
pub fn emit(level: Level, msg: &str) {
    let logger = LOGGER.read().unwrap_or_else(|e| e.into_inner());
    if level > logger.max_level {
        return;
    }
    match &logger.sink {
        Some(sink) => sink(level, msg),
        None if level == Level::Warning => eprintln!("vixDiskLib: {msg}"),
        None => {}
    }
}

/// Logs an informational message.
pub fn info(msg: impl AsRef<str>) {
    emit(Level::Info, msg.as_ref());
}

/// Logs a warning (also the level used for every error returned to a caller).
pub fn warn(msg: impl AsRef<str>) {
    emit(Level::Warning, msg.as_ref());
}

/// Logs debugging detail.
pub fn verbose(msg: impl AsRef<str>) {
    emit(Level::Verbose, msg.as_ref());
}
