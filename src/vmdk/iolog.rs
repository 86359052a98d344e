//! A recording hook under every change the library makes to files, for the crash-state
//! explorer (`tests/crash_states.rs`): it replays what a power cut could have left on disk, so
//! it must see each write, sync, truncate, create, rename, link and unlink in the order they
//! happen. The primitives in `fileio` and `atomic` report here; nothing else changes files.
//!
//! Production pays one relaxed atomic load per primitive: the recorder is consulted only while
//! one is installed. Files are named by inode number (taken with `fstat` only while recording),
//! so a write through a descriptor whose name was renamed meanwhile lands on the right file.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// One change to the file system, as the library asked for it.
#[derive(Debug)]
pub enum IoEvent<'a> {
    /// A new file opened at `path` (or an existing one truncated to nothing by the open).
    Create { path: &'a Path, ino: u64 },
    /// `data` written at `offset` of the file `ino` (a kernel copy is reported as the bytes it
    /// put there).
    Write {
        ino: u64,
        path: &'a Path,
        offset: u64,
        data: &'a [u8],
    },
    /// The file's length set to `len`.
    SetLen { ino: u64, path: &'a Path, len: u64 },
    /// `fsync`/`fdatasync` of the file: its data and length are durable.
    Sync { ino: u64, path: &'a Path },
    /// `fsync` of a directory: names created, renamed or removed in it are durable.
    SyncDir { dir: &'a Path },
    /// `rename(from, to)`.
    Rename { from: &'a Path, to: &'a Path },
    /// `link(from, to)`.
    Link { from: &'a Path, to: &'a Path },
    /// `unlink(path)`.
    Unlink { path: &'a Path },
}

/// Receives every event while installed (tests only).
pub trait IoRecorder: Send + Sync {
    /// Called after the operation succeeded, on the thread that did it.
    fn record(&self, event: IoEvent<'_>);
}

static ON: AtomicBool = AtomicBool::new(false);
static RECORDER: Mutex<Option<Arc<dyn IoRecorder>>> = Mutex::new(None);

/// Installs (or with `None` removes) the recorder. Test harnesses only: it sees the whole
/// process's file changes.
pub fn install(recorder: Option<Arc<dyn IoRecorder>>) {
    let mut slot = RECORDER.lock().unwrap_or_else(|e| e.into_inner());
    ON.store(recorder.is_some(), Ordering::SeqCst);
    *slot = recorder;
}

/// True while a recorder is installed: the only cost on the normal path.
#[inline]
pub(crate) fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Hands `event` to the recorder, if one is still installed.
pub(crate) fn record(event: IoEvent<'_>) {
    let recorder = RECORDER.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if let Some(r) = recorder {
        r.record(event);
    }
}

/// The inode number of an open file (0 if fstat fails, which the recorder reports).
pub(crate) fn ino(file: &File) -> u64 {
    file.metadata().map(|m| m.ino()).unwrap_or(0)
}
