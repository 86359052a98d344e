//! Asynchronous sector I/O on a [`Disk`]: requests that run on library threads and report
//! through a completion, so one caller can keep many in flight (VixDiskLib's ReadAsync and
//! WriteAsync).

use super::Disk;
use crate::error::Result;
use crate::remote::sys::IoBuf;

pub use crate::backend::Finish as Completion;

impl Disk {
    /// Starts reading whole sectors at `sector` into `buf`. When this returns Ok, `done` runs
    /// exactly once, on a library thread, after the read finished (successfully or not); on
    /// Err nothing was started and `done` never runs. The request keeps the disk's data
    /// alive, but the caller must not close the disk before `done` ran.
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind, IoBuf};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("d.vmdk");
    /// # let conn = Connection::local();
    /// # conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 4096), &mut |_| {})?;
    /// let disk = conn.open(&path, &Default::default())?;
    /// disk.write(8, &[5; 512])?;
    /// let mut data = vec![0u8; 512];
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// // SAFETY: `data` is not touched until the completion has reported back below.
    /// let buf = unsafe { IoBuf::from_raw_mut(data.as_mut_ptr(), data.len()) };
    /// disk.read_async(8, buf, Box::new(move |r| tx.send(r).unwrap()))?;
    /// rx.recv()??;
    /// assert_eq!(data, [5; 512]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_async(&self, sector: u64, buf: IoBuf, done: Completion) -> Result<()> {
        self.shared().read_async(sector, buf, done)
    }

    /// Starts writing whole sectors from `buf` at `sector`; the same rules as
    /// [`Disk::read_async`].
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind, IoBuf};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("d.vmdk");
    /// # let conn = Connection::local();
    /// # conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 4096), &mut |_| {})?;
    /// let disk = conn.open(&path, &Default::default())?;
    /// let data = vec![7u8; 1024];
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// // SAFETY: `data` is neither changed nor dropped until the completion reported back.
    /// let buf = unsafe { IoBuf::from_raw(data.as_ptr(), data.len()) };
    /// disk.write_async(0, buf, Box::new(move |r| tx.send(r).unwrap()))?;
    /// rx.recv()??;
    /// let mut back = vec![0u8; 1024];
    /// disk.read(0, &mut back)?;
    /// assert_eq!(back, data);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_async(&self, sector: u64, buf: IoBuf, done: Completion) -> Result<()> {
        self.shared().write_async(sector, buf, done)
    }
}
