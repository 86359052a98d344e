//! Positioned file I/O shared by the whole engine, and the only way it changes files: every
//! write, sync, truncate, rename, link and unlink goes through a function here (or
//! `atomic::sync_dir`), which reports it to `iolog` while a test records.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::iolog::{self, IoEvent};
use crate::error::{Error, Result};

/// Opens an existing disk file for reading (and writing if `writable`), refusing anything that
/// is not a regular file. The open itself never blocks: O_NONBLOCK makes a FIFO open return at
/// once, and the type is checked on the opened descriptor (fstat), so swapping the path for a
/// FIFO between a check and the open cannot hang us. On regular files O_NONBLOCK has no effect.
pub fn open_regular(path: &Path, writable: bool) -> Result<File> {
    open_regular_with_metadata(path, writable).map(|(file, _)| file)
}

/// `open_regular`, also returning the metadata its check read (one fstat for callers that
/// need the inode too).
pub fn open_regular_with_metadata(
    path: &Path,
    writable: bool,
) -> Result<(File, std::fs::Metadata)> {
    let file = OpenOptions::new()
        .read(true)
        .write(writable)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let md = file.metadata().map_err(|e| Error::io(path, e))?;
    let kind = md.file_type();
    if !kind.is_file() {
        return Err(Error::InvalidDisk(format!(
            "{} is not a regular file ({})",
            path.display(),
            describe_file_type(kind)
        )));
    }
    Ok((file, md))
}

fn describe_file_type(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_char_device() {
        "a character device"
    } else {
        "not a file"
    }
}

/// Reads `buf.len()` bytes at `offset`; bytes beyond end of file read as zeros (for the
/// checker, which inspects damaged files and judges their length itself).
pub fn read_at_zero_fill(file: &File, path: &Path, buf: &mut [u8], offset: u64) -> Result<()> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => {
                buf[done..].fill(0);
                return Ok(());
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    Ok(())
}

/// Reads `buf.len()` bytes at `offset` of a flat extent file. Holes inside the file read as
/// zeros (the kernel does that); bytes beyond the end of the file do not exist, so a file
/// shorter than its extent line says is damage and the read fails instead of inventing zeros.
pub fn read_flat_at(file: &File, path: &Path, buf: &mut [u8], offset: u64) -> Result<()> {
    file.read_exact_at(buf, offset).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::Corrupt(format!(
                "{}: flat extent file ends before byte {} (shorter than its extent line says)",
                path.display(),
                offset + buf.len() as u64
            ))
        } else {
            Error::io(path, e)
        }
    })
}

/// Reads exactly `buf.len()` bytes at `offset`; a short file is reported as damage.
pub fn read_exact_at(file: &File, path: &Path, buf: &mut [u8], offset: u64) -> Result<()> {
    file.read_exact_at(buf, offset).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::InvalidDisk(format!(
                "{}: file ends before byte {}",
                path.display(),
                offset + buf.len() as u64
            ))
        } else {
            Error::io(path, e)
        }
    })
}

/// Writes all of `buf` at `offset`.
pub fn write_all_at(file: &File, path: &Path, buf: &[u8], offset: u64) -> Result<()> {
    file.write_all_at(buf, offset)
        .map_err(|e| Error::io(path, e))?;
    note_written(file, path, buf, offset);
    Ok(())
}

fn note_written(file: &File, path: &Path, buf: &[u8], offset: u64) {
    if iolog::on() {
        iolog::record(IoEvent::Write {
            ino: iolog::ino(file),
            path,
            offset,
            data: buf,
        });
    }
}

/// Sets the file's length (truncating or extending with a hole).
pub fn set_len(file: &File, path: &Path, len: u64) -> Result<()> {
    file.set_len(len).map_err(|e| Error::io(path, e))?;
    if iolog::on() {
        iolog::record(IoEvent::SetLen {
            ino: iolog::ino(file),
            path,
            len,
        });
    }
    Ok(())
}

/// Reports a file just created at `path` (or truncated by its open) to the I/O recorder.
/// Every open that may create a file calls this right after the open.
pub fn note_created(file: &File, path: &Path) {
    if iolog::on() {
        iolog::record(IoEvent::Create {
            path,
            ino: iolog::ino(file),
        });
    }
}

