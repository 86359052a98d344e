//! The per-process cache of open extent files. A split disk of 8 TiB has 4 097 files and a
//! process may open many such disks, so extent files cannot all stay open under the usual
//! limit of open descriptors. Each extent holds a `CachedFile`: its path, the identity (device
//! and inode) of the file it opened, and, while cached, an open descriptor. At most
//! `limit()` descriptors are cached; opening one more first closes the least recently used
//! (CLOCK: every use sets a flag, the sweep closes the first entry whose flag is clear).
//!
//! What is never cached (and so never closed while its disk is open) lives elsewhere: the
//! descriptor file of each link, which holds the disk's lock (a `flock` dies with its
//! descriptor), and the change-tracking file. A monolithic extent shares the link's
//! descriptor (`CachedFile::pinned`).
//!
//! Reopening checks that the path still names the file first opened (same device and inode):
//! an extent unlinked or replaced while its disk is open fails that I/O with an error and a
//! log line; it never reads another file's data.
//!
//! Durability: every write through a cached file marks it unsynced. Closing an unsynced
//! writable descriptor on eviction first fdatasyncs it; an error from that sync is kept and
//! returned by the next sync of the file (the Flush that must cover the write). A sync of a
//! file that is not open and was not written since its last sync does not reopen it.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::fileio;
use crate::error::{Error, Result};
use crate::log;

/// Cached descriptors allowed; 0 until set (then `default_limit()` applies).
static LIMIT: AtomicUsize = AtomicUsize::new(0);
/// Cached files that hold a descriptor, in CLOCK order.
static RING: Mutex<Ring> = Mutex::new(Ring {
    slots: Vec::new(),
    hand: 0,
});
/// Descriptors opened by the cache (first opens and reopens) and closed by eviction.
static OPENS: AtomicU64 = AtomicU64::new(0);
static EVICTIONS: AtomicU64 = AtomicU64::new(0);

/// Fewest descriptors the cache will work with: a read or write touches at most a few extents
/// of each link at once.
pub(crate) const MIN_LIMIT: usize = 4;

struct Ring {
    slots: Vec<Weak<Entry>>,
    hand: usize,
}

fn ring() -> MutexGuard<'static, Ring> {
    RING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sets how many extent descriptors the process keeps open (`vixDiskLib.maxOpenFiles`);
/// 0 restores the default. Takes effect at the next open.
pub fn set_limit(n: usize) {
    LIMIT.store(if n == 0 { 0 } else { n.max(MIN_LIMIT) }, Ordering::Relaxed);
}

/// How many extent descriptors the process keeps open.
pub fn limit() -> usize {
    match LIMIT.load(Ordering::Relaxed) {
        0 => default_limit(),
        n => n,
    }
}

/// A quarter of the soft `RLIMIT_NOFILE` (read once from /proc/self/limits), leaving the rest
/// to the lock holders, tracking files and the application. 256 if the limit is unreadable.
pub fn default_limit() -> usize {
    static DEFAULT: once_cell::sync::Lazy<usize> = once_cell::sync::Lazy::new(|| {
        let soft = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|t| soft_nofile(&t))
            .unwrap_or(1024);
        (soft / 4).max(MIN_LIMIT)
    });
    *DEFAULT
}

/// The soft "Max open files" of a `/proc/<pid>/limits` text ("unlimited" counts as 1 << 20).
fn soft_nofile(limits: &str) -> Option<usize> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    if soft == "unlimited" {
        return Some(1 << 20);
    }
    soft.parse().ok()
}

/// Counters for tests and benchmarks: (descriptors opened, descriptors evicted, cached now).
pub fn stats() -> (u64, u64, usize) {
    let cached = ring().slots.iter().filter(|w| w.strong_count() > 0).count();
    (
        OPENS.load(Ordering::Relaxed),
        EVICTIONS.load(Ordering::Relaxed),
        cached,
    )
}

struct Entry {
    path: PathBuf,
    writable: bool,
    /// (device, inode) of the file first opened; reopens must find the same.
    identity: (u64, u64),
    /// Never evicted (shares the link's own descriptor).
    pinned: bool,
    fd: Mutex<Option<Arc<File>>>,
    /// Used since the CLOCK hand last passed.
    referenced: AtomicBool,
    /// Written since the last sync.
    unsynced: AtomicBool,
    /// A sync at eviction failed: the next sync reports it.
    deferred: Mutex<Option<Error>>,
}

