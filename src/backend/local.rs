//! A local chain as a backend: synchronous calls go straight to `chain::Disk`; asynchronous
//! ones run on the worker pool (`pool`), since file I/O has no completion to wait for.

use std::sync::Arc;

use super::{DiskBackend, Finish, IoBuf, Transport, pool};
use crate::chain::{Disk, DiskInfo};
use crate::error::{Error, Result};

/// Runs `op` on the pool and gives its result (a panic becomes an internal error) to `done`.
fn run_async(op: impl FnOnce() -> Result<()> + Send + 'static, done: Finish) -> Result<()> {
    let accepted = pool::submit(Box::new(move || {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(op))
            .unwrap_or_else(|_| Err(Error::Internal("an I/O worker panicked".into())));
        done(result);
    }));
    if !accepted {
        return Err(Error::NotSupported(
            "cannot start I/O worker threads".into(),
        ));
    }
    Ok(())
}

impl DiskBackend for Disk {
    fn capacity(&self) -> u64 {
        Disk::capacity(self)
    }

    fn read(&self, sector: u64, buf: &mut [u8]) -> Result<()> {
        Disk::read(self, sector, buf)
    }

    fn write(&self, sector: u64, data: &[u8]) -> Result<()> {
        Disk::write(self, sector, data)
    }

    fn flush(&self) -> Result<()> {
        Disk::flush(self)
    }

    fn close(&self) -> Result<()> {
        Disk::close(self)
    }

    fn info(&self) -> DiskInfo {
        Disk::info(self)
    }

    fn allocated_chunks(&self, start: u64, count: u64, chunk: u64) -> Result<Vec<(u64, u64)>> {
        Disk::allocated_chunks(self, start, count, chunk)
    }

    fn changed_areas(&self, since: &str, start: u64, end: u64) -> Result<Vec<(u64, u64)>> {
        Disk::changed_areas(self, since, start, end)
    }

    fn transport(&self) -> Transport {
        Transport::File
    }

    fn read_async(self: Arc<Self>, sector: u64, mut buf: IoBuf, done: Finish) -> Result<()> {
        run_async(move || Disk::read(&self, sector, buf.as_mut_slice()?), done)
    }

    fn write_async(self: Arc<Self>, sector: u64, buf: IoBuf, done: Finish) -> Result<()> {
        run_async(move || Disk::write(&self, sector, buf.as_slice()?), done)
    }
}
