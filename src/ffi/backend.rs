//! What a disk handle holds: a local chain of VMDK links, or a remote NBD export. The calls
//! both kinds answer dispatch here, once; calls only a local chain can answer (metadata,
//! redo logs, compaction, …) reach it through `local`, which refuses remote disks with
//! VIX_E_NOT_SUPPORTED and a log line naming the call.

use crate::chain::{Disk, DiskInfo};
use crate::error::{Error, Result};

use super::nbd::disk::NbdDisk;

/// The disk behind a handle.
pub enum Backend {
    /// VMDK files on this host.
    Local(Disk),
    /// An export of an NBD server.
    Remote(NbdDisk),
}

/// "file": the transport of local disks.
const TRANSPORT_FILE: &[u8] = b"file\0";

impl Backend {
    /// The local chain, or VIX_E_NOT_SUPPORTED naming `call` for a remote disk.
    pub fn local(&self, call: &str) -> Result<&Disk> {
        match self {
            Backend::Local(d) => Ok(d),
            Backend::Remote(_) => Err(Error::NotSupported(format!(
                "{call} works on local disks only, not on a remote NBD export"
            ))),
        }
    }

    /// Capacity in sectors.
    pub fn capacity(&self) -> u64 {
        match self {
            Backend::Local(d) => d.capacity(),
            Backend::Remote(r) => r.capacity(),
        }
    }

    /// VIX_E_DISK_OUTOFRANGE unless `[start, start + count)` lies inside the disk.
    pub fn check_range(&self, start: u64, count: u64) -> Result<()> {
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

    /// Reads whole sectors.
    pub fn read(&self, sector: u64, buf: &mut [u8]) -> Result<()> {
        match self {
            Backend::Local(d) => d.read(sector, buf),
            Backend::Remote(r) => r.read(sector, buf),
        }
    }

    /// Writes whole sectors.
    pub fn write(&self, sector: u64, data: &[u8]) -> Result<()> {
        match self {
            Backend::Local(d) => d.write(sector, data),
            Backend::Remote(r) => r.write(sector, data),
        }
    }

    /// Makes completed writes durable.
    pub fn flush(&self) -> Result<()> {
        match self {
            Backend::Local(d) => d.flush(),
            Backend::Remote(r) => r.flush(),
        }
    }

    /// Flushes and releases the disk.
    pub fn close(&self) -> Result<()> {
        match self {
            Backend::Local(d) => d.close(),
            Backend::Remote(r) => r.close(),
        }
    }

    /// What GetInfo reports.
    pub fn info(&self) -> DiskInfo {
        match self {
            Backend::Local(d) => d.info(),
            Backend::Remote(r) => r.info(),
        }
    }

    /// QueryAllocatedBlocks' answer (VDDK's argument rules apply to both kinds).
    pub fn allocated_chunks(&self, start: u64, count: u64, chunk: u64) -> Result<Vec<(u64, u64)>> {
        match self {
            Backend::Local(d) => d.allocated_chunks(start, count, chunk),
            Backend::Remote(r) => r.allocated_chunks(start, count, chunk),
        }
    }

    /// QueryChangedAreas' answer for `[start, end)` since `since`.
    pub fn changed_areas(&self, since: &str, start: u64, end: u64) -> Result<Vec<(u64, u64)>> {
        match self {
            Backend::Local(d) => d.changed_areas(since, start, end),
            Backend::Remote(r) => r.changed_areas(since, start, end),
        }
    }

    /// The transport GetTransportMode reports, NUL-terminated.
    pub fn transport(&self) -> &'static [u8] {
        match self {
            Backend::Local(_) => TRANSPORT_FILE,
            Backend::Remote(r) => r.transport(),
        }
    }
}