impl Entry {
    fn fd(&self) -> MutexGuard<'_, Option<Arc<File>>> {
        self.fd.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Closes an evicted descriptor, syncing it first if it holds unsynced writes.
    fn retire(&self, file: Arc<File>) {
        EVICTIONS.fetch_add(1, Ordering::Relaxed);
        // Clear the flag before the sync: a write that completes later sets it again.
        if self.writable
            && self.unsynced.swap(false, Ordering::AcqRel)
            && let Err(e) = fileio::sync_data(&file, &self.path)
        {
            self.unsynced.store(true, Ordering::Release);
            log::warn(format!(
                "{}: sync before closing the cached descriptor failed: {e}",
                self.path.display()
            ));
            *self.deferred.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
        }
    }

    /// Opens the path again and checks it is still the same file.
    fn reopen(&self) -> Result<File> {
        let gone = |why: String| {
            log::warn(format!("{}: {why}", self.path.display()));
            Error::Io {
                path: self.path.clone(),
                source: std::io::Error::other(why),
            }
        };
        let (file, md) = match open_with_room(&self.path, self.writable) {
            Ok(opened) => opened,
            Err(Error::FileNotFound(_)) => {
                return Err(gone(
                    "extent file vanished while its disk was open; refusing the I/O".into(),
                ));
            }
            Err(e) => return Err(e),
        };
        if (md.dev(), md.ino()) != self.identity {
            return Err(gone(
                "extent file was replaced while its disk was open (another inode); refusing the I/O"
                    .into(),
            ));
        }
        Ok(file)
    }
}

/// Evicts until fewer than `keep` descriptors are cached; syncs and closes the victims
/// outside the ring's lock.
fn evict_to(keep: usize) {
    let mut victims = Vec::new();
    {
        let mut r = ring();
        // Two passes clear every flag; the bound only matters if other threads keep setting
        // them, and then the hand evicts regardless.
        let mut budget = r.slots.len() * 3 + 1;
        while r.slots.len() >= keep && !r.slots.is_empty() {
            if r.hand >= r.slots.len() {
                r.hand = 0;
            }
            let hand = r.hand;
            let Some(entry) = r.slots[hand].upgrade() else {
                r.slots.swap_remove(hand);
                continue;
            };
            budget = budget.saturating_sub(1);
            if budget > 0 && entry.referenced.swap(false, Ordering::AcqRel) {
                r.hand += 1;
                continue;
            }
            r.slots.swap_remove(hand);
            let taken = entry.fd().take();
            if let Some(file) = taken {
                victims.push((entry, file));
            }
        }
    }
    for (entry, file) in victims {
        entry.retire(file);
    }
}

/// Opens `path` after making room in the cache. A process out of descriptors (EMFILE: the
/// application holds many) gets half the cache closed and one more try.
fn open_with_room(path: &Path, writable: bool) -> Result<(File, std::fs::Metadata)> {
    evict_to(limit());
    match fileio::open_regular_with_metadata(path, writable) {
        Err(Error::Io { source, .. }) if source.raw_os_error() == Some(libc::EMFILE) => {
            evict_to(limit() / 2);
            fileio::open_regular_with_metadata(path, writable)
        }
        other => other,
    }
}

/// An extent file whose descriptor the cache may close and reopen.
pub struct CachedFile(Arc<Entry>);

impl CachedFile {
    /// Opens an extent file (refusing anything but a regular file) into the cache.
    pub fn open(path: &Path, writable: bool) -> Result<CachedFile> {
        let (file, md) = open_with_room(path, writable)?;
        let entry = Entry {
            path: path.to_path_buf(),
            writable,
            identity: (md.dev(), md.ino()),
            pinned: false,
            fd: Mutex::new(None),
            referenced: AtomicBool::new(true),
            unsynced: AtomicBool::new(false),
            deferred: Mutex::new(None),
        };
        let cached = CachedFile(Arc::new(entry));
        cached.install(Arc::new(file));
        Ok(cached)
    }

    /// A descriptor that stays open as long as this value (the link's own file, which holds
    /// its lock): the cache never closes it.
    pub fn pinned(file: Arc<File>, path: &Path, writable: bool) -> CachedFile {
        CachedFile(Arc::new(Entry {
            path: path.to_path_buf(),
            writable,
            identity: (0, 0),
            pinned: true,
            fd: Mutex::new(Some(file)),
            referenced: AtomicBool::new(true),
            unsynced: AtomicBool::new(false),
            deferred: Mutex::new(None),
        }))
    }

    fn install(&self, file: Arc<File>) -> Arc<File> {
        {
            let mut fd = self.0.fd();
            if let Some(other) = fd.as_ref() {
                // Another thread reopened it meanwhile: use that one, close ours.
                return Arc::clone(other);
            }
            *fd = Some(Arc::clone(&file));
        }
        self.0.referenced.store(true, Ordering::Release);
        OPENS.fetch_add(1, Ordering::Relaxed);
        ring().slots.push(Arc::downgrade(&self.0));
        file
    }

