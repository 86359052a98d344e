//! `DiskCursor`: a whole disk as bytes, for code written against `std::io`. Partial sectors
//! are read whole and, on write, merged with what the disk holds (read-modify-write).

use std::io::{self, Read, Seek, SeekFrom, Write};

use super::disk::Disk;
use super::types::SECTOR_SIZE;
use crate::error::{Error, Result};

/// A byte position over an open [`Disk`], with `std::io::{Read, Write, Seek}` and
/// positional [`read_at`](DiskCursor::read_at) / [`write_at`](DiskCursor::write_at).
/// Reads stop at the end of the disk; writes past it fail. A write of part of a sector reads
/// the sector and writes it back whole: two cursors writing parts of one sector at the same
/// time may lose one's bytes.
///
/// ```
/// use std::io::{Read, Seek, SeekFrom, Write};
/// # use vixDiskLib::{Connection, CreateOptions, DiskKind, DiskCursor};
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("d.vmdk");
/// # let conn = Connection::local();
/// # conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 2048), &mut |_| {})?;
/// let disk = conn.open(&path, &Default::default())?;
/// let mut cur = DiskCursor::new(&disk);
/// cur.seek(SeekFrom::Start(1000))?;
/// cur.write_all(b"hello, disk")?;
/// cur.seek(SeekFrom::Current(-11))?;
/// let mut back = [0u8; 11];
/// cur.read_exact(&mut back)?;
/// assert_eq!(&back, b"hello, disk");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct DiskCursor<'a> {
    disk: &'a Disk,
    pos: u64,
}

fn io_error(e: Error) -> io::Error {
    io::Error::other(e)
}

impl<'a> DiskCursor<'a> {
    /// A cursor at byte 0 of `disk`.
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind, DiskCursor};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("d.vmdk");
    /// # let conn = Connection::local();
    /// # conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 2048), &mut |_| {})?;
    /// let disk = conn.open(&path, &Default::default())?;
    /// assert_eq!(DiskCursor::new(&disk).len(), 2048 * 512);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(disk: &'a Disk) -> DiskCursor<'a> {
        DiskCursor { disk, pos: 0 }
    }

    /// The disk's size in bytes.
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind, DiskCursor};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("d.vmdk");
    /// # let conn = Connection::local();
    /// # conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 2048), &mut |_| {})?;
    /// # let disk = conn.open(&path, &Default::default())?;
    /// assert!(!DiskCursor::new(&disk).is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> u64 {
        self.disk.capacity() * SECTOR_SIZE
    }

    /// True for a disk of no sectors.
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind, DiskCursor};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("d.vmdk");
    /// # let conn = Connection::local();
    /// # conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 2048), &mut |_| {})?;
    /// # let disk = conn.open(&path, &Default::default())?;
    /// assert!(!DiskCursor::new(&disk).is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads up to `buf.len()` bytes at byte `offset` (fewer only at the end of the disk);
    /// returns how many. The cursor's position does not move.
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind, DiskCursor};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("d.vmdk");
    /// # let conn = Connection::local();
    /// # conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 2048), &mut |_| {})?;
    /// let disk = conn.open(&path, &Default::default())?;
    /// let cur = DiskCursor::new(&disk);
    /// cur.write_at(3, &[5, 6, 7])?;
    /// let mut buf = [0u8; 8];
    /// assert_eq!(cur.read_at(0, &mut buf)?, 8);
    /// assert_eq!(buf, [0, 0, 0, 5, 6, 7, 0, 0]);
    /// assert_eq!(cur.read_at(cur.len() - 2, &mut buf)?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let n = (self.len().saturating_sub(offset)).min(buf.len() as u64) as usize;
        if n == 0 {
            return Ok(0);
        }
        let (first, sectors) = covering(offset, n);
        let mut tmp = vec![0u8; sectors as usize * SECTOR_SIZE as usize];
        self.disk.read(first, &mut tmp)?;
        let skip = (offset - first * SECTOR_SIZE) as usize;
        buf[..n].copy_from_slice(&tmp[skip..skip + n]);
        Ok(n)
    }

    /// Writes all of `data` at byte `offset`; partial sectors keep the rest of their content.
    /// Fails, writing nothing, if `data` reaches past the end of the disk.
    ///
    /// ```
    /// # use vixDiskLib::{Connection, CreateOptions, DiskKind, DiskCursor};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("d.vmdk");
    /// # let conn = Connection::local();
    /// # conn.create(&path, &CreateOptions::new(DiskKind::MonolithicSparse, 2048), &mut |_| {})?;
    /// let disk = conn.open(&path, &Default::default())?;
    /// let cur = DiskCursor::new(&disk);
    /// assert!(cur.write_at(cur.len() - 1, &[1, 2]).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let end = offset.checked_add(data.len() as u64);
        if end.is_none_or(|end| end > self.len()) {
            return Err(Error::OutOfRange {
                start: offset / SECTOR_SIZE,
                end: end.unwrap_or(u64::MAX).div_ceil(SECTOR_SIZE),
                capacity: self.disk.capacity(),
            });
        }
        let (first, sectors) = covering(offset, data.len());
        let skip = (offset - first * SECTOR_SIZE) as usize;
        let mut tmp = vec![0u8; sectors as usize * SECTOR_SIZE as usize];
        // Only partial edge sectors need their old content.
        if skip != 0 || tmp.len() != data.len() {
            self.disk.read(first, &mut tmp)?;
        }
        tmp[skip..skip + data.len()].copy_from_slice(data);
        self.disk.write(first, &tmp)
    }
}

/// The first sector and the number of sectors that hold `len` bytes from byte `offset`.
fn covering(offset: u64, len: usize) -> (u64, u64) {
    let first = offset / SECTOR_SIZE;
    let end = (offset + len as u64).div_ceil(SECTOR_SIZE);
    (first, end - first)
}

impl Read for DiskCursor<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.read_at(self.pos, buf).map_err(io_error)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for DiskCursor<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_at(self.pos, buf).map_err(io_error)?;
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.disk.flush().map_err(io_error)
    }
}

impl Seek for DiskCursor<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = new.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before byte 0 of the disk",
            )
        })?;
        Ok(self.pos)
    }
}
