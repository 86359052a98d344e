//! What every kind of disk answers: one trait (`DiskBackend`) that a local chain of VMDK links
//! (`chain::Disk`, in `local`) and a remote NBD export (`remote::disk::NbdDisk`) implement.
//! The facade's `Disk` holds a disk as this trait and reaches kind-specific calls (metadata,
//! redo logs, compaction, …) only through the concrete type.

mod local;
mod pool;

use std::sync::Arc;

use crate::chain::DiskInfo;
use crate::error::{Error, Result};

pub use crate::remote::sys::IoBuf;

/// Runs once when an asynchronous request finishes, with its result, on a library thread (the
/// facade re-exports it as `Completion`).
///
/// ```
/// let done: vixDiskLib::Completion = Box::new(|result| {
///     if let Err(e) = result {
///         eprintln!("request failed: {e}");
///     }
/// });
/// # drop(done);
/// ```
pub type Finish = Box<dyn FnOnce(Result<()>) + Send>;

/// How a disk is reached (what GetTransportMode reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Files on this host.
    File,
    /// An NBD server, without TLS.
    Nbd,
    /// An NBD server, over TLS.
    NbdSsl,
}

impl Transport {
    /// VDDK's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Transport::File => "file",
            Transport::Nbd => "nbd",
            Transport::NbdSsl => "nbdssl",
        }
    }
}

/// An open disk of any kind. Sectors are 512 bytes; buffers hold whole sectors.
pub trait DiskBackend: Send + Sync {
    /// Capacity in sectors.
    fn capacity(&self) -> u64;

    /// Reads whole sectors at `sector` into `buf`.
    fn read(&self, sector: u64, buf: &mut [u8]) -> Result<()>;

    /// Writes whole sectors at `sector`.
    fn write(&self, sector: u64, data: &[u8]) -> Result<()>;

    /// Makes completed writes durable.
    fn flush(&self) -> Result<()>;

    /// Flushes and releases the disk.
    fn close(&self) -> Result<()>;

    /// What GetInfo reports.
    fn info(&self) -> DiskInfo;

    /// QueryAllocatedBlocks' answer: allocated `chunk`-sector chunks of `[start, start +
    /// count)` as (first sector, sectors) runs (VDDK's argument rules apply).
    fn allocated_chunks(&self, start: u64, count: u64, chunk: u64) -> Result<Vec<(u64, u64)>>;

    /// QueryChangedAreas' answer for `[start, end)` since the change id `since`.
    fn changed_areas(&self, since: &str, start: u64, end: u64) -> Result<Vec<(u64, u64)>>;

    /// How the disk is reached.
    fn transport(&self) -> Transport;

    /// Starts reading whole sectors at `sector` into `buf`. When this returns Ok, `done` runs
    /// exactly once, on a library thread, when the read finished; on Err nothing was started
    /// and `done` never runs.
    fn read_async(self: Arc<Self>, sector: u64, buf: IoBuf, done: Finish) -> Result<()>;

    /// Starts writing whole sectors from `buf` at `sector`; same rules as `read_async`.
    fn write_async(self: Arc<Self>, sector: u64, buf: IoBuf, done: Finish) -> Result<()>;

    /// VIX_E_DISK_OUTOFRANGE unless `[start, start + count)` lies inside the disk.
    fn check_range(&self, start: u64, count: u64) -> Result<()> {
        let capacity = self.capacity();
        match start.checked_add(count) {
            Some(end) if end <= capacity => Ok(()),
            _ => Err(Error::OutOfRange {
                start,
                end: start.saturating_add(count),
                capacity,
            }),
        }
    }
}