    /// The path the file was opened with.
    pub fn path(&self) -> &Path {
        &self.0.path
    }

    /// The open descriptor, reopened (and checked to be the same file) if it was evicted.
    /// The caller's `Arc` keeps it open while it is in use even if the cache evicts it.
    pub fn get(&self) -> Result<Arc<File>> {
        if let Some(f) = self.0.fd().as_ref() {
            self.0.referenced.store(true, Ordering::Relaxed);
            return Ok(Arc::clone(f));
        }
        let file = Arc::new(self.0.reopen()?);
        Ok(self.install(file))
    }

    /// Like `get`, for writing: when the returned guard drops, the file counts as written
    /// since its last sync (so a Flush syncs it even if the cache evicted it meanwhile).
    pub fn writing(&self) -> Result<Writing<'_>> {
        Ok(Writing {
            file: self.get()?,
            owner: self,
        })
    }

    /// Notes that data was written through a descriptor from `get` (kernel copies).
    pub fn note_written(&self) {
        self.0.unsynced.store(true, Ordering::Release);
    }

    /// Makes everything written so far durable through `file` (a descriptor from `get`),
    /// reporting a failed sync at eviction first.
    pub fn sync_with(&self, file: &File) -> Result<()> {
        if let Some(e) = self
            .0
            .deferred
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            return Err(e);
        }
        // Cleared before the sync: a write completing meanwhile sets it again.
        self.0.unsynced.store(false, Ordering::Release);
        fileio::sync_data(file, &self.0.path).inspect_err(|_| self.note_written())
    }

    /// Makes everything written so far durable. A file whose descriptor was evicted and that
    /// was not written since is not reopened (its data was synced at eviction).
    pub fn sync_data(&self) -> Result<()> {
        let open = self.0.fd().as_ref().map(Arc::clone);
        let file = match open {
            Some(f) => f,
            None => {
                let pending = self.0.unsynced.load(Ordering::Acquire)
                    || self
                        .0
                        .deferred
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .is_some();
                if !pending {
                    return Ok(());
                }
                self.get()?
            }
        };
        self.sync_with(&file)
    }

    /// True if the cache never closes this file.
    pub fn is_pinned(&self) -> bool {
        self.0.pinned
    }
}

/// A descriptor being written through; marks its file unsynced when dropped.
pub struct Writing<'a> {
    file: Arc<File>,
    owner: &'a CachedFile,
}

impl std::ops::Deref for Writing<'_> {
    type Target = File;
    fn deref(&self) -> &File {
        &self.file
    }
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.owner.note_written();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tests that evict everything run one at a time (the cache is per process).
    static SERIAL: Mutex<()> = Mutex::new(());

    #[test]
    fn soft_limit_is_read_from_proc_limits() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max cpu time              unlimited            unlimited            seconds   \n\
                    Max open files            1024                 524288               files     \n";
        assert_eq!(soft_nofile(text), Some(1024));
        assert_eq!(
            soft_nofile(
                "Max open files            unlimited            unlimited            files"
            ),
            Some(1 << 20)
        );
        assert_eq!(soft_nofile("nothing here"), None);
    }

    #[test]
    fn eviction_syncs_written_files_and_flush_reopens_only_what_needs_it() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("extent");
        std::fs::write(&path, [0u8; 4096]).unwrap();
        let f = CachedFile::open(&path, true).unwrap();
        let unsynced = || f.0.unsynced.load(Ordering::Acquire);
        let is_open = || f.0.fd().is_some();
        fileio::write_all_at(&f.writing().unwrap(), &path, b"one", 0).unwrap();
        assert!(unsynced());
        // Evicting everything: the written descriptor is synced before it closes.
        evict_to(0);
        assert!(!is_open() && !unsynced());
        // Nothing written since: a sync does not reopen the file.
        f.sync_data().unwrap();
        assert!(!is_open());
        // A write through a descriptor held across an eviction is still synced by the next
        // flush, which reopens the file for it.
        let held = f.get().unwrap();
        evict_to(0);
        fileio::write_all_at(&held, &path, b"two", 0).unwrap();
        f.note_written();
        drop(held);
        assert!(!is_open() && unsynced());
        f.sync_data().unwrap();
        assert!(is_open() && !unsynced());
        assert_eq!(&std::fs::read(&path).unwrap()[..3], b"two");
    }

    #[test]
    fn pinned_files_are_never_evicted() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("link");
        std::fs::write(&path, [0u8; 512]).unwrap();
        let file = Arc::new(File::open(&path).unwrap());
        let f = CachedFile::pinned(Arc::clone(&file), &path, false);
        evict_to(0);
        assert!(f.is_pinned());
        assert!(Arc::ptr_eq(&f.get().unwrap(), &file));
    }
}