/// `rename(2)`, reported to the I/O recorder.
pub fn rename(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::rename(from, to)?;
    if iolog::on() {
        iolog::record(IoEvent::Rename { from, to });
    }
    Ok(())
}

/// `link(2)`, reported to the I/O recorder.
pub fn hard_link(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::hard_link(from, to)?;
    if iolog::on() {
        iolog::record(IoEvent::Link { from, to });
    }
    Ok(())
}

/// `unlink(2)`, reported to the I/O recorder.
pub fn remove_file(path: &Path) -> std::io::Result<()> {
    std::fs::remove_file(path)?;
    if iolog::on() {
        iolog::record(IoEvent::Unlink { path });
    }
    Ok(())
}

/// Sequential writes from a position, through `write_all_at` (for `BufWriter` users that
/// write a new file front to back).
pub struct SeqWriter<'a> {
    file: &'a File,
    path: &'a Path,
    pos: u64,
}

impl<'a> SeqWriter<'a> {
    /// Writes start at byte `pos` of `file`.
    pub fn new(file: &'a File, path: &'a Path, pos: u64) -> SeqWriter<'a> {
        SeqWriter { file, path, pos }
    }
}

impl std::io::Write for SeqWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The io::Error itself goes back (ENOSPC must stay ENOSPC for the caller's mapping).
        self.file.write_all_at(buf, self.pos)?;
        note_written(self.file, self.path, buf, self.pos);
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Returns the file length in bytes.
pub fn file_len(file: &File, path: &Path) -> Result<u64> {
    Ok(file.metadata().map_err(|e| Error::io(path, e))?.len())
}

/// Makes written data durable (`fdatasync`).
pub fn sync_data(file: &File, path: &Path) -> Result<()> {
    file.sync_data().map_err(|e| Error::io(path, e))?;
    note_synced(file, path);
    Ok(())
}

/// Makes written data and all metadata durable (`fsync`).
pub fn sync_all(file: &File, path: &Path) -> Result<()> {
    file.sync_all().map_err(|e| Error::io(path, e))?;
    note_synced(file, path);
    Ok(())
}

fn note_synced(file: &File, path: &Path) {
    if iolog::on() {
        iolog::record(IoEvent::Sync {
            ino: iolog::ino(file),
            path,
        });
    }
}

/// A random 32-bit value that is not one of the reserved CIDs (`ffffffff`, `fffffffe`).
pub fn random_cid() -> u32 {
    loop {
        let v = random_u64() as u32;
        if v < 0xffff_fffe {
            return v;
        }
    }
}

/// 64 random bits from the OS (falls back to the std hasher's per-process random keys).
pub fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    if let Ok(f) = File::open("/dev/urandom")
        && f.read_exact_at(&mut buf, 0).is_ok()
    {
        return u64::from_le_bytes(buf);
    }
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    h.finish()
}

/// Copies `len` bytes from `src` at `src_off` to `dst` at `dst_off`, inside the kernel where
/// the platform allows (copy_file_range; std falls back to read/write otherwise). A source
/// that ends before `src_off + len` is damage: the copy fails rather than invent zeros. Uses the two
/// files' seek positions, which nothing else in this library relies on (all other I/O is
/// positioned), so callers must not run two copies on one file at once.
pub fn copy_range(
    src: &File,
    src_path: &Path,
    src_off: u64,
    dst: &File,
    dst_path: &Path,
    dst_off: u64,
    len: u64,
) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut from = src;
    from.seek(SeekFrom::Start(src_off))
        .map_err(|e| Error::io(src_path, e))?;
    let mut to = dst;
    to.seek(SeekFrom::Start(dst_off))
        .map_err(|e| Error::io(dst_path, e))?;
    let copied = std::io::copy(&mut from.take(len), &mut to).map_err(|e| Error::io(dst_path, e))?;
    if copied < len {
        return Err(Error::Corrupt(format!(
            "{}: file ends before byte {}",
            src_path.display(),
            src_off + len
        )));
    }
    if iolog::on() {
        // The recorder gets the bytes the copy put there, like any other write.
        let mut data = vec![0u8; len as usize];
        read_exact_at(dst, dst_path, &mut data, dst_off)?;
        iolog::record(IoEvent::Write {
            ino: iolog::ino(dst),
            path: dst_path,
            offset: dst_off,
            data: &data,
        });
    }
    Ok(())
}

/// Directory of a descriptor, for resolving names relative to it.
pub fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}
